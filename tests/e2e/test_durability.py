"""kill -9 in the middle of an acks=all run: nothing acknowledged may be lost."""

import threading
import time

import pytest

from clients import Deliveries, consume, create_topic, flush, producer, wait_until, watermarks
from conftest import fresh_topic

PARTITIONS = 4
MESSAGES = 20000
KILL_AFTER_ACKS = 6000
PACE_EVERY_MESSAGES = 500
PACE_POLL_S = 0.05
KILL_WAIT_TIMEOUT_S = 120
RESTART_DELAY_S = 0.5


class Killer(threading.Thread):
    """Waits until KILL_AFTER_ACKS deliveries, kills the broker with SIGKILL, starts it again."""

    def __init__(self, broker, deliveries):
        super().__init__(daemon=True)
        self.broker = broker
        self.deliveries = deliveries
        self.acked_at_kill = None
        self.error = None

    def run(self):
        try:
            deadline = time.monotonic() + KILL_WAIT_TIMEOUT_S
            while len(self.deliveries.ok) < KILL_AFTER_ACKS:
                if time.monotonic() >= deadline:
                    raise AssertionError(f"only {len(self.deliveries.ok)} acks after {KILL_WAIT_TIMEOUT_S} s")
                time.sleep(0.001)
            self.broker.kill9()
            self.acked_at_kill = len(self.deliveries.ok)
            time.sleep(RESTART_DELAY_S)
            self.broker.start()
        except BaseException as e:  # re-raised in the test's thread
            self.error = e


@pytest.mark.timeout(300)
def test_acks_all_survives_kill9(broker):
    topic = create_topic(broker, fresh_topic("durable"), PARTITIONS)
    deliveries = Deliveries()
    prod = producer(broker, {"acks": "all", "linger.ms": 5, "batch.num.messages": 200,
                             "message.timeout.ms": 120000, "retry.backoff.ms": 100,
                             "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    killer = Killer(broker, deliveries)
    killer.start()
    for i in range(MESSAGES):
        prod.produce(topic, value=f"durable-{i}".encode(), partition=i % PARTITIONS, on_delivery=deliveries)
        if i % PACE_EVERY_MESSAGES == 0:
            prod.poll(PACE_POLL_S)
    flush(prod, 150)
    killer.join(timeout=KILL_WAIT_TIMEOUT_S)
    if killer.error:
        raise killer.error
    assert killer.acked_at_kill is not None, "the broker was never killed"
    assert killer.acked_at_kill < MESSAGES, "the kill came after the run, not in its middle"
    assert broker.starts == 2

    # Every message is acknowledged in the end (the producer retries across the restart),
    # each at an offset of its own.
    assert deliveries.errors == []
    assert len(deliveries.ok) == MESSAGES
    acked = {(p, off): v for p, off, _, v in deliveries.ok}
    assert len(acked) == MESSAGES, "two acknowledged messages share an offset"

    # The log may hold duplicates (written, then retried when the ack was lost), never gaps.
    ends = {p: watermarks(broker, topic, p) for p in range(PARTITIONS)}
    stored = consume(broker, topic, {p: 0 for p in range(PARTITIONS)},
                     sum(high for _, high in ends.values()), timeout_s=90)
    found = {(m.partition(), m.offset()): m.value() for m in stored}
    for p, (low, high) in ends.items():
        assert low == 0
        assert sorted(off for q, off in found if q == p) == list(range(high)), p
    lost = {k: v for k, v in acked.items() if found.get(k) != v}
    assert not lost, f"{len(lost)} acknowledged messages missing or changed, e.g. {sorted(lost.items())[:5]}"
    assert {f"durable-{i}".encode() for i in range(MESSAGES)} <= set(found.values())


CHECKPOINT_INTERVAL_MS = 300
CHECKPOINT_WAIT_S = 10


def read_checkpoint(path):
    """Kafka's checkpoint file: version, count, then `topic partition offset` lines."""
    lines = path.read_text().splitlines()
    assert lines[0] == "0", lines
    assert int(lines[1]) == len(lines) - 2, lines
    return {(t, int(p)): int(o) for t, p, o in (line.split() for line in lines[2:])}


def test_periodic_checkpoint_records_flushed_offsets(broker_factory):
    """Every log.flush.offset.checkpoint.interval.ms the broker flushes and checkpoints
    each partition's recovery point, so a kill -9 restart starts from there."""
    broker = broker_factory({"log.flush.offset.checkpoint.interval.ms": str(CHECKPOINT_INTERVAL_MS)})
    topic = create_topic(broker, fresh_topic("ckpt"), 2)
    prod = producer(broker, {"acks": "1"})
    for i in range(1000):
        prod.produce(topic, value=f"v{i}".encode(), partition=i % 2)
    flush(prod)
    path = broker.log_dirs[0] / "recovery-point-offset-checkpoint"
    wait_until(lambda: path.exists() and read_checkpoint(path).get((topic, 0)) == 500
               and read_checkpoint(path).get((topic, 1)) == 500,
               CHECKPOINT_WAIT_S, "recovery points of 500 in the checkpoint file")
    broker.kill9()
    broker.start()
    assert watermarks(broker, topic, 0) == (0, 500)
    got = consume(broker, topic, {0: 0, 1: 0}, 1000)
    assert sorted(m.value() for m in got) == sorted(f"v{i}".encode() for i in range(1000))
