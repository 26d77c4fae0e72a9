#!/usr/bin/env python3
"""Scale limits of one broker, measured (issue 15, item 4).

    .venv/bin/python scripts/scale_limits.py [--bin target/release/corelog] [--smp 2]
        [--partitions 10000] [--connections 10000] [--records-per-partition 10]
        [--group-members 500] [--member-processes 5] [--only partitions,connections,group,records]

Starts one broker on a temporary data dir (deleted at the end) and measures:
- partitions: RSS and open descriptors before and after creating --partitions
  partitions (topics of 100 partitions each, so one CreateTopics per 100), with
  --records-per-partition small records in each; the time of a Metadata request for
  every topic and of one Fetch touching 1,000 partitions; then the time from a clean
  stop (SIGTERM) and from kill -9 to the broker answering again (start-up and crash
  recovery) and the RSS after each;
- connections: --connections idle TCP connections opened as fast as the broker accepts
  them (accept rate), the broker's RSS and descriptors with them open, so memory per
  idle connection;
- group: --group-members confluent-kafka consumers (classic protocol, in
  --member-processes processes) join one group on a topic of as many partitions, with
  `group.max.size` set to --group-members: the time until every member has its
  assignment (join), the broker's RSS growth (coordinator memory), one member more
  (refused with GROUP_MAX_SIZE_REACHED), then one member leaving and the time until
  every other member has its new assignment (rebalance);
- records: a record batch of exactly `message.max.bytes` (Kafka's default, 1 MiB +
  overhead) produced and fetched back, one byte more refused with MESSAGE_TOO_LARGE; a
  Produce request of exactly `socket.request.max.bytes` (100 MiB, with
  `message.max.bytes` raised to match) served and fetched back, one byte more closing
  the connection; time and RSS for each.
Prints a JSON line per figure and a table. Loopback only; bounded by its own timeouts.
The machine's `ulimit -n` must allow --connections plus the broker's files.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import multiprocessing as mp
import queue

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))
import kwire  # noqa: E402

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

PARTITIONS_PER_TOPIC = 100
READY_TIMEOUT_S = 600
API_METADATA = 3
API_FETCH = 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def disk_mb(path):
    """Blocks allocated under path (preallocated and sparse files counted as allocated)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return round(total / 2**20, 1)


def stats(pid, data=None):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    out = {"rss_mb": round(rss / 2**20, 1), "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    if data is not None:
        out["disk_mb"] = disk_mb(data)
    return out


class Broker:
    def __init__(self, binary, tmp, smp, overrides=()):
        self.port, self.admin_port = free_port(), free_port()
        self.cmd = [binary, "serve", "--smp", str(smp), "--override", f"log.dirs={tmp}/data",
                    "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "--override", f"admin.listener=127.0.0.1:{self.admin_port}",
                    "--override", "num.partitions=1"]
        for o in overrides:
            self.cmd += ["--override", o]
        self.log = open(f"{tmp}/broker.log", "ab")
        self.proc = None
        self.bootstrap = f"127.0.0.1:{self.port}"

    def start(self):
        started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "NO_COLOR": "1"})
        deadline = started + READY_TIMEOUT_S
        while True:
            try:
                with kwire.Conn(self.port, timeout_s=5) as c:
                    kwire.api_versions(c)
                return time.monotonic() - started
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    sys.exit("the broker did not start; see broker.log")
                time.sleep(0.05)

    def stop(self, sig):
        self.proc.send_signal(sig)
        self.proc.wait(120)


def metadata_all_topics_s(port):
    """Seconds for a Metadata v4 request naming no topics (null = all topics)."""
    with kwire.Conn(port, timeout_s=120) as c:
        started = time.monotonic()
        body = c.request(API_METADATA, 4, kwire.int32(-1) + kwire.int8(0), timeout_s=120)
        return time.monotonic() - started, len(body)


def fetch_many_s(port, topics, partitions_each):
    """Seconds for one Fetch v4 of offset 0 of partitions_each partitions of each topic."""
    def topic(name):
        parts = [kwire.int32(p) + kwire.int64(0) + kwire.int32(1 << 10) for p in range(partitions_each)]
        return kwire.string(name) + kwire.array(parts)
    body = (kwire.int32(-1) + kwire.int32(0) + kwire.int32(1) + kwire.int32(50 << 20) + kwire.int8(0)
            + kwire.array([topic(t) for t in topics]))
    with kwire.Conn(port, timeout_s=120) as c:
        started = time.monotonic()
        resp = c.request(API_FETCH, 4, body, timeout_s=120)
        return time.monotonic() - started, len(resp)


# --- a group of many members -----------------------------------------------------------

def member_process(bootstrap, group, topic, count, first, events, commands):
    """count confluent-kafka consumers in one process, polled in turn; reports each
    assignment as ("assigned", member index, partitions, time) and each refusal as
    ("refused", index, code name). Commands: ("close", index), ("add", index), "stop"."""
    consumers = {}

    def add(i):
        c = Consumer({"bootstrap.servers": bootstrap, "broker.address.family": "v4", "group.id": group,
                      "session.timeout.ms": 30_000, "heartbeat.interval.ms": 3_000,
                      "max.poll.interval.ms": 300_000, "enable.auto.commit": False,
                      "partition.assignment.strategy": "range",
                      "error_cb": lambda e, i=i: events.put(("refused", i, e.name()))
                      if e.code() == KafkaError.GROUP_MAX_SIZE_REACHED else None})
        c.subscribe([topic], on_assign=lambda _c, parts, i=i: events.put(("assigned", i, len(parts), time.time())))
        consumers[i] = c

    for i in range(first, first + count):
        add(i)
    while True:
        try:
            cmd = commands.get_nowait()
        except queue.Empty:
            cmd = None
        if cmd == "stop":
            break
        if cmd and cmd[0] == "close":
            consumers.pop(cmd[1]).close()
        elif cmd and cmd[0] == "add":
            add(cmd[1])
        for i, c in list(consumers.items()):
            m = c.poll(0)
            if m is not None and m.error() and m.error().code() == KafkaError.GROUP_MAX_SIZE_REACHED:
                events.put(("refused", i, m.error().name()))
        time.sleep(0.02)
    for c in consumers.values():
        c.close()


def measure_group(args, tmp, row):
    n = args.group_members
    os.makedirs(f"{tmp}/group")
    broker = Broker(args.bin, f"{tmp}/group", args.smp, [f"group.max.size={n}"])
    procs = []
    try:
        broker.start()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
        topic = "scale-group"
        admin.create_topics([NewTopic(topic, n, 1)])[topic].result(120)
        # __consumer_offsets exists before the clock starts.
        admin.list_consumer_groups().result(60)
        before = stats(broker.proc.pid)
        ctx = mp.get_context("spawn")
        events = ctx.Queue()
        per = -(-n // args.member_processes)
        started = time.time()
        for k in range(args.member_processes):
            first = k * per
            count = min(per, n - first)
            if count <= 0:
                break
            cmds = ctx.Queue()
            pr = ctx.Process(target=member_process,
                             args=(broker.bootstrap, "scale-group", topic, count, first, events, cmds), daemon=True)
            pr.start()
            procs.append((pr, cmds, range(first, first + count)))
        latest = {}

        def wait_all_assigned(members, since, timeout_s, what):
            """Until every member in members had an assignment after since and the total
            is every partition."""
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:
                    ev = events.get(timeout=1)
                except queue.Empty:
                    continue
                if ev[0] == "assigned":
                    latest[ev[1]] = (ev[2], ev[3])
                elif ev[0] == "refused":
                    latest.setdefault("refused", []).append(ev)
                fresh = [latest.get(m) for m in members]
                if all(f is not None and f[1] >= since for f in fresh) and sum(f[0] for f in fresh) == n:
                    return max(f[1] for f in fresh) - since
            sys.exit(f"{what}: not every member assigned within {timeout_s} s "
                     f"({sum(1 for m in members if latest.get(m, (0, 0))[1] >= since)} of {len(members)})")

        took = wait_all_assigned(range(n), started, 600, "join")
        time.sleep(2)
        after = stats(broker.proc.pid)
        row(f"group of {n} members: join (all assigned)", seconds=round(took, 2), **after,
            kib_per_member=round((after["rss_mb"] - before["rss_mb"]) * 1024 / n, 1))
        # One more member: refused while the group is full.
        pr, cmds, _ = procs[-1]
        cmds.put(("add", n))
        deadline = time.monotonic() + 60
        refused = None
        while refused is None and time.monotonic() < deadline:
            try:
                ev = events.get(timeout=1)
            except queue.Empty:
                continue
            if ev[0] == "refused" and ev[1] == n:
                refused = ev[2]
            elif ev[0] == "assigned":
                latest[ev[1]] = (ev[2], ev[3])
        row(f"member {n + 1} of a group at group.max.size={n}", seconds=0, refused_with=refused)
        cmds.put(("close", n))
        # One member leaves: every other member is reassigned (eager protocol).
        time.sleep(2)
        _, cmds0, members0 = procs[0]
        leaving = members0[0]
        since = time.time()
        cmds0.put(("close", leaving))
        rest = [m for m in range(n) if m != leaving]
        took = wait_all_assigned(rest, since, 600, "rebalance")
        row(f"group of {n} members: one leaves, all others reassigned", seconds=round(took, 2),
            **stats(broker.proc.pid))
    finally:
        for pr, cmds, _ in procs:
            cmds.put("stop")
        for pr, _, _ in procs:
            pr.join(60)
            if pr.is_alive():
                pr.kill()
        if broker.proc is not None and broker.proc.poll() is None:
            broker.proc.kill()
            broker.proc.wait(30)


# --- records at message.max.bytes, requests at socket.request.max.bytes ---------------

PRODUCE_VERSION = 7
MESSAGE_MAX_BYTES_DEFAULT = 1_048_588
SOCKET_REQUEST_MAX_BYTES_DEFAULT = 104_857_600


def batch_of_size(size):
    """One uncompressed one-record batch of exactly size bytes (log overhead included)."""
    value_len = size - 100
    for _ in range(8):
        b = kwire.record_batch([(b"k", b"v" * value_len, [], 0)], base_timestamp_ms=int(time.time() * 1000))
        if len(b) == size:
            return b
        value_len += size - len(b)
    raise AssertionError(f"no batch of exactly {size} bytes")


def produce_frame(topic, frame_bytes):
    """A Produce v7 request whose frame (after the length prefix) is exactly frame_bytes."""
    overhead = len(kwire.request_frame(kwire.API_PRODUCE, PRODUCE_VERSION, 1,
                                       kwire.produce_request_body(topic, 0, b""))) - 4
    return kwire.request_frame(kwire.API_PRODUCE, PRODUCE_VERSION, 1,
                               kwire.produce_request_body(topic, 0, batch_of_size(frame_bytes - overhead)))


def measure_records(args, tmp, row):
    os.makedirs(f"{tmp}/records")
    kwire.RESPONSE_FRAME_MAX_BYTES = 256 << 20  # the 100 MiB batch comes back in one Fetch
    # message.max.bytes as large as a request, so that the frame is the bound met.
    broker = Broker(args.bin, f"{tmp}/records", args.smp,
                    [f"message.max.bytes={SOCKET_REQUEST_MAX_BYTES_DEFAULT}"])
    try:
        broker.start()
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
        fs = admin.create_topics([NewTopic("scale-max-record", 1, 1,
                                           config={"max.message.bytes": str(MESSAGE_MAX_BYTES_DEFAULT)}),
                                  NewTopic("scale-max-request", 1, 1)])
        for f in fs.values():
            f.result(60)
        with kwire.Conn(broker.port, timeout_s=120) as c:
            at_max = batch_of_size(MESSAGE_MAX_BYTES_DEFAULT)
            started = time.monotonic()
            n = 100
            for _ in range(n):
                code, _ = kwire.produce(c, PRODUCE_VERSION, "scale-max-record", 0, at_max, timeout_s=60)
                assert code == 0, code
            took = time.monotonic() - started
            row(f"{n} batches of exactly message.max.bytes ({MESSAGE_MAX_BYTES_DEFAULT}), acks=all",
                seconds=round(took, 2), mb_per_s=round(n * len(at_max) / 2**20 / took, 1), **stats(broker.proc.pid))
            code, _ = kwire.produce(c, PRODUCE_VERSION, "scale-max-record", 0,
                                    batch_of_size(MESSAGE_MAX_BYTES_DEFAULT + 1))
            row("one byte over message.max.bytes", seconds=0, error_code=code)
        cons = Consumer({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4",
                         "group.id": "scale-reader"})
        cons.assign([TopicPartition("scale-max-record", 0, 0)])
        started = time.monotonic()
        got = 0
        while got < n and time.monotonic() - started < 120:
            m = cons.poll(1)
            if m is not None and not m.error():
                got += 1
        took = time.monotonic() - started
        cons.close()
        row(f"consume the {n} records (default consumer)", seconds=round(took, 2), records=got,
            **stats(broker.proc.pid))
        frame = produce_frame("scale-max-request", SOCKET_REQUEST_MAX_BYTES_DEFAULT)
        with kwire.Conn(broker.port, timeout_s=300) as c:
            started = time.monotonic()
            c.send(frame)
            _cid, body = c.recv_frame(300)
            took = time.monotonic() - started
        code = kwire.parse_produce_response(PRODUCE_VERSION, body)[("scale-max-request", 0)][0]
        row("one Produce of exactly socket.request.max.bytes (100 MiB)", seconds=round(took, 2), error_code=code,
            **stats(broker.proc.pid))
        del frame
        with kwire.Conn(broker.port, timeout_s=300) as c:
            started = time.monotonic()
            body = c.request(kwire.API_FETCH, 4,
                             kwire.int32(-1) + kwire.int32(0) + kwire.int32(1) + kwire.int32(200 << 20)
                             + kwire.int8(0) + kwire.array([kwire.string("scale-max-request") + kwire.array(
                                 [kwire.int32(0) + kwire.int64(0) + kwire.int32(200 << 20)])]), timeout_s=300)
            took = time.monotonic() - started
        row("Fetch of it back (one 100 MiB batch)", seconds=round(took, 2), response_bytes=len(body),
            **stats(broker.proc.pid))
        over = produce_frame("scale-max-request", SOCKET_REQUEST_MAX_BYTES_DEFAULT + 1)
        with kwire.Conn(broker.port, timeout_s=60) as c:
            try:
                c.sock.sendall(over[:1 << 20])
            except (BrokenPipeError, ConnectionResetError):
                pass
            closed = c.wait_closed(10)
        row("one byte over socket.request.max.bytes", seconds=0, connection_closed=closed)
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            broker.proc.kill()
            broker.proc.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/corelog")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=10_000)
    ap.add_argument("--records-per-partition", type=int, default=10)
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--group-members", type=int, default=500)
    ap.add_argument("--member-processes", type=int, default=5)
    ap.add_argument("--only", default="partitions,connections,group,records",
                    help="comma-separated parts to run")
    args = ap.parse_args()
    only = set(args.only.split(","))
    tmp = tempfile.mkdtemp(prefix="corelog-scale-")
    rows = []

    def row(name, **figures):
        r = {"figure": name, **figures}
        rows.append(r)
        print(json.dumps(r), flush=True)

    try:
        if only & {"partitions", "connections"}:
            measure_partitions_and_connections(args, only, tmp, row)
        if "group" in only:
            measure_group(args, tmp, row)
        if "records" in only:
            measure_records(args, tmp, row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| figure | time | RSS MB | fds | disk MB | other |")
    print("|---|---|---|---|---|---|")
    shown = {"figure", "seconds", "ms", "rss_mb", "fds", "disk_mb"}
    for r in rows:
        t = f"{r['seconds']} s" if "seconds" in r else f"{r['ms']} ms"
        other = ", ".join(f"{k} {v}" for k, v in r.items() if k not in shown)
        print(f"| {r['figure']} | {t} | {r.get('rss_mb', '')} | {r.get('fds', '')} | {r.get('disk_mb', '')} | {other} |")


def measure_partitions_and_connections(args, only, tmp, row):
    broker = Broker(args.bin, tmp, args.smp)
    try:
        row("start, empty", seconds=round(broker.start(), 2), **stats(broker.proc.pid))
        if "partitions" in only:
            measure_partitions(args, broker, tmp, row)
        if "connections" in only:
            measure_connections(args, broker, row)
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            broker.proc.kill()
            broker.proc.wait(30)


def measure_partitions(args, broker, tmp, row):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
    topics = [f"scale-{i:05d}" for i in range(args.partitions // PARTITIONS_PER_TOPIC)]
    started = time.monotonic()
    for i in range(0, len(topics), 10):
        fs = admin.create_topics([NewTopic(t, PARTITIONS_PER_TOPIC, 1) for t in topics[i:i + 10]],
                                 operation_timeout=120)
        for f in fs.values():
            f.result(180)
    row(f"create {len(topics) * PARTITIONS_PER_TOPIC} partitions",
        seconds=round(time.monotonic() - started, 2), **stats(broker.proc.pid))
    p = Producer({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4", "linger.ms": 50,
                  "acks": 1, "queue.buffering.max.messages": 1_000_000})
    started = time.monotonic()
    for t in topics:
        for part in range(PARTITIONS_PER_TOPIC):
            for r in range(args.records_per_partition):
                while True:
                    try:
                        p.produce(t, value=b"v%d" % r, partition=part)
                        break
                    except BufferError:
                        p.poll(0.05)
        p.poll(0)
    left = p.flush(300)
    time.sleep(2)  # background zero-ahead writes
    row(f"produce {args.records_per_partition} records to each partition",
        seconds=round(time.monotonic() - started, 2), undelivered=left, **stats(broker.proc.pid, f"{tmp}/data"))
    took, size = metadata_all_topics_s(broker.port)
    row("Metadata of every topic", ms=round(took * 1000, 1), response_bytes=size)
    took, size = fetch_many_s(broker.port, topics[:10], PARTITIONS_PER_TOPIC)
    row("Fetch of 1,000 partitions", ms=round(took * 1000, 1), response_bytes=size)
    broker.stop(signal.SIGTERM)
    row("restart after SIGTERM", seconds=round(broker.start(), 2), **stats(broker.proc.pid))
    broker.stop(signal.SIGKILL)
    row("restart after kill -9 (recovery)", seconds=round(broker.start(), 2), **stats(broker.proc.pid))


def measure_connections(args, broker, row):
    before = stats(broker.proc.pid)
    socks = []
    started = time.monotonic()
    try:
        for _ in range(args.connections):
            s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
            socks.append(s)
        # Every connection accepted and served: one ApiVersions on the last one.
        with kwire.Conn(broker.port) as c:
            kwire.api_versions(c)
        took = time.monotonic() - started
        time.sleep(1)
        after = stats(broker.proc.pid)
        row(f"{len(socks)} idle connections", seconds=round(took, 2),
            accepts_per_s=round(len(socks) / took), **after,
            kib_per_connection=round((after["rss_mb"] - before["rss_mb"]) * 1024 / len(socks), 2))
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    main()
