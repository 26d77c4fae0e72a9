"""Follower fetching (KIP-392) and leader hints (KIP-951) on three loopback brokers in
racks a, b and c.

- A confluent-kafka consumer with `client.rack=c` reads every record exactly, tailing
  new ones too, and the follower in rack c served those reads: its
  `corelog_follower_fetched_bytes_total` counter holds at least the records' bytes,
  the other brokers' hold zero.
- A Produce (v10) or Fetch (v12, v16) sent to a broker that is not the partition's
  leader answers NOT_LEADER_OR_FOLLOWER with the leader's id and epoch in the
  partition's `current_leader` tagged field, and (Produce v10, Fetch v16) the leader's
  endpoint in the response's `node_endpoints`; checked on the raw wire.
"""

import json
import struct
import time
import urllib.request

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

import kwire
from clients import wait_until
from conftest import fresh_topic

ADMIN_TIMEOUT_S = 10
SETTLE_S = 30
CONSUME_S = 30
RACKS = ["a", "b", "c"]
RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
SETTINGS = {
    "replica.selector.class": RACK_AWARE,
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
}
RECORDS = 200
VALUE_BYTES = 100
ERR_NOT_LEADER_OR_FOLLOWER = 6
FOLLOWER_BYTES = "corelog_follower_fetched_bytes_total"


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def racked_cluster(broker_factory):
    members = broker_factory.cluster(3, SETTINGS, member_overrides=[{"broker.rack": r} for r in RACKS])
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3],
               SETTLE_S, "three live brokers")
    return members


def create(members, topic, replicas):
    """One partition on `replicas` (the first leads); waits until every member's
    Metadata shows that leader and the whole ISR."""
    client = admin(members[0])  # kept alive until the future resolves
    spec = NewTopic(topic, num_partitions=1, replica_assignment=[replicas])
    client.create_topics([spec], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)

    def settled(m):
        try:
            t = admin(m).list_topics(topic, timeout=ADMIN_TIMEOUT_S).topics.get(topic)
        except KafkaException:
            return False
        return (t is not None and t.error is None and 0 in t.partitions
                and t.partitions[0].leader == replicas[0] and sorted(t.partitions[0].isrs) == sorted(replicas))
    for m in members:
        wait_until(lambda: settled(m), SETTLE_S, f"{topic} led by {replicas[0]} with the full ISR on {m.node_id}")


def counter(broker, name):
    """A per-shard counter from /metrics, summed over shards."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/metrics", timeout=5) as r:
        lines = [line for line in r.read().decode().splitlines() if line.startswith(name + "{")]
    assert lines, f"{name} not in /metrics"
    return sum(int(float(line.split()[-1])) for line in lines)


def replication_waits(broker):
    """How many acks=all batches waited for the ISR (stage produce.replication_wait)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/v1/profile", timeout=5) as r:
        stages = {(s["api"], s["stage"]): s for s in json.loads(r.read())["stages"]}
    return stages[("produce", "replication_wait")]["count"]


def produce(bootstrap, topic, values):
    """acks=all, idempotent; returns {offset: value}."""
    acked, errors = {}, []
    p = Producer({"bootstrap.servers": bootstrap, "broker.address.family": "v4", "acks": "all",
                  "enable.idempotence": True, "linger.ms": 5})
    for v in values:
        p.produce(topic, v, partition=0,
                  on_delivery=lambda e, m: errors.append(e) if e else acked.__setitem__(m.offset(), m.value()))
    assert p.flush(30) == 0
    assert errors == []
    return acked


def read(consumer, count):
    """`count` records from an assigned consumer: {offset: value}; errors fail."""
    got = {}
    deadline = time.monotonic() + CONSUME_S
    while len(got) < count:
        assert time.monotonic() < deadline, f"{len(got)} of {count} records after {CONSUME_S} s"
        for m in consumer.consume(100, 0.2):
            if m.error() is None:
                assert m.offset() not in got, f"offset {m.offset()} read twice"
                got[m.offset()] = m.value()
            elif m.error().code() != KafkaError._PARTITION_EOF:
                raise AssertionError(f"consumer error {m.error()}")
    return got


def test_consumer_in_rack_c_reads_everything_from_the_follower_in_rack_c(broker_factory):
    members = racked_cluster(broker_factory)
    topic = fresh_topic("ffollow")
    create(members, topic, [1, 2, 3])
    before = [counter(m, FOLLOWER_BYTES) for m in members]
    assert before == [0, 0, 0]
    first = [b"first-%05d-" % i + b"x" * (VALUE_BYTES - 12) for i in range(RECORDS)]
    acked = produce(members[0].bootstrap, topic, first)
    assert sorted(acked) == list(range(RECORDS))

    c = Consumer({"bootstrap.servers": members[0].bootstrap, "broker.address.family": "v4",
                  "group.id": "ffollow-unused", "enable.auto.commit": False, "client.rack": "c",
                  "enable.partition.eof": True, "auto.offset.reset": "error", "fetch.wait.max.ms": 100})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = read(c, RECORDS)
        assert got == acked
        # Records produced while the consumer tails the follower arrive too, exactly.
        second = [b"second-%05d-" % i + b"y" * (VALUE_BYTES - 13) for i in range(RECORDS)]
        more = produce(members[0].bootstrap, topic, second)
        assert sorted(more) == list(range(RECORDS, 2 * RECORDS))
        got2 = read(c, RECORDS)
        assert got2 == more
        # Nothing beyond what was produced.
        extra = [m for m in c.consume(100, 1.0) if m.error() is None]
        assert extra == []
    finally:
        c.close()
    served = [counter(m, FOLLOWER_BYTES) for m in members]
    assert served[0] == 0 and served[1] == 0, served
    assert served[2] >= 2 * RECORDS * VALUE_BYTES, served
    # The leader's stage profile has the acks=all replication wait; the followers
    # took no produce, so theirs has none.
    waits = [replication_waits(m) for m in members]
    assert waits[0] > 0 and waits[1] == waits[2] == 0, waits


def test_a_consumer_without_a_rack_or_in_the_leaders_rack_reads_from_the_leader(broker_factory):
    members = racked_cluster(broker_factory)
    topic = fresh_topic("fleader")
    create(members, topic, [1, 2, 3])
    acked = produce(members[0].bootstrap, topic, [b"v%d" % i for i in range(50)])
    for rack in (None, "a", "nowhere"):
        config = {"bootstrap.servers": members[1].bootstrap, "broker.address.family": "v4",
                  "group.id": "fleader-unused", "enable.auto.commit": False, "enable.partition.eof": True,
                  "auto.offset.reset": "error"}
        if rack is not None:
            config["client.rack"] = rack
        c = Consumer(config)
        try:
            c.assign([TopicPartition(topic, 0, 0)])
            assert read(c, 50) == acked
        finally:
            c.close()
    assert [counter(m, FOLLOWER_BYTES) for m in members] == [0, 0, 0]


# --- KIP-951 on the raw wire ------------------------------------------------------------

def compact_nullable_string(r):
    n = uvarint(r) - 1
    return None if n < 0 else r._take(n).decode()


def uvarint(r):
    value, shift = 0, 0
    while True:
        b = r.int8() & 0xFF
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value
        shift += 7


def tagged_fields(r):
    """{tag: raw bytes} of one tagged-field section."""
    out = {}
    for _ in range(uvarint(r)):
        tag = uvarint(r)
        out[tag] = r._take(uvarint(r))
    return out


def leader_and_epoch(raw):
    r = kwire.Reader(raw)
    leader, epoch = r.int32(), r.int32()
    assert tagged_fields(r) == {}
    r.expect_end()
    return leader, epoch


def node_endpoints(raw):
    r = kwire.Reader(raw)
    out = []
    for _ in range(uvarint(r) - 1):
        node = r.int32()
        host = compact_nullable_string(r)
        port = r.int32()
        rack = compact_nullable_string(r)
        assert tagged_fields(r) == {}
        out.append((node, host, port, rack))
    r.expect_end()
    return out


def produce_v10(conn, topic):
    batch = kwire.record_batch([(None, b"hint", [], 0)], int(time.time() * 1000))
    body = (kwire.varint_unsigned(0)  # transactional_id: null
            + kwire.int16(1) + kwire.int32(5000)
            + kwire.varint_unsigned(2) + kwire.compact_string(topic)
            + kwire.varint_unsigned(2) + kwire.int32(0) + kwire.varint_unsigned(len(batch) + 1) + batch
            + b"\x00" + b"\x00" + b"\x00")
    r = kwire.Reader(conn.request(kwire.API_PRODUCE, 10, body, flexible_header=True))
    assert tagged_fields(r) == {}  # response header v1
    assert uvarint(r) - 1 == 1
    assert compact_nullable_string(r) == topic
    assert uvarint(r) - 1 == 1
    index, error = r.int32(), r.int16()
    r.int64(), r.int64(), r.int64()  # base offset, log append time, log start offset
    assert uvarint(r) - 1 == 0  # record_errors
    compact_nullable_string(r)  # error_message
    partition_tags = tagged_fields(r)
    assert tagged_fields(r) == {}  # topic
    r.int32()  # throttle_time_ms
    response_tags = tagged_fields(r)
    r.expect_end()
    return index, error, partition_tags, response_tags


def fetch_flexible(conn, version, topic, topic_id):
    """A consumer Fetch (v12 by name, v13+ by id) of partition 0 at offset 0."""
    name_or_id = topic_id if version >= 13 else kwire.compact_string(topic)
    partition = (kwire.int32(0) + kwire.int32(-1) + kwire.int64(0) + kwire.int32(-1) + kwire.int64(-1)
                 + kwire.int32(1 << 20) + b"\x00")
    body = ((kwire.int32(-1) if version < 15 else b"")  # replica_id (ReplicaState tag from v15)
            + kwire.int32(0) + kwire.int32(1) + kwire.int32(1 << 20) + kwire.int8(0)
            + kwire.int32(0) + kwire.int32(-1)
            + kwire.varint_unsigned(2) + name_or_id + kwire.varint_unsigned(2) + partition + b"\x00"
            + kwire.varint_unsigned(1)  # forgotten topics
            + kwire.compact_string("")  # rack_id
            + b"\x00")
    r = kwire.Reader(conn.request(kwire.API_FETCH, version, body, flexible_header=True))
    assert tagged_fields(r) == {}
    r.int32()
    assert r.int16() == 0
    r.int32()
    assert uvarint(r) - 1 == 1
    if version >= 13:
        assert r._take(16) == topic_id
    else:
        assert compact_nullable_string(r) == topic
    assert uvarint(r) - 1 == 1
    index, error = r.int32(), r.int16()
    r.int64(), r.int64(), r.int64()
    aborted = uvarint(r) - 1
    assert aborted <= 0
    assert r.int32() == -1  # preferred_read_replica
    assert uvarint(r) - 1 == 0  # no records with an error
    partition_tags = tagged_fields(r)
    assert tagged_fields(r) == {}
    response_tags = tagged_fields(r)
    r.expect_end()
    return index, error, partition_tags, response_tags


def topic_id_bytes(broker, topic):
    client = admin(broker)
    desc = client.describe_topics(TopicCollection([topic]))[topic].result(ADMIN_TIMEOUT_S)
    uid = desc.topic_id
    return struct.pack(">qq", uid.get_most_significant_bits(), uid.get_least_significant_bits())


def test_not_leader_answers_name_the_leader_and_where_it_listens(broker_factory):
    members = racked_cluster(broker_factory)
    topic = fresh_topic("hint")
    create(members, topic, [1])
    topic_id = topic_id_bytes(members[0], topic)
    leader_endpoint = [(1, "127.0.0.1", members[0].port, "a")]
    with kwire.Conn(members[1].port) as conn:
        index, error, ptags, rtags = produce_v10(conn, topic)
        assert (index, error) == (0, ERR_NOT_LEADER_OR_FOLLOWER)
        assert set(ptags) == {0}
        leader, epoch = leader_and_epoch(ptags[0])
        assert leader == 1 and epoch >= 0
        assert set(rtags) == {0}
        assert node_endpoints(rtags[0]) == leader_endpoint

        # Fetch: current_leader from v12 (partition tag 1), node_endpoints from v16.
        for version in (12, 15, 16):
            index, error, ptags, rtags = fetch_flexible(conn, version, topic, topic_id)
            assert (index, error) == (0, ERR_NOT_LEADER_OR_FOLLOWER), version
            assert set(ptags) == {1}, version
            assert leader_and_epoch(ptags[1]) == (1, epoch), version
            if version >= 16:
                assert set(rtags) == {0}
                assert node_endpoints(rtags[0]) == leader_endpoint
            else:
                assert rtags == {}, version
    # The leader's own answers carry no hint.
    with kwire.Conn(members[0].port) as conn:
        index, error, ptags, rtags = produce_v10(conn, topic)
        assert (index, error, ptags, rtags) == (0, 0, {}, {})
