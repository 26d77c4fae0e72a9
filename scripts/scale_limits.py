#!/usr/bin/env python3
"""Scale limits of one broker, measured (issue 15, item 4).

    .venv/bin/python scripts/scale_limits.py [--bin target/release/corelog] [--smp 2]
        [--partitions 10000] [--connections 10000] [--records-per-partition 10]

Starts one broker on a temporary data dir (deleted at the end) and measures:
- partitions: RSS and open descriptors before and after creating --partitions
  partitions (topics of 100 partitions each, so one CreateTopics per 100), with
  --records-per-partition small records in each; the time of a Metadata request for
  every topic and of one Fetch touching 1,000 partitions; then the time from a clean
  stop (SIGTERM) and from kill -9 to the broker answering again (start-up and crash
  recovery) and the RSS after each;
- connections: --connections idle TCP connections opened as fast as the broker accepts
  them (accept rate), the broker's RSS and descriptors with them open, so memory per
  idle connection.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))
import kwire  # noqa: E402

from confluent_kafka import Producer  # noqa: E402
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
    def __init__(self, binary, tmp, smp):
        self.port, self.admin_port = free_port(), free_port()
        self.cmd = [binary, "serve", "--smp", str(smp), "--override", f"log.dirs={tmp}/data",
                    "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "--override", f"admin.listener=127.0.0.1:{self.admin_port}",
                    "--override", "num.partitions=1"]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/corelog")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=10_000)
    ap.add_argument("--records-per-partition", type=int, default=10)
    ap.add_argument("--connections", type=int, default=10_000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="corelog-scale-")
    broker = Broker(args.bin, tmp, args.smp)
    rows = []

    def row(name, **figures):
        r = {"figure": name, **figures}
        rows.append(r)
        print(json.dumps(r), flush=True)

    try:
        row("start, empty", seconds=round(broker.start(), 2), **stats(broker.proc.pid))
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
    finally:
        if broker.proc is not None and broker.proc.poll() is None:
            broker.proc.kill()
            broker.proc.wait(30)
        shutil.rmtree(f"{tmp}/data", ignore_errors=True)
        print(f"broker log: {tmp}/broker.log", flush=True)
    print("| figure | time | RSS MB | fds | disk MB |")
    print("|---|---|---|---|---|")
    for r in rows:
        t = f"{r['seconds']} s" if "seconds" in r else f"{r['ms']} ms"
        print(f"| {r['figure']} | {t} | {r.get('rss_mb', '')} | {r.get('fds', '')} | {r.get('disk_mb', '')} |")


if __name__ == "__main__":
    main()
