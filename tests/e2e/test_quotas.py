"""Client quotas and connection limits (issue 12 item 5) with real clients.

A confluent-kafka producer (and consumer) under a producer_byte_rate (consumer_byte_rate)
quota is slowed to about its rate while another client id on the same broker in the same
run is not; throttle_time_ms and the mute after it on the raw wire; `corelog quota`
set/describe/delete and persistence across a restart; max.connections.per.ip; a quota
set on one cluster member enforced by another; request_percentage throttling and delaying
one client id on the raw wire while another is not.

The brokers measure over quota.window.num=2 windows of 1 s, so a bounded run of a few
seconds sees the rate (Kafka's default, 11 windows, would allow a 10 s burst first).
"""

import socket
import struct
import subprocess
import time
import urllib.request

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
import pytest

import kwire
from conftest import corelog_bin, fresh_topic

CLIENT_TIMEOUT_S = 20
WINDOWS = {"quota.window.num": "2", "quota.window.size.seconds": "1"}
RATE_BYTES_PER_S = 100 * 1024
RECORD_BYTES = 1000
RECORDS = 500  # ~500 KB: ~5 s at the quota, well under 1 s without
API_PRODUCE = 0


def quota(broker, *args):
    cmd = [str(corelog_bin()), "quota", *args, "--bootstrap", broker.bootstrap]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    return out.stdout


def create_topic(broker, name, partitions=1):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=CLIENT_TIMEOUT_S)


def produce_all(broker, topic, client_id):
    """Produces RECORDS records; returns (seconds, delivered, errors)."""
    p = Producer({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4",
                  "client.id": client_id, "linger.ms": 2, "batch.size": 16384, "acks": 1})
    delivered, errors = [], []

    def report(err, msg):
        (errors if err else delivered).append(err or msg.offset())

    value = b"x" * RECORD_BYTES
    start = time.monotonic()
    for _ in range(RECORDS):
        while True:
            try:
                p.produce(topic, value, on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0
    return time.monotonic() - start, len(delivered), errors


def consume_all(broker, topic, client_id):
    """Reads RECORDS records from the start; returns (seconds, records)."""
    c = Consumer({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4",
                  "client.id": client_id, "group.id": f"g-{client_id}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "max.partition.fetch.bytes": 16384, "fetch.max.bytes": 16384,
                  "message.max.bytes": 16384})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group join: bounded time
    got = 0
    start = None
    deadline = time.monotonic() + 60
    try:
        while got < RECORDS and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            if start is None:
                start = time.monotonic()
            got += 1
    finally:
        c.close()
    return time.monotonic() - start, got


def test_producer_byte_rate_slows_one_client_id_only(broker_factory):
    broker = broker_factory(WINDOWS)
    topic = fresh_topic("quota-p")
    create_topic(broker, topic)
    quota(broker, "set", "--client", "slow-producer", "--add-config", f"producer_byte_rate={RATE_BYTES_PER_S}")
    fast_s, fast_n, fast_err = produce_all(broker, topic, "fast-producer")
    slow_s, slow_n, slow_err = produce_all(broker, topic, "slow-producer")
    assert (fast_n, fast_err, slow_n, slow_err) == (RECORDS, [], RECORDS, [])
    payload = RECORDS * RECORD_BYTES
    slow_rate = payload / slow_s
    print(f"producer: quota {RATE_BYTES_PER_S} B/s, throttled {slow_rate:.0f} B/s in {slow_s:.2f} s, "
          f"unthrottled {payload / fast_s:.0f} B/s in {fast_s:.2f} s")
    # The first window's burst passes at once, so the achieved rate is a bit above the
    # quota; a broker that did not throttle would be at the fast client's rate.
    assert 0.4 * RATE_BYTES_PER_S < slow_rate < 1.8 * RATE_BYTES_PER_S, (slow_rate, slow_s)
    assert slow_s > 4 * fast_s, (slow_s, fast_s)
    metrics = urllib.request.urlopen(f"http://{broker.admin}/metrics", timeout=5).read().decode()
    throttled = [line for line in metrics.splitlines() if line.startswith("corelog_quota_throttled_responses_total")]
    assert throttled and sum(float(line.split()[-1]) for line in throttled) > 0, throttled


def test_consumer_byte_rate_slows_one_client_id_only(broker_factory):
    broker = broker_factory(WINDOWS)
    topic = fresh_topic("quota-c")
    create_topic(broker, topic)
    _, n, errors = produce_all(broker, topic, "loader")
    assert (n, errors) == (RECORDS, [])
    quota(broker, "set", "--client", "slow-consumer", "--add-config", f"consumer_byte_rate={RATE_BYTES_PER_S}")
    fast_s, fast_n = consume_all(broker, topic, "fast-consumer")
    slow_s, slow_n = consume_all(broker, topic, "slow-consumer")
    assert (fast_n, slow_n) == (RECORDS, RECORDS)
    slow_rate = RECORDS * RECORD_BYTES / slow_s
    print(f"consumer: quota {RATE_BYTES_PER_S} B/s, throttled {slow_rate:.0f} B/s in {slow_s:.2f} s, "
          f"unthrottled {RECORDS * RECORD_BYTES / fast_s:.0f} B/s in {fast_s:.2f} s")
    assert 0.4 * RATE_BYTES_PER_S < slow_rate < 1.8 * RATE_BYTES_PER_S, (slow_rate, slow_s)
    assert slow_s > 4 * fast_s, (slow_s, fast_s)


def produce_v8_throttle(conn, topic, value_bytes):
    """Sends one Produce v8 (acks=1) of one record; returns (error code, throttle_time_ms)."""
    batch = kwire.record_batch([(None, b"v" * value_bytes, [], 0)], int(time.time() * 1000))
    body = conn.request(API_PRODUCE, 8, kwire.produce_request_body(topic, 0, batch, acks=1))
    (throttle_ms,) = struct.unpack(">i", body[-4:])
    return kwire.parse_produce_response(8, body)[(topic, 0)][0], throttle_ms


def test_throttle_time_on_the_wire_and_the_mute(broker_factory):
    broker = broker_factory(WINDOWS)
    topic = fresh_topic("quota-w")
    create_topic(broker, topic)
    quota(broker, "set", "--client", kwire.CLIENT_ID, "--add-config", "producer_byte_rate=10000")
    with kwire.Conn(broker.port) as conn, kwire.Conn(broker.port) as other:
        error, throttle_ms = produce_v8_throttle(conn, topic, 100)
        assert (error, throttle_ms) == (0, 0)
        # 30 KB against 10 KB/s over a 1 s span: throttled, capped at the 2 s period.
        error, throttle_ms = produce_v8_throttle(conn, topic, 30_000)
        assert error == 0 and 500 <= throttle_ms <= 2000, throttle_ms
        # A second connection of the same client id counts in the same sensor (and is
        # not muted: the mute is per connection).
        error, other_ms = produce_v8_throttle(other, topic, 10)
        assert error == 0 and other_ms > 0, other_ms
        # The throttled connection reads nothing until its mute ends.
        start = time.monotonic()
        produce_v8_throttle(conn, topic, 10)
        muted_s = time.monotonic() - start
        assert muted_s >= (throttle_ms - 100) / 1000, (muted_s, throttle_ms)


def test_cli_round_trip_and_restart(broker_factory):
    broker = broker_factory()
    quota(broker, "set", "--user", "alice", "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152")
    quota(broker, "set", "--user", "alice", "--client-defaults", "--add-config", "request_percentage=50")
    quota(broker, "set", "--client-defaults", "--add-config", "producer_byte_rate=4096")
    want_all = ("Quota configs for user-principal 'alice' are consumer_byte_rate=2097152.0, "
                "producer_byte_rate=1048576.0\n"
                "Quota configs for user-principal 'alice', the default client-id are request_percentage=50.0\n"
                "Quota configs for the default client-id are producer_byte_rate=4096.0\n")
    assert sorted(quota(broker, "describe").splitlines()) == sorted(want_all.splitlines())
    assert quota(broker, "describe", "--user", "alice") == (
        "Quota configs for user-principal 'alice' are consumer_byte_rate=2097152.0, producer_byte_rate=1048576.0\n")
    quota(broker, "delete", "--user", "alice", "--delete-config", "consumer_byte_rate")
    broker.restart()
    assert quota(broker, "describe", "--user", "alice") == (
        "Quota configs for user-principal 'alice' are producer_byte_rate=1048576.0\n")
    assert quota(broker, "describe", "--client-defaults") == (
        "Quota configs for the default client-id are producer_byte_rate=4096.0\n")
    bad = subprocess.run([str(corelog_bin()), "quota", "set", "--client", "x", "--add-config",
                          "connection_creation_rate=1", "--bootstrap", broker.bootstrap],
                         capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    assert bad.returncode != 0 and "error 42" in bad.stderr, bad.stderr  # INVALID_REQUEST


def served(conn):
    return bool(kwire.api_versions(conn))


CLIENT_IP = "127.0.0.5"  # the harness's own probes come from 127.0.0.1


def conn_from(ip, port):
    """A kwire connection to the broker from source address `ip` (any 127/8 works)."""
    c = kwire.Conn.__new__(kwire.Conn)
    c.sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(ip, 0))
    c.timeout_s = 10.0
    c.local_port = c.sock.getsockname()[1]
    c.next_correlation_id = 1
    return c


def test_max_connections_per_ip(broker_factory):
    broker = broker_factory({"max.connections.per.ip": "3"})
    conns = [conn_from(CLIENT_IP, broker.port) for _ in range(3)]
    try:
        assert all(served(c) for c in conns)
        with conn_from(CLIENT_IP, broker.port) as refused:
            assert refused.wait_closed(5.0)
        with kwire.Conn(broker.port) as other_ip:
            assert served(other_ip), "another address has its own count"
        conns.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the broker sees the close asynchronously
            with conn_from(CLIENT_IP, broker.port) as again:
                try:
                    if served(again):
                        break
                except (ConnectionError, OSError):
                    pass
            assert time.monotonic() < deadline, "no slot came back after a close"
            time.sleep(0.1)
    finally:
        for c in conns:
            c.close()
    broker.wait_for_log(f"refusing connection: {CLIENT_IP} already has 3 connections")
    metrics = urllib.request.urlopen(f"http://{broker.admin}/metrics", timeout=5).read().decode()
    refused = [line for line in metrics.splitlines() if line.startswith("corelog_connections_refused_total")]
    assert refused and sum(float(line.split()[-1]) for line in refused) >= 1, refused


def test_quota_set_on_one_member_is_enforced_by_another(broker_factory):
    members = broker_factory.cluster(3, overrides=WINDOWS)
    quota(members[0], "set", "--client", kwire.CLIENT_ID, "--add-config", "producer_byte_rate=1000")
    want = f"Quota configs for client-id '{kwire.CLIENT_ID}' are producer_byte_rate=1000.0\n"
    deadline = time.monotonic() + 10
    while quota(members[1], "describe", "--client", kwire.CLIENT_ID) != want:
        assert time.monotonic() < deadline, "member 2 never saw the quota"
        time.sleep(0.1)
    with kwire.Conn(members[1].port) as conn:
        batch = kwire.record_batch([(None, b"v" * 20_000, [], 0)], int(time.time() * 1000))
        body = conn.request(API_PRODUCE, 8, kwire.produce_request_body("quota-any", 0, batch, acks=1))
        assert struct.unpack(">i", body[-4:])[0] > 0


API_METADATA = 3


def metadata_v4(conn, client_id):
    """One Metadata v4 (all topics) as `client_id`: (throttle_time_ms, seconds to answer)."""
    correlation_id = conn.next_correlation_id
    conn.next_correlation_id += 1
    start = time.monotonic()
    conn.send(kwire.request_frame(API_METADATA, 4, correlation_id, kwire.int32(-1) + b"\x00",
                                  client_id=client_id))
    got_id, body = conn.recv_frame()
    assert got_id == correlation_id
    return struct.unpack(">i", body[:4])[0], time.monotonic() - start


def test_request_percentage_throttles_and_delays_one_client_id_only(broker_factory):
    broker = broker_factory(WINDOWS)
    # 0.01% of a thread: 100 us of shard time per second, less than a few Metadata
    # requests take.
    quota(broker, "set", "--client", "tiny", "--add-config", "request_percentage=0.01")
    with kwire.Conn(broker.port) as tiny, kwire.Conn(broker.port) as roomy:
        throttle_ms = 0
        for _ in range(40):
            throttle_ms, _ = metadata_v4(tiny, "tiny")
            if throttle_ms > 0:
                break
        assert 0 < throttle_ms <= 2000, throttle_ms
        # The answer came at once; the connection reads nothing more until the
        # throttle time is over (the mute).
        _, waited_s = metadata_v4(tiny, "tiny")
        assert waited_s >= (throttle_ms - 100) / 1000, (waited_s, throttle_ms)
        # Another client id on the same broker meanwhile: never throttled.
        assert [metadata_v4(roomy, "roomy")[0] for _ in range(40)] == [0] * 40


def test_over_max_connections_a_new_connection_waits_for_a_slot(broker_factory):
    """As behind Kafka's acceptor: at max.connections a new connection is held, not
    closed, and served once another connection closes."""
    broker = broker_factory({"max.connections": "4", "num.partitions": "1"}, smp=1)
    time.sleep(1)  # the harness's probe connections are closed
    conns = []
    try:
        held = None
        for _ in range(6):
            c = conn_from(CLIENT_IP, broker.port)
            c.send(kwire.request_frame(kwire.API_API_VERSIONS, 0, 1, b""))
            try:
                c.recv_frame(timeout_s=1.0)
                conns.append(c)
            except TimeoutError:
                held = c
                break
        assert held is not None and len(conns) >= 1, "some connection is held at the limit"
        assert broker.wait_for_log("max.connections reached: holding the new connection", timeout_s=5)
        # Still held a while later: not closed, not answered.
        with pytest.raises(TimeoutError):
            held.recv_frame(timeout_s=1.0)
        conns.pop().close()
        # The slot goes to the held connection: its ApiVersions is answered now.
        correlation_id, _ = held.recv_frame(timeout_s=5.0)
        assert correlation_id == 1
        held.close()
    finally:
        for c in conns:
            c.close()
