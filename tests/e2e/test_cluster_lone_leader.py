"""A partition whose ISR is its leader alone (replication factor 1 in a cluster) takes
acks=all and serves consumers: found by scripts/bench_replication.py, where an RF=1
topic on a three-broker cluster answered no acks=all produce at all (the high watermark
only moved on follower fetches, and there were none)."""

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from clients import consume, wait_until
from conftest import fresh_topic

ADMIN_TIMEOUT_S = 10
RECORDS = 20


def test_acks_all_and_consumers_on_a_single_replica_topic(broker_factory):
    members = broker_factory.cluster(3)
    admin = AdminClient({"bootstrap.servers": members[0].bootstrap, "broker.address.family": "v4"})
    wait_until(lambda: sorted(admin.list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3], 30,
               "three live brokers")
    topic = fresh_topic("lone")
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(ADMIN_TIMEOUT_S)

    def leaders_placed():
        # CreateTopics is answered once the member that took it has applied the topic;
        # members[0], asked here, may list it a moment later.
        t = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics.get(topic)
        return (t is not None and t.error is None and len(t.partitions) == 3
                and all(p.leader > 0 for p in t.partitions.values()))
    wait_until(leaders_placed, 30, "leaders")
    acked, errors = [], []
    p = Producer({"bootstrap.servers": members[0].bootstrap, "broker.address.family": "v4", "acks": "all",
                  "enable.idempotence": True, "message.timeout.ms": 15000})
    for i in range(RECORDS):
        p.produce(topic, b"%d" % i, partition=i % 3,
                  on_delivery=lambda e, m: (errors if e else acked).append(e or (m.partition(), m.offset(), m.value())))
    assert p.flush(30) == 0
    assert errors == []
    assert sorted(acked) == sorted((i % 3, i // 3, b"%d" % i) for i in range(RECORDS))
    got = consume(members[1], topic, {0: 0, 1: 0, 2: 0}, RECORDS)
    assert sorted((m.partition(), m.offset(), m.value()) for m in got) == sorted(acked)
