"""scripts/loop-disks.sh: a multi-disk layout from loop devices that a broker runs on,
and --teardown that removes it. Skipped where the machine cannot (no root, no loop
devices, no mount rights); its refusals are tested everywhere."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Broker, corelog_bin, fresh_topic

SCRIPT = REPO_ROOT / "scripts" / "loop-disks.sh"
SCRIPT_TIMEOUT_S = 60
CLI_TIMEOUT_S = 30
DISK_SIZE = "320M"  # mkfs.xfs needs 300 MB; the files are sparse


def run(*args, user=None):
    cmd = [str(SCRIPT), *args]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)


def loop_devices_usable():
    return (os.geteuid() == 0 and shutil.which("losetup") and os.path.exists("/dev/loop-control")
            and (shutil.which("mkfs.xfs") or shutil.which("mkfs.ext4")))


def test_bad_arguments_exit_2():
    r = run("--count", "0")
    assert (r.returncode, r.stderr) == (2, "loop-disks: --count must be 1..32\n")
    r = run("--fs", "btrfs")
    assert (r.returncode, r.stderr) == (2, "loop-disks: --fs must be xfs or ext4\n")
    r = run("--frobnicate")
    assert r.returncode == 2 and "unknown argument --frobnicate" in r.stderr


@pytest.mark.skipif(shutil.which("runuser") is None, reason="runuser (util-linux) is needed to drop root")
def test_without_root_it_says_so_and_exits_1(tmp_path):
    r = run("--dir", str(tmp_path / "disks"), user="nobody")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == ("loop-disks: needs root (it attaches loop devices and mounts file systems): "
                        "run it with sudo\n")
    assert not (tmp_path / "disks").exists()


@pytest.mark.skipif(not loop_devices_usable(), reason="needs root, losetup, /dev/loop-control and mkfs")
def test_two_loop_disks_carry_a_broker_and_teardown_removes_them():
    base = Path(tempfile.mkdtemp(prefix="corelog-loop-"))
    disks = base / "disks"
    try:
        r = run("--count", "2", "--size", DISK_SIZE, "--dir", str(disks))
        if r.returncode == 1 and ("cannot attach" in r.stderr or "cannot mount" in r.stderr):
            pytest.skip(f"this machine cannot: {r.stderr.strip()}")
        assert r.returncode == 0, r.stderr
        dirs = [disks / "d1" / "data", disks / "d2" / "data"]
        assert r.stdout == f"log.dirs={dirs[0]},{dirs[1]}\n"
        mounts = Path("/proc/self/mounts").read_text()
        for n in (1, 2):
            assert f" {disks / f'd{n}'} " in mounts
        assert os.stat(dirs[0]).st_dev != os.stat(dirs[1]).st_dev

        # A second run refuses to stack a layout on the first.
        again = run("--count", "2", "--dir", str(disks))
        assert again.returncode == 1 and "already exists" in again.stderr

        # Started here, not by the fixture: it must stop before the disks are unmounted.
        broker = Broker(base / "broker", {"log.dirs": f"{dirs[0]},{dirs[1]}"}).start()
        try:
            check_broker_on(broker, dirs)
        finally:
            broker.stop()
    finally:
        r = run("--teardown", "--dir", str(disks))
        shutil.rmtree(base, ignore_errors=True)
    assert (r.returncode, r.stderr) == (0, f"loop-disks: removed the layout under {disks}\n")
    assert str(disks) not in Path("/proc/self/mounts").read_text()
    assert str(disks) not in subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    assert not disks.exists()


def check_broker_on(broker, dirs):
    topic = fresh_topic("loop")
    r = subprocess.run([str(corelog_bin()), "topic", "create", topic, "-p", "4", "-b", broker.bootstrap],
                       capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(corelog_bin()), "log-dirs", "describe", "--topic", topic, "--output", "json",
                        "-b", broker.bootstrap], capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)["log_dirs"]
    assert [d["dir"] for d in listed] == [str(d) for d in dirs]
    for d in listed:
        st = os.statvfs(d["dir"])
        assert d["total_bytes"] == st.f_blocks * st.f_frsize < 400 << 20
        assert len(d["partitions"]) == 2
    r = subprocess.run([str(corelog_bin()), "tune", "check", "--log-dirs", f"{dirs[0]},{dirs[1]}",
                        "--output", "json"], capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks[f"filesystem {dirs[0]}"]["status"] == "ok"
    assert "(loop" in checks[f"scheduler {dirs[0]}"]["current"]
