"""Topic administration with confluent-kafka's AdminClient."""

from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic

import kwire
from clients import (Deliveries, admin_results, create_topic, create_topics, delete_topics, metadata,
                     producer, wait_until)
from conftest import fresh_topic

ADMIN_TIMEOUT_S = 15
# How long the broker may take to drop a deleted topic from metadata.
DELETE_VISIBLE_TIMEOUT_S = 5


def test_create_topics_with_exact_partition_counts(broker):
    wanted = {fresh_topic("one"): 1, fresh_topic("three"): 3, fresh_topic("eight"): 8}
    create_topics(broker, wanted)
    md = metadata(broker)
    for name, count in wanted.items():
        topic = md.topics[name]
        assert topic.error is None, (name, topic.error)
        assert sorted(topic.partitions) == list(range(count)), name
        for p in topic.partitions.values():
            assert (p.leader, p.replicas, p.isrs, p.error) == (0, [0], [0], None), (name, p.id)


def test_create_existing_topic_fails(broker):
    name = create_topic(broker, fresh_topic("dup"), 3)
    results = admin_results(broker, "create_topics", [NewTopic(name, num_partitions=3, replication_factor=1)])
    assert isinstance(results[name], KafkaError), results
    assert results[name].code() == KafkaError.TOPIC_ALREADY_EXISTS
    assert len(metadata(broker).topics[name].partitions) == 3


def test_replication_factor_above_broker_count_fails(broker):
    name = fresh_topic("rf2")
    results = admin_results(broker, "create_topics", [NewTopic(name, num_partitions=1, replication_factor=2)])
    assert isinstance(results[name], KafkaError), results
    assert results[name].code() == KafkaError.INVALID_REPLICATION_FACTOR
    assert name not in metadata(broker).topics


def test_delete_topic_then_produce_fails(broker_factory):
    broker = broker_factory({"auto.create.topics.enable": "false"})
    doomed = create_topic(broker, fresh_topic("doomed"), 2)
    kept = create_topic(broker, fresh_topic("kept"), 1)

    delete_topics(broker, [doomed])
    wait_until(lambda: doomed not in metadata(broker).topics, DELETE_VISIBLE_TIMEOUT_S,
               f"{doomed} to leave metadata")
    assert kept in metadata(broker).topics

    # The broker's own answer: the partition is unknown.
    with kwire.Conn(broker.port) as conn:
        error_code, _ = kwire.produce(conn, 7, doomed, 0, kwire.record_batch([(None, b"x", [], 0)], 1))
    assert error_code == kwire.ERR_UNKNOWN_TOPIC_OR_PARTITION

    # What a client sees: librdkafka either reports the broker's error or, having
    # learnt from metadata that the topic is gone, its local equivalent.
    deliveries = Deliveries()
    prod = producer(broker, {"message.timeout.ms": 10000, "topic.metadata.propagation.max.ms": 1000})
    prod.produce(doomed, b"into the void", partition=0, on_delivery=deliveries)
    prod.flush(ADMIN_TIMEOUT_S)
    assert deliveries.ok == []
    assert [e.code() for e, _, _ in deliveries.errors] in (
        [KafkaError.UNKNOWN_TOPIC_OR_PART], [KafkaError._UNKNOWN_TOPIC]), deliveries.errors
    # Auto-create is off, so the attempt must not have brought the topic back.
    assert doomed not in metadata(broker).topics


def test_deleted_topic_name_can_be_reused_without_old_data(broker):
    name = create_topic(broker, fresh_topic("reuse"), 4)
    with kwire.Conn(broker.port) as conn:
        batch = kwire.record_batch([(None, b"old", [], 0)] * 3, 1)
        assert kwire.produce(conn, 7, name, 0, batch) == (kwire.ERR_NONE, 0)
    delete_topics(broker, [name])
    wait_until(lambda: name not in metadata(broker).topics, DELETE_VISIBLE_TIMEOUT_S, f"{name} to leave metadata")
    create_topic(broker, name, 2)
    assert sorted(metadata(broker).topics[name].partitions) == [0, 1]
    with kwire.Conn(broker.port) as conn:
        assert kwire.fetch(conn, name, 0, 0) == (kwire.ERR_NONE, 0, b"")
