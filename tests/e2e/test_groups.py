"""Consumer groups: the classic protocol with real clients (librdkafka through
confluent-kafka, kafka-python, kcat), committed offsets across consumer and broker
restarts, and the group admin APIs.

Every broker here runs with group.initial.rebalance.delay.ms=0 (Kafka's 3 s default would
only slow the tests down). Every wait is bounded.
"""

import struct
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from confluent_kafka import OFFSET_INVALID, Consumer, ConsumerGroupState, KafkaError, TopicPartition
from kafka import KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

import kwire
from clients import admin, admin_results, base_config, create_topic, flush, kcat, producer, wait_until
from conftest import fresh_topic

GROUP_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
PARTITIONS = 4
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 500
STABLE_TIMEOUT_S = 30
CONSUME_TIMEOUT_S = 30
POLL_S = 0.1


@pytest.fixture(scope="module")
def gbroker(module_broker_factory):
    return module_broker_factory(GROUP_OVERRIDES)


def fresh_group(prefix="g"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(broker, topic, count, start=0, partitions=PARTITIONS):
    """count messages spread round-robin over the partitions; returns their values."""
    p = producer(broker)
    values = []
    for i in range(start, start + count):
        value = f"v-{i}".encode()
        p.produce(topic, value=value, key=f"k-{i}".encode(), partition=i % partitions)
        values.append(value)
    flush(p)
    return values


def group_consumer(broker, group, config=None):
    return Consumer({
        **base_config(broker),
        "group.id": group,
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **(config or {}),
    })


def partitions_of(c):
    return {tp.partition for tp in c.assignment()}


def wait_stable(consumers, topic, timeout_s=STABLE_TIMEOUT_S, partitions=PARTITIONS):
    """Polls every consumer until each owns at least one partition and together they own
    each partition exactly once. Returns messages polled meanwhile (should be none)."""
    seen = []
    deadline = time.monotonic() + timeout_s
    while True:
        for c in consumers:
            msg = c.poll(POLL_S)
            if msg is not None and msg.error() is None:
                seen.append(msg)
        owned = [partitions_of(c) for c in consumers]
        flat = [p for o in owned for p in o]
        if all(owned) and sorted(flat) == list(range(partitions)):
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(f"{topic}: no stable assignment after {timeout_s} s: {owned}")


def consume_all(consumers, expected, timeout_s=CONSUME_TIMEOUT_S, seen=None):
    """Polls the consumers until the values in expected arrived; returns
    {consumer index: [messages]}. Duplicates or strays fail the caller's checks."""
    got = {i: [] for i in range(len(consumers))}
    for m in seen or []:
        got[0].append(m)
    deadline = time.monotonic() + timeout_s
    want = set(expected)
    while True:
        values = {m.value() for ms in got.values() for m in ms}
        if want <= values:
            # One more round, so that duplicates in flight show up.
            for i, c in enumerate(consumers):
                msg = c.poll(POLL_S)
                if msg is not None and msg.error() is None:
                    got[i].append(msg)
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"{len(want - values)} of {len(want)} messages missing after {timeout_s} s")
        for i, c in enumerate(consumers):
            msg = c.poll(POLL_S)
            if msg is None:
                continue
            if msg.error() is None:
                got[i].append(msg)
            elif msg.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(f"consumer {i}: {msg.error()}")


def assert_exactly_once(got, expected, consumers):
    values = [m.value() for ms in got.values() for m in ms]
    assert sorted(values) == sorted(expected), "every message exactly once"
    for i, ms in got.items():
        owned = partitions_of(consumers[i])
        assert {m.partition() for m in ms} <= owned, f"consumer {i} read outside {owned}"


def commit_all(consumers):
    for c in consumers:
        if c.assignment():
            try:
                c.commit(asynchronous=False)
            except Exception as e:  # nothing consumed since the last commit
                if "_NO_OFFSET" not in str(e):
                    raise


def test_two_consumers_split_then_a_third_joins_and_one_leaves(gbroker):
    topic = create_topic(gbroker, fresh_topic("grp-split"), PARTITIONS)
    group = fresh_group()
    c1, c2 = group_consumer(gbroker, group), group_consumer(gbroker, group)
    c3 = None
    try:
        c1.subscribe([topic])
        c2.subscribe([topic])
        seen = wait_stable([c1, c2], topic)
        assert seen == []
        first = produce(gbroker, topic, 40)
        got = consume_all([c1, c2], first)
        assert_exactly_once(got, first, [c1, c2])
        commit_all([c1, c2])

        c3 = group_consumer(gbroker, group)
        c3.subscribe([topic])
        assert wait_stable([c1, c2, c3], topic) == []
        second = produce(gbroker, topic, 40, start=40)
        got = consume_all([c1, c2, c3], second)
        assert_exactly_once(got, second, [c1, c2, c3])
        commit_all([c1, c2, c3])

        c1.close()
        c1 = None
        assert wait_stable([c2, c3], topic) == []
        third = produce(gbroker, topic, 40, start=80)
        got = consume_all([c2, c3], third)
        assert_exactly_once(got, third, [c2, c3])
    finally:
        for c in (c1, c2, c3):
            if c is not None:
                c.close()


CHILD_CONSUMER = textwrap.dedent("""
    import sys
    from confluent_kafka import Consumer
    bootstrap, group, topic = sys.argv[1:4]
    c = Consumer({"bootstrap.servers": bootstrap, "broker.address.family": "v4",
                  "group.id": group, "session.timeout.ms": 6000,
                  "heartbeat.interval.ms": 500, "auto.offset.reset": "earliest"})
    def assigned(consumer, parts):
        print("assigned", sorted(p.partition for p in parts), flush=True)
    c.subscribe([topic], on_assign=assigned)
    while True:
        c.poll(0.1)
""")


def test_a_killed_consumer_is_evicted_after_its_session_timeout(gbroker, tmp_path):
    topic = create_topic(gbroker, fresh_topic("grp-kill"), PARTITIONS)
    group = fresh_group()
    script = tmp_path / "child_consumer.py"
    script.write_text(CHILD_CONSUMER)
    child = subprocess.Popen([sys.executable, str(script), gbroker.bootstrap, group, topic],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    survivor = group_consumer(gbroker, group)
    try:
        survivor.subscribe([topic])
        wait_until(lambda: survivor.poll(POLL_S) is None and 0 < len(partitions_of(survivor)) < PARTITIONS,
                   STABLE_TIMEOUT_S, "the survivor to share the partitions with the child", interval_s=0)
        killed_at = time.monotonic()
        child.kill()
        child.wait(timeout=10)
        wait_until(lambda: survivor.poll(POLL_S) is None and len(partitions_of(survivor)) == PARTITIONS,
                   SESSION_TIMEOUT_MS / 1000 + STABLE_TIMEOUT_S, "the survivor to take every partition",
                   interval_s=0)
        waited_s = time.monotonic() - killed_at
        # Eviction waits for the session timeout (less the child's last heartbeat interval).
        assert waited_s >= SESSION_TIMEOUT_MS / 1000 - 1.5, waited_s
        values = produce(gbroker, topic, 20)
        got = consume_all([survivor], values)
        assert_exactly_once(got, values, [survivor])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        survivor.close()


def read_n(c, n, timeout_s=CONSUME_TIMEOUT_S):
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n:
        assert time.monotonic() < deadline, f"{len(out)} of {n} messages after {timeout_s} s"
        msg = c.poll(POLL_S)
        if msg is not None and msg.error() is None:
            out.append(msg)
    return out


def test_a_restarted_consumer_resumes_after_its_committed_offset(gbroker):
    topic = create_topic(gbroker, fresh_topic("grp-resume"), 1)
    group = fresh_group()
    values = produce(gbroker, topic, 10, partitions=1)
    c = group_consumer(gbroker, group)
    try:
        c.subscribe([topic])
        first = read_n(c, 4)
        assert [m.value() for m in first] == values[:4]
        c.commit(message=first[-1], asynchronous=False)
    finally:
        c.close()
    c = group_consumer(gbroker, group)
    try:
        c.subscribe([topic])
        rest = read_n(c, 6)
        assert [m.offset() for m in rest] == list(range(4, 10))
        assert [m.value() for m in rest] == values[4:]
        committed = c.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed[0].offset == 4
    finally:
        c.close()


def test_committed_offsets_survive_a_broker_kill(broker_factory):
    broker = broker_factory(GROUP_OVERRIDES)
    topic = create_topic(broker, fresh_topic("grp-durable"), PARTITIONS)
    groups = [fresh_group(f"durable{i}") for i in range(3)]
    produce(broker, topic, 40)
    for n, group in enumerate(groups):
        c = group_consumer(broker, group)
        try:
            c.commit(offsets=[TopicPartition(topic, p, 1 + n + p) for p in range(PARTITIONS)],
                     asynchronous=False)
        finally:
            c.close()
    broker.kill9()
    broker.start()
    for n, group in enumerate(groups):
        c = group_consumer(broker, group)
        try:
            committed = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
            assert [tp.offset for tp in committed] == [1 + n + p for p in range(PARTITIONS)], group
            c.subscribe([topic])
            # 10 messages per partition; each partition resumes at its commit.
            expected = sorted((p, o) for p in range(PARTITIONS) for o in range(1 + n + p, 10))
            got = read_n(c, len(expected))
            assert sorted((m.partition(), m.offset()) for m in got) == expected
        finally:
            c.close()


def test_a_second_group_gets_a_full_copy(gbroker):
    topic = create_topic(gbroker, fresh_topic("grp-copy"), PARTITIONS)
    values = produce(gbroker, topic, 30)
    for group in (fresh_group("copy-a"), fresh_group("copy-b")):
        c = group_consumer(gbroker, group)
        try:
            c.subscribe([topic])
            got = consume_all([c], values)
            assert sorted(m.value() for ms in got.values() for m in ms) == sorted(values)
        finally:
            c.close()


def test_cooperative_sticky_consumers_split_the_partitions(gbroker):
    topic = create_topic(gbroker, fresh_topic("grp-coop"), PARTITIONS)
    group = fresh_group("coop")
    config = {"partition.assignment.strategy": "cooperative-sticky"}
    c1, c2 = group_consumer(gbroker, group, config), group_consumer(gbroker, group, config)
    try:
        c1.subscribe([topic])
        c2.subscribe([topic])
        assert wait_stable([c1, c2], topic) == []
        values = produce(gbroker, topic, 40)
        got = consume_all([c1, c2], values)
        assert_exactly_once(got, values, [c1, c2])
    finally:
        c1.close()
        c2.close()


@pytest.mark.parametrize("assignor", [RangePartitionAssignor, RoundRobinPartitionAssignor],
                         ids=["range", "roundrobin"])
def test_kafka_python_consumers_share_a_group(gbroker, assignor):
    topic = create_topic(gbroker, fresh_topic("grp-kp"), PARTITIONS)
    group = fresh_group("kp")

    def kp():
        return KafkaConsumer(topic, bootstrap_servers=gbroker.bootstrap, group_id=group,
                             partition_assignment_strategy=[assignor], auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=SESSION_TIMEOUT_MS,
                             heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS)

    consumers = [kp(), kp()]
    try:
        deadline = time.monotonic() + STABLE_TIMEOUT_S
        while True:
            for c in consumers:
                assert not c.poll(timeout_ms=100), "no messages before the group is stable"
            owned = [{tp.partition for tp in c.assignment()} for c in consumers]
            if all(owned) and sorted(p for o in owned for p in o) == list(range(PARTITIONS)):
                break
            assert time.monotonic() < deadline, f"no stable assignment: {owned}"
        values = produce(gbroker, topic, 40)
        got = []
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while len(got) < len(values):
            assert time.monotonic() < deadline, f"{len(got)} of {len(values)} messages"
            for i, c in enumerate(consumers):
                for records in c.poll(timeout_ms=100).values():
                    got += [(i, r.partition, r.value) for r in records]
        assert sorted(v for _, _, v in got) == sorted(values)
        for i, p, _ in got:
            assert p in owned[i]
    finally:
        for c in consumers:
            c.close()


def test_kcat_balanced_consumer_reads_the_topic(gbroker):
    topic = create_topic(gbroker, fresh_topic("grp-kcat"), PARTITIONS)
    values = produce(gbroker, topic, 12)
    out = kcat(gbroker, "-G", fresh_group("kcat"), "-c", "12", "-f", "%s\\n",
               "-X", "auto.offset.reset=earliest", topic, timeout_s=60)
    assert sorted(out.stdout.split()) == sorted(values)


def test_admin_lists_describes_and_deletes_groups(gbroker):
    topic = create_topic(gbroker, fresh_topic("grp-admin"), PARTITIONS)
    group = fresh_group("admin")
    c1 = group_consumer(gbroker, group, {"client.id": "admin-test-client"})
    c2 = group_consumer(gbroker, group, {"client.id": "admin-test-client"})
    a = admin(gbroker)
    try:
        c1.subscribe([topic])
        c2.subscribe([topic])
        wait_stable([c1, c2], topic)
        listed = a.list_consumer_groups(request_timeout=10).result(timeout=15)
        states = {g.group_id: g.state for g in listed.valid}
        assert states.get(group) == ConsumerGroupState.STABLE, states
        desc = a.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
        assert desc.state == ConsumerGroupState.STABLE
        assert desc.partition_assignor in ("range", "roundrobin")
        assert len(desc.members) == 2
        assert {m.client_id for m in desc.members} == {"admin-test-client"}
        assigned = sorted(tp.partition for m in desc.members for tp in m.assignment.topic_partitions)
        assert assigned == list(range(PARTITIONS))
        assert all(m.host.lstrip("/") == "127.0.0.1" for m in desc.members)

        refused = a.delete_consumer_groups([group], request_timeout=10)[group]
        with pytest.raises(Exception) as err:
            refused.result(timeout=15)
        assert err.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    finally:
        c1.close()
        c2.close()
    wait_until(lambda: a.describe_consumer_groups([group], request_timeout=10)[group]
               .result(timeout=15).state == ConsumerGroupState.EMPTY, 15, "the group to be empty")
    a.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    missing = a.delete_consumer_groups([group], request_timeout=10)[group]
    with pytest.raises(Exception) as err:
        missing.result(timeout=15)
    assert err.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND
    listed = a.list_consumer_groups(request_timeout=10).result(timeout=15)
    assert group not in {g.group_id for g in listed.valid}


OFFSETS_TOPIC = "__consumer_offsets"
OFFSETS_PARTITIONS = 50


def fnv1a(text):
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def kafka_string(text):
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def test_consumer_offsets_holds_kafka_format_records_and_is_internal(gbroker):
    topic = create_topic(gbroker, fresh_topic("grp-fmt"), 1)
    group = fresh_group("fmt")
    before_ms = int(time.time() * 1000)
    c = group_consumer(gbroker, group)
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 7, metadata="meta")], asynchronous=False)
    finally:
        c.close()
    partition = fnv1a(group) % OFFSETS_PARTITIONS
    reader = Consumer({**base_config(gbroker), "group.id": fresh_group("reader"),
                       "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        reader.assign([TopicPartition(OFFSETS_TOPIC, partition, 0)])
        key = struct.pack(">h", 1) + kafka_string(group) + kafka_string(topic) + struct.pack(">i", 0)
        records = []
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while not records:
            assert time.monotonic() < deadline, f"no record for {group} in {OFFSETS_TOPIC}-{partition}"
            msg = reader.poll(POLL_S)
            if msg is not None and msg.error() is None and msg.key() == key:
                records.append(msg.value())
    finally:
        reader.close()
    value = records[0]
    version, offset, leader_epoch = struct.unpack(">hqi", value[:14])
    assert (version, offset, leader_epoch) == (3, 7, -1)
    (meta_len,) = struct.unpack(">h", value[14:16])
    metadata = value[16:16 + meta_len]
    # confluent-kafka sends the metadata string with its C terminator.
    assert metadata.rstrip(b"\0") == b"meta", metadata
    (timestamp_ms,) = struct.unpack(">q", value[16 + meta_len:])
    assert before_ms - 1000 <= timestamp_ms <= time.time() * 1000 + 1000

    md = admin(gbroker).list_topics(timeout=10)
    assert len(md.topics[OFFSETS_TOPIC].partitions) == OFFSETS_PARTITIONS
    p = producer(gbroker, {"message.timeout.ms": 5000})
    errors = []
    p.produce(OFFSETS_TOPIC, value=b"x", partition=0, on_delivery=lambda err, msg: errors.append(err))
    p.flush(10)
    assert len(errors) == 1 and errors[0] is not None, "clients cannot append to the internal topic"
    assert errors[0].code() == KafkaError.TOPIC_EXCEPTION, errors[0]  # INVALID_TOPIC_EXCEPTION, as Kafka
    refused = admin_results(gbroker, "delete_topics", [OFFSETS_TOPIC], operation_timeout=10)
    assert refused[OFFSETS_TOPIC].code() == KafkaError.TOPIC_EXCEPTION, refused
    assert OFFSETS_TOPIC in admin(gbroker).list_topics(timeout=10).topics


def test_a_restarted_static_member_gets_its_partitions_back_without_a_rebalance(gbroker):
    topic = create_topic(gbroker, fresh_topic("grp-static"), PARTITIONS)
    group = fresh_group("static")
    b_events = []
    a = group_consumer(gbroker, group, {"group.instance.id": "static-a"})
    b = group_consumer(gbroker, group, {"group.instance.id": "static-b"})
    a2 = None
    try:
        a.subscribe([topic])
        b.subscribe([topic], on_assign=lambda c, ps: b_events.append("assign"),
                    on_revoke=lambda c, ps: b_events.append("revoke"))
        assert wait_stable([a, b], topic) == []
        a_parts, b_parts = partitions_of(a), partitions_of(b)
        events_before = list(b_events)
        # A static member leaves no LeaveGroup behind on close: the group keeps its place.
        a.close()
        a = None
        a2 = group_consumer(gbroker, group, {"group.instance.id": "static-a"})
        a2.subscribe([topic])
        wait_until(lambda: (a2.poll(POLL_S), b.poll(POLL_S)) and partitions_of(a2) == a_parts,
                   STABLE_TIMEOUT_S, "the restarted member to get its partitions back", interval_s=0)
        assert partitions_of(b) == b_parts
        assert b_events == events_before, "the other member saw no rebalance"
        values = produce(gbroker, topic, 20)
        got = consume_all([a2, b], values)
        assert_exactly_once(got, values, [a2, b])
    finally:
        for c in (a, a2, b):
            if c is not None:
                c.close()


def test_the_first_rebalance_waits_for_the_initial_delay_by_default(broker_factory):
    broker = broker_factory()  # group.initial.rebalance.delay.ms left at Kafka's 3000
    topic = create_topic(broker, fresh_topic("grp-delay"), PARTITIONS)
    c = group_consumer(broker, fresh_group("delay"))
    try:
        started = time.monotonic()
        c.subscribe([topic])
        wait_until(lambda: c.poll(POLL_S) is None and partitions_of(c), STABLE_TIMEOUT_S,
                   "the first assignment", interval_s=0)
        waited_s = time.monotonic() - started
        # Not before the delay; how long after it depends on the machine's load, so
        # the only upper bound is wait_until's.
        assert waited_s >= 3.0, waited_s
    finally:
        c.close()


API_OFFSET_DELETE = 47


def delete_offsets(broker, group, tps):
    """OffsetDelete v0 on the wire (neither confluent-kafka nor kafka-python has it):
    ({(topic, partition): error code}, group error code)."""
    by_topic = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    body = kwire.string(group) + kwire.array([
        kwire.string(t) + kwire.array([kwire.int32(p) for p in ps]) for t, ps in by_topic.items()
    ])
    with kwire.Conn(broker.port) as conn:
        r = kwire.Reader(conn.request(API_OFFSET_DELETE, 0, body))
    group_error = r.int16()
    r.int32()  # throttle_time_ms
    codes = {}
    for topic, parts in r.array(lambda: (r.string(), r.array(lambda: (r.int32(), r.int16())))):
        for partition, code in parts:
            codes[(topic, partition)] = code
    r.expect_end()
    return codes, group_error


def committed_offsets(broker, group, topic, partitions):
    c = group_consumer(broker, group)
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return [tp.offset for tp in got]
    finally:
        c.close()


def test_offset_delete_removes_offsets_durably_and_spares_subscribed_topics(broker_factory):
    broker = broker_factory(GROUP_OVERRIDES)
    topic = create_topic(broker, fresh_topic("grp-offdel"), 2)
    other = create_topic(broker, fresh_topic("grp-offdel-other"), 1)
    group = fresh_group("offdel")
    produce(broker, topic, 20, partitions=2)
    c = group_consumer(broker, group)
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 5),
                          TopicPartition(other, 0, 0)], asynchronous=False)
    finally:
        c.close()
    assert committed_offsets(broker, group, topic, 2) == [3, 5]

    codes, err = delete_offsets(broker, fresh_group("missing"), [TopicPartition(topic, 0)])
    assert (codes, err) == ({}, KafkaError.GROUP_ID_NOT_FOUND)

    codes, err = delete_offsets(broker, group, [TopicPartition(topic, 0), TopicPartition("no-such", 0)])
    assert err == 0 and codes == {(topic, 0): 0, ("no-such", 0): KafkaError.UNKNOWN_TOPIC_OR_PART}, codes
    # No commit any more: OffsetFetch answers -1, which librdkafka shows as OFFSET_INVALID.
    assert committed_offsets(broker, group, topic, 2) == [OFFSET_INVALID, 5]

    # A member subscribed to `topic`: its offsets stay, the other topic's may go.
    member = group_consumer(broker, group)
    try:
        member.subscribe([topic])
        wait_stable([member], topic, partitions=2)
        codes, err = delete_offsets(broker, group, [TopicPartition(topic, 1), TopicPartition(other, 0)])
        assert err == 0, err
        assert codes == {(topic, 1): KafkaError.GROUP_SUBSCRIBED_TO_TOPIC, (other, 0): 0}, codes
    finally:
        member.close()
    # The member never commits (auto commit off): partition 1 keeps exactly its 5.
    assert committed_offsets(broker, group, topic, 2) == [OFFSET_INVALID, 5]
    assert committed_offsets(broker, group, other, 1) == [OFFSET_INVALID]

    broker.kill9()
    broker.start()
    after = committed_offsets(broker, group, topic, 2)
    assert after == [OFFSET_INVALID, 5], after
    assert committed_offsets(broker, group, other, 1) == [OFFSET_INVALID]
