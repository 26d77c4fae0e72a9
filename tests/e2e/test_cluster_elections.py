"""Leader elections on three loopback brokers (issue 10, operations): ElectLeaders driven
by confluent-kafka's AdminClient.elect_leaders and by `corelog cluster elect-leaders`
(kafka-leader-election.sh's options and lines), unclean.leader.election.enable (an
offline partition stays offline until the topic allows an out-of-sync replica, which
then leads with exactly what it had), and the automatic preferred-leader rebalance."""

import json
import signal
import subprocess
import time
import urllib.request

from confluent_kafka import ElectionType, KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from clients import wait_until
from conftest import corelog_bin, fresh_topic
from test_cluster_replication import ADMIN_TIMEOUT_S, SETTINGS, SETTLE_S, admin, consume_all, partition0, produce


# librdkafka looks up the controller first; on a loaded machine that can take a while.
ELECT_TIMEOUT_S = 30


def start_cluster(broker_factory, overrides=None):
    members = broker_factory.cluster(3, overrides={**SETTINGS, **(overrides or {})})
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3],
               SETTLE_S, "three live brokers")
    return members, {b.node_id: b for b in members}


def create(client, topic, assignment, config=None):
    spec = NewTopic(topic, num_partitions=len(assignment), replica_assignment=assignment,
                    config=config or {})
    client.create_topics([spec], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)


def elect(broker, election, partitions):
    """{(topic, partition): error code name or None} from AdminClient.elect_leaders, by a
    new client each time: librdkafka sends ElectLeaders to the controller it last saw in
    Metadata and would keep waiting for a killed one until its next metadata refresh."""
    client = admin(broker)
    # No timeout keywords: confluent-kafka 2.16.1's elect_leaders rejects them
    # (SystemError from its argument parsing); socket.timeout.ms bounds the call.
    result = client.elect_leaders(election, partitions).result(ELECT_TIMEOUT_S)
    out = {}
    for tp, err in result.items():
        if isinstance(err, KafkaException):
            err = err.args[0]
        out[(tp.topic, tp.partition)] = None if err is None else err.name()
    return out


def shard_gauge(broker, name):
    """A per-shard gauge from /metrics, the largest over shards."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/metrics", timeout=5) as r:
        values = [float(line.split()[-1]) for line in r.read().decode().splitlines()
                  if line.startswith(name + "{")]
    assert values, f"{name} not in /metrics"
    return max(values)


def partition1(broker, topic):
    """(leader, isr) of partition 1, or None."""
    try:
        p = admin(broker).list_topics(topic, timeout=ADMIN_TIMEOUT_S).topics[topic].partitions[1]
    except (KafkaException, KeyError):
        return None
    return p.leader, sorted(p.isrs)


def cli(broker, *args):
    return subprocess.run([str(corelog_bin()), "cluster", "elect-leaders", *args, "-b", broker.bootstrap],
                          capture_output=True, text=True, timeout=60)


def test_preferred_election_through_the_admin_client_and_the_cli(broker_factory, tmp_path):
    members, by_id = start_cluster(broker_factory)
    client = admin(members[2])
    topic = fresh_topic("preferred")
    create(client, topic, [[1, 2, 3], [2, 3, 1]])
    wait_until(lambda: partition0(members[0], topic) == (1, [1, 2, 3]), SETTLE_S, "the topic")
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    assert elect(members[2], ElectionType.PREFERRED, [tp0, tp1, TopicPartition(topic, 5)]) == {
        (topic, 0): "ELECTION_NOT_NEEDED",
        (topic, 1): "ELECTION_NOT_NEEDED",
        (topic, 5): "UNKNOWN_TOPIC_OR_PART",  # librdkafka's name
    }
    # The preferred replica dies: leadership moves on, and it cannot be elected back.
    by_id[1].kill9()
    wait_until(lambda: (partition0(members[1], topic) or (1,))[0] == 2, SETTLE_S, "broker 2 leading")
    assert elect(members[2], ElectionType.PREFERRED, [tp0]) == {(topic, 0): "PREFERRED_LEADER_NOT_AVAILABLE"}
    # Unclean is only for partitions without a leader.
    assert elect(members[2], ElectionType.UNCLEAN, [tp0]) == {(topic, 0): "ELECTION_NOT_NEEDED"}

    # It returns and catches up: the election gives it back the leadership.
    by_id[1].start()
    wait_until(lambda: partition0(members[1], topic) == (2, [1, 2, 3]), SETTLE_S, "broker 1 back in the ISR")
    assert elect(members[2], ElectionType.PREFERRED, [tp0]) == {(topic, 0): None}
    wait_until(lambda: partition0(members[2], topic) == (1, [1, 2, 3]), SETTLE_S, "broker 1 leading again")
    assert produce(members[0].bootstrap, topic, [b"a", b"b"]) == [0, 1]

    # The CLI: one partition, a JSON file, every partition.
    out = cli(members[1], "--election-type", "preferred", "--topic", topic, "--partition", "0")
    assert (out.returncode, out.stdout) == (0, f"Valid replica already elected for partitions {topic}-0\n"), out
    by_id[2].kill9()
    wait_until(lambda: (partition0(members[0], topic) or (0, []))[1] == [1, 3], SETTLE_S, "broker 2 out of the ISR")
    by_id[2].start()
    # Partition 1 ([2, 3, 1]) went to 3, or to 1 if 3 was down lately too (a missed
    # session on a busy machine): a failover prefers brokers not down within
    # cluster::topics::LEADER_SETTLE_MS, else the one down longest ago.
    wait_until(lambda: partition0(members[0], topic) == (1, [1, 2, 3])
               and partition1(members[0], topic) in ((3, [1, 2, 3]), (1, [1, 2, 3])), SETTLE_S,
               "broker 2 back in the ISRs")
    spec = tmp_path / "partitions.json"
    spec.write_text(json.dumps({"partitions": [{"topic": topic, "partition": 1},
                                               {"topic": topic, "partition": 0},
                                               {"topic": topic, "partition": 9}]}))
    out = cli(members[0], "--election-type", "preferred", "--path-to-json-file", str(spec))
    assert out.returncode == 1, out
    assert out.stdout.splitlines() == [
        f"Successfully completed leader election (PREFERRED) for partitions {topic}-1",
        f"Valid replica already elected for partitions {topic}-0",
        f"Error completing leader election (PREFERRED) for partition: {topic}-9: "
        f"UnknownTopicOrPartition (3): {topic}-9 does not exist",
        "1 replica(s) could not be elected",
    ], out
    wait_until(lambda: partition1(members[0], topic) == (2, [1, 2, 3]), SETTLE_S, "broker 2 leading partition 1 again")
    out = cli(members[0], "--election-type", "preferred", "--all-topic-partitions")
    # The kills above moved __consumer_offsets leaders too: those move back now.
    assert out.returncode == 0, out
    lines = out.stdout.splitlines()
    valid = next(line for line in lines if line.startswith("Valid replica already elected for partitions "))
    assert {f"{topic}-0", f"{topic}-1"} <= set(valid.split("partitions ", 1)[1].split(", ")), out
    assert all(topic not in line for line in lines if line is not valid), out
    # kafka-leader-election.sh's rules for the options.
    assert cli(members[0], "--election-type", "preferred").returncode == 2
    assert cli(members[0], "--election-type", "preferred", "--topic", topic).returncode == 2


def test_unclean_election_waits_for_the_topic_config_or_a_request_and_keeps_what_the_replica_had(broker_factory):
    """Two RF=2 topics on brokers 1 (leader) and 2: 2 is frozen out of the ISRs, 1 takes
    more records alone (meanwhile its lag gauges show what 2 misses) and is killed, 2
    thaws. With unclean.leader.election.enable false (the default) both partitions stay
    offline. One is elected by ElectLeaders UNCLEAN, the other once its topic allows
    unclean election; 2 leads each with the records it had, the later ones are gone.
    (Broker 3 keeps the quorum's majority.)"""
    members, by_id = start_cluster(broker_factory)
    client = admin(members[2])
    topic, other = fresh_topic("unclean"), fresh_topic("byrequest")
    for t in (topic, other):
        create(client, t, [[1, 2]])
    wait_until(lambda: partition0(members[2], topic) == partition0(members[2], other) == (1, [1, 2]),
               SETTLE_S, "the full ISRs")
    first = [f"r{i}".encode() for i in range(20)]
    assert produce(members[0].bootstrap, topic, first) == list(range(20))
    assert produce(members[0].bootstrap, other, [b"x"]) == [0]

    by_id[2].proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: (partition0(members[2], topic) or (0, []))[1] == [1], SETTLE_S, "broker 2 out of the ISR")
        # The leader alone in the ISR takes acks=all (its high watermark follows its writes).
        assert produce(members[0].bootstrap, topic, [b"lost1", b"lost2"]) == [20, 21]
        # The leader's lag gauges: the frozen follower misses exactly these two, and has
        # not been caught up since it froze (at least the session timeout ago).
        assert shard_gauge(by_id[1], "corelog_replica_max_lag_records") == 2
        assert shard_gauge(by_id[1], "corelog_replica_max_lag_seconds") >= 2.0
        assert shard_gauge(by_id[3], "corelog_replica_max_lag_records") == 0
        by_id[1].kill9()
    finally:
        by_id[2].proc.send_signal(signal.SIGCONT)
    wait_until(lambda: 2 in admin(members[2]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers
               and 1 not in admin(members[2]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers,
               SETTLE_S, "broker 2 live, broker 1 fenced")
    # Offline, and they stay so: the only ISR member is dead.
    for _ in range(3):
        assert partition0(members[2], topic) == partition0(members[2], other) == (-1, [1])
        time.sleep(0.5)
    assert elect(members[2], ElectionType.PREFERRED, [TopicPartition(topic, 0)]) == {
        (topic, 0): "PREFERRED_LEADER_NOT_AVAILABLE"}

    # By request, whatever the config.
    assert elect(members[2], ElectionType.UNCLEAN, [TopicPartition(other, 0)]) == {(other, 0): None}
    wait_until(lambda: partition0(members[2], other) == (2, [2]), SETTLE_S, "broker 2 leading by request")
    assert consume_all(members[1].bootstrap, other, 1) == [(0, b"x")]
    assert partition0(members[2], topic) == (-1, [1])

    # By the topic's config. A new client: the first one may still address the killed broker.
    resource = ConfigResource("TOPIC", topic, incremental_configs=[
        ConfigEntry("unclean.leader.election.enable", "true", incremental_operation=AlterConfigOpType.SET)])
    fresh = admin(members[2])
    fresh.incremental_alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(ADMIN_TIMEOUT_S)
    wait_until(lambda: partition0(members[2], topic) == (2, [2]), SETTLE_S, "broker 2 elected uncleanly")
    assert consume_all(members[2].bootstrap, topic, 20) == list(enumerate(first))
    assert produce(members[1].bootstrap, topic, [b"after"]) == [20]


def test_leadership_returns_to_the_preferred_replica_without_an_admin_call(broker_factory):
    members, by_id = start_cluster(broker_factory, {"leader.imbalance.check.interval.seconds": "1"})
    client = admin(members[2])
    topic = fresh_topic("rebalance")
    create(client, topic, [[1, 2, 3]])
    wait_until(lambda: partition0(members[2], topic) == (1, [1, 2, 3]), SETTLE_S, "the topic")
    by_id[1].kill9()
    wait_until(lambda: (partition0(members[2], topic) or (1,))[0] == 2, SETTLE_S, "broker 2 leading")
    by_id[1].start()
    wait_until(lambda: partition0(members[2], topic) == (1, [1, 2, 3]), SETTLE_S,
               "leadership back on broker 1 by the controller alone")


def test_a_single_broker_leads_everything_already(broker, tmp_path):
    client = admin(broker)
    topic = fresh_topic("single")
    client.create_topics([NewTopic(topic, 2, 1)], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)
    spec = tmp_path / "partitions.json"
    spec.write_text(json.dumps({"partitions": [{"topic": topic, "partition": 0},
                                               {"topic": topic, "partition": 1},
                                               {"topic": topic, "partition": 2}]}))
    out = cli(broker, "--election-type", "unclean", "--path-to-json-file", str(spec))
    assert (out.returncode, out.stdout.splitlines()) == (1, [
        f"Valid replica already elected for partitions {topic}-0, {topic}-1",
        f"Error completing leader election (UNCLEAN) for partition: {topic}-2: "
        f"UnknownTopicOrPartition (3): {topic}-2 does not exist",
        "1 replica(s) could not be elected",
    ]), out
