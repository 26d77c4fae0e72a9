"""OffsetForLeaderEpoch (v2, v3, raw wire): each partition's leader epoch cache answers
where an epoch ended, fences a caller's stale or future epoch like Kafka, and survives
a restart through leader-epoch-checkpoint."""

import kwire
from clients import create_topic
from conftest import fresh_topic

API_OFFSET_FOR_LEADER_EPOCH = 23
UNKNOWN_LEADER_EPOCH = 75


def request_body(version, topic, partitions):
    """partitions: [(partition, current_leader_epoch, leader_epoch)]"""
    body = kwire.int32(-1) if version >= 3 else b""  # replica id: a consumer
    items = [kwire.int32(p) + kwire.int32(current) + kwire.int32(epoch) for p, current, epoch in partitions]
    return body + kwire.array([kwire.string(topic) + kwire.array(items)])


def ask(broker, version, topic, partitions):
    """[(partition, error, leader_epoch, end_offset)] in request order."""
    with kwire.Conn(broker.port) as conn:
        body = conn.request(API_OFFSET_FOR_LEADER_EPOCH, version, request_body(version, topic, partitions))
    r = kwire.Reader(body)
    r.int32()  # throttle time
    out = []

    def partition():
        error, index, epoch, end = r.int16(), r.int32(), r.int32(), r.int64()
        out.append((index, error, epoch, end))

    r.array(lambda: (r.string(), r.array(partition)))
    r.expect_end()
    return out


def produce(broker, topic, partition, count):
    batch = kwire.record_batch([(None, b"v%d" % i, [], i) for i in range(count)], 1_700_000_000_000)
    with kwire.Conn(broker.port) as conn:
        error, base = kwire.produce(conn, 8, topic, partition, batch)
    assert error == 0, error
    return base


def test_end_offsets_fencing_and_restart(broker):
    topic = fresh_topic("ofle")
    create_topic(broker, topic, 2)
    assert produce(broker, topic, 0, 5) == 0
    assert produce(broker, topic, 0, 2) == 5
    for version in (2, 3):
        got = ask(broker, version, topic, [(0, -1, 0), (0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 0), (7, -1, 0)])
        assert got == [
            (0, 0, 0, 7),                      # epoch 0 is the latest: it ends at the log end
            (0, 0, -1, -1),                    # epoch 1 is unknown here
            (1, 0, -1, -1),                    # no data, no epoch yet
            (0, UNKNOWN_LEADER_EPOCH, -1, -1),  # the caller knows a newer leader
            (0, 0, 0, 7),
            (7, 3, -1, -1),                    # UNKNOWN_TOPIC_OR_PARTITION
        ], got
    checkpoint = broker.log_dirs[0] / f"{topic}-0" / "leader-epoch-checkpoint"
    assert checkpoint.read_bytes() == b"0\n1\n0 0\n"
    broker.restart()
    assert ask(broker, 3, topic, [(0, 0, 0)]) == [(0, 0, 0, 7)]
    assert checkpoint.read_bytes() == b"0\n1\n0 0\n"
