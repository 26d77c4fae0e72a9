#!/usr/bin/env python3
"""Transactional vs idempotent produce throughput, and commit latency, against a running
broker (confluent-kafka / librdkafka). A "batch" is RECORDS_PER_BATCH records of
VALUE_BYTES to one partition (librdkafka builds one record batch of them: batch.num.messages);
a transaction of k batches produces k such batches, then commits.

Usage: txn_bench.py BOOTSTRAP [--seconds S] [--broker-pid PID]   (the topic is created if missing)
Prints one line per mode: records/s, MB/s, for transactions commit p50/p99 in ms (the
commit call, which first flushes what the transaction still has queued), and with
--broker-pid the broker's CPU seconds (user+system, /proc/PID/stat) per GB of values.

txn_bench.py BOOTSTRAP --read-committed-cost [--read-mb MB] [--abort-every N] [--broker-pid PID]
measures what read_committed costs a consumer instead: it writes MB of values in
transactions of 100 batches, aborting every Nth, to a new one-partition topic (deleted at
the end), then reads all of it from the start, alternately read_uncommitted and
read_committed (twice each): records/s delivered, MB/s of log read, and per GB of log
the broker's CPU seconds and the consumer process's (librdkafka drops aborted records
on the client, using the aborted-transaction list the broker sends).
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


READ_VALUE_BYTES = 1000
READ_ROUNDS = 2
READ_TIMEOUT_S = 120


def fill_with_transactions(bootstrap, topic, mb, abort_every, value):
    """Transactions of 100 batches to partition 0, every `abort_every`-th aborted: the
    count of committed records."""
    p = make_producer(bootstrap, {"transactional.id": f"read-bench-{uuid.uuid4().hex[:8]}"})
    p.init_transactions(30)
    per_txn = 100 * RECORDS_PER_BATCH
    txns = max(1, mb * 1_000_000 // (per_txn * len(value)))
    committed = 0
    for t in range(txns):
        p.begin_transaction()
        produce_batches(p, topic, 100, value, lambda b: 0)
        if abort_every and t % abort_every == abort_every - 1:
            # librdkafka purges what it has not sent yet on abort: send it all first.
            p.flush(60)
            p.abort_transaction(60)
        else:
            p.commit_transaction(60)
            committed += per_txn
    return committed, txns * per_txn


def read_all(bootstrap, topic, isolation, expected):
    """Reads partition 0 from the start until `expected` records: (records, seconds,
    consumer CPU seconds)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "broker.address.family": "v4",
                  "group.id": f"read-bench-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                  "isolation.level": isolation, "fetch.max.bytes": 52428800,
                  "max.partition.fetch.bytes": 10485760})
    c.assign([TopicPartition(topic, 0, 0)])
    got, cpu0, started = 0, time.process_time(), time.monotonic()
    while got < expected and time.monotonic() - started < READ_TIMEOUT_S:
        for m in c.consume(10000, 1.0):
            if m.error() is None:
                got += 1
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu0
    c.close()
    if got != expected:
        raise SystemExit(f"{isolation}: read {got} records, expected {expected}")
    return got, elapsed, cpu


def read_committed_cost(args):
    topic = f"txn-read-bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap, "broker.address.family": "v4"})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(15)
    value = b"x" * READ_VALUE_BYTES
    try:
        committed, total = fill_with_transactions(args.bootstrap, topic, args.read_mb, args.abort_every, value)
        print(f"{topic}: {total} records in transactions of 100 batches, {total - committed} aborted "
              f"(every {args.abort_every}th), values of {READ_VALUE_BYTES} B", flush=True)
        for _ in range(READ_ROUNDS):
            for isolation, expected in (("read_uncommitted", total), ("read_committed", committed)):
                cpu_before = cpu_seconds(args.broker_pid)
                records, elapsed, client_cpu = read_all(args.bootstrap, topic, isolation, expected)
                broker_cpu = cpu_seconds(args.broker_pid) - cpu_before
                # Both modes fetch the whole log (aborted records too: the client drops
                # them), so CPU is per GB of the log; throughput is what was delivered.
                log_gb = total * READ_VALUE_BYTES / 1e9
                line = (f"{isolation:17} {records / elapsed:9.0f} records/s delivered "
                        f"{log_gb * 1e3 / elapsed:7.1f} MB/s of log read"
                        f"  consumer {client_cpu / log_gb:5.2f} CPU s/GB")
                if args.broker_pid:
                    line += f"  broker {broker_cpu / log_gb:5.2f} CPU s/GB"
                print(line, flush=True)
    finally:
        admin.delete_topics([topic])[topic].result(15)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--topic", default="txn-bench")
    ap.add_argument("--broker-pid", type=int)
    ap.add_argument("--read-committed-cost", action="store_true")
    ap.add_argument("--read-mb", type=int, default=200)
    ap.add_argument("--abort-every", type=int, default=10)
    args = ap.parse_args()
    if args.read_committed_cost:
        read_committed_cost(args)
        return
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
