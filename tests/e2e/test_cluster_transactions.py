"""Transactions across brokers (issue 11): `__transaction_state` is a replicated quorum
topic, a transactional id's coordinator is the leader of its partition, markers go to
partition leaders on other brokers with WriteTxnMarkers, TxnOffsetCommit is served by
the group's coordinator, and a kill -9 of the transaction coordinator leaves the new
leader of the state partition to finish what was in flight. Three brokers on loopback,
driven by confluent-kafka (librdkafka)."""

import threading
import time
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import kwire
from clients import base_config, consume, producer, wait_until
from conftest import fresh_topic

ADMIN_TIMEOUT_S = 10
SETTLE_S = 30
TXN_TIMEOUT_S = 30
PARTITIONS = 3
API_FIND_COORDINATOR = 10
KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1
SETTINGS = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.num.partitions": "3",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
    "group.initial.rebalance.delay.ms": "0",
}


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def find_coordinator(broker, key_type, key):
    """FindCoordinator v1 on the wire: (error_code, node_id)."""
    with kwire.Conn(broker.port) as conn:
        body = conn.request(API_FIND_COORDINATOR, 1, kwire.string(key) + kwire.int8(key_type))
    r = kwire.Reader(body)
    r.int32()  # throttle time
    code = r.int16()
    r.string()  # error message (nullable: read as a string of length -1)
    node = r.int32()
    return code, node


def coordinator(broker, key_type, key):
    """The coordinator's node id, or None while none is available."""
    try:
        code, node = find_coordinator(broker, key_type, key)
    except (OSError, ValueError):
        return None
    return node if code == 0 else None


def leaders(broker, topic):
    """{partition: leader} in `broker`'s Metadata; {} until every partition has one."""
    t = admin(broker).list_topics(timeout=ADMIN_TIMEOUT_S).topics.get(topic)
    if t is None or t.error is not None or any(m.leader <= 0 for m in t.partitions.values()):
        return {}
    return {p: m.leader for p, m in t.partitions.items()}


def start_cluster(broker_factory):
    members = broker_factory.cluster(3, overrides=SETTINGS)
    first = members[0]
    wait_until(lambda: len(leaders(first, "__transaction_state")) == 3 and
               len(leaders(first, "__consumer_offsets")) == 3,
               SETTLE_S, "the replicated __transaction_state and __consumer_offsets")
    return members


def create_topic(members, topic, partitions=PARTITIONS):
    client = admin(members[0])  # kept alive until the result is in
    client.create_topics([NewTopic(topic, partitions, 3)])[topic].result(ADMIN_TIMEOUT_S)
    wait_until(lambda: all(len(leaders(b, topic)) == partitions for b in members), SETTLE_S,
               f"{topic}'s leaders on every broker")
    return leaders(members[0], topic)


def txn_producer(broker, txn_id):
    p = producer(broker, {"transactional.id": txn_id, "acks": "all", "linger.ms": 5,
                          "transaction.timeout.ms": 20000, "message.timeout.ms": 20000})
    p.init_transactions(TXN_TIMEOUT_S)
    return p


def read_all(broker, topic, count, isolation):
    """`count` records of every partition from offset 0: {partition: [values]}."""
    got = consume(broker, topic, {q: 0 for q in range(PARTITIONS)}, count,
                  config={"isolation.level": isolation})
    out = {q: [] for q in range(PARTITIONS)}
    for m in got:
        out[m.partition()].append(m.value())
    return out


def test_commit_and_abort_across_partition_leaders(broker_factory):
    members = start_cluster(broker_factory)
    topic = fresh_topic("xtxn")
    led = create_topic(members, topic)
    # Leaders spread over the brokers: markers must reach other brokers.
    assert len(set(led.values())) >= 2, led
    txn_id = f"tx-{uuid.uuid4().hex[:8]}"
    coord = coordinator(members[0], KEY_TYPE_TRANSACTION, txn_id)
    assert coord in (1, 2, 3)
    # Every broker names the same coordinator.
    assert {coordinator(b, KEY_TYPE_TRANSACTION, txn_id) for b in members} == {coord}
    assert any(leader != coord for leader in led.values()), (coord, led)

    p = txn_producer(members[0], txn_id)
    outcomes = ["commit", "abort", "commit", "abort", "commit"]
    for r, outcome in enumerate(outcomes):
        p.begin_transaction()
        for q in range(PARTITIONS):
            for i in range(2):
                p.produce(topic, value=f"{outcome}-{r}-{q}-{i}".encode(), partition=q)
        if outcome == "commit":
            p.commit_transaction(TXN_TIMEOUT_S)
        else:
            assert p.flush(TXN_TIMEOUT_S) == 0
            p.abort_transaction(TXN_TIMEOUT_S)
    expected = {
        iso: {q: [f"{o}-{r}-{q}-{i}".encode() for r, o in enumerate(outcomes) if o in kept for i in range(2)]
              for q in range(PARTITIONS)}
        for iso, kept in (("read_uncommitted", ("commit", "abort")), ("read_committed", ("commit",)))
    }
    # Read through every broker (each bootstraps the consumer; records come from the
    # leaders).
    for b in members:
        for iso, want in expected.items():
            count = sum(len(v) for v in want.values())
            assert read_all(b, topic, count, iso) == want, (b.node_id, iso)
    # 5 transactions per partition: 10 records and 5 markers, none open, so the last
    # stable offset is the high watermark on every leader.
    c = Consumer({**base_config(members[0]), "group.id": "unused", "isolation.level": "read_committed"})
    try:
        for q in range(PARTITIONS):
            assert c.get_watermark_offsets(TopicPartition(topic, q), timeout=ADMIN_TIMEOUT_S) == (0, 15)
    finally:
        c.close()
    p.flush(TXN_TIMEOUT_S)


def ids_on_different_coordinators(broker):
    """(group, transactional id) coordinated by different brokers."""
    for _ in range(200):
        group, txn_id = f"g-{uuid.uuid4().hex[:8]}", f"tx-{uuid.uuid4().hex[:8]}"
        g, t = coordinator(broker, KEY_TYPE_GROUP, group), coordinator(broker, KEY_TYPE_TRANSACTION, txn_id)
        if g is not None and t is not None and g != t:
            return group, txn_id
    raise AssertionError("no ids on different coordinators")


def committed_offset(broker, group, topic):
    c = Consumer({**base_config(broker), "group.id": group, "enable.auto.commit": False})
    try:
        return c.committed([TopicPartition(topic, 0)], timeout=TXN_TIMEOUT_S)[0].offset
    finally:
        c.close()


def test_offsets_sent_to_a_group_coordinated_by_another_broker(broker_factory):
    members = start_cluster(broker_factory)
    src, dst = fresh_topic("xsrc"), fresh_topic("xdst")
    create_topic(members, src, 1)
    create_topic(members, dst, 1)
    plain = producer(members[0], {"acks": "all"})
    for i in range(10):
        plain.produce(src, value=f"in-{i}".encode(), partition=0)
    assert plain.flush(TXN_TIMEOUT_S) == 0
    group, txn_id = ids_on_different_coordinators(members[0])
    c = Consumer({**base_config(members[1]), "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    c.subscribe([src])
    p = txn_producer(members[2], txn_id)
    try:
        got = 0
        deadline = time.monotonic() + TXN_TIMEOUT_S
        while got < 10:
            assert time.monotonic() < deadline, f"{got} of 10 input records"
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                got += 1
        # Aborted: the group coordinator drops the offsets at the abort marker.
        p.begin_transaction()
        p.produce(dst, value=b"out-aborted", partition=0)
        p.send_offsets_to_transaction([TopicPartition(src, 0, 4)], c.consumer_group_metadata(), TXN_TIMEOUT_S)
        p.abort_transaction(TXN_TIMEOUT_S)
        assert committed_offset(members[0], group, src) < 0
        # Committed: visible only once the commit marker reached the group coordinator.
        p.begin_transaction()
        p.produce(dst, value=b"out-committed", partition=0)
        p.send_offsets_to_transaction([TopicPartition(src, 0, 10)], c.consumer_group_metadata(), TXN_TIMEOUT_S)
        assert committed_offset(members[0], group, src) < 0, "offsets visible before the commit"
        p.commit_transaction(TXN_TIMEOUT_S)
        assert committed_offset(members[0], group, src) == 10
        out = consume(members[0], dst, {0: 0}, 1, config={"isolation.level": "read_committed"})
        assert [m.value() for m in out] == [b"out-committed"]

        # The group coordinator killed between TxnOffsetCommit and the commit: the
        # offsets were written to __consumer_offsets as transactional records, so the
        # new group coordinator holds them again and the commit marker applies them.
        by_id = {b.node_id: b for b in members}
        g = coordinator(members[0], KEY_TYPE_GROUP, group)
        victim = by_id[g]
        survivor = next(b for b in members if b is not victim)
        p.begin_transaction()
        p.produce(dst, value=b"out-after-failover", partition=0)
        p.send_offsets_to_transaction([TopicPartition(src, 0, 8)], c.consumer_group_metadata(), TXN_TIMEOUT_S)
        victim.kill9()
        wait_until(lambda: coordinator(survivor, KEY_TYPE_GROUP, group) not in (None, g), SETTLE_S,
                   "another broker coordinates the group")
        p.commit_transaction(TXN_TIMEOUT_S)
        wait_until(lambda: committed_offset(survivor, group, src) == 8, SETTLE_S,
                   "the transaction's offset from the new group coordinator")
        out = consume(survivor, dst, {0: 0}, 2, config={"isolation.level": "read_committed"})
        assert [m.value() for m in out] == [b"out-committed", b"out-after-failover"]
    finally:
        c.close()


def values_by_partition(broker, topic, count, isolation):
    return read_all(broker, topic, count, isolation)


def test_coordinator_killed_with_a_transaction_open(broker_factory):
    members = start_cluster(broker_factory)
    by_id = {b.node_id: b for b in members}
    topic = fresh_topic("xfail-open")
    create_topic(members, topic)
    txn_id = f"tx-{uuid.uuid4().hex[:8]}"
    coord = coordinator(members[0], KEY_TYPE_TRANSACTION, txn_id)
    victim = by_id[coord]
    survivor = next(b for b in members if b is not victim)
    p = txn_producer(survivor, txn_id)
    p.begin_transaction()
    for q in range(PARTITIONS):
        p.produce(topic, value=f"c-{q}".encode(), partition=q)
    p.commit_transaction(TXN_TIMEOUT_S)
    p.begin_transaction()
    for q in range(PARTITIONS):
        p.produce(topic, value=f"open-{q}".encode(), partition=q)
    assert p.flush(TXN_TIMEOUT_S) == 0
    # The coordinator dies with the transaction open (Ongoing in the replicated state).
    victim.kill9()
    wait_until(lambda: coordinator(survivor, KEY_TYPE_TRANSACTION, txn_id) not in (None, coord), SETTLE_S,
               "another broker coordinates the transactional id")
    # A new instance with the same id: the new coordinator aborts the open transaction
    # (markers to every partition's current leader) and fences the old producer.
    fresh = txn_producer(survivor, txn_id)
    fresh.begin_transaction()
    for q in range(PARTITIONS):
        fresh.produce(topic, value=f"n-{q}".encode(), partition=q)
    fresh.commit_transaction(TXN_TIMEOUT_S)
    committed = {q: [f"c-{q}".encode(), f"n-{q}".encode()] for q in range(PARTITIONS)}
    everything = {q: [f"c-{q}".encode(), f"open-{q}".encode(), f"n-{q}".encode()] for q in range(PARTITIONS)}
    assert values_by_partition(survivor, topic, 2 * PARTITIONS, "read_committed") == committed
    assert values_by_partition(survivor, topic, 3 * PARTITIONS, "read_uncommitted") == everything


def test_coordinator_killed_while_committing(broker_factory):
    members = start_cluster(broker_factory)
    by_id = {b.node_id: b for b in members}
    topic = fresh_topic("xfail-commit")
    led = create_topic(members, topic)
    txn_id = f"tx-{uuid.uuid4().hex[:8]}"
    coord = coordinator(members[0], KEY_TYPE_TRANSACTION, txn_id)
    assert any(leader != coord for leader in led.values()), (coord, led)
    victim = by_id[coord]
    survivor = next(b for b in members if b is not victim)
    p = txn_producer(survivor, txn_id)
    p.begin_transaction()
    for q in range(PARTITIONS):
        for i in range(3):
            p.produce(topic, value=f"v-{q}-{i}".encode(), partition=q)
    assert p.flush(TXN_TIMEOUT_S) == 0
    outcome = {}

    def commit():
        try:
            p.commit_transaction(TXN_TIMEOUT_S)
            outcome["ok"] = True
        except Exception as e:  # noqa: BLE001 - reported below
            outcome["error"] = e

    worker = threading.Thread(target=commit)
    worker.start()
    # Killed with the commit requested (EndTxn on its way or being served; a commit
    # takes ~20 ms here, so a longer pause lets it finish first).
    time.sleep(0.005)
    victim.kill9()
    worker.join(TXN_TIMEOUT_S + 5)
    assert not worker.is_alive()
    # librdkafka retries EndTxn on the new coordinator; a retriable error asks the
    # application to call commit again.
    if "error" in outcome:
        err = outcome["error"].args[0]
        assert err.retriable(), err
        p.commit_transaction(TXN_TIMEOUT_S)
    want = {q: [f"v-{q}-{i}".encode() for i in range(3)] for q in range(PARTITIONS)}
    assert values_by_partition(survivor, topic, 3 * PARTITIONS, "read_committed") == want
    # The same id re-inits on the new coordinator and carries on.
    fresh = txn_producer(survivor, txn_id)
    fresh.begin_transaction()
    fresh.produce(topic, value=b"after", partition=0)
    fresh.commit_transaction(TXN_TIMEOUT_S)
    want[0].append(b"after")
    assert values_by_partition(survivor, topic, 3 * PARTITIONS + 1, "read_committed") == want
