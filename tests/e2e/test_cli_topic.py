"""`corelog topic ...` against the real broker, over the wire: exact text and JSON
output, exit codes scripts can rely on (0 done, 1 broker error, 2 no broker)."""

import json
import subprocess

from clients import metadata
from conftest import corelog_bin, fresh_topic

CLI_TIMEOUT_S = 30


def cli(broker_or_addr, *args):
    addr = broker_or_addr if isinstance(broker_or_addr, str) else broker_or_addr.bootstrap
    return subprocess.run([str(corelog_bin()), "topic", *args, "-b", addr], capture_output=True,
                          timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL, text=True)


def test_create_list_describe_delete(broker):
    topic = fresh_topic("cli")
    r = cli(broker, "create", topic, "--partitions", "3")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert len(metadata(broker).topics[topic].partitions) == 3

    r = cli(broker, "list")
    assert r.returncode == 0
    assert f"{topic}\tpartitions=3\treplication=1\n" in r.stdout

    r = cli(broker, "describe", topic)
    assert r.returncode == 0
    assert r.stdout == (f"{topic}\tpartitions=3\treplication=1\n"
                        + "".join(f"\tpartition={p}\tleader=0\treplicas=[0]\tisr=[0]\n" for p in range(3)))

    r = cli(broker, "describe", topic, "--output", "json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"topics": [{"name": topic, "internal": False, "partitions": [
        {"partition": p, "leader": 0, "replicas": [0], "isr": [0]} for p in range(3)]}]}

    r = cli(broker, "create", topic)
    assert r.returncode == 1
    assert "TopicAlreadyExists (error code 36)" in r.stderr

    r = cli(broker, "delete", topic)
    assert r.returncode == 0
    assert topic not in metadata(broker).topics
    r = cli(broker, "describe", topic)
    assert r.returncode == 1
    assert "UnknownTopicOrPartition (error code 3)" in r.stderr


def test_no_broker_is_exit_code_2():
    r = cli("127.0.0.1:1", "list")
    assert r.returncode == 2
    assert "cannot connect to 127.0.0.1:1" in r.stderr
