#!/usr/bin/env python3
"""Soak: a mixed workload against one broker for a chosen time (issue 15, item 3).

    scripts/soak.sh [minutes]            # builds the release binary, then runs this
    .venv/bin/python scripts/soak.py --minutes 60 [--bin target/release/corelog]
        [--smp 2] [--interval 60] [--out target/soak/<time>] [--scale 1.0]

Starts one broker on a temporary data dir (deleted at the end) and runs, each in its
own process, until the time is up:
- a confluent-kafka producer, acks=all and idempotent, and a kafka-python producer,
  acks=all, into `soak-all` (every record carries a unique id and its send time);
- a confluent-kafka producer, acks=1, into `soak-loose` and `soak-groups`, and a
  kafka-python producer, acks=0, into `soak-loose`;
- a tail consumer (confluent-kafka, in a group) of `soak-all`, which measures the
  produce-to-consume latency from the send time in each record;
- historical reads: every few seconds a kafka-python consumer reads a few hundred
  records of `soak-all` from a random earlier offset and checks the offsets are
  consecutive;
- group churn: consumers (both clients) join group `soak-churn` on `soak-groups`, stay
  20-90 s and leave, so the group rebalances all the time;
- topic churn: every 30 s a topic is created, written (acks=all), read back in full,
  and deleted;
- a retention-limited topic (`segment.bytes` 256 KiB, `retention.ms` 60 s) written at
  a steady rate, and a compacted topic (500 keys, small segments) so the cleaner runs.

Every --interval seconds it records the broker's RSS, open descriptors
(/proc/<pid>/fd), Kafka connections (admin /metrics), CPU (broker and clients, from
/proc/<pid>/stat), disk used by the data dir, produce latency p50/p99/p99.9 (acks=all
and acks=1, the client's own delivery latency) and produce-to-consume latency, the
records acked and read, and the broker's memory gauges (`soak_memory`: bytes per
bounded structure, their sum, RSS minus that sum, glibc malloc's in-use and free
bytes). At the end a checker reads `soak-all` from the start: every
record acked to an acks=all producer must be there exactly once. Writes soak.csv (one
row per interval), soak.json (the rows, the checker and a flatness verdict on RSS and
descriptors after warm-up, and the `memory` verdict: the slopes of RSS and of RSS minus
the accounted bytes over the last third) and soak.svg (RSS beside the accounted bytes,
descriptors and p99 over time) into --out.
`soak.py rejudge <soak.json> <warm-up minutes>` judges a finished run again.
Exits 1 when the checker or a worker failed or the broker died. Loopback only; every
wait is bounded. The default rates cost ~0.35 core in total (--scale multiplies them).
`--scale 0` keeps only the churn (group members joining and leaving, topics created,
written, read and deleted, short-lived connections): a leak check that the batch cache
does not blur, since at the default rates the cache (up to 8 MiB per written partition)
takes most of an hour to fill.
"""

import argparse
import json
import multiprocessing as mp
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import soak_memory  # noqa: E402
import soak_plot  # noqa: E402

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TOPIC_ALL = "soak-all"  # acks=all, checked exactly once at the end
TOPIC_LOOSE = "soak-loose"  # acks=0 and acks=1, counted only
TOPIC_GROUPS = "soak-groups"  # what the churning group consumes
TOPIC_RETENTION = "soak-retention"
TOPIC_COMPACT = "soak-compact"
PARTITIONS = 3
GROUP_PARTITIONS = 6
RETENTION_MS = 60_000
SMALL_SEGMENT_BYTES = 256 << 10
COMPACT_KEYS = 500
VALUE_PAD_BYTES = 200
RETENTION_VALUE_BYTES = 1024
TOPIC_CHURN_EVERY_S = 30
TOPIC_CHURN_RECORDS = 200
HISTORICAL_EVERY_S = 10
HISTORICAL_RECORDS = 300
GROUP_MEMBERS = 3
MEMBER_LIFE_S = (20, 90)
READY_TIMEOUT_S = 120
CLIENT_TIMEOUT_S = 30
LATENCY_FLUSH_S = 1.0
# The first minutes fill caches and segments; flatness is judged after them.
WARMUP_FRACTION = 0.25
WARMUP_MAX_S = 600
# Growth over the warm part of the run that still counts as flat.
FLAT_RSS_MB = 16
FLAT_FDS = 16
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid):
    """utime + stime of pid, in seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def proc_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def disk_mb(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total / 2**20


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))
    return round(sorted_values[i], 2)


def ck_conf(bootstrap, **extra):
    return {"bootstrap.servers": bootstrap, "broker.address.family": "v4", **extra}


def kp_conf(bootstrap):
    return {"bootstrap_servers": bootstrap, "request_timeout_ms": CLIENT_TIMEOUT_S * 1000,
            "api_version_auto_timeout_ms": 10_000}


# --- workers: each runs in its own process until `stop` is set ------------------------

class Report:
    """A worker's channel to the sampler: latency samples (batched), counters, errors."""

    def __init__(self, q, name):
        self.q, self.name = q, name
        self.lat = {}
        self.counts = {}
        self.last = time.monotonic()

    def latency(self, kind, ms):
        self.lat.setdefault(kind, []).append(ms)

    def count(self, kind, n=1):
        self.counts[kind] = self.counts.get(kind, 0) + n

    def error(self, text):
        self.count("errors")
        self.q.put(("error", self.name, text[:500]))

    def flush(self, force=False):
        if force or time.monotonic() - self.last >= LATENCY_FLUSH_S:
            if self.lat or self.counts:
                self.q.put(("batch", self.name, self.lat, self.counts))
            self.lat, self.counts = {}, {}
            self.last = time.monotonic()


def paced(stop, rate_per_s, step, wait=time.sleep):
    """Calls step(n) about every 100 ms with the number of records due, until stop;
    between steps it calls wait(seconds) (a producer's poll, so that delivery callbacks,
    and with them the latency measured, are not held back until the next step)."""
    tick_s = 0.1
    started = time.monotonic()
    done = 0
    while not stop.is_set():
        due = int((time.monotonic() - started) * rate_per_s) - done
        if due > 0:
            step(due)
            done += due
        wait(tick_s)


def value_of(record_id):
    return f"{record_id}|{time.time():.6f}|".encode() + b"x" * VALUE_PAD_BYTES


def parse_value(value):
    record_id, sent, _pad = value.split(b"|", 2)
    return record_id.decode(), float(sent)


def ck_acks_all(bootstrap, stop, q, out, rate):
    """Idempotent confluent-kafka producer, acks=all; writes the acked ids at the end."""
    rep = Report(q, "ck-acks-all")
    acked = []
    p = Producer(ck_conf(bootstrap, acks="all", **{"enable.idempotence": True, "linger.ms": 5}))
    seq = [0]

    def delivered(err, msg):
        if err is not None:
            rep.error(f"acks=all delivery failed: {err}")
            return
        acked.append(msg.key().decode())
        rep.latency("produce_all", msg.latency() * 1000)
        rep.count("acked_all")

    def step(n):
        for _ in range(n):
            rid = f"ck-{seq[0]}"
            seq[0] += 1
            p.produce(TOPIC_ALL, key=rid.encode(), value=value_of(rid), on_delivery=delivered)
        p.poll(0)
        rep.flush()

    paced(stop, rate, step, p.poll)
    left = p.flush(CLIENT_TIMEOUT_S)
    if left:
        rep.error(f"{left} acks=all records still unacknowledged at the end")
    rep.flush(force=True)
    Path(out, "acked-ck.txt").write_text("\n".join(acked) + "\n")


def kp_acks_all(bootstrap, stop, q, out, rate):
    """kafka-python producer, acks=all; writes the acked ids at the end."""
    from kafka import KafkaProducer
    rep = Report(q, "kp-acks-all")
    acked = []
    lock = threading.Lock()
    p = KafkaProducer(acks="all", linger_ms=5, **kp_conf(bootstrap))
    seq = [0]

    def on_ok(rid, sent_at, _md):
        with lock:
            acked.append(rid)
            rep.latency("produce_all", (time.monotonic() - sent_at) * 1000)
            rep.count("acked_all")

    def on_err(exc):
        with lock:
            rep.error(f"kafka-python acks=all delivery failed: {exc!r}")

    def step(n):
        for _ in range(n):
            rid = f"kp-{seq[0]}"
            seq[0] += 1
            fut = p.send(TOPIC_ALL, key=rid.encode(), value=value_of(rid))
            fut.add_callback(lambda md, rid=rid, t=time.monotonic(): on_ok(rid, t, md))
            fut.add_errback(on_err)
        with lock:
            rep.flush()

    paced(stop, rate, step)
    p.flush(CLIENT_TIMEOUT_S)
    p.close(CLIENT_TIMEOUT_S)
    with lock:
        rep.flush(force=True)
        Path(out, "acked-kp.txt").write_text("\n".join(acked) + "\n")


def ck_acks_1(bootstrap, stop, q, _out, rate):
    """confluent-kafka acks=1 into soak-loose and soak-groups (half each)."""
    rep = Report(q, "ck-acks-1")
    p = Producer(ck_conf(bootstrap, acks=1, **{"linger.ms": 5}))
    seq = [0]

    def delivered(err, msg):
        if err is not None:
            rep.error(f"acks=1 delivery failed: {err}")
            return
        rep.latency("produce_1", msg.latency() * 1000)
        rep.count("acked_1")

    def step(n):
        for _ in range(n):
            topic = TOPIC_LOOSE if seq[0] % 2 else TOPIC_GROUPS
            p.produce(topic, key=str(seq[0]).encode(), value=value_of(f"one-{seq[0]}"), on_delivery=delivered)
            seq[0] += 1
        p.poll(0)
        rep.flush()

    paced(stop, rate, step, p.poll)
    p.flush(CLIENT_TIMEOUT_S)
    rep.flush(force=True)


def kp_acks_0(bootstrap, stop, q, _out, rate):
    """kafka-python acks=0 into soak-loose: nothing is acknowledged, only counted as sent."""
    from kafka import KafkaProducer
    rep = Report(q, "kp-acks-0")
    p = KafkaProducer(acks=0, linger_ms=5, **kp_conf(bootstrap))
    seq = [0]

    def step(n):
        for _ in range(n):
            p.send(TOPIC_LOOSE, value=value_of(f"zero-{seq[0]}"))
            seq[0] += 1
        rep.count("sent_0", n)
        rep.flush()

    paced(stop, rate, step)
    p.flush(CLIENT_TIMEOUT_S)
    p.close(CLIENT_TIMEOUT_S)
    rep.flush(force=True)


def tail_consumer(bootstrap, stop, q, _out, _rate):
    """Reads soak-all as it is written; produce-to-consume latency from the send time."""
    rep = Report(q, "tail")
    c = Consumer(ck_conf(bootstrap, **{"group.id": "soak-tail", "auto.offset.reset": "earliest",
                                       "enable.auto.commit": True}))
    c.subscribe([TOPIC_ALL])
    while not stop.is_set():
        # poll, not consume(n, timeout): consume waits for the whole batch or the
        # timeout, which would be measured as latency.
        m = c.poll(0.5)
        now = time.time()
        if m is not None:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    rep.error(f"tail consumer: {m.error()}")
            else:
                _rid, sent = parse_value(m.value())
                rep.latency("consume", (now - sent) * 1000)
                rep.count("read_tail")
        rep.flush()
    c.close()
    rep.flush(force=True)


def historical_reader(bootstrap, stop, q, _out, _rate):
    """Every few seconds reads a few hundred records of soak-all from an earlier offset
    with a new kafka-python consumer, and checks the offsets have no gap."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    rep = Report(q, "historical")
    rnd = random.Random(7)
    while not stop.wait(HISTORICAL_EVERY_S):
        c = None
        try:
            c = KafkaConsumer(enable_auto_commit=False, consumer_timeout_ms=10_000, **kp_conf(bootstrap))
            tp = KTP(TOPIC_ALL, rnd.randrange(PARTITIONS))
            c.assign([tp])
            end = c.end_offsets([tp])[tp]
            if end <= 0:
                continue
            start = rnd.randrange(end)
            c.seek(tp, start)
            want = min(HISTORICAL_RECORDS, end - start)
            expected = start
            for m in c:
                if m.offset != expected:
                    rep.error(f"historical read of {tp} from {start}: offset {m.offset}, expected {expected}")
                    break
                expected += 1
                if expected - start >= want:
                    break
            got = expected - start
            rep.count("read_historical", got)
            if got < want:
                rep.error(f"historical read of {tp} from {start}: {got} of {want} records within 10 s")
        except Exception as e:  # noqa: BLE001 — a worker reports and carries on
            rep.error(f"historical reader: {e!r}")
        finally:
            if c is not None:
                c.close()
            rep.flush(force=True)


def _member(bootstrap, client, life_s, rep, stop):
    """One group member: joins soak-churn, consumes for life_s, leaves."""
    deadline = time.monotonic() + life_s
    n = 0
    if client == "ck":
        c = Consumer(ck_conf(bootstrap, **{"group.id": "soak-churn", "auto.offset.reset": "earliest",
                                           "session.timeout.ms": 10_000}))
        c.subscribe([TOPIC_GROUPS])
        while time.monotonic() < deadline and not stop.is_set():
            for m in c.consume(200, 0.5):
                if not m.error():
                    n += 1
        c.close()
    else:
        from kafka import KafkaConsumer
        c = KafkaConsumer(TOPIC_GROUPS, group_id="soak-churn", auto_offset_reset="earliest",
                          session_timeout_ms=10_000, heartbeat_interval_ms=1_000, **kp_conf(bootstrap))
        while time.monotonic() < deadline and not stop.is_set():
            for records in c.poll(500, max_records=200).values():
                n += len(records)
        c.close()
    return n


def group_churn(bootstrap, stop, q, _out, _rate):
    """Keeps GROUP_MEMBERS members in soak-churn, each living 20-90 s, clients alternating."""
    rep = Report(q, "group-churn")
    rnd = random.Random(11)
    lock = threading.Lock()
    members = []
    k = 0

    def run(client, life_s):
        try:
            n = _member(bootstrap, client, life_s, rep, stop)
            with lock:
                rep.count("read_group", n)
                rep.count("members_left")
        except Exception as e:  # noqa: BLE001
            with lock:
                rep.error(f"group member ({client}): {e!r}")

    while not stop.is_set():
        members = [t for t in members if t.is_alive()]
        while len(members) < GROUP_MEMBERS and not stop.is_set():
            t = threading.Thread(target=run, args=("ck" if k % 2 else "kp", rnd.uniform(*MEMBER_LIFE_S)))
            k += 1
            t.start()
            members.append(t)
            with lock:
                rep.count("members_joined")
            stop.wait(rnd.uniform(2, 8))  # staggered joins: one rebalance each
        with lock:
            rep.flush()
        stop.wait(1)
    for t in members:
        t.join(CLIENT_TIMEOUT_S)
    rep.flush(force=True)


def topic_churn(bootstrap, stop, q, _out, _rate):
    """Every 30 s: create a topic, write it (acks=all), read it all back, delete it."""
    rep = Report(q, "topic-churn")
    admin = AdminClient(ck_conf(bootstrap))
    n = 0
    while not stop.wait(TOPIC_CHURN_EVERY_S):
        name = f"soak-tmp-{n}"
        n += 1
        try:
            admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(CLIENT_TIMEOUT_S)
            p = Producer(ck_conf(bootstrap, acks="all"))
            for i in range(TOPIC_CHURN_RECORDS):
                p.produce(name, value=b"%d" % i, partition=i % PARTITIONS)
            left = p.flush(CLIENT_TIMEOUT_S)
            c = Consumer(ck_conf(bootstrap, **{"group.id": f"soak-tmp-reader-{n}", "enable.partition.eof": True}))
            c.assign([TopicPartition(name, i, 0) for i in range(PARTITIONS)])
            got, eofs = 0, 0
            deadline = time.monotonic() + CLIENT_TIMEOUT_S
            while eofs < PARTITIONS and time.monotonic() < deadline:
                for m in c.consume(500, 0.5):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            eofs += 1
                        else:
                            rep.error(f"topic churn read: {m.error()}")
                    else:
                        got += 1
            c.close()
            if left or got != TOPIC_CHURN_RECORDS:
                rep.error(f"{name}: {TOPIC_CHURN_RECORDS - left} acked, {got} read back")
            admin.delete_topics([name])[name].result(CLIENT_TIMEOUT_S)
            rep.count("topics_cycled")
        except Exception as e:  # noqa: BLE001
            rep.error(f"topic churn {name}: {e!r}")
        rep.flush(force=True)


def retention_and_compaction(bootstrap, stop, q, _out, rate):
    """acks=1 into the retention-limited topic (1 KiB values) and the compacted topic
    (COMPACT_KEYS keys), rate records/s each."""
    rep = Report(q, "retention-compact")
    p = Producer(ck_conf(bootstrap, acks=1, **{"linger.ms": 20}))
    seq = [0]

    def delivered(err, _msg):
        if err is not None:
            rep.error(f"retention/compact delivery failed: {err}")
        else:
            rep.count("acked_rc")

    pad = b"r" * RETENTION_VALUE_BYTES

    def step(n):
        for _ in range(n):
            p.produce(TOPIC_RETENTION, value=pad, on_delivery=delivered)
            p.produce(TOPIC_COMPACT, key=b"k%d" % (seq[0] % COMPACT_KEYS), value=b"v%d" % seq[0],
                      on_delivery=delivered)
            seq[0] += 1
        p.poll(0)
        rep.flush()

    paced(stop, rate, step, p.poll)
    p.flush(CLIENT_TIMEOUT_S)
    rep.flush(force=True)


def run_worker(fn, bootstrap, stop, q, out, rate):
    try:
        fn(bootstrap, stop, q, out, rate)
    except Exception:  # noqa: BLE001 — the sampler records it and the run fails
        q.put(("error", fn.__name__, traceback.format_exc()[-1500:]))
        q.put(("died", fn.__name__))


# --- the broker and the sampler -------------------------------------------------------

class Broker:
    def __init__(self, binary, tmp, smp):
        self.port, self.admin_port = free_port(), free_port()
        self.data = f"{tmp}/data"
        self.cmd = [binary, "serve", "--smp", str(smp),
                    "--override", f"log.dirs={self.data}",
                    "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "--override", f"admin.listener=127.0.0.1:{self.admin_port}",
                    "--override", "num.partitions=1",
                    "--override", "log.retention.check.interval.ms=10000",
                    "--override", "log.cleaner.backoff.ms=5000"]
        self.log_path = f"{tmp}/broker.log"
        self.log = open(self.log_path, "ab")
        self.proc = None
        self.bootstrap = f"127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "NO_COLOR": "1"})
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                md = AdminClient(ck_conf(self.bootstrap)).list_topics(timeout=2)
                if md.brokers:
                    return
            except Exception:  # noqa: BLE001 — not up yet
                time.sleep(0.2)
        sys.exit(f"the broker did not start; see {self.log_path}")

    def metrics(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=10) as r:
                return r.read().decode()
        except OSError:
            return None

    @staticmethod
    def connections(text):
        if text is None:
            return None
        return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                   if line.startswith("corelog_connections_active"))


def create_topics(bootstrap):
    admin = AdminClient(ck_conf(bootstrap))
    small = {"segment.bytes": str(SMALL_SEGMENT_BYTES)}
    topics = [
        NewTopic(TOPIC_ALL, PARTITIONS, 1),
        NewTopic(TOPIC_LOOSE, PARTITIONS, 1),
        NewTopic(TOPIC_GROUPS, GROUP_PARTITIONS, 1),
        NewTopic(TOPIC_RETENTION, 1, 1, config={**small, "retention.ms": str(RETENTION_MS)}),
        NewTopic(TOPIC_COMPACT, 1, 1, config={**small, "cleanup.policy": "compact",
                                              "min.cleanable.dirty.ratio": "0.1",
                                              "segment.ms": "60000"}),
    ]
    for name, f in admin.create_topics(topics).items():
        f.result(CLIENT_TIMEOUT_S)


def earliest_offset(bootstrap, topic):
    c = Consumer(ck_conf(bootstrap, **{"group.id": "soak-probe"}))
    try:
        low, _high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return low
    except Exception:  # noqa: BLE001
        return None
    finally:
        c.close()


def check_exactly_once(bootstrap, out):
    """Every id acked to an acks=all producer is in soak-all exactly once."""
    acked = []
    for name in ("acked-ck.txt", "acked-kp.txt"):
        path = Path(out, name)
        if path.exists():
            acked += [line for line in path.read_text().splitlines() if line]
    c = Consumer(ck_conf(bootstrap, **{"group.id": "soak-checker", "enable.partition.eof": True,
                                       "enable.auto.commit": False}))
    ends = {}
    for p in range(PARTITIONS):
        _low, high = c.get_watermark_offsets(TopicPartition(TOPIC_ALL, p), timeout=CLIENT_TIMEOUT_S)
        ends[p] = high
    c.assign([TopicPartition(TOPIC_ALL, p, 0) for p in range(PARTITIONS)])
    seen = {}
    done = {p for p, end in ends.items() if end == 0}
    deadline = time.monotonic() + 600
    while len(done) < PARTITIONS and time.monotonic() < deadline:
        for m in c.consume(5000, 1.0):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    done.add(m.partition())
                continue
            rid, _sent = parse_value(m.value())
            seen[rid] = seen.get(rid, 0) + 1
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
    c.close()
    missing = [r for r in acked if r not in seen]
    dup = [r for r in acked if seen.get(r, 0) > 1]
    unacked_present = len(set(seen) - set(acked))
    return {"acked": len(acked), "acked_distinct": len(set(acked)), "read": sum(seen.values()),
            "missing": len(missing), "duplicated": len(dup), "read_but_not_acked": unacked_present,
            "missing_sample": missing[:10], "duplicated_sample": dup[:10],
            "read_to_end": len(done) == PARTITIONS, "ok": not missing and not dup and len(done) == PARTITIONS}


def flatness(rows, minutes, warmup_minutes=None):
    """Growth of RSS and descriptors over the warm part of the run (least-squares slope
    times the warm length, and last minus first of the warm samples)."""
    warm_s = min(WARMUP_MAX_S, minutes * 60 * WARMUP_FRACTION) if warmup_minutes is None else warmup_minutes * 60
    warm = [r for r in rows if r["t_s"] >= warm_s]
    out = {"warm_from_s": round(warm_s)}
    if len(warm) < 3:
        out["verdict"] = "too short to judge"
        return out
    for key, bound in (("rss_mb", FLAT_RSS_MB), ("fds", FLAT_FDS)):
        xs = [r["t_s"] for r in warm]
        ys = [r[key] for r in warm]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        growth = slope * (xs[-1] - xs[0])
        out[key] = {"min": min(ys), "max": max(ys), "first": ys[0], "last": ys[-1],
                    "trend_over_warm": round(growth, 1), "per_hour": round(slope * 3600, 1),
                    "flat": abs(growth) <= bound}
    out["verdict"] = "flat" if out["rss_mb"]["flat"] and out["fds"]["flat"] else "GROWING"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--bin", default="target/release/corelog")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--interval", type=float, default=60, help="seconds between samples")
    ap.add_argument("--out", default=None, help="output dir (default target/soak/<UTC time>)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every producer's rate")
    ap.add_argument("--warmup-minutes", type=float, default=None,
                    help="judge RSS and fds flat after this (default: a quarter of the run, at most 10 min); "
                         "the batch cache fills for a while: 8 MiB per partition at most")
    args = ap.parse_args()
    out = Path(args.out or f"target/soak/{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="corelog-soak-")
    broker = Broker(args.bin, tmp, args.smp)
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    q = ctx.Queue()
    s = args.scale
    workers = [(ck_acks_all, 200 * s), (kp_acks_all, 50 * s), (ck_acks_1, 120 * s), (kp_acks_0, 50 * s),
               (tail_consumer, 0), (historical_reader, 0), (group_churn, 0), (topic_churn, 0),
               (retention_and_compaction, 50 * s)]
    procs = []
    rows, errors, died = [], [], []
    totals = {}
    failed = False
    try:
        broker.start()
        create_topics(broker.bootstrap)
        for fn, rate in workers:
            p = ctx.Process(target=run_worker, args=(fn, broker.bootstrap, stop, q, str(out), rate),
                            name=fn.__name__, daemon=True)
            p.start()
            procs.append(p)
        started = time.monotonic()
        end_at = started + args.minutes * 60
        log_pos = 0
        last_cpu = proc_cpu_s(broker.proc.pid)
        last_clients = sum(proc_cpu_s(p.pid) for p in procs)
        last_t = started
        csv = open(out / "soak.csv", "w")
        lat = {}
        interval_counts = {}
        next_sample = started + args.interval
        while True:
            now = time.monotonic()
            if broker.proc.poll() is not None:
                errors.append(("broker", f"the broker exited with {broker.proc.returncode}"))
                failed = True
                break
            try:
                msg = q.get(timeout=max(0.05, min(1.0, next_sample - now)))
                if msg[0] == "batch":
                    for kind, vals in msg[2].items():
                        lat.setdefault(kind, []).extend(vals)
                    for kind, n in msg[3].items():
                        interval_counts[kind] = interval_counts.get(kind, 0) + n
                elif msg[0] == "error":
                    errors.append((msg[1], msg[2]))
                    print(f"error from {msg[1]}: {msg[2]}", file=sys.stderr, flush=True)
                elif msg[0] == "died":
                    died.append(msg[1])
            except queue.Empty:
                pass
            now = time.monotonic()
            if now < next_sample:
                continue
            cpu = proc_cpu_s(broker.proc.pid)
            clients = sum(proc_cpu_s(p.pid) for p in procs)
            with open(broker.log_path, "rb") as f:
                f.seek(log_pos)
                chunk = f.read()
                log_pos += len(chunk)
            for kind, n in interval_counts.items():
                totals[kind] = totals.get(kind, 0) + n
            metrics_text = broker.metrics()
            rss_mb = proc_rss_mb(broker.proc.pid)
            row = {"t_s": round(now - started), "rss_mb": round(rss_mb, 1),
                   "fds": len(os.listdir(f"/proc/{broker.proc.pid}/fd")),
                   "connections": broker.connections(metrics_text),
                   "broker_cpu_pct": round((cpu - last_cpu) / (now - last_t) * 100, 1),
                   "clients_cpu_pct": round((clients - last_clients) / (now - last_t) * 100, 1),
                   "load1": round(os.getloadavg()[0], 2), "disk_mb": round(disk_mb(broker.data), 1),
                   "retention_start": earliest_offset(broker.bootstrap, TOPIC_RETENTION),
                   "cleaner_passes": chunk.count(b"cleaned log") + chunk.count(b"cleaner pass rewrote nothing")}
            for kind in ("produce_all", "produce_1", "consume"):
                vals = sorted(lat.get(kind, []))
                for p in (50, 99, 99.9):
                    row[f"{kind}_p{p:g}_ms".replace(".", "")] = percentile(vals, p)
            for kind in ("acked_all", "read_tail", "acked_1", "sent_0", "read_historical", "read_group",
                         "members_joined", "topics_cycled", "acked_rc", "errors"):
                row[kind] = interval_counts.get(kind, 0)
            row.update(soak_memory.row_fields(metrics_text, rss_mb))
            if not rows:
                csv.write(",".join(row) + "\n")
            csv.write(",".join("" if v is None else str(v) for v in row.values()) + "\n")
            csv.flush()
            rows.append(row)
            print(json.dumps(row), flush=True)
            lat, interval_counts = {}, {}
            last_cpu, last_clients, last_t = cpu, clients, now
            next_sample += args.interval
            if now >= end_at:
                break
        csv.close()
        stop.set()
        for p in procs:
            p.join(CLIENT_TIMEOUT_S * 3)
            if p.is_alive():
                errors.append((p.name, "did not stop in time"))
                p.kill()
        while True:  # the workers' last words
            try:
                msg = q.get_nowait()
            except queue.Empty:
                break
            if msg[0] == "error":
                errors.append((msg[1], msg[2]))
            elif msg[0] == "died":
                died.append(msg[1])
            elif msg[0] == "batch":
                for kind, n in msg[3].items():
                    totals[kind] = totals.get(kind, 0) + n
        check = check_exactly_once(broker.bootstrap, out) if broker.proc.poll() is None else {"ok": False}
        summary = {"minutes": args.minutes, "smp": args.smp, "scale": args.scale, "rows": rows,
                   "totals": totals, "checker": check, "flatness": flatness(rows, args.minutes, args.warmup_minutes),
                   "memory": soak_memory.verdict(rows),
                   "errors": errors[:200], "error_count": len(errors), "workers_died": died}
        (out / "soak.json").write_text(json.dumps(summary, indent=1) + "\n")
        soak_plot.write_svg(rows, out / "soak.svg", title=f"corelog soak, {args.minutes:g} min, --smp {args.smp}")
        failed = failed or not check["ok"] or bool(died)
        print(json.dumps({"checker": check, "flatness": summary["flatness"], "memory": summary["memory"],
                          "totals": totals,
                          "errors": len(errors), "workers_died": died}, indent=1), flush=True)
        print(f"results in {out}/ (soak.csv, soak.json, soak.svg)", flush=True)
    finally:
        stop.set()
        for p in procs:
            if p.is_alive():
                p.kill()
        if broker.proc is not None and broker.proc.poll() is None:
            broker.proc.send_signal(signal.SIGTERM)
            try:
                broker.proc.wait(60)
            except subprocess.TimeoutExpired:
                broker.proc.kill()
                broker.proc.wait(30)
        broker.log.close()
        if broker.proc is not None and (failed or errors):
            shutil.copy(broker.log_path, out / "broker.log")
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if failed else 0)


def rejudge(path, warmup_minutes):
    """Re-judges a finished run's flatness with another warm-up (soak.json is rewritten)."""
    summary = json.loads(Path(path).read_text())
    summary["flatness"] = flatness(summary["rows"], summary["minutes"], warmup_minutes)
    summary["memory"] = soak_memory.verdict(summary["rows"])
    Path(path).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({"flatness": summary["flatness"], "memory": summary["memory"]}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "rejudge":
        rejudge(sys.argv[2], float(sys.argv[3]))
    else:
        main()
