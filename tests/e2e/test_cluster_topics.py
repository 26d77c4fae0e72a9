"""Topics of a cluster (issue 10, phase 2): created, grown and deleted through the
metadata quorum from any member; every broker opens exactly the replicas it hosts;
Metadata names replicas, ISR and leader from the quorum; Produce, Fetch and ListOffsets
to a broker that does not lead the partition answer NOT_LEADER_OR_FOLLOWER, and clients
that follow Metadata produce and consume through the leaders. Driven by confluent-kafka,
kafka-python and the suite's wire helper."""

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

import kwire
from clients import wait_until
from conftest import fresh_topic

ADMIN_TIMEOUT_S = 10
SESSION = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}
SETTLE_S = 20
ERR_NOT_LEADER_OR_FOLLOWER = 6
ERR_INVALID_REPLICATION_FACTOR = 38


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def partitions_seen(broker, topic):
    """{partition: (leader, replicas, isr)} in this broker's Metadata; {} if unknown.
    Asks for every topic: naming one would auto-create it."""
    md = admin(broker).list_topics(timeout=ADMIN_TIMEOUT_S)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return {}
    return {p.id: (p.leader, sorted(p.replicas), sorted(p.isrs)) for p in t.partitions.values()}


def hosted_dirs(broker, topic):
    """Partitions of `topic` with a log directory on this broker."""
    names = [d.name for d in broker.log_dirs[0].iterdir() if d.is_dir()]
    return sorted(int(n.rsplit("-", 1)[1]) for n in names if n.rsplit("-", 1)[0] == topic)


def live_cluster(broker_factory):
    members = broker_factory.cluster(3, overrides=SESSION)

    def all_registered():
        md = admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S)
        return sorted(md.brokers) == [1, 2, 3]

    wait_until(all_registered, SETTLE_S, "three live brokers")
    return members


def create(broker, topic, partitions, rf):
    client = admin(broker)  # kept alive until the answer is in
    futures = client.create_topics([NewTopic(topic, partitions, rf)], request_timeout=ADMIN_TIMEOUT_S)
    futures[topic].result(timeout=ADMIN_TIMEOUT_S)


def delete(broker, topic):
    client = admin(broker)
    client.delete_topics([topic], request_timeout=ADMIN_TIMEOUT_S)[topic].result(timeout=ADMIN_TIMEOUT_S)


def test_replicated_topics_are_placed_opened_and_routed(broker_factory):
    members = live_cluster(broker_factory)
    by_id = {b.node_id: b for b in members}
    topic = fresh_topic("rf2")
    create(members[1], topic, 3, 2)

    # Every member answers the same replicas, ISR and leader for each partition.
    def same_everywhere():
        views = [partitions_seen(b, topic) for b in members]
        return len(views[0]) == 3 and all(v == views[0] for v in views)

    wait_until(same_everywhere, SETTLE_S, "all brokers agree on the topic")
    parts = partitions_seen(members[0], topic)
    for p, (leader, replicas, isr) in parts.items():
        assert len(replicas) == 2 and set(replicas) <= {1, 2, 3}, parts
        assert isr == replicas and leader in replicas, parts
    # Leaders spread: 3 partitions over 3 brokers, one each (Kafka's placement).
    assert sorted(leader for leader, _, _ in parts.values()) == [1, 2, 3], parts
    # Each broker opened exactly the replicas it hosts.
    for node, b in by_id.items():
        wait_until(lambda: hosted_dirs(b, topic) == sorted(p for p, (_, r, _) in parts.items() if node in r),
                   SETTLE_S, f"broker {node} opens its replicas")

    # A client that follows Metadata produces to every leader and reads it all back.
    producer = Producer({"bootstrap.servers": members[2].bootstrap, "broker.address.family": "v4",
                         "acks": "all", "enable.idempotence": True})
    sent = {p: [f"p{p}-{i}".encode() for i in range(20)] for p in range(3)}
    for p, values in sent.items():
        for v in values:
            producer.produce(topic, v, partition=p)
    assert producer.flush(30) == 0
    for p, values in sent.items():
        consumer = Consumer({"bootstrap.servers": members[0].bootstrap, "broker.address.family": "v4",
                             "group.id": fresh_topic("g"), "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, p, 0)])
        got = []
        deadline_polls = 60
        while len(got) < len(values) and deadline_polls > 0:
            deadline_polls -= 1
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
        consumer.close()
        assert got == values, (p, got)

    # Straight to a broker that does not lead partition 0: produce is refused, with no
    # append. A consumer Fetch (v11) is refused by a broker without a replica and served
    # by the follower up to the high watermark it has from the leader (KIP-392, as Kafka).
    leader0, replicas0, _ = parts[0]
    follower = next(b for n, b in by_id.items() if n != leader0 and n in replicas0)
    stranger = next(b for n, b in by_id.items() if n not in replicas0)
    batch = kwire.record_batch([(None, b"stray", [], 0)], 1_700_000_000_000)
    for other in (follower, stranger):
        with kwire.Conn(other.port) as conn:
            assert kwire.produce(conn, 7, topic, 0, batch)[0] == ERR_NOT_LEADER_OR_FOLLOWER
    with kwire.Conn(stranger.port) as conn:
        assert kwire.fetch(conn, topic, 0, 0)[0] == ERR_NOT_LEADER_OR_FOLLOWER
    with kwire.Conn(follower.port) as conn:
        assert wait_until(lambda: kwire.fetch(conn, topic, 0, 0)[:2] == (0, 20), SETTLE_S,
                          "the follower serving partition 0 up to the leader's high watermark")
    with kwire.Conn(by_id[leader0].port) as conn:
        assert kwire.fetch(conn, topic, 0, 0)[1] == 20

    # A config change on one member reaches every member.
    resource = ConfigResource("topic", topic, set_config={"retention.ms": "123456789"})
    client = admin(members[1])
    client.alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(timeout=ADMIN_TIMEOUT_S)

    def retention_everywhere():
        values = []
        for b in members:
            c = admin(b)
            described = c.describe_configs([ConfigResource("topic", topic)], request_timeout=ADMIN_TIMEOUT_S)
            configs = list(described.values())[0].result(timeout=ADMIN_TIMEOUT_S)
            values.append(configs["retention.ms"].value)
        return values == ["123456789"] * 3

    wait_until(retention_everywhere, SETTLE_S, "the config on every broker")

    # Grow it from a third member, then delete it: every broker follows.
    client = admin(members[0])
    futures = client.create_partitions([NewPartitions(topic, 5)], request_timeout=ADMIN_TIMEOUT_S)
    futures[topic].result(timeout=ADMIN_TIMEOUT_S)
    wait_until(lambda: all(len(partitions_seen(b, topic)) == 5 for b in members), SETTLE_S, "5 partitions")
    delete(members[2], topic)
    wait_until(lambda: all(hosted_dirs(b, topic) == [] for b in members), SETTLE_S, "replicas deleted")
    wait_until(lambda: all(partitions_seen(b, topic) == {} for b in members), SETTLE_S, "topic gone")


def test_replication_factor_bounded_by_live_brokers_and_deletes_reach_a_returning_broker(broker_factory):
    members = live_cluster(broker_factory)
    too_many = fresh_topic("rf4")
    client = admin(members[0])
    futures = client.create_topics([NewTopic(too_many, 1, 4)], request_timeout=ADMIN_TIMEOUT_S)
    try:
        futures[too_many].result(timeout=ADMIN_TIMEOUT_S)
        raise AssertionError("RF 4 on 3 brokers was accepted")
    except KafkaException as e:
        assert e.args[0].code() == ERR_INVALID_REPLICATION_FACTOR, e
    topic = fresh_topic("rf3")
    create(members[0], topic, 1, 3)
    wait_until(lambda: all(hosted_dirs(b, topic) == [0] for b in members), SETTLE_S, "three replicas")
    # A broker that is down while the topic is deleted deletes its replica on return,
    # once it has caught up with the quorum.
    down = members[2]
    down.stop()
    delete(members[0], topic)
    assert hosted_dirs(down, topic) == [0]
    down.start()
    wait_until(lambda: hosted_dirs(down, topic) == [], SETTLE_S, "the returning broker deletes its replica")
    assert partitions_seen(down, topic) == {}
