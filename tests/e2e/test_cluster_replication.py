"""Replication (issue 10, phase 3): the seed walkthrough on three loopback brokers — a
topic with replication factor 3, records produced with acks=all, the leader killed with
kill -9, every record still read through the new leader; the killed broker comes back,
catches up and rejoins the ISR; min.insync.replicas refuses acks=all when the ISR is too
small. Driven by confluent-kafka (librdkafka) and kafka-python."""

import signal
import time
import urllib.request

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, TopicPartition as KpTopicPartition

from clients import wait_until
from conftest import fresh_topic

ADMIN_TIMEOUT_S = 10
SETTLE_S = 30
CONSUME_S = 30
# Short sessions and lag bounds keep the test quick; Kafka's defaults are 9 s and 30 s.
SETTINGS = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "3000",
}


def admin(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def partition0(broker, topic):
    """(leader, isr) of partition 0 in this broker's Metadata, or None."""
    try:
        md = admin(broker).list_topics(timeout=ADMIN_TIMEOUT_S)
    except KafkaException:
        return None
    t = md.topics.get(topic)
    if t is None or t.error is not None or 0 not in t.partitions:
        return None
    p = t.partitions[0]
    return p.leader, sorted(p.isrs)


def partition0_when(broker, topic, accept, what):
    """Waits for a (leader, isr) of partition 0 that `accept` takes, and returns that one:
    a second Metadata request right after the wait may time out or see a later change."""
    def state():
        s = partition0(broker, topic)
        return s if s is not None and accept(*s) else None
    return wait_until(state, SETTLE_S, what)


def gauge(broker, name):
    """A broker-wide gauge from the admin API's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def counter(broker, name):
    """A per-shard counter from /metrics, summed over shards."""
    with urllib.request.urlopen(f"http://127.0.0.1:{broker.admin_port}/metrics", timeout=5) as r:
        lines = [line for line in r.read().decode().splitlines() if line.startswith(name + "{")]
    assert lines, f"{name} not in /metrics"
    return sum(int(float(line.split()[-1])) for line in lines)


def produce(bootstrap, topic, values):
    """Produces with acks=all and idempotence; returns each value's offset."""
    offsets = {}
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            offsets[msg.value()] = msg.offset()

    p = Producer({"bootstrap.servers": bootstrap, "broker.address.family": "v4", "acks": "all",
                  "enable.idempotence": True, "message.timeout.ms": 30000})
    for v in values:
        p.produce(topic, v, partition=0, on_delivery=report)
    assert p.flush(60) == 0
    assert errors == [], errors
    return [offsets[v] for v in values]


def consume_all(bootstrap, topic, count):
    c = Consumer({"bootstrap.servers": bootstrap, "broker.address.family": "v4",
                  "group.id": fresh_topic("g"), "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + CONSUME_S
    while len(got) < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got.append((m.offset(), m.value()))
    c.close()
    return got


def test_seed_walkthrough_kill_the_leader_and_read_everything_back(broker_factory):
    members = broker_factory.cluster(3, overrides=SETTINGS)
    by_id = {b.node_id: b for b in members}
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3],
               SETTLE_S, "three live brokers")
    topic = fresh_topic("my-replicated-topic")
    client = admin(members[0])
    client.create_topics([NewTopic(topic, 1, 3)], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)
    leader, isr = partition0_when(members[0], topic, lambda _l, _i: True, "the topic")
    assert isr == [1, 2, 3]

    first = [f"m{i}".encode() for i in range(200)]
    assert produce(members[1].bootstrap, topic, first) == list(range(200))

    # kill -9 the leader: a survivor takes over from the ISR, nothing acknowledged lost.
    by_id[leader].kill9()
    survivors = [b for b in members if b.node_id != leader]
    new_leader, _ = partition0_when(survivors[0], topic, lambda l, _i: l not in (leader, -1), "a new leader")
    assert new_leader in [b.node_id for b in survivors]
    assert consume_all(survivors[0].bootstrap, topic, 200) == list(enumerate(first))
    # The ISR without the dead broker still takes acks=all.
    partition0_when(survivors[0], topic, lambda _l, i: i == sorted(b.node_id for b in survivors),
                    "the ISR shrinks to the survivors")
    second = [f"n{i}".encode() for i in range(50)]
    assert produce(survivors[1].bootstrap, topic, second) == list(range(200, 250))

    # The killed broker returns, catches up and rejoins the ISR.
    by_id[leader].start()
    current, _ = partition0_when(members[0], topic, lambda _l, i: i == [1, 2, 3],
                                 "the returning broker back in the ISR")
    # Kill the current leader too: the returned replica has everything.
    assert counter(by_id[current], "corelog_isr_expands_total") >= 1
    by_id[current].kill9()
    rest = [b for b in members if b.node_id != current]
    partition0_when(rest[0], topic, lambda l, _i: l not in (current, -1), "another new leader")
    expected = list(enumerate(first + second))
    assert consume_all(rest[0].bootstrap, topic, 250) == expected
    # kafka-python reads the same through whichever broker leads now.
    kc = KafkaConsumer(bootstrap_servers=rest[1].bootstrap, enable_auto_commit=False,
                       consumer_timeout_ms=10000)
    tp = KpTopicPartition(topic, 0)
    kc.assign([tp])
    kc.seek(tp, 0)
    got = []
    for m in kc:
        got.append((m.offset, m.value))
        if len(got) == 250:
            break
    kc.close()
    assert got == expected


def test_min_insync_replicas_refuses_acks_all_when_the_isr_is_too_small(broker_factory):
    members = broker_factory.cluster(3, overrides=SETTINGS)
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3],
               SETTLE_S, "three live brokers")
    topic = fresh_topic("minisr")
    client = admin(members[0])
    spec = NewTopic(topic, 1, 2, config={"min.insync.replicas": "2"})
    client.create_topics([spec], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)
    leader, isr = partition0_when(members[0], topic, lambda _l, _i: True, "the topic")
    assert len(isr) == 2
    assert produce(members[0].bootstrap, topic, [b"a", b"b"]) == [0, 1]
    by_id = {b.node_id: b for b in members}
    # The gauge counts every replicated partition the broker leads, __consumer_offsets'
    # and __transaction_state's too (created once three brokers are live, so the count
    # settles rather than being read once).
    def led_here():
        return sum(1 for t in client.list_topics(timeout=ADMIN_TIMEOUT_S).topics.values()
                   for p in t.partitions.values() if p.leader == leader)
    wait_until(lambda: (gauge(by_id[leader], "corelog_leader_partitions"),
                        gauge(by_id[leader], "corelog_under_replicated_partitions")) == (led_here(), 0),
               SETTLE_S, "the leader's gauges to count what it leads, nothing under-replicated")
    follower = next(b for b in members if b.node_id in isr and b.node_id != leader)
    follower.kill9()
    others = [b for b in members if b is not follower]
    partition0_when(others[0], topic, lambda _l, i: i == [leader], "the ISR shrinks to the leader")
    # The killed follower also held replicas of __consumer_offsets partitions this
    # broker leads: they are under-replicated too.
    def under_replicated_here():
        return sum(1 for t in admin(others[0]).list_topics(timeout=ADMIN_TIMEOUT_S).topics.values()
                   for p in t.partitions.values()
                   if p.leader == leader and len(p.isrs) < len(p.replicas))
    wait_until(lambda: gauge(by_id[leader], "corelog_under_replicated_partitions") == under_replicated_here() >= 1,
               SETTLE_S, "the leader counts it under-replicated")
    assert counter(by_id[leader], "corelog_isr_shrinks_total") >= 1
    errors = []
    p = Producer({"bootstrap.servers": others[0].bootstrap, "broker.address.family": "v4", "acks": "all",
                  "message.timeout.ms": 3000, "retries": 0})
    p.produce(topic, b"refused", partition=0, on_delivery=lambda err, msg: errors.append(err))
    p.flush(10)
    assert len(errors) == 1 and errors[0] is not None and errors[0].name() == "NOT_ENOUGH_REPLICAS", errors
    # acks=1 is still taken.
    p1 = Producer({"bootstrap.servers": others[0].bootstrap, "broker.address.family": "v4", "acks": "1"})
    delivered = []
    p1.produce(topic, b"one", partition=0, on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
    p1.flush(10)
    assert delivered == [(None, 2)]


def test_acks_all_waits_for_stopped_followers_to_leave_the_isr_before_answering(broker_factory):
    """The follower of a replication-factor-2 partition frozen with SIGSTOP: an acks=all
    record is answered only once the ISR has shrunk to the leader, never while the
    frozen follower could still be elected without it. The leader is then killed the
    moment the answer arrives and the follower thawed: it may not take over (it left the
    ISR), so when the leader returns the acknowledged record is still there. A broker
    that answered on its own fdatasync would have let the thawed follower, still in the
    ISR, lead without the record. (The third broker keeps the quorum's majority.)"""
    members = broker_factory.cluster(3, overrides=SETTINGS)
    by_id = {b.node_id: b for b in members}
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3],
               SETTLE_S, "three live brokers")
    topic = fresh_topic("frozen")
    client = admin(members[0])
    client.create_topics([NewTopic(topic, 1, 2)], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)
    leader_id, isr = partition0_when(members[0], topic, lambda _l, i: len(i) == 2, "the full ISR")
    leader = by_id[leader_id]
    followers = [by_id[i] for i in isr if i != leader_id]
    assert produce(leader.bootstrap, topic, [b"before"]) == [0]

    delivered = []
    p = Producer({"bootstrap.servers": leader.bootstrap, "broker.address.family": "v4", "acks": "all",
                  "message.timeout.ms": 30000, "retries": 0})
    for f in followers:
        f.proc.send_signal(signal.SIGSTOP)
    try:
        p.produce(topic, b"acked", partition=0, on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
        deadline = time.monotonic() + SETTLE_S
        while not delivered and time.monotonic() < deadline:
            p.poll(0.01)
        leader.kill9()
    finally:
        for f in followers:
            f.proc.send_signal(signal.SIGCONT)
    assert delivered == [(None, 1)]
    # Only the leader is in the ISR, and it is dead: the partition has no leader until
    # it returns (no unclean election); then it leads with the record.
    time.sleep(float(SETTINGS["broker.session.timeout.ms"]) / 1000 * 2)
    leader.start()
    elected, _ = partition0_when(followers[0], topic, lambda l, _i: l > 0, "a leader")
    assert elected == leader_id, "only the returning leader was electable"
    assert consume_all(followers[0].bootstrap, topic, 2) == [(0, b"before"), (1, b"acked")]


def test_acked_records_survive_leader_kills_during_an_idempotent_produce_run(broker_factory):
    """kill -9 of the partition leader twice while an idempotent acks=all producer runs:
    every acknowledged record is read back at its acknowledged offset, exactly once."""
    members = broker_factory.cluster(3, overrides=SETTINGS)
    by_id = {b.node_id: b for b in members}
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3],
               SETTLE_S, "three live brokers")
    topic = fresh_topic("acked")
    client = admin(members[0])
    client.create_topics([NewTopic(topic, 1, 3)], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)
    wait_until(lambda: partition0(members[0], topic) is not None, SETTLE_S, "the topic")

    acked = {}
    failed = []

    def report(err, msg):
        if err is None:
            acked[msg.value()] = msg.offset()
        else:
            failed.append((msg.value(), err))

    producer = Producer({"bootstrap.servers": ",".join(b.bootstrap for b in members),
                         "broker.address.family": "v4", "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5, "message.timeout.ms": 60000})
    sent = 0

    def produce_for(seconds):
        nonlocal sent
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            producer.produce(topic, f"v{sent:06d}".encode(), partition=0, on_delivery=report)
            sent += 1
            producer.poll(0.002)

    produce_for(1.5)
    for _ in range(2):
        leader, _ = wait_until(lambda: next((s for s in (partition0(b, topic) for b in members)
                                             if s is not None and s[0] > 0), None), SETTLE_S, "the leader")
        by_id[leader].kill9()
        produce_for(4)
        by_id[leader].start()
        wait_until(lambda: all((partition0(b, topic) or (0, []))[1] == [1, 2, 3] for b in members), SETTLE_S,
                   "the ISR whole again")
        produce_for(1)
    assert producer.flush(60) == 0
    # Idempotence and 60 s of delivery retries: every record is acknowledged.
    assert failed == [] and len(acked) == sent, (failed[:5], len(acked), sent)
    got = consume_all(members[0].bootstrap, topic, sent)
    offsets = [o for o, _ in got]
    assert offsets == list(range(len(got))), "offsets are contiguous"
    values = [v for _, v in got]
    assert len(set(values)) == len(values), "no record twice"
    assert {v: o for o, v in got} == acked


def test_sigterm_moves_leadership_before_the_broker_exits(broker_factory):
    """Controlled shutdown: with a 30 s session timeout, a stopped leader's partitions
    still get a new leader at once, because the stopping broker has itself fenced; an
    idempotent acks=all producer running through it sees no error and loses nothing."""
    settings = {**SETTINGS, "broker.session.timeout.ms": "30000"}
    members = broker_factory.cluster(3, overrides=settings)
    by_id = {b.node_id: b for b in members}
    wait_until(lambda: sorted(admin(members[0]).list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3],
               SETTLE_S, "three live brokers")
    topic = fresh_topic("rolling")
    client = admin(members[0])
    client.create_topics([NewTopic(topic, 1, 3)], request_timeout=ADMIN_TIMEOUT_S)[topic].result(ADMIN_TIMEOUT_S)
    leader, _ = partition0_when(members[0], topic, lambda _l, _i: True, "the topic")
    first = [f"a{i}".encode() for i in range(100)]
    assert produce(members[0].bootstrap, topic, first) == list(range(100))
    stopped_at = time.monotonic()
    by_id[leader].stop()
    rest = [b for b in members if b.node_id != leader]
    # Well inside the 30 s session: only the controlled shutdown can have moved it.
    _, isr = partition0_when(rest[0], topic, lambda l, _i: l not in (leader, -1), "a new leader after SIGTERM")
    assert time.monotonic() - stopped_at < 15
    assert isr == sorted(b.node_id for b in rest)
    second = [f"b{i}".encode() for i in range(100)]
    assert produce(rest[0].bootstrap, topic, second) == list(range(100, 200))
    by_id[leader].start()
    wait_until(lambda: (partition0(rest[0], topic) or (0, []))[1] == [1, 2, 3], SETTLE_S, "back in the ISR")
    assert consume_all(by_id[leader].bootstrap, topic, 200) == list(enumerate(first + second))
