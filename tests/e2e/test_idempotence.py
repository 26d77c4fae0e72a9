"""Idempotent producer: InitProducerId, sequence numbers, exactly once per message."""

from clients import Deliveries, consume, create_topic, flush, producer
from conftest import fresh_topic

PARTITIONS = 4
MESSAGES = 10000


def test_idempotent_producer_writes_each_message_once(broker):
    topic = create_topic(broker, fresh_topic("idem"), PARTITIONS)
    deliveries = Deliveries()
    prod = producer(broker, {"enable.idempotence": True, "acks": "all", "linger.ms": 5,
                             "compression.type": "lz4"})
    for i in range(MESSAGES):
        prod.produce(topic, value=f"m{i}".encode(), partition=i % PARTITIONS, on_delivery=deliveries)
        if i % 100 == 0:
            prod.poll(0)
    flush(prod, 60)

    assert deliveries.errors == []
    per_partition = MESSAGES // PARTITIONS
    expected = {(i % PARTITIONS, i // PARTITIONS): f"m{i}".encode() for i in range(MESSAGES)}
    acked = {(p, off): v for p, off, _, v in deliveries.ok}
    assert len(deliveries.ok) == MESSAGES
    assert acked == expected

    messages = consume(broker, topic, {p: 0 for p in range(PARTITIONS)}, MESSAGES, timeout_s=60)
    values = [m.value() for m in messages]
    assert len(values) == MESSAGES and len(set(values)) == MESSAGES
    assert {(m.partition(), m.offset()): m.value() for m in messages} == expected
    for p in range(PARTITIONS):
        offsets = [m.offset() for m in messages if m.partition() == p]
        assert offsets == list(range(per_partition)), p
