"""The randomized fault test, bounded (issue 10 item 6): a few seeded rounds of kill -9,
SIGSTOP pauses and controlled shutdowns on a three-broker cluster under an idempotent
acks=all load, then the checker of chaos.py (every acknowledged record at its offset
exactly once, no gaps, what consumers saw never truncated, replicas identical on disk).
scripts/chaos.sh runs the same thing for as many rounds as you like."""

import os

import chaos

# Bounded: each round takes 0.5-7 s, so the whole test stays near a minute.
ROUNDS = 6
SEED = int(os.environ.get("CHAOS_SEED", "20261207"))


def test_seeded_faults_lose_and_duplicate_nothing(broker_factory):
    chaos.run(broker_factory, ROUNDS, SEED)
