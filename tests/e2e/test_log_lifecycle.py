"""The log over time: retention by time and size, DeleteRecords, segment rolls, timestamps
(offsets_for_times, max timestamp, LogAppendTime, CreateTime bounds), min.insync.replicas.
Driven by confluent-kafka (librdkafka) and kafka-python."""

import time

import pytest

from confluent_kafka import KafkaError, KafkaException, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, OffsetSpec

from clients import (Deliveries, admin, admin_results, consume, consumer, flush, producer, wait_until,
                     watermarks)
from conftest import fresh_topic

ADMIN_TIMEOUT_S = 15
# The broker checks retention this often in these tests.
RETENTION_CHECK_MS = 300
RETENTION_WAIT_S = 25
HOUR_MS = 3_600_000


def lifecycle_broker(broker_factory):
    return broker_factory(overrides={"log.retention.check.interval.ms": str(RETENTION_CHECK_MS)})


def new_topic(broker, prefix, config, partitions=1):
    name = fresh_topic(prefix)
    results = admin_results(broker, "create_topics",
                            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)])
    assert results[name] is None, results
    return name


def produce_each(broker, topic, values, timestamps=None, config=None):
    """Produces one batch per value (flushing each), returns [(partition, offset)]."""
    deliveries = Deliveries()
    prod = producer(broker, {"linger.ms": 0, **(config or {})})
    for i, v in enumerate(values):
        kwargs = {"timestamp": timestamps[i]} if timestamps else {}
        prod.produce(topic, value=v, partition=0, on_delivery=deliveries, **kwargs)
        flush(prod)
    assert deliveries.errors == [], deliveries.errors
    return [(p, o) for p, o, *_ in deliveries.ok]


def now_ms():
    return int(time.time() * 1000)


def test_retention_by_time_advances_the_earliest_offset(broker_factory):
    broker = lifecycle_broker(broker_factory)
    retention_ms = 8000
    name = new_topic(broker, "rettime", {"retention.ms": str(retention_ms), "segment.bytes": "1024"})
    produced_at = time.monotonic()
    old = now_ms() - 2 * HOUR_MS
    produce_each(broker, name, [b"old-%03d" % i + b"." * 200 for i in range(20)],
                 timestamps=[old + i for i in range(20)])
    # Every record is older than retention.ms by its timestamp, but none was appended
    # that long ago: retention counts from the later of the two (README).
    if time.monotonic() - produced_at < retention_ms / 1000 - 1:
        assert watermarks(broker, name, 0)[0] == 0
    # Then all segments go, the active one after a roll.
    wait_until(lambda: watermarks(broker, name, 0) == (20, 20), RETENTION_WAIT_S, "earliest offset at 20")
    altered = admin_results(broker, "incremental_alter_configs", [ConfigResource(
        ConfigResource.Type.TOPIC, name,
        incremental_configs=[ConfigEntry("retention.ms", str(HOUR_MS), incremental_operation=AlterConfigOpType.SET)])])
    assert list(altered.values()) == [None], altered
    produce_each(broker, name, [b"new-%d" % i for i in range(3)])
    time.sleep(3 * RETENTION_CHECK_MS / 1000)
    assert watermarks(broker, name, 0) == (20, 23)
    got = consume(broker, name, {0: 20}, 3)
    assert [(m.offset(), m.value()) for m in got] == [(20 + i, b"new-%d" % i) for i in range(3)]
    broker.restart()
    assert watermarks(broker, name, 0) == (20, 23)


def test_retention_by_size_keeps_the_newest_segments(broker_factory):
    broker = lifecycle_broker(broker_factory)
    name = new_topic(broker, "retsize", {"retention.bytes": "3000", "segment.bytes": "1024"})
    values = [b"v%03d" % i + b"." * 250 for i in range(40)]
    produce_each(broker, name, values)
    # What is kept is a whole number of segments (3-4 records of ~320 B each per 1 KiB
    # segment), at most retention.bytes plus the active segment. A retention pass may
    # run while the records are still arriving (a loaded machine produces slowly): wait
    # for the pass after the last one, not the first that deletes anything.
    low, high = wait_until(lambda: (lambda w: w if w[1] - w[0] <= 16 else None)(watermarks(broker, name, 0)),
                           RETENTION_WAIT_S, "retention down to retention.bytes plus the active segment")
    assert high == 40
    kept = high - low
    assert 6 <= kept <= 16, (low, high)
    got = consume(broker, name, {0: low}, kept)
    assert [m.value() for m in got] == values[low:]


def test_delete_records_moves_the_log_start_and_survives_restart(broker_factory):
    broker = lifecycle_broker(broker_factory)
    name = new_topic(broker, "delrec", {"segment.bytes": "1024"})
    values = [b"r%02d" % i + b"." * 200 for i in range(30)]
    produce_each(broker, name, values)
    client = admin(broker)
    futures = client.delete_records([TopicPartition(name, 0, 17)], request_timeout=ADMIN_TIMEOUT_S)
    result = futures[TopicPartition(name, 0, 17)].result(timeout=ADMIN_TIMEOUT_S)
    assert result.low_watermark == 17
    assert watermarks(broker, name, 0) == (17, 30)
    assert [m.value() for m in consume(broker, name, {0: 17}, 13)] == values[17:]
    # Reading below the start is out of range.
    c = consumer(broker, {"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(name, 0, 5)])
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        err = None
        while err is None and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is not None and msg.error() and msg.error().code() != KafkaError._PARTITION_EOF:
                err = msg.error()
        assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err
    finally:
        c.close()
    # Past the high watermark: OFFSET_OUT_OF_RANGE.
    futures = client.delete_records([TopicPartition(name, 0, 31)], request_timeout=ADMIN_TIMEOUT_S)
    with pytest.raises(KafkaException) as refused:
        futures[TopicPartition(name, 0, 31)].result(timeout=ADMIN_TIMEOUT_S)
    assert refused.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE, refused.value
    broker.kill9()
    broker.start()
    broker.wait_ready()
    assert watermarks(broker, name, 0) == (17, 30)


def test_offsets_for_times_and_max_timestamp(broker):
    name = new_topic(broker, "times", {"segment.bytes": "1024"})
    base = now_ms() - 10 * 60_000
    # Ten batches, timestamps 1 s apart except #6, which is the newest of all.
    stamps = [base + 1000 * i for i in range(10)]
    stamps[6] = base + 60_000
    produce_each(broker, name, [b"t%d" % i + b"." * 300 for i in range(10)], timestamps=stamps)
    c = consumer(broker)
    try:
        def lookup(ts):
            [tp] = c.offsets_for_times([TopicPartition(name, 0, ts)], timeout=ADMIN_TIMEOUT_S)
            assert tp.error is None, tp.error
            return tp.offset
        assert lookup(base) == 0
        assert lookup(base + 2500) == 3
        assert lookup(base + 7000) == 6   # the first record at or after: #6 (newest) comes first
        assert lookup(base + 8000) == 6
        assert lookup(base + 30_000) == 6
        assert lookup(base + 61_000) == -1  # nothing that new
    finally:
        c.close()
    client = admin(broker)
    tp = TopicPartition(name, 0)
    result = client.list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=ADMIN_TIMEOUT_S)[tp].result(
        timeout=ADMIN_TIMEOUT_S)
    assert (result.offset, result.timestamp) == (6, base + 60_000)
    # The same answers after a restart, from the segments' files.
    broker.restart()
    c = consumer(broker)
    try:
        [tp2] = c.offsets_for_times([TopicPartition(name, 0, base + 2500)], timeout=ADMIN_TIMEOUT_S)
        assert tp2.offset == 3
    finally:
        c.close()


def test_log_append_time_replaces_producer_timestamps(broker):
    name = new_topic(broker, "appendtime", {"message.timestamp.type": "LogAppendTime"})
    before = now_ms()
    produce_each(broker, name, [b"a", b"b"], timestamps=[1_000_000, 2_000_000])
    after = now_ms()
    got = consume(broker, name, {0: 0}, 2)
    for m in got:
        kind, ts = m.timestamp()
        assert kind == TIMESTAMP_LOG_APPEND_TIME, m.timestamp()
        assert before <= ts <= after, (before, ts, after)
    plain = new_topic(broker, "createtime", {})
    produce_each(broker, plain, [b"a"], timestamps=[1_000_000])
    assert consume(broker, plain, {0: 0}, 1)[0].timestamp() == (TIMESTAMP_CREATE_TIME, 1_000_000)


def test_create_time_bounds_refuse_timestamps_out_of_range(broker):
    name = new_topic(broker, "tsbounds", {"message.timestamp.before.max.ms": str(HOUR_MS)})
    deliveries = Deliveries()
    prod = producer(broker, {"retries": 0})
    prod.produce(name, value=b"too old", partition=0, timestamp=now_ms() - 2 * HOUR_MS, on_delivery=deliveries)
    prod.produce(name, value=b"future", partition=0, timestamp=now_ms() + 2 * HOUR_MS, on_delivery=deliveries)
    flush(prod)
    assert [e.code() for e, *_ in deliveries.errors] == [KafkaError.INVALID_TIMESTAMP] * 2, deliveries.errors
    produce_each(broker, name, [b"fine"], timestamps=[now_ms() - 60_000])
    assert watermarks(broker, name, 0) == (0, 1)


def test_min_insync_replicas_above_one_refuses_acks_all(broker):
    name = new_topic(broker, "minisr", {"min.insync.replicas": "2"})
    deliveries = Deliveries()
    prod = producer(broker, {"acks": "all", "retries": 0})
    prod.produce(name, value=b"x", partition=0, on_delivery=deliveries)
    flush(prod)
    assert [e.code() for e, *_ in deliveries.errors] == [KafkaError.NOT_ENOUGH_REPLICAS], deliveries.errors
    assert produce_each(broker, name, [b"y"], config={"acks": "1"}) == [(0, 0)]


def test_segment_ms_rolls_an_old_segment(broker):
    name = new_topic(broker, "segms", {"segment.ms": "500"})
    produce_each(broker, name, [b"first"])
    time.sleep(0.8)
    produce_each(broker, name, [b"second"])
    part_dir = broker.log_dirs[0] / f"{name}-0"
    logs = sorted(p.name for p in part_dir.glob("*.log"))
    assert logs == ["00000000000000000000.log", "00000000000000000001.log"], logs
