#!/usr/bin/env bash
# The randomized fault test, long: `rounds` seeded rounds of kill -9 / SIGSTOP / SIGTERM on
# a three-broker loopback cluster under an idempotent acks=all load, then the checker
# (tests/e2e/chaos.py says what it asserts).
#
#   scripts/chaos.sh [rounds] [seed]        # defaults: 300 rounds (~15 min), a random seed
#
# Prints the seed first; a failure replays with the same seed (the fault schedule is the
# seed's; the producer's timing is not). Uses $CORELOG_BIN (default
# target/release/corelog) and the e2e venv ($PYTHON, default /work/main/.venv/bin/python
# or python3). Runs nice'd; broker logs stay under the printed directory.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-300}"
seed="${2:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
python="${PYTHON:-/work/main/.venv/bin/python}"
[ -x "$python" ] || python=python3
export CORELOG_BIN="${CORELOG_BIN:-target/release/corelog}"
exec nice -n 10 "$python" tests/e2e/chaos.py --rounds "$rounds" --seed "$seed"
