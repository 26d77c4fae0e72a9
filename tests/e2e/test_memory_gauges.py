"""Memory accounting on /metrics (issue 15 item 3): the batch cache gauge is exactly the
batch bytes appended while nothing was evicted, producer ids and committed offsets are
counted, the process figures are there; and a deleted topic's committed offsets are
removed from its groups at once (tombstoned, so a restart does not bring them back)."""

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition

from clients import admin, create_topic, delete_topics, flush, producer, wait_until
from conftest import fresh_topic
from test_metrics import scrape, total

MESSAGES = 40
ENTRY_OVERHEAD_BYTES = 160
PARTITIONS = 2
WAIT_S = 15


def memory(samples, structure):
    return total(samples, "corelog_memory_bytes", structure=structure)


def entries(samples, structure):
    return total(samples, "corelog_memory_entries", structure=structure)


def commit(broker, group, topic, offsets):
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{broker.port}", "group.id": group,
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        c.close()


def committed(broker, group, topic):
    """{partition: offset} committed for `topic` in `group` (OffsetFetch for it)."""
    c = Consumer({"bootstrap.servers": f"127.0.0.1:{broker.port}", "group.id": group})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    finally:
        c.close()
    return {tp.partition: tp.offset for tp in got if tp.offset >= 0}


def test_cache_producers_and_offsets_are_accounted(broker):
    topic = create_topic(broker, fresh_topic("mem"), PARTITIONS)
    before = scrape(broker)
    assert memory(before, "batch_cache") == 0
    assert total(before, "corelog_process_resident_bytes") > total(before, "corelog_memory_accounted_bytes")
    assert total(before, "corelog_malloc_in_use_bytes") > 0
    prod = producer(broker, {"acks": "all", "linger.ms": 0, "enable.idempotence": True})
    for i in range(MESSAGES):
        prod.produce(topic, value=b"v" * 100, partition=i % PARTITIONS)
        flush(prod)
    after = scrape(broker)
    appended = total(after, "corelog_appended_bytes_total")
    assert appended > MESSAGES * 100
    # Nothing is evicted at these sizes: the cache holds every appended batch, charged its
    # bytes plus the fixed per-batch overhead (storage::cache::ENTRY_OVERHEAD_BYTES).
    assert memory(after, "batch_cache") == appended + MESSAGES * ENTRY_OVERHEAD_BYTES
    assert entries(after, "cached_batches") == MESSAGES
    assert total(after, "corelog_memory_bound_bytes", structure="batch_cache") >= appended
    # One idempotent producer, remembered by each partition it wrote.
    assert entries(after, "producer_ids") == PARTITIONS
    assert memory(after, "producer_state") > memory(before, "producer_state")
    assert memory(after, "pending_batches") == 0
    assert entries(after, "partitions") >= PARTITIONS

    commit(broker, "mem-group", topic, {0: 3, 1: 4})
    samples = scrape(broker)
    assert entries(samples, "committed_offsets") == PARTITIONS
    assert entries(samples, "groups") >= 1
    assert memory(samples, "groups") > 0
    accounted = sum(v for n, ls, v in samples if n == "corelog_memory_bytes")
    assert total(samples, "corelog_memory_accounted_bytes") == accounted


def test_a_deleted_topics_offsets_are_removed_and_stay_removed(broker):
    gone = create_topic(broker, fresh_topic("mem-gone"), PARTITIONS)
    kept = create_topic(broker, fresh_topic("mem-kept"), PARTITIONS)
    commit(broker, "mem-both", gone, {0: 1, 1: 2})
    commit(broker, "mem-both", kept, {0: 5})
    commit(broker, "mem-only-gone", gone, {1: 7})
    assert committed(broker, "mem-both", gone) == {0: 1, 1: 2}
    assert entries(scrape(broker), "committed_offsets") == 4
    delete_topics(broker, [gone])
    wait_until(lambda: entries(scrape(broker), "committed_offsets") == 1, WAIT_S,
               "the deleted topic's offsets to be removed")
    assert committed(broker, "mem-both", kept) == {0: 5}
    client = admin(broker)  # kept: a collected client never completes its futures
    listed = client.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("mem-both")], request_timeout=WAIT_S)["mem-both"].result(WAIT_S)
    assert [(tp.topic, tp.partition, tp.offset) for tp in listed.topic_partitions] == [(kept, 0, 5)]
    # Tombstones were written: the replay at start-up does not bring them back.
    broker.restart()
    assert committed(broker, "mem-both", kept) == {0: 5}
    wait_until(lambda: entries(scrape(broker), "committed_offsets") == 1, WAIT_S,
               "only the kept topic's offset replayed after the restart")
