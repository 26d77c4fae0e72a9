"""`corelog group list | describe | delete | reset-offsets` against the real broker: a
group that committed offsets shows its state, members and exact lag per partition; resets
plan, clamp and commit as kafka-consumer-groups.sh does; deletes explain refusals."""

import json
import signal
import subprocess

from confluent_kafka import TopicPartition

from clients import consumer, create_topic, flush, producer, wait_until
from conftest import corelog_bin, fresh_topic

CLI_TIMEOUT_S = 30


def cli(broker, *args):
    return subprocess.run([str(corelog_bin()), "group", *args, "-b", broker.bootstrap], capture_output=True,
                          timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL, text=True)


def test_list_and_describe_with_lag(broker):
    topic = create_topic(broker, fresh_topic("cligrp"), 2)
    group = fresh_topic("g")
    prod = producer(broker)
    for i in range(10):
        prod.produce(topic, value=b"v", partition=i % 2)  # 5 per partition
    flush(prod)
    c = consumer(broker, {"group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 5)], asynchronous=False)
    finally:
        c.close()

    r = cli(broker, "list")
    assert r.returncode == 0, r.stderr
    assert f"{group}\tstate=Empty\tprotocol_type=" in r.stdout

    r = cli(broker, "describe", group)
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"{group}\tstate=Empty\tmembers=0\n"
                        f"\ttopic={topic}\tpartition=0\tcommitted=3\tlog_end=5\tlag=2\n"
                        f"\ttopic={topic}\tpartition=1\tcommitted=5\tlog_end=5\tlag=0\n")

    r = cli(broker, "describe", group, "--output", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"group": group, "state": "Empty", "members": [], "offsets": [
        {"topic": topic, "partition": 0, "committed": 3, "log_end": 5, "lag": 2},
        {"topic": topic, "partition": 1, "committed": 5, "log_end": 5, "lag": 0}]}


def committed_group(broker, partitions=2, per_partition=5, commits=None):
    """A topic with per_partition records in each partition whose values say where they
    are ("p<partition>-<offset>"), and a group (without members) that committed `commits`."""
    topic = create_topic(broker, fresh_topic("clireset"), partitions)
    group = fresh_topic("g")
    prod = producer(broker)
    for p in range(partitions):
        for o in range(per_partition):
            prod.produce(topic, value=f"p{p}-{o}".encode(), partition=p, timestamp=1_000_000 + 1000 * o)
    flush(prod)
    c = consumer(broker, {"group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(topic, p, o) for p, o in (commits or {}).items()], asynchronous=False)
    finally:
        c.close()
    return topic, group


def committed_offsets(broker, group):
    r = cli(broker, "describe", group, "--output", "json")
    assert r.returncode == 0, r.stderr
    return {o["partition"]: o["committed"] for o in json.loads(r.stdout)["offsets"]}


def test_reset_offsets_dry_run_then_execute(broker):
    topic, group = committed_group(broker, commits={0: 3, 1: 5})
    r = cli(broker, "reset-offsets", group, "--topic", topic, "--to-earliest")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET\n{topic}\t0\t3\t0\n{topic}\t1\t5\t0\n"
    assert r.stderr == "corelog: dry run, nothing committed: add --execute to commit these offsets\n"
    assert committed_offsets(broker, group) == {0: 3, 1: 5}

    r = cli(broker, "reset-offsets", group, "--topic", f"{topic}:1", "--shift-by", "-2", "--output", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"group": group, "executed": False, "offsets": [
        {"topic": topic, "partition": 1, "current_offset": 5, "new_offset": 3}]}

    # Targets outside the log are clamped into [earliest, latest], as Kafka does.
    r = cli(broker, "reset-offsets", group, "--topic", topic, "--to-offset", "99")
    assert r.stdout.splitlines()[1:] == [f"{topic}\t0\t3\t5", f"{topic}\t1\t5\t5"]
    r = cli(broker, "reset-offsets", group, "--topic", topic, "--shift-by", "-4")
    assert r.stdout.splitlines()[1:] == [f"{topic}\t0\t3\t0", f"{topic}\t1\t5\t1"]

    r = cli(broker, "reset-offsets", group, "--topic", topic, "--to-offset", "2", "--execute", "--output", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["executed"] is True
    assert committed_offsets(broker, group) == {0: 2, 1: 2}

    # A group member starts where the reset put the group.
    r = subprocess.run([str(corelog_bin()), "consume", topic, "--group", group, "--timeout-ms", "2000",
                        "-b", broker.bootstrap], capture_output=True, timeout=CLI_TIMEOUT_S, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == [f"p{p}-{o}" for p in range(2) for o in range(2, 5)]
    assert committed_offsets(broker, group) == {0: 5, 1: 5}


def test_reset_offsets_to_datetime(broker):
    topic, group = committed_group(broker, partitions=1, commits={0: 0})
    # The records carry timestamps 1000 s + 0, 1, 2, 3, 4 s.
    # 1002 s: the first record at or after it is offset 2.
    r = cli(broker, "reset-offsets", group, "--topic", topic, "--to-datetime", "1970-01-01T00:16:42Z")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET\n{topic}\t0\t0\t2\n"
    # After the last record: the log end.
    r = cli(broker, "reset-offsets", group, "--topic", topic, "--to-datetime", "1970-01-01T00:20:00Z")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET\n{topic}\t0\t0\t5\n"
    r = cli(broker, "reset-offsets", group, "--topic", topic, "--to-datetime", "1970-01-01T00:16:43Z", "--execute")
    assert r.returncode == 0, r.stderr
    assert committed_offsets(broker, group) == {0: 3}


def test_reset_offsets_and_delete_refused_while_group_has_members(broker):
    topic, group = committed_group(broker, partitions=1, commits={0: 1})
    member = subprocess.Popen([str(corelog_bin()), "consume", topic, "--group", group, "-b", broker.bootstrap],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: "state=Stable\tmembers=1" in cli(broker, "describe", group).stdout, 30,
                   "the member to join")
        r = cli(broker, "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
        assert r.returncode == 1
        assert r.stderr == (f"corelog: {group}: the group has 1 active member(s) (state Stable); offsets can only "
                            "be reset while it is inactive: stop its consumers first\n")
        r = cli(broker, "delete", group)
        assert r.returncode == 1
        assert r.stderr == (f"corelog: {group}: NonEmptyGroup (error code 68): the group still has active "
                            f"members; stop its consumers (`corelog group describe {group}` lists them), "
                            "then delete it\n")
    finally:
        member.send_signal(signal.SIGTERM)
        out, err = member.communicate(timeout=CLI_TIMEOUT_S)
    assert (member.returncode, out) == (0, "p0-1\np0-2\np0-3\np0-4\n"), err


def test_delete_groups(broker):
    _, g1 = committed_group(broker, partitions=1, commits={0: 1})
    _, g2 = committed_group(broker, partitions=1, commits={0: 2})
    r = cli(broker, "delete", g1, g2)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    listed = cli(broker, "list")
    assert listed.returncode == 0, listed.stderr
    assert g1 not in listed.stdout and g2 not in listed.stdout

    r = cli(broker, "delete", g1, "--output", "json")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"groups": [{"group": g1, "deleted": False, "error": (
        f"{g1}: GroupIdNotFound (error code 69) (no such group: `corelog group list` shows the groups)")}]}
    assert "GroupIdNotFound (error code 69)" in r.stderr


def test_describe_a_consumer_protocol_group(broker):
    """A KIP-848 group is described from ConsumerGroupDescribe: its state and members."""
    topic = create_topic(broker, fresh_topic("cli848"), 2)
    group = fresh_topic("g848")
    c = consumer(broker, {"group.id": group, "group.protocol": "consumer", "enable.auto.commit": False,
                          "auto.offset.reset": "earliest", "client.id": "cli-848-member"})
    try:
        c.subscribe([topic])
        wait_until(lambda: (c.poll(0.2), len(c.assignment()) == 2)[1], CLI_TIMEOUT_S, "both partitions assigned")
        r = cli(broker, "describe", group, "--output", "json")
        assert r.returncode == 0, r.stderr
        described = json.loads(r.stdout)
        assert described["state"] == "Stable", described
        assert [m["client_id"] for m in described["members"]] == ["cli-848-member"], described
    finally:
        c.close()
