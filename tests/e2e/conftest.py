"""Harness for the end-to-end suite: starts the real corelog binary on loopback.

The binary comes from $CORELOG_BIN (default target/release/corelog under the repo root).
Each broker gets a free port on 127.0.0.1 (and another for its HTTP admin API,
admin.listener, so brokers started at once never contend for the default 9644), its own
log dirs under the test's tmp dir and
a log file there (stdout and stderr together) that is attached to the report of a failed
test. Teardown stops every broker with SIGTERM; one that is still running after
STOP_TIMEOUT_S is killed and fails the test, and so does one that exits non-zero:
a clean shutdown is part of the contract.
"""

import atexit
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

import kwire

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
POLL_INTERVAL_S = 0.05
LOG_TAIL_BYTES = 64 * 1024
DEFAULT_SMP = 2
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def corelog_bin() -> Path:
    path = Path(os.environ.get("CORELOG_BIN", "target/release/corelog"))
    return path if path.is_absolute() else REPO_ROOT / path


# Ports handed out by free_port in this process. A cluster reserves its controller
# ports before its members start; without this, a member's listener could be given a
# port reserved for a later member's controller (seen once in CI: "cannot bind the
# controller listener ... Address already in use").
_HANDED_OUT: set = set()


def free_port() -> int:
    """A port free now and never handed out before by this process."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def fresh_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class BrokerError(AssertionError):
    pass


def stop_process(proc: subprocess.Popen, timeout_s: float = STOP_TIMEOUT_S, signalled: bool = False) -> int:
    """SIGTERM (unless the caller already sent it), then wait up to timeout_s. Returns
    the exit code; raises BrokerError (after a SIGKILL) if the process is still running,
    or if it exited non-zero."""
    if not signalled:
        if proc.poll() is not None:
            raise BrokerError(f"pid {proc.pid} had already exited with {describe_exit(proc.returncode)} "
                              "before it was asked to stop")
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)
        raise BrokerError(f"pid {proc.pid} still running {timeout_s:g} s after SIGTERM; killed it")
    if proc.returncode != 0:
        raise BrokerError(f"pid {proc.pid} exited with {describe_exit(proc.returncode)} after SIGTERM, expected 0")
    return proc.returncode


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"code {returncode}"


# Brokers still running, so that even an aborted session does not leave one behind.
_RUNNING = set()


@atexit.register
def _kill_leftovers():
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()


class Broker:
    """One corelog process plus everything needed to restart it on the same dirs and port."""

    def __init__(self, workdir: Path, overrides=None, smp=DEFAULT_SMP, node_id=None, advertised_host="127.0.0.1",
                 controller_port=None, extra_listeners=None):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.admin_port = free_port()
        self.smp = smp
        self.node_id = 0 if node_id is None else node_id
        self.log_path = workdir / "corelog.log"
        self.settings = {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "advertised.listeners": f"PLAINTEXT://{advertised_host}:{self.port}",
            "log.dirs": str(workdir / "d0"),
            "admin.listener": f"127.0.0.1:{self.admin_port}",
        }
        # Listeners besides the PLAINTEXT one the readiness probe uses: {"SSL": port, ...}.
        self.extra_ports = dict(extra_listeners or {})
        for name, port in self.extra_ports.items():
            self.settings["listeners"] += f",{name}://127.0.0.1:{port}"
            self.settings["advertised.listeners"] += f",{name}://{advertised_host}:{port}"
        if node_id is not None:
            self.settings["node.id"] = str(node_id)
        self.controller_port = controller_port
        if controller_port is not None:
            self.settings["listeners"] += f",CONTROLLER://127.0.0.1:{controller_port}"
            self.settings["controller.listener.names"] = "CONTROLLER"
        self.settings.update(overrides or {})
        self.proc = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        """host:port of the HTTP admin API."""
        return self.settings["admin.listener"]

    @property
    def log_dirs(self):
        return [Path(d) for d in self.settings["log.dirs"].split(",")]

    def command(self):
        cmd = [str(corelog_bin()), "serve", "--smp", str(self.smp)]
        for key, value in self.settings.items():
            cmd += ["--override", f"{key}={value}"]
        return cmd

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        binary = corelog_bin()
        if not binary.is_file():
            raise BrokerError(f"no corelog binary at {binary}: build it (cargo build --release) or set CORELOG_BIN")
        self.starts += 1
        env = dict(os.environ, NO_COLOR="1")
        with open(self.log_path, "ab") as log:
            log.write(f"=== harness: start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.workdir, env=env,
                                         start_new_session=True)
        _RUNNING.add(self.proc)
        self.wait_ready()
        return self

    def wait_ready(self, timeout_s=None):
        """Port accepts, ApiVersions answers with no error, and a librdkafka client sees this broker."""
        timeout_s = READY_TIMEOUT_S if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        last_error = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"corelog exited with {describe_exit(self.proc.returncode)} during start-up")
            try:
                self._probe(deadline)
                return
            except (OSError, ValueError, BrokerError, KafkaException) as e:
                last_error = e
            time.sleep(POLL_INTERVAL_S * 4)
        raise BrokerError(f"corelog not ready within {timeout_s:.0f} s; last error: {last_error!r}")

    def _probe(self, deadline):
        left_s = max(0.5, deadline - time.monotonic())
        with kwire.Conn(self.port, timeout_s=min(2.0, left_s)) as conn:
            error_code, apis = kwire.api_versions(conn)
        if error_code != 0 or kwire.API_METADATA not in apis:
            raise BrokerError(f"ApiVersions answered error {error_code} with {len(apis)} APIs")
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "broker.address.family": "v4"})
        md = admin.list_topics(timeout=min(5.0, left_s))
        if self.node_id not in md.brokers:
            raise BrokerError(f"metadata lists brokers {sorted(md.brokers)}, expected {self.node_id}")

    def is_running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s=None, signalled=False):
        """Clean shutdown; raises BrokerError unless it exits 0 within timeout_s.
        `signalled`: SIGTERM was already sent (stop_all stops brokers together)."""
        if self.proc is None:
            return
        try:
            stop_process(self.proc, STOP_TIMEOUT_S if timeout_s is None else timeout_s, signalled)
        finally:
            _RUNNING.discard(self.proc)
            self._note(f"stopped: {describe_exit(self.proc.returncode)}")

    def kill9(self):
        assert self.is_running(), "kill9 on a broker that is not running"
        self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT_S)
        _RUNNING.discard(self.proc)
        self.proc = None  # its exit status says nothing about the broker: teardown skips it
        self._note("killed with SIGKILL")

    def restart(self):
        """Clean stop (if running), then start again on the same port and dirs."""
        if self.is_running():
            self.stop()
        return self.start()

    def _note(self, text):
        with open(self.log_path, "ab") as log:
            log.write(f"=== harness: {text}\n".encode())

    def log_text(self) -> str:
        try:
            return ANSI_ESCAPE.sub("", self.log_path.read_text(errors="replace"))
        except FileNotFoundError:
            return ""

    def log_tail(self) -> str:
        text = self.log_text()
        return text[-LOG_TAIL_BYTES:]

    def wait_for_log(self, pattern, timeout_s=5.0, start_at=0):
        """First log line (after character start_at) that matches pattern, or None after timeout_s."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            for line in self.log_text()[start_at:].splitlines():
                if regex.search(line):
                    return line
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_INTERVAL_S)


# Brokers per pytest node id (a test or a module), for the failure report.
_BROKERS_BY_NODE = {}


class BrokerFactory:
    def __init__(self, base_dir: Path, node_id: str):
        self.base_dir = base_dir
        self.node_id = node_id
        self.brokers = []

    def __call__(self, overrides=None, smp=DEFAULT_SMP, node_id=None, advertised_host="127.0.0.1",
                 extra_listeners=None) -> Broker:
        workdir = self.base_dir / f"broker{len(self.brokers)}"
        broker = Broker(workdir, overrides=overrides, smp=smp, node_id=node_id, advertised_host=advertised_host,
                        extra_listeners=extra_listeners)
        self.brokers.append(broker)
        _BROKERS_BY_NODE.setdefault(self.node_id, []).append(broker)
        return broker.start()

    def cluster(self, size, overrides=None, smp=1, member_overrides=None):
        """`size` combined-mode members (node ids 1..size) of one metadata quorum, each
        with its own client, controller and admin port on 127.0.0.1. `member_overrides`:
        a list of per-member settings (`broker.rack`, say), applied over `overrides`."""
        controller_ports = [free_port() for _ in range(size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(controller_ports))
        members = []
        for i, port in enumerate(controller_ports):
            settings = {"process.roles": "broker,controller", "controller.quorum.voters": voters,
                        **(overrides or {}), **((member_overrides or [{}] * size)[i])}
            workdir = self.base_dir / f"broker{len(self.brokers)}"
            broker = Broker(workdir, overrides=settings, smp=smp, node_id=i + 1, controller_port=port)
            self.brokers.append(broker)
            _BROKERS_BY_NODE.setdefault(self.node_id, []).append(broker)
            members.append(broker.start())
        return members

    def stop_all(self):
        # SIGTERM to all first, then wait for each: the members of a cluster stop
        # together, so the last of them is not left waiting out its controlled shutdown
        # (CONTROLLED_SHUTDOWN_WAIT) for a quorum the others took away one by one.
        running = [b for b in self.brokers if b.is_running()]
        for broker in running:
            broker.proc.send_signal(signal.SIGTERM)
        errors = []
        for broker in self.brokers:
            try:
                broker.stop(signalled=broker in running)
            except BrokerError as e:
                errors.append(f"{broker.workdir}: {e}")
        if errors:
            raise BrokerError("unclean broker shutdown:\n" + "\n".join(errors))


@pytest.fixture
def broker_factory(request, tmp_path):
    """Start brokers with extra overrides: broker_factory({"auto.create.topics.enable": "false"})."""
    factory = BrokerFactory(tmp_path, request.node.nodeid)
    yield factory
    factory.stop_all()


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


@pytest.fixture(scope="module")
def module_broker_factory(request, tmp_path_factory):
    """Like broker_factory, shared by the tests of one module (each uses fresh topics)."""
    factory = BrokerFactory(tmp_path_factory.mktemp("brokers"), request.node.nodeid)
    yield factory
    factory.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    node_ids = [item.nodeid]
    node = item.parent
    while node is not None:
        node_ids.append(node.nodeid)
        node = node.parent
    for node_id in node_ids:
        for broker in _BROKERS_BY_NODE.get(node_id, []):
            report.sections.append((f"corelog log {broker.log_path} (last {LOG_TAIL_BYTES} bytes)",
                                    broker.log_tail()))
