"""Scale limits with Kafka's names, at and one past the bound (issue 15, item 4).

- `message.max.bytes`: a record batch of exactly the bound is stored and read back by a
  default confluent-kafka consumer; one byte more is refused with MESSAGE_TOO_LARGE and
  the connection stays usable, as Kafka does.
- `socket.request.max.bytes`: a Produce request whose frame is exactly the bound is
  served; one byte more closes the connection (Kafka's InvalidReceiveException).
- `group.max.size` (classic groups) and `group.consumer.max.size` (KIP-848 consumer
  groups): a member joining a full group gets GROUP_MAX_SIZE_REACHED through a real
  client, and the members already in keep their partitions.

The costs of these bounds at scale (500-member groups, 10,000 connections) are measured
by scripts/scale_limits.py, not asserted here.
"""

import time

import pytest
from confluent_kafka import Consumer, KafkaError

import kwire
from clients import base_config, consume, create_topic
from conftest import fresh_topic

MESSAGE_MAX_BYTES_DEFAULT = 1_048_588  # Kafka's default: 1 MiB + the batch overhead
SOCKET_REQUEST_MAX_BYTES = 2 << 20
PRODUCE_VERSION = 7
GROUP_MAX = 3
JOIN_TIMEOUT_S = 30
CLOSE_TIMEOUT_S = 5


def batch_of_size(size, timestamp_ms=1_700_000_000_000):
    """(batch, value): one uncompressed batch of one record whose value fills it to
    exactly size bytes, log overhead included."""
    value_len = size - 100
    for _ in range(8):  # varint lengths move by a byte or two: converges at once
        value = b"v" * value_len
        b = kwire.record_batch([(b"k", value, [], 0)], base_timestamp_ms=timestamp_ms)
        if len(b) == size:
            return b, value
        value_len += size - len(b)
    raise AssertionError(f"no batch of exactly {size} bytes")


def produce_frame_of_size(topic, size):
    """A Produce v7 request (correlation id 1) whose frame, after its length prefix, is
    exactly size bytes: one batch sized to fill it."""
    overhead = len(kwire.request_frame(kwire.API_PRODUCE, PRODUCE_VERSION, 1,
                                       kwire.produce_request_body(topic, 0, b""))) - 4
    records, value = batch_of_size(size - overhead)
    frame = kwire.request_frame(kwire.API_PRODUCE, PRODUCE_VERSION, 1,
                                kwire.produce_request_body(topic, 0, records))
    assert len(frame) - 4 == size
    return frame, value


def test_a_batch_of_exactly_message_max_bytes_is_stored_and_one_byte_more_is_refused(broker):
    topic = create_topic(broker, fresh_topic("maxbatch"), 1)
    at_max, value = batch_of_size(MESSAGE_MAX_BYTES_DEFAULT)
    over, _ = batch_of_size(MESSAGE_MAX_BYTES_DEFAULT + 1)
    small, small_value = batch_of_size(200)
    with kwire.Conn(broker.port, timeout_s=30) as conn:
        assert kwire.produce(conn, PRODUCE_VERSION, topic, 0, at_max) == (kwire.ERR_NONE, 0)
        assert kwire.produce(conn, PRODUCE_VERSION, topic, 0, over) == (kwire.ERR_MESSAGE_TOO_LARGE, -1)
        # The refusal leaves the connection serving.
        assert kwire.produce(conn, PRODUCE_VERSION, topic, 0, small) == (kwire.ERR_NONE, 1)
    # A default consumer (max.partition.fetch.bytes 1 MiB, below the batch) still gets
    # it: the first batch is returned whatever its size (KIP-74).
    msgs = consume(broker, topic, {0: 0}, 2)
    assert [m.value() for m in msgs] == [value, small_value]


def test_a_request_of_exactly_socket_request_max_bytes_is_served_and_one_byte_more_closes(broker_factory):
    broker = broker_factory({"socket.request.max.bytes": str(SOCKET_REQUEST_MAX_BYTES),
                             "message.max.bytes": str(2 * SOCKET_REQUEST_MAX_BYTES)})
    topic = create_topic(broker, fresh_topic("maxframe"), 1)
    frame, value = produce_frame_of_size(topic, SOCKET_REQUEST_MAX_BYTES)
    with kwire.Conn(broker.port, timeout_s=30) as conn:
        conn.send(frame)
        correlation_id, body = conn.recv_frame(30)
    assert correlation_id == 1
    assert kwire.parse_produce_response(PRODUCE_VERSION, body)[(topic, 0)] == (kwire.ERR_NONE, 0)
    over, _ = produce_frame_of_size(topic, SOCKET_REQUEST_MAX_BYTES + 1)
    with kwire.Conn(broker.port, timeout_s=30) as conn:
        try:
            conn.send(over)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while still sending: the expected outcome
        assert conn.wait_closed(CLOSE_TIMEOUT_S), "a frame over socket.request.max.bytes left the connection open"
    assert "larger than socket.request.max.bytes" in broker.log_text()
    assert [m.value() for m in consume(broker, topic, {0: 0}, 1)] == [value]


def group_consumer(broker, group, protocol, errors):
    config = {**base_config(broker), "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False}
    if protocol == "consumer":
        config["group.protocol"] = "consumer"
    else:
        config["session.timeout.ms"] = 10_000
    c = Consumer({**config, "error_cb": lambda e: errors.append(e)})
    return c


def is_max_size_refusal(e):
    """librdkafka hands a classic JoinGroup's GROUP_MAX_SIZE_REACHED to the application
    as a consumer error; a ConsumerGroupHeartbeat's it makes fatal (_FATAL, naming the
    error by its description, "Broker: Consumer group has reached maximum size")."""
    return e.code() == KafkaError.GROUP_MAX_SIZE_REACHED or (
        e.code() == KafkaError._FATAL and "Consumer group has reached maximum size" in str(e))


def poll_until(consumers, cond, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in consumers:
            c.poll(0.05)
        if cond():
            return
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize("protocol,key", [("classic", "group.max.size"), ("consumer", "group.consumer.max.size")])
def test_a_member_joining_a_full_group_gets_group_max_size_reached(broker_factory, protocol, key):
    broker = broker_factory({key: str(GROUP_MAX), "group.initial.rebalance.delay.ms": "0"})
    topic = create_topic(broker, fresh_topic("groupmax"), GROUP_MAX * 2)
    group = fresh_topic("full-group")
    errors = []
    members = [group_consumer(broker, group, protocol, errors) for _ in range(GROUP_MAX)]
    for c in members:
        c.subscribe([topic])

    def shared():
        owned = [len(c.assignment()) for c in members]
        return all(owned) and sum(owned) == GROUP_MAX * 2

    try:
        poll_until(members, shared, JOIN_TIMEOUT_S, f"{GROUP_MAX} members to share the partitions")
        extra_errors = []
        extra = group_consumer(broker, group, protocol, extra_errors)
        extra.subscribe([topic])
        refused = None
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while refused is None and time.monotonic() < deadline:
            m = extra.poll(0.1)
            if m is not None and m.error() and is_max_size_refusal(m.error()):
                refused = m.error()
            refused = refused or next((e for e in extra_errors if is_max_size_refusal(e)), None)
            for c in members:
                c.poll(0)
        assert refused is not None, f"the member past {key}={GROUP_MAX} was not refused: {extra_errors}"
        # The full group carried on: nobody lost a partition to the refused joiner.
        assert shared()
        assert extra.assignment() == []
        extra.close()
    finally:
        for c in members:
            c.close()
