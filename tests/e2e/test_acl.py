"""ACLs (issue 12 item 4) with real clients: confluent-kafka's create/describe/delete_acls,
its producer and consumer refused and then let in, DENY over ALLOW, prefixed patterns,
Metadata hiding what a principal may not describe, persistence across a restart, the
`corelog acl` tool, and a three-member cluster enforcing one set of ACLs.

Clients log in with SCRAM-SHA-512 on a SASL_PLAINTEXT listener; `admin` is the super
user. The harness's PLAINTEXT listener is User:ANONYMOUS, which has no ACLs.
"""

import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

import kwire
from conftest import corelog_bin, free_port

CLIENT_TIMEOUT_S = 15
USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret", "eve": "eve-secret"}
MECHANISM = "SCRAM-SHA-512"
AUTHORIZER = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
              "super.users": "User:admin", "sasl.enabled.mechanisms": MECHANISM}


def format_dir(d):
    cmd = [str(corelog_bin()), "storage", "format", "--override", f"log.dirs={d}"]
    for name, pw in USERS.items():
        cmd += ["--add-scram", f"{MECHANISM}=[name={name},password={pw}]"]
    subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S, check=True)
    return d


def conf(port, user):
    return {"bootstrap.servers": f"127.0.0.1:{port}", "broker.address.family": "v4",
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": MECHANISM,
            "sasl.username": user, "sasl.password": USERS[user]}


def binding(name, principal, op, perm=AclPermissionType.ALLOW, rt=ResourceType.TOPIC,
            pattern=ResourcePatternType.LITERAL):
    return AclBinding(rt, name, pattern, principal, "*", op, perm)


def create_acls(port, *bindings, user="admin"):
    admin = AdminClient(conf(port, user))  # kept alive until the answers are in
    fs = admin.create_acls(list(bindings), request_timeout=CLIENT_TIMEOUT_S)
    for f in fs.values():
        f.result(timeout=CLIENT_TIMEOUT_S)


def describe_acls(port, flt, user="admin"):
    admin = AdminClient(conf(port, user))
    f = admin.describe_acls(flt, request_timeout=CLIENT_TIMEOUT_S)
    return sorted(f.result(timeout=CLIENT_TIMEOUT_S), key=str)


def topic_filter(name=None, pattern=ResourcePatternType.ANY):
    return AclBindingFilter(ResourceType.TOPIC if name else ResourceType.ANY, name, pattern, None, None,
                            AclOperation.ANY, AclPermissionType.ANY)


def produce(port, user, topic, n=3):
    """Delivery results: the error codes (None for delivered) of n records."""
    p = Producer({**conf(port, user), "message.timeout.ms": CLIENT_TIMEOUT_S * 1000, "retries": 0})
    codes = []
    for i in range(n):
        p.produce(topic, f"{user}-{i}".encode(), partition=0,
                  on_delivery=lambda err, msg: codes.append(err.code() if err else None))
    p.flush(CLIENT_TIMEOUT_S)
    assert len(codes) == n, codes
    return codes


def consume(port, user, topic, group, want):
    """(values, first error code) of a subscribing consumer in `group`."""
    c = Consumer({**conf(port, user), "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got, error = [], None
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    try:
        while len(got) < want and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                error = m.error().code()
                break
            got.append(m.value().decode())
    except KafkaException as e:
        error = e.args[0].code()
    c.close()
    return got, error


def visible_topics(port, user):
    md = AdminClient(conf(port, user)).list_topics(timeout=CLIENT_TIMEOUT_S)
    return {name for name, t in md.topics.items() if t.error is None}


@pytest.fixture
def secured(broker_factory, tmp_path):
    port = free_port()
    d = format_dir(tmp_path / "acl-d0")
    b = broker_factory({**AUTHORIZER, "log.dirs": str(d)}, extra_listeners={"SASL_PLAINTEXT": port})
    admin = AdminClient(conf(port, "admin"))
    fs = admin.create_topics([NewTopic(t, 1, 1) for t in ("t", "u", "pay-1")], operation_timeout=CLIENT_TIMEOUT_S)
    for f in fs.values():
        f.result(timeout=CLIENT_TIMEOUT_S)
    return b, port


def test_grants_denies_prefixes_metadata_and_restart(secured):
    b, port = secured
    ops = AclOperation
    # No ACL on t yet: alice is refused, and she sees no topic at all.
    assert produce(port, "alice", "t") == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    assert visible_topics(port, "alice") == set()
    create_acls(port, binding("t", "User:alice", ops.WRITE))
    assert produce(port, "alice", "t") == [None] * 3
    assert produce(port, "alice", "u") == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3

    # Only the super user changes ACLs.
    with pytest.raises(KafkaException) as refused:
        create_acls(port, binding("u", "User:alice", ops.WRITE), user="alice")
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED

    # bob consumes with group g only once he may READ both g and t.
    assert consume(port, "bob", "t", "g", 3)[1] in (KafkaError.GROUP_AUTHORIZATION_FAILED,
                                                      KafkaError.TOPIC_AUTHORIZATION_FAILED)
    create_acls(port, binding("g", "User:bob", ops.READ, rt=ResourceType.GROUP))
    assert consume(port, "bob", "t", "g", 3)[1] == KafkaError.TOPIC_AUTHORIZATION_FAILED
    create_acls(port, binding("t", "User:bob", ops.READ))
    assert consume(port, "bob", "t", "g", 3) == (["alice-0", "alice-1", "alice-2"], None)

    # A prefixed ALLOW for everyone, a literal DENY for alice: DENY wins for her only.
    create_acls(port, binding("pay-", "User:*", ops.WRITE, pattern=ResourcePatternType.PREFIXED),
                binding("pay-1", "User:alice", ops.WRITE, perm=AclPermissionType.DENY))
    assert produce(port, "eve", "pay-1") == [None] * 3
    assert produce(port, "alice", "pay-1") == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3

    # Metadata shows each principal what it may describe (WRITE and READ imply DESCRIBE).
    assert visible_topics(port, "alice") == {"t", "pay-1"}
    assert visible_topics(port, "eve") == {"pay-1"}
    assert visible_topics(port, "admin") >= {"t", "u", "pay-1"}

    # DescribeAcls: MATCH finds every binding that applies to a name; exact listing.
    match = describe_acls(port, topic_filter("pay-1", ResourcePatternType.MATCH))
    assert [(a.name, a.principal, a.permission_type) for a in match] == sorted(
        [("pay-", "User:*", AclPermissionType.ALLOW), ("pay-1", "User:alice", AclPermissionType.DENY)], key=str)
    everything = describe_acls(port, topic_filter())
    assert len(everything) == 5

    # The ACLs survive a restart.
    b.stop()
    b.start()
    assert describe_acls(port, topic_filter()) == everything

    # DeleteAcls answers what it removed; alice loses WRITE on t.
    admin = AdminClient(conf(port, "admin"))
    fs = admin.delete_acls(
        [AclBindingFilter(ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:alice", None,
                          AclOperation.ANY, AclPermissionType.ANY)], request_timeout=CLIENT_TIMEOUT_S)
    deleted = [r for f in fs.values() for r in f.result(timeout=CLIENT_TIMEOUT_S)]
    assert [(a.name, a.principal, a.operation) for a in deleted] == [("t", "User:alice", AclOperation.WRITE)]
    assert produce(port, "alice", "t") == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    assert len(describe_acls(port, topic_filter())) == 4


def acl_tool(port, tmp_path, *args, user="admin"):
    cfg = tmp_path / f"{user}.properties"
    cfg.write_text(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism={MECHANISM}\nsasl.username={user}\n"
                   f"sasl.password={USERS[user]}\n")
    cmd = [str(corelog_bin()), "--command-config", str(cfg), "acl", "--bootstrap-server", f"127.0.0.1:{port}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S * 2)


def test_the_acl_tool(secured, tmp_path):
    _, port = secured
    r = acl_tool(port, tmp_path, "--add", "--allow-principal", "User:alice", "--producer", "--topic", "u")
    assert r.returncode == 0, r.stderr
    pattern = "`ResourcePattern(resourceType=TOPIC, name=u, patternType=LITERAL)`"
    entries = [f" \t(principal=User:alice, host=*, operation={op}, permissionType=ALLOW) \n"
               for op in ("WRITE", "DESCRIBE", "CREATE")]
    # The broker lists a resource's ACLs in its own fixed order (by operation code).
    listed = [entries[0], entries[2], entries[1]]
    assert r.stdout.decode() == (f"Adding ACLs for resource {pattern}: \n" + "".join(entries) + "\n"
                                 f"Current ACLs for resource {pattern}: \n" + "".join(listed) + "\n")
    assert produce(port, "alice", "u") == [None] * 3
    r = acl_tool(port, tmp_path, "--list", "--topic", "u")
    assert r.stdout.decode() == f"Current ACLs for resource {pattern}: \n" + "".join(listed) + "\n", r.stderr
    r = acl_tool(port, tmp_path, "--remove", "--force", "--topic", "u")
    assert r.returncode == 0 and r.stdout.decode().startswith(f"Removed ACLs from resource {pattern}"), r.stderr
    assert produce(port, "alice", "u") == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    # Someone without ALTER on the cluster gets Kafka's error, named.
    r = acl_tool(port, tmp_path, "--add", "--allow-principal", "User:bob", "--operation", "Read", "--topic", "u",
                 user="bob")
    assert r.returncode == 1 and "ClusterAuthorizationFailed" in r.stderr.decode(), r.stderr


API_DESCRIBE_ACLS = 29
SECURITY_DISABLED = 54


def test_acl_apis_without_an_authorizer_answer_security_disabled(broker):
    # Raw DescribeAcls v1 (librdkafka drops this top-level error and answers an empty list).
    any_filter = (kwire.int8(1) + kwire.nullable_string(None) + kwire.int8(1) + kwire.nullable_string(None)
                  + kwire.nullable_string(None) + kwire.int8(1) + kwire.int8(1))
    with kwire.Conn(broker.port) as c:
        r = kwire.Reader(c.request(API_DESCRIBE_ACLS, 1, any_filter))
    assert (r.int32(), r.int16(), r.string()) == (0, SECURITY_DISABLED, "No Authorizer is configured.")
    # And every request is allowed, as before.
    assert produce_plain(broker.bootstrap, "acl-open") == [None]


def produce_plain(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "broker.address.family": "v4",
                  "message.timeout.ms": CLIENT_TIMEOUT_S * 1000})
    codes = []
    p.produce(topic, b"x", on_delivery=lambda err, msg: codes.append(err.code() if err else None))
    p.flush(CLIENT_TIMEOUT_S)
    return codes


# --- a cluster: ACLs are records of the metadata quorum ---------------------------------

CLUSTER_SIZE = 3
CONVERGE_S = 10


def tool(port, tmp_path, user, *args):
    """A toolbox command as `user`, on one member's SASL listener."""
    cfg = tmp_path / f"{user}.properties"
    cfg.write_text(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism={MECHANISM}\nsasl.username={user}\n"
                   f"sasl.password={USERS[user]}\n")
    cmd = [str(corelog_bin()), "--command-config", str(cfg), *args]
    return subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S * 2)


def secured_cluster(factory):
    """Three combined-mode members, each with a SASL_PLAINTEXT listener, formatted with
    the same SCRAM users (the quorum takes them once). The members replicate over the
    PLAINTEXT listener as User:ANONYMOUS, so that principal is a super user, as Kafka's
    inter-broker principal must be (test_cluster_security.py replicates over SASL)."""
    from conftest import Broker, _BROKERS_BY_NODE
    controller_ports = [free_port() for _ in range(CLUSTER_SIZE)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(controller_ports))
    members = []
    for i, cport in enumerate(controller_ports):
        workdir = factory.base_dir / f"member{i + 1}"
        d = format_dir(workdir / "d0")
        settings = {**AUTHORIZER, "super.users": "User:admin;User:ANONYMOUS", "log.dirs": str(d),
                    "process.roles": "broker,controller", "controller.quorum.voters": voters}
        b = Broker(workdir, overrides=settings, smp=1, node_id=i + 1, controller_port=cport,
                   extra_listeners={"SASL_PLAINTEXT": free_port()})
        factory.brokers.append(b)
        _BROKERS_BY_NODE.setdefault(factory.node_id, []).append(b)
        members.append(b.start())
    return members


def until(check, what):
    deadline = time.monotonic() + CONVERGE_S
    while True:
        got = check()
        if got is True or time.monotonic() > deadline:
            assert got is True, f"{what}: {got}"
            return
        time.sleep(0.2)


def test_every_cluster_member_enforces_the_same_acls(broker_factory, tmp_path):
    members = secured_cluster(broker_factory)
    sasl = [f"127.0.0.1:{b.extra_ports['SASL_PLAINTEXT']}" for b in members]
    for t in ("t", "u"):
        r = tool(None, tmp_path, "admin", "topic", "create", t, "--partitions", "1", "-b", sasl[0])
        assert r.returncode == 0, r.stderr
    r = tool(None, tmp_path, "admin", "acl", "--add", "--allow-principal", "User:alice", "--operation", "Write",
             "--topic", "t", "-b", sasl[1])
    assert r.returncode == 0, r.stderr
    listed = ("Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=t, patternType=LITERAL)`: \n"
              " \t(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW) \n\n")

    def everywhere(user, args, want):
        def check():
            outs = [tool(None, tmp_path, user, *args, "-b", b).stdout.decode() for b in sasl]
            return True if outs == [want] * len(sasl) else outs
        return check

    until(everywhere("admin", ["acl", "--list"], listed), "the ACL on every member")
    # Each member's Metadata shows alice only t (WRITE implies DESCRIBE).
    until(everywhere("alice", ["topic", "list"], "t\tpartitions=1\treplication=1\n"), "alice's topics on every member")
    r = tool(None, tmp_path, "admin", "acl", "--remove", "--topic", "t", "-b", sasl[2])
    assert r.returncode == 0, r.stderr
    until(everywhere("admin", ["acl", "--list"], ""), "no ACL left on any member")
    until(everywhere("alice", ["topic", "list"], ""), "alice sees nothing on any member")
