"""`corelog topic ...` and `corelog log-dirs describe` against the real broker, over the
wire: exact text and JSON output, exit codes scripts can rely on (0 done, 1 broker
error, 2 bad command line or no broker)."""

import json
import os
import re
import subprocess

from clients import consume, metadata, watermarks
from conftest import corelog_bin, fresh_topic

CLI_TIMEOUT_S = 30
# Every topic config corelog describes (src/topic_config.rs DEFS).
TOPIC_CONFIG_COUNT = 24


def cli(broker_or_addr, *args, command="topic", input=None):
    addr = broker_or_addr if isinstance(broker_or_addr, str) else broker_or_addr.bootstrap
    return subprocess.run([str(corelog_bin()), command, *args, "-b", addr], capture_output=True,
                          timeout=CLI_TIMEOUT_S, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL, text=True)


def partition_dir(broker, topic, partition):
    """The log dir (absolute path) holding <topic>-<partition>."""
    found = [str(d) for d in broker.log_dirs if (d / f"{topic}-{partition}").is_dir()]
    assert len(found) == 1, (topic, partition, found)
    return found[0]


def partition_lines(broker, topic, count, sizes=None):
    sizes = sizes or {}
    return "".join(f"\tpartition={p}\tleader=0\treplicas=[0]\tisr=[0]"
                   f"\tdir={partition_dir(broker, topic, p)}\tsize_bytes={sizes.get(p, 0)}\n"
                   for p in range(count))


def partition_json(broker, topic, count):
    return [{"partition": p, "leader": 0, "replicas": [0], "isr": [0],
             "dir": partition_dir(broker, topic, p), "size_bytes": 0} for p in range(count)]


def test_create_list_describe_delete(broker):
    topic = fresh_topic("cli")
    r = cli(broker, "create", topic, "--partitions", "3")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert len(metadata(broker).topics[topic].partitions) == 3

    r = cli(broker, "list")
    assert r.returncode == 0
    assert f"{topic}\tpartitions=3\treplication=1\n" in r.stdout

    r = cli(broker, "describe", topic)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == f"{topic}\tpartitions=3\treplication=1\n" + partition_lines(broker, topic, 3)

    r = cli(broker, "describe", topic, "--output", "json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"topics": [{"name": topic, "internal": False, "configs": [],
                                                "partitions": partition_json(broker, topic, 3)}]}

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


def test_create_with_configs_then_describe_shows_them_and_all_configs(broker):
    topic = fresh_topic("clicfg")
    r = cli(broker, "create", topic, "-p", "2", "-c", "retention.ms=3600000",
            "--config", "cleanup.policy=compact,delete")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")

    r = cli(broker, "describe", topic)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == (f"{topic}\tpartitions=2\treplication=1\n"
                        "\tconfig\tcleanup.policy=compact,delete\tsource=DYNAMIC_TOPIC_CONFIG\n"
                        "\tconfig\tretention.ms=3600000\tsource=DYNAMIC_TOPIC_CONFIG\n"
                        + partition_lines(broker, topic, 2))

    r = cli(broker, "describe", topic, "--output", "json")
    assert r.returncode == 0
    override = {"source": "DYNAMIC_TOPIC_CONFIG", "read_only": False, "sensitive": False}
    assert json.loads(r.stdout) == {"topics": [{
        "name": topic, "internal": False,
        "configs": [{"name": "cleanup.policy", "value": "compact,delete", **override},
                    {"name": "retention.ms", "value": "3600000", **override}],
        "partitions": partition_json(broker, topic, 2)}]}

    r = cli(broker, "describe", topic, "--all-configs")
    assert r.returncode == 0
    config_lines = [line for line in r.stdout.splitlines() if line.startswith("\tconfig\t")]
    assert len(config_lines) == TOPIC_CONFIG_COUNT
    assert "\tconfig\tretention.ms=3600000\tsource=DYNAMIC_TOPIC_CONFIG" in config_lines
    assert "\tconfig\tmax.message.bytes=1048588\tsource=DEFAULT_CONFIG" in config_lines
    assert "\tconfig\tsegment.bytes=1073741824\tsource=DEFAULT_CONFIG" in config_lines
    assert config_lines == sorted(config_lines)

    r = cli(broker, "describe", topic, "--all-configs", "--output", "json")
    configs = json.loads(r.stdout)["topics"][0]["configs"]
    assert len(configs) == TOPIC_CONFIG_COUNT
    by_name = {c["name"]: c for c in configs}
    assert by_name["compression.type"] == {"name": "compression.type", "value": "producer",
                                           "source": "DEFAULT_CONFIG", "read_only": False,
                                           "sensitive": False}
    assert by_name["cleanup.policy"]["source"] == "DYNAMIC_TOPIC_CONFIG"


def test_create_with_an_invalid_config_shows_the_brokers_message(broker):
    topic = fresh_topic("clibad")
    r = cli(broker, "create", topic, "-c", "retention.ms=soon")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"corelog: {topic}: InvalidConfig (error code 40): Invalid value soon for "
                        "configuration retention.ms: Not a number of type LONG\n")
    r = cli(broker, "create", topic, "-c", "no.such.config=1")
    assert r.returncode == 1
    assert r.stderr == f"corelog: {topic}: InvalidConfig (error code 40): Unknown topic config name: no.such.config\n"
    r = cli(broker, "create", topic, "-c", "retention.ms")
    assert r.returncode == 2
    assert '"retention.ms": expected KEY=VALUE' in r.stderr
    assert topic not in metadata(broker).topics


def test_alter_partitions_grows_and_refuses_to_shrink(broker):
    topic = fresh_topic("cligrow")
    assert cli(broker, "create", topic, "--partitions", "2").returncode == 0
    r = cli(broker, "alter", topic, "--partitions", "5")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert len(metadata(broker).topics[topic].partitions) == 5
    r = cli(broker, "describe", topic)
    assert r.stdout == f"{topic}\tpartitions=5\treplication=1\n" + partition_lines(broker, topic, 5)

    r = cli(broker, "alter", topic, "--partitions", "3")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"corelog: {topic}: InvalidPartitions (error code 37): Topic currently has 5 "
                        "partitions, which is higher than the requested 3.\n")
    assert len(metadata(broker).topics[topic].partitions) == 5

    r = cli(broker, "alter", topic)
    assert r.returncode == 2
    assert "--partitions" in r.stderr and "--set" in r.stderr


def test_alter_sets_and_deletes_several_configs_in_one_call(broker):
    topic = fresh_topic("clialter")
    assert cli(broker, "create", topic, "-c", "retention.ms=3600000").returncode == 0
    r = cli(broker, "alter", topic, "--set", "max.message.bytes=2097152",
            "--set", "segment.ms=600000", "--delete", "retention.ms")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = cli(broker, "describe", topic)
    assert r.stdout == (f"{topic}\tpartitions=1\treplication=1\n"
                        "\tconfig\tmax.message.bytes=2097152\tsource=DYNAMIC_TOPIC_CONFIG\n"
                        "\tconfig\tsegment.ms=600000\tsource=DYNAMIC_TOPIC_CONFIG\n"
                        + partition_lines(broker, topic, 1))

    # One bad value: the broker applies none of the request.
    r = cli(broker, "alter", topic, "--delete", "segment.ms", "--set", "cleanup.policy=shred")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (f"corelog: {topic}: InvalidConfig (error code 40): Invalid value shred for "
                        "configuration cleanup.policy: Invalid value shred; the list may only contain: "
                        "compact, delete\n")
    r = cli(broker, "describe", topic, "--output", "json")
    names = [c["name"] for c in json.loads(r.stdout)["topics"][0]["configs"]]
    assert names == ["max.message.bytes", "segment.ms"]

    r = cli(broker, "alter", topic, "--set", "segment.ms=1", "--delete", "segment.ms")
    assert r.returncode == 2
    assert r.stderr == "corelog: segment.ms is given more than once: set or delete each config once\n"

    r = cli(broker, "alter", topic, "--delete", "max.message.bytes", "--delete", "segment.ms",
            "--partitions", "2")
    assert (r.returncode, r.stderr) == (0, "")
    r = cli(broker, "describe", topic)
    assert r.stdout == f"{topic}\tpartitions=2\treplication=1\n" + partition_lines(broker, topic, 2)

    r = cli(broker, "alter", fresh_topic("nosuch"), "--set", "retention.ms=1")
    assert r.returncode == 1
    assert "UnknownTopicOrPartition (error code 3)" in r.stderr


def test_delete_records_prints_the_new_low_watermark(broker):
    topic = fresh_topic("clidelrec")
    assert cli(broker, "create", topic, "--partitions", "2").returncode == 0
    lines = "".join(f"r{i}\n" for i in range(10))
    r = cli(broker, topic, "--partition", "1", command="produce", input=lines)
    assert r.returncode == 0, r.stderr

    r = cli(broker, "delete-records", topic, "--partition", "1", "--offset", "4")
    assert (r.returncode, r.stdout, r.stderr) == (0, f"{topic}\tpartition=1\tlow_watermark=4\n", "")
    assert watermarks(broker, topic, 1) == (4, 10)
    assert [m.value() for m in consume(broker, topic, {1: 4}, 6)] == [f"r{i}".encode() for i in range(4, 10)]

    r = cli(broker, "delete-records", topic, "--partition", "1", "--offset", "-1", "--output", "json")
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == {"topic": topic, "partition": 1, "low_watermark": 10}
    assert watermarks(broker, topic, 1) == (10, 10)

    r = cli(broker, "delete-records", topic, "--partition", "0", "--offset", "5")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.startswith(f"corelog: {topic}-0: OffsetOutOfRange (error code 1)")
    r = cli(broker, "delete-records", topic, "--partition", "7", "--offset", "0")
    assert r.returncode == 1
    assert r.stderr.startswith(f"corelog: {topic}-7: UnknownTopicOrPartition (error code 3)")
    r = cli(broker, "delete-records", topic, "--partition", "0", "--offset", "-2")
    assert r.returncode == 2


def statvfs_total(path):
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


def test_log_dirs_describe_text_and_json(broker_factory, tmp_path):
    dir_a, dir_b = tmp_path / "A", tmp_path / "B"
    broker = broker_factory({"log.dirs": f"{dir_a},{dir_b}"})
    topic = fresh_topic("clidirs")
    assert cli(broker, "create", topic, "--partitions", "4").returncode == 0
    r = cli(broker, topic, "--partition", "3", command="produce", input="hello\n")
    assert r.returncode == 0, r.stderr

    r = cli(broker, "describe", "--topic", topic, "--output", "json", command="log-dirs")
    assert (r.returncode, r.stderr) == (0, "")
    doc = json.loads(r.stdout)
    dirs = doc["log_dirs"]
    assert [d["dir"] for d in dirs] == [str(dir_a), str(dir_b)]
    size3 = None
    for d in dirs:
        assert (d["broker"], d["state"], d["error"]) == (0, "online", None)
        assert d["total_bytes"] == statvfs_total(d["dir"])
        assert 0 < d["usable_bytes"] <= d["total_bytes"]
        expected = [p for p in range(4) if partition_dir(broker, topic, p) == d["dir"]]
        assert [p["partition"] for p in d["partitions"]] == expected
        for p in d["partitions"]:
            assert (p["topic"], p["offset_lag"], p["is_future"]) == (topic, 0, False)
            if p["partition"] == 3:
                size3 = p["size_bytes"]
            else:
                assert p["size_bytes"] == 0
    # One batch of one record: the 61-byte v2 batch header plus the record.
    assert size3 is not None and 61 < size3 < 100, size3

    r = cli(broker, "describe", "--topic", topic, command="log-dirs")
    assert (r.returncode, r.stderr) == (0, "")
    masked = re.sub(r"usable_bytes=\d+", "usable_bytes=N", r.stdout)
    expected = ""
    for d in dirs:
        parts = [p for p in range(4) if partition_dir(broker, topic, p) == d["dir"]]
        sizes = {p: (size3 if p == 3 else 0) for p in parts}
        expected += (f"broker=0\tdir={d['dir']}\tstate=online\ttotal_bytes={statvfs_total(d['dir'])}"
                     f"\tusable_bytes=N\tpartitions={len(parts)}\tsize_bytes={sum(sizes.values())}\n")
        expected += "".join(f"\tpartition={topic}-{p}\tsize_bytes={sizes[p]}\toffset_lag=0\n" for p in parts)
    assert masked == expected

    # topic describe shows the same dir and size per partition.
    r = cli(broker, "describe", topic)
    sizes = {3: size3}
    assert r.stdout == f"{topic}\tpartitions=4\treplication=1\n" + partition_lines(broker, topic, 4, sizes)

    # Without --topic every partition is listed, __consumer_offsets too.
    r = cli(broker, "describe", "--output", "json", command="log-dirs")
    listed = {(p["topic"], p["partition"]) for d in json.loads(r.stdout)["log_dirs"] for p in d["partitions"]}
    assert {(topic, p) for p in range(4)} <= listed
    assert ("__consumer_offsets", 0) in listed

    r = cli(broker, "describe", "--topic", fresh_topic("nosuch"), command="log-dirs")
    assert r.returncode == 1
    assert "UnknownTopicOrPartition (error code 3)" in r.stderr
    r = cli("127.0.0.1:1", "describe", command="log-dirs")
    assert r.returncode == 2
