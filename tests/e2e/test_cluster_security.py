"""A secured cluster (issue 12): SCRAM users as records of the metadata quorum, brokers
that replicate over a SASL_PLAINTEXT listener as their own super user, and SASL
re-authentication (KIP-368).

The cluster: three combined-mode members, ACLs on, each with the harness's PLAINTEXT
listener (User:ANONYMOUS, no ACLs: the readiness probe only) and a SASL_PLAINTEXT one
that is the inter-broker listener. Only member 1 is formatted with users (admin, the
super user, and broker, the members' own identity): the others learn them from the
quorum. Replication over the PLAINTEXT listener would be refused (ANONYMOUS lacks
CLUSTER_ACTION), so acks=all on an RF=3 topic proves the members logged in to each
other; their sessions last 3 s, so they also re-authenticate.
"""

import subprocess
import time

from confluent_kafka import Producer
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType)

import kwire
from conftest import Broker, _BROKERS_BY_NODE, corelog_bin, free_port
from test_security import authenticate, handshake, scram_login

CLIENT_TIMEOUT_S = 15
CONVERGE_S = 15
MECHANISM = "SCRAM-SHA-512"
SASL_AUTHENTICATION_FAILED = 58
FORMATTED = {"admin": "admin-secret", "broker": "broker-secret"}
ALICE = "alice-secret"


def tool(tmp_path, user, password, *args):
    cfg = tmp_path / f"{user}.properties"
    cfg.write_text(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism={MECHANISM}\nsasl.username={user}\n"
                   f"sasl.password={password}\n")
    return subprocess.run([str(corelog_bin()), "--command-config", str(cfg), *args], capture_output=True,
                          timeout=CLIENT_TIMEOUT_S * 2)


def conf(port, user, password):
    return {"bootstrap.servers": f"127.0.0.1:{port}", "broker.address.family": "v4",
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": MECHANISM,
            "sasl.username": user, "sasl.password": password}


def until(check, what, timeout_s=CONVERGE_S):
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got is True or time.monotonic() > deadline:
            assert got is True, f"{what}: {got}"
            return
        time.sleep(0.2)


def secured_cluster(factory, size=3, extra=None):
    controller_ports = [free_port() for _ in range(size)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(controller_ports))
    jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
            f"username=\"broker\" password=\"{FORMATTED['broker']}\";")
    members = []
    for i, cport in enumerate(controller_ports):
        workdir = factory.base_dir / f"member{i + 1}"
        d = workdir / "d0"
        if i == 0:
            cmd = [str(corelog_bin()), "storage", "format", "--override", f"log.dirs={d}"]
            for name, pw in FORMATTED.items():
                cmd += ["--add-scram", f"{MECHANISM}=[name={name},password={pw}]"]
            subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S, check=True)
        settings = {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": "User:admin;User:broker", "sasl.enabled.mechanisms": MECHANISM,
            "inter.broker.listener.name": "SASL_PLAINTEXT",
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": jaas,
            # A follower that cannot fetch must not be dropped from the ISR during the
            # test: acks=all then waits for it, and fails.
            "replica.lag.time.max.ms": "60000",
            # Sessions far shorter than the test: the fetchers must re-authenticate.
            "connections.max.reauth.ms": "3000",
            "log.dirs": str(d), "process.roles": "broker,controller", "controller.quorum.voters": voters,
            **(extra or {})}
        b = Broker(workdir, overrides=settings, smp=1, node_id=i + 1, controller_port=cport,
                   extra_listeners={"SASL_PLAINTEXT": free_port()})
        factory.brokers.append(b)
        _BROKERS_BY_NODE.setdefault(factory.node_id, []).append(b)
        members.append(b.start())
    return members


def sasl_port(b):
    return b.extra_ports["SASL_PLAINTEXT"]


def logs_in(b, user, password):
    return scram_login(sasl_port(b), user, password, MECHANISM)[0]


def test_users_live_in_the_quorum_and_brokers_replicate_over_sasl(broker_factory, tmp_path):
    m1, m2, m3 = secured_cluster(broker_factory)
    # member 1's formatted users reach the quorum: members 2 and 3 never had them.
    until(lambda: logs_in(m3, "admin", FORMATTED["admin"]) == 0 or "admin refused on member 3",
          "the bootstrap users on member 3")
    r = tool(tmp_path, "admin", FORMATTED["admin"], "user", "add", "alice", "--mechanism", MECHANISM,
             "--password", ALICE, "-b", f"127.0.0.1:{sasl_port(m1)}")
    assert r.returncode == 0, r.stderr
    # Committed means a majority holds it; member 3 applies it within a Raft heartbeat.
    until(lambda: logs_in(m3, "alice", ALICE) == 0 or "alice refused", "alice on member 3")

    def listed():
        r = tool(tmp_path, "admin", FORMATTED["admin"], "user", "list", "-b", f"127.0.0.1:{sasl_port(m2)}")
        names = sorted(line.split()[0] for line in r.stdout.decode().splitlines())
        return names == ["admin", "alice", "broker"] or (r.returncode, names, r.stderr)
    until(listed, "the users on member 2")

    admin = AdminClient(conf(sasl_port(m1), "admin", FORMATTED["admin"]))
    topic = "rf3"
    for f in admin.create_topics([NewTopic(topic, 1, 3)], operation_timeout=CLIENT_TIMEOUT_S).values():
        f.result(timeout=CLIENT_TIMEOUT_S)
    acl = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", "*",
                     AclOperation.WRITE, AclPermissionType.ALLOW)
    for f in admin.create_acls([acl], request_timeout=CLIENT_TIMEOUT_S).values():
        f.result(timeout=CLIENT_TIMEOUT_S)
    until(lambda: topic in AdminClient(conf(sasl_port(m3), "alice", ALICE)).list_topics(timeout=5).topics
          or "not visible yet", "alice sees the topic on member 3")
    p = Producer({**conf(sasl_port(m3), "alice", ALICE), "acks": "all",
                  "message.timeout.ms": CLIENT_TIMEOUT_S * 1000})
    results = []
    for i in range(10):
        p.produce(topic, f"v{i}".encode(), partition=0,
                  on_delivery=lambda err, msg: results.append(err.code() if err else msg.offset()))
    assert p.flush(CLIENT_TIMEOUT_S * 2) == 0
    assert sorted(results) == list(range(10)), results
    part = admin.list_topics(topic, timeout=CLIENT_TIMEOUT_S).topics[topic].partitions[0]
    assert sorted(part.isrs) == [1, 2, 3], part
    for b in (m1, m2, m3):
        assert "cannot log in" not in b.log_text(), b.log_tail()
        assert "SASL session of User:broker expired" not in b.log_text(), b.log_tail()

    # Deleted on member 2, alice is refused on member 1.
    r = tool(tmp_path, "admin", FORMATTED["admin"], "user", "delete", "alice", "--mechanism", MECHANISM,
             "-b", f"127.0.0.1:{sasl_port(m2)}")
    assert r.returncode == 0, r.stderr
    until(lambda: logs_in(m1, "alice", ALICE) == SASL_AUTHENTICATION_FAILED or "alice still logs in",
          "alice refused on member 1")
    # The deletion holds across a restart of the member whose file formatted the users
    # (its bootstrap is not taken twice), and broker stays a user.
    r = tool(tmp_path, "admin", FORMATTED["admin"], "user", "delete", "admin", "--mechanism", MECHANISM,
             "-b", f"127.0.0.1:{sasl_port(m3)}")
    assert r.returncode == 0, r.stderr
    m1.restart()
    until(lambda: logs_in(m1, "broker", FORMATTED["broker"]) == 0 or "broker refused", "broker on member 1")
    # Member 1 replays the quorum's log and, having been taken once, proposes its file
    # no more: the deletion holds, the formatted admin does not come back.
    m1.wait_for_log("registered with the metadata quorum", timeout_s=CONVERGE_S,
                    start_at=m1.log_text().rfind("=== harness: start #2"))
    time.sleep(1)
    assert m1.log_text().count("formatted SCRAM credentials were proposed") == 1, m1.log_tail()
    assert logs_in(m1, "admin", FORMATTED["admin"]) == SASL_AUTHENTICATION_FAILED


# --- re-authentication (KIP-368) ------------------------------------------------------

REAUTH_MS = 1500
API_METADATA = 3


def plain_login(c, user, password, version=1):
    """PLAIN over SaslHandshake v1 + SaslAuthenticate `version`: (code, session lifetime ms)."""
    assert handshake(c, "PLAIN")[0] == 0
    token = f"\0{user}\0{password}".encode()
    r = kwire.Reader(c.request(36, version, kwire.int32(len(token)) + token))
    code, _message, _bytes = r.int16(), r.string(), r.bytes()
    return code, (r.int64() if version >= 1 else None)


def metadata_answered(c):
    """A Metadata v1 request for no topics; False when the broker closed the connection."""
    try:
        c.request(API_METADATA, 1, kwire.int32(0), timeout_s=5)
        return True
    except (ConnectionError, TimeoutError, ValueError):
        return False


def reauth_broker(broker_factory, tmp_path):
    d = tmp_path / "reauth-d0"
    subprocess.run([str(corelog_bin()), "storage", "format", "--override", f"log.dirs={d}",
                    "--add-scram", f"{MECHANISM}=[name=alice,password={ALICE}]",
                    "--add-scram", f"{MECHANISM}=[name=bob,password=bob-secret]"],
                   capture_output=True, timeout=CLIENT_TIMEOUT_S, check=True)
    port = free_port()
    b = broker_factory({"log.dirs": str(d), "sasl.enabled.mechanisms": f"PLAIN,{MECHANISM}",
                        "connections.max.reauth.ms": str(REAUTH_MS)}, extra_listeners={"SASL_PLAINTEXT": port})
    return b, port


def test_an_expired_session_is_closed_and_a_renewed_one_kept(broker_factory, tmp_path):
    b, port = reauth_broker(broker_factory, tmp_path)
    # No re-login: served until the lifetime the broker granted, closed at the first
    # request after it.
    with kwire.Conn(port) as c:
        assert plain_login(c, "alice", ALICE) == (0, REAUTH_MS)
        assert metadata_answered(c)
        time.sleep(REAUTH_MS / 1000 + 0.3)
        assert not metadata_answered(c)
    assert b.wait_for_log("closing connection: the SASL session of User:alice expired")
    # Re-logins on the same connection (the second with SCRAM) keep it past the first
    # lifetime; a re-login as someone else is refused and closes it.
    with kwire.Conn(port) as c:
        assert plain_login(c, "alice", ALICE)[0] == 0
        time.sleep(REAUTH_MS / 1000 * 0.6)
        assert plain_login(c, "alice", ALICE) == (0, REAUTH_MS)
        time.sleep(REAUTH_MS / 1000 * 0.6)
        assert metadata_answered(c), "renewed, so past the first session's end"
        assert plain_login(c, "bob", "bob-secret")[0] == SASL_AUTHENTICATION_FAILED
        assert c.wait_closed()
    # A v0 SaslAuthenticate client knows nothing of KIP-368: no lifetime, never expired.
    with kwire.Conn(port) as c:
        assert plain_login(c, "alice", ALICE, version=0) == (0, None)
        time.sleep(REAUTH_MS / 1000 + 0.3)
        assert metadata_answered(c)


def metric(b, name):
    import urllib.request
    with urllib.request.urlopen(f"http://{b.admin}/metrics", timeout=CLIENT_TIMEOUT_S) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))


def test_librdkafka_reauthenticates_and_keeps_producing(broker_factory, tmp_path):
    b, port = reauth_broker(broker_factory, tmp_path)
    p = Producer({**conf(port, "alice", ALICE), "acks": "all", "message.timeout.ms": CLIENT_TIMEOUT_S * 1000})
    delivered = []
    # Several session lifetimes of steady producing.
    deadline = time.monotonic() + REAUTH_MS / 1000 * 4
    i = 0
    while time.monotonic() < deadline:
        p.produce("reauth", f"v{i}".encode(), partition=0,
                  on_delivery=lambda err, msg: delivered.append(err.code() if err else msg.offset()))
        i += 1
        p.poll(0.1)
    assert p.flush(CLIENT_TIMEOUT_S) == 0
    assert sorted(delivered) == list(range(i)), delivered
    assert "SASL session of User:alice expired" not in b.log_text()
    # Re-logins happened on open connections: more logins than connections.
    logins = metric(b, "corelog_sasl_authentications_total")
    opened = metric(b, "corelog_connections_opened_total")
    assert logins > opened, (logins, opened)


# --- the idempotent producer's check (Kafka's authorizeByResourceType) ----------------

CLUSTER_AUTHORIZATION_FAILED = 31


def test_idempotent_producer_needs_write_on_some_topic_as_kafka_decides(broker_factory, tmp_path):
    """Without IDEMPOTENT_WRITE, InitProducerId (no transactional id) needs WRITE on some
    topic: an ALLOW under a prefix that a DENY prefix covers does not count; a DENY of
    the literal name equal to an ALLOW prefix does not cover the prefix (Kafka's rule)."""
    d = tmp_path / "idem-d0"
    users = {"admin": "admin-secret", "eve": "eve-secret"}
    cmd = [str(corelog_bin()), "storage", "format", "--override", f"log.dirs={d}"]
    for name, pw in users.items():
        cmd += ["--add-scram", f"{MECHANISM}=[name={name},password={pw}]"]
    subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S, check=True)
    port = free_port()
    broker_factory({"log.dirs": str(d), "sasl.enabled.mechanisms": f"PLAIN,{MECHANISM}",
                    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    "super.users": "User:admin"}, extra_listeners={"SASL_PLAINTEXT": port})
    admin = AdminClient(conf(port, "admin", users["admin"]))

    def acls(*specs):
        bindings = [AclBinding(ResourceType.TOPIC, name, pattern, "User:eve", "*", AclOperation.WRITE, perm)
                    for name, pattern, perm in specs]
        for f in admin.create_acls(bindings, request_timeout=CLIENT_TIMEOUT_S).values():
            f.result(timeout=CLIENT_TIMEOUT_S)

    def init_producer_id():
        with kwire.Conn(port) as c:
            assert plain_login(c, "eve", users["eve"])[0] == 0
            return kwire.init_producer_id(c)[0]

    prefixed, allow, deny = ResourcePatternType.PREFIXED, AclPermissionType.ALLOW, AclPermissionType.DENY
    assert init_producer_id() == CLUSTER_AUTHORIZATION_FAILED
    acls(("pay-", prefixed, allow), ("pay", prefixed, deny))
    assert init_producer_id() == CLUSTER_AUTHORIZATION_FAILED
    acls(("inv", prefixed, allow), ("inv", ResourcePatternType.LITERAL, deny))
    assert init_producer_id() == 0


TOPIC_AUTHORIZATION_FAILED = 29
API_CONSUMER_GROUP_HEARTBEAT = 68


def consumer_group_heartbeat(c, group, topics):
    """A first ConsumerGroupHeartbeat v0 (KIP-848) subscribing to `topics`: its error code."""
    null = kwire.varint_unsigned(0)
    body = (kwire.compact_string(group) + kwire.compact_string("") + kwire.int32(0)  # member id, epoch
            + null + null + kwire.int32(30000)  # instance id, rack id, rebalance timeout
            + kwire.varint_unsigned(len(topics) + 1) + b"".join(kwire.compact_string(t) for t in topics)
            + null + kwire.varint_unsigned(1) + kwire.EMPTY_TAGGED_FIELDS)  # assignor, owned: []
    r = kwire.Reader(c.request(API_CONSUMER_GROUP_HEARTBEAT, 0, body, flexible_header=True))
    r.int8()  # the response header's tagged fields
    r.int32()  # throttle time
    return r.int16()


def test_a_kip848_subscription_needs_describe_on_every_topic(broker_factory, tmp_path):
    d = tmp_path / "cgh-d0"
    users = {"admin": "admin-secret", "alice": ALICE}
    cmd = [str(corelog_bin()), "storage", "format", "--override", f"log.dirs={d}"]
    for name, pw in users.items():
        cmd += ["--add-scram", f"{MECHANISM}=[name={name},password={pw}]"]
    subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S, check=True)
    port = free_port()
    broker_factory({"log.dirs": str(d), "sasl.enabled.mechanisms": f"PLAIN,{MECHANISM}",
                    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    "super.users": "User:admin"}, extra_listeners={"SASL_PLAINTEXT": port})
    admin = AdminClient(conf(port, "admin", users["admin"]))
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in ("seen", "hidden")],
                                 operation_timeout=CLIENT_TIMEOUT_S).values():
        f.result(timeout=CLIENT_TIMEOUT_S)
    grants = [AclBinding(ResourceType.GROUP, "g", ResourcePatternType.LITERAL, "User:alice", "*",
                         AclOperation.READ, AclPermissionType.ALLOW),
              AclBinding(ResourceType.TOPIC, "seen", ResourcePatternType.LITERAL, "User:alice", "*",
                         AclOperation.READ, AclPermissionType.ALLOW)]
    for f in admin.create_acls(grants, request_timeout=CLIENT_TIMEOUT_S).values():
        f.result(timeout=CLIENT_TIMEOUT_S)
    with kwire.Conn(port) as c:
        assert plain_login(c, "alice", ALICE)[0] == 0
        assert consumer_group_heartbeat(c, "g", ["seen", "hidden"]) == TOPIC_AUTHORIZATION_FAILED
        assert consumer_group_heartbeat(c, "g", ["seen"]) == 0
