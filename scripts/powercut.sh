#!/usr/bin/env bash
# Simulated power cuts, the long version: records the storage workload of
# src/storage/powercut/workload.rs, cuts power before every disk operation, and recovers
# each crash state a power cut allows with the real recovery (ARCHITECTURE.md
# "Simulated power cuts").
#
#   scripts/powercut.sh                 100,000 crash states, debug build
#   scripts/powercut.sh 20000 1234      20,000 states from seed 1234
#   PROFILE=release scripts/powercut.sh 1000000
#
# The seed is printed at the start; a failing state is kept in the scratch dir
# (/dev/shm/corelog-powercut-<pid>-<seed>, or CORELOG_POWERCUT_DIR) and its path printed.
# The scratch dir is removed when every state passes. One job, niced: the machine is shared.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

export CORELOG_POWERCUT_STATES=${1:-100000}
if [[ -n "${2:-}" ]]; then
    export CORELOG_POWERCUT_SEED=$2
fi
profile_flag=()
if [[ "${PROFILE:-debug}" == release ]]; then
    profile_flag=(--release)
fi
exec nice -n 10 cargo test "${profile_flag[@]}" --lib storage::powercut::acked_records_survive_simulated_power_cuts \
    -- --nocapture --test-threads 1
