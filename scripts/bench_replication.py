#!/usr/bin/env python3
"""RF=3 vs RF=1 on a three-broker corelog cluster on loopback (issue 10 item 7).

    .venv/bin/python scripts/bench_replication.py [--runs 3] [--seconds 8]
        [--rate 5000] [--bin target/release/corelog] [--kload PATH]
        [--inter-broker plaintext|ssl] [--log-dirs D1,D2,D3] [--leader N]

--inter-broker ssl makes the members replicate over an SSL listener with mutual TLS
(certificates made with the openssl command in the temp dir; issue 12), so running it
after a plaintext run on the same machine gives what TLS between brokers costs.

--log-dirs gives each member its own data dir (e.g. on its own device: a cluster whose
brokers do not share one disk, as on three machines); --leader N creates every topic
with an explicit replica assignment whose first replica is broker N, so every
partition is led by N (whose dir can then stay on the real disk) at both RF=3 and RF=1.

Starts three combined-mode members (127.0.0.1, free ports, a temp dir, --smp 1 each).
For each run it creates two fresh topics per replication factor and measures, in
alternating RF=3 / RF=1 order (so the machine's other load falls on both alike):

- closed-loop ingest, acks=all, 1 KiB records, 3 partitions (one led by each broker):
  `corelog bench produce --acks all --batch-size 262144`; throughput, and the CPU
  seconds of all three brokers (utime+stime from /proc/PID/stat around the run) per GB
  of payload — at RF=3 every byte is also written by two followers;
- the same with kload (`kload produce`, librdkafka) when --kload points at its binary;
- acks=all end-to-end latency at a fixed --rate (records/s, 1 KiB, 3 partitions,
  `corelog bench e2e --threads 1`): p50/p99/p99.9.

Prints every run, then the medians over --runs as a Markdown table and as JSON (the last
line). Loopback only; every run bounded by --seconds plus its drain."""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3
MESSAGE_BYTES = 1024
WARMUP_S = 2
READY_TIMEOUT_S = 60
RUN_SLACK_S = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def make_pki(tmp):
    """A CA and one broker certificate (127.0.0.1, server and client use) signed by it;
    returns the ssl.* settings of an SSL inter-broker listener with mutual TLS."""
    def openssl(*a):
        subprocess.run(["openssl", *a], cwd=tmp, check=True, capture_output=True, timeout=60)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench-ca")
    openssl("req", *ec, "-keyout", "b.key", "-out", "b.csr", "-subj", "/CN=broker")
    with open(f"{tmp}/b.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    openssl("x509", "-req", "-in", "b.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "b.pem", "-days", "2", "-extfile", "b.ext")
    with open(f"{tmp}/keystore.pem", "wb") as out:
        for name in ("b.key", "b.pem"):
            with open(f"{tmp}/{name}", "rb") as f:
                out.write(f.read())
    return {"inter.broker.listener.name": "SSL", "ssl.keystore.location": f"{tmp}/keystore.pem",
            "ssl.truststore.location": f"{tmp}/ca.pem", "ssl.client.auth": "required"}


class Cluster:
    def __init__(self, binary, tmp, inter_broker="plaintext", log_dirs=None, leader=None):
        self.binary = binary
        self.leader = leader
        self.log_dirs = log_dirs or {i: f"{tmp}/n{i}" for i in (1, 2, 3)}
        self.ports = {i: (free_port(), free_port(), free_port(), free_port()) for i in (1, 2, 3)}
        tls = make_pki(tmp) if inter_broker == "ssl" else None
        voters = ",".join(f"{i}@127.0.0.1:{p[1]}" for i, p in self.ports.items())
        self.bootstrap = ",".join(f"127.0.0.1:{p[0]}" for p in self.ports.values())
        self.procs = []
        for i, (client, ctl, admin_port, ssl_port) in self.ports.items():
            cmd = [binary, "serve", "--smp", "1"]
            settings = {"node.id": i, "process.roles": "broker,controller",
                        "controller.quorum.voters": voters, "controller.listener.names": "CONTROLLER",
                        "listeners": f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{ctl}",
                        "log.dirs": self.log_dirs[i], "admin.listener": f"127.0.0.1:{admin_port}"}
            if tls:
                settings["listeners"] += f",SSL://127.0.0.1:{ssl_port}"
                settings.update(tls)
            for k, v in settings.items():
                cmd += ["--override", f"{k}={v}"]
            log = open(f"{tmp}/n{i}.log", "ab")
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                               env={**os.environ, "NO_COLOR": "1"}))
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap, "broker.address.family": "v4"})
        self.wait(lambda: len(self.admin.list_topics(timeout=2).brokers) == 3, "three brokers")

    def wait(self, pred, what):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if pred():
                    return
            except Exception:
                pass
            time.sleep(0.2)
        sys.exit(f"timed out waiting for {what}")

    def topic(self, name, rf):
        if self.leader is not None:
            self.pinned_topic(name, rf)
        else:
            self.created_topic(name, rf)

        def settled():
            t = self.admin.list_topics(timeout=2).topics[name]
            return t.error is None and len(t.partitions) == PARTITIONS and all(
                p.leader > 0 and len(p.isrs) == rf for p in t.partitions.values())

        self.wait(settled, f"{name}'s leaders and ISRs")

    def pinned_topic(self, name, rf):
        """Every partition's first replica (its leader) is broker `self.leader`."""
        others = [i for i in (1, 2, 3) if i != self.leader]
        replicas = [self.leader, *others][:rf]
        topic = NewTopic(name, -1, -1, replica_assignment=[replicas] * PARTITIONS)
        self.admin.create_topics([topic])[name].result(30)

    def created_topic(self, name, rf):
        for attempt in range(3):
            r = subprocess.run([self.binary, "topic", "create", name, "-b", self.bootstrap, "--partitions",
                                str(PARTITIONS), "--replication-factor", str(rf)], capture_output=True, text=True)
            if r.returncode == 0:
                break
            print(f"topic create {name}: exit {r.returncode}: {r.stderr.strip()[:300]}", flush=True)
            time.sleep(1)

    def pids(self):
        return [p.pid for p in self.procs]

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def bench(cluster, args, mode, topic, extra):
    cmd = [cluster.binary, "bench", mode, "-b", cluster.bootstrap, "--topic", topic, "--acks", "all",
           "--message-size", str(MESSAGE_BYTES), "--seconds", str(args.seconds),
           "--warmup-seconds", str(WARMUP_S), "--output", "json", *extra]
    before = cpu_seconds(cluster.pids())
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         timeout=args.seconds + WARMUP_S + RUN_SLACK_S).stdout
    broker_cpu = cpu_seconds(cluster.pids()) - before
    report = json.loads(out)
    return report, broker_cpu


def kload_produce(cluster, args, topic):
    cmd = [args.kload, "produce", "-b", cluster.bootstrap, "-t", topic, "--msg-size", str(MESSAGE_BYTES),
           "--acks", "all", "--batch-size", "262144", "--seconds", str(args.seconds), "-q"]
    before = cpu_seconds(cluster.pids())
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + RUN_SLACK_S).stdout
    broker_cpu = cpu_seconds(cluster.pids()) - before
    return json.loads(out.strip().splitlines()[-1]), broker_cpu


def one_run(cluster, args, run, rf):
    row = {"rf": rf, "run": run}
    if args.e2e_only:
        return e2e_run(cluster, args, run, rf, row)
    t = f"tput-rf{rf}-{run}"
    cluster.topic(t, rf)
    report, cpu = bench(cluster, args, "produce", t, ["--batch-size", "262144"])
    # The CPU window includes the warm-up, so the payload does too (the per-second series).
    gb_total = sum(sec["mb"] for sec in report["series"]) / 1000
    row["mb_per_sec"] = report["results"]["mb_per_sec"]
    row["errors"] = report["results"]["errors"]
    row["broker_cpu_s_per_gb"] = cpu / gb_total if gb_total else None
    row["delivery_p99_ms"] = report["latency"]["p99_ms"]
    if args.kload:
        k = f"kload-rf{rf}-{run}"
        cluster.topic(k, rf)
        kreport, kcpu = kload_produce(cluster, args, k)
        row["kload_mb_per_sec"] = kreport.get("mb_per_sec") or kreport.get("throughput", {}).get("mb_per_sec")
        kgb = (row["kload_mb_per_sec"] or 0) * args.seconds / 1000
        row["kload_broker_cpu_s_per_gb"] = kcpu / kgb if kgb else None
    return e2e_run(cluster, args, run, rf, row)


def e2e_run(cluster, args, run, rf, row):
    e = f"e2e-rf{rf}-{run}"
    cluster.topic(e, rf)
    report, cpu = bench(cluster, args, "e2e", e, ["--rate", str(args.rate), "--threads", "1",
                                                   "--profile-admin", f"127.0.0.1:{cluster.ports[1][2]}"])
    lat = report["latency"]
    # The three brokers' CPU per second of the paced run (warm-up included): at a fixed
    # rate, the cost of replication in cores, and far less noisy than the tail.
    row.update({"e2e_p50_ms": lat["p50_ms"], "e2e_p99_ms": lat["p99_ms"], "e2e_p99_9_ms": lat["p99_9_ms"],
                "e2e_broker_cores": cpu / (args.seconds + WARMUP_S),
                "e2e_errors": report["results"]["errors"]})
    if report.get("broker_profile") is not None:
        with open(f"{args.profile_dir}/profile-rf{rf}-{run}.json", "w") as f:
            json.dump(report["broker_profile"], f, indent=1)
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--bin", default="target/release/corelog")
    ap.add_argument("--kload", default=None, help="a kload binary (../shared/tools/kload) for a second producer")
    ap.add_argument("--inter-broker", choices=["plaintext", "ssl"], default="plaintext",
                    help="the listener the members replicate over")
    ap.add_argument("--e2e-only", action="store_true",
                    help="only the paced end-to-end latency runs (no closed-loop ingest before them)")
    ap.add_argument("--log-dirs", default=None,
                    help="three comma-separated data dirs, one per member (default: under the temp dir)")
    ap.add_argument("--leader", type=int, choices=[1, 2, 3], default=None,
                    help="lead every partition from this broker (explicit replica assignments)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="corelog-bench-replication-")
    args.profile_dir = tmp
    print(f"brokers' logs and stage profiles (broker 1, e2e runs) under {tmp}", flush=True)
    log_dirs = None
    if args.log_dirs:
        dirs = args.log_dirs.split(",")
        if len(dirs) != 3:
            sys.exit("--log-dirs wants three dirs")
        log_dirs = {i: f"{d}/bench-replication-n{i}" for i, d in zip((1, 2, 3), dirs)}
    cluster = Cluster(args.bin, tmp, args.inter_broker, log_dirs, args.leader)
    rows = []
    try:
        for run in range(args.runs):
            for rf in (3, 1):
                rows.append(one_run(cluster, args, run, rf))
    finally:
        cluster.stop()
        # The data dirs hold every byte the runs produced (tens of GB); keep only the
        # logs and stage profiles the message above points to.
        for d in cluster.log_dirs.values():
            shutil.rmtree(d, ignore_errors=True)
    keys = ["mb_per_sec", "broker_cpu_s_per_gb", "delivery_p99_ms", "e2e_p50_ms", "e2e_p99_ms", "e2e_p99_9_ms",
            "e2e_broker_cores"]
    if args.e2e_only:
        keys = keys[3:]
    elif args.kload:
        keys[2:2] = ["kload_mb_per_sec", "kload_broker_cpu_s_per_gb"]
    def median(rf, k):
        values = [r[k] for r in rows if r["rf"] == rf and r.get(k) is not None]
        return statistics.median(values) if values else float("nan")

    medians = {rf: {k: median(rf, k) for k in keys} for rf in (3, 1)}
    print("| figure (median of %d) | RF=3 | RF=1 | RF=3 / RF=1 |" % args.runs)
    print("| --- | --- | --- | --- |")
    for k in keys:
        a, b = medians[3][k], medians[1][k]
        print(f"| {k} | {a:.2f} | {b:.2f} | {a / b if b else float('nan'):.2f} |")
    print(json.dumps({"rate": args.rate, "seconds": args.seconds, "runs": args.runs,
                      "inter_broker": args.inter_broker, "log_dirs": args.log_dirs, "leader": args.leader,
                      "medians": medians}))


if __name__ == "__main__":
    main()
