"""Requests that would size the broker's work by a number on the wire (issue 16).

CreateTopics or CreatePartitions with 200,000,000 partitions made the broker build its
placement table until memory ran out, and its shard stopped serving everyone. Like
Kafka's controller, corelog now refuses a request that would add more than
max.partitions.per.request (default 10,000) partitions in total, as a whole, with
POLICY_VIOLATION and Kafka's message, before it allocates anything. Each refusal is
checked to come back at once, with the broker's RSS unchanged, while another client keeps
producing.
"""

import threading
import time

import pytest
from confluent_kafka import Producer, TopicPartition
from kafka import KafkaAdminClient
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import PolicyViolationError

import kwire
from clients import base_config, consumer, create_topic, partition_counts
from conftest import fresh_topic

HUGE_PARTITIONS = 200_000_000
BOUND_DEFAULT = 10_000
MESSAGE = "Excessively large number of partitions per request."
ERR_INVALID_TOPIC_EXCEPTION = 17
ERR_INVALID_REQUEST = 42
ERR_POLICY_VIOLATION = 44
# Before the fix the broker grew by ~275 MB/s on such a request; a refusal allocates
# nothing worth measuring.
RSS_GROWTH_MAX_BYTES = 50 * 1024 * 1024
# "At once": far below the clients' request timeouts, which a stuck broker would hit.
ANSWER_WITHIN_S = 3.0
ADMIN_TIMEOUT_MS = 15_000

API_CREATE_TOPICS = 19
API_CREATE_PARTITIONS = 37
CREATE_TOPICS_VERSION = 4  # the newest non-flexible one, which kwire can write
CREATE_PARTITIONS_VERSION = 1
METADATA_VERSION = 4


def rss_bytes(broker):
    with open(f"/proc/{broker.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


class BackgroundProducer:
    """A confluent-kafka producer sending to `topic` until stopped; records when each
    message was acknowledged, and any error."""

    def __init__(self, broker, topic):
        self.producer = Producer({**base_config(broker), "linger.ms": 5, "acks": "all",
                                  "message.timeout.ms": 30000})
        self.topic = topic
        self.acked_at = []
        self.errors = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, err, _msg):
        if err is None:
            self.acked_at.append(time.monotonic())
        else:
            self.errors.append(err)

    def _run(self):
        i = 0
        while not self.stop_flag.is_set():
            try:
                self.producer.produce(self.topic, value=f"v{i}".encode(), on_delivery=self._on_delivery)
                i += 1
            except BufferError:
                pass
            self.producer.poll(0.01)
        self.producer.flush(30)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.acked_at:
            assert time.monotonic() < deadline, f"the producer got no ack in 15 s: {self.errors}"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(60)

    def acks_between(self, start, end):
        return sum(1 for t in list(self.acked_at) if start <= t <= end)


def refused_at_once(broker, request):
    """Runs request() while another client produces; checks that it is answered at once,
    that the broker's memory did not grow and that the producer was served throughout.
    Returns what request() returned."""
    live = create_topic(broker, fresh_topic("live"), 1)
    with BackgroundProducer(broker, live) as prod:
        rss_before = rss_bytes(broker)
        started = time.monotonic()
        out = request()
        took_s = time.monotonic() - started
        time.sleep(1.0)
        rss_after = rss_bytes(broker)
        assert took_s < ANSWER_WITHIN_S, f"answered after {took_s:.1f} s"
        assert rss_after - rss_before < RSS_GROWTH_MAX_BYTES, (rss_before, rss_after)
        after = time.monotonic()
        assert prod.acks_between(after - 1.0, after) > 0, "the producer got no ack after the request"
    assert not prod.errors, prod.errors[:5]
    return out


def kp_admin(broker, request_timeout_ms=ADMIN_TIMEOUT_MS):
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=request_timeout_ms)


# --- raw requests --------------------------------------------------------------------

def create_topics_body(topics, validate_only=False):
    """topics: [(name, num_partitions, [assignment partition indexes])], replication 1."""
    def topic(name, partitions, assignments):
        return (kwire.string(name) + kwire.int32(partitions) + kwire.int16(-1 if assignments else 1)
                + kwire.array([kwire.int32(p) + kwire.array([kwire.int32(0)]) for p in assignments])
                + kwire.array([]))
    return (kwire.array([topic(*t) for t in topics]) + kwire.int32(30_000)
            + kwire.int8(1 if validate_only else 0))


def create_topics_raw(broker, topics, validate_only=False):
    """{name: (error_code, error_message)} of a CreateTopics v4."""
    with kwire.Conn(broker.port) as conn:
        body = conn.request(API_CREATE_TOPICS, CREATE_TOPICS_VERSION,
                            create_topics_body(topics, validate_only), timeout_s=ANSWER_WITHIN_S)
    r = kwire.Reader(body)
    r.int32()  # throttle time
    out = dict(r.array(lambda: (r.string(), (r.int16(), r.string()))))
    r.expect_end()
    return out


def create_partitions_raw(broker, counts, validate_only=False):
    """{name: (error_code, error_message)} of a CreatePartitions v1 growing each topic to
    its count ({name: count}, or [(name, count)] to name a topic twice)."""
    pairs = counts.items() if isinstance(counts, dict) else counts
    body = (kwire.array([kwire.string(name) + kwire.int32(count) + kwire.int32(-1)  # null assignments
                         for name, count in pairs])
            + kwire.int32(30_000) + kwire.int8(1 if validate_only else 0))
    with kwire.Conn(broker.port) as conn:
        resp = conn.request(API_CREATE_PARTITIONS, CREATE_PARTITIONS_VERSION, body,
                            timeout_s=ANSWER_WITHIN_S)
    r = kwire.Reader(resp)
    r.int32()  # throttle time
    out = dict(r.array(lambda: (r.string(), (r.int16(), r.string()))))
    r.expect_end()
    return out


def metadata_raw(broker, names):
    """{name: (error_code, partition count)} of a Metadata v4 that allows auto-creation."""
    return dict(metadata_entries(broker, names))


def metadata_entries(broker, names):
    """[(name, (error_code, partition count))] of a Metadata v4, in answer order."""
    body = kwire.array([kwire.string(n) for n in names]) + kwire.int8(1)
    with kwire.Conn(broker.port) as conn:
        resp = conn.request(kwire.API_METADATA, METADATA_VERSION, body, timeout_s=ANSWER_WITHIN_S)
    r = kwire.Reader(resp)
    r.int32()  # throttle time
    r.array(lambda: (r.int32(), r.string(), r.int32(), r.string()))  # brokers
    r.string()  # cluster id
    r.int32()  # controller id

    def partition():
        r.int16(), r.int32(), r.int32()
        r.array(r.int32)
        r.array(r.int32)

    def topic():
        code = r.int16()
        name = r.string()
        r.int8()  # is internal
        return name, (code, len(r.array(partition)))

    out = r.array(topic)
    r.expect_end()
    return out


# --- CreateTopics --------------------------------------------------------------------

def test_kafka_python_huge_create_topics_is_refused_at_once(broker_factory):
    broker = broker_factory(smp=1)
    admin = kp_admin(broker)
    try:
        def request():
            with pytest.raises(PolicyViolationError) as e:
                admin.create_topics([NewTopic("huge", HUGE_PARTITIONS, 1)])
            return str(e.value)
        error = refused_at_once(broker, request)
    finally:
        admin.close()
    assert MESSAGE in error, error
    assert "huge" not in partition_counts(broker)


def test_raw_huge_create_topics_is_refused_at_once(broker_factory):
    broker = broker_factory(smp=1)
    out = refused_at_once(broker, lambda: create_topics_raw(broker, [("huge", HUGE_PARTITIONS, [])]))
    assert out == {"huge": (ERR_POLICY_VIOLATION, MESSAGE)}
    assert "huge" not in partition_counts(broker)


def test_the_whole_request_is_refused_and_sums_do_not_overflow(broker):
    a, b, c = fresh_topic("a"), fresh_topic("b"), fresh_topic("c")
    refused = {a: (ERR_POLICY_VIOLATION, MESSAGE), b: (ERR_POLICY_VIOLATION, MESSAGE)}
    # Each fits alone; together they do not, so neither is created.
    assert create_topics_raw(broker, [(a, 5_000, []), (b, 5_001, [])]) == refused
    # In 32 bits these add up to -2.
    assert create_topics_raw(broker, [(a, 2**31 - 1, []), (b, 2**31 - 1, [])]) == refused
    # Explicit assignments count one partition each; -1 counts num.partitions (1).
    out = create_topics_raw(broker, [(a, -1, list(range(BOUND_DEFAULT))), (b, -1, []), (c, 1, [])],
                            validate_only=True)
    assert out == {**refused, c: (ERR_POLICY_VIOLATION, MESSAGE)}
    # validate_only changes nothing about the bound, and at the bound it passes.
    assert create_topics_raw(broker, [(a, HUGE_PARTITIONS, [])], validate_only=True) == {a: refused[a]}
    out = create_topics_raw(broker, [(a, BOUND_DEFAULT - 1, []), (b, 1, [])], validate_only=True)
    assert out == {a: (0, None), b: (0, None)}
    assert not {a, b, c} & set(partition_counts(broker))


def test_a_request_at_exactly_the_bound_creates_its_topics(broker_factory):
    # A configured bound: creating (and at teardown closing) 10,000 partitions takes
    # tens of seconds on a small machine. The default bound's edge is checked above with
    # validate_only, which runs the same check.
    bound = 300
    broker = broker_factory({"max.partitions.per.request": str(bound)})
    a, b = fresh_topic("a"), fresh_topic("b")
    admin = kp_admin(broker)
    try:
        admin.create_topics([NewTopic(a, bound - 1, 1), NewTopic(b, 1, 1)])
        with pytest.raises(PolicyViolationError):
            admin.create_topics([NewTopic(fresh_topic("c"), bound + 1, 1)])
    finally:
        admin.close()
    counts = partition_counts(broker)
    assert (counts[a], counts[b]) == (bound - 1, 1)
    assert len(counts) == 2, counts


# --- CreatePartitions ----------------------------------------------------------------

def test_kafka_python_huge_create_partitions_is_refused_at_once(broker_factory):
    broker = broker_factory(smp=1)
    topic = create_topic(broker, fresh_topic("grow"), 1)
    admin = kp_admin(broker)
    try:
        def request():
            with pytest.raises(PolicyViolationError) as e:
                admin.create_partitions({topic: NewPartitions(HUGE_PARTITIONS)})
            return str(e.value)
        error = refused_at_once(broker, request)
    finally:
        admin.close()
    assert MESSAGE in error, error
    assert partition_counts(broker)[topic] == 1


def test_raw_huge_create_partitions_is_refused_at_once(broker_factory):
    broker = broker_factory(smp=1)
    topic = create_topic(broker, fresh_topic("grow"), 1)
    out = refused_at_once(broker, lambda: create_partitions_raw(broker, {topic: HUGE_PARTITIONS}))
    assert out == {topic: (ERR_POLICY_VIOLATION, MESSAGE)}
    assert partition_counts(broker)[topic] == 1


def test_create_partitions_counts_new_partitions_over_the_request(broker_factory):
    bound = 100
    broker = broker_factory({"max.partitions.per.request": str(bound)})
    a = create_topic(broker, fresh_topic("a"), 10)
    b = create_topic(broker, fresh_topic("b"), 1)
    refused = (ERR_POLICY_VIOLATION, MESSAGE)
    # 51 + 50 new partitions: one over, so neither grows.
    assert create_partitions_raw(broker, {a: 61, b: 51}) == {a: refused, b: refused}
    # In 32 bits these two growths add up to a negative number.
    assert create_partitions_raw(broker, {a: 2**31 - 1, b: 2**31 - 1}) == {a: refused, b: refused}
    assert partition_counts(broker)[a] == 10 and partition_counts(broker)[b] == 1
    # Exactly the bound: 50 + 50.
    assert create_partitions_raw(broker, {a: 60, b: 51}) == {a: (0, None), b: (0, None)}
    counts = partition_counts(broker)
    assert (counts[a], counts[b]) == (60, 51)


def test_a_topic_named_twice_is_refused_once_and_not_counted(broker_factory):
    broker = broker_factory({"max.partitions.per.request": "100"})
    a, b = fresh_topic("a"), fresh_topic("b")
    duplicate = (ERR_INVALID_REQUEST, "Duplicate topic name.")
    # Counted, the two entries for a would put the request over the bound.
    out = create_topics_raw(broker, [(a, 60, []), (b, 100, []), (a, 60, [])])
    assert out == {a: duplicate, b: (0, None)}
    assert a not in partition_counts(broker)
    grown = create_partitions_raw(broker, [(b, 150), (b, 150)])
    assert grown == {b: duplicate}
    assert partition_counts(broker)[b] == 100


def test_kafka_name_of_the_bound_is_honoured(broker_factory):
    broker = broker_factory({"controller.max.records.per.batch": "5"})
    a = fresh_topic("a")
    assert create_topics_raw(broker, [(a, 6, [])]) == {a: (ERR_POLICY_VIOLATION, MESSAGE)}
    assert create_topics_raw(broker, [(a, 5, [])]) == {a: (0, None)}


# --- auto-creation through Metadata --------------------------------------------------

def test_metadata_auto_creation_is_held_to_the_bound(broker_factory):
    broker = broker_factory({"num.partitions": "10", "max.partitions.per.request": "100"})
    names = [fresh_topic(f"auto{i}") for i in range(11)]
    # 11 x 10 partitions: none is created, each says why.
    out = metadata_raw(broker, names)
    assert out == {n: (ERR_POLICY_VIOLATION, 0) for n in names}
    assert not set(names) & set(partition_counts(broker))
    # A name listed twice counts once: 10 x 10 is the bound.
    out = metadata_raw(broker, names[:10] + names[:10])
    assert {n: out[n] for n in names[:10]} == {n: (0, 10) for n in names[:10]}
    # Names Kafka would not create say so, as in Kafka.
    bad = "bad/name"
    assert metadata_raw(broker, [bad]) == {bad: (ERR_INVALID_TOPIC_EXCEPTION, 0)}


def test_metadata_auto_creating_a_huge_topic_is_refused_at_once(broker_factory):
    """num.partitions is per topic: one auto-created topic can be over the bound alone."""
    broker = broker_factory({"num.partitions": str(HUGE_PARTITIONS)})
    name = fresh_topic("auto")
    out = refused_at_once(broker, lambda: metadata_raw(broker, [name]))
    assert out == {name: (ERR_POLICY_VIOLATION, 0)}



# --- Fetch ---------------------------------------------------------------------------

FETCH_VERSION = 11
PARTITION_MAX_BYTES_ANY = 2**31 - 1


def status_bytes(broker, field):
    with open(f"/proc/{broker.proc.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} line")


def fill(broker, topic, batches, value_bytes):
    """Appends `batches` one-record batches of `value_bytes` each to partition 0 (the same
    batch each time: the broker sets its offsets, which the CRC leaves out)."""
    batch = kwire.record_batch([(None, b"v" * value_bytes, [], 0)], 1_700_000_000_000)
    with kwire.Conn(broker.port, timeout_s=30) as conn:
        for _ in range(batches):
            code, _ = kwire.produce(conn, 8, topic, 0, batch, acks=1)
            assert code == 0, code


def fetch_bytes(broker, topic, max_bytes, partition_max_bytes):
    """Record bytes one Fetch v11 from offset 0 returns, and its error code."""
    partition = (kwire.int32(0) + kwire.int32(-1) + kwire.int64(0) + kwire.int64(-1)
                 + kwire.int32(partition_max_bytes))
    body = (kwire.int32(-1) + kwire.int32(0) + kwire.int32(1) + kwire.int32(max_bytes) + kwire.int8(0)
            + kwire.int32(0) + kwire.int32(-1)
            + kwire.array([kwire.string(topic) + kwire.array([partition])])
            + kwire.array([]) + kwire.string(""))
    with kwire.Conn(broker.port, timeout_s=30) as conn:
        resp = conn.request(kwire.API_FETCH, FETCH_VERSION, body)
    _, parts = kwire.parse_fetch_response_v11(resp)
    code, _, records = parts[(topic, 0)]
    return code, records


def test_fetch_max_bytes_caps_what_a_consumer_may_ask_for(broker_factory):
    broker = broker_factory({"fetch.max.bytes": "100000"})
    topic = create_topic(broker, fresh_topic("fetch"), 1)
    fill(broker, topic, 10, 30_000)
    code, records = fetch_bytes(broker, topic, 50 << 20, 50 << 20)
    assert code == 0
    # Whole batches up to the broker's 100,000 bytes, not the 300,000 asked for.
    assert len(kwire.batch_headers(records)) == 3, len(records)
    # The first batch comes back even when it alone is over the limit, as in Kafka.
    small = broker_factory({"fetch.max.bytes": "1024"})
    topic = create_topic(small, fresh_topic("fetch"), 1)
    fill(small, topic, 3, 30_000)
    code, records = fetch_bytes(small, topic, 50 << 20, 50 << 20)
    assert code == 0 and len(kwire.batch_headers(records)) == 1


def test_a_fetch_reads_no_more_than_its_response_holds(broker_factory):
    """partition_max_bytes of 2 GiB with a response max_bytes of 1 MiB: the broker used to
    read the partition's whole log into memory and trim afterwards."""
    broker = broker_factory(smp=1)
    topic = create_topic(broker, fresh_topic("fetch"), 1)
    log_bytes = 160 << 20
    fill(broker, topic, log_bytes // 1_000_000, 1_000_000)
    broker.restart()  # nothing cached, and a fresh peak RSS
    peak_before = status_bytes(broker, "VmHWM")
    code, records = fetch_bytes(broker, topic, 1 << 20, PARTITION_MAX_BYTES_ANY)
    peak_after = status_bytes(broker, "VmHWM")
    assert code == 0 and len(kwire.batch_headers(records)) == 1
    assert peak_after - peak_before < RSS_GROWTH_MAX_BYTES, (peak_before, peak_after)


# --- DeleteTopics and AlterConfigs: Kafka's batch of 10,000 --------------------------

API_DELETE_TOPICS = 20
API_INCREMENTAL_ALTER_CONFIGS = 44
BATCH_MESSAGE = "Unable to perform excessively large batch operation."
CHANGES_MAX = 10_000
RESOURCE_TOPIC = 2
OP_SET = 0


def incremental_alter_raw(broker, topic, keys):
    """Error code and message of an IncrementalAlterConfigs v0 setting `keys` on one topic."""
    configs = [kwire.string(k) + kwire.int8(OP_SET) + kwire.nullable_string(v) for k, v in keys]
    body = (kwire.array([kwire.int8(RESOURCE_TOPIC) + kwire.string(topic) + kwire.array(configs)])
            + kwire.int8(1))  # validate only
    with kwire.Conn(broker.port) as conn:
        resp = conn.request(API_INCREMENTAL_ALTER_CONFIGS, 0, body, timeout_s=ANSWER_WITHIN_S)
    r = kwire.Reader(resp)
    r.int32()  # throttle time
    out = r.array(lambda: (r.int16(), r.string(), r.int8(), r.string()))
    r.expect_end()
    assert len(out) == 1 and out[0][3] == topic, out
    return out[0][:2]


def test_config_changes_past_kafkas_batch_are_refused(broker):
    topic = create_topic(broker, fresh_topic("cfg"), 1)
    at_bound = [("retention.ms", str(1000 + i)) for i in range(CHANGES_MAX)]
    assert incremental_alter_raw(broker, topic, at_bound)[0] == 0
    over = at_bound + [("retention.ms", "5")]
    assert incremental_alter_raw(broker, topic, over) == (ERR_POLICY_VIOLATION, BATCH_MESSAGE)


def test_delete_topics_counts_only_topics_that_exist_against_kafkas_batch(broker):
    """Deleting 10,001 existing topics (refused, unit-tested in request_limits) takes
    minutes to set up; names of absent topics change nothing and do not count."""
    topic = create_topic(broker, fresh_topic("del"), 1)
    absent = [fresh_topic("absent") for _ in range(CHANGES_MAX + 1)]
    body = kwire.array([kwire.string(n) for n in absent + [topic]]) + kwire.int32(30_000)
    with kwire.Conn(broker.port) as conn:
        resp = conn.request(API_DELETE_TOPICS, 3, body, timeout_s=ANSWER_WITHIN_S * 5)
    r = kwire.Reader(resp)
    r.int32()
    out = dict(r.array(lambda: (r.string(), r.int16())))
    assert out[topic] == 0 and {out[n] for n in absent} == {kwire.ERR_UNKNOWN_TOPIC_OR_PARTITION}


# --- DescribeConfigs -----------------------------------------------------------------

API_DESCRIBE_CONFIGS = 32


def describe_configs_raw(broker, resources):
    """[(error_code, name, config count)] of a DescribeConfigs v1 of (type, name) pairs."""
    body = kwire.array([kwire.int8(t) + kwire.string(n) + kwire.int32(-1) for t, n in resources])
    body += kwire.int8(0)  # no synonyms
    with kwire.Conn(broker.port) as conn:
        resp = conn.request(API_DESCRIBE_CONFIGS, 1, body, timeout_s=ANSWER_WITHIN_S * 5)
    r = kwire.Reader(resp)
    r.int32()  # throttle time

    def config():
        r.string(), r.string(), r.int8(), r.int8(), r.int8()
        r.array(lambda: (r.string(), r.string(), r.int8()))

    def result():
        code = r.int16()
        r.string()  # message
        r.int8()  # resource type
        return code, r.string(), len(r.array(config))

    out = r.array(result)
    r.expect_end()
    return out


def test_describe_configs_describes_a_repeated_resource_once(broker_factory):
    broker = broker_factory(smp=1)
    topic = create_topic(broker, fresh_topic("cfg"), 1)
    repeats = 20_000
    peak_before = status_bytes(broker, "VmHWM")
    out = describe_configs_raw(broker, [(RESOURCE_TOPIC, topic)] * repeats + [(4, "0")])
    peak_after = status_bytes(broker, "VmHWM")
    first, rest, broker_entry = out[0], out[1:-1], out[-1]
    assert first[0] == 0 and first[2] > 20, first
    assert {(code, n) for code, n, _ in rest} == {(ERR_INVALID_REQUEST, topic)}
    assert len(rest) == repeats - 1
    assert broker_entry[0] == 0 and broker_entry[2] > 0, broker_entry
    # Each repeat used to be described in full: 160 MB for this request.
    assert peak_after - peak_before < RSS_GROWTH_MAX_BYTES, (peak_before, peak_after)


def test_metadata_answers_a_repeated_topic_once(broker_factory):
    """As Kafka, which answers the set of names asked for."""
    broker = broker_factory(smp=1)
    topic = create_topic(broker, fresh_topic("md"), 200)
    peak_before = status_bytes(broker, "VmHWM")
    out = metadata_entries(broker, [topic] * 20_000)
    peak_after = status_bytes(broker, "VmHWM")
    assert out == [(topic, (0, 200))]
    assert peak_after - peak_before < RSS_GROWTH_MAX_BYTES, (peak_before, peak_after)


# --- groups named more than once ----------------------------------------------------

API_OFFSET_FETCH = 9
API_DESCRIBE_GROUPS = 15
GROUP_REPEATS = 20_000


def describe_groups_v0(broker, groups):
    """[(error_code, group id, state, member count)] of a DescribeGroups v0."""
    with kwire.Conn(broker.port) as conn:
        resp = conn.request(API_DESCRIBE_GROUPS, 0, kwire.array([kwire.string(g) for g in groups]),
                            timeout_s=ANSWER_WITHIN_S * 10)
    r = kwire.Reader(resp)

    def member():
        r.string(), r.string(), r.string(), r.bytes(), r.bytes()

    def group():
        code, group_id, state = r.int16(), r.string(), r.string()
        r.string(), r.string()  # protocol type and data
        return code, group_id, state, len(r.array(member))

    out = r.array(group)
    r.expect_end()
    return out


def test_describe_groups_describes_a_repeated_group_once(broker):
    topic = create_topic(broker, fresh_topic("grp"), 1)
    group = fresh_topic("g")
    c = consumer(broker, {"group.id": group, "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 30
        while not c.assignment():
            assert time.monotonic() < deadline, "no assignment in 30 s"
            c.poll(0.2)
        out = describe_groups_v0(broker, [group] * GROUP_REPEATS)
    finally:
        c.close()
    assert out[0] == (0, group, "Stable", 1), out[0]
    assert {o[:2] for o in out[1:]} == {(ERR_INVALID_REQUEST, group)}
    assert len(out) == GROUP_REPEATS


def compact_reader_string(r):
    n = varint_unsigned(r) - 1
    return None if n < 0 else r._take(n).decode()


def varint_unsigned(r):
    shift, value = 0, 0
    while True:
        b = r.int8() & 0xFF
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value
        shift += 7


def test_offset_fetch_fetches_a_repeated_group_once(broker):
    topic = create_topic(broker, fresh_topic("grp"), 1)
    group = fresh_topic("g")
    c = consumer(broker, {"group.id": group})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    finally:
        c.close()
    # OffsetFetch v8 (flexible): groups [group_id, topics: null], require_stable.
    entry = kwire.compact_string(group) + b"\x00" + kwire.EMPTY_TAGGED_FIELDS
    body = (kwire.varint_unsigned(GROUP_REPEATS + 1) + entry * GROUP_REPEATS + kwire.int8(0)
            + kwire.EMPTY_TAGGED_FIELDS)
    with kwire.Conn(broker.port) as conn:
        resp = conn.request(API_OFFSET_FETCH, 8, body, timeout_s=ANSWER_WITHIN_S * 10,
                            flexible_header=True)
    r = kwire.Reader(resp)
    assert r.int8() == 0  # response header v1: no tagged fields
    r.int32()  # throttle time

    def partition():
        index, offset = r.int32(), r.int64()
        r.int32()  # leader epoch
        compact_reader_string(r)  # metadata
        r.int16()
        assert r.int8() == 0
        return index, offset

    def topic_entry():
        name = compact_reader_string(r)
        parts = [partition() for _ in range(varint_unsigned(r) - 1)]
        assert r.int8() == 0
        return name, parts

    def group_entry():
        group_id = compact_reader_string(r)
        topics = [topic_entry() for _ in range(varint_unsigned(r) - 1)]
        code = r.int16()
        assert r.int8() == 0
        return group_id, topics, code

    groups = [group_entry() for _ in range(varint_unsigned(r) - 1)]
    assert r.int8() == 0
    r.expect_end()
    assert groups[0] == (group, [(topic, [(0, 5)])], 0), groups[0]
    assert {(g, len(t), code) for g, t, code in groups[1:]} == {(group, 0, ERR_INVALID_REQUEST)}
    assert len(groups) == GROUP_REPEATS


# --- Produce: what the batch cache keeps ---------------------------------------------

def test_cached_batches_do_not_pin_the_requests_they_came_in(broker_factory):
    """A few bytes appended from a request of 8 MiB (the rest for a topic that does not
    exist): the shard's batch cache used to keep each whole request alive."""
    broker = broker_factory(smp=1)
    topic = create_topic(broker, fresh_topic("pin"), 1)
    batch = kwire.record_batch([(None, b"small", [], 0)], 1_700_000_000_000)
    junk = b"j" * (8 << 20)
    body = (kwire.nullable_string(None) + kwire.int16(1) + kwire.int32(10_000)
            + kwire.array([kwire.string(topic) + kwire.array([kwire.int32(0) + kwire.nullable_bytes(batch)]),
                           kwire.string(fresh_topic("absent"))
                           + kwire.array([kwire.int32(0) + kwire.nullable_bytes(junk)])]))
    rss_before = rss_bytes(broker)
    with kwire.Conn(broker.port, timeout_s=30) as conn:
        for _ in range(30):
            out = kwire.parse_produce_response(8, conn.request(kwire.API_PRODUCE, 8, body))
            assert out[(topic, 0)][0] == 0, out
    time.sleep(0.5)
    rss_after = rss_bytes(broker)
    assert rss_after - rss_before < RSS_GROWTH_MAX_BYTES, (rss_before, rss_after)


def test_group_members_do_not_pin_their_join_requests(broker_factory):
    """JoinGroup v0 requests of 2 MiB (trailing bytes, which Kafka's decoders ignore too)
    with a few bytes of metadata: each member used to keep its whole request alive."""
    broker = broker_factory({"group.initial.rebalance.delay.ms": "0"}, smp=1)
    padding = b"\x00" * (2 << 20)
    rss_before = rss_bytes(broker)
    with kwire.Conn(broker.port, timeout_s=30) as conn:
        for _ in range(100):
            body = (kwire.string(fresh_topic("g")) + kwire.int32(30_000) + kwire.string("")
                    + kwire.string("consumer")
                    + kwire.array([kwire.string("range") + kwire.nullable_bytes(b"meta")]) + padding)
            r = kwire.Reader(conn.request(11, 0, body))
            assert r.int16() == 0  # joined, and leader of its own group
    time.sleep(0.5)
    rss_after = rss_bytes(broker)
    assert rss_after - rss_before < RSS_GROWTH_MAX_BYTES, (rss_before, rss_after)


ERR_INVALID_RECORD = 87


def test_one_record_batch_per_partition_as_kafka(broker):
    """Produce v3+ carries exactly one batch per partition; more would let one request
    register a new idempotent producer per tiny batch."""
    topic = create_topic(broker, fresh_topic("one"), 1)
    batch = kwire.record_batch([(None, b"x", [], 0)], 1_700_000_000_000)
    with kwire.Conn(broker.port) as conn:
        assert kwire.produce(conn, 8, topic, 0, batch + batch)[0] == ERR_INVALID_RECORD
        assert kwire.produce(conn, 8, topic, 0, batch) == (0, 0)


API_LIST_OFFSETS = 2


def test_list_offsets_refuses_a_repeated_partition_as_kafka(broker):
    """Each timestamp lookup may read a batch from disk; Kafka answers every occurrence
    of a partition named twice with INVALID_REQUEST and looks none up."""
    topic = create_topic(broker, fresh_topic("lo"), 2)
    latest = -1
    parts = [kwire.int32(p) + kwire.int64(latest) for p in (0, 1, 0)]
    body = kwire.int32(-1) + kwire.array([kwire.string(topic) + kwire.array(parts)])
    with kwire.Conn(broker.port) as conn:
        resp = conn.request(API_LIST_OFFSETS, 1, body, timeout_s=ANSWER_WITHIN_S)
    r = kwire.Reader(resp)
    out = r.array(lambda: (r.string(), r.array(lambda: (r.int32(), r.int16(), r.int64(), r.int64()))))
    r.expect_end()
    (name, answers), = out
    assert name == topic
    assert [(p, code) for p, code, _, _ in answers] == [
        (0, ERR_INVALID_REQUEST), (1, 0), (0, ERR_INVALID_REQUEST)]
