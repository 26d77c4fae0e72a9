"""Debian's Go Kafka clients, built offline in GOPATH mode from Debian's packages:
Sarama 1.22 (golang-github-shopify-sarama-dev) and segmentio/kafka-go 0.2.1
(golang-github-segmentio-kafka-go-dev). Both speak protocol versions Kafka 4.0 removed:
Sarama commits with OffsetCommit v1 and, told an old Kafka version, produces message
formats v0/v1 (Produce v0/v2) and fetches with Fetch v0/v3; kafka-go produces format v1
with Produce v2, fetches with Fetch v2 and creates topics with CreateTopics v0. Each test
reads back exactly what was written, and the group tests restart the broker and check
that consumption resumes from the committed offset."""

import os
import shutil
import subprocess
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from clients import admin_results, consume, watermarks
from conftest import fresh_topic
from test_legacy_formats import metric

GOPATH_DEBIAN = "/usr/share/gocode"
GO_BUILD_TIMEOUT_S = 300
CLIENT_TIMEOUT_S = 90
COMMITTED_TIMEOUT_S = 15
HERE = os.path.dirname(__file__)


def go_binary(tmp_path_factory, source, package):
    go = shutil.which("go")
    assert go, "go is missing: scripts/test.sh --install-only installs golang-go"
    assert os.path.isdir(os.path.join(GOPATH_DEBIAN, "src", package)), \
        f"{package} is missing: scripts/test.sh --install-only installs it"
    tmp = tmp_path_factory.mktemp("go")
    binary = tmp / os.path.basename(os.path.dirname(source))
    env = {**os.environ, "GOPATH": GOPATH_DEBIAN, "GO111MODULE": "off", "GOFLAGS": "",
           "GOCACHE": str(tmp / "gocache")}
    subprocess.run([go, "build", "-o", str(binary), source], env=env, check=True,
                   capture_output=True, timeout=GO_BUILD_TIMEOUT_S)
    return binary


@pytest.fixture(scope="module")
def sarama_produce(tmp_path_factory):
    return go_binary(tmp_path_factory, os.path.join(HERE, "sarama", "produce.go"), "github.com/Shopify/sarama")


@pytest.fixture(scope="module")
def sarama_group(tmp_path_factory):
    return go_binary(tmp_path_factory, os.path.join(HERE, "sarama", "group.go"), "github.com/Shopify/sarama")


@pytest.fixture(scope="module")
def kafkago(tmp_path_factory):
    return go_binary(tmp_path_factory, os.path.join(HERE, "kafkago", "main.go"), "github.com/segmentio/kafka-go")


def run(*args):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    assert out.returncode == 0, f"{args} exited {out.returncode}\nstderr:\n{out.stderr}"
    return out.stdout.splitlines()


def new_topic(broker, partitions=1):
    name = fresh_topic("go")
    results = admin_results(broker, "create_topics", [NewTopic(name, num_partitions=partitions, replication_factor=1)])
    assert results[name] is None, results
    return name


def committed(broker, group, topic, partition=0):
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "broker.address.family": "v4"})
    try:
        [tp] = c.committed([TopicPartition(topic, partition)], timeout=COMMITTED_TIMEOUT_S)
        return tp.offset
    finally:
        c.close()


def now_ms():
    return int(time.time() * 1000)


# --- Sarama 1.22 -------------------------------------------------------------------------

@pytest.mark.parametrize("version,compression", [
    ("0.8.2.0", "none"), ("0.8.2.0", "gzip"), ("0.8.2.0", "snappy"),
    ("0.10.0.0", "none"), ("0.10.0.0", "gzip"), ("0.10.0.0", "snappy"), ("0.10.0.0", "lz4"),
])
def test_sarama_old_message_formats_are_stored_as_batches(broker, sarama_produce, version, compression):
    """0.8.2: Produce v0, message format v0 (no timestamps: the broker's append time);
    0.10.0: Produce v2, format v1 with Sarama's create times. Read back as v2 batches."""
    topic = new_topic(broker)
    before = now_ms()
    out = run(sarama_produce, "-broker", broker.bootstrap, "-topic", topic, "-count", 5,
              "-compression", compression, "-version", version)
    after = now_ms()
    assert out == ["0 %d" % i for i in range(5)]
    got = consume(broker, topic, {0: 0}, 5)
    assert [(m.offset(), m.value()) for m in got] == [(i, b"sarama-%d" % i) for i in range(5)]
    assert metric(broker, "corelog_produce_converted_records_total") == 5
    for m in got:
        assert before - 1000 <= m.timestamp()[1] <= after, (m.timestamp(), before, after)


@pytest.mark.parametrize("version", ["0.10.2.0", "2.1.0"])
def test_sarama_group_commits_with_offset_commit_v1_and_resumes_after_restart(
        broker, sarama_produce, sarama_group, version):
    """Sarama 1.22 commits with OffsetCommit v1 whatever the version; 0.10.2 also fetches
    with Fetch v3 (batches converted down to format v1), 2.1.0 with Fetch v4+."""
    topic = new_topic(broker)
    group = fresh_topic("sarama-group")
    run(sarama_produce, "-broker", broker.bootstrap, "-topic", topic, "-count", 10, "-version", "0.10.0.0")
    first = run(sarama_group, "-broker", broker.bootstrap, "-topic", topic, "-group", group, "-count", 6,
                "-version", version)
    assert first == ["0 %d sarama-%d" % (i, i) for i in range(6)]
    assert committed(broker, group, topic) == 6
    broker.restart()
    run(sarama_produce, "-broker", broker.bootstrap, "-topic", topic, "-count", 4, "-from", 10,
        "-compression", "gzip", "-version", "0.10.0.0")
    second = run(sarama_group, "-broker", broker.bootstrap, "-topic", topic, "-group", group, "-count", 8,
                 "-version", version)
    assert second == ["0 %d sarama-%d" % (i, i) for i in range(6, 14)]
    assert committed(broker, group, topic) == 14
    # Only Fetch v3 converts down (the counter restarted with the broker).
    assert (metric(broker, "corelog_fetch_converted_records_total") > 0) == (version == "0.10.2.0")


# --- kafka-go 0.2.1 ----------------------------------------------------------------------

def test_kafka_go_creates_produces_each_codec_and_resumes_its_group_after_restart(broker, kafkago):
    topic = fresh_topic("kafkago")
    group = fresh_topic("kafkago-group")
    run(kafkago, "create", "-broker", broker.bootstrap, "-topic", topic, "-partitions", 1)
    codecs = ["none", "gzip", "snappy", "lz4"]
    for n, codec in enumerate(codecs):
        run(kafkago, "produce", "-broker", broker.bootstrap, "-topic", topic, "-from", n * 5, "-count", 5,
            "-compression", codec)
    assert watermarks(broker, topic, 0) == (0, 20)
    got = consume(broker, topic, {0: 0}, 20)
    assert [(m.key(), m.value()) for m in got] == [(b"k%d" % i, b"kafka-go-%d" % i) for i in range(20)]
    assert metric(broker, "corelog_produce_converted_records_total") == 20

    first = run(kafkago, "consume", "-broker", broker.bootstrap, "-topic", topic, "-group", group, "-count", 12)
    assert first == ["0 %d k%d kafka-go-%d" % (i, i, i) for i in range(12)]
    assert committed(broker, group, topic) == 12
    broker.restart()
    run(kafkago, "produce", "-broker", broker.bootstrap, "-topic", topic, "-from", 20, "-count", 3)
    second = run(kafkago, "consume", "-broker", broker.bootstrap, "-topic", topic, "-group", group, "-count", 11)
    assert second == ["0 %d k%d kafka-go-%d" % (i, i, i) for i in range(12, 23)]
    assert committed(broker, group, topic) == 23
    assert metric(broker, "corelog_fetch_converted_records_total") >= 11


# --- confluent-kafka-go 0.11.6 -----------------------------------------------------------

@pytest.fixture(scope="module")
def confluentgo(tmp_path_factory):
    return go_binary(tmp_path_factory, os.path.join(HERE, "confluentgo", "main.go"),
                     "github.com/confluentinc/confluent-kafka-go")


def test_confluent_kafka_go_creates_produces_each_codec_and_resumes_its_group_after_restart(broker, confluentgo):
    """Debian's confluent-kafka-go over Debian's librdkafka 2.0.2: current protocol
    versions (record batches), the oldest librdkafka the suite drives through a group."""
    topic = fresh_topic("confluentgo")
    group = fresh_topic("confluentgo-group")
    run(confluentgo, "create", "-broker", broker.bootstrap, "-topic", topic, "-partitions", 1)
    for n, codec in enumerate(["none", "gzip", "snappy", "lz4", "zstd"]):
        run(confluentgo, "produce", "-broker", broker.bootstrap, "-topic", topic, "-from", n * 4, "-count", 4,
            "-compression", codec)
    got = consume(broker, topic, {0: 0}, 20)
    assert [(m.key(), m.value()) for m in got] == [(b"k%d" % i, b"confluent-go-%d" % i) for i in range(20)]

    first = run(confluentgo, "consume", "-broker", broker.bootstrap, "-topic", topic, "-group", group, "-count", 9)
    assert first == ["0 %d k%d confluent-go-%d" % (i, i, i) for i in range(9)]
    assert committed(broker, group, topic) == 9
    broker.restart()
    run(confluentgo, "produce", "-broker", broker.bootstrap, "-topic", topic, "-from", 20, "-count", 2)
    second = run(confluentgo, "consume", "-broker", broker.bootstrap, "-topic", topic, "-group", group, "-count", 13)
    assert second == ["0 %d k%d confluent-go-%d" % (i, i, i) for i in range(9, 22)]
    assert committed(broker, group, topic) == 22
