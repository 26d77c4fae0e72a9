"""`corelog group list | describe` against the real broker: a group that committed
offsets shows its state, members and exact lag per partition."""

import json
import subprocess

from confluent_kafka import TopicPartition

from clients import consumer, create_topic, flush, producer
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
