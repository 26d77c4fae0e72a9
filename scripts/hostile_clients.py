#!/usr/bin/env python3
"""What slow and hostile clients cost the broker and everyone else (issue 15, item 5).

    .venv/bin/python scripts/hostile_clients.py [--bin target/release/corelog] [--seconds 10]
                                                [--only idle,slowloris,...]

Starts one broker (`--smp 1`, a temporary data dir deleted at the end) and, for each
scenario, runs a well-behaved confluent-kafka producer (acks=1, --rate records/s) for
--seconds while the hostile clients run in another process. Prints, per scenario, the
producer's delivery latency p50/p99/max (librdkafka's own measure, `Message.latency()`),
its errors, and the broker's RSS and open descriptors at the end of the run, with a JSON
line for each. Scenarios:

- baseline     nothing else runs.
- idle         --idle connections that send nothing.
- slowloris    --slow connections that announce a 100 MiB request, then send 1 byte/s.
- partial      --partial connections that send 8 MiB of a 100 MiB request, then stall.
- non_reader   --readers connections that pipeline 16 Fetches of 8 MiB each of a
               prefilled topic and never read a byte of the answers.
- flood        --flooders connections sending ApiVersions as fast as the answers come.
- max_counts   a Metadata request whose topic count is 2^31-1, sent again on a new
               connection as soon as the broker closes the last one.

Loopback only; every scenario is bounded by --seconds.
"""

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))
import kwire  # noqa: E402

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

ANNOUNCED_BYTES = 100 << 20
PARTIAL_BYTES = 8 << 20
FETCH_MAX_BYTES = 8 << 20
PIPELINED_FETCHES = 16
PREFILL_BYTES = 64 << 20
API_VERSIONS = 18
API_METADATA = 3
API_FETCH = 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broker_stats(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return {"rss_mb": round(rss / 2**20, 1), "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


# --- hostile clients: each runs in its own process until `stop` is set ----------------

def idle(port, stop, n):
    socks = []
    for _ in range(n):
        try:
            socks.append(connect(port))
        except OSError:
            break
    stop.wait()


def slowloris(port, stop, n):
    socks = []
    for _ in range(n):
        try:
            s = connect(port)
            s.sendall(kwire.int32(ANNOUNCED_BYTES))
            socks.append(s)
        except OSError:
            break
    while not stop.wait(1.0):
        for s in socks:
            try:
                s.send(b"\0")
            except OSError:
                pass


def partial(port, stop, n):
    socks = []
    chunk = b"\0" * (1 << 20)
    for _ in range(n):
        try:
            s = connect(port)
            s.sendall(kwire.int32(ANNOUNCED_BYTES))
            for _ in range(PARTIAL_BYTES // len(chunk)):
                s.sendall(chunk)
            socks.append(s)
        except OSError:
            break
    stop.wait()


def non_reader(port, stop, n, topic):
    socks = []
    body = kwire.fetch_request_body(topic, 0, 0, max_wait_ms=0, max_bytes=FETCH_MAX_BYTES)
    for _ in range(n):
        try:
            s = connect(port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            for c in range(PIPELINED_FETCHES):
                s.sendall(kwire.request_frame(API_FETCH, 11, c, body))
            socks.append(s)
        except OSError:
            break
    stop.wait()


def flood(port, stop, n):
    def one():
        s = connect(port)
        frame = kwire.request_frame(API_VERSIONS, 0, 1, b"")
        while not stop.is_set():
            s.sendall(frame * 8)
            got = 0
            while got < 8:
                size = int.from_bytes(recv_exact(s, 4), "big")
                recv_exact(s, size)
                got += 1
    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    stop.wait()


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise OSError("closed")
        out += b
    return bytes(out)


def max_counts(port, stop, _n):
    body = kwire.int32(2**31 - 1)  # Metadata v4: the topic count, and no topics
    while not stop.is_set():
        try:
            s = connect(port)
            s.sendall(kwire.request_frame(API_METADATA, 4, 1, body))
            s.recv(1024)  # the broker answers an error or closes
            s.close()
        except OSError:
            pass


# --- the well-behaved producer ---------------------------------------------------------

def measure(bootstrap, topic, seconds, rate):
    latencies, errors = [], []

    def done(err, msg):
        if err is None:
            latencies.append(msg.latency())
        else:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 1,
                  "broker.address.family": "v4", "message.timeout.ms": 30000})
    interval = 1.0 / rate
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < seconds:
        due = start + sent * interval
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        p.produce(topic, value=b"x" * 100, on_delivery=done)
        sent += 1
        p.poll(0)
    left = p.flush(30)
    ms = sorted(x * 1000 for x in latencies)
    pick = (lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]) if ms else (lambda q: float("nan"))
    return {"sent": sent, "delivered": len(ms), "undelivered": left, "errors": len(errors),
            "p50_ms": round(pick(0.5), 2), "p99_ms": round(pick(0.99), 2),
            "max_ms": round(ms[-1], 2) if ms else None}


def prefill(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 20,
                  "broker.address.family": "v4"})
    value = b"f" * 10_000
    for _ in range(PREFILL_BYTES // len(value)):
        while True:
            try:
                p.produce(topic, value=value)
                break
            except BufferError:
                p.poll(0.05)
    p.flush(60)


SCENARIOS = {
    "baseline": None,
    "idle": idle,
    "slowloris": slowloris,
    "partial": partial,
    "non_reader": non_reader,
    "flood": flood,
    "max_counts": max_counts,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/corelog")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--slow", type=int, default=300)
    ap.add_argument("--partial", type=int, default=20)
    ap.add_argument("--readers", type=int, default=20)
    ap.add_argument("--flooders", type=int, default=4)
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--override", action="append", default=[], help="a broker setting k=v")
    args = ap.parse_args()
    counts = {"idle": args.idle, "slowloris": args.slow, "partial": args.partial,
              "non_reader": args.readers, "flood": args.flooders, "max_counts": 1}

    tmp = tempfile.mkdtemp(prefix="corelog-hostile-")
    port, admin_port = free_port(), free_port()
    cmd = [args.bin, "serve", "--smp", "1", "--override", f"log.dirs={tmp}/data",
           "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
           "--override", f"admin.listener=127.0.0.1:{admin_port}"]
    for kv in args.override:
        cmd += ["--override", kv]
    log = open(f"{tmp}/broker.log", "wb")
    broker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})
    bootstrap = f"127.0.0.1:{port}"
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
        deadline = time.monotonic() + 30
        while True:
            try:
                admin.list_topics(timeout=1)
                break
            except Exception:
                if time.monotonic() > deadline or broker.poll() is not None:
                    sys.exit(f"the broker did not start (log: {tmp}/broker.log)")
                time.sleep(0.2)
        for t in admin.create_topics([NewTopic("live", 1, 1), NewTopic("history", 1, 1)]).values():
            t.result(30)
        prefill(bootstrap, "history")
        rows = []
        for name in args.only.split(","):
            target = SCENARIOS[name]
            stop = multiprocessing.Event()
            proc = None
            if target is not None:
                extra = ("history",) if name == "non_reader" else ()
                proc = multiprocessing.Process(target=target, args=(port, stop, counts[name], *extra), daemon=True)
                proc.start()
                time.sleep(2)  # let the hostile side get going
            row = {"scenario": name, **measure(bootstrap, "live", args.seconds, args.rate),
                   **broker_stats(broker.pid)}
            stop.set()
            if proc is not None:
                proc.join(10)
                if proc.is_alive():
                    proc.kill()
            row["broker_alive"] = broker.poll() is None
            rows.append(row)
            print(json.dumps(row), flush=True)
            if not row["broker_alive"]:
                break
            time.sleep(2)  # let the broker close what the hostile side left
        print("| scenario | p50 ms | p99 ms | max ms | errors | RSS MB | fds |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['scenario']} | {r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | "
                  f"{r['errors'] + r['undelivered']} | {r['rss_mb']} | {r['fds']} |")
        base = next((r for r in rows if r["scenario"] == "baseline"), None)
        if base and base["p99_ms"]:
            print("p99 / baseline: " + ", ".join(
                f"{r['scenario']} {r['p99_ms'] / base['p99_ms']:.2f}" for r in rows if r is not base))
    finally:
        if broker.poll() is None:
            broker.terminate()
            try:
                broker.wait(30)
            except subprocess.TimeoutExpired:
                broker.kill()
        shutil.rmtree(f"{tmp}/data", ignore_errors=True)
        print(f"broker log: {tmp}/broker.log", flush=True)


if __name__ == "__main__":
    main()
