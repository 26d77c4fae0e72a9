"""Transaction tools and Kafka 4 transactions: `corelog txn list|describe|find-hanging|
abort` against real confluent-kafka transactions, the coordinator's metrics, and
transaction v2 (KIP-890 part 2) on the raw wire (the installed librdkafka still speaks
classic transactions: it sends AddPartitionsToTxn, EndTxn v4 and Produce v11 or lower)."""

import json
import shutil
import subprocess
import time
import urllib.request
import uuid

import kwire
from confluent_kafka import Consumer, TopicPartition

from clients import base_config, consume, create_topics, producer
from conftest import corelog_bin, fresh_topic

TXN_TIMEOUT_S = 30
BROKER_SETTINGS = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
    "transaction.state.log.num.partitions": "3",
}
API_END_TXN = 26
API_TXN_OFFSET_COMMIT = 28
ERR_NOT_ENOUGH_REPLICAS = 19
CLI_TIMEOUT_S = 30


def txn(broker, *args, check=True):
    r = subprocess.run([str(corelog_bin()), "txn", *args, "-b", broker.bootstrap], capture_output=True,
                       text=True, timeout=CLI_TIMEOUT_S)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def txn_json(broker, *args):
    return json.loads(txn(broker, *args, "-o", "json").stdout)


def txn_producer(broker, txn_id):
    p = producer(broker, {"transactional.id": txn_id, "acks": "all", "linger.ms": 5})
    p.init_transactions(TXN_TIMEOUT_S)
    return p


def metrics(broker):
    """{series: value} of /metrics, series as written (`name{labels}`)."""
    with urllib.request.urlopen(f"http://{broker.admin}/metrics", timeout=10) as r:
        text = r.read().decode()
    return dict((series, float(value)) for series, value in
                (line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#")))


def total(m, name, labels=""):
    """The sum over shards of a series (`labels` are those after the shard's)."""
    return sum(v for series, v in m.items()
               if series.startswith(name + '{shard="') and series.endswith(labels + "}"))


def stage_count(m, stage):
    return total(m, "corelog_stage_duration_seconds_count", f',api="transaction",stage="{stage}"')


def watermarks(broker, topic, isolation):
    c = Consumer({**base_config(broker), "group.id": "wm-probe", "isolation.level": isolation,
                  "enable.auto.commit": False})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TXN_TIMEOUT_S, cached=False)[1]
    finally:
        c.close()


def test_list_describe_and_metrics(broker_factory):
    broker = broker_factory(overrides=BROKER_SETTINGS)
    topic = fresh_topic("txn-cli")
    create_topics(broker, {topic: 2})
    run = uuid.uuid4().hex[:6]
    done_id, open_id = f"pay-{run}-done", f"pay-{run}-open"
    p = txn_producer(broker, done_id)
    for i, commit in enumerate([True, False, True]):
        p.begin_transaction()
        p.produce(topic, value=f"v{i}".encode(), partition=i % 2)
        assert p.flush(TXN_TIMEOUT_S) == 0
        (p.commit_transaction if commit else p.abort_transaction)(TXN_TIMEOUT_S)
    q = txn_producer(broker, open_id)
    q.begin_transaction()
    q.produce(topic, value=b"open", partition=1)
    assert q.flush(TXN_TIMEOUT_S) == 0

    listed = {t["transactional_id"]: t for t in txn_json(broker, "list")}
    assert {k: v["state"] for k, v in listed.items()} == {done_id: "CompleteCommit", open_id: "Ongoing"}
    assert {v["coordinator"] for v in listed.values()} == {0}
    assert [t["transactional_id"] for t in txn_json(broker, "list", "--state", "Ongoing")] == [open_id]
    assert [t["transactional_id"] for t in txn_json(broker, "list", "--duration-filter", "0")] == [open_id]
    assert txn_json(broker, "list", "--duration-filter", "3600000") == []
    # ListTransactions v2: the pattern must match the whole id.
    assert [t["transactional_id"] for t in txn_json(broker, "list", "--transactional-id-pattern",
                                                      f"pay-{run}-d.*")] == [done_id]
    assert txn_json(broker, "list", "--transactional-id-pattern", f"pay-{run}") == []
    assert [t["transactional_id"] for t in txn_json(
        broker, "list", "--producer-id", str(listed[open_id]["producer_id"]))] == [open_id]
    bad = txn(broker, "list", "--state", "Bogus", check=False)
    assert bad.returncode == 2 and "unknown transaction state" in bad.stderr

    d = txn_json(broker, "describe", "--transactional-id", open_id)
    assert (d["state"], d["producer_epoch"], d["coordinator"]) == ("Ongoing", 0, 0)
    assert d["partitions"] == [{"topic": topic, "partition": 1}]
    assert d["duration_ms"] >= 0 and d["timeout_ms"] == 60000
    text = txn(broker, "describe", "--transactional-id", done_id).stdout.splitlines()
    assert text[0].split() == ["CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch",
                               "TransactionState", "TransactionTimeoutMs", "CurrentTransactionStartTimeMs",
                               "TransactionDurationMs", "TopicPartitions"]
    assert text[1].split()[4:8] == ["CompleteCommit", "60000", "None", "None"]
    missing = txn(broker, "describe", "--transactional-id", "no-such-id", check=False)
    assert missing.returncode == 1 and "TransactionalIdNotFound" in missing.stderr

    # A live transaction is not hanging; open past a zero timeout it is reported.
    assert txn_json(broker, "find-hanging") == []
    [late] = txn_json(broker, "find-hanging", "--max-transaction-timeout", "0")
    # Partition 1 holds v1 (aborted) and its marker, then the open transaction.
    assert (late["topic"], late["partition"], late["start_offset"]) == (topic, 1, 2)
    assert "past the maximum timeout" in late["reason"]

    m = metrics(broker)
    assert total(m, "corelog_transactions_committed_total") == 2
    assert total(m, "corelog_transactions_aborted_total") == 1
    assert total(m, "corelog_transactions_timed_out_total") == 0
    assert total(m, "corelog_transactions_ongoing") == 1
    assert (stage_count(m, "begin_to_commit"), stage_count(m, "begin_to_abort")) == (2, 1)
    q.commit_transaction(TXN_TIMEOUT_S)
    m = metrics(broker)
    assert total(m, "corelog_transactions_committed_total") == 3
    assert total(m, "corelog_transactions_ongoing") == 0
    assert stage_count(m, "begin_to_commit") == 3


def test_find_hanging_and_abort_one(broker_factory):
    """A transaction whose coordinator state is lost (its __transaction_state partitions
    removed while the broker was down) hangs: the partition keeps it open and the LSO
    stays at its first offset. find-hanging names it; abort writes its ABORT marker."""
    broker = broker_factory(overrides=BROKER_SETTINGS)
    topic = fresh_topic("txn-hang")
    create_topics(broker, {topic: 1})
    ok = producer(broker, {"acks": "all"})
    ok.produce(topic, value=b"before", partition=0)
    assert ok.flush(TXN_TIMEOUT_S) == 0
    p = txn_producer(broker, f"hang-{uuid.uuid4().hex[:6]}")
    p.begin_transaction()
    p.produce(topic, value=b"stuck", partition=0)
    assert p.flush(TXN_TIMEOUT_S) == 0
    broker.kill9()
    for d in broker.log_dirs:
        for part in d.glob("__transaction_state-*"):
            shutil.rmtree(part)
    broker.start()
    ok = producer(broker, {"acks": "all"})
    ok.produce(topic, value=b"after", partition=0)
    assert ok.flush(TXN_TIMEOUT_S) == 0
    assert (watermarks(broker, topic, "read_committed"), watermarks(broker, topic, "read_uncommitted")) == (1, 3)
    assert txn_json(broker, "list") == []

    [h] = txn_json(broker, "find-hanging", "--topic", topic)
    assert (h["topic"], h["partition"], h["start_offset"], h["producer_epoch"]) == (topic, 0, 1, 0)
    assert h["reason"] == "no coordinator knows the producer" and h["duration_ms"] is None
    assert txn_json(broker, "find-hanging", "--broker-id", "0") == [h]
    assert txn_json(broker, "find-hanging", "--broker-id", "7") == []
    wrong = txn(broker, "abort", "--topic", topic, "--partition", "0", "--start-offset", "2", check=False)
    assert wrong.returncode == 1 and "no open transaction starts at offset 2" in wrong.stderr

    out = txn(broker, "abort", "--topic", topic, "--partition", "0", "--start-offset", "1").stdout
    assert out == f"Aborted the transaction of producer {h['producer_id']} (epoch 0) on {topic}-0\n"
    assert txn_json(broker, "find-hanging") == []
    # The marker is offset 3: the LSO is the high watermark again, and read_committed
    # readers see every record but the aborted one.
    assert (watermarks(broker, topic, "read_committed"), watermarks(broker, topic, "read_uncommitted")) == (4, 4)
    got = consume(broker, topic, {0: 0}, 2, config={"isolation.level": "read_committed"})
    assert [m.value() for m in got] == [b"before", b"after"]


# --- transaction v2 on the wire ------------------------------------------------------

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
    for _ in range(_uvarint(r)):
        _uvarint(r)
        r._take(_uvarint(r))


def _compact_nullable(s):
    return kwire.varint_unsigned(0) if s is None else kwire.compact_string(s)


def finalized_features(conn):
    """ApiVersions v3: {feature: (min level, max level)} of the finalized features."""
    body = kwire.compact_string("e2e") + kwire.compact_string("1") + kwire.EMPTY_TAGGED_FIELDS
    r = kwire.Reader(conn.request(kwire.API_API_VERSIONS, 3, body, flexible_header=True))
    assert r.int16() == kwire.ERR_NONE

    def key():
        out = (r.int16(), r.int16(), r.int16())
        _skip_tags(r)
        return out
    keys = {k: (lo, hi) for k, lo, hi in _compact_array(r, key)}
    r.int32()
    finalized = {}
    for _ in range(_uvarint(r)):
        tag, size = _uvarint(r), _uvarint(r)
        data = kwire.Reader(r._take(size))
        if tag == 2:
            def feature():
                name, hi, lo = _compact_string(data), data.int16(), data.int16()
                _skip_tags(data)
                return name, (lo, hi)
            finalized = dict(_compact_array(data, feature))
    return keys, finalized


def produce_v12_body(txn_id, topic, partition, batch):
    records = kwire.varint_unsigned(len(batch) + 1) + batch
    part = kwire.int32(partition) + records + kwire.EMPTY_TAGGED_FIELDS
    topic_data = kwire.compact_string(topic) + kwire.varint_unsigned(2) + part + kwire.EMPTY_TAGGED_FIELDS
    return (_compact_nullable(txn_id) + kwire.int16(-1) + kwire.int32(10000)
            + kwire.varint_unsigned(2) + topic_data + kwire.EMPTY_TAGGED_FIELDS)


def produce_v12_result(body, topic, partition):
    """(error code, base offset) of a Produce v12 response's one partition."""
    r = kwire.Reader(body)
    _skip_tags(r)
    assert _uvarint(r) == 2 and _compact_string(r) == topic and _uvarint(r) == 2
    assert r.int32() == partition
    return r.int16(), r.int64()


def produce_v12_code(conn, txn_id, topic, partition, batch):
    """Produce v12 (flexible) of one batch: the partition's error code."""
    body = conn.request(kwire.API_PRODUCE, 12, produce_v12_body(txn_id, topic, partition, batch),
                        flexible_header=True)
    return produce_v12_result(body, topic, partition)[0]


def produce_v12_pipelined(conn, txn_id, topic, partition, batches):
    """Sends every batch's Produce v12 before reading any answer: [(error, base offset)]."""
    first_id = conn.next_correlation_id
    for i, batch in enumerate(batches):
        conn.send(kwire.request_frame(kwire.API_PRODUCE, 12, first_id + i,
                                      produce_v12_body(txn_id, topic, partition, batch), flexible_header=True))
    conn.next_correlation_id += len(batches)
    out = []
    for i in range(len(batches)):
        got_id, body = conn.recv_frame()
        assert got_id == first_id + i
        out.append(produce_v12_result(body, topic, partition))
    return out


def end_txn_v5(conn, txn_id, pid, epoch, commit):
    """EndTxn v5: (error, producer id, epoch) as the coordinator answers."""
    body = (kwire.compact_string(txn_id) + kwire.int64(pid) + kwire.int16(epoch)
            + kwire.int8(1 if commit else 0) + kwire.EMPTY_TAGGED_FIELDS)
    r = kwire.Reader(conn.request(API_END_TXN, 5, body, flexible_header=True))
    _skip_tags(r)
    r.int32()
    out = (r.int16(), r.int64(), r.int16())
    _skip_tags(r)
    r.expect_end()
    return out


def txn_offset_commit_v5(conn, txn_id, group, pid, epoch, topic, offset):
    """TxnOffsetCommit v5 of partition 0 (no AddOffsetsToTxn before): its error code."""
    part = kwire.int32(0) + kwire.int64(offset) + kwire.int32(-1) + _compact_nullable("") + kwire.EMPTY_TAGGED_FIELDS
    topics = kwire.varint_unsigned(2) + kwire.compact_string(topic) + kwire.varint_unsigned(2) + part \
        + kwire.EMPTY_TAGGED_FIELDS
    body = (kwire.compact_string(txn_id) + kwire.compact_string(group) + kwire.int64(pid) + kwire.int16(epoch)
            + kwire.int32(-1) + kwire.compact_string("") + _compact_nullable(None) + topics
            + kwire.EMPTY_TAGGED_FIELDS)
    r = kwire.Reader(conn.request(API_TXN_OFFSET_COMMIT, 5, body, flexible_header=True))
    _skip_tags(r)
    r.int32()
    assert _uvarint(r) == 2 and _compact_string(r) == topic and _uvarint(r) == 2
    assert r.int32() == 0
    return r.int16()


def txn_batch(value, pid, epoch, sequence):
    return kwire.record_batch([(None, value, [], 0)], 1_700_000_000_000, producer_id=pid, producer_epoch=epoch,
                              base_sequence=sequence, attributes=kwire.BATCH_ATTRIBUTE_TRANSACTIONAL)


def test_transaction_v2_on_the_wire(broker_factory):
    broker = broker_factory(overrides=BROKER_SETTINGS)
    topic = fresh_topic("txn-v2")
    create_topics(broker, {topic: 1})
    txn_id = f"v2-{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:6]}"
    with kwire.Conn(broker.port) as conn:
        keys, finalized = finalized_features(conn)
        assert finalized == {"transaction.version": (2, 2)}
        assert keys[0][1] >= 12 and keys[API_END_TXN][1] == 5 and keys[API_TXN_OFFSET_COMMIT][1] == 5
        code, pid, epoch = kwire.init_producer_id(conn, 60000, transactional_id=txn_id)
        assert (code, epoch) == (kwire.ERR_NONE, 0)
        # Produce v11 still only verifies (KIP-890 part 1): not in the transaction.
        assert kwire.produce(conn, 7, topic, 0, txn_batch(b"v1", pid, 0, 0), transactional_id=txn_id)[0] == \
            kwire.ERR_INVALID_TXN_STATE
        # Produce v12 adds the partition on the coordinator, then appends; the second
        # request, sent before the first is answered, waits its turn and keeps its order.
        assert produce_v12_pipelined(conn, txn_id, topic, 0, [txn_batch(b"a", pid, 0, 0),
                                                               txn_batch(b"b", pid, 0, 1)]) == \
            [(kwire.ERR_NONE, 0), (kwire.ERR_NONE, 1)]
        # TxnOffsetCommit v5 adds the group's offsets partition itself.
        assert txn_offset_commit_v5(conn, txn_id, group, pid, 0, topic, 2) == kwire.ERR_NONE
        d = txn_json(broker, "describe", "--transactional-id", txn_id)
        assert d["state"] == "Ongoing" and {"topic": topic, "partition": 0} in d["partitions"]
        assert any(p["topic"] == "__consumer_offsets" for p in d["partitions"])
        # EndTxn v5 bumps the epoch and answers the new one.
        assert end_txn_v5(conn, txn_id, pid, 0, True) == (kwire.ERR_NONE, pid, 1)
        # A retry of that EndTxn gets the same answer.
        assert end_txn_v5(conn, txn_id, pid, 0, True) == (kwire.ERR_NONE, pid, 1)
        # A late write of the finished transaction (old epoch) is fenced, not appended.
        assert produce_v12_code(conn, txn_id, topic, 0, txn_batch(b"late", pid, 0, 2)) == \
            kwire.ERR_INVALID_PRODUCER_EPOCH
        # The next transaction runs under epoch 1 and is aborted: epoch 2.
        assert produce_v12_code(conn, txn_id, topic, 0, txn_batch(b"c", pid, 1, 0)) == kwire.ERR_NONE
        assert end_txn_v5(conn, txn_id, pid, 1, False) == (kwire.ERR_NONE, pid, 2)
        # Aborting with nothing sent still bumps the epoch.
        assert end_txn_v5(conn, txn_id, pid, 2, False) == (kwire.ERR_NONE, pid, 3)
        assert end_txn_v5(conn, txn_id, pid, 1, True)[0] == 90  # PRODUCER_FENCED
        d = txn_json(broker, "describe", "--transactional-id", txn_id)
        assert (d["state"], d["producer_epoch"]) == ("CompleteAbort", 3)
    # Markers carried the bumped epochs: the partition's producer is at epoch 2 (the
    # abort's marker), with no open transaction.
    [prod] = txn_json(broker, "describe-producers", "--topic", topic, "--partition", "0")
    assert (prod["producer_id"], prod["producer_epoch"], prod["current_transaction_start_offset"]) == (pid, 2, -1)
    # a, b, COMMIT(1), c, ABORT(2): read_committed sees a and b; the LSO is the end.
    assert watermarks(broker, topic, "read_committed") == 5
    got = consume(broker, topic, {0: 0}, 2, config={"isolation.level": "read_committed"})
    assert [m.value() for m in got] == [b"a", b"b"]
    c = Consumer({**base_config(broker), "group.id": group, "enable.auto.commit": False})
    try:
        [tp] = c.committed([TopicPartition(topic, 0)], timeout=TXN_TIMEOUT_S)
        assert tp.offset == 2
    finally:
        c.close()


API_FIND_COORDINATOR = 10
COORDINATOR_KEY_TRANSACTION = 1
RETRIABLE = {15, 14, 19}  # COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS, NOT_ENOUGH_REPLICAS
CLUSTER_SETTINGS = {"transaction.state.log.num.partitions": "3", "offsets.topic.num.partitions": "3"}


def transaction_coordinator(conn, txn_id):
    """(error code, node id) of FindCoordinator v1 for a transactional id."""
    r = kwire.Reader(conn.request(API_FIND_COORDINATOR, 1, kwire.string(txn_id) + kwire.int8(COORDINATOR_KEY_TRANSACTION)))
    r.int32()  # throttle time
    code = r.int16()
    r.string()  # error message (nullable: -1 length reads as None or "")
    return code, r.int32()


def retried(call, timeout_s=TXN_TIMEOUT_S):
    """call() until its first element is not a retriable coordinator/produce error."""
    deadline = time.monotonic() + timeout_s
    while True:
        out = call()
        code = out[0] if isinstance(out, tuple) else out
        if code not in RETRIABLE or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def test_transaction_v2_across_brokers(broker_factory):
    """Every cluster member finalizes transaction v2: a Produce v12 on a partition leader
    adds its partition on the id's coordinator, another broker, and the commit's marker
    reaches it. A classic (v7) transactional produce of a partition not in the
    transaction is refused there too (KIP-890 part 1 across brokers)."""
    members = broker_factory.cluster(3, overrides=CLUSTER_SETTINGS)
    topic = fresh_topic("txn-v2-cluster")
    # Six partitions over three brokers: placement spreads them, so at least two are
    # led by brokers other than the coordinator.
    create_topics(members[0], {topic: 6})
    leaders = {p: m.leader for p, m in
               partitions_of(members[0], topic).items()}
    by_node = {m.node_id: m for m in members}
    txn_id = f"v2c-{uuid.uuid4().hex[:8]}"
    with kwire.Conn(members[0].port) as conn:
        keys, finalized = finalized_features(conn)
        assert finalized == {"transaction.version": (2, 2)}
        code, coordinator = retried(lambda: transaction_coordinator(conn, txn_id))
    assert code == kwire.ERR_NONE
    elsewhere = sorted(p for p, leader in leaders.items() if leader != coordinator)
    assert len(elsewhere) >= 2, (leaders, coordinator)
    added, refused = elsewhere[0], elsewhere[1]
    with kwire.Conn(by_node[coordinator].port) as coord:
        code, pid, epoch = retried(lambda: kwire.init_producer_id(coord, 60000, transactional_id=txn_id))
        assert (code, epoch) == (kwire.ERR_NONE, 0)
        with kwire.Conn(by_node[leaders[added]].port) as leader:
            assert retried(lambda: produce_v12_code(leader, txn_id, topic, added, txn_batch(b"x", pid, 0, 0))) \
                == kwire.ERR_NONE
        with kwire.Conn(by_node[leaders[refused]].port) as other:
            assert kwire.produce(other, 7, topic, refused, txn_batch(b"no", pid, 0, 0),
                                 transactional_id=txn_id)[0] == kwire.ERR_INVALID_TXN_STATE
        d = txn_json(by_node[coordinator], "describe", "--transactional-id", txn_id)
        assert d["state"] == "Ongoing" and d["partitions"] == [{"topic": topic, "partition": added}]
        assert end_txn_v5(coord, txn_id, pid, 0, True) == (kwire.ERR_NONE, pid, 1)
    # The marker reached the other broker: read_committed there sees the record.
    got = consume(by_node[leaders[added]], topic, {added: 0}, 1, config={"isolation.level": "read_committed"})
    assert [m.value() for m in got] == [b"x"]
    got = consume(by_node[leaders[refused]], topic, {refused: 0}, 0, config={"isolation.level": "read_uncommitted"})
    assert got == []


def partitions_of(broker, topic):
    """{partition: PartitionMetadata} of topic, from confluent-kafka's AdminClient."""
    from confluent_kafka.admin import AdminClient
    md = AdminClient(base_config(broker)).list_topics(topic, timeout=TXN_TIMEOUT_S)
    return md.topics[topic].partitions
