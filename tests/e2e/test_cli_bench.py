"""`corelog bench` against the real broker: short produce, consume and e2e runs give the
JSON schema with plausible numbers that agree with the broker's own offsets, the HTML
report holds its SVG charts, and `bench compare` prints exact ratios."""

import copy
import json
import subprocess

import pytest
from confluent_kafka import Consumer, TopicPartition

from conftest import corelog_bin, fresh_topic

BENCH_TIMEOUT_S = 60
TOP_KEYS = {"version", "tool", "mode", "config", "machine", "started_unix_ms", "results", "latency",
            "broker_profile",
            "delivery_latency", "spectrum", "client_cpu", "broker_cpu", "series"}
CONFIG_KEYS = {"mode", "bootstrap", "topic", "partitions", "create", "seconds", "count", "warmup_seconds",
               "threads", "connections", "max_in_flight", "message_size", "batch_size", "linger_ms", "acks",
               "compression", "payload", "rate"}
RESULT_KEYS = {"records", "bytes", "requests", "errors", "seconds", "records_per_sec", "mb_per_sec"}
LATENCY_KEYS = {"kind", "count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "p99_99_ms", "max_ms"}
PERCENTILES = ["p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "p99_99_ms", "max_ms"]


@pytest.fixture(scope="module")
def bbroker(module_broker_factory):
    return module_broker_factory()


def bench(broker, *args):
    r = subprocess.run([str(corelog_bin()), "bench", *args, "-b", broker.bootstrap, "--output", "json"],
                       capture_output=True, text=True, timeout=BENCH_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


def log_end_total(broker, topic, partitions):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench-check"})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions))
    finally:
        c.close()


def check_schema(d, mode, kind):
    assert set(d) == TOP_KEYS
    assert d["version"] == 1 and d["mode"] == mode
    assert set(d["config"]) == CONFIG_KEYS
    assert set(d["machine"]) == {"cores", "cpu_model", "kernel"} and d["machine"]["cores"] >= 1
    assert set(d["results"]) == RESULT_KEYS
    assert set(d["latency"]) == LATENCY_KEYS and d["latency"]["kind"] == kind
    res, lat = d["results"], d["latency"]
    assert res["records"] > 0 and res["errors"] == 0 and res["records_per_sec"] > 0 and res["mb_per_sec"] > 0
    values = [lat[k] for k in PERCENTILES]
    assert values == sorted(values) and values[0] > 0, lat
    assert lat["max_ms"] < 30_000
    spectrum = [p["ms"] for p in d["spectrum"]]
    assert spectrum == sorted(spectrum) and d["spectrum"][-1]["percentile"] == 99.999
    assert d["series"] and all(set(s) == {"second", "warmup", "records", "mb", "p50_ms", "p99_ms", "max_ms"}
                               for s in d["series"])
    assert d["client_cpu"]["seconds"] >= 0


def test_produce_then_consume_count_what_the_broker_holds(bbroker, tmp_path):
    topic = fresh_topic("bench")
    d, _ = bench(bbroker, "produce", "--topic", topic, "--partitions", "3", "--create", "--count", "20000",
                   "--warmup-seconds", "0", "--message-size", "200", "--batch-size", "16384", "--threads", "2",
                   "--acks", "1", "--compression", "lz4", "--payload", "text")
    check_schema(d, "produce", "delivery")
    assert d["delivery_latency"] is None
    assert d["config"]["count"] == 20000 and d["config"]["compression"] == "lz4"
    # Every acknowledged record is counted, nothing more: the broker's log ends agree.
    assert d["results"]["records"] >= 20000
    assert log_end_total(bbroker, topic, 3) == d["results"]["records"]
    assert d["results"]["bytes"] == 200 * d["results"]["records"]

    c, _ = bench(bbroker, "consume", "--topic", topic, "--seconds", "20")
    check_schema(c, "consume", "fetch")
    assert c["results"]["records"] == d["results"]["records"]


def test_e2e_at_a_fixed_rate_with_html_report(bbroker, tmp_path):
    report = tmp_path / "e2e.html"
    d, err = bench(bbroker, "e2e", "--topic", fresh_topic("bench-e2e"), "--partitions", "2", "--create",
                   "--rate", "2000", "--seconds", "2", "--warmup-seconds", "1", "--message-size", "100",
                   "--acks", "all", "--report", str(report), "--profile-admin", bbroker.admin)
    check_schema(d, "e2e", "end_to_end")
    # The broker's stage profile over the run: acks=all produces waited for fdatasyncs.
    stages = {(s["api"], s["stage"]): s for s in d["broker_profile"]["stages"]}
    assert stages[("produce", "fdatasync_wait")]["count"] > 0, stages.keys()
    assert set(d["delivery_latency"]) == LATENCY_KEYS
    # The rate is a ceiling: 2 measured seconds at 2000 records/s hold at most 4000 (+10%
    # for the edges of the window). How close to it a run gets depends on the machine's
    # load, so no floor here; the benchmarks make throughput claims, not this test.
    res = d["results"]
    assert 0 < res["records"] <= 4400, res
    assert res["records_per_sec"] <= 2200, res
    assert res["records_per_sec"] == pytest.approx(res["records"] / res["seconds"], rel=0.01), res
    assert [s["warmup"] for s in d["series"][:2]] == [True, False]
    assert "(warm-up)" in err and "records/s" in err
    html = report.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 3
    for title in ["latency by percentile (log scale)", "MB/s per second", "latency per second", "99.999%"]:
        assert title in html
    assert "<script" not in html and "https://" not in html
    assert "Broker latency profile" in html and "produce.fdatasync_wait" in html


def test_compare_prints_ratios(bbroker, tmp_path):
    d, _ = bench(bbroker, "produce", "--topic", fresh_topic("bench-cmp"), "--partitions", "1", "--create",
                 "--count", "2000", "--warmup-seconds", "0", "--message-size", "100", "--acks", "1")
    a, b = copy.deepcopy(d), copy.deepcopy(d)
    a["results"].update(records_per_sec=1000.0, mb_per_sec=0.1)
    b["results"].update(records_per_sec=2500.0, mb_per_sec=0.25)
    for i, k in enumerate(PERCENTILES):
        a["latency"][k] = 1.0 + i
        b["latency"][k] = 0.5 * (1.0 + i)
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    r = subprocess.run([str(corelog_bin()), "bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")],
                       capture_output=True, text=True, timeout=BENCH_TIMEOUT_S)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == (
        "metric                      A              B      B/A\n"
        "records/s              1000.0         2500.0     2.50\n"
        "MB/s                     0.10           0.25     2.50\n"
        "p50 ms                  1.000          0.500     0.50\n"
        "p90 ms                  2.000          1.000     0.50\n"
        "p99 ms                  3.000          1.500     0.50\n"
        "p99.9 ms                4.000          2.000     0.50\n"
        "p99.99 ms               5.000          2.500     0.50\n"
        "max ms                  6.000          3.000     0.50\n"
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**a, "version": 2}))
    r = subprocess.run([str(corelog_bin()), "bench", "compare", str(bad), str(tmp_path / "b.json")],
                       capture_output=True, text=True, timeout=BENCH_TIMEOUT_S)
    assert r.returncode == 2 and "schema version 2" in r.stderr
