#!/usr/bin/env python3
"""Consumer-group measurements against a running broker (no assertions, numbers only).

(a) rebalance: a 100-partition topic, 9 consumers Stable in one group; the 10th
    subscribes and the time until the group is Stable again with 10 members and all 100
    partitions assigned exactly once (AdminClient describe, polled every 10 ms) is taken.
    Repeated --repeats times (a fresh group each time); the median is reported.
    --protocol consumer uses the KIP-848 protocol (group.protocol=consumer): Stable then
    means every member has reconciled its target assignment (the heartbeat interval is
    the broker's group.consumer.heartbeat.interval.ms; --heartbeat-ms is not used).
(b) commits: --threads threads, each with its own consumer and group, commit explicit
    offsets synchronously for --seconds; the groups are chosen so that they all live on
    one shard (their __consumer_offsets partition modulo --shards is 0). Reports
    commits/s and, with --pid, the broker's CPU seconds per 1000 commits
    (utime+stime from /proc/<pid>/stat).

Run with /work/main/.venv/bin/python; start the broker with
group.initial.rebalance.delay.ms=0 for (a).
"""

import argparse
import os
import statistics
import threading
import time
import uuid

from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

OFFSETS_PARTITIONS = 50


def fnv1a(text):
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def create_topic(admin, name, partitions):
    admin.create_topics([NewTopic(name, partitions, 1)], request_timeout=15)[name].result(timeout=20)


class Member(threading.Thread):
    """One consumer polling in its own thread until stopped."""

    def __init__(self, bootstrap, group, topic, heartbeat_ms, protocol="classic"):
        super().__init__(daemon=True)
        config = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
        if protocol == "consumer":
            config["group.protocol"] = "consumer"
        else:
            config.update({"session.timeout.ms": 30000, "heartbeat.interval.ms": heartbeat_ms})
        self.consumer = Consumer(config)
        self.topic = topic
        self.stop = threading.Event()
        self.subscribed_at = None

    def run(self):
        self.subscribed_at = time.monotonic()
        self.consumer.subscribe([self.topic])
        while not self.stop.is_set():
            self.consumer.poll(0.05)
        self.consumer.close()


def settled(admin, group, members, partitions):
    """Stable, `members` members, every partition assigned exactly once."""
    desc = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    if desc.state != ConsumerGroupState.STABLE or len(desc.members) != members:
        return False
    assigned = sorted(tp.partition for m in desc.members
                      for tp in (m.assignment.topic_partitions if m.assignment else []))
    return assigned == list(range(partitions))


def wait_settled(admin, group, members, partitions, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if settled(admin, group, members, partitions):
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"group {group} did not settle with {members} members")


def bench_rebalance(args, admin):
    topic = f"bench-rebalance-{uuid.uuid4().hex[:8]}"
    create_topic(admin, topic, args.partitions)
    times = []
    for run in range(args.repeats):
        group = f"bench-rebalance-{uuid.uuid4().hex[:8]}"
        members = [Member(args.bootstrap, group, topic, args.heartbeat_ms, args.protocol)
                   for _ in range(args.consumers - 1)]
        for m in members:
            m.start()
        wait_settled(admin, group, len(members), args.partitions)
        last = Member(args.bootstrap, group, topic, args.heartbeat_ms, args.protocol)
        members.append(last)
        last.start()
        while last.subscribed_at is None:
            time.sleep(0.001)
        done = wait_settled(admin, group, len(members), args.partitions)
        took = done - last.subscribed_at
        times.append(took)
        print(f"rebalance run {run + 1}: {took * 1000:.0f} ms", flush=True)
        for m in members:
            m.stop.set()
        for m in members:
            m.join(timeout=60)
    heartbeat = "broker's" if args.protocol == "consumer" else args.heartbeat_ms
    print(f"rebalance ({args.protocol} protocol, {args.consumers} consumers, {args.partitions} partitions, "
          f"heartbeat.interval.ms={heartbeat}): median {statistics.median(times) * 1000:.0f} ms "
          f"over {len(times)} runs", flush=True)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: field 3 is state, so utime (14) and stime (15) are at 11, 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def groups_on_shard_zero(count, shards):
    out = []
    while len(out) < count:
        g = f"bench-commit-{uuid.uuid4().hex[:8]}"
        if (fnv1a(g) % OFFSETS_PARTITIONS) % shards == 0:
            out.append(g)
    return out


def bench_commits(args, admin):
    topic = f"bench-commits-{uuid.uuid4().hex[:8]}"
    create_topic(admin, topic, 1)
    groups = groups_on_shard_zero(args.threads, args.shards)
    counts = [0] * args.threads
    errors = []
    start = threading.Barrier(args.threads + 1)
    stop = threading.Event()

    def worker(i):
        c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": groups[i],
                      "enable.auto.commit": False})
        c.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)  # warm up
        start.wait()
        n = 0
        try:
            while not stop.is_set():
                n += 1
                c.commit(offsets=[TopicPartition(topic, 0, n)], asynchronous=False)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        counts[i] = n
        c.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.threads)]
    for t in threads:
        t.start()
    start.wait()
    cpu0 = cpu_seconds(args.pid) if args.pid else None
    t0 = time.monotonic()
    time.sleep(args.seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.monotonic() - t0
    cpu1 = cpu_seconds(args.pid) if args.pid else None
    total = sum(counts)
    line = (f"commits ({args.threads} threads, {args.threads} groups on one shard): "
            f"{total} in {elapsed:.1f} s = {total / elapsed:.0f} commits/s")
    if cpu0 is not None:
        line += f"; broker CPU {cpu1 - cpu0:.2f} s = {(cpu1 - cpu0) / total * 1000:.3f} s per 1000 commits"
    print(line, flush=True)
    if errors:
        print(f"errors: {errors[:3]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--only", choices=["rebalance", "commits"])
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--consumers", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--heartbeat-ms", type=int, default=3000, help="librdkafka's default: 3000")
    ap.add_argument("--protocol", choices=["classic", "consumer"], default="classic")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--shards", type=int, default=1, help="the broker's --smp, to pick groups on one shard")
    ap.add_argument("--pid", type=int, help="the broker's pid, for its CPU time")
    args = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    if args.only in (None, "rebalance"):
        bench_rebalance(args, admin)
    if args.only in (None, "commits"):
        bench_commits(args, admin)


if __name__ == "__main__":
    main()
