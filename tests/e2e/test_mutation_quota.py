"""controller_mutation_rate (KIP-599) with real clients and on the raw wire.

The broker counts partitions created (CreateTopics, CreatePartitions) and deleted
(DeleteTopics) per user / client id in a token bucket of rate x
controller.quota.window.num x controller.quota.window.size.seconds partitions (2 windows
of 1 s here, so a burst of twice the rate). Strict versions (CreateTopics v6+, DeleteTopics
v5+, CreatePartitions v3+) get THROTTLING_QUOTA_EXCEEDED (89) and throttle_time_ms once
the bucket is below zero; older versions (what confluent-kafka and kafka-python send)
get every topic and the response is held back until the bucket is back at zero.
"""

import struct
import time

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.admin import KafkaAdminClient, NewTopic as KpNewTopic

import kwire
from conftest import fresh_topic
from test_quotas import quota

WINDOWS = {"controller.quota.window.num": "2", "controller.quota.window.size.seconds": "1"}
CLIENT_TIMEOUT_S = 20
API_CREATE_TOPICS = 19
THROTTLING_QUOTA_EXCEEDED = 89


def uvarint(r):
    shift = value = 0
    while True:
        b = r.int8() & 0xFF
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value
        shift += 7


def create_topics_v6(conn, client_id, name, partitions):
    """One CreateTopics v6 (flexible) for one topic: (error code, message, throttle_time_ms)."""
    topic = (kwire.compact_string(name) + kwire.int32(partitions) + kwire.int16(1)
             + kwire.varint_unsigned(1) + kwire.varint_unsigned(1) + kwire.EMPTY_TAGGED_FIELDS)
    body = (kwire.varint_unsigned(2) + topic + kwire.int32(10_000) + kwire.int8(0)
            + kwire.EMPTY_TAGGED_FIELDS)
    correlation_id = conn.next_correlation_id
    conn.next_correlation_id += 1
    conn.send(kwire.request_frame(API_CREATE_TOPICS, 6, correlation_id, body, client_id=client_id,
                                  flexible_header=True))
    got_id, resp = conn.recv_frame(CLIENT_TIMEOUT_S)
    assert got_id == correlation_id
    r = kwire.Reader(resp)
    assert uvarint(r) == 0  # the response header's tagged fields
    throttle_ms = r.int32()
    assert uvarint(r) == 2, "one topic"
    got_name = r._take(uvarint(r) - 1).decode()
    assert got_name == name
    error = r.int16()
    n = uvarint(r)
    message = None if n == 0 else r._take(n - 1).decode()
    return error, message, throttle_ms


def test_strict_versions_get_throttling_quota_exceeded(broker_factory):
    broker = broker_factory(WINDOWS)
    # 1 partition/s, burst 2.
    quota(broker, "set", "--client", "strict", "--add-config", "controller_mutation_rate=1")
    assert "controller_mutation_rate" in quota(broker, "describe", "--client", "strict")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
    with kwire.Conn(broker.port) as conn:
        first, second = fresh_topic("mq-a"), fresh_topic("mq-b")
        # The bucket is full (2): a topic of 3 partitions is taken and overdraws it to -1.
        error, _, throttle_ms = create_topics_v6(conn, "strict", first, 3)
        assert error == 0 and 500 <= throttle_ms <= 1000, (error, throttle_ms)
        error, message, throttle_ms = create_topics_v6(conn, "strict", second, 1)
        assert error == THROTTLING_QUOTA_EXCEEDED, (error, message)
        assert message == "The throttling quota has been exceeded." and 0 < throttle_ms <= 1000
        topics = admin.list_topics(timeout=CLIENT_TIMEOUT_S).topics
        assert len(topics[first].partitions) == 3 and second not in topics
        # Another client id has no quota.
        other = fresh_topic("mq-other")
        assert create_topics_v6(conn, "roomy", other, 50)[::2] == (0, 0)
        # After the throttle time the bucket is back at zero: taken again.
        time.sleep(throttle_ms / 1000 + 0.1)
        error, _, _ = create_topics_v6(conn, "strict", second, 1)
        assert error == 0


def test_older_versions_are_held_back_confluent_and_kafka_python(broker_factory):
    broker = broker_factory(WINDOWS)
    quota(broker, "set", "--client", "slow", "--add-config", "controller_mutation_rate=2")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4",
                         "client.id": "slow"})

    def create(name, partitions):
        start = time.monotonic()
        admin.create_topics([NewTopic(name, partitions, 1)],
                            request_timeout=CLIENT_TIMEOUT_S)[name].result(CLIENT_TIMEOUT_S)
        return time.monotonic() - start

    # Burst 4 at 2/s: 10 partitions leave the bucket at -6, 3 s from zero, and the
    # answer is held back that long; no error (librdkafka's CreateTopics is v4).
    assert create(fresh_topic("mq-c"), 10) >= 2.5
    # CreatePartitions (librdkafka v0-1): +4 partitions from zero: -4, held back 2 s.
    grown = fresh_topic("mq-g")
    create(grown, 1)  # back to zero after this one's 0.5 s
    start = time.monotonic()
    admin.create_partitions([NewPartitions(grown, 5)],
                            request_timeout=CLIENT_TIMEOUT_S)[grown].result(CLIENT_TIMEOUT_S)
    assert time.monotonic() - start >= 1.5
    assert len(admin.list_topics(timeout=CLIENT_TIMEOUT_S).topics[grown].partitions) == 5
    # DeleteTopics (librdkafka v1..4): the 10-partition topic from below zero is held
    # back too.
    doomed = fresh_topic("mq-d")
    create(doomed, 4)  # -4 after it, back to zero when it is answered
    start = time.monotonic()
    admin.delete_topics([doomed], request_timeout=CLIENT_TIMEOUT_S)[doomed].result(CLIENT_TIMEOUT_S)
    assert time.monotonic() - start >= 1.5, "4 partitions at 2/s"
    # kafka-python (CreateTopics v3) under the same client id: held back, no error.
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="slow",
                          request_timeout_ms=CLIENT_TIMEOUT_S * 1000)
    fast = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="fast",
                            request_timeout_ms=CLIENT_TIMEOUT_S * 1000)
    try:
        start = time.monotonic()
        kp.create_topics([KpNewTopic(fresh_topic("mq-k"), 6, 1)])
        assert time.monotonic() - start >= 2.5, "6 partitions at 2/s"
        # Another client id is not held back.
        start = time.monotonic()
        fast.create_topics([KpNewTopic(fresh_topic("mq-f"), 20, 1)])
        assert time.monotonic() - start < 2.0
    finally:
        kp.close()
        fast.close()
