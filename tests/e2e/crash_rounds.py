"""kill -9 of a single broker under an acks=all load, many rounds (issue 15 item 2's real
crashes), and the checker of chaos.py.

An idempotent acks=all producer (confluent-kafka) logs every acknowledged (partition,
offset, value) and a consumer tails every partition, while a seeded schedule kills the
broker with SIGKILL at a random moment, restarts it at once on the same dirs, and lets it
serve for a random while. The process dies with group commits, fdatasyncs and segment
preallocation in flight, so each restart runs crash recovery on a torn tail. Afterwards:
- every acknowledged record is at its acknowledged offset, exactly once, in a full read
  (acks=all is answered only after fdatasync: nothing acknowledged may be lost);
- offsets have no gaps, and nothing the tailing consumer read was later truncated
  (consumers never see what a crash can take back);
- the idempotent producer hit no fatal error (its sequence state survives the crashes);
- after a clean stop, each partition's log on disk ends exactly at the high watermark,
  contiguous from offset 0 (recovery leaves no garbage past the last good batch).

Used by test_crash_rounds.py (bounded) and, long, by:

    python tests/e2e/crash_rounds.py --rounds 100 [--seed N] [--workdir DIR]
"""

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chaos  # noqa: E402
from clients import wait_until  # noqa: E402
from conftest import BrokerFactory  # noqa: E402

# How long the broker serves, once ready after its restart, before the next kill.
UP_S = (0.2, 2.0)
SMP = 2
SETTLE_S = 60


def partitions_led(broker):
    parts = chaos.partitions(broker)
    return parts is not None and all(leader >= 0 for leader, _ in parts.values())


def run(factory, rounds, seed, log=print):
    log(f"crash rounds: seed {seed}, {rounds} rounds")
    rng = random.Random(seed)
    broker = factory(smp=SMP)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
    admin.create_topics([NewTopic(chaos.TOPIC, chaos.PARTITIONS, 1)])[chaos.TOPIC].result(chaos.ADMIN_TIMEOUT_S)
    wait_until(lambda: partitions_led(broker), SETTLE_S, "the topic's partitions")
    work = chaos.Workload(broker.bootstrap)
    work.start()
    try:
        time.sleep(1)
        for n in range(rounds):
            up_s = rng.uniform(*UP_S)
            time.sleep(up_s)
            acked = len(work.acked)
            broker.kill9()
            broker.start()
            log(f"round {n}: killed after {up_s:.2f} s up ({acked} acknowledged so far), restarted")
    finally:
        work.finish()
    wait_until(lambda: partitions_led(broker), SETTLE_S, "the partitions after the last restart")
    end = chaos.check_records(broker, work, log)
    chaos.check_disks([broker], end)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="corelog-crash-rounds-"))
    print(f"crash rounds: seed {seed}; logs under {workdir}", flush=True)
    factory = BrokerFactory(workdir, "crash")
    started = time.monotonic()
    try:
        run(factory, args.rounds, seed, log=lambda s: print(f"[{time.monotonic() - started:7.1f}s] {s}", flush=True))
    except BaseException:
        print(f"crash rounds: FAILED with seed {seed}; broker log: {workdir}/broker*/corelog.log", flush=True)
        raise
    finally:
        for b in factory.brokers:
            if b.is_running():
                b.proc.kill()
    print(f"crash rounds: passed, seed {seed}, {args.rounds} rounds in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
