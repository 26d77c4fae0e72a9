"""INCONSISTENT_CLUSTER_ID (issue 10): a member whose log dirs (meta.properties) belong
to another cluster is refused on the controller listener (its votes, appends and
registration) and exits with a message saying both ids and what to do; the quorum
carries on without it."""

import time

from confluent_kafka.admin import AdminClient

from clients import wait_until
from conftest import Broker, BrokerError, _RUNNING, free_port

SETTLE_S = 30
EXIT_WITHIN_S = 30
OTHER_CLUSTER = "AAAAAAAAAAAAAAAAAAAAAA"


def brokers_listed(member):
    try:
        md = AdminClient({"bootstrap.servers": member.bootstrap, "broker.address.family": "v4"}) \
            .list_topics(timeout=5)
    except Exception:
        return []
    return sorted(md.brokers)


def test_a_member_of_another_cluster_is_refused_and_exits(broker_factory):
    ports = [free_port() for _ in range(3)]
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(ports))
    members = []
    for i, port in enumerate(ports):
        settings = {"process.roles": "broker,controller", "controller.quorum.voters": voters}
        if i == 2:
            # Its dirs are formatted for another cluster; 1 and 2 take the id derived
            # from the voters.
            settings["cluster.id"] = OTHER_CLUSTER
        b = Broker(broker_factory.base_dir / f"member{i + 1}", overrides=settings, smp=1, node_id=i + 1,
                   controller_port=port)
        broker_factory.brokers.append(b)
        members.append(b)
    # 1 and 2 register first, so the quorum's id is theirs.
    members[0].start()
    members[1].start()
    wait_until(lambda: brokers_listed(members[0]) == [1, 2], SETTLE_S, "brokers 1 and 2 registered")

    odd = members[2]
    try:
        odd.start()
    except BrokerError:
        pass  # it may exit before it is ready
    deadline = time.monotonic() + EXIT_WITHIN_S
    while odd.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    code = odd.proc.poll()
    _RUNNING.discard(odd.proc)
    odd.proc = None  # exited on purpose: nothing for the fixture to stop
    assert code == 1, f"exit status {code}: {odd.log_text()[-3000:]}"
    log = odd.log_text()
    assert "INCONSISTENT_CLUSTER_ID" in log, log[-3000:]
    assert f"this broker's log dirs (meta.properties) say cluster {OTHER_CLUSTER}" in log, log[-3000:]
    quorum_id = next(line.split("cluster_id=")[1].split()[0] for line in members[0].log_text().splitlines()
                     if "corelog is serving" in line)
    assert f"the metadata quorum belongs to cluster {quorum_id}" in log, log[-3000:]
    assert quorum_id != OTHER_CLUSTER

    # The voters refused its Raft connections (votes, appends, forwarded commands) with
    # their cluster's id: it never joined the quorum, and said so on their side too.
    refusal = f"INCONSISTENT_CLUSTER_ID: refused a controller connection from a member of cluster {OTHER_CLUSTER}; " \
              f"this is cluster {quorum_id}"
    assert any(refusal in m.log_text() for m in members[:2]), members[0].log_text()[-3000:]

    # The quorum never took it, and serves on.
    assert brokers_listed(members[1]) == [1, 2]
