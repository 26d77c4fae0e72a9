"""SASL on the quorum's CONTROLLER listener (issue 12): `CONTROLLER:SASL_PLAINTEXT` with
`sasl.mechanism.controller.protocol=PLAIN` and the listener's JAAS config, as in Kafka.
Every controller connection (Raft, forwarded writes, registrations and heartbeats) logs
in first; a member with a wrong password cannot join and the others keep working; a
connection that sends anything before its login, or a wrong login, is closed unanswered
(nothing it sent is applied) with a log line naming the peer.
"""

import os
import subprocess

from confluent_kafka.admin import AdminClient, NewTopic

from clients import wait_until
from conftest import _BROKERS_BY_NODE, _RUNNING, Broker, free_port, fresh_topic
from test_cluster_replication import consume_all, partition0_when, produce
from test_cluster_tls import controller_conn, controller_frame

ADMIN_TIMEOUT_S = 10
SETTLE_S = 30
PASSWORD = "controller-secret"
FAST = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
}


def jaas(password):
    """The member logs in with `password` and accepts it: a member configured with the
    wrong secret has it on both sides. (With a wrong password on its client side only,
    it would still take the leader's appends while its own refused votes raise its
    term, and its answers would make the leader step down again and again.)"""
    return ("org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="controller" password="{password}" user_controller="{password}";')


def sasl_settings(password=PASSWORD):
    return {"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": jaas(password)}


def start_without_waiting(b):
    """Broker.start without the readiness wait: a member that cannot join never gets
    ready (no registration), which is what this test wants to see."""
    env = dict(os.environ, NO_COLOR="1")
    b.starts += 1
    with open(b.log_path, "ab") as log:
        log.write(f"=== harness: start #{b.starts} (not waiting)\n".encode())
        log.flush()
        b.proc = subprocess.Popen(b.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                  cwd=b.workdir, env=env, start_new_session=True)
    _RUNNING.add(b.proc)


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def brokers_of(member):
    return sorted(admin(member).list_topics(timeout=ADMIN_TIMEOUT_S).brokers)


def create(broker, topic, assignment):
    client = admin(broker)
    new = NewTopic(topic, num_partitions=len(assignment), replica_assignment=assignment)
    client.create_topics([new], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)


def test_quorum_over_sasl_plaintext_and_a_member_with_a_wrong_password(broker_factory):
    ports = [free_port() for _ in range(3)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports))
    members = []
    for i, port in enumerate(ports):
        password = PASSWORD if i < 2 else "not-the-password"
        settings = {"process.roles": "broker,controller", "controller.quorum.voters": voters,
                    **FAST, **sasl_settings(password)}
        b = Broker(broker_factory.base_dir / f"member{i + 1}", overrides=settings, smp=1, node_id=i + 1,
                   controller_port=port)
        broker_factory.brokers.append(b)
        _BROKERS_BY_NODE.setdefault(broker_factory.node_id, []).append(b)
        members.append(b)
    m1, m2, m3 = members
    m1.start()
    m2.start()
    start_without_waiting(m3)
    # Member 3 is told why, and the others name it when they refuse it.
    assert m3.wait_for_log("refused our SASL PLAIN login", timeout_s=SETTLE_S), m3.log_tail()
    refused = lambda: (m1.wait_for_log("SASL PLAIN login refused", timeout_s=0)
                       or m2.wait_for_log("SASL PLAIN login refused", timeout_s=0))
    line = wait_until(refused, SETTLE_S, "a voter's refusal of member 3")
    assert "peer=127.0.0.1:" in line and 'user=controller' in line, line
    # Members 1 and 2 are the quorum: they register, elect, create and replicate.
    wait_until(lambda: brokers_of(m1) == [1, 2], SETTLE_S, "members 1 and 2 live")
    topic = fresh_topic("ctl-sasl-rf2")
    create(m1, topic, [[1, 2]])
    partition0_when(m1, topic, lambda _l, i: i == [1, 2], "the RF=2 topic in sync")
    values = [f"a{i}".encode() for i in range(20)]
    assert produce(m2.bootstrap, topic, values) == list(range(20))
    assert brokers_of(m2) == [1, 2], "member 3 never registered"
    assert m3.is_running(), m3.log_tail()

    # On the wire: a request before the login is not answered, nor is a wrong login
    # followed by anything; a right login gets an answer and then the request its own.
    heartbeat = {"Heartbeat": {"node_id": 99, "incarnation": "stranger"}}
    with controller_conn(m1.controller_port) as s:
        assert controller_frame(s, heartbeat) is None
    assert m1.wait_for_log("a request before the SASL login", timeout_s=5), m1.log_tail()
    login = lambda pw: {"Login": {"mechanism": "PLAIN", "username": "controller", "password": pw}}
    with controller_conn(m1.controller_port) as s:
        assert controller_frame(s, login("wrong")) == {"Login": {"Err": "invalid username or password"}}
        assert controller_frame(s, heartbeat) is None
    with controller_conn(m1.controller_port) as s:
        assert controller_frame(s, login(PASSWORD)) == {"Login": {"Ok": None}}
        answer = controller_frame(s, heartbeat)
        assert answer is not None and "Heartbeat" in answer, answer

    # With the right password member 3 joins, and an RF=3 topic works across all three.
    m3.kill9()
    m3.settings.update(sasl_settings(PASSWORD))
    m3.start()
    wait_until(lambda: brokers_of(m1) == [1, 2, 3], SETTLE_S, "three live brokers")
    topic3 = fresh_topic("ctl-sasl-rf3")
    create(m1, topic3, [[3, 1, 2]])
    partition0_when(m1, topic3, lambda l, i: l == 3 and i == [1, 2, 3], "the RF=3 topic in sync")
    values = [f"b{i}".encode() for i in range(100)]
    assert produce(m1.bootstrap, topic3, values) == list(range(100))
    assert consume_all(m2.bootstrap, topic3, 100) == list(enumerate(values))
