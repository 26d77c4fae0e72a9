#!/usr/bin/env python3
"""Partition failover time of a three-broker corelog cluster on loopback, as clients see it.

    .venv/bin/python scripts/bench_partition_failover.py [--kills 10] [--session-ms 9000]
        [--heartbeat-ms 2000] [--bin target/release/corelog] [--client-setting key=value ...]
        [--keep-logs]

Starts three combined-mode members (127.0.0.1, free ports, a temp dir) and a topic with
replication factor 3 and one partition. A confluent-kafka producer (acks=all,
idempotent) sends one record every 5 ms and a consumer tails the partition. Each round
kill -9s the partition leader and measures, from the kill, (a) the first record
acknowledged after it and (b) the first record the consumer reads that was produced
after it; the killed broker is restarted and the round waits for the ISR to be whole.
Prints each round (and whether the killed leader was also the active controller, which
adds a controller election) and median/p90/max as JSON. A killed broker's controller
listener refuses connections, so the active controller fences it within a few hundred
ms (controller.fast.fencing.enable, on by default); --no-fast-fencing measures the
session path alone: fenced after broker.session.timeout.ms without heartbeats (Kafka's
default 9 s; a lower --session-ms trades detection speed for sensitivity to pauses).
--client-setting adds a librdkafka setting to both the producer and the consumer (the
README's "Failover" section lists the ones we document). The temp dir (broker logs and
data) is deleted at the end unless --keep-logs is given.
Loopback only; bounded by --kills and 60 s per round."""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROUND_TIMEOUT_S = 60
PRODUCE_EVERY_S = 0.005


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--session-ms", type=int, default=9000)
    ap.add_argument("--heartbeat-ms", type=int, default=2000)
    ap.add_argument("--bin", default="target/release/corelog")
    ap.add_argument("--client-setting", action="append", default=[], metavar="KEY=VALUE",
                    help="a librdkafka setting for the producer and the consumer (repeatable)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the temp dir of broker logs and data")
    ap.add_argument("--no-fast-fencing", action="store_true",
                    help="controller.fast.fencing.enable=false: fencing by session timeout only")
    args = ap.parse_args()
    client_settings = dict(kv.split("=", 1) for kv in args.client_setting)
    tmp = tempfile.mkdtemp(prefix="corelog-partition-failover-")
    print(f"broker logs under {tmp}", flush=True)
    ports = {i: (free_port(), free_port(), free_port()) for i in (1, 2, 3)}
    voters = ",".join(f"{i}@127.0.0.1:{p[1]}" for i, p in ports.items())
    bootstrap = ",".join(f"127.0.0.1:{p[0]}" for p in ports.values())
    procs = {}

    def start(i):
        client, ctl, admin_port = ports[i]
        cmd = [args.bin, "serve", "--smp", "1"]
        for k, v in {"node.id": i, "process.roles": "broker,controller", "controller.quorum.voters": voters,
                     "controller.listener.names": "CONTROLLER",
                     "listeners": f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{ctl}",
                     "log.dirs": f"{tmp}/n{i}", "admin.listener": f"127.0.0.1:{admin_port}",
                     "broker.session.timeout.ms": args.session_ms,
                     "broker.heartbeat.interval.ms": args.heartbeat_ms}.items():
            cmd += ["--override", f"{k}={v}"]
        if args.no_fast_fencing:
            cmd += ["--override", "controller.fast.fencing.enable=false"]
        log = open(f"{tmp}/n{i}.log", "ab")
        procs[i] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})

    admin = None

    def partition0():
        try:
            md = admin.list_topics(timeout=2)
        except Exception:
            return None
        t = md.topics.get("failover")
        if t is None or t.error is not None or 0 not in t.partitions:
            return None
        p = t.partitions[0]
        return p.leader, sorted(p.isrs)

    def wait_for(pred, what):
        deadline = time.monotonic() + ROUND_TIMEOUT_S
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.05)
        sys.exit(f"timed out waiting for {what} (--keep-logs keeps the broker logs in {tmp})")

    try:
        for i in ports:
            start(i)
        admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
        wait_for(lambda: len(admin.list_topics(timeout=2).brokers) == 3, "three brokers")
        def create():
            # A member may be listed before the quorum has its registration (then
            # INVALID_REPLICATION_FACTOR): retry until all three count.
            try:
                admin.create_topics([NewTopic("failover", 1, 3)])["failover"].result(10)
                return True
            except Exception as e:
                if "TOPIC_ALREADY_EXISTS" in str(e):
                    return True
                return False

        wait_for(create, "the topic created")
        wait_for(lambda: (partition0() or (0, []))[1] == [1, 2, 3], "the topic's ISR")

        acked_at = []  # (send time, ack time) of each acknowledged record
        lock = threading.Lock()
        stop = threading.Event()
        producer = Producer({"bootstrap.servers": bootstrap, "broker.address.family": "v4", "acks": "all",
                             "enable.idempotence": True, "linger.ms": 0, **client_settings})

        def produce_loop():
            while not stop.is_set():
                sent = time.monotonic()
                payload = str(sent).encode()

                def report(err, msg, sent=sent):
                    if err is None:
                        with lock:
                            acked_at.append((sent, time.monotonic()))

                producer.produce("failover", payload, partition=0, on_delivery=report)
                producer.poll(0)
                time.sleep(PRODUCE_EVERY_S)
            producer.flush(30)

        consumed = []  # (send time carried in the record, read time)
        consumer = Consumer({"bootstrap.servers": bootstrap, "broker.address.family": "v4",
                             "group.id": "bench", "enable.auto.commit": False, "fetch.wait.max.ms": 10,
                             **client_settings})

        def consume_loop():
            consumer.assign([TopicPartition("failover", 0, 0)])
            while not stop.is_set():
                m = consumer.poll(0.05)
                if m is not None and m.error() is None:
                    with lock:
                        consumed.append((float(m.value()), time.monotonic()))
            consumer.close()

        threads = [threading.Thread(target=produce_loop), threading.Thread(target=consume_loop)]
        for t in threads:
            t.start()
        rounds = []
        try:
            for _ in range(args.kills):
                time.sleep(1)
                leader, _ = wait_for(partition0, "a leader")
                controller = admin.list_topics(timeout=2).controller_id
                procs[leader].send_signal(signal.SIGKILL)
                killed = time.monotonic()
                killed_utc = time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"
                procs[leader].wait()

                def first_after(items):
                    with lock:
                        return next((b for a, b in items if a > killed + 0.001), None)

                ack = wait_for(lambda: first_after(acked_at), "an acknowledgement after the kill")
                read = wait_for(lambda: first_after(consumed), "a record read after the kill")
                rounds.append((ack - killed, read - killed))
                role = " (also the controller)" if controller == leader else ""
                print(f"{killed_utc} UTC killed leader {leader}{role}: first ack after {(ack - killed) * 1000:.0f} ms, "
                      f"first read after {(read - killed) * 1000:.0f} ms", flush=True)
                start(leader)
                wait_for(lambda: (partition0() or (0, []))[1] == [1, 2, 3], "the ISR whole again")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        acks = [a for a, _ in rounds]
        reads = [r for _, r in rounds]
        def p90(xs):
            xs = sorted(xs)
            return xs[min(len(xs) - 1, -(-len(xs) * 9 // 10) - 1)]

        print(json.dumps({"kills": len(rounds), "session_ms": args.session_ms,
                          "client_settings": client_settings,
                          "fast_fencing": not args.no_fast_fencing,
                          "ack_median_ms": round(statistics.median(acks) * 1000),
                          "ack_p90_ms": round(p90(acks) * 1000),
                          "ack_max_ms": round(max(acks) * 1000),
                          "read_median_ms": round(statistics.median(reads) * 1000),
                          "read_p90_ms": round(p90(reads) * 1000),
                          "read_max_ms": round(max(reads) * 1000)}))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=15)
        if args.keep_logs:
            print(f"broker logs kept under {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
