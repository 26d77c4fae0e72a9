"""Restarts on the same dirs keep topics, partition counts, topic ids and data."""

from confluent_kafka import KafkaError, TopicCollection

from clients import (Deliveries, admin_results, consume, create_topics, delete_topics, flush, metadata,
                     partition_counts, producer, wait_until, watermarks)
from conftest import fresh_topic



def topic_snapshot(broker, names):
    """{name: (topic id, [(partition, leader, replicas, isr)])} as clients see it."""
    out = {}
    for name, desc in admin_results(broker, "describe_topics", TopicCollection(list(names))).items():
        assert not isinstance(desc, KafkaError), (name, desc)
        parts = sorted((p.id, p.leader.id, [n.id for n in p.replicas], [n.id for n in p.isr])
                       for p in desc.partitions)
        out[name] = (str(desc.topic_id), parts)
    return out


def produce_values(broker, topic, per_partition, partitions, tag, acks="1"):
    deliveries = Deliveries()
    prod = producer(broker, {"acks": acks, "linger.ms": 5})
    for i in range(per_partition * partitions):
        prod.produce(topic, key=f"{i}".encode(), value=f"{tag}-{i}".encode(), partition=i % partitions,
                     on_delivery=deliveries)
    flush(prod)
    assert deliveries.errors == []
    return deliveries.ok


def stored(broker, topic, partitions, count):
    msgs = consume(broker, topic, {p: 0 for p in range(partitions)}, count)
    return sorted((m.partition(), m.offset(), m.key(), m.value()) for m in msgs)


def test_sigterm_restart_keeps_data_and_continues_offsets(broker):
    topic = fresh_topic("restart")
    create_topics(broker, {topic: 2})
    before = produce_values(broker, topic, 250, 2, "before")
    assert sorted((p, off) for p, off, _, _ in before) == [(p, o) for p in range(2) for o in range(250)]

    broker.restart()  # SIGTERM; the harness fails the test unless it exits 0 within 15 s

    assert stored(broker, topic, 2, 500) == sorted(before)
    after = produce_values(broker, topic, 10, 2, "after")
    assert sorted((p, off) for p, off, _, _ in after) == [(p, o) for p in range(2) for o in range(250, 260)]
    assert stored(broker, topic, 2, 520) == sorted(before + after)


def test_restart_keeps_topics_ids_and_metadata(broker):
    counts = {fresh_topic("r1"): 1, fresh_topic("r5"): 5, fresh_topic("r12"): 12}
    create_topics(broker, counts)
    deleted = fresh_topic("gone")
    create_topics(broker, {deleted: 3})
    delete_topics(broker, [deleted])
    wait_until(lambda: deleted not in metadata(broker).topics, 5, f"{deleted} to leave metadata")
    data = {name: produce_values(broker, name, 20, n, name) for name, n in counts.items()}
    snapshot = topic_snapshot(broker, counts)
    assert {name: len(parts) for name, (_, parts) in snapshot.items()} == counts
    assert len({topic_id for topic_id, _ in snapshot.values()}) == len(counts)
    ends = {(name, p): watermarks(broker, name, p) for name, n in counts.items() for p in range(n)}

    broker.restart()

    assert set(partition_counts(broker)) == set(counts)
    assert topic_snapshot(broker, counts) == snapshot
    assert {(name, p): watermarks(broker, name, p) for name, n in counts.items() for p in range(n)} == ends
    for name, n in counts.items():
        assert stored(broker, name, n, 20 * n) == sorted(data[name]), name


def test_topics_created_just_before_kill9_survive(broker):
    """CreateTopics is answered only after the topic table is on disk."""
    counts = {fresh_topic("k3"): 3, fresh_topic("k8"): 8}
    create_topics(broker, counts)
    snapshot = topic_snapshot(broker, counts)
    broker.kill9()
    broker.start()
    assert partition_counts(broker) == counts
    assert topic_snapshot(broker, counts) == snapshot


def test_rolled_segments_are_read_back_after_restart(broker_factory, tmp_path):
    """Small segments: old ones are read from disk (not the cache) after a restart,
    starting anywhere, and each is named by its base offset as Kafka names them."""
    segment_bytes = 65536
    messages = 2000
    broker = broker_factory({"log.segment.bytes": str(segment_bytes)})
    topic = fresh_topic("segments")
    create_topics(broker, {topic: 1})
    values = [f"{i:06d} ".encode() + b"s" * (150 + i % 100) for i in range(messages)]
    # Small batches: a segment rolls only between batches, as in Kafka, so one large
    # batch would fill a single segment however small log.segment.bytes is.
    prod = producer(broker, {"acks": "all", "linger.ms": 5, "batch.size": 16384})
    for v in values:
        prod.produce(topic, value=v, partition=0)
    flush(prod)

    broker.restart()

    partition_dir = broker.log_dirs[0] / f"{topic}-0"
    bases = sorted(int(p.stem) for p in partition_dir.glob("*.log"))
    assert len(bases) >= (messages * 150) // segment_bytes, bases
    assert bases[0] == 0 and bases == sorted(set(bases))
    for base in bases:
        name = f"{base:020d}"
        assert (partition_dir / f"{name}.index").is_file(), name
        assert (partition_dir / f"{name}.timeindex").is_file(), name
    assert watermarks(broker, topic, 0) == (0, messages)
    for start in (0, 1, bases[len(bases) // 2], bases[-1] - 1, messages - 1):
        got = consume(broker, topic, {0: start}, messages - start)
        assert [(m.offset(), m.value()) for m in got] == list(enumerate(values))[start:], start
