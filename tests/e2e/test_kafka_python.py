"""kafka-python: a pure-Python client with its own protocol code and version probing."""

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from clients import consume, metadata, wait_until
from conftest import fresh_topic

PARTITIONS = 2
MESSAGES = 200
BASE_TIMESTAMP_MS = 1_650_000_000_000
SEND_TIMEOUT_S = 30
POLL_TIMEOUT_S = 30
ADMIN_TIMEOUT_MS = 15000


def kp_admin(broker):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=ADMIN_TIMEOUT_MS)


def kp_consumer(broker):
    # group_id=None: no group, offsets only from seek(); any reset policy but
    # earliest/latest raises, so an out-of-range position cannot go unnoticed.
    return KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="none", request_timeout_ms=ADMIN_TIMEOUT_MS)


def kp_poll(consumer, expected_count, timeout_s=POLL_TIMEOUT_S):
    got = []
    deadline = time.monotonic() + timeout_s
    while len(got) < expected_count:
        assert time.monotonic() < deadline, f"{len(got)} of {expected_count} records after {timeout_s} s"
        for records in consumer.poll(timeout_ms=200).values():
            got.extend(records)
    # One more poll: nothing beyond what was produced.
    extra = [r for records in consumer.poll(timeout_ms=500).values() for r in records]
    return got + extra


def record_tuple(r):
    return (r.partition, r.offset, r.key, r.value, list(r.headers or []), r.timestamp, r.timestamp_type)


def make_messages(tag):
    return [{"partition": i % PARTITIONS, "key": f"k{i % 13}".encode() if i % 5 else None,
             "value": f"{tag} {i} ".encode() + b"." * (i % 64),
             "headers": [("i", str(i).encode()), ("tag", tag.encode())] if i % 3 else [],
             "timestamp_ms": BASE_TIMESTAMP_MS + i * 10}
            for i in range(MESSAGES)]


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_round_trip_with_assign_and_seek(broker, compression):
    admin = kp_admin(broker)
    try:
        topic = fresh_topic("kp")
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        admin.close()

    msgs = make_messages(str(compression))
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type=compression,
                             linger_ms=10, request_timeout_ms=ADMIN_TIMEOUT_MS)
    try:
        futures = [producer.send(topic, **m) for m in msgs]
        producer.flush(timeout=SEND_TIMEOUT_S)
        acked = [f.get(timeout=SEND_TIMEOUT_S) for f in futures]
    finally:
        producer.close(timeout=SEND_TIMEOUT_S)

    next_offset = [0] * PARTITIONS
    expected = []
    for m, md in zip(msgs, acked):
        p = m["partition"]
        assert (md.topic, md.partition, md.offset) == (topic, p, next_offset[p])
        expected.append((p, next_offset[p], m["key"], m["value"], m["headers"], m["timestamp_ms"], 0))
        next_offset[p] += 1
    expected.sort(key=lambda t: (t[0], t[1]))

    consumer = kp_consumer(broker)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        got = sorted(map(record_tuple, kp_poll(consumer, MESSAGES)), key=lambda t: (t[0], t[1]))
        assert got == expected

        middle = MESSAGES // PARTITIONS // 2
        for tp in tps:
            consumer.seek(tp, middle)
        rest = [t for t in expected if t[1] >= middle]
        got = sorted(map(record_tuple, kp_poll(consumer, len(rest))), key=lambda t: (t[0], t[1]))
        assert got == rest
    finally:
        consumer.close()

    # The same bytes read by librdkafka: headers and timestamps as kafka-python wrote them.
    from_librdkafka = consume(broker, topic, {p: 0 for p in range(PARTITIONS)}, MESSAGES)
    assert sorted(((m.partition(), m.offset(), m.key(), m.value(), m.headers() or [], m.timestamp()[1], 0)
                   for m in from_librdkafka), key=lambda t: (t[0], t[1])) == expected


def test_admin_create_list_delete(broker):
    names = {fresh_topic("kpa"): 1, fresh_topic("kpb"): 5}
    admin = kp_admin(broker)
    try:
        response = admin.create_topics([NewTopic(n, num_partitions=c, replication_factor=1)
                                        for n, c in names.items()])
        assert sorted((t[0], t[1]) for t in response.topic_errors) == sorted((n, 0) for n in names)
        assert set(names) <= set(admin.list_topics())
        counts = {n: len(metadata(broker).topics[n].partitions) for n in names}
        assert counts == names

        first = next(iter(names))
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(first, num_partitions=1, replication_factor=1)])

        response = admin.delete_topics([first])
        assert [(t[0], t[1]) for t in response.topic_error_codes] == [(first, 0)]
        wait_until(lambda: first not in admin.list_topics(), 5, f"{first} to leave metadata")
        assert first not in metadata(broker).topics
        assert len(metadata(broker).topics[list(names)[1]].partitions) == 5
    finally:
        admin.close()
