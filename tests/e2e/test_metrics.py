"""The HTTP admin API (admin.listener): /metrics in Prometheus text format with exact
counters, /v1/profile stage quantiles and its reset, /v1/status, `corelog profile`, bad
HTTP answered 400/404/405/431 while Kafka clients keep being served, and a clear
start-up error when the admin address is taken."""

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import kwire
from clients import consume, create_topic, flush, producer
from conftest import corelog_bin, free_port, fresh_topic

HTTP_TIMEOUT_S = 10
MESSAGES = 20
SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def get(broker, path):
    with urllib.request.urlopen(f"http://{broker.admin}{path}", timeout=HTTP_TIMEOUT_S) as r:
        return r.status, r.headers, r.read()


def scrape(broker):
    """[(name, {label: value}, float)] of every sample in /metrics."""
    status, headers, body = get(broker, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = []
    for line in body.decode().splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) corelog_\w+ ", line), line
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        samples.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return samples


def total(samples, name, **labels):
    """Sum over shards of the samples of `name` that carry `labels`."""
    return sum(v for n, ls, v in samples
               if n == name and all(ls.get(k) == want for k, want in labels.items()))


def raw_http(broker, data, timeout_s=HTTP_TIMEOUT_S):
    """Sends raw bytes to the admin port; returns (status code, whole answer)."""
    host, port = broker.admin.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout_s) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def produce_one_by_one(broker, topic, partitions):
    """MESSAGES messages, each flushed alone (linger 0): exactly one Produce per message."""
    prod = producer(broker, {"acks": "all", "linger.ms": 0, "enable.idempotence": False})
    for i in range(MESSAGES):
        prod.produce(topic, value=f"m{i}".encode(), partition=i % partitions)
        flush(prod)
    return prod


def test_counters_are_exact_after_produce_fetch_and_a_refused_request(broker):
    topic = create_topic(broker, fresh_topic("metrics"), 2)
    before = scrape(broker)
    assert total(before, "corelog_requests_total", api="Produce") == 0
    assert total(before, "corelog_metrics_recording") == 1
    assert total(before, "corelog_shards") == 2
    produce_one_by_one(broker, topic, 2)
    msgs = consume(broker, topic, {0: 0, 1: 0}, MESSAGES)
    assert len(msgs) == MESSAGES
    with kwire.Conn(broker.port) as conn:
        error_code, _ = kwire.produce(conn, 7, topic, 0, kwire.record_batch([(None, b"x", [], 0)], int(time.time() * 1000)), acks=2)
    assert error_code == 21  # INVALID_REQUIRED_ACKS

    after = scrape(broker)
    assert total(after, "corelog_requests_total", api="Produce") == MESSAGES + 1
    assert total(after, "corelog_request_errors_total", api="Produce", error="InvalidRequiredAcks") == 1
    appended = total(after, "corelog_appended_batches_total") - total(before, "corelog_appended_batches_total")
    assert appended == MESSAGES
    assert total(after, "corelog_requests_total", api="Fetch") >= 1
    assert total(after, "corelog_network_received_bytes_total") > total(before, "corelog_network_received_bytes_total")
    assert total(after, "corelog_network_sent_bytes_total") > 0
    assert total(after, "corelog_fetched_bytes_total") > 0
    assert total(after, "corelog_cache_hits_total") >= 1
    # Flushed one by one with acks=all, each message is a write and an fdatasync of its own.
    for name in ["corelog_storage_writes_total", "corelog_storage_fdatasyncs_total",
                 "corelog_storage_write_batches_count"]:
        assert total(after, name) - total(before, name) == MESSAGES, name
    assert total(after, "corelog_connections_opened_total") >= 3
    assert total(after, "corelog_log_dir_failures_total") == 0
    assert total(after, "corelog_log_dirs_offline") == 0
    # Every produce that was answered (the refused one too) has its total time.
    produce_total = total(after, "corelog_stage_duration_seconds_count", api="produce", stage="total")
    assert produce_total == MESSAGES + 1
    inf = total(after, "corelog_stage_duration_seconds_bucket", api="produce", stage="total", le="+Inf")
    assert inf == produce_total


def test_profile_stages_reset_and_cli(broker):
    topic = create_topic(broker, fresh_topic("profile"), 2)
    produce_one_by_one(broker, topic, 2)
    consume(broker, topic, {0: 0, 1: 0}, MESSAGES)

    status, headers, body = get(broker, "/v1/profile")
    assert status == 200 and headers["Content-Type"] == "application/json"
    profile = json.loads(body)
    assert profile["shards"] == 2 and profile["recording"] is True
    stages = {(s["api"], s["stage"]): s for s in profile["stages"]}
    for key in [("produce", "decode"), ("produce", "append"), ("produce", "write_wait"),
                ("produce", "fdatasync_wait"), ("produce", "response"), ("produce", "total"),
                # The two partitions live on different shards: one of them is remote
                # from whichever shard the producer's connection landed on.
                ("produce", "handoff"),
                ("fetch", "read"), ("fetch", "send"), ("fetch", "total"),
                ("storage", "write"), ("storage", "fdatasync")]:
        s = stages[key]
        assert s["count"] > 0, key
        assert s["p50_us"] <= s["p99_us"] <= s["p999_us"] <= s["max_us"], s
    assert stages[("produce", "total")]["count"] == MESSAGES
    per_shard = {p["shard"]: p["stages"] for p in profile["per_shard"]}
    assert sorted(per_shard) == [0, 1]
    merged_appends = sum(s["count"] for p in per_shard.values() for s in p if s["stage"] == "append")
    assert merged_appends == stages[("produce", "append")]["count"]

    cli = subprocess.run([str(corelog_bin()), "profile", "--admin", broker.admin, "--output", "json"],
                         capture_output=True, timeout=30)
    assert cli.returncode == 0, cli.stderr
    from_cli = json.loads(cli.stdout)
    assert {(s["api"], s["stage"]) for s in from_cli["stages"]} == set(stages)
    text = subprocess.run([str(corelog_bin()), "profile", "--admin", broker.admin, "--reset"],
                          capture_output=True, timeout=30)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.decode().splitlines()
    assert lines[1].split() == ["STAGE", "COUNT", "P50_US", "P99_US", "P99.9_US", "MAX_US"]
    row = next(l.split() for l in lines if l.startswith("produce.total "))
    assert int(row[1]) == MESSAGES

    # --reset started a new window: no produce since.
    fresh = json.loads(get(broker, "/v1/profile")[2])
    assert {(s["api"], s["stage"]): s["count"] for s in fresh["stages"]}[("produce", "total")] == 0
    assert fresh["window_seconds"] < profile["window_seconds"] + 60
    unreachable = subprocess.run([str(corelog_bin()), "profile", "--admin", f"127.0.0.1:{free_port()}"],
                                 capture_output=True, timeout=30)
    assert unreachable.returncode == 2 and b"cannot reach the admin API" in unreachable.stderr


def test_status_and_bad_http_while_kafka_clients_are_served(broker):
    status, _, body = get(broker, "/v1/status")
    doc = json.loads(body)
    assert status == 200
    assert doc["shards"] == 2 and doc["log_dirs_online"] == 1 and doc["log_dirs_offline"] == 0
    assert re.fullmatch(r"\d+\.\d+\.\d+", doc["version"]) and doc["uptime_seconds"] >= 0
    assert doc["log_dirs"][0]["online"] is True

    # A client that never finishes its request does not hold up anything else.
    host, port = broker.admin.rsplit(":", 1)
    stalled = socket.create_connection((host, int(port)), timeout=HTTP_TIMEOUT_S)
    stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    try:
        assert raw_http(broker, b"GARBAGE\r\n\r\n")[0] == 400
        assert raw_http(broker, b"GET /metrics HTTP/9.9\r\n\r\n")[0] == 400
        assert raw_http(broker, b"GET /metrics HTTP/1.1\r\nbad header\r\n\r\n")[0] == 400
        code, answer = raw_http(broker, b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        assert code == 405 and b"\r\nAllow: GET\r\n" in answer
        assert raw_http(broker, b"DELETE /v1/profile HTTP/1.1\r\n\r\n")[0] == 405
        assert raw_http(broker, b"GET /nope HTTP/1.1\r\n\r\n")[0] == 404
        assert raw_http(broker, b"GET /v1/profile?reset=maybe HTTP/1.1\r\n\r\n")[0] == 400
        code, answer = raw_http(broker, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        assert code == 431 and b"Connection: close" in answer
        assert raw_http(broker, b"GET /v1/status HTTP/1.0\r\n\r\n")[0] == 200

        topic = create_topic(broker, fresh_topic("served"), 1)
        prod = producer(broker, {"acks": "all"})
        prod.produce(topic, value=b"still-served", partition=0)
        flush(prod)
        assert [m.value() for m in consume(broker, topic, {0: 0}, 1)] == [b"still-served"]
    finally:
        stalled.close()
    assert get(broker, "/metrics")[0] == 200


def test_admin_address_taken_is_a_clear_start_up_error(broker, tmp_path):
    port = free_port()
    cmd = [str(corelog_bin()), "serve", "--smp", "1",
           "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
           "--override", f"log.dirs={tmp_path / 'second'}",
           "--override", f"admin.listener={broker.admin}"]
    proc = subprocess.run(cmd, capture_output=True, timeout=30)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "admin.listener" in err and broker.admin in err, err
    assert get(broker, "/v1/status")[0] == 200


def test_recording_off_and_admin_disabled(broker_factory):
    off = broker_factory({"metrics.enable": "false"})
    samples = scrape(off)
    assert total(samples, "corelog_metrics_recording") == 0
    assert total(samples, "corelog_requests_total") == 0
    profile = json.loads(get(off, "/v1/profile")[2])
    assert profile["recording"] is False
    assert all(s["count"] == 0 for s in profile["stages"])

    # The probe sees the admin port where there is one...
    assert listening_ports(off.proc.pid) == {off.port, off.admin_port}
    silent = broker_factory({"admin.listener": ""})
    assert "admin API" not in silent.log_text()
    # ...and without one the broker listens on its Kafka port alone.
    assert listening_ports(silent.proc.pid) == {silent.port}


def listening_ports(pid):
    """TCP ports the process listens on: LISTEN sockets in /proc/net/tcp{,6} whose
    inodes are among the process's open descriptors."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ["/proc/net/tcp", "/proc/net/tcp6"]:
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
