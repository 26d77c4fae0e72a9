"""`corelog tune check` reads the host settings and reports each, as JSON for scripts;
it changes nothing and works without root. `tune apply` and `tune restore` run against
a fake /proc + /sys tree (the hidden --sysroot): the exact files they change and put
back, idempotence, per-item failures, and the refusal without root."""

import json
import os
import shutil
import subprocess
import tempfile

from pathlib import Path

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


# --- tune apply / restore against a fake /proc + /sys tree (--sysroot) ---------------

SMP = 2  # shards on CPUs 0-1 of the fake 4-CPU host: IRQs go to CPUs 2-3


def tune(*args, user=None):
    cmd = [str(corelog_bin()), "tune", *args]
    if user is not None:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, capture_output=True, timeout=TUNE_TIMEOUT_S, stdin=subprocess.DEVNULL,
                          text=True)


def write(root, rel, content):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


def link(root, rel, target):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


# File (relative to the fake root) → content before apply.
ORIGINAL = {
    "proc/sys/vm/swappiness": "60\n",
    "proc/sys/fs/aio-max-nr": "65536\n",
    "sys/kernel/mm/transparent_hugepage/enabled": "[always] madvise never\n",
    "sys/kernel/mm/transparent_hugepage/defrag": "[always] defer defer+madvise madvise never\n",
    "sys/devices/system/cpu/online": "0-3\n",
    "sys/block/vdz/queue/scheduler": "[mq-deadline] none\n",
    "sys/block/vdz/queue/nomerges": "0\n",
    "sys/block/vdz/queue/rotational": "0\n",
    "proc/interrupts": ("           CPU0       CPU1       CPU2       CPU3\n"
                        " 35:  0  0  0  0  PCI-MSIX-0000:00:02.0  0-edge  virtio1-config\n"
                        " 36:  9  0  0  0  PCI-MSIX-0000:00:02.0  1-edge  virtio1-req.0\n"
                        " 50:  0  7  0  0  IO-APIC  4-edge  ttyS0\n"),
    "proc/irq/35/smp_affinity_list": "0-3\n",
    "proc/irq/36/smp_affinity_list": "0-3\n",
    "proc/irq/37/smp_affinity_list": "0-3\n",
    "proc/irq/38/smp_affinity_list": "0-3\n",
    "proc/irq/39/smp_affinity_list": "3\n",
    "proc/irq/50/smp_affinity_list": "0-3\n",
}
for _cpu in (0, 1, 3):
    ORIGINAL[f"sys/devices/system/cpu/cpu{_cpu}/cpufreq/scaling_governor"] = \
        "performance\n" if _cpu == 3 else "powersave\n"
    ORIGINAL[f"sys/devices/system/cpu/cpu{_cpu}/cpufreq/scaling_available_governors"] = "performance powersave\n"

# What apply writes (the kernel's own sysfs shows a choice file's selection in brackets
# after such a write; a plain file keeps what was written).
APPLIED = {
    "proc/sys/vm/swappiness": "1\n",
    "proc/sys/fs/aio-max-nr": "1048576\n",
    "sys/kernel/mm/transparent_hugepage/enabled": "madvise\n",
    "sys/kernel/mm/transparent_hugepage/defrag": "madvise\n",
    "sys/block/vdz/queue/scheduler": "none\n",
    "sys/block/vdz/queue/nomerges": "2\n",
    "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "performance\n",
    "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor": "performance\n",
    # IRQs of the disk (named in /proc/interrupts) and of eth0 (its PCI device's
    # msi_irqs), round-robin over CPUs 2 and 3; 39 is already on CPU 3.
    "proc/irq/35/smp_affinity_list": "2\n",
    "proc/irq/36/smp_affinity_list": "3\n",
    "proc/irq/37/smp_affinity_list": "2\n",
    "proc/irq/38/smp_affinity_list": "3\n",
}
# What restore writes back: plain files byte for byte, choice files their old selection.
RESTORED = dict(ORIGINAL, **{
    "sys/kernel/mm/transparent_hugepage/enabled": "always\n",
    "sys/kernel/mm/transparent_hugepage/defrag": "always\n",
    "sys/block/vdz/queue/scheduler": "mq-deadline\n",
})


def fake_host(tmp_path):
    """A 4-CPU host with one SSD (virtio) disk under the log dir and one virtio NIC."""
    root = tmp_path / "root"
    log_dir = tmp_path / "data"
    log_dir.mkdir()
    for rel, content in ORIGINAL.items():
        write(root, rel, content)
    st = os.stat(log_dir)
    link(root, f"sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}",
         "../../devices/pci0000:00/0000:00:02.0/virtio1/block/vdz")
    (root / "sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vdz").mkdir(parents=True)
    link(root, "sys/block/vdz/device", "../../devices/pci0000:00/0000:00:02.0/virtio1")
    nic = root / "sys/devices/pci0000:00/0000:00:03.0"
    (nic / "virtio2").mkdir(parents=True)
    for irq in (37, 38, 39):
        write(nic, f"msi_irqs/{irq}", "msix\n")
    link(root, "sys/class/net/eth0/device", "../../../devices/pci0000:00/0000:00:03.0/virtio2")
    (root / "sys/class/net/lo").mkdir(parents=True)
    # A governor file the kernel will not let anyone write (a read-only sysfs attribute):
    # apply must note it and carry on.
    link(root, "sys/devices/system/cpu/cpu2/cpufreq/scaling_governor", "/sys/devices/system/cpu/online")
    return root, log_dir


def contents(root):
    return {rel: (root / rel).read_text() for rel in ORIGINAL}


def items_of(result):
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return {i["name"]: i for i in json.loads(result.stdout)["items"]}


def apply_args(root, log_dir, state, *extra):
    return ["apply", "--sysroot", str(root), "--log-dirs", str(log_dir), "--smp", str(SMP),
            "--state", str(state), "--output", "json", *extra]


def test_tune_apply_then_restore_changes_and_restores_the_exact_files(tmp_path):
    root, log_dir = fake_host(tmp_path)
    state = tmp_path / "state" / "tune-state.json"

    items = items_of(tune(*apply_args(root, log_dir, state)))
    assert contents(root) == dict(ORIGINAL, **APPLIED)
    changed = {n: (i["old"], i["new"], i["path"]) for n, i in items.items() if i["action"] == "changed"}
    assert changed == {
        "vm.swappiness": ("60", "1", str(root / "proc/sys/vm/swappiness")),
        "fs.aio-max-nr": ("65536", "1048576", str(root / "proc/sys/fs/aio-max-nr")),
        "transparent_hugepage.enabled": ("always", "madvise", str(root / "sys/kernel/mm/transparent_hugepage/enabled")),
        "transparent_hugepage.defrag": ("always", "madvise", str(root / "sys/kernel/mm/transparent_hugepage/defrag")),
        "disk.scheduler vdz": ("mq-deadline", "none", str(root / "sys/block/vdz/queue/scheduler")),
        "disk.nomerges vdz": ("0", "2", str(root / "sys/block/vdz/queue/nomerges")),
        "cpu.governor cpu0": ("powersave", "performance", str(root / "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")),
        "cpu.governor cpu1": ("powersave", "performance", str(root / "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor")),
        "irq.affinity 35 (vdz)": ("0-3", "2", str(root / "proc/irq/35/smp_affinity_list")),
        "irq.affinity 36 (vdz)": ("0-3", "3", str(root / "proc/irq/36/smp_affinity_list")),
        "irq.affinity 37 (eth0)": ("0-3", "2", str(root / "proc/irq/37/smp_affinity_list")),
        "irq.affinity 38 (eth0)": ("0-3", "3", str(root / "proc/irq/38/smp_affinity_list")),
    }
    assert items["cpu.governor cpu3"]["action"] == "ok"
    assert items["irq.affinity 39 (eth0)"]["action"] == "ok"
    assert items["cpu.governor cpu2"]["action"] == "skipped"
    assert items["cpu.governor cpu2"]["note"].startswith("cannot write ")
    assert items["rlimit.memlock"]["action"] == "hint" and "LimitMEMLOCK" in items["rlimit.memlock"]["note"]
    assert items["rlimit.nofile"]["action"] == "hint"
    assert not any(n.startswith("irq.affinity 50") for n in items), "ttyS0 is neither a NIC nor a log disk"

    recorded = json.loads(state.read_text())
    assert recorded["version"] == 1
    assert {c["name"]: (c["old"], c["new"], c["path"]) for c in recorded["changes"]} == changed

    # Idempotent: a second run changes nothing and keeps the first run's old values.
    again = items_of(tune(*apply_args(root, log_dir, state)))
    assert [n for n, i in again.items() if i["action"] == "changed"] == []
    assert contents(root) == dict(ORIGINAL, **APPLIED)
    assert json.loads(state.read_text()) == recorded

    # Dry-run restore shows the way back and writes nothing.
    r = tune("restore", "--state", str(state), "--dry-run", "--output", "json")
    planned = items_of(r)
    assert {n: (i["old"], i["new"]) for n, i in planned.items()} == {n: (c[1], c[0]) for n, c in changed.items()}
    assert contents(root) == dict(ORIGINAL, **APPLIED)

    r = tune("restore", "--state", str(state))
    assert (r.returncode, r.stderr) == (0, "")
    assert "restored     vm.swappiness" in r.stdout and "1 -> 60" in r.stdout
    assert contents(root) == RESTORED
    assert not state.exists()
    r = tune("restore", "--state", str(state), "--output", "json")
    assert (r.returncode, json.loads(r.stdout)) == (0, {"items": []})


def test_tune_apply_dry_run_changes_nothing_and_needs_no_root(tmp_path):
    root, log_dir = fake_host(tmp_path)
    state = tmp_path / "state.json"
    r = tune(*apply_args(root, log_dir, state, "--dry-run"))
    items = items_of(r)
    assert items["vm.swappiness"]["action"] == "would-change"
    assert (items["vm.swappiness"]["old"], items["vm.swappiness"]["new"]) == ("60", "1")
    assert contents(root) == ORIGINAL
    assert not state.exists()

    r = tune("apply", "--sysroot", str(root), "--log-dirs", str(log_dir), "--dry-run")
    assert r.returncode == 0
    assert f"would-change vm.swappiness" in r.stdout
    assert f"60 -> 1  ({root / 'proc/sys/vm/swappiness'})" in r.stdout


@pytest.mark.skipif(shutil.which("runuser") is None, reason="runuser (util-linux) is needed to drop root")
def test_tune_apply_and_restore_refuse_without_root():
    # Under /tmp itself: pytest's tmp dirs are private to root, and nobody must read the tree.
    tmp_path = Path(tempfile.mkdtemp(prefix="corelog-tune-"))
    try:
        tmp_path.chmod(0o755)
        refuse_without_root(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def refuse_without_root(tmp_path):
    root, log_dir = fake_host(tmp_path)
    r = tune(*apply_args(root, log_dir, tmp_path / "state.json"), user="nobody")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == ("corelog: tune apply changes kernel settings and needs root: run it with sudo "
                        "(or add --dry-run to see what it would change)\n")
    r = tune("restore", "--state", str(tmp_path / "state.json"), user="nobody")
    assert r.returncode == 2 and "needs root" in r.stderr
    assert contents(root) == ORIGINAL
    # check reads the fake tree, unprivileged.
    r = tune("check", "--sysroot", str(root), "--log-dirs", str(log_dir), "--output", "json", user="nobody")
    assert r.returncode in (0, 1), r.stderr
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert (checks["vm.swappiness"]["status"], checks["vm.swappiness"]["current"]) == ("warn", "60")
    assert checks["transparent_hugepage"]["current"] == "always"
    assert checks[f"scheduler {log_dir}"]["current"] == "mq-deadline (vdz)"
    assert checks["cpu.governor"]["current"] == "powersave"


def test_tune_apply_leaves_irqs_alone_when_every_cpu_runs_a_shard(tmp_path):
    root, log_dir = fake_host(tmp_path)
    items = items_of(tune("apply", "--sysroot", str(root), "--log-dirs", str(log_dir), "--smp", "4",
                          "--state", str(tmp_path / "s.json"), "--output", "json"))
    assert items["irq.affinity"]["action"] == "skipped"
    assert "every CPU runs a shard (4 of 4)" in items["irq.affinity"]["note"]
    assert (root / "proc/irq/35/smp_affinity_list").read_text() == "0-3\n"
