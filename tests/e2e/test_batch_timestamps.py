"""Batches whose maxTimestamp is unset (-1) or wrong: the broker derives it from the
records, so time retention, the time index and offsets_for_times see the true times.
Sarama 1.22 (Debian's golang-github-shopify-sarama-dev, built offline in GOPATH mode)
sends -1 there; raw batches cover the rest (compressed, disagreeing headers)."""

import gzip
import os
import shutil
import struct
import subprocess
import time

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

import kwire
from clients import admin_results, consume, consumer, wait_until, watermarks
from conftest import fresh_topic

RETENTION_CHECK_MS = 200
# Several retention checks: long enough that a broker trusting -1 would have deleted.
RETENTION_CHECKS_WAIT_S = 2.0
DAY_MS = 86_400_000
GO_BUILD_TIMEOUT_S = 300
SARAMA_TIMEOUT_S = 60
SARAMA_SOURCE = os.path.join(os.path.dirname(__file__), "sarama", "produce.go")
GOPATH_DEBIAN = "/usr/share/gocode"


def now_ms():
    return int(time.time() * 1000)


def lifecycle_broker(broker_factory):
    return broker_factory(overrides={"log.retention.check.interval.ms": str(RETENTION_CHECK_MS)})


def new_topic(broker, config):
    name = fresh_topic("ts")
    results = admin_results(broker, "create_topics",
                            [NewTopic(name, num_partitions=1, replication_factor=1, config=config)])
    assert results[name] is None, results
    return name


def with_max_timestamp(batch: bytes, max_ts: int) -> bytes:
    """The batch with maxTimestamp replaced and its CRC recomputed, as a client that
    gets the header wrong would send it."""
    out = bytearray(batch)
    struct.pack_into(">q", out, 35, max_ts)
    struct.pack_into(">I", out, kwire.BATCH_CRC_OFFSET, kwire.crc32c(bytes(out[kwire.BATCH_CRC_COVERED_OFFSET:])))
    return bytes(out)


def gzipped(batch: bytes) -> bytes:
    """The same batch with its records section gzip-compressed (codec 1)."""
    header, records = bytearray(batch[:61]), batch[61:]
    body = gzip.compress(records)
    struct.pack_into(">h", header, 21, struct.unpack_from(">h", header, 21)[0] | 1)
    out = header + body
    struct.pack_into(">i", out, 8, len(out) - 12)
    struct.pack_into(">I", out, kwire.BATCH_CRC_OFFSET, kwire.crc32c(bytes(out[kwire.BATCH_CRC_COVERED_OFFSET:])))
    return bytes(out)


def produce_raw(broker, topic, batch):
    with kwire.Conn(broker.port) as conn:
        error_code, base_offset = kwire.produce(conn, 8, topic, 0, batch)
    assert error_code == 0, error_code
    return base_offset


def fetched_headers(broker, topic):
    """[(base_offset, max_timestamp, crc_ok)] of every batch in partition 0."""
    with kwire.Conn(broker.port) as conn:
        error_code, _high_watermark, data = kwire.fetch(conn, topic, 0, 0)
    assert error_code == 0, error_code
    out = []
    pos = 0
    for base_offset, _attributes, _count, crc_ok in kwire.batch_headers(data):
        out.append((base_offset, struct.unpack_from(">q", data, pos + 35)[0], crc_ok))
        pos += 12 + struct.unpack_from(">i", data, pos + 8)[0]
    return out


def offsets_for_times(broker, topic, ts):
    c = consumer(broker)
    try:
        (tp,) = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=15)
        return tp.offset
    finally:
        c.close()


def records(count, step_ms):
    return [(None, b"v%d" % i, [], i * step_ms) for i in range(count)]


def test_unset_and_wrong_max_timestamps_are_derived_from_the_records(broker_factory):
    broker = lifecycle_broker(broker_factory)
    topic = new_topic(broker, {"retention.ms": str(DAY_MS)})
    base = now_ms() - 60_000
    # Records at base, base+1000, base+2000: the true max is base+2000.
    raw = kwire.record_batch(records(3, 1000), base)
    sent = [
        with_max_timestamp(raw, -1),               # Sarama 1.22
        with_max_timestamp(raw, base + 1000),      # disagrees: too small
        with_max_timestamp(raw, base - 5),         # below the first record
        gzipped(with_max_timestamp(raw, -1)),      # compressed, unset
        gzipped(with_max_timestamp(raw, base - 5)),  # compressed, below its base
    ]
    offsets = [produce_raw(broker, topic, b) for b in sent]
    assert offsets == [0, 3, 6, 9, 12]
    assert fetched_headers(broker, topic) == [(o, base + 2000, True) for o in offsets]
    time.sleep(RETENTION_CHECKS_WAIT_S)
    assert watermarks(broker, topic, 0) == (0, 15)
    # Each batch's middle record is the first at or after base + 500.
    assert offsets_for_times(broker, topic, base + 500) == 1
    assert offsets_for_times(broker, topic, base + 2000) == 2
    assert offsets_for_times(broker, topic, base + 2001) == -1
    # The same after a restart (time index reloaded from disk).
    broker.restart()
    assert offsets_for_times(broker, topic, base + 1500) == 2
    assert watermarks(broker, topic, 0) == (0, 15)


def test_records_are_kept_for_retention_ms_after_their_append_whatever_their_timestamps(broker_factory):
    broker = lifecycle_broker(broker_factory)
    retention_ms = 6000
    topic = new_topic(broker, {"retention.ms": str(retention_ms), "segment.bytes": "1024"})
    appended_at = time.monotonic()
    # Records dated a week ago (a replay of history) and ones with no timestamp at all.
    old = kwire.record_batch(records(3, 1), now_ms() - 7 * DAY_MS)
    for _ in range(6):
        produce_raw(broker, topic, old)
    produce_raw(broker, topic, with_max_timestamp(kwire.record_batch(records(1, 0), -1), -1))
    time.sleep(RETENTION_CHECKS_WAIT_S)
    if time.monotonic() - appended_at < retention_ms / 1000:
        assert watermarks(broker, topic, 0) == (0, 19)
    # Once retention.ms has passed since the append, they go like any expired data.
    wait_until(lambda: watermarks(broker, topic, 0) == (19, 19), 20, "every record deleted by retention")


def go_build_env(tmp_path):
    return {**os.environ, "GOPATH": GOPATH_DEBIAN, "GO111MODULE": "off", "GOFLAGS": "",
            "GOCACHE": str(tmp_path / "gocache")}


@pytest.fixture(scope="module")
def sarama_produce(tmp_path_factory):
    go = shutil.which("go")
    assert go, "go is missing: scripts/test.sh --install-only installs golang-go"
    assert os.path.isdir(os.path.join(GOPATH_DEBIAN, "src/github.com/Shopify/sarama")), \
        "Sarama is missing: scripts/test.sh --install-only installs golang-github-shopify-sarama-dev"
    tmp = tmp_path_factory.mktemp("sarama")
    binary = tmp / "sarama-produce"
    subprocess.run([go, "build", "-o", str(binary), SARAMA_SOURCE], env=go_build_env(tmp), check=True,
                   capture_output=True, timeout=GO_BUILD_TIMEOUT_S)
    return binary


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_sarama_1_22_records_survive_retention_and_are_found_by_time(broker_factory, sarama_produce, compression):
    broker = lifecycle_broker(broker_factory)
    topic = new_topic(broker, {"retention.ms": str(DAY_MS)})
    before = now_ms()
    out = subprocess.run([str(sarama_produce), "-broker", broker.bootstrap, "-topic", topic, "-count", "5",
                          "-compression", compression],
                         capture_output=True, text=True, timeout=SARAMA_TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    after = now_ms()
    assert out.stdout.split("\n")[:5] == ["0 %d" % i for i in range(5)]
    for _offset, max_ts, crc_ok in fetched_headers(broker, topic):
        assert crc_ok and before <= max_ts <= after, (max_ts, before, after)
    time.sleep(RETENTION_CHECKS_WAIT_S)
    assert watermarks(broker, topic, 0) == (0, 5)
    got = consume(broker, topic, {0: 0}, 5)
    assert [m.value() for m in got] == [b"sarama-%d" % i for i in range(5)]
    # Sarama's record timestamps are its send times; the last record is found by its own.
    last_ts = got[-1].timestamp()[1]
    assert before <= last_ts <= after
    assert offsets_for_times(broker, topic, last_ts) <= 4
    assert offsets_for_times(broker, topic, after + 1) == -1
