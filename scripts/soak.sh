#!/usr/bin/env bash
# Soak test (issue 15 item 3): a mixed workload against one release broker for
# [minutes] (default 60), recording RSS, descriptors, connections, CPU and latency per
# minute, with an exactly-once check of every acks=all record at the end.
#
#   scripts/soak.sh [minutes] [more scripts/soak.py options, e.g. --interval 30 --smp 1]
#
# Builds the release binary once (nice -n 10) unless CORELOG_BIN names one. Results go to
# target/soak/<UTC time>/ (soak.csv, soak.json, soak.svg); the broker's data dir is a
# temporary dir deleted at the end. Exits non-zero when the checker or a worker failed.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-60}"
shift || true
python="${PYTHON:-.venv/bin/python}"
if [ ! -x "$python" ]; then
    echo "no Python venv at $python (scripts/test.sh creates it; or set PYTHON=)" >&2
    exit 2
fi
if [ -z "${CORELOG_BIN:-}" ]; then
    nice -n 10 cargo build --release
    CORELOG_BIN=target/release/corelog
fi
exec "$python" scripts/soak.py --minutes "$minutes" --bin "$CORELOG_BIN" "$@"
