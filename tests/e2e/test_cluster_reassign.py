"""Partition reassignment (issue 10 item 4, KIP-455) on three loopback brokers, driven
by `corelog topic reassign` (kafka-reassign-partitions.sh's modes and JSON) and the raw
AlterPartitionReassignments / ListPartitionReassignments APIs: RF=1 grown to RF=3 with
every replica holding the same batches, a move that takes the leader away under a
running acks=all producer (every record read back exactly), the old broker's copy
deleted, cancel, Kafka's error codes, and throttled catch-up (the follower's throttle, and
the leader's alone)."""

import json
import struct
import threading
import time
import urllib.request

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

import kwire
from clients import wait_until
from conftest import fresh_topic
from test_cli_topic import cli

ADMIN_TIMEOUT_S = 10
SETTLE_S = 30
CONSUME_S = 30
SETTINGS = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
}
API_ALTER_PARTITION_REASSIGNMENTS = 45
API_LIST_PARTITION_REASSIGNMENTS = 46
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_INVALID_REPLICA_ASSIGNMENT = 39
ERR_NO_REASSIGNMENT_IN_PROGRESS = 85


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def start_cluster(broker_factory):
    members = broker_factory.cluster(3, overrides=SETTINGS)
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3],
               SETTLE_S, "three live brokers")
    return members, {b.node_id: b for b in members}


def create(broker, topic):
    """One partition, one replica: returns the broker the quorum placed it on."""
    client = admin(broker)  # kept alive until the answer is in
    futures = client.create_topics([NewTopic(topic, 1, 1)], request_timeout=ADMIN_TIMEOUT_S)
    futures[topic].result(timeout=ADMIN_TIMEOUT_S)
    # The leader as first seen: the AdminClient may ask another member next, one that
    # has not applied the new topic yet.
    seen = []

    def led():
        p = partition0(broker, topic)
        if p is not None and p[0] > 0:
            seen.append(p[0])
        return bool(seen)

    wait_until(led, SETTLE_S, "a leader")
    return seen[0]


def partition0(broker, topic):
    """(leader, replicas in order, sorted isr) of partition 0 in this broker's Metadata."""
    t = admin(broker).list_topics(timeout=ADMIN_TIMEOUT_S).topics.get(topic)
    if t is None or t.error is not None or 0 not in t.partitions:
        return None
    p = t.partitions[0]
    return p.leader, list(p.replicas), sorted(p.isrs)


def producer(broker):
    return Producer({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4", "acks": "all",
                     "enable.idempotence": True, "message.timeout.ms": 30000, "linger.ms": 5})


def produce(broker, topic, values):
    acked, errors = {}, []
    p = producer(broker)
    for v in values:
        p.produce(topic, v, partition=0,
                  on_delivery=lambda err, msg: errors.append(err) if err else acked.__setitem__(msg.value(), msg.offset()))
    assert p.flush(60) == 0
    assert errors == []
    return [acked[v] for v in values]


def consume_all(broker, topic, count, start=0):
    """(offset, value) of the first `count` records from `start` (OFFSET_BEGINNING: the
    log start offset)."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4",
                  "group.id": fresh_topic("g"), "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, start)])
    got = []
    deadline = time.monotonic() + CONSUME_S
    while len(got) < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append((m.offset(), m.value()))
    c.close()
    return got


def plan_file(tmp_path, name, moves):
    path = tmp_path / name
    path.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": t, "partition": p, "replicas": r} for t, p, r in moves]}))
    return str(path)


def reassign(broker, *args):
    return cli(broker, "reassign", *args)


def wait_completed(broker, plan, what):
    """Polls --verify until every partition of the plan is completed; returns its output."""
    out = {}

    def done():
        r = reassign(broker, "--verify", "--reassignment-json-file", plan)
        assert r.returncode == 0, r.stderr
        out["text"] = r.stdout
        return "still in progress" not in r.stdout

    wait_until(done, SETTLE_S, what)
    return out["text"]


def stored_batches(broker, topic):
    """The record batches of <topic>-0 as stored in this broker's segment files, in
    order (each batch's bytes as written, from its base offset to its end)."""
    d = broker.log_dirs[0] / f"{topic}-0"
    batches = []
    for seg in sorted(d.glob("*.log")):
        data = seg.read_bytes()
        at = 0
        while at + 12 <= len(data):
            (length,) = struct.unpack(">i", data[at + 8:at + 12])
            if length <= 0 or at + 12 + length > len(data):
                break
            batches.append(data[at:at + 12 + length])
            at += 12 + length
    return batches


def hosts(broker, topic):
    return (broker.log_dirs[0] / f"{topic}-0").is_dir()


# --- raw APIs ---------------------------------------------------------------------------

def alter_raw(conn, topic, partitions):
    """AlterPartitionReassignments v0: {partition: replicas or None}; returns {partition: error}."""
    parts = b"".join(
        kwire.int32(p) + (kwire.varint_unsigned(0) if r is None else
                          kwire.varint_unsigned(len(r) + 1) + b"".join(kwire.int32(b) for b in r))
        + kwire.EMPTY_TAGGED_FIELDS
        for p, r in partitions.items())
    body = (kwire.int32(30000) + kwire.varint_unsigned(2) + kwire.compact_string(topic)
            + kwire.varint_unsigned(len(partitions) + 1) + parts + kwire.EMPTY_TAGGED_FIELDS
            + kwire.EMPTY_TAGGED_FIELDS)
    resp = conn.request(API_ALTER_PARTITION_REASSIGNMENTS, 0, body, flexible_header=True)
    r = Reader(resp)
    r.tagged()  # response header v1
    r.int32()  # throttle
    assert r.int16() == 0
    r.compact_nullable_string()
    out = {}
    for _ in range(r.uvarint() - 1):
        assert r.compact_nullable_string() == topic
        for _ in range(r.uvarint() - 1):
            p = r.int32()
            out[p] = r.int16()
            r.compact_nullable_string()
            r.tagged()
        r.tagged()
    return out


def list_raw(conn):
    """ListPartitionReassignments v0 of every topic: {(topic, p): (replicas, adding, removing)}."""
    body = kwire.int32(30000) + kwire.varint_unsigned(0) + kwire.EMPTY_TAGGED_FIELDS
    r = Reader(conn.request(API_LIST_PARTITION_REASSIGNMENTS, 0, body, flexible_header=True))
    r.tagged()
    r.int32()
    assert r.int16() == 0
    r.compact_nullable_string()
    out = {}
    for _ in range(r.uvarint() - 1):
        topic = r.compact_nullable_string()
        for _ in range(r.uvarint() - 1):
            p = r.int32()
            lists = tuple([r.int32() for _ in range(r.uvarint() - 1)] for _ in range(3))
            r.tagged()
            out[(topic, p)] = lists
        r.tagged()
    return out


class Reader(kwire.Reader):
    def uvarint(self):
        shift, value = 0, 0
        while True:
            (b,) = self._take(1)
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def compact_nullable_string(self):
        n = self.uvarint()
        return None if n == 0 else self._take(n - 1).decode()

    def tagged(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self._take(self.uvarint())


# --- tests ------------------------------------------------------------------------------

def test_grow_move_off_the_leader_cancel_and_errors(broker_factory, tmp_path):
    members, by_id = start_cluster(broker_factory)
    topic = fresh_topic("moved")
    a = create(members[0], topic)
    b, c = [i for i in (1, 2, 3) if i != a]
    first = [f"a{i}".encode() for i in range(300)]
    assert produce(members[0], topic, first) == list(range(300))

    # RF=1 -> RF=3: the two added replicas fetch, join the ISR, and it completes.
    grow = plan_file(tmp_path, "grow.json", [(topic, 0, [a, b, c])])
    r = reassign(members[1], "--execute", "--reassignment-json-file", grow)
    assert r.returncode == 0, r.stderr
    assert f'{{"topic":"{topic}","partition":0,"replicas":[{a}],"log_dirs":["any"]}}' in r.stdout
    assert f"Successfully started partition reassignment for {topic}-0" in r.stdout
    assert f"Reassignment of partition {topic}-0 is completed." in wait_completed(members[1], grow, "RF=3")
    wait_until(lambda: partition0(members[2], topic) == (a, [a, b, c], [1, 2, 3]), SETTLE_S, "ISR of three")
    # Every replica holds exactly the leader's batches.
    leader_batches = stored_batches(by_id[a], topic)
    assert len(leader_batches) >= 1
    wait_until(lambda: all(stored_batches(by_id[x], topic) == leader_batches for x in (b, c)), SETTLE_S,
               "identical replicas")
    assert reassign(members[0], "--list").stdout == "No partition reassignments found.\n"

    # Move off the leader (a) while a producer runs: leadership goes to c, the
    # producer carries on, every acknowledged record is read back at its offset.
    acked, errors, stop = {}, [], threading.Event()

    def run():
        p = producer(members[1])
        i = 0
        while not stop.is_set():
            v = f"b{i}".encode()
            p.produce(topic, v, partition=0,
                      on_delivery=lambda err, msg: errors.append(err) if err else acked.__setitem__(msg.offset(), msg.value()))
            p.poll(0)
            i += 1
            time.sleep(0.005)
        assert p.flush(60) == 0

    t = threading.Thread(target=run)
    t.start()
    try:
        time.sleep(0.5)
        move = plan_file(tmp_path, "move.json", [(topic, 0, [c, b])])
        r = reassign(members[1], "--execute", "--reassignment-json-file", move)
        assert r.returncode == 0, r.stderr
        wait_completed(members[1], move, "moved to [c, b]")
        wait_until(lambda: partition0(members[1], topic) == (c, [c, b], sorted([b, c])), SETTLE_S, "leader c")
        time.sleep(1.0)
    finally:
        stop.set()
        t.join(90)
    assert errors == []
    assert len(acked) > 50
    expected = list(enumerate(first)) + sorted(acked.items())
    assert consume_all(members[2], topic, len(expected)) == expected
    # The broker moved off deletes its copy; the others keep theirs.
    wait_until(lambda: not hosts(by_id[a], topic), SETTLE_S, "the old leader drops its replica")
    assert hosts(by_id[b], topic) and hosts(by_id[c], topic)

    # A reassignment onto a dead broker stays in progress: listed, described, cancelled.
    by_id[a].kill9()
    alive = [by_id[b], by_id[c]]
    back = plan_file(tmp_path, "back.json", [(topic, 0, [c, b, a])])
    r = reassign(alive[0], "--execute", "--reassignment-json-file", back)
    assert r.returncode == 0, r.stderr
    r = reassign(alive[0], "--verify", "--reassignment-json-file", back)
    assert f"Reassignment of partition {topic}-0 is still in progress." in r.stdout
    assert f"{topic}-0: replicas: {c},{b},{a}. adding: {a}. removing: ." in reassign(alive[1], "--list").stdout
    with kwire.Conn(alive[1].port) as conn:
        assert list_raw(conn) == {(topic, 0): ([c, b, a], [a], [])}
    # describe asks every live broker for its log dirs: wait until the dead one is fenced.
    wait_until(lambda: a not in admin(alive[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers, SETTLE_S,
               "the killed broker fenced")
    d = cli(alive[0], "describe", topic)
    assert f"\tadding_replicas=[{a}]\tremoving_replicas=[]" in d.stdout, d.stdout
    r = reassign(alive[0], "--cancel", "--reassignment-json-file", back)
    assert r.returncode == 0, r.stderr
    assert f"Successfully cancelled partition reassignment for {topic}-0" in r.stdout
    # The cancel is answered once the controller committed it; the broker asked next
    # applies it from the metadata log a moment later.
    wait_until(lambda: partition0(alive[0], topic) == (c, [c, b], sorted([b, c])), SETTLE_S,
               "the cancelled reassignment's replicas")
    wait_until(lambda: "adding_replicas" not in cli(alive[0], "describe", topic).stdout, SETTLE_S,
               "describe without the cancelled reassignment")

    # Kafka's errors, per partition.
    with kwire.Conn(alive[0].port) as conn:
        assert alter_raw(conn, topic, {0: None}) == {0: ERR_NO_REASSIGNMENT_IN_PROGRESS}
        assert alter_raw(conn, topic, {0: [b, b], 1: [b], 2: [], 3: None}) == {
            0: ERR_INVALID_REPLICA_ASSIGNMENT, 1: ERR_UNKNOWN_TOPIC_OR_PARTITION,
            2: ERR_UNKNOWN_TOPIC_OR_PARTITION, 3: ERR_UNKNOWN_TOPIC_OR_PARTITION}
        assert alter_raw(conn, topic, {0: [b, 9]}) == {0: ERR_INVALID_REPLICA_ASSIGNMENT}
        assert alter_raw(conn, topic, {0: []}) == {0: ERR_INVALID_REPLICA_ASSIGNMENT}
        assert alter_raw(conn, "no-such-topic", {0: [b]}) == {0: ERR_UNKNOWN_TOPIC_OR_PARTITION}
    r = reassign(alive[0], "--cancel", "--reassignment-json-file", back)
    assert r.returncode == 1 and "NoReassignmentInProgress" in r.stderr, (r.stdout, r.stderr)
    assert partition0(alive[0], topic) == (c, [c, b], sorted([b, c]))


def configs_of(broker, kind, name):
    client = admin(broker)
    resource = ConfigResource(kind, name)
    return {k: v.value for k, v in client.describe_configs([resource])[resource].result(ADMIN_TIMEOUT_S).items()}


def timed_move(broker, plan, *extra):
    started = time.monotonic()
    r = reassign(broker, "--execute", "--reassignment-json-file", plan, *extra)
    assert r.returncode == 0, r.stderr
    return r, started


def test_throttle_slows_the_catch_up_and_verify_clears_it(broker_factory, tmp_path):
    members, by_id = start_cluster(broker_factory)
    payload = bytes(10_000)
    fast_topic, slow_topic = fresh_topic("fast"), fresh_topic("slow")
    a = create(members[0], fast_topic)
    s = create(members[0], slow_topic)
    values = [payload + i.to_bytes(4, "big") for i in range(300)]  # 3 MB each
    produce(by_id[a], fast_topic, values)
    produce(by_id[s], slow_topic, values)

    fast = plan_file(tmp_path, "fast.json", [(fast_topic, 0, [a, [i for i in (1, 2, 3) if i != a][0]])])
    _, started = timed_move(members[1], fast)
    wait_completed(members[1], fast, "unthrottled catch-up")
    fast_s = time.monotonic() - started

    target = [i for i in (1, 2, 3) if i != s][-1]
    slow = plan_file(tmp_path, "slow.json", [(slow_topic, 0, [s, target])])
    r, started = timed_move(members[1], slow, "--throttle", "500000")
    assert "The inter-broker throttle limit was set to 500000 B/s" in r.stdout
    # While it runs: the rates and throttled replicas are set and described.
    assert configs_of(by_id[target], "broker", str(target))["follower.replication.throttled.rate"] == "500000"
    topic_configs = configs_of(members[0], "topic", slow_topic)
    assert topic_configs["follower.replication.throttled.replicas"] == f"0:{target}"
    assert topic_configs["leader.replication.throttled.replicas"] == f"0:{s}"
    out = wait_completed(members[1], slow, "throttled catch-up")
    slow_s = time.monotonic() - started
    # 3 MB at 0.5 MB/s takes seconds; unthrottled it is a fraction of that.
    print(f"reassign catch-up of 3 MB: unthrottled {fast_s:.2f} s, throttled to 0.5 MB/s {slow_s:.2f} s")
    assert slow_s > 2 * fast_s, (slow_s, fast_s)
    assert "Clearing broker-level throttles on brokers 1,2,3" in out
    assert "follower.replication.throttled.rate" not in configs_of(by_id[target], "broker", str(target))
    assert "follower.replication.throttled.replicas" not in configs_of(members[0], "topic", slow_topic)
    assert consume_all(by_id[target] if partition0(members[0], slow_topic)[0] == target else by_id[s],
                       slow_topic, 300) == list(enumerate(values))


def test_new_replicas_start_at_the_leaders_log_start_and_keep_deleted_records_deleted(broker_factory, tmp_path):
    """Replicas added after DeleteRecords cannot fetch from offset 0: each restarts its
    log at the leader's log start offset (Kafka's truncateFullyAndStartAt), inside a
    batch when the start falls in one, and follows the leader's log start so that the
    deleted records stay deleted once it leads."""
    members, by_id = start_cluster(broker_factory)
    topic = fresh_topic("trimmed")
    a = create(members[0], topic)
    b, c = [i for i in (1, 2, 3) if i != a]
    values = [f"v{i}".encode() for i in range(300)]
    assert produce(members[0], topic, values) == list(range(300))
    r = cli(members[0], "delete-records", topic, "--partition", "0", "--offset", "151")
    assert r.returncode == 0, r.stderr
    assert "151" in r.stdout, r.stdout

    grow = plan_file(tmp_path, "grow.json", [(topic, 0, [a, b, c])])
    r = reassign(members[1], "--execute", "--reassignment-json-file", grow)
    assert r.returncode == 0, r.stderr
    assert f"Reassignment of partition {topic}-0 is completed." in wait_completed(members[1], grow, "RF=3")
    wait_until(lambda: partition0(members[1], topic) == (a, [a, b, c], [1, 2, 3]), SETTLE_S, "ISR of three")

    # The leader dies: a new replica leads, and serves exactly offsets 151..299.
    by_id[a].kill9()
    alive = by_id[b]
    wait_until(lambda: (partition0(alive, topic) or (-1,))[0] in (b, c), SETTLE_S, "a new leader")
    more = [f"w{i}".encode() for i in range(20)]
    assert produce(alive, topic, more) == list(range(300, 320))
    expected = [(o, values[o]) for o in range(151, 300)] + [(300 + i, v) for i, v in enumerate(more)]
    assert consume_all(alive, topic, len(expected), start=OFFSET_BEGINNING) == expected


LEADER_THROTTLED_BYTES = "corelog_leader_replication_throttled_bytes_total"
LEADER_THROTTLED_READS = "corelog_leader_replication_throttled_reads_total"


def counter(broker, name):
    """A per-shard counter from /metrics, summed over shards."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/metrics", timeout=5) as r:
        lines = [line for line in r.read().decode().splitlines() if line.startswith(name + "{")]
    assert lines, f"{name} not in /metrics"
    return sum(int(float(line.split()[-1])) for line in lines)


def set_configs(broker, kind, name, configs):
    resource = ConfigResource(kind, name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()])
    client = admin(broker)  # kept alive until the answer is in
    client.incremental_alter_configs([resource], request_timeout=ADMIN_TIMEOUT_S)[resource].result(ADMIN_TIMEOUT_S)


def test_the_leader_alone_throttles_what_it_sends_a_new_replica(broker_factory, tmp_path):
    """Only the leader-side configs (leader.replication.throttled.rate on the leader,
    leader.replication.throttled.replicas naming it): the catch-up of a replica added by
    a reassignment takes at least what the leader's token bucket allows, its throttle
    counters account for the bytes, and the reassignment completes with every record."""
    members, by_id = start_cluster(broker_factory)
    topic = fresh_topic("leader-throttled")
    leader = create(members[0], topic)
    target = [i for i in (1, 2, 3) if i != leader][0]
    # 1 MB in batches of at most 50 KB, so no single batch overshoots the budget by much.
    values = [bytes(10_000) + i.to_bytes(4, "big") for i in range(100)]
    p = Producer({"bootstrap.servers": by_id[leader].bootstrap, "broker.address.family": "v4", "acks": "all",
                  "linger.ms": 5, "batch.size": 50_000})
    for v in values:
        p.produce(topic, v, partition=0)
    assert p.flush(60) == 0
    rate = 200_000
    set_configs(by_id[leader], "broker", str(leader), {"leader.replication.throttled.rate": str(rate)})
    set_configs(members[0], "topic", topic, {"leader.replication.throttled.replicas": f"0:{leader}"})
    wait_until(lambda: configs_of(by_id[leader], "broker", str(leader)).get("leader.replication.throttled.rate")
               == str(rate), SETTLE_S, "the leader's rate in force")
    sent_before = counter(by_id[leader], LEADER_THROTTLED_BYTES)

    plan = plan_file(tmp_path, "grow.json", [(topic, 0, [leader, target])])
    _, started = timed_move(members[1], plan)
    wait_completed(members[1], plan, "leader-throttled catch-up")
    took_s = time.monotonic() - started
    payload = sum(len(v) for v in values)
    # The bucket starts with a second of the rate and lets the last read (at most a
    # second of it, or one 50-KB batch) go into debt: a floor no machine goes under.
    floor_s = (payload - 2 * rate - 50_000) / rate
    print(f"leader-throttled catch-up of {payload} B at {rate} B/s: {took_s:.2f} s (floor {floor_s:.2f} s)")
    assert took_s >= floor_s, (took_s, floor_s)
    assert counter(by_id[leader], LEADER_THROTTLED_BYTES) - sent_before >= payload
    assert counter(by_id[leader], LEADER_THROTTLED_READS) > 0
    # The new replica holds every record: it serves them once it leads.
    assert partition0(members[0], topic)[1:] == ([leader, target], sorted([leader, target]))
    by_id[leader].kill9()
    wait_until(lambda: (partition0(by_id[target], topic) or (-1,))[0] == target, SETTLE_S, "the new replica leading")
    assert consume_all(by_id[target], topic, len(values)) == list(enumerate(values))
