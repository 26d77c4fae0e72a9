"""Real kill -9 of a single broker under an idempotent acks=all load, bounded (issue 15
item 2): a seeded schedule of SIGKILLs and immediate restarts, then the checker of
crash_rounds.py / chaos.py (every acknowledged record at its offset exactly once, no gaps,
nothing consumers saw truncated, the log on disk ending exactly at the high watermark).
`python tests/e2e/crash_rounds.py --rounds N` runs as many rounds as you like."""

import os

import crash_rounds

# Bounded: a round is 0.2-2 s up plus a restart, so the test stays well under a minute.
ROUNDS = 12
SEED = int(os.environ.get("CRASH_SEED", "20261207"))


def test_kill9_rounds_lose_and_duplicate_nothing(broker_factory):
    crash_rounds.run(broker_factory, ROUNDS, SEED)
