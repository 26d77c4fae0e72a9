"""Log compaction (cleanup.policy=compact) and broker-side recompression
(compression.type), driven by confluent-kafka (librdkafka)."""

import re
import struct
import time

from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic

from clients import Deliveries, admin_results, consume, flush, producer, wait_until
from conftest import fresh_topic

CLEANER_BACKOFF_MS = 200
CLEAN_WAIT_S = 30
KEYS = 25
ROUNDS = 12
DELETED_KEYS = 5
SENTINEL = b"zz-sentinel"
SEGMENT_MS = 1500
# Both lines the broker logs after a cleaner pass, the one that rewrote segments and the
# one that found nothing to rewrite.
CLEANER_PASS = re.compile(r"cleaned log|cleaner pass rewrote nothing")


def compaction_broker(broker_factory):
    return broker_factory(overrides={
        "log.retention.check.interval.ms": "200",
        "log.cleaner.backoff.ms": str(CLEANER_BACKOFF_MS),
    })


def new_topic(broker, prefix, config):
    name = fresh_topic(prefix)
    results = admin_results(broker, "create_topics",
                            [NewTopic(name, num_partitions=1, replication_factor=1, config=config)])
    assert results[name] is None, results
    return name


def produce_rounds(broker, topic, batches, config=None):
    """Produces each list of (key, value) as one flush; returns [(offset, key, value)]."""
    deliveries = Deliveries()
    prod = producer(broker, {"linger.ms": 5, **(config or {})})
    for batch in batches:
        for key, value in batch:
            prod.produce(topic, key=key, value=value, partition=0, on_delivery=deliveries)
        flush(prod)
    assert deliveries.errors == [], deliveries.errors[:3]
    records = sorted((o, k, v) for _, o, k, v in deliveries.ok)
    assert len(records) == sum(len(b) for b in batches)
    return records


def snapshot(broker, topic, expected_count):
    """Everything from offset 0 as [(offset, key, value)]."""
    got = consume(broker, topic, {0: 0}, expected_count)
    return [(m.offset(), m.key(), m.value()) for m in got]


def stored_codecs(broker, topic):
    """The codec bits of every batch in the partition's segment files on disk."""
    codecs = []
    part_dir = broker.log_dirs[0] / f"{topic}-0"
    for path in sorted(part_dir.glob("*.log")):
        data = path.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            batch_length = struct.unpack(">i", data[pos + 8:pos + 12])[0]
            if batch_length < 49:
                break  # preallocated zeros after the last batch
            attributes = struct.unpack(">h", data[pos + 21:pos + 23])[0]
            codecs.append(attributes & 7)
            pos += 12 + batch_length
    return codecs


def cleaner_checkpoint(broker, topic):
    path = broker.log_dirs[0] / "cleaner-offset-checkpoint"
    if not path.exists():
        return None
    for line in path.read_text().splitlines()[2:]:
        name, partition, offset = line.split()
        if name == topic and partition == "0":
            return int(offset)
    return None


def test_compaction_keeps_the_latest_value_per_key_at_its_original_offset(broker_factory):
    broker = compaction_broker(broker_factory)
    topic = new_topic(broker, "compact", {
        "cleanup.policy": "compact",
        "segment.bytes": "4096",
        "segment.ms": str(SEGMENT_MS),
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "500",
    })
    keys = [b"key-%02d" % k for k in range(KEYS)]
    rounds = [[(k, b"%s=round-%02d;" % (k, r) + b"." * 40) for k in keys] for r in range(ROUNDS)]
    tombstones = [[(k, None) for k in keys[:DELETED_KEYS]]]
    produced = produce_rounds(broker, topic, rounds + tombstones)
    by_offset = {o: (k, v) for o, k, v in produced}
    # The sentinel, alone in a new active segment once segment.ms has passed, so that
    # every update above sits in a sealed (cleanable) segment.
    time.sleep(SEGMENT_MS / 1000 + 0.3)
    [(sentinel_offset, _, _)] = produce_rounds(broker, topic, [[(SENTINEL, b"end")]])

    latest = {}
    for offset, key, value in produced:
        latest[key] = (offset, value)
    expected = sorted((o, k, v) for k, (o, v) in latest.items() if v is not None)
    expected.append((sentinel_offset, SENTINEL, b"end"))

    def cleaned():
        return snapshot(broker, topic, len(expected)) == expected

    wait_until(cleaned, CLEAN_WAIT_S, "the log compacted to the latest value per key, tombstones gone")
    survivors = snapshot(broker, topic, len(expected))
    assert [o for o, _, _ in survivors] == sorted(o for o, _, _ in survivors)
    for offset, key, value in survivors[:-1]:
        assert by_offset[offset] == (key, value), "a survivor keeps its original offset"
    checkpoint = cleaner_checkpoint(broker, topic)
    assert checkpoint is not None and checkpoint > expected[-2][0], checkpoint
    assert "cleaned log" in broker.log_text()

    # Marked before the restart: the pass that matters may run before the broker is
    # seen ready, so the lines of the restarted broker are those after the stop note.
    mark = len(broker.log_text())
    broker.restart()
    assert snapshot(broker, topic, len(expected)) == expected
    assert cleaner_checkpoint(broker, topic) == checkpoint
    # The restarted cleaner resumes from its checkpoint. Nothing is dirty, so the one
    # pass it makes (due delete.retention.ms after the restart, to look for expired
    # tombstones) starts at the checkpoint, maps no record, removes nothing and leaves
    # the checkpoint where it was. A cleaner that lost its checkpoint starts at 0 and
    # maps every record again; one that makes no pass logs no line.
    def passes_after_restart():
        _, stopped, restarted = broker.log_text()[mark:].partition("=== harness: stopped")
        assert stopped, "the harness notes the stop"
        return [line for line in restarted.splitlines()
                if CLEANER_PASS.search(line) and f'topic="{topic}" ' in line]

    first_pass = wait_until(passes_after_restart, CLEAN_WAIT_S, "a cleaner pass after the restart")[0]
    fields = dict(re.findall(r"(\w+)=(\d+)\b", first_pass))
    assert int(fields["dirty_from"]) == checkpoint, first_pass
    assert int(fields["cleaned_to"]) == checkpoint, first_pass
    assert (fields["mapped_records"], fields["records_removed"]) == ("0", "0"), first_pass
    assert cleaner_checkpoint(broker, topic) == checkpoint
    assert snapshot(broker, topic, len(expected)) == expected


def test_keyless_records_are_refused_by_a_compacted_topic(broker_factory):
    broker = compaction_broker(broker_factory)
    topic = new_topic(broker, "compactnokey", {"cleanup.policy": "compact,delete"})
    deliveries = Deliveries()
    prod = producer(broker, {"linger.ms": 0, "retries": 0})
    prod.produce(topic, value=b"no key", partition=0, on_delivery=deliveries)
    flush(prod)
    assert [e.code() for e, *_ in deliveries.errors] == [KafkaError.INVALID_RECORD], deliveries.errors
    # Keyed records are fine, and the keyless one left nothing behind.
    produce_rounds(broker, topic, [[(b"k", b"v")]])
    assert snapshot(broker, topic, 1) == [(0, b"k", b"v")]


def test_compression_type_recompresses_produced_batches(broker_factory):
    broker = compaction_broker(broker_factory)
    topic = new_topic(broker, "zstd", {"compression.type": "zstd"})
    values = [(b"k%03d" % i, b"value %03d " % i + b"z" * (i % 50)) for i in range(300)]
    produce_rounds(broker, topic, [values[:150]], {"compression.type": "none"})
    produce_rounds(broker, topic, [values[150:]], {"compression.type": "gzip"})
    got = snapshot(broker, topic, len(values))
    assert [(k, v) for _, k, v in got] == values
    assert [o for o, _, _ in got] == list(range(len(values)))
    codecs = stored_codecs(broker, topic)
    assert codecs and set(codecs) == {4}, codecs


def test_producer_compression_type_keeps_batches_as_sent(broker_factory):
    broker = compaction_broker(broker_factory)
    topic = new_topic(broker, "asSent", {"compression.type": "producer"})
    values = [(b"k%d" % i, b"v" * 100) for i in range(50)]
    produce_rounds(broker, topic, [values], {"compression.type": "lz4"})
    assert [(k, v) for _, k, v in snapshot(broker, topic, len(values))] == values
    assert set(stored_codecs(broker, topic)) == {3}
