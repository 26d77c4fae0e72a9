"""Protocol versions Kafka 4.0 removed, on the wire: message sets of formats v0/v1 in
Produce v0-2 (plain and compressed wrappers, CRC checked), Fetch v0-3 converted down
(and refused for a topic with message.downconversion.enable=false), ListOffsets v0,
OffsetCommit v0/v1 and OffsetFetch v0, and the conversions counted in /metrics. The
layouts are Kafka 3.9's (ProduceRequest/FetchResponse JSON schemas, the message format
v0/v1 documentation)."""

import gzip
import struct
import urllib.request
import zlib

from confluent_kafka.admin import NewTopic

import kwire
from clients import admin_results, consume, flush, producer
from conftest import fresh_topic
from kwire import Reader, array, int8, int16, int32, int64, nullable_bytes, string

API_LIST_OFFSETS = 2
API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9
ERR_INVALID_RECORD = 87
HTTP_TIMEOUT_S = 10


def message(offset, magic, value, key=None, timestamp=0, attributes=0):
    """One message of a set: offset, size, crc, magic, attributes, [timestamp], key, value."""
    body = int8(magic) + int8(attributes)
    if magic == 1:
        body += int64(timestamp)
    body += nullable_bytes(key) + nullable_bytes(value)
    m = struct.pack(">I", zlib.crc32(body)) + body
    return int64(offset) + int32(len(m)) + m


def parse_message_set(data):
    """[(offset, magic, attributes, timestamp or None, key, value)], every CRC checked."""
    out = []
    pos = 0
    while pos < len(data):
        offset, size = struct.unpack_from(">qi", data, pos)
        m = data[pos + 12:pos + 12 + size]
        assert len(m) == size, "partial message"
        (crc,) = struct.unpack_from(">I", m)
        assert crc == zlib.crc32(m[4:]), "bad CRC"
        r = Reader(m[4:])
        magic, attributes = r.int8(), r.int8()
        timestamp = r.int64() if magic == 1 else None
        key, value = r.bytes(), r.bytes()
        r.expect_end()
        out.append((offset, magic, attributes, timestamp, key, value))
        pos += 12 + size
    return out


def parse_produce_legacy(version, body):
    r = Reader(body)
    results = []

    def partition():
        r.int32()
        error_code, base_offset = r.int16(), r.int64()
        if version >= 2:
            r.int64()  # log_append_time
        results.append((error_code, base_offset))

    r.array(lambda: (r.string(), r.array(partition)))
    if version >= 1:
        r.int32()  # throttle_time_ms
    r.expect_end()
    return results


def produce_v(conn, version, topic, message_set):
    body = int16(-1) + int32(10000) + array([string(topic) + array([int32(0) + nullable_bytes(message_set)])])
    [result] = parse_produce_legacy(version, conn.request(kwire.API_PRODUCE, version, body))
    return result


def fetch_v(conn, version, topic, offset, max_bytes=1 << 20):
    """Fetch v0-3: (error_code, high_watermark, message set bytes)."""
    body = int32(-1) + int32(100) + int32(0)
    if version >= 3:
        body += int32(max_bytes)
    body += array([string(topic) + array([int32(0) + int64(offset) + int32(max_bytes)])])
    r = Reader(conn.request(kwire.API_FETCH, version, body))
    if version >= 1:
        r.int32()  # throttle_time_ms
    parts = []
    r.array(lambda: (r.string(), r.array(lambda: parts.append((r.int32(), r.int16(), r.int64(), r.bytes())))))
    r.expect_end()
    [(_partition, error_code, high_watermark, records)] = parts
    return error_code, high_watermark, records or b""


def new_topic(broker, config=None):
    name = fresh_topic("legacy")
    results = admin_results(broker, "create_topics",
                            [NewTopic(name, num_partitions=1, replication_factor=1, config=config or {})])
    assert results[name] is None, results
    return name


def metric(broker, name):
    with urllib.request.urlopen(f"http://{broker.admin}/metrics", timeout=HTTP_TIMEOUT_S) as r:
        text = r.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_api_versions_start_every_api_at_kafka_3_9s_lowest(broker):
    with kwire.Conn(broker.port) as conn:
        error_code, apis = kwire.api_versions(conn)
    assert error_code == 0
    for api in (0, 1, 2, 8, 9, 19, 20, 23, 32, 35):  # Produce Fetch ListOffsets OffsetCommit ...
        assert apis[api][0] == 0, (api, apis[api])
    assert apis[1][1] == 18 and apis[0][1] == 13


def test_produce_v0_to_v2_message_sets_are_appended_as_batches(broker):
    topic = new_topic(broker)
    inner = message(0, 1, b"in-a", key=b"ka", timestamp=1_700_000_000_001) + \
        message(1, 1, b"in-b", timestamp=1_700_000_000_002)
    wrapper = message(1, 1, gzip.compress(inner), timestamp=1_700_000_000_002, attributes=1)
    with kwire.Conn(broker.port) as conn:
        assert produce_v(conn, 0, topic, message(0, 0, b"v0-a", key=b"k") + message(1, 0, b"v0-b")) == (0, 0)
        assert produce_v(conn, 1, topic, message(0, 0, None, key=b"tomb")) == (0, 2)
        assert produce_v(conn, 2, topic, wrapper) == (0, 3)
        bad = bytearray(message(0, 1, b"x", timestamp=1))
        bad[-1] ^= 1
        assert produce_v(conn, 2, topic, bytes(bad)) == (kwire.ERR_CORRUPT_MESSAGE, -1)
        batch = kwire.record_batch([(None, b"v2", [], 0)], 1_700_000_000_000)
        assert produce_v(conn, 2, topic, batch)[0] == ERR_INVALID_RECORD
    got = consume(broker, topic, {0: 0}, 5)
    assert [(m.offset(), m.key(), m.value()) for m in got] == [
        (0, b"k", b"v0-a"), (1, None, b"v0-b"), (2, b"tomb", None), (3, b"ka", b"in-a"), (4, None, b"in-b")]
    assert [m.timestamp()[1] for m in got[3:]] == [1_700_000_000_001, 1_700_000_000_002]
    assert metric(broker, "corelog_produce_converted_records_total") == 5


def test_fetch_v0_to_v3_convert_batches_down(broker):
    topic = new_topic(broker)
    p = producer(broker, {"compression.type": "lz4", "linger.ms": 50})
    for i in range(4):
        p.produce(topic, value=b"val-%d" % i, key=b"key-%d" % i, partition=0, timestamp=1_700_000_000_000 + i,
                  headers={"h": b"dropped"})
    flush(p)
    with kwire.Conn(broker.port) as conn:
        for version, magic in ((0, 0), (1, 0), (2, 1), (3, 1)):
            error_code, high_watermark, data = fetch_v(conn, version, topic, 1)
            assert (error_code, high_watermark) == (0, 4)
            got = parse_message_set(data)
            want_ts = [1_700_000_000_000 + i if magic == 1 else None for i in range(1, 4)]
            assert got == [(i, magic, 0, want_ts[i - 1], b"key-%d" % i, b"val-%d" % i) for i in range(1, 4)], \
                version
        # A small limit still returns the first message, whole.
        _, _, data = fetch_v(conn, 3, topic, 0, max_bytes=10)
        assert [m[0] for m in parse_message_set(data)] == [0]
    assert metric(broker, "corelog_fetch_converted_records_total") == 13


def test_down_conversion_disabled_answers_unsupported_version(broker):
    topic = new_topic(broker, {"message.downconversion.enable": "false"})
    with kwire.Conn(broker.port) as conn:
        assert produce_v(conn, 2, topic, message(0, 1, b"x", timestamp=5)) == (0, 0)
        assert fetch_v(conn, 3, topic, 0)[0] == kwire.ERR_UNSUPPORTED_VERSION
    # Clients that read batches are not affected.
    assert [m.value() for m in consume(broker, topic, {0: 0}, 1)] == [b"x"]


def test_list_offsets_v0_and_offset_commit_fetch_v0_v1(broker):
    topic = new_topic(broker)
    with kwire.Conn(broker.port) as conn:
        assert produce_v(conn, 0, topic, message(0, 0, b"a") + message(1, 0, b"b")) == (0, 0)
        body = int32(-1) + array([string(topic) + array([int32(0) + int64(-1) + int32(1)])])
        r = Reader(conn.request(API_LIST_OFFSETS, 0, body))
        parts = []
        r.array(lambda: (r.string(), r.array(lambda: parts.append((r.int32(), r.int16(), r.array(r.int64))))))
        assert parts == [(0, 0, [2])]
        group = fresh_topic("legacy-group")
        commit_v0 = string(group) + array([string(topic) + array([int32(0) + int64(1) + string("m0")])])
        r = Reader(conn.request(API_OFFSET_COMMIT, 0, commit_v0))
        errors = []
        r.array(lambda: (r.string(), r.array(lambda: errors.append((r.int32(), r.int16())))))
        assert errors == [(0, 0)]
        commit_v1 = string(group) + int32(-1) + string("") + \
            array([string(topic) + array([int32(0) + int64(2) + int64(-1) + string("m1")])])
        conn.request(API_OFFSET_COMMIT, 1, commit_v1)
        r = Reader(conn.request(API_OFFSET_FETCH, 0, string(group) + array([string(topic) + array([int32(0)])])))
        fetched = []
        r.array(lambda: (r.string(), r.array(lambda: fetched.append((r.int32(), r.int64(), r.string(), r.int16())))))
        assert fetched == [(0, 2, "m1", 0)]
