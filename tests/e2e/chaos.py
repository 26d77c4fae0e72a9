"""A randomized fault run against a three-broker cluster (issue 10 item 6), and its checker.

A seeded schedule of faults — kill -9 and restart, SIGSTOP/SIGCONT pauses, SIGTERM
(controlled shutdown) and restart — hits random brokers, one at a time so a quorum always
stays alive, while an idempotent acks=all producer (confluent-kafka) logs every
acknowledged (partition, offset, value) and a consumer tails every partition. Afterwards
the checker asserts:
- every acknowledged record is at its acknowledged offset, exactly once, in a full read;
- the offsets below the high watermark have no gaps (no compaction, no transactions);
- whatever the consumer read during the faults is at the same offset in the full read
  (consumers never saw a record that was later truncated);
- the idempotent producer hit no fatal error (a sequence gap would be one);
- all replicas converge: every ISR whole, and after a clean stop every replica's log on
  disk holds the same batches (base offset, record count, CRC) up to the same end.

Used by test_cluster_chaos.py (a bounded number of rounds) and, long, by
scripts/chaos.sh:

    python tests/e2e/chaos.py --rounds 300 --seed 1234 [--workdir DIR]

The seed picks the faults, their brokers and timings; a failure prints it so the same
schedule can be replayed (the producer's timing is not part of it)."""

import argparse
import os
import random
import signal
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clients import consume, wait_until  # noqa: E402
from conftest import BrokerFactory  # noqa: E402

TOPIC = "chaos"
PARTITIONS = 3
BROKERS = 3
# Short sessions and lag bounds so a run sees fencing, ISR shrinks and expands within
# seconds; fast fencing (controller.fast.fencing.enable) is on, as by default.
SETTINGS = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
}
MIN_INSYNC_REPLICAS = "2"
# Which fault a round injects, and how likely each is.
FAULT_WEIGHTS = {"kill": 4, "pause": 4, "term": 2}
PAUSE_S = (0.2, 5.0)  # some pauses outlast the 3 s session: fenced, then back
DOWN_S = (0.0, 2.0)  # how long a killed or stopped broker stays down
BETWEEN_S = (0.3, 2.0)
# The producer's bounds: a record not acknowledged within this is reported failed (not
# acknowledged, so not checked).
MESSAGE_TIMEOUT_MS = 120_000
PRODUCE_BURST = 20
PRODUCE_PAUSE_S = 0.02
SETTLE_S = 90
ADMIN_TIMEOUT_S = 10


class Workload:
    """The producer and the tailing consumer, on threads, with what they saw."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.lock = threading.Lock()
        self.acked = []  # (partition, offset, value)
        self.failed = []  # errors of records not acknowledged
        self.fatal = []
        self.read = []  # (partition, offset, value) the tailing consumer got
        self.stop_producing = threading.Event()
        self.stop_reading = threading.Event()
        self.threads = [threading.Thread(target=self._produce, daemon=True),
                        threading.Thread(target=self._consume, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()

    def _report(self, err, msg):
        with self.lock:
            if err is None:
                self.acked.append((msg.partition(), msg.offset(), msg.value()))
            else:
                self.failed.append(str(err))
                if err.fatal():
                    self.fatal.append(str(err))

    def _produce(self):
        p = Producer({"bootstrap.servers": self.bootstrap, "broker.address.family": "v4", "acks": "all",
                      "enable.idempotence": True, "linger.ms": 5, "compression.type": "none",
                      "message.timeout.ms": MESSAGE_TIMEOUT_MS,
                      "error_cb": lambda e: self._report(e, None) if e.fatal() else None})
        seq = 0
        while not self.stop_producing.is_set():
            for _ in range(PRODUCE_BURST):
                try:
                    p.produce(TOPIC, b"%d" % seq, partition=seq % PARTITIONS, on_delivery=self._report)
                    seq += 1
                except BufferError:
                    break
            p.poll(0)
            time.sleep(PRODUCE_PAUSE_S)
        left = p.flush(MESSAGE_TIMEOUT_MS / 1000 + 10)
        assert left == 0, f"{left} records neither acknowledged nor failed after the flush"

    def _consume(self):
        c = Consumer({"bootstrap.servers": self.bootstrap, "broker.address.family": "v4",
                      "group.id": "chaos-tail", "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        try:
            while not self.stop_reading.is_set():
                for m in c.consume(500, 0.2):
                    if m.error() is None:
                        with self.lock:
                            self.read.append((m.partition(), m.offset(), m.value()))
        finally:
            c.close()

    def finish(self):
        self.stop_producing.set()
        self.threads[0].join(MESSAGE_TIMEOUT_MS / 1000 + 30)
        self.stop_reading.set()
        self.threads[1].join(30)


def partitions(broker):
    """{partition: (leader, sorted isr)} of TOPIC in broker's Metadata, or None."""
    try:
        md = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"}) \
            .list_topics(timeout=ADMIN_TIMEOUT_S)
    except Exception:
        return None
    t = md.topics.get(TOPIC)
    if t is None or t.error is not None or len(t.partitions) != PARTITIONS:
        return None
    return {p: (v.leader, sorted(v.isrs)) for p, v in t.partitions.items()}


def live_brokers(broker):
    try:
        md = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"}) \
            .list_topics(timeout=ADMIN_TIMEOUT_S)
    except Exception:
        return None
    return sorted(md.brokers)


def isr_whole(brokers):
    """Every broker's Metadata shows every partition led, with all brokers in its ISR."""
    whole = list(range(1, BROKERS + 1))
    for b in brokers:
        parts = partitions(b)
        if parts is None or any(leader < 1 or isr != whole for leader, isr in parts.values()):
            return False
    return True


class Faults:
    """The seeded schedule, applied one fault at a time."""

    def __init__(self, brokers, seed, log):
        self.brokers = brokers
        self.rng = random.Random(seed)
        self.log = log
        self.paused = None

    def round(self, n):
        kind = self.rng.choices(list(FAULT_WEIGHTS), weights=list(FAULT_WEIGHTS.values()))[0]
        b = self.rng.choice(self.brokers)
        down_s = self.rng.uniform(*DOWN_S)
        pause_s = self.rng.uniform(*PAUSE_S)
        between_s = self.rng.uniform(*BETWEEN_S)
        if kind == "kill":
            self.log(f"round {n}: kill -9 broker {b.node_id}, down {down_s:.1f} s")
            b.kill9()
            time.sleep(down_s)
            b.start()
        elif kind == "term":
            self.log(f"round {n}: SIGTERM broker {b.node_id}, down {down_s:.1f} s")
            b.stop()
            time.sleep(down_s)
            b.start()
        else:
            self.log(f"round {n}: SIGSTOP broker {b.node_id} for {pause_s:.1f} s")
            self.paused = b
            os.kill(b.proc.pid, signal.SIGSTOP)
            try:
                time.sleep(pause_s)
            finally:
                os.kill(b.proc.pid, signal.SIGCONT)
                self.paused = None
        time.sleep(between_s)

    def release(self):
        """SIGCONT for a broker left paused by an interrupted round."""
        if self.paused is not None and self.paused.is_running():
            os.kill(self.paused.proc.pid, signal.SIGCONT)


def disk_batches(log_dir: Path, partition: int):
    """[(base_offset, last_offset, crc)] of the batches in one replica's segments, in
    offset order, up to the end of the written data (a segment is preallocated: zeros
    follow its last batch)."""
    out = []
    next_offset = 0
    for seg in sorted((log_dir / f"{TOPIC}-{partition}").glob("*.log")):
        data = seg.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            base_offset, length = struct.unpack_from(">qi", data, pos)
            if length < 49 or pos + 12 + length > len(data) or base_offset < next_offset:
                break
            (crc,) = struct.unpack_from(">I", data, pos + 17)
            (last_delta,) = struct.unpack_from(">i", data, pos + 23)
            out.append((base_offset, base_offset + last_delta, crc))
            next_offset = base_offset + last_delta + 1
            pos += 12 + length
    return out


def check(brokers, work, log):
    """The checker; raises AssertionError with what is wrong."""
    wait_until(lambda: isr_whole(brokers), SETTLE_S, "every ISR whole again")
    end = check_records(brokers[0], work, log)
    check_disks(brokers, end)


def check_records(broker, work, log):
    """What clients saw against a full read through `broker`: every acknowledged record at
    its offset exactly once, no gaps, nothing the tailing consumer read since truncated.
    Returns {partition: high watermark}."""
    assert not work.fatal, f"the idempotent producer hit fatal errors: {work.fatal[:3]}"
    assert work.acked, "nothing was acknowledged"
    end = {}
    read_all = {}
    for p in range(PARTITIONS):
        c = Consumer({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4",
                      "group.id": "chaos-check"})
        try:
            low, high = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=ADMIN_TIMEOUT_S, cached=False)
        finally:
            c.close()
        assert low == 0, f"partition {p}: log start {low}, nothing deletes records here"
        end[p] = high
        msgs = consume(broker, TOPIC, {p: 0}, high, timeout_s=SETTLE_S) if high else []
        offsets = [m.offset() for m in msgs]
        assert offsets == list(range(high)), \
            f"partition {p}: offsets read are not 0..{high - 1} without gaps or repeats " \
            f"(first difference at {next((i for i, o in enumerate(offsets) if o != i), len(offsets))})"
        read_all[p] = {m.offset(): m.value() for m in msgs}
    values = {}
    for p, records in read_all.items():
        for off, v in records.items():
            assert v not in values, f"value {v!r} at {values[v]} and at {(p, off)}: duplicated"
            values[v] = (p, off)
    for p, off, v in work.acked:
        assert values.get(v) == (p, off), \
            f"acknowledged {v!r} at partition {p} offset {off}, read at {values.get(v)}"
    for p, off, v in work.read:
        assert read_all[p].get(off) == v, \
            f"the tailing consumer read {v!r} at partition {p} offset {off}, the full read has " \
            f"{read_all[p].get(off)!r} there (a record consumers saw was truncated)"
    log(f"checked: {len(work.acked)} acknowledged, {len(work.failed)} failed, {len(work.read)} tailed, "
        f"end offsets {end}")
    return end


def check_disks(brokers, end):
    """After a clean stop of every broker: each replica's log on disk ends exactly at the
    high watermark, its batches contiguous from 0, and all replicas hold the same batches."""
    for b in brokers:
        b.stop()
        b.proc = None  # stopped for good: the harness's teardown leaves it alone
    for p in range(PARTITIONS):
        replicas = {b.node_id: disk_batches(b.log_dirs[0], p) for b in brokers}
        for node, batches in replicas.items():
            log_end = batches[-1][1] + 1 if batches else 0
            assert log_end == end[p], \
                f"partition {p}: broker {node}'s log ends at {log_end}, the high watermark was {end[p]}"
            gaps = [(a[1], b[0]) for a, b in zip(batches, batches[1:]) if b[0] != a[1] + 1]
            assert not gaps and (not batches or batches[0][0] == 0), \
                f"partition {p}: broker {node}'s batches leave gaps {gaps[:3]}"
        first_node, first = next(iter(replicas.items()))
        for node, batches in replicas.items():
            diff = next((i for i, (a, b) in enumerate(zip(batches, first)) if a != b), None)
            assert diff is None, \
                f"partition {p}: replicas diverge: broker {node} has {batches[diff]} where broker " \
                f"{first_node} has {first[diff]} (batch {diff}: base offset, last offset, CRC)"


def run(factory, rounds, seed, log=print):
    """Starts a cluster from factory, runs `rounds` seeded fault rounds under load, checks."""
    log(f"chaos: seed {seed}, {rounds} rounds")
    brokers = factory.cluster(BROKERS, overrides=SETTINGS)
    # A member is "ready" once it answers Metadata naming itself, which it may do before
    # the quorum has applied its registration: wait until every member counts all three.
    wait_until(lambda: all(live_brokers(b) == list(range(1, BROKERS + 1)) for b in brokers), SETTLE_S,
               "every member registered")
    admin = AdminClient({"bootstrap.servers": brokers[0].bootstrap, "broker.address.family": "v4"})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, BROKERS,
                                  config={"min.insync.replicas": MIN_INSYNC_REPLICAS})])[TOPIC].result(ADMIN_TIMEOUT_S)
    wait_until(lambda: isr_whole(brokers), SETTLE_S, "the topic's ISRs")
    work = Workload(",".join(b.bootstrap for b in brokers))
    work.start()
    faults = Faults(brokers, seed, log)
    try:
        time.sleep(1)
        for n in range(rounds):
            faults.round(n)
    finally:
        faults.release()
        work.finish()
    check(brokers, work, log)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="corelog-chaos-"))
    print(f"chaos: seed {seed} (replay: scripts/chaos.sh {args.rounds} {seed}); logs under {workdir}", flush=True)
    factory = BrokerFactory(workdir, "chaos")
    started = time.monotonic()
    try:
        run(factory, args.rounds, seed, log=lambda s: print(f"[{time.monotonic() - started:7.1f}s] {s}", flush=True))
    except BaseException:
        print(f"chaos: FAILED with seed {seed}; broker logs: {workdir}/broker*/corelog.log", flush=True)
        raise
    finally:
        for b in factory.brokers:
            if b.is_running():
                os.kill(b.proc.pid, signal.SIGCONT)
                b.proc.kill()
    print(f"chaos: passed, seed {seed}, {args.rounds} rounds in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
