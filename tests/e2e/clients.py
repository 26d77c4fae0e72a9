"""Client helpers for the tests: confluent-kafka, kafka-python and kcat, every wait bounded."""

import os
import shutil
import subprocess
import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

KCAT_TIMEOUT_S = 60
CONSUME_TIMEOUT_S = 30
ADMIN_TIMEOUT_S = 15
FLUSH_TIMEOUT_S = 30
CONSUME_BATCH_MESSAGES = 1000
POLL_SLICE_S = 0.2


# --- kcat ----------------------------------------------------------------------------

def kcat_bin():
    path = os.environ.get("KCAT") or shutil.which("kcat")
    if not path:
        raise AssertionError("kcat not found on PATH: scripts/test.sh --install-only installs it")
    return path


def kcat(broker, *args, input=None, timeout_s=KCAT_TIMEOUT_S, check=True):
    """Runs kcat against broker; raises with its stderr unless it exits 0 (when check)."""
    cmd = [kcat_bin(), "-b", broker.bootstrap, "-X", "broker.address.family=v4", *args]
    proc = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout_s)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\nstderr:\n{proc.stderr.decode(errors='replace')}")
    return proc


# --- confluent-kafka -----------------------------------------------------------------

def base_config(broker):
    return {"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"}


def producer(broker, config=None):
    return Producer({**base_config(broker), "message.timeout.ms": 30000, **(config or {})})


def admin(broker):
    return AdminClient(base_config(broker))


class Deliveries:
    """Delivery-report callback that records (partition, offset, key, value) or the error."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = []
        self.errors = []

    def __call__(self, err, msg):
        with self.lock:
            if err is None:
                self.ok.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
            else:
                self.errors.append((err, msg.partition(), msg.key()))

    def count(self):
        with self.lock:
            return len(self.ok) + len(self.errors)


def flush(prod, timeout_s=FLUSH_TIMEOUT_S):
    left = prod.flush(timeout_s)
    assert left == 0, f"{left} messages still undelivered after {timeout_s} s"


def admin_results(broker, method, *args, timeout_s=ADMIN_TIMEOUT_S, **kwargs):
    """Calls AdminClient.<method> and waits for all its futures: {key: result, or the KafkaError}.

    The AdminClient is held here until every future is done: a client that is garbage
    collected early fails its futures with _DESTROY.
    """
    client = admin(broker)
    futures = getattr(client, method)(*args, request_timeout=timeout_s, **kwargs)
    out = {}
    for key, future in futures.items():
        try:
            out[key] = future.result(timeout=timeout_s)
        except KafkaException as e:
            out[key] = e.args[0]
    return out


def create_topics(broker, partitions_by_topic, timeout_s=ADMIN_TIMEOUT_S):
    results = admin_results(broker, "create_topics",
                            [NewTopic(name, num_partitions=n, replication_factor=1)
                             for name, n in partitions_by_topic.items()],
                            operation_timeout=timeout_s, timeout_s=timeout_s)
    assert results == {name: None for name in partitions_by_topic}, results


def create_topic(broker, name, partitions):
    create_topics(broker, {name: partitions})
    return name


def delete_topics(broker, names, timeout_s=ADMIN_TIMEOUT_S):
    results = admin_results(broker, "delete_topics", list(names), operation_timeout=timeout_s,
                            timeout_s=timeout_s)
    assert results == {name: None for name in names}, results


def metadata(broker, timeout_s=ADMIN_TIMEOUT_S):
    """All-topics metadata; listing all topics never auto-creates one."""
    return admin(broker).list_topics(timeout=timeout_s)


# Kafka's internal topics (__consumer_offsets), which every broker lists from start-up.
INTERNAL_TOPIC_PREFIX = "__"


def partition_counts(broker):
    """Partitions per topic, internal topics left out."""
    return {name: len(t.partitions) for name, t in metadata(broker).topics.items()
            if not name.startswith(INTERNAL_TOPIC_PREFIX)}


def wait_until(predicate, timeout_s, what, interval_s=0.1):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def consumer(broker, config=None):
    # confluent-kafka insists on a group.id even for assign(); the tests never subscribe
    # or commit, so the group is never joined.
    return Consumer({
        **base_config(broker),
        "group.id": f"e2e-unused-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        **(config or {}),
    })


def consume(broker, topic, start_offsets, expected_count, timeout_s=CONSUME_TIMEOUT_S, config=None):
    """Messages from topic, partitions assigned at start_offsets {partition: offset}.

    Polls until expected_count messages arrived and every partition then reported EOF,
    so extra messages are returned too (and fail the caller's exact comparison).
    Partition-level errors fail at once; client-level errors (a refused coordinator
    lookup, say) are only reported if the wait times out.
    """
    c = consumer(broker, config)
    try:
        c.assign([TopicPartition(topic, p, off) for p, off in start_offsets.items()])
        got = []
        at_eof = set()
        client_errors = []
        deadline = time.monotonic() + timeout_s
        while not (len(got) >= expected_count and at_eof == set(start_offsets)):
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{topic}: {len(got)} of {expected_count} messages, EOF on {sorted(at_eof)} of "
                    f"{sorted(start_offsets)} after {timeout_s} s; client errors: {client_errors[:5]}")
            for msg in c.consume(CONSUME_BATCH_MESSAGES, POLL_SLICE_S):
                err = msg.error()
                if err is None:
                    got.append(msg)
                    at_eof.discard(msg.partition())
                elif err.code() == KafkaError._PARTITION_EOF:
                    at_eof.add(msg.partition())
                elif msg.topic() or err.fatal():
                    raise AssertionError(f"{topic} [{msg.partition()}]: consumer error {err}")
                else:
                    client_errors.append(err)
        return got
    finally:
        c.close()


def as_tuples(messages):
    """(partition, offset, key, value, headers, timestamp) for exact comparisons."""
    return [(m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp()) for m in messages]


def by_partition(messages):
    out = {}
    for m in messages:
        out.setdefault(m.partition(), []).append(m)
    return out


def watermarks(broker, topic, partition, timeout_s=ADMIN_TIMEOUT_S):
    c = consumer(broker)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout_s, cached=False)
    finally:
        c.close()

