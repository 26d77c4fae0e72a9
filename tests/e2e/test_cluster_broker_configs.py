"""Dynamic broker configs kept by the metadata quorum (issue 10) on three loopback
brokers: BROKER "" (the cluster-wide default, DYNAMIC_DEFAULT_BROKER_CONFIG, set with
kafka-python: librdkafka cannot name it) and BROKER <id> (one broker's own,
DYNAMIC_BROKER_CONFIG, set with confluent-kafka's AdminClient) reach every member,
including one that was down when they were set, and survive restarts; a cluster-wide
unclean.leader.election.enable=true makes whichever member is the active controller
elect an out-of-sync replica for an offline partition, without a restart; deleting the
default brings the static value back. Described with confluent-kafka and, for the
synonyms, kafka-python."""

import signal
import time
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import KafkaError
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource
from kafka import KafkaAdminClient
from kafka.errors import KafkaError as KafkaPyError
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType as KpType

import kwire
from clients import wait_until
from conftest import fresh_topic
from test_cluster_elections import create, start_cluster
from test_cluster_replication import ADMIN_TIMEOUT_S, SETTLE_S, admin, consume_all, partition0, produce

UNCLEAN = "unclean.leader.election.enable"
# How long the active controller may take to elect once the default allows it: its
# check runs every 500 ms (cluster::elect::UNCLEAN_CHECK_INTERVAL); the rest is slack
# for a loaded machine.
ELECTED_WITHIN_S = 10
API_DESCRIBE_CONFIGS = 32
RESOURCE_BROKER = 4


def alter(via, name, key, value):
    """IncrementalAlterConfigs SET (or DELETE when value is None) of one key of BROKER
    <name>, by confluent-kafka (librdkafka sends it to that broker)."""
    op = AlterConfigOpType.DELETE if value is None else AlterConfigOpType.SET
    resource = ConfigResource("BROKER", name, incremental_configs=[ConfigEntry(key, value, incremental_operation=op)])
    client = admin(via)
    client.incremental_alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(ADMIN_TIMEOUT_S)


def kp_admin(broker):
    """A kafka-python admin client bootstrapped at `broker`. It first connects to the
    controller the broker names; one that has just restarted can name a controller its
    image does not list yet (NodeNotReadyError), so that is tried again."""
    def connect():
        try:
            return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=ADMIN_TIMEOUT_S * 1000)
        except KafkaPyError:
            return None
    return wait_until(connect, SETTLE_S, f"a kafka-python admin client through broker {broker.node_id}")


def alter_default(via, configs):
    """AlterConfigs of BROKER "" (the whole set replaced by `configs`) by kafka-python;
    (error code, message). librdkafka refuses a ConfigResource with an empty name, so
    confluent-kafka cannot name the cluster default; kafka-python sends it to any broker
    it knows, which is what Kafka asks of the default resource."""
    client = kp_admin(via)
    try:
        response = client.alter_configs([KpConfigResource(KpType.BROKER, "", configs=configs)])
    finally:
        client.close()
    (error_code, message, _type, name), = response.resources
    assert name == ""
    return error_code, message


def described(broker, key):
    """(value, source) of `key` on BROKER <broker's id>; librdkafka sends it to that broker."""
    resource = ConfigResource("BROKER", str(broker.node_id))
    client = admin(broker)
    entry = client.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(ADMIN_TIMEOUT_S)[key]
    return entry.value, entry.source


def shows(broker, key, expected):
    """Waits until BROKER <broker's id> describes `key` as (value, source) `expected`: an
    alter is answered once applied on the member that took it, the others follow."""
    wait_until(lambda: described(broker, key) == expected, SETTLE_S, f"{key}={expected} on broker {broker.node_id}")


def default_resource(broker):
    """[(name, value, source)] of BROKER "" as this broker describes it, by a raw
    DescribeConfigs v1 to its port: neither client can send the default resource to a
    broker of our choosing (librdkafka refuses the empty name, kafka-python routes
    BROKER resources by their id)."""
    body = kwire.array([kwire.int8(RESOURCE_BROKER) + kwire.string("") + kwire.int32(-1)])
    body += kwire.int8(0)  # no synonyms
    with kwire.Conn(broker.port) as conn:
        r = kwire.Reader(conn.request(API_DESCRIBE_CONFIGS, 1, body, timeout_s=ADMIN_TIMEOUT_S))
    r.int32()  # throttle time

    def config():
        name, value, _read_only, source, _sensitive = r.string(), r.string(), r.int8(), r.int8(), r.int8()
        r.array(lambda: (r.string(), r.string(), r.int8()))
        return name, value, source

    def result():
        code, message, _type, _name = r.int16(), r.string(), r.int8(), r.string()
        assert code == 0, (code, message)
        return r.array(config)

    (configs,) = r.array(result)
    r.expect_end()
    return configs


def alter_raw(broker, name, key, value):
    """(error code, message) of a raw IncrementalAlterConfigs v0 SET of BROKER <name> sent
    to `broker`: the clients always send BROKER <id> to that broker."""
    return kwire.incremental_alter_configs(broker.port, RESOURCE_BROKER, name, [("set", key, value)],
                                           timeout_s=ADMIN_TIMEOUT_S)


def synonyms(broker, key):
    """[(name, value, source)] of `key` on BROKER <broker's id>, by kafka-python (its
    ConfigEntry keeps every synonym; confluent-kafka's keys them by name)."""
    client = kp_admin(broker)
    try:
        responses = client.describe_configs([KpConfigResource(KpType.BROKER, str(broker.node_id))],
                                            include_synonyms=True)
    finally:
        client.close()
    for response in responses:
        for result in response.resources:
            assert result[0] == 0, result
            for entry in result[4]:
                if entry[0] == key:
                    return [tuple(s) for s in entry[5]]
    raise AssertionError(f"{key} not described")


def active_controller(broker):
    """The controller id broker's DescribeCluster names (the Raft leader), or None."""
    client = admin(broker)
    result = client.describe_cluster(request_timeout=ADMIN_TIMEOUT_S).result(timeout=ADMIN_TIMEOUT_S)
    return result.controller.id if result.controller is not None else None


def test_the_cluster_default_elects_uncleanly_reaches_every_member_and_survives_restarts(broker_factory):
    # unclean.leader.election.enable is set statically too, so that deleting the dynamic
    # default shows the static layer coming back.
    members, by_id = start_cluster(broker_factory, {UNCLEAN: "false"})
    # The partition's leader is the active controller, so the member that elects
    # uncleanly is one that became the active controller after the partition went
    # offline, and after its own configs were read at start-up.
    c = wait_until(lambda: active_controller(members[0]), SETTLE_S, "an active controller")
    f, t = [b.node_id for b in members if b.node_id != c]
    lead, follower, third = by_id[c], by_id[f], by_id[t]
    topic = fresh_topic("dyndefault")
    create(admin(third), topic, [[c, f]])
    wait_until(lambda: partition0(third, topic) == (c, sorted([c, f])), SETTLE_S, "the full ISR")
    first = [f"r{i}".encode() for i in range(20)]
    assert produce(third.bootstrap, topic, first) == list(range(20))

    # The follower falls out of the ISR, the leader takes two more records alone and
    # dies: offline.
    follower.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: (partition0(third, topic) or (0, []))[1] == [c], SETTLE_S, "the follower out of the ISR")
        assert produce(third.bootstrap, topic, [b"lost1", b"lost2"]) == [20, 21]
        lead.kill9()
    finally:
        follower.proc.send_signal(signal.SIGCONT)
    brokers = lambda: sorted(admin(third).list_topics(timeout=ADMIN_TIMEOUT_S).brokers)  # noqa: E731
    wait_until(lambda: brokers() == sorted([f, t]), SETTLE_S, "the leader fenced, the follower live")
    for _ in range(3):
        assert partition0(third, topic) == (-1, [c]), "offline while unclean election is off"
        time.sleep(0.5)

    # A read-only broker config is refused as Kafka refuses it (INVALID_REQUEST).
    code, message = alter_default(third, {"auto.leader.rebalance.enable": "false"})
    assert code == KafkaError.INVALID_REQUEST and "auto.leader.rebalance.enable" in message, (code, message)

    # The cluster-wide default: the new active controller elects the follower with what
    # it had.
    assert alter_default(third, {UNCLEAN: "true"})[0] == 0
    started = time.monotonic()
    wait_until(lambda: partition0(third, topic) == (f, [f]), ELECTED_WITHIN_S, "the follower elected uncleanly")
    print(f"elected {time.monotonic() - started:.2f} s after the alter, by controller {active_controller(third)}")
    assert consume_all(follower.bootstrap, topic, 20) == list(enumerate(first))
    assert produce(third.bootstrap, topic, [b"after"]) == [20]

    # Every member describes it as the dynamic default; the old leader, down when it
    # was set, learns it from the quorum.
    lead.start()
    for broker in members:
        shows(broker, UNCLEAN, ("true", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value))
        assert default_resource(broker) == [(UNCLEAN, "true", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)]
    assert synonyms(lead, UNCLEAN) == [
        (UNCLEAN, "true", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
        (UNCLEAN, "false", ConfigSource.STATIC_BROKER_CONFIG.value),
        (UNCLEAN, "false", ConfigSource.DEFAULT_CONFIG.value),
    ]
    # The old leader truncated the records the follower never had and follows again.
    wait_until(lambda: partition0(third, topic) == (f, sorted([c, f])), SETTLE_S, "the old leader back in the ISR")

    # Broker 2's own config: on broker 2 only, over the default, and kept across its restart.
    retention = "log.retention.ms"
    alter(members[0], "2", retention, "3600000")
    alter(members[0], "2", UNCLEAN, "false")
    assert described(by_id[2], retention) == ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert described(by_id[2], UNCLEAN) == ("false", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    # As Kafka's KRaft brokers: BROKER 2 only through broker 2.
    code, message = alter_raw(by_id[3], "2", retention, "60000")
    assert code == KafkaError.INVALID_REQUEST and "Unexpected broker id" in message, (code, message)
    by_id[2].restart()
    # The others' own resources never had it (they applied it long before this restart).
    assert described(by_id[1], retention) == ("604800000", ConfigSource.DEFAULT_CONFIG.value)
    assert described(by_id[3], UNCLEAN) == ("true", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
    assert described(by_id[2], retention) == ("3600000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert synonyms(by_id[2], UNCLEAN) == [
        (UNCLEAN, "false", ConfigSource.DYNAMIC_BROKER_CONFIG.value),
        (UNCLEAN, "true", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
        (UNCLEAN, "false", ConfigSource.STATIC_BROKER_CONFIG.value),
        (UNCLEAN, "false", ConfigSource.DEFAULT_CONFIG.value),
    ]

    # Two members change the default at once, each its own key, ten times: no change
    # is lost (each is applied by its member's controller thread to the quorum's latest
    # map, and refused and applied again when another got in first).
    for i in range(10):
        with ThreadPoolExecutor(2) as pool:
            a = pool.submit(alter_raw, by_id[1], "", retention, str(3_600_000 + i))
            b = pool.submit(alter_raw, by_id[3], "", "log.segment.bytes", str(1_048_576 + i))
            assert a.result() == (0, None) and b.result() == (0, None), (a.result(), b.result())
        want = {retention: str(3_600_000 + i), "log.segment.bytes": str(1_048_576 + i), UNCLEAN: "true"}
        wait_until(lambda: {n: v for n, v, _ in default_resource(by_id[2])} == want, SETTLE_S, f"round {i}")

    # Deleting the default brings the static value back on every member.
    assert alter_default(members[0], {})[0] == 0
    for broker in (by_id[1], by_id[3]):
        shows(broker, UNCLEAN, ("false", ConfigSource.STATIC_BROKER_CONFIG.value))
        assert default_resource(broker) == []
