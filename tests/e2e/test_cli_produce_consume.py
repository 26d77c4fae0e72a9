"""`corelog produce` and `corelog consume` against the real broker, checked against
confluent-kafka (librdkafka) and kcat: exact records, partitions, offsets and output."""

import json
import re
import signal
import subprocess
import threading
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition

from clients import Deliveries, base_config, consume, create_topic, flush, kcat, producer, wait_until
from conftest import corelog_bin, fresh_topic

CLI_TIMEOUT_S = 60
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def corelog(broker, *args, input=None):
    return subprocess.run([str(corelog_bin()), *args, "-b", broker.bootstrap], capture_output=True,
                          timeout=CLI_TIMEOUT_S, input=input, text=True)


def fetch_requests(broker):
    """Fetch requests the broker has received, from its /metrics."""
    with urllib.request.urlopen(f"http://{broker.admin}/metrics", timeout=CLI_TIMEOUT_S) as r:
        text = r.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(r'^corelog_requests_total\{[^}]*api="Fetch"[^}]*\} (\S+)$',
                                                          text, re.MULTILINE))


class LineCollector(threading.Thread):
    """Collects a process's stdout lines as they come, so a test can wait for them."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.lines = []

    def run(self):
        for line in self.stream:
            self.lines.append(line)

    def text(self):
        self.join(timeout=CLI_TIMEOUT_S)
        assert not self.is_alive(), "stdout still open"
        return "".join(self.lines)


def produce_lines(broker, topic, lines, *args):
    r = corelog(broker, "produce", topic, *args, input="".join(f"{line}\n" for line in lines))
    assert r.returncode == 0, r.stderr
    return r


def test_keyed_lines_land_where_murmur2_random_puts_them(broker):
    topic = create_topic(broker, fresh_topic("cli-keys"), 5)
    twin = create_topic(broker, fresh_topic("cli-keys-twin"), 5)
    keys = [f"user-{i}" for i in range(40)] + ["", "21", "foobar"]
    r = produce_lines(broker, topic, [f"{k}:value {i}" for i, k in enumerate(keys)], "--key-separator", ":")
    assert (r.stdout, r.stderr) == ("", "")

    # Where librdkafka's murmur2_random (the Java client's partitioner) puts the same keys.
    deliveries = Deliveries()
    prod = producer(broker, {"partitioner": "murmur2_random"})
    for i, k in enumerate(keys):
        prod.produce(twin, key=k.encode(), value=f"value {i}".encode(), on_delivery=deliveries)
    flush(prod)
    want = sorted((p, key, value) for p, _, key, value in deliveries.ok)
    assert len(set(p for p, *_ in want)) > 1

    got = consume(broker, topic, {p: 0 for p in range(5)}, len(keys))
    assert sorted((m.partition(), m.key(), m.value()) for m in got) == want

    # kcat reads the same records, keys and partitions.
    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p|%k|%s\\n").stdout.decode()
    rows = sorted(tuple(line.split("|")) for line in out.splitlines())
    assert rows == sorted((str(p), k.decode(), v.decode()) for p, k, v in want)


def test_json_summary_headers_and_partition(broker):
    topic = create_topic(broker, fresh_topic("cli-sum"), 3)
    r = produce_lines(broker, topic, ["a", "b", "c"], "--partition", "1", "--header", "src=cli",
                      "--header", "n=2", "--output", "json")
    assert json.loads(r.stdout) == {"topic": topic, "records": 3, "partitions": [
        {"partition": 1, "records": 3, "first_offset": 0, "last_offset": 2}]}
    r = produce_lines(broker, topic, ["d"], "--partition", "1", "--output", "json", "--acks", "1")
    assert json.loads(r.stdout)["partitions"] == [{"partition": 1, "records": 1, "first_offset": 3,
                                                   "last_offset": 3}]
    # acks=0: no answer, so no offsets to report.
    r = produce_lines(broker, topic, ["e"], "--partition", "2", "--output", "json", "--acks", "0")
    assert json.loads(r.stdout)["partitions"] == [{"partition": 2, "records": 1, "first_offset": -1,
                                                   "last_offset": -1}]
    assert [m.value() for m in consume(broker, topic, {2: 0}, 1)] == [b"e"]
    got = consume(broker, topic, {1: 0}, 4)
    assert [(m.offset(), m.key(), m.value(), m.headers()) for m in got] == [
        (0, None, b"a", [("src", b"cli"), ("n", b"2")]),
        (1, None, b"b", [("src", b"cli"), ("n", b"2")]),
        (2, None, b"c", [("src", b"cli"), ("n", b"2")]),
        (3, None, b"d", None)]


def test_keyless_round_robin_spreads_and_file_input(broker, tmp_path):
    topic = create_topic(broker, fresh_topic("cli-rr"), 3)
    f = tmp_path / "lines.txt"
    f.write_text("".join(f"line {i}\n" for i in range(9)))
    r = corelog(broker, "produce", topic, "--file", str(f), "--partitioner", "roundrobin", "--output", "json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["records"] == 9
    assert [(p["partition"], p["records"]) for p in summary["partitions"]] == [(0, 3), (1, 3), (2, 3)]


def test_line_without_separator_is_usage_error(broker):
    topic = create_topic(broker, fresh_topic("cli-sep"), 1)
    r = corelog(broker, "produce", topic, "--key-separator", ":", input="k:v\nno separator here\nx:y\n")
    assert r.returncode == 2
    assert r.stderr == ('corelog: line 2 has no key separator ":": with --key-separator every line '
                        'must be KEY:VALUE\n')
    # The lines before it were sent, the ones after it were not.
    got = consume(broker, topic, {0: 0}, 1)
    assert [(m.key(), m.value()) for m in got] == [(b"k", b"v")]


def test_unknown_topic_without_auto_create_is_exit_1(broker_factory):
    b = broker_factory({"auto.create.topics.enable": "false"})
    r = corelog(b, "produce", "no-such-topic", input="x\n")
    assert r.returncode == 1
    assert "UnknownTopicOrPartition (error code 3)" in r.stderr
    assert "corelog topic create" in r.stderr


def test_consume_prints_exactly_what_confluent_produced(broker):
    topic = create_topic(broker, fresh_topic("cli-cons"), 2)
    deliveries = Deliveries()
    prod = producer(broker)
    sent = []
    for i in range(12):
        key = None if i % 4 == 3 else f"k{i}".encode()
        headers = [("i", str(i).encode())] if i % 2 else []
        ts = 1_700_000_000_000 + i
        prod.produce(topic, key=key, value=f"v{i} \"quoted\"\t".encode(), partition=i % 2, headers=headers,
                     timestamp=ts, on_delivery=deliveries)
        sent.append((i % 2, key, f"v{i} \"quoted\"\t".encode(), {h: v.decode() for h, v in headers}, ts))
        flush(prod)
    assert not deliveries.errors
    offsets = {(p, v): off for p, off, _, v in deliveries.ok}
    want = sorted(({"topic": topic, "partition": p, "offset": offsets[(p, v)], "timestamp": ts,
                    "key": None if k is None else k.decode(), "value": v.decode(), "headers": h}
                   for p, k, v, h, ts in sent), key=lambda r: (r["partition"], r["offset"]))

    r = corelog(broker, "consume", topic, "--from-beginning", "--max-messages", "12", "--format", "json")
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(got, key=lambda r: (r["partition"], r["offset"])) == want

    r = corelog(broker, "consume", topic, "--partition", "1", "--offset", "2", "--max-messages", "3")
    assert (r.returncode, r.stdout) == (0, "".join(f"v{i} \"quoted\"\t\n" for i in (5, 7, 9))), r.stderr

    r = corelog(broker, "consume", topic, "--partition", "0", "--from-beginning", "--timeout-ms", "1500",
                "--format", "kv", "--key-separator", "=")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(f"{'null' if i % 4 == 3 else f'k{i}'}=v{i} \"quoted\"\t\n" for i in range(0, 12, 2))


@pytest.mark.parametrize("codec", CODECS)
def test_each_codec_round_trips(broker, codec):
    topic = create_topic(broker, fresh_topic(f"cli-{codec}"), 1)
    lines = [f"key{i}|{'payload ' * (i % 7)}{i}" for i in range(200)]
    produce_lines(broker, topic, lines, "--compression", codec, "--key-separator", "|", "--linger-ms", "50")
    # librdkafka decodes corelog's batches...
    got = consume(broker, topic, {0: 0}, len(lines))
    assert [(m.key().decode() + "|" + m.value().decode()) for m in got] == lines
    # ...and corelog decodes its own and librdkafka's.
    prod = producer(broker, {"compression.type": codec, "linger.ms": 50})
    for line in lines:
        k, v = line.split("|", 1)
        prod.produce(topic, key=k.encode(), value=v.encode(), partition=0)
    flush(prod)
    r = corelog(broker, "consume", topic, "--from-beginning", "--max-messages", str(2 * len(lines)),
                "--format", "kv", "--key-separator", "|")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(f"{line}\n" for line in lines * 2)


def test_consume_from_latest_sees_only_new_records_and_sigterm_exits_0(broker):
    topic = create_topic(broker, fresh_topic("cli-tail"), 2)
    produce_lines(broker, topic, ["old"], "--partition", "0")
    fetches_before = fetch_requests(broker)
    proc = subprocess.Popen([str(corelog_bin()), "consume", topic, "-b", broker.bootstrap],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = LineCollector(proc.stdout)
    out.start()
    try:
        # Its first Fetch comes after ListOffsets answered: "latest" is fixed from then on.
        wait_until(lambda: fetch_requests(broker) > fetches_before, CLI_TIMEOUT_S, "the consumer to fetch")
        produce_lines(broker, topic, ["new1", "new2"], "--partition", "1")
        wait_until(lambda: len(out.lines) >= 2, CLI_TIMEOUT_S, "the consumer to print both new records")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=CLI_TIMEOUT_S)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, out.text(), err) == (0, "new1\nnew2\n", "")


def test_consume_group_commits_and_resumes(broker):
    topic = create_topic(broker, fresh_topic("cli-grp"), 2)
    group = fresh_topic("g")
    produce_lines(broker, topic, [f"{i % 2}:{i}" for i in range(20)], "--key-separator", ":",
                  "--partitioner", "roundrobin")
    r = corelog(broker, "consume", topic, "--group", group, "--from-beginning", "--max-messages", "7",
                "--format", "json")
    assert r.returncode == 0, r.stderr
    first = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(first) == 7
    r = corelog(broker, "consume", topic, "--group", group, "--from-beginning", "--timeout-ms", "2000",
                "--format", "json")
    assert r.returncode == 0, r.stderr
    second = [json.loads(line) for line in r.stdout.splitlines()]
    seen = [(m["partition"], m["offset"]) for m in first + second]
    assert sorted(seen) == sorted((p, o) for p in range(2) for o in range(10)), seen
    # Each run went on from where the previous one's commit left each partition.
    for p in range(2):
        firsts = [m["offset"] for m in first if m["partition"] == p]
        seconds = [m["offset"] for m in second if m["partition"] == p]
        assert firsts + seconds == list(range(10))
    r = corelog(broker, "group", "describe", group, "--output", "json")
    assert json.loads(r.stdout)["offsets"] == [
        {"topic": topic, "partition": p, "committed": 10, "log_end": 10, "lag": 0} for p in range(2)]


def group_members(broker, group):
    r = corelog(broker, "group", "describe", group, "--output", "json")
    if r.returncode != 0:
        return None
    d = json.loads(r.stdout)
    return d["state"], len(d["members"])


class ConfluentMember:
    def __init__(self, broker, group, topic):
        self.c = Consumer({**base_config(broker), "group.id": group, "auto.offset.reset": "earliest",
                           "partition.assignment.strategy": "range", "enable.auto.commit": True})
        self.c.subscribe([topic])

    def poll(self):
        m = self.c.poll(0.2)
        return [] if m is None or m.error() is not None else [(m.partition(), m.offset())]

    def partitions(self):
        return sorted(tp.partition for tp in self.c.assignment())

    def close(self):
        self.c.close()


class KafkaPythonMember:
    def __init__(self, broker, group, topic):
        from kafka import KafkaConsumer
        from kafka.coordinator.assignors.range import RangePartitionAssignor
        self.c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, auto_offset_reset="earliest",
                               partition_assignment_strategy=[RangePartitionAssignor])
        self.c.subscribe([topic])

    def poll(self):
        batches = self.c.poll(timeout_ms=200)
        return [(r.partition, r.offset) for records in batches.values() for r in records]

    def partitions(self):
        return sorted(tp.partition for tp in self.c.assignment())

    def close(self):
        self.c.close()


@pytest.mark.parametrize("corelog_first", [True, False], ids=["corelog-leads", "other-leads"])
@pytest.mark.parametrize("other", [ConfluentMember, KafkaPythonMember], ids=["confluent", "kafka-python"])
def test_corelog_and_another_client_split_partitions(broker, other, corelog_first):
    """A corelog member and a librdkafka or kafka-python member in one group: the range
    assignment, computed by the leader (normally whoever joined first), gives each two of four
    partitions, and each reads only its own."""
    topic = create_topic(broker, fresh_topic("cli-split"), 4)
    group = fresh_topic("g")
    member = None
    proc = None
    got = []
    try:
        if not corelog_first:
            member = other(broker, group, topic)
            deadline = time.monotonic() + 30
            while len(member.partitions()) != 4:
                assert time.monotonic() < deadline, "the other client did not get the partitions"
                got += member.poll()
        proc = subprocess.Popen([str(corelog_bin()), "consume", topic, "--group", group, "--from-beginning",
                                 "--format", "json", "-b", broker.bootstrap],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        printed = LineCollector(proc.stdout)
        printed.start()
        if corelog_first:
            wait_until(lambda: group_members(broker, group) == ("Stable", 1), 30, "corelog to join")
            member = other(broker, group, topic)
        deadline = time.monotonic() + 40
        while not (len(member.partitions()) == 2 and group_members(broker, group) == ("Stable", 2)):
            assert time.monotonic() < deadline, f"no shared group: {group_members(broker, group)}"
            got += member.poll()
        mine = member.partitions()
        assert len(mine) == 2, mine

        prod = producer(broker)
        for i in range(40):
            prod.produce(topic, value=f"p{i % 4}-{i // 4}".encode(), partition=i % 4)
        flush(prod)
        deadline = time.monotonic() + 30
        while len(got) < 20 and time.monotonic() < deadline:
            got += member.poll()
        wait_until(lambda: len(printed.lines) >= 20, 30, "corelog to print its half")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=CLI_TIMEOUT_S)
        out, err = printed.text(), proc.stderr.read()
    finally:
        if member is not None:
            member.close()
        if proc is not None and proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    theirs = [(r["partition"], r["offset"]) for r in map(json.loads, out.splitlines())]
    assert sorted(got) == sorted((p, o) for p in mine for o in range(10))
    others = sorted(set(range(4)) - set(mine))
    assert sorted(theirs) == sorted((p, o) for p in others for o in range(10))


def test_completion_scripts():
    for shell in ["bash", "zsh", "fish"]:
        r = subprocess.run([str(corelog_bin()), "completion", shell], capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_S)
        assert r.returncode == 0, r.stderr
        for word in ["produce", "consume", "reset-offsets", "key-separator"]:
            assert word in r.stdout, (shell, word)
    r = subprocess.run(["bash", "-n"], input=subprocess.run(
        [str(corelog_bin()), "completion", "bash"], capture_output=True, text=True).stdout, capture_output=True,
        text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("cmd", [["produce"], ["consume"], ["group"], ["group", "reset-offsets"],
                                 ["completion"], ["topic"]])
def test_help_has_examples(cmd):
    r = subprocess.run([str(corelog_bin()), *cmd, "--help"], capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    assert "Examples:\n  corelog " in r.stdout


def test_offset_inside_a_compressed_batch(broker):
    """A fetch at an offset in the middle of a batch returns the whole batch: the records
    before the offset are not printed."""
    topic = create_topic(broker, fresh_topic("cli-mid"), 1)
    r = produce_lines(broker, topic, [f"r{i}" for i in range(10)], "--compression", "lz4",
                      "--linger-ms", "1000", "--output", "json")
    assert json.loads(r.stdout)["partitions"] == [{"partition": 0, "records": 10, "first_offset": 0,
                                                   "last_offset": 9}]
    r = corelog(broker, "consume", topic, "--offset", "6", "--max-messages", "4", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [(m["offset"], m["value"]) for m in map(json.loads, r.stdout.splitlines())] == [
        (o, f"r{o}") for o in range(6, 10)]


def test_committed_offset_out_of_range_resets_per_flag(broker):
    topic = create_topic(broker, fresh_topic("cli-oor"), 1)
    produce_lines(broker, topic, ["a", "b", "c"])
    group = fresh_topic("g")
    c = Consumer({**base_config(broker), "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 100)], asynchronous=False)
    finally:
        c.close()
    # Committed 100 is past the log end: the fetch answers OFFSET_OUT_OF_RANGE and the
    # member starts over from the earliest offset, as --from-beginning asks.
    r = corelog(broker, "consume", topic, "--group", group, "--from-beginning", "--timeout-ms", "2000")
    assert (r.returncode, r.stdout) == (0, "a\nb\nc\n"), r.stderr


def test_usage_and_connection_errors_are_exit_2():
    for args in (["produce", "t", "--acks", "2"], ["produce", "t", "--compression", "brotli"],
                 ["consume", "t", "--offset", "soon"], ["consume", "t", "--from-beginning", "--offset", "3"]):
        r = subprocess.run([str(corelog_bin()), *args], capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stdout == ""
    for cmd in (["produce", "t"], ["consume", "t"]):
        r = subprocess.run([str(corelog_bin()), *cmd, "-b", "127.0.0.1:1"], capture_output=True, text=True,
                           timeout=CLI_TIMEOUT_S, input="x\n")
        assert r.returncode == 2
        assert r.stderr.startswith("corelog: cannot connect to 127.0.0.1:1"), r.stderr
