"""`corelog tune check` reads the host settings and reports each, as JSON for scripts;
it changes nothing and works without root."""

import json
import shutil
import subprocess

import pytest

from conftest import corelog_bin

TUNE_TIMEOUT_S = 30
STATUSES = {"ok", "warn", "fail", "n/a"}
ALWAYS_CHECKED = {"io_uring", "rlimit.memlock", "rlimit.nofile", "vm.swappiness",
                  "transparent_hugepage", "clocksource", "cpu.governor"}


def tune_check(*args, user=None):
    cmd = [str(corelog_bin()), "tune", "check", "--output", "json", *args]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, timeout=TUNE_TIMEOUT_S, stdin=subprocess.DEVNULL)


def checks_of(result):
    doc = json.loads(result.stdout)
    return {c["name"]: c for c in doc["checks"]}


def test_tune_check_json_reports_every_setting(tmp_path):
    result = tune_check("--log-dirs", str(tmp_path), "--smp", "2")
    checks = checks_of(result)
    assert ALWAYS_CHECKED <= set(checks), sorted(checks)
    assert f"filesystem {tmp_path}" in checks and f"scheduler {tmp_path}" in checks
    for c in checks.values():
        assert c["status"] in STATUSES, c
        assert c["recommended"] and c["why"], c
    # The broker runs its tests on this host, so io_uring must be usable here.
    assert checks["io_uring"]["status"] == "ok"
    assert checks["rlimit.memlock"]["recommended"] == f">= {2 * (2 << 20) + (512 << 10) * 2} bytes for 2 shards"
    failed = [c for c in checks.values() if c["status"] == "fail"]
    assert result.returncode == (1 if failed else 0), (result.returncode, failed)


def test_tune_check_flags_a_tmpfs_log_dir():
    result = tune_check("--log-dirs", "/dev/shm")
    checks = checks_of(result)
    assert checks["filesystem /dev/shm"]["status"] == "fail"
    assert checks["filesystem /dev/shm"]["current"] == "tmpfs"
    assert result.returncode == 1


@pytest.mark.skipif(shutil.which("runuser") is None, reason="runuser (util-linux) is needed to drop root")
def test_tune_check_runs_unprivileged(tmp_path):
    tmp_path.chmod(0o755)
    result = tune_check("--log-dirs", str(tmp_path), user="nobody")
    assert result.returncode in (0, 1), result.stderr
    assert ALWAYS_CHECKED <= set(checks_of(result))
