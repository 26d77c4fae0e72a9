"""DeleteRecords in a three-broker cluster (Kafka's DelayedDeleteRecords): the answer
comes once every live replica's log start offset has followed the leader's, so right
after confluent-kafka's AdminClient.delete_records returns, each follower's log starts
at the requested offset or past it (read on the wire: a Fetch v11 sent to a follower is
served by that follower, KIP-392, and carries its own log start offset). With a
follower paused (SIGSTOP, still registered and in the ISR), the request waits out its
operation timeout and fails with REQUEST_TIMED_OUT; once the follower runs again, it
follows and a repeated request succeeds."""

import os
import signal

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import kwire
from clients import wait_until
from conftest import fresh_topic

ADMIN_TIMEOUT_S = 10
SETTLE_S = 30
SETTINGS = {
    # Long enough that a follower paused for the timeout test stays registered.
    "broker.session.timeout.ms": "8000",
    "broker.heartbeat.interval.ms": "500",
}
RECORDS = 300
# The records of the test topic go in batches of this many, so offsets fall inside
# batches too.
BATCH_RECORDS = 10
ERR_OFFSET_OUT_OF_RANGE = 1


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def start(broker_factory, topic):
    """Three members and `topic` with one partition on [1, 2, 3] (1 leads), holding
    RECORDS records that every replica has."""
    members = broker_factory.cluster(3, overrides=SETTINGS)
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3],
               SETTLE_S, "three live brokers")
    client = admin(members[0])
    spec = NewTopic(topic, num_partitions=1, replica_assignment=[[1, 2, 3]])
    client.create_topics([spec], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)
    p = Producer({"bootstrap.servers": members[0].bootstrap, "broker.address.family": "v4", "acks": "all",
                  "linger.ms": 50, "batch.num.messages": BATCH_RECORDS})
    errors = []
    for i in range(RECORDS):
        p.produce(topic, f"v{i}".encode(), partition=0, on_delivery=lambda err, _: err and errors.append(err))
    assert p.flush(30) == 0 and errors == []
    by_id = {m.node_id: m for m in members}
    for f in (2, 3):
        wait_until(lambda: follower_view(by_id[f], topic)[1] == RECORDS, SETTLE_S,
                   f"follower {f} serving every record")
    return by_id


def follower_view(broker, topic):
    """(error code, high watermark, log start offset) of partition 0 as `broker` itself
    serves it to a Fetch v11 consumer (a follower serves KIP-392 reads)."""
    with kwire.Conn(broker.port) as conn:
        body = conn.request(kwire.API_FETCH, kwire.FETCH_VERSION,
                            kwire.fetch_request_body(topic, 0, 0, max_wait_ms=0, max_bytes=1024))
    r = kwire.Reader(body)
    r.int32()  # throttle time
    assert r.int16() == kwire.ERR_NONE
    r.int32()  # session id
    out = {}

    def partition():
        index = r.int32()
        error_code, high_watermark = r.int16(), r.int64()
        r.int64()  # last stable offset
        log_start_offset = r.int64()
        r.array(lambda: (r.int64(), r.int64()))  # aborted transactions
        r.int32()  # preferred read replica
        r.bytes()
        out[index] = (error_code, high_watermark, log_start_offset)

    def topic_response():
        r.string()
        r.array(partition)

    r.array(topic_response)
    return out[0]


def delete_records(broker, topic, offset, operation_timeout_s):
    """The low watermark AdminClient.delete_records answers, or its KafkaError."""
    client = admin(broker)  # kept alive until the answer is in
    futures = client.delete_records([TopicPartition(topic, 0, offset)],
                                    request_timeout=ADMIN_TIMEOUT_S + operation_timeout_s,
                                    operation_timeout=operation_timeout_s)
    (future,) = futures.values()
    try:
        return future.result(timeout=ADMIN_TIMEOUT_S + operation_timeout_s).low_watermark
    except KafkaException as e:
        return e.args[0]


def test_delete_records_answers_once_every_follower_has_moved_its_log_start(broker_factory):
    topic = fresh_topic("trim")
    by_id = start(broker_factory, topic)
    # The followers' long-polls are parked now (nothing is being produced), so neither
    # learns the new log start from an answer that was due anyway.
    assert delete_records(by_id[1], topic, 151, operation_timeout_s=30) == 151
    for f in (2, 3):
        error_code, high_watermark, log_start = follower_view(by_id[f], topic)
        assert log_start == 151, f"follower {f}'s log start right after DeleteRecords returned"
        assert high_watermark == RECORDS
        # Offset 0 is gone on the follower too: a consumer reading it there is refused.
        assert error_code == ERR_OFFSET_OUT_OF_RANGE
    # -1: up to the high watermark, everywhere.
    assert delete_records(by_id[1], topic, -1, operation_timeout_s=30) == RECORDS
    for f in (2, 3):
        assert follower_view(by_id[f], topic)[2] == RECORDS


def test_delete_records_times_out_while_a_live_follower_cannot_follow(broker_factory):
    topic = fresh_topic("paused")
    by_id = start(broker_factory, topic)
    paused = by_id[3]
    os.kill(paused.proc.pid, signal.SIGSTOP)
    try:
        got = delete_records(by_id[1], topic, 100, operation_timeout_s=1)
        assert isinstance(got, KafkaError), f"answered {got} while follower 3 was paused"
        assert got.code() == KafkaError.REQUEST_TIMED_OUT, got
        # The leader's own log start moved all the same; follower 2 followed it.
        assert follower_view(by_id[2], topic)[2] == 100
    finally:
        os.kill(paused.proc.pid, signal.SIGCONT)
    # Running again, the follower follows; the same request now succeeds.
    assert delete_records(by_id[1], topic, 100, operation_timeout_s=30) == 100
    assert follower_view(paused, topic)[2] == 100


@pytest.fixture(autouse=True)
def _resume_paused(broker_factory):
    """SIGCONT for a broker a failed test left paused, so the factory can stop it."""
    yield
    for b in broker_factory.brokers:
        if b.proc is not None and b.proc.poll() is None:
            try:
                os.kill(b.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
