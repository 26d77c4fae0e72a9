#!/usr/bin/env python3
"""Controller failover time of a three-member corelog quorum on loopback.

    scripts/bench_controller_failover.py [--kills 10] [--bin target/release/corelog]

Starts three combined-mode members (127.0.0.1, free ports, a temp dir), then repeatedly
kill -9s the active controller and measures, polling a survivor's Metadata (v1, raw
wire) every 10 ms, the time until a survivor names a new controller; the killed member
is restarted before the next round. Prints each round and the median/max as JSON.
Loopback only; bounded by --kills and a 30 s wait per round."""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

POLL_S = 0.01
ROUND_TIMEOUT_S = 30


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def controller_id(port):
    """Metadata v1 with no topics: the controller id, or None on any error."""
    body = struct.pack(">i", 0)  # empty topic array
    header = struct.pack(">hhih", 3, 1, 7, 0)
    frame = header + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(struct.pack(">i", len(frame)) + frame)
            size = struct.unpack(">i", recv_exact(s, 4))[0]
            data = recv_exact(s, size)
    except OSError:
        return None
    pos = 4  # correlation id
    (brokers,) = struct.unpack_from(">i", data, pos)
    pos += 4
    for _ in range(brokers):
        pos += 4
        (hlen,) = struct.unpack_from(">h", data, pos)
        pos += 2 + hlen + 4
        (rlen,) = struct.unpack_from(">h", data, pos)
        pos += 2 + max(rlen, 0)
    (controller,) = struct.unpack_from(">i", data, pos)
    return controller


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise OSError("closed")
        out += chunk
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--bin", default="target/release/corelog")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="corelog-failover-")
    ports = {i: (free_port(), free_port(), free_port()) for i in (1, 2, 3)}
    voters = ",".join(f"{i}@127.0.0.1:{p[1]}" for i, p in ports.items())
    procs = {}

    def start(i):
        client, ctl, admin = ports[i]
        cmd = [args.bin, "serve", "--smp", "1"]
        for k, v in {"node.id": i, "process.roles": "broker,controller", "controller.quorum.voters": voters,
                     "controller.listener.names": "CONTROLLER",
                     "listeners": f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{ctl}",
                     "log.dirs": f"{tmp}/n{i}", "admin.listener": f"127.0.0.1:{admin}"}.items():
            cmd += ["--override", f"{k}={v}"]
        log = open(f"{tmp}/n{i}.log", "ab")
        procs[i] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1"})

    def wait_controller(ids, timeout_s=ROUND_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            named = {controller_id(ports[i][0]) for i in ids}
            if len(named) == 1 and named.pop() in ids:
                return controller_id(ports[ids[0]][0])
            time.sleep(POLL_S)
        sys.exit(f"no agreed controller among {ids} in {timeout_s} s (logs in {tmp})")

    try:
        for i in ports:
            start(i)
        rounds = []
        for _ in range(args.kills):
            leader = wait_controller([1, 2, 3])
            survivors = [i for i in ports if i != leader]
            procs[leader].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            procs[leader].wait()
            deadline = killed + ROUND_TIMEOUT_S
            while time.monotonic() < deadline:
                c = controller_id(ports[survivors[0]][0])
                if c in survivors:
                    break
                time.sleep(POLL_S)
            elapsed = time.monotonic() - killed
            rounds.append(elapsed)
            print(f"killed controller {leader}: new controller after {elapsed * 1000:.0f} ms", flush=True)
            start(leader)
            wait_controller([1, 2, 3])
        print(json.dumps({"kills": len(rounds), "median_ms": round(statistics.median(rounds) * 1000),
                          "max_ms": round(max(rounds) * 1000)}))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=15)
        # Keep the brokers' logs (named in error messages), not their data dirs.
        for i in ports:
            shutil.rmtree(f"{tmp}/n{i}", ignore_errors=True)


if __name__ == "__main__":
    main()
