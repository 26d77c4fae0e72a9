"""Transactions: the transaction coordinator with real transactional producers
(confluent-kafka / librdkafka and kafka-python): commit and abort, offsets sent in a
transaction, zombie fencing, the timeout of an abandoned transaction, restart."""

import subprocess
import sys
import time
import uuid

import kwire
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from clients import base_config, consume, create_topics, producer, watermarks
from conftest import fresh_topic

PARTITIONS = 3
TXN_TIMEOUT_S = 30
# The broker checks open transactions against their timeout this often (Kafka's
# default is 10 s; shortened so an abandoned transaction is aborted within the test).
ABORT_CHECK_INTERVAL_MS = 200
BROKER_SETTINGS = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": str(ABORT_CHECK_INTERVAL_MS),
    "transaction.state.log.num.partitions": "5",
}


@pytest.fixture
def txn_broker(broker_factory):
    return broker_factory(overrides=BROKER_SETTINGS)


def txn_producer(broker, txn_id, config=None):
    p = producer(broker, {"transactional.id": txn_id, "acks": "all", "linger.ms": 5, **(config or {})})
    p.init_transactions(TXN_TIMEOUT_S)
    return p


def values_of(messages):
    return [(m.topic(), m.partition(), m.value()) for m in messages]


def test_commits_and_aborts_interleaved_over_two_topics(txn_broker):
    a, b = fresh_topic("txn-a"), fresh_topic("txn-b")
    create_topics(txn_broker, {a: PARTITIONS, b: PARTITIONS})
    p = txn_producer(txn_broker, f"tx-{uuid.uuid4().hex[:8]}")
    outcomes = ["commit", "abort", "commit", "commit", "abort", "commit"]
    for round_no, outcome in enumerate(outcomes):
        p.begin_transaction()
        for i in range(6):
            p.produce(a if i % 2 == 0 else b, value=f"{outcome}-{round_no}-{i}".encode(),
                      partition=i % PARTITIONS)
        if outcome == "commit":
            p.commit_transaction(TXN_TIMEOUT_S)
        else:
            # Flushed first: an abort purges what the client has not sent yet.
            assert p.flush(TXN_TIMEOUT_S) == 0
            p.abort_transaction(TXN_TIMEOUT_S)
    # read_uncommitted sees every record, read_committed exactly the committed ones, in
    # production order per partition; the markers take offsets neither returns.
    produced = [(a if i % 2 == 0 else b, i % PARTITIONS, o, f"{o}-{r}-{i}".encode())
                for r, o in enumerate(outcomes) for i in range(6)]
    for topic in (a, b):
        for isolation, kept in (("read_uncommitted", ("commit", "abort")), ("read_committed", ("commit",))):
            expected = [(part, v) for t, part, o, v in produced if t == topic and o in kept]
            got = consume(txn_broker, topic, {q: 0 for q in range(PARTITIONS)}, len(expected),
                          config={"isolation.level": isolation})
            for q in range(PARTITIONS):
                assert [v for _, part, v in values_of(got) if part == q] == \
                    [v for part, v in expected if part == q], (topic, isolation, q)
        # Each partition saw 6 transactions, 1 record each: 6 records + 6 markers; none
        # is open, so the last stable offset is the high watermark.
        for q in range(PARTITIONS):
            assert watermarks(txn_broker, topic, q) == (0, 12)


def group_consumer(broker, group, topic):
    c = Consumer({**base_config(broker), "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([topic])
    return c


def committed(broker, group, topic):
    c = Consumer({**base_config(broker), "group.id": group, "enable.auto.commit": False})
    try:
        parts = c.committed([TopicPartition(topic, 0)], timeout=TXN_TIMEOUT_S)
        return parts[0].offset
    finally:
        c.close()


def test_offsets_sent_in_a_transaction_count_only_once_committed(txn_broker):
    src, dst = fresh_topic("txn-src"), fresh_topic("txn-dst")
    create_topics(txn_broker, {src: 1, dst: 1})
    plain = producer(txn_broker)
    for i in range(10):
        plain.produce(src, value=f"in-{i}".encode(), partition=0)
    plain.flush(TXN_TIMEOUT_S)
    group = f"g-{uuid.uuid4().hex[:8]}"
    c = group_consumer(txn_broker, group, src)
    p = txn_producer(txn_broker, f"tx-{uuid.uuid4().hex[:8]}")
    try:
        got = []
        deadline = time.monotonic() + TXN_TIMEOUT_S
        while len(got) < 10:
            assert time.monotonic() < deadline, f"{len(got)} of 10 input records"
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got.append(m)
        # Aborted: the offsets are dropped.
        p.begin_transaction()
        p.produce(dst, value=b"out-aborted", partition=0)
        p.send_offsets_to_transaction([TopicPartition(src, 0, 5)], c.consumer_group_metadata(),
                                      TXN_TIMEOUT_S)
        p.abort_transaction(TXN_TIMEOUT_S)
        assert committed(txn_broker, group, src) < 0
        # Committed: visible only after the commit.
        p.begin_transaction()
        p.produce(dst, value=b"out-committed", partition=0)
        p.send_offsets_to_transaction([TopicPartition(src, 0, 10)], c.consumer_group_metadata(),
                                      TXN_TIMEOUT_S)
        assert committed(txn_broker, group, src) < 0, "offsets visible before the commit"
        p.commit_transaction(TXN_TIMEOUT_S)
        assert committed(txn_broker, group, src) == 10
    finally:
        c.close()


def test_zombie_with_the_same_transactional_id_is_fenced(txn_broker):
    topic = fresh_topic("txn-zombie")
    create_topics(txn_broker, {topic: 1})
    txn_id = f"tx-{uuid.uuid4().hex[:8]}"
    zombie = txn_producer(txn_broker, txn_id)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie", partition=0)
    zombie.flush(TXN_TIMEOUT_S)
    # A new instance: its InitProducerId aborts the zombie's transaction and bumps the
    # epoch, so the zombie can no longer commit.
    fresh = txn_producer(txn_broker, txn_id)
    with pytest.raises(KafkaException) as raised:
        zombie.commit_transaction(TXN_TIMEOUT_S)
    err = raised.value.args[0]
    assert err.fatal() or err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                         KafkaError.INVALID_PRODUCER_EPOCH), err
    fresh.begin_transaction()
    fresh.produce(topic, value=b"fresh", partition=0)
    fresh.commit_transaction(TXN_TIMEOUT_S)


KILLED_PRODUCER = """
import sys, time
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "broker.address.family": "v4",
              "transactional.id": sys.argv[2], "transaction.timeout.ms": 2000})
p.init_transactions(30)
p.begin_transaction()
p.produce(sys.argv[3], value=b"abandoned", partition=0)
assert p.flush(30) == 0
print("open", flush=True)
time.sleep(120)
"""


def test_transaction_of_a_killed_producer_is_aborted_after_its_timeout(txn_broker):
    topic = fresh_topic("txn-killed")
    create_topics(txn_broker, {topic: 1})
    txn_id = f"tx-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PRODUCER, txn_broker.bootstrap, txn_id, topic],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"open", proc.stderr.read()
    finally:
        proc.kill()
        proc.wait(10)
    txn_broker.wait_for_log(f"aborting a transaction past its timeout.*{txn_id}", timeout_s=15)
    # The id is free again at once: no CONCURRENT_TRANSACTIONS wait for a new instance.
    started = time.monotonic()
    p = txn_producer(txn_broker, txn_id)
    assert time.monotonic() - started < 5
    p.begin_transaction()
    p.produce(topic, value=b"after", partition=0)
    p.commit_transaction(TXN_TIMEOUT_S)
    # The abort moved the last stable offset past the abandoned record.
    assert committed_values(txn_broker, topic) == [b"after"]
    assert uncommitted_values(txn_broker, topic, 2) == [b"abandoned", b"after"]


def committed_values(broker, topic, expected_count=1):
    return [m.value() for m in consume(broker, topic, {0: 0}, expected_count,
                                       config={"isolation.level": "read_committed"})]


def uncommitted_values(broker, topic, expected_count):
    return [m.value() for m in consume(broker, topic, {0: 0}, expected_count,
                                       config={"isolation.level": "read_uncommitted"})]


def latest(broker, topic, isolation):
    """The latest offset of partition 0 as ListOffsets answers a consumer with `isolation`:
    the last stable offset for read_committed, the high watermark otherwise."""
    c = Consumer({**base_config(broker), "group.id": "latest-probe", "isolation.level": isolation,
                  "enable.auto.commit": False})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TXN_TIMEOUT_S, cached=False)[1]
    finally:
        c.close()


def lso(broker, topic):
    return latest(broker, topic, "read_committed")


def test_kafka_python_transactional_producer_commits(txn_broker):
    from kafka import KafkaProducer
    topic = fresh_topic("txn-kp")
    create_topics(txn_broker, {topic: 1})
    kp = KafkaProducer(bootstrap_servers=txn_broker.bootstrap, transactional_id=f"kp-{uuid.uuid4().hex[:8]}",
                       request_timeout_ms=15000)
    try:
        kp.init_transactions()
        kp.begin_transaction()
        for i in range(5):
            kp.send(topic, value=f"kp-{i}".encode(), partition=0)
        kp.commit_transaction()
        kp.begin_transaction()
        kp.send(topic, value=b"kp-aborted", partition=0)
        kp.flush(timeout=10)
        kp.abort_transaction()
    finally:
        kp.close(timeout=10)
    got = consume(txn_broker, topic, {0: 0}, 6, config={"isolation.level": "read_uncommitted"})
    assert [m.value() for m in got] == [f"kp-{i}".encode() for i in range(5)] + [b"kp-aborted"]
    assert committed_values(txn_broker, topic, 5) == [f"kp-{i}".encode() for i in range(5)]


def test_open_transaction_survives_a_broker_kill(txn_broker):
    topic = fresh_topic("txn-restart")
    create_topics(txn_broker, {topic: 1})
    p = txn_producer(txn_broker, f"tx-{uuid.uuid4().hex[:8]}")
    p.begin_transaction()
    p.produce(topic, value=b"before", partition=0)
    p.flush(TXN_TIMEOUT_S)
    assert (lso(txn_broker, topic), latest(txn_broker, topic, "read_uncommitted")) == (0, 1)
    txn_broker.kill9()
    txn_broker.start()
    # The partition's producer state kept the open transaction: the LSO holds.
    assert lso(txn_broker, topic) == 0
    assert latest(txn_broker, topic, "read_uncommitted") == 1
    # The coordinator replayed the open transaction: the same producer finishes it.
    p.produce(topic, value=b"after", partition=0)
    p.commit_transaction(TXN_TIMEOUT_S)
    assert lso(txn_broker, topic) == 3
    assert committed_values(txn_broker, topic, 2) == [b"before", b"after"]
    got = consume(txn_broker, topic, {0: 0}, 2, config={"isolation.level": "read_uncommitted"})
    assert [m.value() for m in got] == [b"before", b"after"]


def test_transactional_batch_for_a_partition_not_in_the_transaction_is_refused(txn_broker):
    """KIP-890 part 1: the broker checks a transactional batch against the partitions
    the producer added to its ongoing transaction."""
    topic = fresh_topic("txn-verify")
    create_topics(txn_broker, {topic: 1})
    txn_id = f"raw-{uuid.uuid4().hex[:8]}"
    with kwire.Conn(txn_broker.port) as conn:
        code, pid, epoch = kwire.init_producer_id(conn, 60000, transactional_id=txn_id)
        assert code == kwire.ERR_NONE and pid >= 0 and epoch == 0
        batch = kwire.record_batch([(None, b"stray", [], 0)], 1_700_000_000_000, producer_id=pid,
                                   producer_epoch=epoch, base_sequence=0,
                                   attributes=kwire.BATCH_ATTRIBUTE_TRANSACTIONAL)
        assert kwire.produce(conn, 7, topic, 0, batch, transactional_id=txn_id)[0] == \
            kwire.ERR_INVALID_TXN_STATE
        # Nothing was appended.
        assert latest(txn_broker, topic, "read_uncommitted") == 0
        # A new instance of the id gets the epoch bumped.
        code, pid2, epoch2 = kwire.init_producer_id(conn, 60000, transactional_id=txn_id)
        assert (code, pid2, epoch2) == (kwire.ERR_NONE, pid, 1)


API_DESCRIBE_TRANSACTIONS = 65
API_LIST_TRANSACTIONS = 66
API_DESCRIBE_PRODUCERS = 61
ERR_TRANSACTIONAL_ID_NOT_FOUND = 105


def _uvarint(r):
    shift, value = 0, 0
    while True:
        b = r.int8() & 0xFF
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value
        shift += 7


def _compact_string(r):
    n = _uvarint(r) - 1
    return None if n < 0 else r._take(n).decode()


def _compact_array(r, read_one):
    return [read_one() for _ in range(_uvarint(r) - 1)]


def _skip_tags(r):
    assert _uvarint(r) == 0


def list_transactions(conn, states=(), duration_ms=-1):
    """ListTransactions v1: [(transactional id, producer id, state)]."""
    body = (kwire.varint_unsigned(len(states) + 1) + b"".join(kwire.compact_string(s) for s in states)
            + kwire.varint_unsigned(1) + kwire.int64(duration_ms) + kwire.EMPTY_TAGGED_FIELDS)
    r = kwire.Reader(conn.request(API_LIST_TRANSACTIONS, 1, body, flexible_header=True))
    _skip_tags(r)
    r.int32()
    assert r.int16() == kwire.ERR_NONE
    assert _compact_array(r, lambda: _compact_string(r)) == []

    def one():
        out = (_compact_string(r), r.int64(), _compact_string(r))
        _skip_tags(r)
        return out
    return _compact_array(r, one)


def describe_transaction(conn, txn_id):
    """DescribeTransactions v0 of one id: (error, state, producer id, {topic: [partitions]})."""
    body = kwire.varint_unsigned(2) + kwire.compact_string(txn_id) + kwire.EMPTY_TAGGED_FIELDS
    r = kwire.Reader(conn.request(API_DESCRIBE_TRANSACTIONS, 0, body, flexible_header=True))
    _skip_tags(r)
    r.int32()

    def one():
        error, tid, state = r.int16(), _compact_string(r), _compact_string(r)
        r.int32(), r.int64()
        pid, _epoch = r.int64(), r.int16()

        def topic():
            name = _compact_string(r)
            parts = _compact_array(r, r.int32)
            _skip_tags(r)
            return name, parts
        topics = dict(_compact_array(r, topic))
        _skip_tags(r)
        assert tid == txn_id
        return error, state, pid, topics
    [out] = _compact_array(r, one)
    return out


def describe_producers(conn, topic, partition):
    """DescribeProducers v0 of one partition: [(producer id, epoch, last sequence, open
    transaction's first offset)]."""
    body = (kwire.varint_unsigned(2) + kwire.compact_string(topic) + kwire.varint_unsigned(2)
            + kwire.int32(partition) + kwire.EMPTY_TAGGED_FIELDS + kwire.EMPTY_TAGGED_FIELDS)
    r = kwire.Reader(conn.request(API_DESCRIBE_PRODUCERS, 0, body, flexible_header=True))
    _skip_tags(r)
    r.int32()

    def producer():
        pid, epoch, last_seq = r.int64(), r.int32(), r.int32()
        r.int64(), r.int32()
        txn_start = r.int64()
        _skip_tags(r)
        return pid, epoch, last_seq, txn_start

    def part():
        index, error = r.int32(), r.int16()
        _compact_string(r)
        producers = _compact_array(r, producer)
        _skip_tags(r)
        assert (index, error) == (partition, kwire.ERR_NONE)
        return producers

    def one_topic():
        assert _compact_string(r) == topic
        [producers] = _compact_array(r, part)
        _skip_tags(r)
        return producers
    [out] = _compact_array(r, one_topic)
    return out


def test_list_and_describe_transactions(txn_broker):
    topic = fresh_topic("txn-tools")
    create_topics(txn_broker, {topic: 2})
    txn_id = f"tx-{uuid.uuid4().hex[:8]}"
    p = txn_producer(txn_broker, txn_id)
    p.begin_transaction()
    p.produce(topic, value=b"open", partition=1)
    assert p.flush(TXN_TIMEOUT_S) == 0
    with kwire.Conn(txn_broker.port) as conn:
        error, state, pid, topics = describe_transaction(conn, txn_id)
        assert (error, state, topics) == (kwire.ERR_NONE, "Ongoing", {topic: [1]})
        assert (txn_id, pid, "Ongoing") in list_transactions(conn, ["Ongoing"])
        assert txn_id not in [t for t, _, _ in list_transactions(conn, ["CompleteCommit"])]
        # Open for at least 0 ms: listed; for an hour: not (a hanging-transaction probe).
        assert txn_id in [t for t, _, _ in list_transactions(conn, duration_ms=0)]
        assert txn_id not in [t for t, _, _ in list_transactions(conn, duration_ms=3_600_000)]
        # The partition's producer state: one record at sequence 0, transaction open at 0.
        assert describe_producers(conn, topic, 1) == [(pid, 0, 0, 0)]
        p.commit_transaction(TXN_TIMEOUT_S)
        assert describe_producers(conn, topic, 1) == [(pid, 0, 0, -1)]
        assert describe_transaction(conn, txn_id)[:2] == (kwire.ERR_NONE, "CompleteCommit")
        assert describe_transaction(conn, "no-such-id")[0] == ERR_TRANSACTIONAL_ID_NOT_FOUND
