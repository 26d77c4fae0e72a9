"""ListOffsets: earliest and latest offsets through three clients."""

from confluent_kafka import TopicPartition as CkTopicPartition
from confluent_kafka.admin import OffsetSpec
from kafka import KafkaConsumer, TopicPartition

from clients import admin_results, create_topic, flush, producer, watermarks
from conftest import fresh_topic

PARTITIONS = 3


def produce_counts(broker, topic, counts):
    prod = producer(broker, {"acks": "all"})
    for p, n in counts.items():
        for i in range(n):
            prod.produce(topic, value=f"{p}/{i}".encode(), partition=p)
    flush(prod)


def admin_offsets(broker, topic, spec):
    results = admin_results(broker, "list_offsets", {CkTopicPartition(topic, p): spec for p in range(PARTITIONS)})
    return {tp.partition: info.offset for tp, info in results.items()}


def test_empty_partitions_start_and_end_at_zero(broker):
    topic = create_topic(broker, fresh_topic("lo-empty"), PARTITIONS)
    assert [watermarks(broker, topic, p) for p in range(PARTITIONS)] == [(0, 0)] * PARTITIONS
    assert admin_offsets(broker, topic, OffsetSpec.latest()) == {p: 0 for p in range(PARTITIONS)}


def test_earliest_and_latest_after_produce(broker):
    topic = create_topic(broker, fresh_topic("lo"), PARTITIONS)
    counts = {0: 5, 1: 0, 2: 123}
    produce_counts(broker, topic, counts)

    assert {p: watermarks(broker, topic, p) for p in range(PARTITIONS)} == {p: (0, n) for p, n in counts.items()}
    assert admin_offsets(broker, topic, OffsetSpec.earliest()) == {p: 0 for p in range(PARTITIONS)}
    assert admin_offsets(broker, topic, OffsetSpec.latest()) == counts

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, request_timeout_ms=15000)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        assert consumer.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert consumer.end_offsets(tps) == {tp: counts[tp.partition] for tp in tps}
    finally:
        consumer.close()

    # Latest moves with every append.
    produce_counts(broker, topic, {1: 7})
    assert watermarks(broker, topic, 1) == (0, 7)
