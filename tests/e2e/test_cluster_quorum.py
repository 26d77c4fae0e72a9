"""The cluster's metadata quorum (issue 10, phase 1): three combined-mode members on
loopback form an openraft quorum, register and heartbeat; Metadata and DescribeCluster
list the live brokers and the active controller; a killed controller is replaced and its
broker fenced; a restarted one registers again. Driven by confluent-kafka, kafka-python
and kcat."""

import concurrent.futures
import subprocess
import time

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient

from clients import kcat, wait_until
from conftest import Broker, _BROKERS_BY_NODE, corelog_bin, free_port

ADMIN_TIMEOUT_S = 5
# Short sessions keep the test quick; the defaults (2 s / 9 s) are Kafka's.
SESSION = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}
QUORUM_WAIT_S = 20
FAILOVER_WAIT_S = 15


def describe(broker):
    """(sorted node ids, controller id) as confluent-kafka's DescribeCluster sees them;
    (None, None) while it cannot tell (librdkafka waits for a known controller)."""
    client = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
    try:
        result = client.describe_cluster(request_timeout=ADMIN_TIMEOUT_S).result(timeout=ADMIN_TIMEOUT_S)
    except (KafkaException, concurrent.futures.TimeoutError):
        return None, None
    controller = result.controller.id if result.controller is not None else -1
    return sorted(n.id for n in result.nodes), controller


def agreed(brokers, expect_ids):
    """The controller every broker names, when all list exactly expect_ids and agree."""
    views = [describe(b) for b in brokers]
    controllers = {c for _, c in views}
    if all(ids == expect_ids for ids, _ in views) and len(controllers) == 1:
        (controller,) = controllers
        return controller if controller in expect_ids else None
    return None


def test_three_members_form_a_quorum_fence_a_dead_one_and_take_it_back(broker_factory):
    members = broker_factory.cluster(3, overrides=SESSION)
    by_id = {b.node_id: b for b in members}
    wait_until(lambda: agreed(members, [1, 2, 3]) is not None, QUORUM_WAIT_S, "three brokers and one controller")
    controller = agreed(members, [1, 2, 3])
    # kafka-python and kcat see the same cluster.
    kp = KafkaAdminClient(bootstrap_servers=by_id[1].bootstrap, request_timeout_ms=ADMIN_TIMEOUT_S * 1000)
    try:
        info = kp.describe_cluster()
        assert sorted(b["node_id"] for b in info["brokers"]) == [1, 2, 3]
        assert info["controller_id"] == controller
    finally:
        kp.close()
    listing = kcat(by_id[2], "-L", "-m", "5").stdout.decode()
    assert "3 brokers:" in listing and "(controller)" in listing, listing

    # The active controller dies: the others elect a new one and fence its broker.
    by_id[controller].kill9()
    survivors = [b for b in members if b.node_id != controller]
    survivor_ids = sorted(b.node_id for b in survivors)

    def new_controller():
        views = [describe(b) for b in survivors]
        named = {c for _, c in views}
        return len(named) == 1 and named.pop() in survivor_ids

    wait_until(new_controller, FAILOVER_WAIT_S, "a new controller among the survivors")
    wait_until(lambda: agreed(survivors, survivor_ids) is not None, FAILOVER_WAIT_S, "the dead broker fenced")

    # It comes back with a new incarnation and is listed again.
    by_id[controller].start()
    wait_until(lambda: agreed(members, [1, 2, 3]) is not None, QUORUM_WAIT_S, "the restarted broker back")
    assert (by_id[controller].log_dirs[0] / "__cluster_metadata-0" / "log").is_file()

    # A clean stop of every member (exit 0 with the controller thread running) and a
    # start from their persisted Raft logs and votes: the quorum forms again.
    for b in members:
        b.stop()
    for b in members:
        b.start()
    wait_until(lambda: agreed(members, [1, 2, 3]) is not None, QUORUM_WAIT_S, "the quorum after a full restart")


def test_a_single_broker_is_its_own_controller(broker):
    assert describe(broker) == ([broker.node_id], broker.node_id)


def test_member_configs_that_cannot_work_are_refused_at_start(tmp_path):
    cases = [
        ({"process.roles": "broker,controller"}, "controller.quorum.voters"),
        ({"process.roles": "broker", "controller.quorum.voters": "1@127.0.0.1:1"}, "process.roles"),
        ({"process.roles": "broker,controller", "controller.quorum.voters": "2@127.0.0.1:1", "node.id": "1"},
         "not among the voters"),
        ({"process.roles": "broker,controller", "controller.quorum.voters": "1@127.0.0.1:1", "node.id": "1"},
         "controller.listener.names"),
    ]
    for overrides, needle in cases:
        cmd = [str(corelog_bin()), "serve", "--smp", "1", "--override", f"log.dirs={tmp_path / 'd'}"]
        for k, v in overrides.items():
            cmd += ["--override", f"{k}={v}"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        assert out.returncode != 0, overrides
        assert needle in out.stderr + out.stdout, (overrides, out.stderr)


def test_a_quorum_named_by_bootstrap_servers_and_formatted_with_its_controllers(broker_factory):
    """Kafka 4's way to start a cluster: every member's server.properties lists the
    controllers in controller.quorum.bootstrap.servers (no ids, no voters), and each
    member's log dirs are formatted with the voters and a cluster id
    (`kafka-storage format -t ID --initial-controllers id@host:port:dir-id,...`)."""
    cluster_id = "q4ZmN0PTQcWo3o5hRzYb1A"
    ports = [free_port() for _ in range(3)]
    servers = ",".join(f"127.0.0.1:{p}" for p in ports)
    # Kafka's form, directory ids included (corelog does not use them).
    initial = ",".join(f"{i + 1}@127.0.0.1:{p}:AAAAAAAAAAAAAAAAAAAAA{i}" for i, p in enumerate(ports))
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports))
    members = []
    for i, port in enumerate(ports):
        settings = {"process.roles": "broker,controller", "controller.quorum.bootstrap.servers": servers,
                    **SESSION}
        b = Broker(broker_factory.base_dir / f"boot{i + 1}", overrides=settings, smp=1, node_id=i + 1,
                   controller_port=port)
        formatted = subprocess.run(
            [str(corelog_bin()), "storage", "format", "-t", cluster_id, "--initial-controllers", initial]
            + [arg for k, v in b.settings.items() for arg in ("--override", f"{k}={v}")],
            capture_output=True, text=True, timeout=30)
        assert formatted.returncode == 0, formatted.stderr
        assert f"metadata quorum voters {voters}" in formatted.stdout, formatted.stdout
        broker_factory.brokers.append(b)
        _BROKERS_BY_NODE.setdefault(broker_factory.node_id, []).append(b)
        members.append(b)
    # Formatting the same dirs again is refused, as Kafka's format is.
    again = subprocess.run(
        [str(corelog_bin()), "storage", "format", "--initial-controllers", initial]
        + [arg for k, v in members[0].settings.items() for arg in ("--override", f"{k}={v}")],
        capture_output=True, text=True, timeout=30)
    assert again.returncode == 1 and "already formatted" in again.stderr, again.stderr
    for b in members:
        b.start()
    wait_until(lambda: agreed(members, [1, 2, 3]) is not None, QUORUM_WAIT_S, "three brokers and one controller")

    client = AdminClient({"bootstrap.servers": members[2].bootstrap, "broker.address.family": "v4"})
    described = client.describe_cluster(request_timeout=ADMIN_TIMEOUT_S).result(timeout=ADMIN_TIMEOUT_S)
    assert described.cluster_id == cluster_id
    topic = "boot-replicated"
    client.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)],
                         request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)

    def replicas():
        p = client.list_topics(topic, timeout=ADMIN_TIMEOUT_S).topics[topic].partitions[0]
        return sorted(p.replicas), sorted(p.isrs)
    wait_until(lambda: replicas() == ([1, 2, 3], [1, 2, 3]), QUORUM_WAIT_S, "RF=3 with the ISR whole")
    p = Producer({"bootstrap.servers": members[0].bootstrap, "broker.address.family": "v4", "acks": "all"})
    acked = []
    for i in range(20):
        p.produce(topic, f"m{i}".encode(), on_delivery=lambda err, msg: acked.append(None if err else msg.offset()))
    assert p.flush(30) == 0
    assert acked == list(range(20))
