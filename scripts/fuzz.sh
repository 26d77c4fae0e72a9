#!/usr/bin/env bash
# Runs the cargo-fuzz (libFuzzer) targets in fuzz/ on their committed seed corpora.
#
#   scripts/fuzz.sh                    every target, 60 s each
#   scripts/fuzz.sh record_batch 3600  one target for an hour
#   scripts/fuzz.sh all 20             every target, 20 s each (what scripts/test.sh runs)
#
# Works with a stable toolchain: cargo-fuzz passes -Z flags (sanitizers), which stable
# rustc accepts with RUSTC_BOOTSTRAP=1. cargo-fuzz is installed from crates.io when
# missing. One job, niced: the machine is shared. New inputs the fuzzer finds go to
# fuzz/work/corpus/<target>/ (not committed; fold the useful ones into fuzz/corpus with
# `cargo fuzz cmin`), crashes to fuzz/artifacts/<target>/, and every run appends
# "<utc time> <target> <seconds it ran> <exit status>" to fuzz/work/runs.log, so the time each
# target has had adds up. Exits non-zero if any target found a crash, hang or leak.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

target=${1:-all}
seconds=${2:-60}
# Per input: a hang is an input that takes longer than this (wall clock). An
# unoptimised build (FUZZ_PROFILE=dev) inflating a 300-byte snappy input to the 64 MiB
# bound takes ~4 CPU-seconds, and a niced run on a busy machine gets a fraction of a core,
# so dev runs get a longer limit; FUZZ_TIMEOUT_S overrides both.
if [[ "${FUZZ_PROFILE:-release}" == dev ]]; then
    timeout_per_input_s=${FUZZ_TIMEOUT_S:-60}
else
    timeout_per_input_s=${FUZZ_TIMEOUT_S:-10}
fi
# A whole run's memory, and any single allocation: decompression is bounded at 64 MiB
# (message.max.bytes 1 MiB x 64), and a read_to_end may double that once.
rss_limit_mb=1024
malloc_limit_mb=320
# Longest input the fuzzer makes: a few batches or a request with many entries.
input_bytes_max=65536

log() { printf '==> %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    source "$HOME/.cargo/env"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz from crates.io"
    nice -n 10 cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

targets=()
if [[ "$target" == all ]]; then
    mapfile -t targets < <(cargo fuzz list)
else
    targets=("$target")
fi

# FUZZ_SANITIZER=none builds without AddressSanitizer: several times quicker to build,
# for CI's short smoke run (panics, hangs and allocation limits are still caught; the
# code under test is safe Rust). Long runs keep the default, address.
sanitizer=${FUZZ_SANITIZER:-address}
# FUZZ_PROFILE=dev builds unoptimised: about a third of the build time of the default
# (cargo-fuzz's release build uses one codegen unit per crate), for CI's short smoke
# run, where replaying the corpus matters more than executions per second. It also
# turns on overflow checks, so an overflow the fuzzer reaches is a crash. Long runs keep
# the default, release.
profile_flag=()
if [[ "${FUZZ_PROFILE:-release}" == dev ]]; then
    profile_flag=(--dev)
fi
build_args=(--sanitizer "$sanitizer" "${profile_flag[@]}")
log "cargo fuzz build ${build_args[*]} (${targets[*]})"
if [[ "$target" == all ]]; then
    nice -n 10 cargo fuzz build "${build_args[@]}"
else
    nice -n 10 cargo fuzz build "${build_args[@]}" "$target"
fi

mkdir -p fuzz/work
# The recovery target writes its log dir here (a real disk: it opens files O_DIRECT).
CORELOG_FUZZ_SCRATCH=$(mktemp -d "$repo_root/fuzz/work/scratch.XXXXXX")
export CORELOG_FUZZ_SCRATCH
trap 'rm -rf "$CORELOG_FUZZ_SCRATCH"' EXIT

failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/work/corpus/$t" "fuzz/corpus/$t"
    log "fuzzing $t for $seconds s"
    status=0
    started_s=$SECONDS
    nice -n 10 cargo fuzz run "${build_args[@]}" "$t" "fuzz/work/corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout_per_input_s" \
        -rss_limit_mb="$rss_limit_mb" -malloc_limit_mb="$malloc_limit_mb" \
        -max_len="$input_bytes_max" -print_final_stats=1 || status=$?
    printf '%s %s %s %s\n' "$(date -u +%FT%TZ)" "$t" "$((SECONDS - started_s))" "$status" >>fuzz/work/runs.log
    if ((status != 0)); then
        failed+=("$t")
    fi
done

if ((${#failed[@]} > 0)); then
    log "fuzz targets that failed: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
log "fuzzing passed: ${targets[*]}"
