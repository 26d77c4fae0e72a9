"""Two log dirs: each partition lives in exactly one, spread evenly, Kafka's layout."""

import re

from clients import consume, create_topic, flush, producer
from conftest import fresh_topic

PARTITIONS = 8
PER_PARTITION = 50
FIRST_SEGMENT = "00000000000000000000.log"


def partition_dirs(log_dir, topic):
    """Partition numbers that have a <topic>-<n> directory in log_dir."""
    pattern = re.compile(rf"{re.escape(topic)}-(\d+)")
    return {int(m.group(1)) for p in log_dir.iterdir() if p.is_dir() and (m := pattern.fullmatch(p.name))}


def test_partitions_spread_over_two_dirs_and_survive_restart(broker_factory, tmp_path):
    dir_a, dir_b = tmp_path / "A", tmp_path / "B"
    broker = broker_factory({"log.dirs": f"{dir_a},{dir_b}"})
    topic = create_topic(broker, fresh_topic("twodirs"), PARTITIONS)
    prod = producer(broker, {"acks": "all"})
    for i in range(PARTITIONS * PER_PARTITION):
        prod.produce(topic, value=f"v{i}".encode(), partition=i % PARTITIONS)
    flush(prod)

    in_a, in_b = partition_dirs(dir_a, topic), partition_dirs(dir_b, topic)
    assert in_a | in_b == set(range(PARTITIONS))
    assert in_a & in_b == set(), "a partition has a directory in both log dirs"
    # New partitions go to the dir holding the fewest, so two empty dirs end up 4 and 4.
    assert (len(in_a), len(in_b)) == (PARTITIONS // 2, PARTITIONS // 2)
    for log_dir, parts in ((dir_a, in_a), (dir_b, in_b)):
        assert (log_dir / "meta.properties").is_file(), log_dir
        for p in parts:
            assert (log_dir / f"{topic}-{p}" / FIRST_SEGMENT).is_file(), (log_dir, p)

    broker.restart()

    assert (partition_dirs(dir_a, topic), partition_dirs(dir_b, topic)) == (in_a, in_b)
    msgs = consume(broker, topic, {p: 0 for p in range(PARTITIONS)}, PARTITIONS * PER_PARTITION)
    got = sorted((m.partition(), m.offset(), m.value()) for m in msgs)
    expected = sorted((i % PARTITIONS, i // PARTITIONS, f"v{i}".encode()) for i in range(PARTITIONS * PER_PARTITION))
    assert got == expected
