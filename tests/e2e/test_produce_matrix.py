"""confluent-kafka round trips: every acks setting with every compression codec."""

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME

import kwire
from clients import Deliveries, consume, create_topic, flush, producer
from conftest import fresh_topic

ACKS = ["0", "1", "all"]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
PARTITIONS = 3
MESSAGES = 300
BASE_TIMESTAMP_MS = 1_700_000_000_000


@pytest.fixture(scope="module")
def shared_broker(module_broker_factory):
    return module_broker_factory()


def make_messages(tag):
    """Mixed shapes: null keys, null and empty values, headers (one with a null value)
    and explicit timestamps that are not in offset order."""
    msgs = []
    for i in range(MESSAGES):
        key = None if i % 10 == 3 else f"key-{i % 23}".encode()
        if i % 97 == 5:
            value = None
        elif i % 50 == 7:
            value = b""
        else:
            value = f"{tag} value {i} ".encode() + b"lorem ipsum " * (i % 20)
        headers = [("idx", str(i).encode()), ("tag", tag.encode()), ("nullable", None)] if i % 2 == 0 else None
        timestamp = BASE_TIMESTAMP_MS + (i * 7919 % 1000) * 1000
        msgs.append({"partition": i % PARTITIONS, "key": key, "value": value, "headers": headers,
                     "timestamp": timestamp})
    return msgs


def expected_tuples(msgs):
    """(partition, offset, key, value, headers, timestamp) in each partition's produce order."""
    next_offset = [0] * PARTITIONS
    out = []
    for m in msgs:
        p = m["partition"]
        out.append((p, next_offset[p], m["key"], m["value"], m["headers"], (TIMESTAMP_CREATE_TIME, m["timestamp"])))
        next_offset[p] += 1
    return out


def actual_tuples(messages):
    return sorted(((m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp()) for m in messages),
                  key=lambda t: (t[0], t[1]))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("acks", ACKS)
def test_round_trip(shared_broker, acks, codec):
    topic = create_topic(shared_broker, fresh_topic(f"matrix-{acks}-{codec}"), PARTITIONS)
    msgs = make_messages(f"{acks}/{codec}")
    deliveries = Deliveries()
    prod = producer(shared_broker, {"acks": acks, "compression.type": codec, "linger.ms": 20,
                                    "batch.num.messages": 40})
    for m in msgs:
        prod.produce(topic, on_delivery=deliveries, **m)
        prod.poll(0)
    flush(prod)

    expected = sorted(expected_tuples(msgs), key=lambda t: (t[0], t[1]))
    assert deliveries.errors == []
    assert len(deliveries.ok) == MESSAGES
    if acks != "0":
        # The acknowledged offsets are the ones the messages were stored at.
        assert sorted(deliveries.ok) == sorted((p, off, k, v) for p, off, k, v, _, _ in expected)

    from_start = consume(shared_broker, topic, {p: 0 for p in range(PARTITIONS)}, MESSAGES)
    assert actual_tuples(from_start) == expected

    # Stored as the producer sent it: compressed with the codec asked for, CRC intact.
    # (librdkafka quietly sends a codec uncompressed when the broker's ApiVersions
    # make it think the broker cannot read it.)
    with kwire.Conn(shared_broker.port) as conn:
        _, _, records = kwire.fetch(conn, topic, 0, 0)
    batches = kwire.batch_headers(records)
    assert batches and batches[0][0] == 0
    # A batch that compression would not shrink goes uncompressed (librdkafka's rule),
    # so codec 0 may appear -- never another codec, and most records are compressed.
    wanted = kwire.COMPRESSION_CODECS[codec]
    assert all(crc_ok and attributes & 0x7 in (0, wanted) for _, attributes, _, crc_ok in batches), batches
    compressed = sum(count for _, attributes, count, _ in batches if attributes & 0x7 == wanted)
    assert compressed >= 0.9 * sum(count for _, _, count, _ in batches), batches

    per_partition = MESSAGES // PARTITIONS
    middle = per_partition // 2 + 1
    from_middle = consume(shared_broker, topic, {p: middle for p in range(PARTITIONS)},
                          (per_partition - middle) * PARTITIONS)
    assert actual_tuples(from_middle) == [t for t in expected if t[1] >= middle]
