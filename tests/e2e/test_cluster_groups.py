"""Consumer groups in a cluster (issue 10): `__consumer_offsets` is a replicated quorum
topic, a group's coordinator is the leader of its partition, and when that broker is
killed with kill -9 another ISR member takes the partition over with every committed
offset. Driven by confluent-kafka (librdkafka) and kafka-python."""

import subprocess
import time

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer

from clients import wait_until
from conftest import corelog_bin, fresh_topic

ADMIN_TIMEOUT_S = 10
SETTLE_S = 30
CONSUME_S = 30
OFFSETS_PARTITIONS = 3
SETTINGS = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
    "offsets.topic.num.partitions": str(OFFSETS_PARTITIONS),
    "group.initial.rebalance.delay.ms": "0",
}


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def offsets_topic(broker):
    """{partition: (leader, sorted isr)} of __consumer_offsets in `broker`'s Metadata."""
    try:
        md = admin(broker).list_topics(timeout=ADMIN_TIMEOUT_S)
    except KafkaException:
        return {}
    t = md.topics.get("__consumer_offsets")
    if t is None or t.error is not None:
        return {}
    return {p: (m.leader, sorted(m.isrs)) for p, m in t.partitions.items()}


def coordinator(broker, group):
    """The coordinator's node id as DescribeConsumerGroups reports it, or None."""
    client = admin(broker)
    try:
        d = client.describe_consumer_groups([group], request_timeout=ADMIN_TIMEOUT_S)[group]
        return d.result(ADMIN_TIMEOUT_S).coordinator.id
    except (KafkaException, TimeoutError):
        # TimeoutError: the admin request outlived its wait (a dead coordinator's
        # retries); asked again by the caller's wait_until.
        return None


def committed(broker, group, topic, partitions):
    """{partition: committed offset} from the group's coordinator, or None on error."""
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    client = admin(broker)
    try:
        f = client.list_consumer_group_offsets([request], request_timeout=ADMIN_TIMEOUT_S)[group]
        return {tp.partition: tp.offset for tp in f.result(ADMIN_TIMEOUT_S).topic_partitions}
    except (KafkaException, TimeoutError):
        # TimeoutError: the admin request outlived its wait (a dead coordinator's
        # retries); asked again by the caller's wait_until.
        return None


def produce(bootstrap, topic, values_by_partition):
    p = Producer({"bootstrap.servers": bootstrap, "broker.address.family": "v4", "acks": "all",
                  "enable.idempotence": True})
    for partition, values in values_by_partition.items():
        for v in values:
            p.produce(topic, v, partition=partition)
    assert p.flush(30) == 0


def consume(bootstrap, group, topic, count):
    """Subscribes in `group`, takes `count` records, commits them synchronously, closes;
    returns {partition: [values]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "broker.address.family": "v4", "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = {}
    taken = 0
    deadline = time.monotonic() + CONSUME_S
    while taken < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error() is not None:
            continue
        got.setdefault(m.partition(), []).append(m.value())
        taken += 1
        c.commit(message=m, asynchronous=False)
    c.close()
    assert taken == count, f"took {taken} of {count}"
    return got


def test_group_coordinator_fails_over_with_every_committed_offset(broker_factory):
    members = broker_factory.cluster(3, overrides=SETTINGS)
    by_id = {b.node_id: b for b in members}
    # One cluster: every member reports the id derived from the shared voter set.
    ids = {admin(b).list_topics(timeout=ADMIN_TIMEOUT_S).cluster_id for b in members}
    assert len(ids) == 1 and len(ids.pop()) == 22, ids
    # The lowest live broker creates the offsets topic once three brokers are live.
    wait_until(lambda: len(offsets_topic(members[0])) == OFFSETS_PARTITIONS
               and all(leader > 0 and isr == [1, 2, 3] for leader, isr in offsets_topic(members[0]).values()),
               SETTLE_S, "__consumer_offsets with three in-sync replicas per partition")

    topic = fresh_topic("orders")
    client = admin(members[0])
    client.create_topics([NewTopic(topic, 3, 3)])[topic].result(ADMIN_TIMEOUT_S)
    values = {p: [f"p{p}-{i}".encode() for i in range(40)] for p in range(3)}
    wait_until(lambda: (lambda t: t is not None and len(t.partitions) == 3 and
                        all(m.leader > 0 for m in t.partitions.values()))(
                   admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).topics.get(topic)),
               SETTLE_S, "the topic's leaders")
    produce(members[0].bootstrap, topic, values)

    group = fresh_topic("billing")
    first = consume(members[1].bootstrap, group, topic, 60)
    # -1001: no commit yet (librdkafka's OFFSET_INVALID) for a partition not read.
    before = {p: len(first[p]) if p in first else -1001 for p in range(3)}
    wait_until(lambda: committed(members[0], group, topic, 3) == before, SETTLE_S, "the committed offsets")

    # Kill the coordinator: the leader of the group's offsets partition.
    coord = coordinator(members[0], group)
    assert coord in by_id
    victim = by_id[coord]
    survivor = next(b for b in members if b is not victim)
    victim.kill9()
    wait_until(lambda: coordinator(survivor, group) not in (None, coord), SETTLE_S,
               "another broker coordinates the group")
    # Asked until the new coordinator has loaded the partition (a coordinator that lost
    # the commits would answer other offsets, never these).
    wait_until(lambda: committed(survivor, group, topic, 3) == before, SETTLE_S,
               "the same committed offsets from the new coordinator")

    # The group carries on from its commits on the new coordinator: nothing twice,
    # nothing missed.
    rest = consume(survivor.bootstrap, group, topic, 120 - 60)
    for p in range(3):
        assert first.get(p, []) + rest.get(p, []) == values[p], p
    wait_until(lambda: committed(survivor, group, topic, 3) == {p: 40 for p in range(3)}, SETTLE_S,
               "the final commits")
    # `corelog group list` asks every broker: through one that does not coordinate the
    # group, the group is still listed.
    new_coord = coordinator(survivor, group)
    other = next(b for b in members if b is not victim and b.node_id != new_coord)
    listed = subprocess.run([str(corelog_bin()), "group", "list", "-b", other.bootstrap], capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert listed.returncode == 0 and group in listed.stdout.split(), (listed.stdout, listed.stderr)

    # The killed broker returns as a follower of the offsets partitions it hosted and
    # catches up; the offsets read the same from any broker's view of the coordinator.
    victim.start()
    wait_until(lambda: all(isr == [1, 2, 3] for _, isr in offsets_topic(survivor).values()),
               SETTLE_S, "the returning broker back in every ISR")
    wait_until(lambda: committed(victim, group, topic, 3) == {p: 40 for p in range(3)}, SETTLE_S,
               "the commits through the returned broker")


def test_no_offsets_topic_until_enough_brokers_are_live(broker_factory):
    # Two brokers with Kafka's default offsets.topic.replication.factor (3): the offsets
    # topic cannot be created, and groups get COORDINATOR_NOT_AVAILABLE, as with Kafka.
    members = broker_factory.cluster(2, overrides=SETTINGS)
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2],
               SETTLE_S, "two live brokers")
    assert offsets_topic(members[0]) == {}
    group = fresh_topic("nobody")
    client = admin(members[0])
    f = client.describe_consumer_groups([group], request_timeout=5)[group]
    try:
        f.result(10)
        raise AssertionError("a group was served without an offsets topic")
    except TimeoutError:
        pass  # no answer within the wait: not served either
    except KafkaException as e:
        assert e.args[0].name() in ("COORDINATOR_NOT_AVAILABLE", "_TIMED_OUT"), e


def test_kafka_python_commits_through_the_coordinator_of_a_two_broker_cluster(broker_factory):
    # With offsets.topic.replication.factor=2, two brokers serve groups; kafka-python
    # commits and reads back through the coordinator.
    members = broker_factory.cluster(2, overrides={**SETTINGS, "offsets.topic.replication.factor": "2"})
    group = fresh_topic("events-group")
    wait_until(lambda: len(offsets_topic(members[0])) == OFFSETS_PARTITIONS, SETTLE_S, "the offsets topic")
    topic = fresh_topic("events")
    client = admin(members[0])
    client.create_topics([NewTopic(topic, 1, 2)])[topic].result(ADMIN_TIMEOUT_S)
    values = [f"e{i}".encode() for i in range(30)]
    wait_until(lambda: (lambda t: t is not None and t.partitions.get(0) is not None and t.partitions[0].leader > 0)(
                   admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).topics.get(topic)),
               SETTLE_S, "the topic's leader")
    produce(members[1].bootstrap, topic, {0: values})
    bootstrap = [b.bootstrap for b in members]
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest", consumer_timeout_ms=15000)
    got = []
    for m in c:
        got.append(m.value)
        if len(got) == 20:
            break
    c.commit()
    c.close()
    assert got == values[:20]
    wait_until(lambda: committed(members[0], group, topic, 1) == {0: 20}, SETTLE_S, "the commit")
