#!/usr/bin/env python3
"""Broker CPU per GB produced and consumed over PLAINTEXT, SSL and SASL_SSL, and TLS
handshakes per CPU-second: what TLS costs the broker (issue 12).

Starts one corelog (release build by default) with three listeners on loopback, makes
a throwaway CA and an EC P-256 server certificate with openssl, drives it with
confluent-kafka (librdkafka, which has TLS; kload is built without it) and reads the
broker's CPU time (utime+stime) from /proc/<pid>/stat around each phase. The client's
own CPU is not counted. Run:

    /work/main/.venv/bin/python scripts/bench-tls.py [--bin target/release/corelog] [--mb 1024]
"""

import argparse
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

VALUE_BYTES = 16 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)


def make_pki(d):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench-ca")
    openssl(d, "req", *ec, "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost")
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl(d, "x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "srv.pem", "-days", "2", "-extfile", "ext")
    (d / "keystore.pem").write_bytes((d / "srv.key").read_bytes() + (d / "srv.pem").read_bytes())


def run_phase(pid, fn):
    c0, t0 = cpu_s(pid), time.monotonic()
    n = fn()
    return n, cpu_s(pid) - c0, time.monotonic() - t0


def produce(conf, topic, total_bytes):
    p = Producer({**conf, "linger.ms": 5, "batch.size": 1_000_000, "acks": "1",
                  "queue.buffering.max.kbytes": 65536})
    value = os.urandom(VALUE_BYTES)
    sent = 0
    while sent < total_bytes:
        try:
            p.produce(topic, value, partition=sent // VALUE_BYTES % 2)
            sent += VALUE_BYTES
        except BufferError:
            p.poll(0.01)
    assert p.flush(120) == 0
    return sent


def consume(conf, topic, total_bytes):
    c = Consumer({**conf, "group.id": f"bench-{time.time()}", "enable.auto.commit": False,
                  "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 8388608})
    c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
    got = 0
    deadline = time.monotonic() + 300
    while got < total_bytes and time.monotonic() < deadline:
        for m in c.consume(1000, 1.0):
            if m.error() is None:
                got += len(m.value())
    c.close()
    return got


def handshakes(port, ca, count):
    ctx = ssl.create_default_context(cafile=ca)
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.do_handshake()
    return count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/corelog")
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--handshakes", type=int, default=1000)
    args = ap.parse_args()
    total = args.mb * 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_pki(d)
        ports = {n: free_port() for n in ("PLAINTEXT", "SSL", "SASL_SSL")}
        subprocess.run([args.bin, "storage", "format", "--override", f"log.dirs={d / 'data'}",
                        "--add-scram", "SCRAM-SHA-256=[name=bench,password=bench-pw]"], check=True,
                       capture_output=True)
        listeners = ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items())
        proc = subprocess.Popen([args.bin, "serve", "--smp", "1", "--override", f"listeners={listeners}",
                                 "--override", f"log.dirs={d / 'data'}", "--override", "admin.listener=",
                                 "--override", f"ssl.keystore.location={d / 'keystore.pem'}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(2)
            base = {"broker.address.family": "v4"}
            confs = {
                "PLAINTEXT": {**base, "bootstrap.servers": f"127.0.0.1:{ports['PLAINTEXT']}"},
                "SSL": {**base, "bootstrap.servers": f"127.0.0.1:{ports['SSL']}", "security.protocol": "SSL",
                        "ssl.ca.location": str(d / "ca.pem")},
                "SASL_SSL": {**base, "bootstrap.servers": f"127.0.0.1:{ports['SASL_SSL']}",
                             "security.protocol": "SASL_SSL", "ssl.ca.location": str(d / "ca.pem"),
                             "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "bench",
                             "sasl.password": "bench-pw"},
            }
            print(f"{'listener':<10} {'phase':<8} {'MB':>6} {'wall s':>7} {'broker CPU-s':>13} {'CPU-s/GB':>9}")
            for name, conf in confs.items():
                topic = f"bench-{name.lower()}"
                admin = AdminClient(conf)
                admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
                for phase, fn in (("produce", produce), ("consume", consume)):
                    n, cpu, wall = run_phase(proc.pid, lambda: fn(conf, topic, total))
                    print(f"{name:<10} {phase:<8} {n / 1e6:>6.0f} {wall:>7.1f} {cpu:>13.2f} {cpu / (n / 1e9):>9.2f}")
            n, cpu, wall = run_phase(proc.pid, lambda: handshakes(ports["SSL"], str(d / "ca.pem"), args.handshakes))
            print(f"TLS handshakes (EC P-256 certificate, TLS 1.3, no resumption): {n} in {wall:.1f} s wall, "
                  f"broker {cpu:.2f} CPU-s = {n / cpu:.0f} handshakes per broker CPU-second")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    sys.exit(main())
