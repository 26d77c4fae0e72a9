//! `corelog tune check`: reads the host settings that matter to a broker and says, for
//! each, what it is, what it should be and why. It only reads (/proc, /sys, rlimits,
//! statfs) and needs no root. `tune apply|restore` (`apply.rs`) change what check
//! recommends and put it back; `host.rs` is where /proc and /sys are.

pub mod apply;
pub mod host;

use std::path::{Path, PathBuf};

use host::selected;
pub use host::Host;

use crate::runtime::SHARD_LOCKED_BYTES;

/// Open files a broker should be allowed: a few per segment, one per connection.
pub const NOFILE_MIN: u64 = 100_000;
/// Kafka and Redpanda guides ask for swappiness 1: the page cache may go, the heap not.
pub const SWAPPINESS_MAX: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// The setting does not exist on this host (a VM without cpufreq, say).
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::NotApplicable => "n/a",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub current: String,
    pub recommended: String,
    pub why: String,
}

fn check(name: &str, status: Status, current: String, recommended: &str, why: &str) -> Check {
    Check {
        name: name.to_string(),
        status,
        current,
        recommended: recommended.to_string(),
        why: why.to_string(),
    }
}

/// Every check, for a broker with `shards` shards and these log dirs.
pub fn run_checks(host: &Host, shards: usize, log_dirs: &[PathBuf]) -> Vec<Check> {
    let mut out = vec![
        io_uring(),
        memlock(shards),
        nofile(),
        swappiness(host),
        transparent_hugepages(host),
        clocksource(host),
        cpu_governor(host),
    ];
    for d in log_dirs {
        out.push(filesystem(d));
        out.push(scheduler(host, d));
    }
    out
}

fn io_uring() -> Check {
    let why = "every shard drives its sockets and files through its own io_uring";
    match crate::boot::limits::check_io_uring() {
        Ok(()) => check("io_uring", Status::Ok, "available".into(), "available", why),
        Err(e) => check("io_uring", Status::Fail, e.to_string(), "available", why),
    }
}

pub fn rlimit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    unsafe { libc::getrlimit(resource, &mut lim) };
    lim.rlim_cur
}

fn memlock(shards: usize) -> Check {
    let need = (shards * SHARD_LOCKED_BYTES) as u64;
    let have = rlimit(libc::RLIMIT_MEMLOCK);
    let status = if have == libc::RLIM_INFINITY || have >= need {
        Status::Ok
    } else {
        Status::Warn
    };
    check(
        "rlimit.memlock",
        status,
        limit_text(have),
        &format!(">= {need} bytes for {shards} shards"),
        "io_uring rings and registered buffers are locked memory; the broker raises the soft limit itself when the hard limit allows",
    )
}

fn nofile() -> Check {
    let have = rlimit(libc::RLIMIT_NOFILE);
    let status = if have == libc::RLIM_INFINITY || have >= NOFILE_MIN {
        Status::Ok
    } else {
        Status::Warn
    };
    check(
        "rlimit.nofile",
        status,
        limit_text(have),
        &format!(">= {NOFILE_MIN}"),
        "each segment keeps its files open and each client holds a socket",
    )
}

fn limit_text(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

fn swappiness(host: &Host) -> Check {
    let why = "swapping out a shard's memory stalls every partition it owns";
    match host
        .read("/proc/sys/vm/swappiness")
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(v) => {
            let status = if v <= SWAPPINESS_MAX {
                Status::Ok
            } else {
                Status::Warn
            };
            check("vm.swappiness", status, v.to_string(), "<= 1", why)
        }
        None => check(
            "vm.swappiness",
            Status::NotApplicable,
            "unreadable".into(),
            "<= 1",
            why,
        ),
    }
}

fn transparent_hugepages(host: &Host) -> Check {
    let why =
        "THP 'always' makes the kernel compact memory in the middle of requests (latency spikes)";
    match host.read("/sys/kernel/mm/transparent_hugepage/enabled") {
        Some(t) => {
            let sel = selected(&t).to_string();
            let status = if sel == "always" {
                Status::Warn
            } else {
                Status::Ok
            };
            check("transparent_hugepage", status, sel, "madvise or never", why)
        }
        None => check(
            "transparent_hugepage",
            Status::NotApplicable,
            "absent".into(),
            "madvise or never",
            why,
        ),
    }
}

fn clocksource(host: &Host) -> Check {
    let why = "every timestamp and timer reads the clock; tsc is read without a syscall";
    match host.read("/sys/devices/system/clocksource/clocksource0/current_clocksource") {
        Some(c) => {
            let status = if c == "tsc" { Status::Ok } else { Status::Warn };
            check("clocksource", status, c, "tsc", why)
        }
        None => check(
            "clocksource",
            Status::NotApplicable,
            "absent".into(),
            "tsc",
            why,
        ),
    }
}

fn cpu_governor(host: &Host) -> Check {
    let why = "power-saving governors add wake-up latency to every cross-shard hand-off";
    let path = "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor";
    match host.read(path) {
        Some(g) => {
            let status = if g == "performance" {
                Status::Ok
            } else {
                Status::Warn
            };
            check("cpu.governor", status, g, "performance", why)
        }
        None => check(
            "cpu.governor",
            Status::NotApplicable,
            "no cpufreq (a VM, or the host controls it)".into(),
            "performance",
            why,
        ),
    }
}

/// statfs magic numbers of the file systems we name.
const EXT4_SUPER_MAGIC: i64 = 0xEF53;
const XFS_SUPER_MAGIC: i64 = 0x5846_5342;
const NFS_SUPER_MAGIC: i64 = 0x6969;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// The dir itself, or its nearest existing parent (a log dir may not exist yet).
pub fn existing(dir: &Path) -> PathBuf {
    let mut d = dir.to_path_buf();
    while !d.exists() {
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p.to_path_buf(),
            _ => return PathBuf::from("."),
        }
    }
    d
}

fn filesystem(dir: &Path) -> Check {
    let name = format!("filesystem {}", dir.display());
    let why = "segments are written with O_DIRECT and fallocate; XFS and ext4 do both well, NFS and tmpfs do not";
    let path = existing(dir);
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return check(
            &name,
            Status::NotApplicable,
            "path has a NUL byte".into(),
            "xfs or ext4",
            why,
        );
    };
    // SAFETY: statfs writes into the zeroed struct; c_path is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut st) } != 0 {
        let e = std::io::Error::last_os_error();
        return check(
            &name,
            Status::NotApplicable,
            format!("statfs failed: {e}"),
            "xfs or ext4",
            why,
        );
    }
    let (fs, status) = match st.f_type as i64 {
        EXT4_SUPER_MAGIC => ("ext4".to_string(), Status::Ok),
        XFS_SUPER_MAGIC => ("xfs".to_string(), Status::Ok),
        NFS_SUPER_MAGIC => ("nfs".to_string(), Status::Fail),
        TMPFS_MAGIC => ("tmpfs".to_string(), Status::Fail),
        other => (format!("type {other:#x}"), Status::Warn),
    };
    check(&name, status, fs, "xfs or ext4", why)
}

fn scheduler(host: &Host, dir: &Path) -> Check {
    let name = format!("scheduler {}", dir.display());
    let why = "the broker already orders and batches its I/O; 'none' adds no queueing of its own on SSD/NVMe";
    let Some(disk) = host.block_device(&existing(dir)) else {
        return check(
            &name,
            Status::NotApplicable,
            "no block device (overlay or network fs?)".into(),
            "none",
            why,
        );
    };
    match host.read(&format!("/sys/block/{disk}/queue/scheduler")) {
        Some(t) => {
            let sel = selected(&t).to_string();
            let status = if sel == "none" {
                Status::Ok
            } else {
                Status::Warn
            };
            check(&name, status, format!("{sel} ({disk})"), "none", why)
        }
        None => check(
            &name,
            Status::NotApplicable,
            format!("{disk}: no scheduler file"),
            "none",
            why,
        ),
    }
}

/// A table for people.
pub fn render_text(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        out += &format!(
            "{:<5} {:<width$}  {}  (recommended: {})\n      {:<width$}  why: {}\n",
            c.status.as_str(),
            c.name,
            c.current,
            c.recommended,
            "",
            c.why,
        );
    }
    out
}

/// One JSON object: {"checks":[{"name":..,"status":..,"current":..,"recommended":..,"why":..}]}.
pub fn render_json(checks: &[Check]) -> String {
    let items: Vec<String> = checks
        .iter()
        .map(|c| {
            format!(
                "{{\"name\":{},\"status\":{},\"current\":{},\"recommended\":{},\"why\":{}}}",
                json_str(&c.name),
                json_str(c.status.as_str()),
                json_str(&c.current),
                json_str(&c.recommended),
                json_str(&c.why)
            )
        })
        .collect();
    format!("{{\"checks\":[{}]}}", items.join(","))
}

pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selected_choice_and_json_escaping() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn checks_run_unprivileged_and_io_uring_passes_here() {
        let t = tempfile::tempdir().unwrap();
        let checks = run_checks(&Host::real(), 2, &[t.path().join("not-yet")]);
        assert!(checks
            .iter()
            .any(|c| c.name == "io_uring" && c.status == Status::Ok));
        assert!(checks.iter().any(|c| c.name.starts_with("filesystem ")));
        assert!(render_json(&checks).starts_with("{\"checks\":[{\"name\":\"io_uring\""));
    }
}
