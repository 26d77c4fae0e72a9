"""KIP-227 incremental fetch sessions: the protocol rules on raw Fetch v11 requests
(creation, epochs, partitions added / updated / forgotten, what an incremental answer
holds, close), kafka-python's KafkaConsumer (which uses sessions) reading everything
exactly once across a broker restart, and librdkafka (full fetches) on the same broker."""

import logging
import threading
import time

from kafka import KafkaConsumer, TopicPartition

import kwire
from clients import consume, create_topic, flush, producer
from conftest import fresh_topic
from test_cluster_fetch_from_follower import compact_nullable_string, tagged_fields, topic_id_bytes, uvarint
from test_metrics import scrape, total

FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
FETCH_SESSION_TOPIC_ID_ERROR = 106
PARTITIONS = 8
ROUNDS = 6
PER_ROUND = 10  # records per partition per round
ROUND_GAP_S = 0.3
READ_TIMEOUT_S = 30
# Long enough that a long-poll woken by an append is told apart from one that ran out,
# even on a loaded machine; the wake-up is checked against half of it.
LONG_POLL_MS = 20000


# --- raw Fetch v11 with a session ------------------------------------------------------

def session_fetch(conn, session, epoch, partitions, forgotten=(), max_wait_ms=0, min_bytes=1):
    """Fetch v11 naming `partitions` {(topic, partition): offset}; `forgotten`
    [(topic, partition)]. Returns (error, session_id, {(topic, partition): (error,
    high_watermark, records)})."""
    def part(p, offset):
        return (kwire.int32(p) + kwire.int32(-1) + kwire.int64(offset) + kwire.int64(-1)
                + kwire.int32(1 << 20))

    by_topic = {}
    for (t, p), offset in partitions.items():
        by_topic.setdefault(t, []).append(part(p, offset))
    gone = {}
    for t, p in forgotten:
        gone.setdefault(t, []).append(kwire.int32(p))
    body = (kwire.int32(-1) + kwire.int32(max_wait_ms) + kwire.int32(min_bytes) + kwire.int32(1 << 20)
            + kwire.int8(0) + kwire.int32(session) + kwire.int32(epoch)
            + kwire.array([kwire.string(t) + kwire.array(ps) for t, ps in by_topic.items()])
            + kwire.array([kwire.string(t) + kwire.array(ps) for t, ps in gone.items()])
            + kwire.string(""))
    r = kwire.Reader(conn.request(kwire.API_FETCH, 11, body, timeout_s=LONG_POLL_MS / 1000 + 10))
    r.int32()  # throttle time
    error_code = r.int16()
    session_id = r.int32()
    out = {}

    def partition_response(topic):
        index = r.int32()
        p_error = r.int16()
        high_watermark = r.int64()
        r.int64()  # last stable offset
        r.int64()  # log start offset
        r.array(lambda: (r.int64(), r.int64()))
        r.int32()  # preferred read replica
        out[(topic, index)] = (p_error, high_watermark, r.bytes() or b"")

    def topic_response():
        name = r.string()
        r.array(lambda: partition_response(name))

    r.array(topic_response)
    r.expect_end()
    return error_code, session_id, out


def produce_to(broker, topic, partition, count):
    prod = producer(broker, {"acks": "all", "linger.ms": 0})
    for i in range(count):
        prod.produce(topic, value=f"p{partition}-{i}".encode(), partition=partition)
    flush(prod)


def records_in(data):
    return sum(n for _, _, n, ok in kwire.batch_headers(data) if ok)


def test_session_protocol_on_raw_fetches(broker):
    topic = create_topic(broker, fresh_topic("fsraw"), 3)
    produce_to(broker, topic, 0, 2)
    tp = [(topic, p) for p in range(3)]
    with kwire.Conn(broker.port) as conn:
        # Full fetch, epoch 0: a session of all three partitions, every one answered.
        err, sid, parts = session_fetch(conn, 0, 0, {k: 0 for k in tp})
        assert (err, set(parts)) == (0, set(tp)) and sid != 0
        assert records_in(parts[tp[0]][2]) == 2 and parts[tp[0]][1] == 2
        # Epoch 1 names p0 at its new offset: answered (named); p1, p2 unchanged: left out.
        err, got, parts = session_fetch(conn, sid, 1, {tp[0]: 2})
        assert (err, got, set(parts)) == (0, sid, {tp[0]})
        assert parts[tp[0]][2] == b""

        # Epoch 2 names nothing and long-polls: an append to p1, a session partition
        # the request does not name, ends the wait; only p1 is answered.
        def late_append():
            time.sleep(1.0)
            produce_to(broker, topic, 1, 3)
        appender = threading.Thread(target=late_append)
        started = time.monotonic()
        appender.start()
        err, got, parts = session_fetch(conn, sid, 2, {}, max_wait_ms=LONG_POLL_MS)
        waited_s = time.monotonic() - started
        appender.join()
        assert (err, got, set(parts)) == (0, sid, {tp[1]})
        assert records_in(parts[tp[1]][2]) == 3 and parts[tp[1]][1] == 3
        assert waited_s < LONG_POLL_MS / 1000 / 2, f"long-poll not woken by the append ({waited_s:.1f} s)"
        # The stored offset of p1 is still 0 (only requests move it): same records again.
        err, got, parts = session_fetch(conn, sid, 3, {})
        assert (err, got, set(parts)) == (0, sid, {tp[1]})
        assert records_in(parts[tp[1]][2]) == 3
        # A used epoch, a skipped one, an unknown session: top-level errors, nothing else.
        for epoch in (3, 5):
            assert session_fetch(conn, sid, epoch, {}) == (INVALID_FETCH_SESSION_EPOCH, 0, {})
        unknown = sid ^ 0x10000
        assert session_fetch(conn, unknown, 1, {}) == (FETCH_SESSION_ID_NOT_FOUND, 0, {})
        # Epoch 4 moves p1 to its end and forgets p2: p1 answered (named), nothing else.
        err, got, parts = session_fetch(conn, sid, 4, {tp[1]: 3}, forgotten=[tp[2]])
        assert (err, got, set(parts)) == (0, sid, {tp[1]})
        # p2 is out of the session: its new records are not fetched.
        produce_to(broker, topic, 2, 1)
        assert session_fetch(conn, sid, 5, {}) == (0, sid, {})
        # Adding p2 back (at 0) answers it with its record.
        err, got, parts = session_fetch(conn, sid, 6, {tp[2]: 0})
        assert (err, got, set(parts)) == (0, sid, {tp[2]})
        assert records_in(parts[tp[2]][2]) == 1

        samples = scrape(broker)
        assert total(samples, "corelog_fetch_sessions_created_total") == 1
        assert total(samples, "corelog_fetch_sessions_open") == 1
        assert total(samples, "corelog_incremental_fetches_total") == 6
        # Epoch -1 closes the session and fetches sessionless.
        err, got, parts = session_fetch(conn, sid, -1, {tp[0]: 0})
        assert (err, got, set(parts)) == (0, 0, {tp[0]})
        assert session_fetch(conn, sid, 7, {}) == (FETCH_SESSION_ID_NOT_FOUND, 0, {})
        # Epoch -1 without a session: today's full fetch, no session made.
        assert session_fetch(conn, 0, -1, {tp[0]: 2}) == (0, 0, {tp[0]: (0, 2, b"")})
    samples = scrape(broker)
    assert total(samples, "corelog_fetch_sessions_open") == 0
    assert total(samples, "corelog_fetch_sessions_created_total") == 1


# --- Fetch v12 (names) and v13 (topic ids), flexible encoding ---------------------------

def flexible_session_fetch(conn, version, session, epoch, partitions, forgotten=()):
    """Like session_fetch, for v12 (topics by name) or v13 (by their 16-byte id): the
    keys of `partitions` {(topic, partition): offset} and `forgotten` are names or ids."""
    def topic_field(t):
        return t if version >= 13 else kwire.compact_string(t)

    def compact_array(items):
        return kwire.varint_unsigned(len(items) + 1) + b"".join(items)

    by_topic, gone = {}, {}
    for (t, p), offset in partitions.items():
        by_topic.setdefault(t, []).append(
            kwire.int32(p) + kwire.int32(-1) + kwire.int64(offset) + kwire.int32(-1) + kwire.int64(-1)
            + kwire.int32(1 << 20) + b"\x00")
    for t, p in forgotten:
        gone.setdefault(t, []).append(kwire.int32(p))
    body = (kwire.int32(-1) + kwire.int32(0) + kwire.int32(1) + kwire.int32(1 << 20) + kwire.int8(0)
            + kwire.int32(session) + kwire.int32(epoch)
            + compact_array([topic_field(t) + compact_array(ps) + b"\x00" for t, ps in by_topic.items()])
            + compact_array([topic_field(t) + compact_array(ps) + b"\x00" for t, ps in gone.items()])
            + kwire.compact_string("") + b"\x00")
    r = kwire.Reader(conn.request(kwire.API_FETCH, version, body, flexible_header=True))
    assert tagged_fields(r) == {}  # response header
    r.int32()  # throttle time
    error_code, session_id = r.int16(), r.int32()
    out = {}
    for _ in range(uvarint(r) - 1):
        topic = r._take(16) if version >= 13 else compact_nullable_string(r)
        for _ in range(uvarint(r) - 1):
            index, p_error, high_watermark = r.int32(), r.int16(), r.int64()
            r.int64(), r.int64()  # last stable offset, log start offset
            for _ in range(max(0, uvarint(r) - 1)):  # aborted transactions
                r.int64(), r.int64()
                tagged_fields(r)
            r.int32()  # preferred read replica
            n = uvarint(r) - 1
            out[(topic, index)] = (p_error, high_watermark, r._take(n) if n > 0 else b"")
            tagged_fields(r)
        tagged_fields(r)
    tagged_fields(r)
    r.expect_end()
    return error_code, session_id, out


def test_sessions_by_topic_id(broker):
    topic = create_topic(broker, fresh_topic("fsid"), 2)
    produce_to(broker, topic, 0, 1)
    tid = topic_id_bytes(broker, topic)
    by_id = [(tid, 0), (tid, 1)]
    with kwire.Conn(broker.port) as conn:
        err, sid, parts = flexible_session_fetch(conn, 13, 0, 0, {by_id[0]: 0, by_id[1]: 0})
        assert (err, set(parts)) == (0, set(by_id)) and sid != 0
        assert records_in(parts[by_id[0]][2]) == 1
        # Forgotten by id, updated by id: only the named partition is answered.
        err, got, parts = flexible_session_fetch(conn, 13, sid, 1, {by_id[0]: 1}, forgotten=[by_id[1]])
        assert (err, got, set(parts)) == (0, sid, {by_id[0]})
        # The same session by name (v12): Kafka's FETCH_SESSION_TOPIC_ID_ERROR.
        assert flexible_session_fetch(conn, 12, sid, 2, {}) == (FETCH_SESSION_TOPIC_ID_ERROR, 0, {})
        # p1 was forgotten: its new record is not fetched; the session goes on at epoch 2.
        produce_to(broker, topic, 1, 1)
        assert flexible_session_fetch(conn, 13, sid, 2, {}) == (0, sid, {})
        err, got, parts = flexible_session_fetch(conn, 13, sid, 3, {by_id[1]: 0})
        assert (err, got, set(parts)) == (0, sid, {by_id[1]})
        assert records_in(parts[by_id[1]][2]) == 1
    # A v12 session by name works the same way.
    with kwire.Conn(broker.port) as conn:
        by_name = [(topic, 0), (topic, 1)]
        err, sid, parts = flexible_session_fetch(conn, 12, 0, 0, {by_name[0]: 1, by_name[1]: 1})
        assert (err, set(parts)) == (0, set(by_name)) and sid != 0
        assert flexible_session_fetch(conn, 12, sid, 1, {}) == (0, sid, {})
        assert flexible_session_fetch(conn, 13, sid, 2, {}) == (FETCH_SESSION_TOPIC_ID_ERROR, 0, {})


# --- real clients ---------------------------------------------------------------------

def value(p, i):
    return f"{p}:{i}".encode()


def produce_rounds(broker, topic, first_round, rounds, errors):
    """`rounds` rounds of PER_ROUND records to every partition, ROUND_GAP_S apart."""
    try:
        prod = producer(broker, {"acks": "all", "linger.ms": 5})
        for r in range(first_round, first_round + rounds):
            for p in range(PARTITIONS):
                for i in range(r * PER_ROUND, (r + 1) * PER_ROUND):
                    prod.produce(topic, value=value(p, i), partition=p)
            flush(prod)
            time.sleep(ROUND_GAP_S)
    except Exception as e:  # reported by the test thread
        errors.append(e)


def kp_consumer(broker, topic):
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="none", request_timeout_ms=15000, fetch_max_wait_ms=200,
                      reconnect_backoff_ms=100, reconnect_backoff_max_ms=500)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    c.assign(tps)
    for tp in tps:
        c.seek(tp, 0)
    return c


def read_until(c, got, count_per_partition):
    """Polls until every partition has `count_per_partition` records (more fail later)."""
    deadline = time.monotonic() + READ_TIMEOUT_S
    while any(len(got.get(p, [])) < count_per_partition for p in range(PARTITIONS)):
        have = {p: len(got.get(p, [])) for p in range(PARTITIONS)}
        assert time.monotonic() < deadline, f"read {have} after {READ_TIMEOUT_S} s"
        for records in c.poll(timeout_ms=200).values():
            for rec in records:
                got.setdefault(rec.partition, []).append((rec.offset, rec.value))


def expected(count_per_partition):
    return {p: [(i, value(p, i)) for i in range(count_per_partition)] for p in range(PARTITIONS)}


class SessionLog(logging.Handler):
    """kafka-python's FetchSessionHandler lines: it logs at INFO every response it finds
    invalid for its session (partitions missing from a full answer, extra ones in an
    incremental one) and every top-level session error."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_kafka_python_reads_exactly_once_with_sessions_across_a_restart(broker):
    topic = create_topic(broker, fresh_topic("fskp"), PARTITIONS)
    errors = []
    half = ROUNDS // 2
    fetcher_log = logging.getLogger("kafka.consumer.fetcher")
    session_log = SessionLog()
    old_level = fetcher_log.level
    fetcher_log.setLevel(logging.INFO)
    fetcher_log.addHandler(session_log)
    c = kp_consumer(broker, topic)
    try:
        got = {}
        producing = threading.Thread(target=produce_rounds, args=(broker, topic, 0, half, errors))
        producing.start()
        read_until(c, got, half * PER_ROUND)
        producing.join()
        assert not errors, errors
        samples = scrape(broker)
        assert total(samples, "corelog_fetch_sessions_created_total") >= 1
        assert total(samples, "corelog_incremental_fetches_total") > 0
        assert total(samples, "corelog_fetch_sessions_open") >= 1
        assert not [line for line in session_log.lines if "invalid" in line or "unable" in line], \
            session_log.lines

        # The restart drops every session; the consumer's next incremental fetch is
        # refused (or its connection's loss resets it) and it starts a new session.
        broker.restart()
        producing = threading.Thread(target=produce_rounds, args=(broker, topic, half, ROUNDS - half, errors))
        producing.start()
        read_until(c, got, ROUNDS * PER_ROUND)
        producing.join()
        assert not errors, errors
        # Nothing beyond what was produced arrives late.
        for records in c.poll(timeout_ms=1000).values():
            for rec in records:
                got.setdefault(rec.partition, []).append((rec.offset, rec.value))
        assert got == expected(ROUNDS * PER_ROUND)
        samples = scrape(broker)
        assert total(samples, "corelog_fetch_sessions_created_total") >= 1
        assert total(samples, "corelog_incremental_fetches_total") > 0
        assert not [line for line in session_log.lines if "invalid" in line], session_log.lines
    finally:
        c.close()
        fetcher_log.removeHandler(session_log)
        fetcher_log.setLevel(old_level)

    # librdkafka (full fetches, no sessions) on the same broker reads the same records.
    msgs = consume(broker, topic, {p: 0 for p in range(PARTITIONS)}, PARTITIONS * ROUNDS * PER_ROUND)
    seen = {}
    for m in msgs:
        seen.setdefault(m.partition(), []).append((m.offset(), m.value()))
    assert seen == expected(ROUNDS * PER_ROUND)
