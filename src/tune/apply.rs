//! `corelog tune apply` and `corelog tune restore`: change the kernel settings `tune
//! check` recommends, record each change (file, old value, new value) in a state file,
//! and put exactly those values back.
//!
//! Every item is on its own: one that cannot be changed here (a container with a
//! read-only /sys, a VM without cpufreq, a kernel-managed IRQ) becomes a note and the
//! run goes on. A change is written to the state file *before* the kernel file, so
//! nothing is ever changed without a record; a second `apply` changes nothing and keeps
//! the first run's old values, so `restore` goes back to the state before the first.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::host::{choices, parse_cpu_list, selected, Host};
use super::{existing, json_str, rlimit, NOFILE_MIN};
use crate::runtime::SHARD_LOCKED_BYTES;

/// Where `apply` records what it changed, unless `--state` says otherwise.
pub const STATE_FILE_DEFAULT: &str = "/var/lib/corelog/tune-state.json";
const STATE_VERSION: u64 = 1;
/// Kafka and Redpanda guides ask for swappiness 1.
const SWAPPINESS_TARGET: u64 = 1;
/// The aio context limit Redpanda's tuner sets; io_uring does not use it, but libraries
/// that fall back to Linux AIO (and other services on the host) do.
const AIO_MAX_NR_MIN: u64 = 1_048_576;
/// `queue/nomerges` 2: the block layer does not try to merge requests at all; the
/// broker already writes large, aligned, sequential blocks.
const NOMERGES_TARGET: &str = "2";
/// Why a disk's queue is left alone when it reports queue/rotational 1.
const ROTATIONAL_NOTE: &str = "the disk reports itself rotational: left as is (a virtual or loop disk may say so wrongly; echo none > scheduler if it is SSD-backed)";
/// The most IRQs one run touches (a bound on a malformed /proc/interrupts).
const IRQS_MAX: usize = 4096;
/// How far up from a device's sysfs dir to look for its `msi_irqs`.
const DEVICE_DEPTH_MAX: usize = 4;

/// What was (or would be) done about one setting.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Changed {
        old: String,
        new: String,
    },
    WouldChange {
        old: String,
        new: String,
    },
    AlreadySet {
        value: String,
    },
    /// Left alone: it cannot be changed here, or should not be.
    Skipped {
        why: String,
    },
    /// Something `apply` cannot do for another process: what to set, and where.
    Hint {
        what: String,
    },
    Restored {
        old: String,
        new: String,
    },
    Failed {
        why: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub name: String,
    /// The file (with the sysroot) it reads and writes, when there is one.
    pub path: Option<PathBuf>,
    pub action: Action,
}

impl Item {
    fn new(name: &str, path: Option<PathBuf>, action: Action) -> Item {
        Item {
            name: name.to_string(),
            path,
            action,
        }
    }
}

/// What `apply` is asked to tune.
#[derive(Debug, Clone)]
pub struct Options {
    pub log_dirs: Vec<PathBuf>,
    /// Shards the broker runs: they are pinned to CPUs 0..shards, IRQs go elsewhere.
    pub shards: usize,
    pub dry_run: bool,
}

/// One change to make: a file and the value it should hold.
#[derive(Debug, Clone)]
struct Change {
    name: String,
    path: PathBuf,
    old: String,
    new: String,
}

enum Plan {
    Change(Change),
    Done(Item),
}

fn skipped(name: &str, path: Option<PathBuf>, why: impl Into<String>) -> Plan {
    Plan::Done(Item::new(name, path, Action::Skipped { why: why.into() }))
}

fn already(name: &str, path: PathBuf, value: &str) -> Plan {
    Plan::Done(Item::new(
        name,
        Some(path),
        Action::AlreadySet {
            value: value.to_string(),
        },
    ))
}

fn change(name: &str, path: PathBuf, old: &str, new: &str) -> Plan {
    Plan::Change(Change {
        name: name.to_string(),
        path,
        old: old.to_string(),
        new: new.to_string(),
    })
}

/// A number in a /proc/sys file that should be at most (`at_most`) or at least `target`.
fn sysctl_number(host: &Host, name: &str, abs: &str, target: u64, at_most: bool) -> Plan {
    let path = host.path(abs);
    let Some(text) = host.read(abs) else {
        return skipped(name, Some(path), "absent on this kernel");
    };
    let Ok(current) = text.parse::<u64>() else {
        return skipped(name, Some(path), format!("unexpected content {text:?}"));
    };
    let fine = if at_most {
        current <= target
    } else {
        current >= target
    };
    if fine {
        already(name, path, &text)
    } else {
        change(name, path, &text, &target.to_string())
    }
}

/// A sysfs choice file whose selection should not be `bad`: the first of `preferred`
/// that the file offers replaces it.
fn choice_away_from(host: &Host, name: &str, abs: &str, bad: &[&str], preferred: &[&str]) -> Plan {
    let path = host.path(abs);
    let Some(text) = host.read(abs) else {
        return skipped(name, Some(path), "absent on this kernel");
    };
    let sel = selected(&text);
    if !bad.contains(&sel) {
        return already(name, path, sel);
    }
    let offered = choices(&text);
    match preferred.iter().find(|p| offered.iter().any(|o| o == *p)) {
        Some(p) => change(name, path, sel, p),
        None => skipped(
            name,
            Some(path),
            format!("none of {} is offered ({text})", preferred.join(", ")),
        ),
    }
}

fn plan_disk(host: &Host, disk: &str) -> Vec<Plan> {
    let rotational = host.read(&format!("/sys/block/{disk}/queue/rotational")) == Some("1".into());
    let sched_name = format!("disk.scheduler {disk}");
    let sched_abs = format!("/sys/block/{disk}/queue/scheduler");
    let sched_path = host.path(&sched_abs);
    // The broker orders and batches its own I/O: on SSD/NVMe a kernel scheduler only
    // adds latency. A disk that says it spins is left alone: deadline ordering may help
    // it, and a virtual disk that reports rotation wrongly is the operator's call.
    let sched = match host.read(&sched_abs) {
        None => skipped(&sched_name, Some(sched_path), "no scheduler file"),
        Some(_) if rotational => skipped(&sched_name, Some(sched_path), ROTATIONAL_NOTE),
        Some(text) => {
            let sel = selected(&text).to_string();
            let offered = choices(&text);
            let wanted = ["none", "mq-deadline"];
            match wanted.iter().find(|w| offered.iter().any(|o| o == *w)) {
                Some(w) if *w == sel => already(&sched_name, sched_path, &sel),
                Some(w) => change(&sched_name, sched_path, &sel, w),
                None => skipped(
                    &sched_name,
                    Some(sched_path),
                    format!("none of {} is offered ({text})", wanted.join(", ")),
                ),
            }
        }
    };
    let merges_name = format!("disk.nomerges {disk}");
    let merges_abs = format!("/sys/block/{disk}/queue/nomerges");
    let merges_path = host.path(&merges_abs);
    let merges = match host.read(&merges_abs) {
        None => skipped(&merges_name, Some(merges_path), "no nomerges file"),
        Some(_) if rotational => skipped(&merges_name, Some(merges_path), ROTATIONAL_NOTE),
        Some(v) if v == NOMERGES_TARGET => already(&merges_name, merges_path, &v),
        Some(v) => change(&merges_name, merges_path, &v, NOMERGES_TARGET),
    };
    vec![sched, merges]
}

/// The disks under the log dirs, each once, in order; dirs on no block device are noted.
fn log_disks(host: &Host, log_dirs: &[PathBuf]) -> (Vec<String>, Vec<Plan>) {
    let mut disks: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    for d in log_dirs {
        match host.block_device(&existing(d)) {
            Some(disk) if !disks.contains(&disk) => disks.push(disk),
            Some(_) => {}
            None => notes.push(skipped(
                &format!("disk {}", d.display()),
                None,
                "not on a block device (overlay, tmpfs or a network file system)",
            )),
        }
    }
    (disks, notes)
}

fn plan_governors(host: &Host, cpus: &[usize]) -> Vec<Plan> {
    let name = "cpu.governor";
    let mut out = Vec::new();
    for cpu in cpus {
        let base = format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq");
        let abs = format!("{base}/scaling_governor");
        let Some(current) = host.read(&abs) else {
            continue;
        };
        let cpu_name = format!("{name} cpu{cpu}");
        let path = host.path(&abs);
        let offered = host
            .read(&format!("{base}/scaling_available_governors"))
            .map(|t| choices(&t));
        out.push(if current == "performance" {
            already(&cpu_name, path, &current)
        } else if offered.is_some_and(|o| !o.iter().any(|g| g == "performance")) {
            skipped(
                &cpu_name,
                Some(path),
                "the driver offers no performance governor",
            )
        } else {
            change(&cpu_name, path, &current, "performance")
        });
    }
    if out.is_empty() {
        out.push(skipped(
            name,
            None,
            "no cpufreq (a VM, or the host firmware controls frequency)",
        ));
    }
    out
}

/// IRQ numbers of a device: its (or a parent bus device's) `msi_irqs`, and the
/// /proc/interrupts lines named after it (`nvme0q1`, `virtio0-input.0`, `eth0-TxRx-0`).
fn device_irqs(host: &Host, device_link: &Path, names: &[String], interrupts: &str) -> Vec<u32> {
    let mut irqs = Vec::new();
    let mut names = names.to_vec();
    if let Ok(mut dir) = std::fs::canonicalize(device_link) {
        // The device's own name is what its interrupts are named after.
        if let Some(base) = dir.file_name() {
            names.push(base.to_string_lossy().into_owned());
        }
        for _ in 0..DEVICE_DEPTH_MAX {
            if let Ok(entries) = std::fs::read_dir(dir.join("msi_irqs")) {
                irqs.extend(
                    entries
                        .flatten()
                        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()),
                );
                break;
            }
            if !dir.pop() || !dir.starts_with(host.path("/sys")) {
                break;
            }
        }
    }
    for line in interrupts.lines() {
        let Some((irq, rest)) = line.trim_start().split_once(':') else {
            continue;
        };
        let Ok(irq) = irq.parse::<u32>() else {
            continue;
        };
        let named = rest.split_whitespace().rev().take(2).any(|action| {
            names.iter().any(|n| {
                action.strip_prefix(n.as_str()).is_some_and(|tail| {
                    !tail.starts_with(|c: char| c.is_ascii_alphanumeric()) || tail.starts_with('q')
                })
            })
        });
        if named {
            irqs.push(irq);
        }
    }
    irqs.sort_unstable();
    irqs.dedup();
    irqs.truncate(IRQS_MAX);
    irqs
}

/// IRQs of the NICs (those with a device: not lo, bridges or veths) and of the log
/// dirs' disks, each pinned round-robin to one CPU that runs no shard.
fn plan_irqs(host: &Host, cpus: &[usize], shards: usize, disks: &[String]) -> Vec<Plan> {
    let name = "irq.affinity";
    let free: Vec<usize> = cpus.iter().copied().filter(|c| *c >= shards).collect();
    if free.is_empty() {
        return vec![skipped(
            name,
            None,
            format!(
                "every CPU runs a shard ({} of {}): run the broker with --smp below the CPU count to leave CPUs for interrupts",
                shards.min(cpus.len()),
                cpus.len()
            ),
        )];
    }
    let interrupts = std::fs::read_to_string(host.path("/proc/interrupts")).unwrap_or_default();
    let mut devices: Vec<(String, PathBuf)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(host.path("/sys/class/net")) {
        let mut nics: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        nics.sort();
        for nic in nics {
            let link = host.path(&format!("/sys/class/net/{nic}/device"));
            if link.exists() {
                devices.push((nic, link));
            }
        }
    }
    for disk in disks {
        devices.push((
            disk.clone(),
            host.path(&format!("/sys/block/{disk}/device")),
        ));
    }
    let mut irqs: Vec<(u32, String)> = Vec::new();
    for (dev, link) in &devices {
        for irq in device_irqs(host, link, std::slice::from_ref(dev), &interrupts) {
            if !irqs.iter().any(|(i, _)| *i == irq) {
                irqs.push((irq, dev.clone()));
            }
        }
    }
    if irqs.is_empty() {
        return vec![skipped(
            name,
            None,
            "no NIC or log-dir disk IRQs found (virtual devices, or no IRQ control here)",
        )];
    }
    irqs.sort_unstable();
    irqs.iter()
        .enumerate()
        .map(|(i, (irq, dev))| {
            let item = format!("{name} {irq} ({dev})");
            let abs = format!("/proc/irq/{irq}/smp_affinity_list");
            let path = host.path(&abs);
            match host.read(&abs) {
                None => skipped(&item, Some(path), "no smp_affinity_list"),
                Some(current) => {
                    let now = parse_cpu_list(&current);
                    if !now.is_empty() && now.iter().all(|c| free.contains(c)) {
                        already(&item, path, &current)
                    } else {
                        change(&item, path, &current, &free[i % free.len()].to_string())
                    }
                }
            }
        })
        .collect()
}

/// Limits belong to the broker's process: apply can only say what to set.
fn rlimit_hints(shards: usize) -> Vec<Item> {
    let need = (shards * SHARD_LOCKED_BYTES) as u64;
    let show = |v: u64| {
        if v == libc::RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        Item::new(
            "rlimit.memlock",
            None,
            Action::Hint {
                what: format!(
                    "here {}; the broker needs >= {need} bytes for {shards} shards: LimitMEMLOCK=infinity in its systemd unit (scripts/corelog.service), or 'corelog - memlock unlimited' in /etc/security/limits.d/corelog.conf",
                    show(rlimit(libc::RLIMIT_MEMLOCK))
                ),
            },
        ),
        Item::new(
            "rlimit.nofile",
            None,
            Action::Hint {
                what: format!(
                    "here {}; the broker wants >= {NOFILE_MIN}: LimitNOFILE=1048576 in its systemd unit, or 'corelog - nofile 1048576' in /etc/security/limits.d/corelog.conf",
                    show(rlimit(libc::RLIMIT_NOFILE))
                ),
            },
        ),
    ]
}

fn plan(host: &Host, opts: &Options) -> Vec<Plan> {
    let cpus = host.online_cpus();
    let mut out = vec![
        sysctl_number(
            host,
            "vm.swappiness",
            "/proc/sys/vm/swappiness",
            SWAPPINESS_TARGET,
            true,
        ),
        sysctl_number(
            host,
            "fs.aio-max-nr",
            "/proc/sys/fs/aio-max-nr",
            AIO_MAX_NR_MIN,
            false,
        ),
        choice_away_from(
            host,
            "transparent_hugepage.enabled",
            "/sys/kernel/mm/transparent_hugepage/enabled",
            &["always"],
            &["madvise", "never"],
        ),
        choice_away_from(
            host,
            "transparent_hugepage.defrag",
            "/sys/kernel/mm/transparent_hugepage/defrag",
            &["always"],
            &["madvise", "defer+madvise", "never"],
        ),
    ];
    let (disks, notes) = log_disks(host, &opts.log_dirs);
    out.extend(notes);
    for disk in &disks {
        out.extend(plan_disk(host, disk));
    }
    out.extend(plan_governors(host, &cpus));
    out.extend(plan_irqs(host, &cpus, opts.shards, &disks));
    out
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub path: PathBuf,
    pub old: String,
    pub new: String,
}

/// The state file's records, oldest first; an absent file has none.
pub fn load_state(state: &Path) -> Result<Vec<Record>, String> {
    let text = match std::fs::read_to_string(state) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", state.display())),
    };
    let bad = |why: &str| {
        format!(
            "{} is not a corelog tune state file: {why}",
            state.display()
        )
    };
    let doc: Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
    if doc["version"].as_u64() != Some(STATE_VERSION) {
        return Err(bad("unknown version"));
    }
    let changes = doc["changes"].as_array().ok_or_else(|| bad("no changes"))?;
    changes
        .iter()
        .map(|c| {
            let field = |k: &str| {
                c[k].as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(&format!("a change without {k}")))
            };
            Ok(Record {
                name: field("name")?,
                path: PathBuf::from(field("path")?),
                old: field("old")?,
                new: field("new")?,
            })
        })
        .collect()
}

fn save_state(state: &Path, records: &[Record]) -> Result<(), String> {
    let changes: Vec<Value> = records
        .iter()
        .map(|r| json!({"name": r.name, "path": r.path.display().to_string(), "old": r.old, "new": r.new}))
        .collect();
    let doc = json!({"version": STATE_VERSION, "changes": changes});
    let text = serde_json::to_string_pretty(&doc).expect("a JSON value serializes") + "\n";
    if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    crate::util::write_file_atomic_blocking(state, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", state.display()))
}

/// Why a kernel file refused a write, in words an operator can act on.
fn write_refused(path: &Path, e: &std::io::Error) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::EROFS) => {
            " (read-only: a container or VM without write access to /sys or /proc)"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => {
            " (not permitted here: a container without the capability?)"
        }
        Some(libc::EIO) => " (the kernel manages this one itself)",
        Some(libc::EINVAL) => " (the kernel refused the value)",
        _ => "",
    };
    format!("cannot write {}: {e}{hint}", path.display())
}

/// Writes `value` to a kernel file (one write, as `echo value > file` does).
fn write_setting(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(format!("{value}\n").as_bytes())
}

/// Does what `tune check` recommends where it can. Err only when the state file
/// cannot be kept (then nothing was changed).
pub fn apply(host: &Host, opts: &Options, state: &Path) -> Result<Vec<Item>, String> {
    let plans = plan(host, opts);
    let mut records = if opts.dry_run {
        Vec::new()
    } else {
        let r = load_state(state)?;
        save_state(state, &r)?;
        r
    };
    let mut items = Vec::with_capacity(plans.len() + 2);
    for p in plans {
        let c = match p {
            Plan::Done(item) => {
                items.push(item);
                continue;
            }
            Plan::Change(c) => c,
        };
        let path = Some(c.path.clone());
        if opts.dry_run {
            items.push(Item::new(
                &c.name,
                path,
                Action::WouldChange {
                    old: c.old,
                    new: c.new,
                },
            ));
            continue;
        }
        // Record first: a crash between the two leaves a record of a value that may
        // not have changed, which restore writes back harmlessly.
        let before = records.clone();
        match records.iter_mut().find(|r| r.path == c.path) {
            Some(r) => r.new = c.new.clone(),
            None => records.push(Record {
                name: c.name.clone(),
                path: c.path.clone(),
                old: c.old.clone(),
                new: c.new.clone(),
            }),
        }
        save_state(state, &records)?;
        match write_setting(&c.path, &c.new) {
            Ok(()) => items.push(Item::new(
                &c.name,
                path,
                Action::Changed {
                    old: c.old,
                    new: c.new,
                },
            )),
            Err(e) => {
                records = before;
                save_state(state, &records)?;
                items.push(Item::new(
                    &c.name,
                    path,
                    Action::Skipped {
                        why: write_refused(&c.path, &e),
                    },
                ));
            }
        }
    }
    items.extend(rlimit_hints(opts.shards));
    Ok(items)
}

/// Writes back every value `apply` recorded, newest first; what could not be written
/// stays in the state file (which goes once it is empty).
pub fn restore(state: &Path, dry_run: bool) -> Result<Vec<Item>, String> {
    let mut records = load_state(state)?;
    let mut items = Vec::new();
    let mut kept = Vec::new();
    while let Some(r) = records.pop() {
        let path = Some(r.path.clone());
        if dry_run {
            items.push(Item::new(
                &r.name,
                path,
                Action::WouldChange {
                    old: r.new.clone(),
                    new: r.old.clone(),
                },
            ));
            continue;
        }
        match write_setting(&r.path, &r.old) {
            Ok(()) => items.push(Item::new(
                &r.name,
                path,
                Action::Restored {
                    old: r.new.clone(),
                    new: r.old.clone(),
                },
            )),
            Err(e) => {
                items.push(Item::new(
                    &r.name,
                    path,
                    Action::Failed {
                        why: write_refused(&r.path, &e),
                    },
                ));
                kept.insert(0, r);
            }
        }
    }
    if !dry_run {
        if kept.is_empty() {
            match std::fs::remove_file(state) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {}: {e}", state.display())),
            }
        } else {
            save_state(state, &kept)?;
        }
    }
    Ok(items)
}

fn action_fields(a: &Action) -> (&'static str, Option<&str>, Option<&str>, Option<&str>) {
    match a {
        Action::Changed { old, new } => ("changed", Some(old), Some(new), None),
        Action::WouldChange { old, new } => ("would-change", Some(old), Some(new), None),
        Action::Restored { old, new } => ("restored", Some(old), Some(new), None),
        Action::AlreadySet { value } => ("ok", Some(value), None, None),
        Action::Skipped { why } => ("skipped", None, None, Some(why)),
        Action::Hint { what } => ("hint", None, None, Some(what)),
        Action::Failed { why } => ("failed", None, None, Some(why)),
    }
}

/// One line per item: `action  name  old -> new  (path)`, or the note.
pub fn render_text(items: &[Item]) -> String {
    let width = items.iter().map(|i| i.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for i in items {
        let (action, old, new, note) = action_fields(&i.action);
        let what = match (old, new, note) {
            (Some(o), Some(n), _) => format!("{o} -> {n}"),
            (Some(v), None, _) => v.to_string(),
            (_, _, Some(n)) => n.to_string(),
            _ => String::new(),
        };
        let path = i
            .path
            .as_ref()
            .filter(|_| note.is_none())
            .map_or_else(String::new, |p| format!("  ({})", p.display()));
        out += &format!("{action:<12} {:<width$}  {what}{path}\n", i.name);
    }
    out
}

/// `{"items":[{"name","action","path","old","new","note"}]}` (absent fields null).
pub fn render_json(items: &[Item]) -> String {
    let opt = |v: Option<&str>| v.map_or_else(|| "null".to_string(), json_str);
    let rows: Vec<String> = items
        .iter()
        .map(|i| {
            let (action, old, new, note) = action_fields(&i.action);
            let path = i.path.as_ref().map(|p| p.display().to_string());
            format!(
                "{{\"name\":{},\"action\":{},\"path\":{},\"old\":{},\"new\":{},\"note\":{}}}",
                json_str(&i.name),
                json_str(action),
                opt(path.as_deref()),
                opt(old),
                opt(new),
                opt(note)
            )
        })
        .collect();
    format!("{{\"items\":[{}]}}", rows.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(root: &Path, files: &[(&str, &str)]) {
        for (abs, content) in files {
            let p = root.join(abs.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
    }

    fn read(root: &Path, abs: &str) -> String {
        std::fs::read_to_string(root.join(abs.trim_start_matches('/'))).unwrap()
    }

    #[test]
    fn apply_twice_then_restore_returns_the_first_values() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fake(
            &root,
            &[
                ("/proc/sys/vm/swappiness", "60\n"),
                ("/proc/sys/fs/aio-max-nr", "65536\n"),
                (
                    "/sys/kernel/mm/transparent_hugepage/enabled",
                    "[always] madvise never\n",
                ),
                ("/sys/devices/system/cpu/online", "0-1\n"),
            ],
        );
        let host = Host::at(&root);
        let state = t.path().join("state.json");
        let opts = Options {
            log_dirs: vec![],
            shards: 2,
            dry_run: false,
        };
        let items = apply(&host, &opts, &state).unwrap();
        assert!(items.contains(&Item::new(
            "vm.swappiness",
            Some(root.join("proc/sys/vm/swappiness")),
            Action::Changed {
                old: "60".into(),
                new: "1".into()
            }
        )));
        assert_eq!(read(&root, "/proc/sys/fs/aio-max-nr"), "1048576\n");
        assert_eq!(
            read(&root, "/sys/kernel/mm/transparent_hugepage/enabled"),
            "madvise\n"
        );
        // Someone sets swappiness back up; the second apply changes it again but keeps
        // the first old value.
        fake(&root, &[("/proc/sys/vm/swappiness", "30\n")]);
        apply(&host, &opts, &state).unwrap();
        let records = load_state(&state).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].old, "60");
        let restored = restore(&state, false).unwrap();
        assert_eq!(restored.len(), 3);
        assert_eq!(read(&root, "/proc/sys/vm/swappiness"), "60\n");
        assert_eq!(read(&root, "/proc/sys/fs/aio-max-nr"), "65536\n");
        assert_eq!(
            read(&root, "/sys/kernel/mm/transparent_hugepage/enabled"),
            "always\n"
        );
        assert!(!state.exists());
    }

    #[test]
    fn irqs_by_name_and_msi() {
        let interrupts = "           CPU0       CPU1\n 24:   1   2  PCI-MSI 1  virtio0-input.0\n 25:  1  2  PCI-MSI 2  nvme0q1\n 26: 1 2 PCI-MSI 3 nvme01q1\n";
        let host = Host::at(Path::new("/nonexistent"));
        let irqs = device_irqs(
            &host,
            Path::new("/nonexistent/x"),
            &["nvme0".into(), "virtio0".into()],
            interrupts,
        );
        assert_eq!(irqs, vec![24, 25]);
    }
}
