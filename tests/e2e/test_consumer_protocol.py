"""The KIP-848 consumer group protocol (group.protocol=consumer) with librdkafka through
confluent-kafka: server-side assignment, incremental hand-over of partitions, eviction,
committed offsets across consumer and broker restarts, the admin view; and the classic
group's persisted Empty time (GroupMetadata records) across a broker restart.

The broker runs with a short consumer-protocol heartbeat interval and session timeout
(group.consumer.heartbeat.interval.ms / group.consumer.session.timeout.ms): in this
protocol the broker, not the client, decides both. Every wait is bounded.
"""

import struct
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupType, KafkaError, TopicPartition

import kwire
from clients import admin, admin_results, base_config, create_topic, flush, producer, wait_until
from conftest import fresh_topic

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 500
OVERRIDES = {
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.session.timeout.ms": str(SESSION_TIMEOUT_MS),
    "group.consumer.heartbeat.interval.ms": str(HEARTBEAT_INTERVAL_MS),
}
PARTITIONS = 4
STABLE_TIMEOUT_S = 30
CONSUME_TIMEOUT_S = 30
POLL_S = 0.1
API_CONSUMER_GROUP_DESCRIBE = 69


@pytest.fixture(scope="module")
def cbroker(module_broker_factory):
    return module_broker_factory(OVERRIDES)


def fresh_group(prefix="kip848"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def consumer(broker, group, config=None):
    return Consumer({
        **base_config(broker),
        "group.id": group,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **(config or {}),
    })


def produce(broker, topic, count, start=0, partitions=PARTITIONS):
    p = producer(broker)
    values = []
    for i in range(start, start + count):
        value = f"v-{i}".encode()
        p.produce(topic, value=value, partition=i % partitions)
        values.append(value)
    flush(p)
    return values


def owned(c):
    return {(tp.topic, tp.partition) for tp in c.assignment()}


def poll_all(consumers, sink=None):
    for c in consumers:
        msg = c.poll(POLL_S)
        if msg is not None and msg.error() is None and sink is not None:
            sink.append(msg)
        elif msg is not None and msg.error() is not None and msg.error().code() != KafkaError._PARTITION_EOF:
            raise AssertionError(f"consumer error: {msg.error()}")


def wait_split(consumers, expected, timeout_s=STABLE_TIMEOUT_S, sink=None):
    """Polls until every consumer owns something and together they own each partition of
    expected exactly once; asserts no partition is ever owned twice meanwhile."""
    deadline = time.monotonic() + timeout_s
    while True:
        poll_all(consumers, sink)
        sets = [owned(c) for c in consumers]
        union = set().union(*sets)
        assert sum(len(s) for s in sets) == len(union), f"a partition owned twice: {sets}"
        if union == expected and all(sets):
            return sets
        assert time.monotonic() < deadline, f"not split after {timeout_s} s: {sets}"


def consume_exactly(consumers, values, timeout_s=CONSUME_TIMEOUT_S):
    got = []
    deadline = time.monotonic() + timeout_s
    while {m.value() for m in got} < set(values):
        assert time.monotonic() < deadline, f"{len(got)} of {len(values)} messages after {timeout_s} s"
        poll_all(consumers, got)
    for _ in range(5):
        poll_all(consumers, got)
    assert sorted(m.value() for m in got) == sorted(values), "every message exactly once"
    return got


def commit_all(consumers):
    """Commits what each consumer read, so a partition's next owner starts after it."""
    for c in consumers:
        if c.assignment():
            try:
                c.commit(asynchronous=False)
            except Exception as e:  # nothing read since the last commit
                if "_NO_OFFSET" not in str(e):
                    raise


def all_partitions(topic, n=PARTITIONS):
    return {(topic, p) for p in range(n)}


def close_all(consumers):
    for c in consumers:
        c.close()


def test_two_consumers_split_then_a_third_joins_and_one_closes(cbroker):
    topic = create_topic(cbroker, fresh_topic("cp-split"), PARTITIONS)
    group = fresh_group()
    c1, c2 = consumer(cbroker, group), consumer(cbroker, group)
    consumers = [c1, c2]
    try:
        for c in consumers:
            c.subscribe([topic])
        sets = wait_split(consumers, all_partitions(topic))
        assert sorted(len(s) for s in sets) == [2, 2]
        values = produce(cbroker, topic, 40)
        consume_exactly(consumers, values)
        commit_all(consumers)

        c3 = consumer(cbroker, group)
        consumers.append(c3)
        c3.subscribe([topic])
        sets = wait_split(consumers, all_partitions(topic))
        assert sorted(len(s) for s in sets) == [1, 1, 2]
        values = produce(cbroker, topic, 40, start=40)
        consume_exactly(consumers, values)
        commit_all(consumers)

        gone = owned(c1)
        c1.close()
        consumers.remove(c1)
        sets = wait_split(consumers, all_partitions(topic))
        assert sorted(len(s) for s in sets) == [2, 2]
        assert gone <= set().union(*sets)
        values = produce(cbroker, topic, 40, start=80)
        consume_exactly(consumers, values)
    finally:
        close_all(consumers)


CHILD = textwrap.dedent("""
    import sys
    from confluent_kafka import Consumer
    bootstrap, group, topic = sys.argv[1:4]
    c = Consumer({"bootstrap.servers": bootstrap, "broker.address.family": "v4",
                  "group.id": group, "group.protocol": "consumer",
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    while True:
        c.poll(0.1)
        if c.assignment():
            print("assigned", sorted(p.partition for p in c.assignment()), flush=True)
""")


def test_a_killed_consumer_is_evicted_after_the_session_timeout(cbroker, tmp_path):
    topic = create_topic(cbroker, fresh_topic("cp-kill"), PARTITIONS)
    group = fresh_group()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), cbroker.bootstrap, group, topic],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    survivor = consumer(cbroker, group)
    try:
        survivor.subscribe([topic])
        wait_until(lambda: poll_all([survivor]) is None and len(owned(survivor)) == 2,
                   STABLE_TIMEOUT_S, "the survivor to share the partitions with the child", interval_s=0)
        killed_at = time.monotonic()
        child.kill()
        child.wait(timeout=10)
        wait_until(lambda: poll_all([survivor]) is None and owned(survivor) == all_partitions(topic),
                   SESSION_TIMEOUT_MS / 1000 + STABLE_TIMEOUT_S, "the survivor to take every partition",
                   interval_s=0)
        waited_s = time.monotonic() - killed_at
        # Eviction waits for the broker's session timeout (less one heartbeat interval).
        assert waited_s >= SESSION_TIMEOUT_MS / 1000 - 1.0, waited_s
        assert waited_s < SESSION_TIMEOUT_MS / 1000 + 10, waited_s
        values = produce(cbroker, topic, 20)
        consume_exactly([survivor], values)
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
        poll_all([c], out)
    return out


def commit_then_close(broker, group, topic, n):
    c = consumer(broker, group)
    try:
        c.subscribe([topic])
        got = read_n(c, n)
        c.commit(message=got[-1], asynchronous=False)
        return got
    finally:
        c.close()


def test_a_restarted_consumer_resumes_after_its_committed_offset(cbroker):
    topic = create_topic(cbroker, fresh_topic("cp-resume"), 1)
    group = fresh_group()
    values = produce(cbroker, topic, 10, partitions=1)
    first = commit_then_close(cbroker, group, topic, 4)
    assert [m.value() for m in first] == values[:4]
    c = consumer(cbroker, group)
    try:
        c.subscribe([topic])
        rest = read_n(c, 6)
        assert [m.offset() for m in rest] == list(range(4, 10))
        assert c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset == 4
    finally:
        c.close()


@pytest.mark.parametrize("assignor,loads", [("range", [2, 4]), ("uniform", [3, 3])])
def test_the_remote_assignor_is_chosen_by_the_client(cbroker, assignor, loads):
    # Two topics of 3 partitions: range co-partitions (2+2 and 1+1), uniform balances.
    topics = [create_topic(cbroker, fresh_topic(f"cp-{assignor}"), 3) for _ in range(2)]
    group = fresh_group()
    config = {"group.remote.assignor": assignor}
    consumers = [consumer(cbroker, group, config) for _ in range(2)]
    try:
        for c in consumers:
            c.subscribe(topics)
        expected = all_partitions(topics[0], 3) | all_partitions(topics[1], 3)
        sets = wait_split(consumers, expected)
        if assignor == "range":
            # A first member may hold more until the second's target settles.
            deadline = time.monotonic() + STABLE_TIMEOUT_S
            while sorted(len(s) for s in sets) != loads and time.monotonic() < deadline:
                sets = wait_split(consumers, expected)
        assert sorted(len(s) for s in sets) == loads
        if assignor == "range":
            for s in sets:
                assert {p for _, p in s if _ == topics[0]} == {p for _, p in s if _ == topics[1]}
        desc = describe(cbroker, group)
        assert desc.type == ConsumerGroupType.CONSUMER
    finally:
        close_all(consumers)


def describe(broker, group):
    result = admin_results(broker, "describe_consumer_groups", [group])[group]
    assert not isinstance(result, KafkaError), result
    return result


def test_admin_describes_members_and_assignments(cbroker):
    topic = create_topic(cbroker, fresh_topic("cp-describe"), PARTITIONS)
    group = fresh_group()
    consumers = [consumer(cbroker, group) for _ in range(2)]
    try:
        for c in consumers:
            c.subscribe([topic])
        sets = wait_split(consumers, all_partitions(topic))
        deadline = time.monotonic() + STABLE_TIMEOUT_S
        while True:
            poll_all(consumers)
            desc = describe(cbroker, group)
            if desc.state == ConsumerGroupState.STABLE or time.monotonic() > deadline:
                break
        assert desc.type == ConsumerGroupType.CONSUMER
        assert desc.state == ConsumerGroupState.STABLE
        assert len(desc.members) == 2
        assigned = sorted(sorted((tp.topic, tp.partition) for tp in m.assignment.topic_partitions)
                          for m in desc.members)
        assert assigned == sorted(sorted(s) for s in sets)
        client = admin(cbroker)  # held until the future is done
        listed = client.list_consumer_groups(request_timeout=10).result(timeout=15)
        mine = [g for g in listed.valid if g.group_id == group]
        assert len(mine) == 1 and mine[0].type == ConsumerGroupType.CONSUMER
    finally:
        close_all(consumers)


def consumer_group_describe(broker, group):
    """ConsumerGroupDescribe v0 by hand: (error code, state, group epoch)."""
    body = kwire.varint_unsigned(2) + kwire.compact_string(group) + kwire.int8(0) + kwire.EMPTY_TAGGED_FIELDS
    with kwire.Conn(broker.port) as conn:
        resp = conn.request(API_CONSUMER_GROUP_DESCRIBE, 0, body, flexible_header=True)
    r = kwire.Reader(resp[1:])  # response header v1: its tagged fields (empty)
    r.int32()  # throttle
    assert r.int8() == 2, "one group"
    (error_code,) = struct.unpack(">h", bytes([r.int8() & 0xFF, r.int8() & 0xFF]))
    message_len = r.int8()
    if message_len > 0:
        r._take(message_len - 1)
    r._take(r.int8() - 1)  # group id
    state = r._take(r.int8() - 1).decode()
    return error_code, state, r.int32()


def test_offsets_and_group_epoch_survive_a_broker_kill(broker_factory):
    broker = broker_factory(OVERRIDES)
    topic = create_topic(broker, fresh_topic("cp-durable"), 1)
    group = fresh_group()
    values = produce(broker, topic, 10, partitions=1)
    commit_then_close(broker, group, topic, 3)
    error, state, epoch_before = consumer_group_describe(broker, group)
    assert (error, state) == (0, "Empty")
    assert epoch_before >= 2  # a join and a leave
    broker.kill9()
    broker.start()
    error, state, epoch = consumer_group_describe(broker, group)
    assert (error, state, epoch) == (0, "Empty", epoch_before)
    c = consumer(broker, group)
    try:
        c.subscribe([topic])
        rest = read_n(c, 7)
        assert [m.value() for m in rest] == values[3:]
        error, state, epoch = consumer_group_describe(broker, group)
        assert epoch > epoch_before
    finally:
        c.close()


RESTART_AFTER_EMPTY_S = 25


def test_a_classic_groups_empty_time_survives_a_restart(broker_factory):
    # Retention 1 minute, checked every 200 ms: the group goes Empty, the broker restarts
    # 25 s later; its offsets must expire about a minute after the group went Empty (the
    # persisted time), not at the commit time (15 s before Empty) nor a minute after the
    # restart (25 s after it): the three are far enough apart that only one fits.
    broker = broker_factory({"group.initial.rebalance.delay.ms": "0", "offsets.retention.minutes": "1",
                             "offsets.retention.check.interval.ms": "200"})
    topic = create_topic(broker, fresh_topic("cp-empty"), 1)
    group = fresh_group("classic")
    produce(broker, topic, 5, partitions=1)
    c = Consumer({**base_config(broker), "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "session.timeout.ms": 6000})
    try:
        c.subscribe([topic])
        got = read_n(c, 5)
        c.commit(message=got[-1], asynchronous=False)
        # Stay a member for 15 s, so that the commit is older than the Empty time.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            c.poll(POLL_S)
    finally:
        c.close()
    empty_at = time.monotonic()
    # The broker keeps running meanwhile; nothing may expire before the minute is up.
    time.sleep(RESTART_AFTER_EMPTY_S)
    restart_at = time.monotonic()
    broker.restart()

    def committed():
        c = Consumer({**base_config(broker), "group.id": group, "enable.auto.commit": False})
        try:
            return c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
        finally:
            c.close()

    assert committed() == 5
    wait_until(lambda: committed() < 0, 60 + 15, "the offsets to expire")
    expired_at = time.monotonic()
    # Not before a minute from Empty; and before a minute from the restart, which leaves
    # 24 s for a loaded machine to notice.
    assert expired_at - empty_at >= 59, expired_at - empty_at
    assert expired_at < restart_at + 60 - 1, (expired_at - empty_at, expired_at - restart_at)


def test_a_regex_subscription_picks_up_a_topic_created_later(cbroker):
    prefix = f"cp-re-{uuid.uuid4().hex[:6]}"
    first = create_topic(cbroker, f"{prefix}-a", 2)
    group = fresh_group()
    c = consumer(cbroker, group, {"topic.metadata.refresh.interval.ms": 1000})
    try:
        c.subscribe([f"^{prefix}-.*"])
        wait_until(lambda: poll_all([c]) is None and owned(c) == all_partitions(first, 2),
                   STABLE_TIMEOUT_S, "the first topic's partitions", interval_s=0)
        second = create_topic(cbroker, f"{prefix}-b", 3)
        wait_until(lambda: poll_all([c]) is None
                   and owned(c) == all_partitions(first, 2) | all_partitions(second, 3),
                   STABLE_TIMEOUT_S, "the new topic's partitions too", interval_s=0)
        values = produce(cbroker, second, 6, partitions=3)
        consume_exactly([c], values)
    finally:
        c.close()


def test_an_unknown_remote_assignor_is_refused(cbroker):
    topic = create_topic(cbroker, fresh_topic("cp-bogus"), 1)
    c = consumer(cbroker, fresh_group(), {"group.remote.assignor": "bogus"})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + STABLE_TIMEOUT_S
        while True:
            assert time.monotonic() < deadline, "no error within the deadline"
            msg = c.poll(POLL_S)
            if msg is not None and msg.error() is not None and msg.error().code() != KafkaError._PARTITION_EOF:
                break
        assert "assignor" in str(msg.error()).lower(), msg.error()
        assert not c.assignment()
    finally:
        c.close()


def test_a_member_keeps_its_partitions_and_position_across_a_broker_kill(broker_factory):
    # Nothing is committed: had the member been forgotten, its rejoin would restart from
    # the earliest offset and deliver the first messages again.
    broker = broker_factory(OVERRIDES)
    topic = create_topic(broker, fresh_topic("cp-member-durable"), 2)
    group = fresh_group()
    first = produce(broker, topic, 10, partitions=2)
    c = consumer(broker, group)
    try:
        c.subscribe([topic])
        got = consume_exactly([c], first)
        assert owned(c) == all_partitions(topic, 2)
        broker.kill9()
        broker.start()
        desc = describe(broker, group)
        assert [len(m.assignment.topic_partitions) for m in desc.members] == [2]
        second = produce(broker, topic, 10, start=10, partitions=2)
        got = consume_exactly([c], second)
        assert sorted(m.value() for m in got) == sorted(second)
    finally:
        c.close()


def test_a_group_is_classic_or_consumer_and_an_empty_one_converts(cbroker):
    topic = create_topic(cbroker, fresh_topic("cp-mixed"), 1)
    group = fresh_group()
    values = produce(cbroker, topic, 10, partitions=1)
    classic = Consumer({**base_config(cbroker), "group.id": group, "auto.offset.reset": "earliest",
                        "enable.auto.commit": False, "session.timeout.ms": 6000})
    try:
        classic.subscribe([topic])
        got = read_n(classic, 4)
        classic.commit(message=got[-1], asynchronous=False)
        # While the classic group has a member, a consumer-protocol member is refused.
        modern = consumer(cbroker, group)
        try:
            modern.subscribe([topic])
            deadline = time.monotonic() + STABLE_TIMEOUT_S
            error = None
            while error is None:
                assert time.monotonic() < deadline, "no error within the deadline"
                classic.poll(POLL_S)
                msg = modern.poll(POLL_S)
                if msg is not None and msg.error() is not None and msg.error().code() != KafkaError._PARTITION_EOF:
                    error = msg.error()
            # librdkafka makes it fatal and names the code's text.
            assert "group id does not exist" in str(error), error
            assert not modern.assignment()
        finally:
            modern.close()
    finally:
        classic.close()
    # Empty now: the group becomes a consumer group and keeps the committed offset.
    c = consumer(cbroker, group)
    try:
        c.subscribe([topic])
        rest = read_n(c, 6)
        assert [m.value() for m in rest] == values[4:]
        assert describe(cbroker, group).type == ConsumerGroupType.CONSUMER
    finally:
        c.close()
