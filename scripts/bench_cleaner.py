#!/usr/bin/env python3
"""Log cleaner measurements against a running broker (no assertions, numbers only).

Start the broker with one shard, so the cleaner and the measured producer share it:

    corelog serve --smp 1 --override log.dirs=/tmp/cb --override log.cleaner.backoff.ms=1000 \
        [--override log.cleaner.enable=false] > broker.log 2>&1

Then `bench_cleaner.py --bootstrap 127.0.0.1:9092 --broker-log broker.log`:

1. fill: a compacted topic (segment.bytes --segment-mb, min.cleanable.dirty.ratio 0.01)
   gets --fill-mb of keyed, incompressible records over --keys keys, as fast as a
   confluent-kafka producer sends them;
2. load: for --seconds a background producer keeps updating those keys at --update-mbps
   (so the cleaner keeps finding dirty data), while the latency producer is measured
   by kload (`kload produce --rate`) on a separate plain topic on the same shard;
3. the broker's "cleaned log" lines (cleaned_bytes = segment bytes rewritten, read_bytes,
   written_bytes, elapsed_ms) are summed into cleaning throughput (cleaned MB per second
   of pass time, throttling and yields included). With the cleaner off there are none.

Run with /work/main/.venv/bin/python.
"""

import argparse
import json
import os
import re
import subprocess
import threading
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

KLOAD = "/work/kload-target/release/kload"


def create_topic(admin, name, config):
    admin.create_topics([NewTopic(name, 1, 1, config=config)], request_timeout=15)[name].result(timeout=20)


def produce_keyed(bootstrap, topic, keys, value_bytes, total_bytes, rate_bps, stop):
    prod = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "1",
                     "queue.buffering.max.kbytes": 65536})
    sent = 0
    start = time.monotonic()
    i = 0
    while sent < total_bytes and not stop.is_set():
        value = os.urandom(value_bytes)
        key = b"key-%07d" % (i % keys)
        while True:
            try:
                prod.produce(topic, key=key, value=value, partition=0)
                break
            except BufferError:
                prod.poll(0.01)
        prod.poll(0)
        sent += value_bytes
        i += 1
        if rate_bps:
            ahead = sent / rate_bps - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    prod.flush(60)
    return sent


def cleaned_lines(path, start_at):
    with open(path, encoding="utf-8", errors="replace") as f:
        f.seek(start_at)
        text = f.read()
    fields = ("cleaned_bytes", "read_bytes", "written_bytes", "elapsed_ms")
    out = []
    for line in text.splitlines():
        if "cleaned log" not in line:
            continue
        values = {k: int(m.group(1)) for k in fields if (m := re.search(rf"{k}=(\d+)", line))}
        if len(values) == len(fields):
            out.append(values)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--broker-log", required=True)
    ap.add_argument("--fill-mb", type=int, default=200)
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--value-bytes", type=int, default=1000)
    ap.add_argument("--segment-mb", type=int, default=16)
    ap.add_argument("--update-mbps", type=float, default=4.0)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--rate", type=int, default=2000)
    args = ap.parse_args()

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    run = uuid.uuid4().hex[:6]
    compacted, plain = f"cc-{run}", f"lat-{run}"
    create_topic(admin, compacted, {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01",
                                    "segment.bytes": str(args.segment_mb << 20)})
    create_topic(admin, plain, {})
    log_start = os.path.getsize(args.broker_log)

    t0 = time.monotonic()
    stop = threading.Event()
    filled = produce_keyed(args.bootstrap, compacted, args.keys, args.value_bytes,
                           args.fill_mb << 20, 0, stop)
    print(f"fill: {filled / 1e6:.0f} MB in {time.monotonic() - t0:.1f} s")

    updater = threading.Thread(target=produce_keyed, daemon=True,
                               args=(args.bootstrap, compacted, args.keys, args.value_bytes,
                                     1 << 60, args.update_mbps * 1e6, stop))
    updater.start()
    kload = subprocess.run([KLOAD, "produce", "-q", "-b", args.bootstrap, "-t", plain,
                            "--rate", str(args.rate), "--seconds", str(args.seconds),
                            "--acks", "all", "--linger-ms", "0", "--msg-size", "200"],
                           capture_output=True, text=True, timeout=args.seconds + 120)
    stop.set()
    updater.join(60)
    result = json.loads(kload.stdout.strip().splitlines()[-1])
    latency = result.get("delivery_latency", {})

    passes = cleaned_lines(args.broker_log, log_start)
    cleaned = sum(p["cleaned_bytes"] for p in passes)
    read = sum(p["read_bytes"] for p in passes)
    written = sum(p["written_bytes"] for p in passes)
    elapsed = sum(p["elapsed_ms"] for p in passes) / 1000
    summary = {
        "cleaner_passes": len(passes),
        "cleaned_mb": round(cleaned / 1e6, 1),
        "read_mb": round(read / 1e6, 1),
        "written_mb": round(written / 1e6, 1),
        "cleaning_seconds": round(elapsed, 2),
        "cleaning_mb_per_s": round(cleaned / 1e6 / elapsed, 1) if elapsed else None,
        "producer_rate": args.rate,
        "producer_latency_ms": latency,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
