"""Fast failure detection (issue 10 item 6): a broker whose process is gone (its
CONTROLLER listener refuses connections) is fenced long before broker.session.timeout.ms,
while a paused one (SIGSTOP: its kernel still accepts connections) is not fenced early.
The session is set to 60 s here, so anything that happens within the test's waits
happened through the fast path, and a pause is never mistaken for a death."""

import os
import signal
import time

from confluent_kafka.admin import AdminClient, NewTopic

from clients import wait_until
from conftest import fresh_topic

ADMIN_TIMEOUT_S = 10
SESSION = {"broker.session.timeout.ms": "60000", "broker.heartbeat.interval.ms": "2000"}
# Far below the 60 s session, far above the ~0.2 s fast fencing plus a busy machine.
FENCED_WITHIN_S = 15
PAUSE_S = 3
# A fenced broker stays in Metadata for 3 s (cluster::GONE_LISTED); a margin for load.
FENCED_LISTED_S = 10


def view(broker, topic):
    """(live broker ids, leader of partition 0, its ISR) in broker's Metadata, or None."""
    try:
        md = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"}) \
            .list_topics(timeout=ADMIN_TIMEOUT_S)
    except Exception:
        return None
    t = md.topics.get(topic)
    if t is None or t.error is not None or 0 not in t.partitions:
        return None
    p = t.partitions[0]
    return sorted(md.brokers), p.leader, sorted(p.isrs)


def settled_view(broker, topic):
    """`view`, retried: librdkafka may ask another member, which can briefly lag the
    quorum (no topic yet) or time out on a busy machine."""
    return wait_until(lambda: view(broker, topic), ADMIN_TIMEOUT_S, f"{topic} in Metadata")


def replicated_topic(members):
    topic = fresh_topic("fence")
    admin = AdminClient({"bootstrap.servers": members[0].bootstrap, "broker.address.family": "v4"})
    # A member answers Metadata naming itself before the quorum has applied its
    # registration: create the topic once all three count.
    wait_until(lambda: sorted(admin.list_topics(timeout=ADMIN_TIMEOUT_S).brokers) == [1, 2, 3], 30,
               "three live brokers")
    admin.create_topics([NewTopic(topic, 1, 3)])[topic].result(ADMIN_TIMEOUT_S)
    wait_until(lambda: (view(members[0], topic) or ([], -1, []))[2] == [1, 2, 3], 30, "the ISR whole")
    return topic


def test_a_killed_leader_is_fenced_at_once_and_a_paused_one_is_not(broker_factory):
    members = broker_factory.cluster(3, overrides=SESSION)
    topic = replicated_topic(members)
    _, leader, _ = settled_view(members[0], topic)
    paused = next(m for m in members if m.node_id == leader)
    other = next(m for m in members if m is not paused)

    os.kill(paused.proc.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + PAUSE_S
        while time.monotonic() < deadline:
            brokers, now_leader, _ = settled_view(other, topic)
            assert brokers == [1, 2, 3] and now_leader == leader, \
                f"a paused broker was fenced early: brokers {brokers}, leader {now_leader}"
            time.sleep(0.2)
    finally:
        os.kill(paused.proc.pid, signal.SIGCONT)

    paused.kill9()
    started = time.monotonic()
    brokers, new_leader, isr = wait_until(
        lambda: (v := view(other, topic)) and v[1] not in (leader, -1) and v,
        FENCED_WITHIN_S, f"a new leader after broker {leader}'s kill -9 (session 60 s)")
    assert leader not in isr, (brokers, isr)
    # Metadata keeps listing a fenced broker for 3 s (cluster::GONE_LISTED), so that
    # librdkafka moves its queued records to the new leader at once; then it goes.
    wait_until(lambda: (v := view(other, topic)) and leader not in v[0], FENCED_LISTED_S,
               f"broker {leader} no longer listed")
    assert "refused: the process is gone, fencing" in "".join(m.log_text() for m in members)
    print(f"new leader {new_leader} after {time.monotonic() - started:.2f} s")
    paused.start()
    wait_until(lambda: (view(other, topic) or ([], -1, []))[2] == [1, 2, 3], 30, "the ISR whole again")


def test_without_fast_fencing_a_killed_leader_waits_for_its_session(broker_factory):
    members = broker_factory.cluster(3, overrides={**SESSION, "controller.fast.fencing.enable": "false"})
    topic = replicated_topic(members)
    _, leader, _ = settled_view(members[0], topic)
    victim = next(m for m in members if m.node_id == leader)
    other = next(m for m in members if m is not victim)
    victim.kill9()
    # If the victim was also the controller, a new one is elected meanwhile; either way
    # the victim's session (60 s) has not run out, so it still leads.
    time.sleep(3)
    brokers, now_leader, _ = wait_until(lambda: view(other, topic), ADMIN_TIMEOUT_S, "metadata")
    assert now_leader == leader and leader in brokers, (brokers, now_leader)
    victim.start()
