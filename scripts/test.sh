#!/usr/bin/env bash
# The one test command: installs what the tests need, builds the broker, runs the unit
# tests and then the end-to-end suite against the release binary.
#
#   scripts/test.sh                  everything
#   scripts/test.sh --install-only   only the system packages and .venv
#   scripts/test.sh -k durability    extra arguments go to pytest
#
# Idempotent: a second run installs nothing when everything is already there.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

venv_dir=.venv
requirements=tests/e2e/requirements.txt
pytest_timeout_s=120

install_only=false
if [[ "${1:-}" == "--install-only" ]]; then
    install_only=true
    shift
fi

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

install_system_packages() {
    local missing=()
    command -v kcat >/dev/null || missing+=(kcat)
    # tests/e2e/test_security.py makes its CAs and certificates with the openssl command.
    command -v openssl >/dev/null || missing+=(openssl)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    # Sarama 1.22 (Debian's Go client package) and Go to build it offline in GOPATH mode:
    # the client that leaves a batch's maxTimestamp unset (tests/e2e/sarama).
    command -v go >/dev/null || missing+=(golang-go)
    [[ -d /usr/share/gocode/src/github.com/Shopify/sarama ]] || missing+=(golang-github-shopify-sarama-dev)
    # kafka-go 0.2.1 (message format v1, Produce v2, Fetch v2) for tests/e2e/kafkago.
    [[ -d /usr/share/gocode/src/github.com/segmentio/kafka-go ]] || missing+=(golang-github-segmentio-kafka-go-dev)
    # confluent-kafka-go 0.11.6 (cgo over Debian's librdkafka-dev) for tests/e2e/confluentgo.
    [[ -d /usr/share/gocode/src/github.com/confluentinc/confluent-kafka-go ]] ||
        missing+=(golang-github-confluentinc-confluent-kafka-go-dev)
    # A headless browser and its WebDriver for the web console's tests (test_console.py).
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    # rsyslog's omkafka: the log shipper of tests/e2e/test_log_shippers.py.
    [[ -f /usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so ]] || missing+=(rsyslog-kafka)
    # KafkaJS runs on node; npm installs it (install_kafkajs).
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    if ((${#missing[@]} == 0)); then
        return
    fi
    log "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The venv is rebuilt when requirements.txt changes; its hash is kept beside it.
install_venv() {
    local stamp="$venv_dir/.requirements.sha256"
    local want
    want=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [[ -x "$venv_dir/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    log "creating $venv_dir from $requirements"
    rm -rf "$venv_dir"
    python3 -m venv "$venv_dir"
    "$venv_dir/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
}

check_clients() {
    kcat -V
    "$venv_dir/bin/python" -c '
import confluent_kafka, kafka, pytest, selenium
print("confluent-kafka", confluent_kafka.version(), "librdkafka", confluent_kafka.libversion()[0])
print("kafka-python", kafka.__version__, "pytest", pytest.__version__, "selenium", selenium.__version__)'
    chromium --version
    chromedriver --version
}

# syslog-ng's Kafka destination: its packages conflict with rsyslog's (both are the
# system logger), so they are unpacked into .syslog-ng/ and run from there by the test.
install_syslog_ng() {
    local root=.syslog-ng
    if [[ -f /usr/lib/syslog-ng/3.38/libkafka.so || -f "$root/usr/lib/syslog-ng/3.38/libkafka.so" ]]; then
        return
    fi
    log "unpacking syslog-ng-mod-rdkafka and its dependencies into $root"
    local debs
    debs=$(mktemp -d)
    (cd "$debs" && apt-get download syslog-ng-core syslog-ng-mod-rdkafka libivykis0 libnet1 libpcre3 libwrap0)
    mkdir -p "$root"
    for deb in "$debs"/*.deb; do
        dpkg -x "$deb" "$root"
    done
    rm -rf "$debs"
}

# KafkaJS at the version package-lock.json pins, into tests/e2e/kafkajs/node_modules.
install_kafkajs() {
    local dir=tests/e2e/kafkajs
    if [[ -d "$dir/node_modules/kafkajs" ]]; then
        return
    fi
    log "installing KafkaJS (npm ci in $dir)"
    (cd "$dir" && npm ci --no-audit --no-fund)
}

install_system_packages
install_venv
install_kafkajs
install_syslog_ng
check_clients
if $install_only; then
    exit 0
fi

# cargo may be missing from PATH in a non-login shell (rustup installs it under ~/.cargo).
if ! command -v cargo >/dev/null && [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck disable=SC1091
    source "$HOME/.cargo/env"
fi

log "cargo build --release"
cargo build --release
log "cargo test --release"
cargo test --release

# Every fuzz target briefly on its committed corpus: a parser change that crashes on a
# seed (or on what 20 s of mutation finds) fails here. 0 skips it.
fuzz_seconds=${FUZZ_SECONDS:-10}
if ((fuzz_seconds > 0)); then
    log "fuzz targets, $fuzz_seconds s each"
    FUZZ_SANITIZER=${FUZZ_SANITIZER:-none} FUZZ_PROFILE=${FUZZ_PROFILE:-dev} \
        scripts/fuzz.sh all "$fuzz_seconds"
fi

# Two pytest workers, each taking whole files (--dist loadfile keeps a file's module
# fixtures and its ordering): most of a test's time is spent waiting on brokers,
# timeouts and clients, so two at a time nearly halve the suite on two cores.
# E2E_WORKERS=0 runs it in one process.
e2e_workers=${E2E_WORKERS:-2}
parallel=()
if ((e2e_workers > 0)); then
    parallel=(-n "$e2e_workers" --dist loadfile)
fi
log "end-to-end suite (${e2e_workers} workers)"
status=0
CORELOG_BIN="$repo_root/target/release/corelog" "$venv_dir/bin/python" -m pytest tests/e2e \
    -p no:cacheprovider --timeout="$pytest_timeout_s" --durations=30 "${parallel[@]}" -v "$@" || status=$?
if ((status == 5)); then
    log "pytest collected no tests: that is a failure"
    exit 1
fi
exit "$status"
