"""Exactly once through kill -9 (issue 11): a consume-transform-produce loop (read a
topic, write a transformed record per input to another, commit the input offsets in the
same transaction) is killed with kill -9 at random points, round after round, and
restarted with the same transactional.id. The output read with read_committed holds
every input exactly once, in order. One broker; driven by confluent-kafka."""

import random
import subprocess
import sys
import time

from clients import consume, create_topics, producer
from conftest import fresh_topic

INPUTS = 300
ROUNDS = 6
RUN_S = (0.3, 2.0)  # each killed round runs this long (uniform), then kill -9
FINISH_S = 60
SETTINGS = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
    "transaction.state.log.num.partitions": "5",
    "offsets.topic.num.partitions": "5",
}

# The loop: init_transactions (fencing the killed instance and aborting what it left
# open), start from the group's committed offset, then per poll of up to 10 records:
# begin, produce "out-<value>" for each, send the next offset, commit. Exits once it
# has committed past `inputs`. The consumer is assigned, not subscribed: no group
# rebalance waits on the killed instance's session.
WORKER = r"""
import sys
from confluent_kafka import Consumer, Producer, TopicPartition
bootstrap, txn_id, group, src, dst, inputs = sys.argv[1:7]
inputs = int(inputs)
base = {"bootstrap.servers": bootstrap, "broker.address.family": "v4"}
p = Producer({**base, "transactional.id": txn_id, "acks": "all", "linger.ms": 2})
p.init_transactions(30)
c = Consumer({**base, "group.id": group, "enable.auto.commit": False,
              "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
start = c.committed([TopicPartition(src, 0)], timeout=30)[0].offset
start = max(start, 0)
c.assign([TopicPartition(src, 0, start)])
position = start
while position < inputs:
    msgs = [m for m in c.consume(10, 0.5) if m.error() is None]
    if not msgs:
        continue
    p.begin_transaction()
    for m in msgs:
        p.produce(dst, value=b"out-" + m.value(), partition=0)
    position = msgs[-1].offset() + 1
    p.send_offsets_to_transaction([TopicPartition(src, 0, position)], c.consumer_group_metadata(), 30)
    p.commit_transaction(30)
c.close()
print("done", position)
"""


def run_worker(broker, txn_id, group, src, dst):
    return subprocess.Popen([sys.executable, "-c", WORKER, broker.bootstrap, txn_id, group, src, dst, str(INPUTS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def test_consume_transform_produce_killed_at_random_points_is_exactly_once(broker_factory):
    broker = broker_factory(overrides=SETTINGS)
    src, dst = fresh_topic("eos-in"), fresh_topic("eos-out")
    create_topics(broker, {src: 1, dst: 1})
    plain = producer(broker, {"acks": "all", "enable.idempotence": True})
    for i in range(INPUTS):
        plain.produce(src, value=f"in-{i}".encode(), partition=0)
    assert plain.flush(30) == 0
    txn_id, group = f"eos-{fresh_topic('t')}", f"eos-{fresh_topic('g')}"
    rng = random.Random(11)
    for _ in range(ROUNDS):
        proc = run_worker(broker, txn_id, group, src, dst)
        time.sleep(rng.uniform(*RUN_S))
        proc.kill()  # SIGKILL: mid-poll, mid-transaction or mid-commit
        proc.wait(10)
    proc = run_worker(broker, txn_id, group, src, dst)
    out, err = proc.communicate(timeout=FINISH_S)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert out.decode().split() == ["done", str(INPUTS)]
    got = consume(broker, dst, {0: 0}, INPUTS, config={"isolation.level": "read_committed"})
    assert [m.value() for m in got] == [f"out-in-{i}".encode() for i in range(INPUTS)]
