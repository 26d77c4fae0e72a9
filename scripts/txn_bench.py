#!/usr/bin/env python3
"""Transactional vs idempotent produce throughput, and commit latency, against a running
broker (confluent-kafka / librdkafka). A "batch" is RECORDS_PER_BATCH records of
VALUE_BYTES to one partition (librdkafka builds one record batch of them: batch.num.messages);
a transaction of k batches produces k such batches, then commits.

Usage: txn_bench.py BOOTSTRAP [--seconds S] [--broker-pid PID]   (the topic is created if missing)
Prints one line per mode: records/s, MB/s, for transactions commit p50/p99 in ms (the
commit call, which first flushes what the transaction still has queued), and with
--broker-pid the broker's CPU seconds (user+system, /proc/PID/stat) per GB of values.
"""

import argparse
import os
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

RECORDS_PER_BATCH = 100
VALUE_BYTES = 100
PARTITIONS = 4


def make_producer(bootstrap, extra):
    return Producer({"bootstrap.servers": bootstrap, "broker.address.family": "v4", "acks": "all",
                     "linger.ms": 5, "batch.num.messages": RECORDS_PER_BATCH,
                     "queue.buffering.max.messages": 1_000_000, **extra})


def produce_batches(p, topic, batches, value, partition_of):
    for b in range(batches):
        part = partition_of(b)
        for _ in range(RECORDS_PER_BATCH):
            while True:
                try:
                    p.produce(topic, value=value, partition=part)
                    break
                except BufferError:
                    p.poll(0.01)
        p.poll(0)


def run_idempotent(bootstrap, topic, seconds, value):
    p = make_producer(bootstrap, {"enable.idempotence": True})
    records, started, n = 0, time.monotonic(), 0
    while time.monotonic() - started < seconds:
        produce_batches(p, topic, 10, value, lambda b: (n + b) % PARTITIONS)
        n += 10
        records += 10 * RECORDS_PER_BATCH
    p.flush(60)
    return records, time.monotonic() - started, []


def run_transactional(bootstrap, topic, seconds, value, batches_per_txn):
    p = make_producer(bootstrap, {"transactional.id": f"bench-{uuid.uuid4().hex[:8]}"})
    p.init_transactions(30)
    records, commits, started, n = 0, [], time.monotonic(), 0
    while time.monotonic() - started < seconds:
        p.begin_transaction()
        produce_batches(p, topic, batches_per_txn, value, lambda b: (n + b) % PARTITIONS)
        n += batches_per_txn
        t0 = time.monotonic()
        p.commit_transaction(60)
        commits.append(time.monotonic() - t0)
        records += batches_per_txn * RECORDS_PER_BATCH
    return records, time.monotonic() - started, commits


def cpu_seconds(pid):
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--topic", default="txn-bench")
    ap.add_argument("--broker-pid", type=int)
    args = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": args.bootstrap, "broker.address.family": "v4"})
    for f in admin.create_topics([NewTopic(args.topic, PARTITIONS, 1)]).values():
        try:
            f.result(15)
        except Exception:
            pass
    value = b"x" * VALUE_BYTES
    modes = [("idempotent", lambda: run_idempotent(args.bootstrap, args.topic, args.seconds, value))]
    for k in (1, 10, 100):
        modes.append((f"txn of {k} batches",
                      lambda k=k: run_transactional(args.bootstrap, args.topic, args.seconds, value, k)))
    for name, fn in modes:
        cpu_before = cpu_seconds(args.broker_pid)
        records, elapsed, commits = fn()
        cpu = cpu_seconds(args.broker_pid) - cpu_before
        line = (f"{name:22} {records / elapsed:10.0f} records/s "
                f"{records * VALUE_BYTES / elapsed / 1e6:7.2f} MB/s")
        if args.broker_pid:
            line += f"  broker {cpu / (records * VALUE_BYTES / 1e9):6.1f} CPU s/GB"
        if commits:
            line += (f"  {len(commits)} commits, commit p50 {pct(commits, 0.5):.2f} ms"
                     f" p99 {pct(commits, 0.99):.2f} ms")
        print(line, flush=True)


if __name__ == "__main__":
    main()
