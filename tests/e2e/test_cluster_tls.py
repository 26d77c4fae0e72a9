"""TLS between the members of a cluster (issue 12): replication, transaction calls and
every other inter-broker connection over an SSL or SASL_SSL listener, with mutual TLS;
a member that does not trust the others' CA fails to replicate, says so in its log and
leaves the ISR. The quorum's CONTROLLER listener over SSL with mutual TLS: the members
form a quorum and elect through it, and a client without a cluster certificate is
refused by the handshake while the quorum carries on.

Certificates come from the openssl helpers of test_security.py: one cluster CA, a
broker certificate for 127.0.0.1 / localhost usable both as server and as client
(serverAuth, clientAuth: the members show it to each other under mutual TLS), and an
unrelated CA. Each member keeps the harness's PLAINTEXT listener (its readiness probe
and the test's clients) and adds the TLS listener the members use among themselves.
"""

import json
import socket
import ssl
import struct
import subprocess

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from clients import wait_until
from conftest import Broker, _BROKERS_BY_NODE, corelog_bin, free_port, fresh_topic
from test_cluster_replication import consume_all, partition0_when, produce
from test_security import make_ca, make_cert

ADMIN_TIMEOUT_S = 10
SETTLE_S = 30
MECHANISM = "SCRAM-SHA-512"
BROKER_PASSWORD = "broker-secret"
# Quick sessions and lag bounds (Kafka's defaults: 9 s, 30 s) keep the test short.
FAST = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("cluster-pki")
    make_ca(d, "ca", "/CN=corelog-cluster-ca")
    make_ca(d, "other-ca", "/CN=other-ca")
    make_cert(d, "broker", "ca", "/CN=broker",
              "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth")
    (d / "keystore.pem").write_bytes((d / "broker.key").read_bytes() + (d / "broker.pem").read_bytes())
    return d


CONTROLLER_SSL = {"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:SSL"}


def tls_settings(pki, truststore="ca.pem"):
    return {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki / "keystore.pem"),
            "ssl.truststore.type": "PEM", "ssl.truststore.location": str(pki / truststore),
            "ssl.client.auth": "required"}


def cluster(factory, pki, listener="SSL", member_settings=None, extra=None, formatted_users=False):
    """Three combined-mode members whose inter-broker listener is `listener` (SSL or
    SASL_SSL). `member_settings`: per-member settings over the common ones."""
    controller_ports = [free_port() for _ in range(3)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(controller_ports))
    members = []
    for i, cport in enumerate(controller_ports):
        workdir = factory.base_dir / f"member{i + 1}"
        d = workdir / "d0"
        if formatted_users and i == 0:
            subprocess.run([str(corelog_bin()), "storage", "format", "--override", f"log.dirs={d}",
                            "--add-scram", f"{MECHANISM}=[name=broker,password={BROKER_PASSWORD}]"],
                           capture_output=True, timeout=ADMIN_TIMEOUT_S * 3, check=True)
        settings = {"process.roles": "broker,controller", "controller.quorum.voters": voters,
                    "log.dirs": str(d), "inter.broker.listener.name": listener,
                    **FAST, **tls_settings(pki), **(extra or {}),
                    **((member_settings or [{}] * 3)[i])}
        b = Broker(workdir, overrides=settings, smp=1, node_id=i + 1, controller_port=cport,
                   extra_listeners={listener: free_port()})
        factory.brokers.append(b)
        _BROKERS_BY_NODE.setdefault(factory.node_id, []).append(b)
        members.append(b.start())
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3],
               SETTLE_S, "three live brokers")
    return members


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def create(broker, topic, assignment=None):
    new = NewTopic(topic, num_partitions=len(assignment), replica_assignment=assignment) if assignment else NewTopic(topic, 1, 3)
    client = admin(broker)  # kept alive until the answer is in
    client.create_topics([new], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)


def controller_frame(sock, request):
    """One framed JSON request on the controller listener; the decoded answer, or None
    when the connection was closed (or the TLS session refused) instead."""
    body = json.dumps(request).encode()
    try:
        sock.sendall(struct.pack(">I", len(body)) + body)
        head = sock.recv(4)
        if len(head) < 4:
            return None
        (size,) = struct.unpack(">I", head)
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
        return json.loads(data)
    except (ssl.SSLError, ConnectionError):
        return None


def controller_conn(port, ctx=None):
    sock = socket.create_connection(("127.0.0.1", port), timeout=ADMIN_TIMEOUT_S)
    if ctx is None:
        return sock
    try:
        return ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    except (ssl.SSLError, ConnectionError):
        sock.close()
        return None


def check_controller_listener_refuses_strangers(member, pki):
    heartbeat = {"Heartbeat": {"node_id": 99, "incarnation": "stranger"}}
    # Plain TCP: the TLS server reads no frame from it.
    with controller_conn(member.controller_port) as s:
        assert controller_frame(s, heartbeat) is None
    # TLS trusting the cluster CA but without a client certificate: refused.
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    s = controller_conn(member.controller_port, ctx)
    assert s is None or controller_frame(s, heartbeat) is None
    # A cluster certificate gets an answer (here: no such member), so the refusals
    # above are the handshake's doing.
    ctx.load_cert_chain(str(pki / "broker.pem"), str(pki / "broker.key"))
    with controller_conn(member.controller_port, ctx) as s:
        answer = controller_frame(s, heartbeat)
    assert answer is not None and "Heartbeat" in answer, answer
    assert member.wait_for_log("controller listener: TLS handshake failed", timeout_s=5), member.log_tail()


def test_replication_and_failover_over_mutual_tls(broker_factory, pki):
    # The quorum too talks over mutual TLS (CONTROLLER:SSL).
    members = cluster(broker_factory, pki, extra=CONTROLLER_SSL)
    check_controller_listener_refuses_strangers(members[0], pki)
    by_id = {b.node_id: b for b in members}
    topic = fresh_topic("tls-rf3")
    create(members[0], topic)
    leader, isr = partition0_when(members[0], topic, lambda _l, i: i == [1, 2, 3], "the topic in sync")
    first = [f"m{i}".encode() for i in range(200)]
    # acks=all is answered once both followers fetched over TLS.
    assert produce(members[1].bootstrap, topic, first) == list(range(200))
    by_id[leader].kill9()
    survivors = [b for b in members if b.node_id != leader]
    partition0_when(survivors[0], topic, lambda l, i: l not in (leader, -1) and leader not in i,
                    "a new leader, the killed one out of the ISR")
    second = [f"n{i}".encode() for i in range(50)]
    assert produce(survivors[1].bootstrap, topic, second) == list(range(200, 250))
    # Read through a follower's bootstrap: the records came over TLS to whoever leads.
    assert consume_all(survivors[0].bootstrap, topic, 250) == list(enumerate(first + second))
    for b in survivors:
        assert "cannot connect over TLS" not in b.log_text(), b.log_tail()


def test_sasl_ssl_between_brokers_with_scram(broker_factory, pki):
    jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
            f"username=\"broker\" password=\"{BROKER_PASSWORD}\";")
    members = cluster(broker_factory, pki, listener="SASL_SSL", formatted_users=True, extra={
        "sasl.enabled.mechanisms": MECHANISM, "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
        # The followers may only start fetching once the formatted user reached them.
        "replica.lag.time.max.ms": "60000"})
    topic = fresh_topic("sasl-ssl-rf3")
    create(members[0], topic)
    partition0_when(members[0], topic, lambda _l, i: i == [1, 2, 3], "the topic in sync")
    values = [f"s{i}".encode() for i in range(100)]
    assert produce(members[2].bootstrap, topic, values) == list(range(100))
    assert consume_all(members[1].bootstrap, topic, 100) == list(enumerate(values))
    for b in members:
        assert "cannot log in" not in b.log_text(), b.log_tail()


def test_a_member_with_the_wrong_truststore_says_so_and_leaves_the_isr(broker_factory, pki):
    members = cluster(broker_factory, pki, member_settings=[{}, {}, {"ssl.truststore.location":
                                                                      str(pki / "other-ca.pem")}])
    topic = fresh_topic("wrong-ca")
    # Member 1 leads; member 3 cannot verify its certificate.
    create(members[0], topic, assignment=[[1, 2, 3]])
    partition0_when(members[0], topic, lambda l, i: l == 1 and i == [1, 2], "member 3 out of the ISR")
    # Member 3 follows other partitions too (__consumer_offsets, led by 1 or 2): look
    # for the warning about this topic's leader.
    def warned():
        return [line for line in members[2].log_text().splitlines()
                if "replica fetcher cannot connect over TLS" in line and "leader=1" in line]

    wait_until(warned, SETTLE_S, "member 3's TLS warning about leader 1")
    assert "certificate" in warned()[0], members[2].log_tail()
    values = [f"w{i}".encode() for i in range(20)]
    assert produce(members[1].bootstrap, topic, values) == list(range(20))
    assert consume_all(members[1].bootstrap, topic, 20) == list(enumerate(values))


# --- Certificate rotation between brokers (no restart of the rotated member) ---------

SERVER_CLIENT_EXT = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"
# The broker checks its certificate files this often (serve.rs TLS_RELOAD_INTERVAL),
# plus room for a loaded machine.
RELOAD_S = 20


@pytest.fixture(scope="module")
def rotation(pki):
    """Member 1's own CA, old and new: members 2 and 3 keep the cluster CA's certificate.
    `all.pem` trusts every CA; `retired.pem` no longer trusts member 1's old CA, so a peer
    using it only accepts member 1 once member 1 shows its new certificate."""
    for name in ("m1-old", "m1-new"):
        make_ca(pki, f"{name}-ca", f"/CN={name}-ca")
        make_cert(pki, name, f"{name}-ca", f"/CN=member-1-{name}", SERVER_CLIENT_EXT)
    bundle = lambda *cas: b"".join((pki / f"{c}.pem").read_bytes() for c in cas)
    (pki / "all.pem").write_bytes(bundle("ca", "m1-old-ca", "m1-new-ca"))
    (pki / "retired.pem").write_bytes(bundle("ca", "m1-new-ca"))
    return pki


def keystore_of(pki, name):
    return (pki / f"{name}.key").read_bytes() + (pki / f"{name}.pem").read_bytes()


def served_cert(port, pki):
    """The DER certificate a member serves on `port` (mutual TLS: we show the cluster
    certificate), or None when the handshake fails."""
    ctx = ssl.create_default_context(cafile=str(pki / "all.pem"))
    ctx.load_cert_chain(str(pki / "broker.pem"), str(pki / "broker.key"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=ADMIN_TIMEOUT_S) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return s.getpeercert(binary_form=True)
    except (ssl.SSLError, ConnectionError, socket.timeout):
        return None


def create_retrying(member, topic, assignment):
    """CreateTopics until it is answered: right after a member's restart librdkafka may
    still send it to the controller id of an older Metadata answer (a member that is
    gone), and time out."""
    def attempt():
        try:
            create(member, topic, assignment)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                return False
        except Exception:  # the future's timeout
            return False
        return True
    wait_until(attempt, SETTLE_S, f"{topic} created")


def serial(der):
    """The certificate's serial number (openssl's reading of the DER bytes)."""
    return int(subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
        capture_output=True, check=True).stdout.decode().strip().split("=")[1], 16)


def test_a_rotated_member_certificate_reaches_the_other_brokers_without_its_restart(
        broker_factory, rotation):
    pki = rotation
    keystore1 = broker_factory.base_dir / "member1-keystore.pem"
    keystore1.write_bytes(keystore_of(pki, "m1-old"))
    trust = {"ssl.truststore.location": str(pki / "all.pem")}
    members = cluster(broker_factory, pki, extra={**CONTROLLER_SSL, **trust},
                      member_settings=[{"ssl.keystore.location": str(keystore1)}, {}, {}])
    m1, m2, m3 = members
    old = ssl.PEM_cert_to_DER_cert((pki / "m1-old.pem").read_text())
    new = ssl.PEM_cert_to_DER_cert((pki / "m1-new.pem").read_text())
    assert served_cert(m1.controller_port, pki) == old
    # Member 1's keystore file is replaced while it runs (a renewal from a new CA).
    staged = keystore1.with_suffix(".next")
    staged.write_bytes(keystore_of(pki, "m1-new"))
    staged.replace(keystore1)
    # Its controller listener and its inter-broker listener serve the new certificate.
    for port in (m1.controller_port, m1.extra_ports["SSL"]):
        wait_until(lambda: served_cert(port, pki) == new, RELOAD_S, f"the new certificate on port {port}")
    assert serial(new) != serial(old)
    assert serial(served_cert(m1.controller_port, pki)) == serial(new)
    # Member 2 comes back trusting member 1's new CA only, with member 3 down: the
    # quorum is members 1 and 2, so Raft, the registration and the heartbeats between
    # them (both directions) and the replica fetchers only work if member 1 shows its
    # new certificate as a server and as a client.
    m3.kill9()
    m2.stop()
    m2.settings["ssl.truststore.location"] = str(pki / "retired.pem")
    m2.start()  # ready = registered through the quorum and listed by Metadata
    led_by_1, led_by_2 = fresh_topic("rot-1"), fresh_topic("rot-2")
    create_retrying(m1, led_by_1, [[1, 2]])
    create_retrying(m2, led_by_2, [[2, 1]])
    partition0_when(m2, led_by_1, lambda l, i: l == 1 and i == [1, 2], "member 2 in sync with 1")
    partition0_when(m1, led_by_2, lambda l, i: l == 2 and i == [1, 2], "member 1 in sync with 2")
    values = [f"r{i}".encode() for i in range(50)]
    # acks=all: answered once the follower fetched over TLS.
    assert produce(m2.bootstrap, led_by_1, values) == list(range(50))
    assert produce(m1.bootstrap, led_by_2, values) == list(range(50))
    assert consume_all(m2.bootstrap, led_by_1, 50) == list(enumerate(values))
    assert consume_all(m1.bootstrap, led_by_2, 50) == list(enumerate(values))
    assert "TLS certificates reloaded (controller client)" in m1.log_text(), m1.log_tail()
    assert "TLS certificates reloaded (inter-broker client)" in m1.log_text(), m1.log_tail()
    since_restart = m2.log_text().split("start #2")[-1]
    assert "cannot connect over TLS" not in since_restart, m2.log_tail()


def test_controller_listener_over_sasl_ssl(broker_factory, pki):
    """CONTROLLER:SASL_SSL: TLS with mutual certificates, then the PLAIN login."""
    jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
            'username="controller" password="ctl-secret" user_controller="ctl-secret";')
    members = cluster(broker_factory, pki, extra={
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SASL_SSL",
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": jaas})
    topic = fresh_topic("ctl-sasl-ssl")
    create(members[0], topic)
    partition0_when(members[0], topic, lambda _l, i: i == [1, 2, 3], "the topic in sync")
    values = [f"c{i}".encode() for i in range(50)]
    assert produce(members[2].bootstrap, topic, values) == list(range(50))
    assert consume_all(members[1].bootstrap, topic, 50) == list(enumerate(values))
    # A cluster certificate alone is not enough: the first frame must be the login.
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / "broker.pem"), str(pki / "broker.key"))
    heartbeat = {"Heartbeat": {"node_id": 99, "incarnation": "stranger"}}
    with controller_conn(members[0].controller_port, ctx) as s:
        assert controller_frame(s, heartbeat) is None
    login = {"Login": {"mechanism": "PLAIN", "username": "controller", "password": "ctl-secret"}}
    with controller_conn(members[0].controller_port, ctx) as s:
        assert controller_frame(s, login) == {"Login": {"Ok": None}}
        assert "Heartbeat" in controller_frame(s, heartbeat)
    for b in members:
        assert "login refused" not in b.log_text(), b.log_tail()
