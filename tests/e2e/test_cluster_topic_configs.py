"""Topic configs in a cluster (issue 10): an IncrementalAlterConfigs is applied by the
controller thread of the member that took it to the quorum's latest overrides of the
topic, with compare-and-set, so two members' concurrent changes to one topic are both
kept, as Kafka's controller keeps them. Three loopback members; the alters go through
confluent-kafka's AdminClient (which sends a TOPIC resource to the active controller)
and, at the same moment, a raw IncrementalAlterConfigs to another member; each member
is described by a raw DescribeConfigs to its own port (the clients pick the broker
themselves)."""

import re
import time
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import KafkaError
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource

import kwire
from clients import wait_until
from conftest import fresh_topic
from test_cluster_broker_configs import active_controller
from test_cluster_topics import ADMIN_TIMEOUT_S, SETTLE_S, admin, create, live_cluster

API_DESCRIBE_CONFIGS = 32
RESOURCE_TOPIC = 2
RETENTION = "retention.ms"
SEGMENT = "segment.bytes"
CLEANUP = "cleanup.policy"
KEYS = [RETENTION, SEGMENT, CLEANUP]
DYNAMIC_TOPIC = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
DEFAULT = ConfigSource.DEFAULT_CONFIG.value
ROUNDS = 10
# The log line of the member whose metadata shard applied a config change.
CHANGED = re.compile(r"configs changed topics=")


def alter_raw(broker, topic, changes, validate_only=False):
    """(error code, message) of a raw IncrementalAlterConfigs v0 on TOPIC `topic`, sent to
    `broker`: changes are (op name, key, value)."""
    return kwire.incremental_alter_configs(broker.port, RESOURCE_TOPIC, topic, changes, validate_only,
                                           ADMIN_TIMEOUT_S)


def described(broker, topic):
    """{key: (value, source)} of KEYS for TOPIC `topic` as `broker` itself describes it,
    by a raw DescribeConfigs v1 to its port; (error code, message) if it answers one."""
    names = kwire.array([kwire.string(k) for k in KEYS])
    body = kwire.array([kwire.int8(RESOURCE_TOPIC) + kwire.string(topic) + names])
    body += kwire.int8(0)  # no synonyms
    with kwire.Conn(broker.port) as conn:
        r = kwire.Reader(conn.request(API_DESCRIBE_CONFIGS, 1, body, timeout_s=ADMIN_TIMEOUT_S))
    r.int32()  # throttle time

    def config():
        name, value, _read_only, source, _sensitive = r.string(), r.string(), r.int8(), r.int8(), r.int8()
        r.array(lambda: (r.string(), r.string(), r.int8()))
        return name, (value, source)

    def result():
        code, message, _type, _name = r.int16(), r.string(), r.int8(), r.string()
        configs = dict(r.array(config))
        return configs if code == 0 else (code, message)

    (configs,) = r.array(result)
    r.expect_end()
    return configs


def everywhere(members, topic, want):
    """Waits until every member describes KEYS as `want` ({key: (value, source)})."""
    for b in members:
        wait_until(lambda: described(b, topic) == want, SETTLE_S, f"{want} on broker {b.node_id}")


def changes_applied(broker):
    return len(CHANGED.findall(broker.log_text()))


def test_concurrent_alters_through_two_members_lose_nothing(broker_factory):
    members = live_cluster(broker_factory)
    by_id = {b.node_id: b for b in members}
    topic = fresh_topic("topiccas")
    create(members[0], topic, 1, 3)
    want = {RETENTION: ("604800000", DEFAULT), SEGMENT: ("1073741824", DEFAULT), CLEANUP: ("delete", DEFAULT)}
    everywhere(members, topic, want)
    c = wait_until(lambda: active_controller(members[0]), SETTLE_S, "an active controller")
    other = by_id[min(n for n in by_id if n != c)]
    # One client, connected before the rounds, so both alters of a round leave together.
    client = admin(members[0])
    assert active_controller(members[0]) == c

    def alter_by_client(key, value):
        entry = ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource("TOPIC", topic, incremental_configs=[entry])
        client.incremental_alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(ADMIN_TIMEOUT_S)

    applied = {n: changes_applied(b) for n, b in by_id.items()}
    for i in range(ROUNDS):
        started = time.monotonic()
        retention, segment = str(3_600_000 + i), str(1_048_576 + i)
        with ThreadPoolExecutor(2) as pool:
            a = pool.submit(alter_by_client, RETENTION, retention)
            b = pool.submit(alter_raw, other, topic, [("set", SEGMENT, segment)])
            assert a.result() is None and b.result() == (0, None), b.result()
        answered = time.monotonic()
        # Each answering member shows its own change at once; every member both.
        assert described(other, topic)[SEGMENT] == (segment, DYNAMIC_TOPIC)
        assert described(by_id[c], topic)[RETENTION] == (retention, DYNAMIC_TOPIC)
        want = {RETENTION: (retention, DYNAMIC_TOPIC), SEGMENT: (segment, DYNAMIC_TOPIC), CLEANUP: ("delete", DEFAULT)}
        everywhere(members, topic, want)
        print(f"round {i}: answered in {answered - started:.2f} s, on every member {time.monotonic() - started:.2f} s")
    # The client's alters went to the active controller, the raw ones to the other
    # member: two members' metadata shards, one change each per round.
    assert active_controller(members[0]) == c
    assert {n: changes_applied(b) - applied[n] for n, b in by_id.items()} == {c: ROUNDS, other.node_id: ROUNDS,
                                                                            **{n: 0 for n in by_id if n not in (c, other.node_id)}}

    # APPEND starts from the broker-level value where the topic has no override, and
    # the quorum applies it alike.
    assert alter_raw(other, topic, [("append", CLEANUP, "compact")]) == (0, None)
    want[CLEANUP] = ("delete,compact", DYNAMIC_TOPIC)
    everywhere(members, topic, want)

    # validate_only and a refused change propose nothing: a later change through the
    # same member is applied on top of the earlier state.
    assert alter_raw(other, topic, [("set", RETENTION, "1")], validate_only=True) == (0, None)
    code, message = alter_raw(other, topic, [("set", RETENTION, "1"), ("set", SEGMENT, "soon")])
    assert code == KafkaError.INVALID_CONFIG and SEGMENT in message, (code, message)
    assert alter_raw(other, topic, [("subtract", CLEANUP, "delete")]) == (0, None)
    want[CLEANUP] = ("compact", DYNAMIC_TOPIC)
    everywhere(members, topic, want)

    # AlterConfigs (the legacy whole-set form) replaces every override, on the quorum's map.
    resource = ConfigResource("TOPIC", topic, set_config={RETENTION: "7200000"})
    client.alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(ADMIN_TIMEOUT_S)
    everywhere(members, topic, {RETENTION: ("7200000", DYNAMIC_TOPIC), SEGMENT: ("1073741824", DEFAULT),
                                CLEANUP: ("delete", DEFAULT)})
