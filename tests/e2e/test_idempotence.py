"""Idempotent producer: InitProducerId, sequence numbers, exactly once per message."""

import kwire
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


def _batch(pid, epoch, seq, values):
    records = [(None, v, [], i) for i, v in enumerate(values)]
    return kwire.record_batch(records, 1_700_000_000_000, producer_id=pid, producer_epoch=epoch,
                              base_sequence=seq)


def test_replayed_batch_is_deduplicated_gaps_and_stale_epochs_are_refused(broker):
    """Raw Produce with a real producer id: a retry of the same batch gets its original
    offset and appends nothing; a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER; an epoch
    older than the one the partition has seen is fenced with INVALID_PRODUCER_EPOCH."""
    topic = create_topic(broker, fresh_topic("idem-raw"), 1)
    with kwire.Conn(broker.port) as conn:
        error_code, pid, epoch = kwire.init_producer_id(conn)
        assert error_code == kwire.ERR_NONE and pid >= 0 and epoch == 0
        first = _batch(pid, 0, 0, [b"a0", b"a1", b"a2"])
        assert kwire.produce(conn, 7, topic, 0, first) == (kwire.ERR_NONE, 0)
        second = _batch(pid, 0, 3, [b"b0", b"b1"])
        assert kwire.produce(conn, 7, topic, 0, second) == (kwire.ERR_NONE, 3)
        # Replays, the older one too: original offsets, nothing appended.
        assert kwire.produce(conn, 7, topic, 0, first) == (kwire.ERR_NONE, 0)
        assert kwire.produce(conn, 7, topic, 0, second) == (kwire.ERR_NONE, 3)
        assert kwire.fetch(conn, topic, 0, 0)[1] == 5
        # A gap: sequence 6 where 5 is next.
        gap = _batch(pid, 0, 6, [b"gap"])
        assert kwire.produce(conn, 7, topic, 0, gap)[0] == kwire.ERR_OUT_OF_ORDER_SEQUENCE_NUMBER
        # A new epoch starts at sequence 0; after it, epoch 0 is stale.
        assert kwire.produce(conn, 7, topic, 0, _batch(pid, 1, 0, [b"c0"])) == (kwire.ERR_NONE, 5)
        stale = _batch(pid, 0, 5, [b"stale"])
        assert kwire.produce(conn, 7, topic, 0, stale)[0] == kwire.ERR_INVALID_PRODUCER_EPOCH
        error_code, high_watermark, data = kwire.fetch(conn, topic, 0, 0)
        assert (error_code, high_watermark) == (kwire.ERR_NONE, 6)
        assert [(b[0], b[2]) for b in kwire.batch_headers(data)] == [(0, 3), (3, 2), (5, 1)]
