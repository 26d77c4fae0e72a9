//! Where `corelog tune` reads and writes the kernel's settings: /proc and /sys under a
//! root that is `/` on a real host and a fake tree in tests (`--sysroot`, hidden).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    /// The running kernel's /proc and /sys.
    pub fn real() -> Host {
        Host {
            root: PathBuf::from("/"),
        }
    }

    /// /proc and /sys under `root` (a test's fake tree).
    pub fn at(root: &Path) -> Host {
        Host {
            root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
        }
    }

    /// `abs` (an absolute path such as /proc/sys/vm/swappiness) under the root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// The file's content without surrounding white space; None when unreadable.
    pub fn read(&self, abs: &str) -> Option<String> {
        std::fs::read_to_string(self.path(abs))
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// The whole-disk block device (`vda`, `nvme0n1`) a path lives on, by its st_dev:
    /// /sys/dev/block/MAJOR:MINOR names the device (`.../block/vda/vda1`,
    /// `.../nvme/nvme0/nvme0n1/nvme0n1p1`); a partition's disk is its parent.
    pub fn block_device(&self, path: &Path) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let dev = std::fs::metadata(path).ok()?.dev();
        let (major, minor) = (libc::major(dev), libc::minor(dev));
        let link_path = self.path(&format!("/sys/dev/block/{major}:{minor}"));
        let target = std::fs::read_link(&link_path).ok()?;
        let names: Vec<String> = target
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let dir = link_path.parent()?.join(&target);
        if dir.join("partition").exists() && names.len() >= 2 {
            names.get(names.len() - 2).cloned()
        } else {
            names.last().cloned()
        }
    }

    /// CPUs the kernel has online, from /sys/devices/system/cpu/online ("0-3,6").
    pub fn online_cpus(&self) -> Vec<usize> {
        self.read("/sys/devices/system/cpu/online")
            .map(|s| parse_cpu_list(&s))
            .unwrap_or_default()
    }
}

/// A kernel CPU list ("0-2,5") as numbers; malformed parts are skipped.
pub fn parse_cpu_list(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                    out.extend(a..=b.min(a + CPUS_MAX));
                }
            }
            None => out.extend(part.trim().parse::<usize>().ok()),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The most CPUs one range of a CPU list may name (a bound on a malformed file).
const CPUS_MAX: usize = 65_536;

/// The bracketed choice of a sysfs multiple-choice file ("always [madvise] never"), or
/// the whole text when it has no brackets (a file with one choice).
pub fn selected(text: &str) -> &str {
    let Some(start) = text.find('[') else {
        return text.trim();
    };
    match text[start..].find(']') {
        Some(end) => &text[start + 1..start + end],
        None => text.trim(),
    }
}

/// The choices a sysfs multiple-choice file offers, brackets removed.
pub fn choices(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|c| c.trim_matches(|ch| ch == '[' || ch == ']').to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_choices() {
        assert_eq!(parse_cpu_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("3"), vec![3]);
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
        assert_eq!(selected("always [madvise] never"), "madvise");
        assert_eq!(selected("none"), "none");
        assert_eq!(choices("[mq-deadline] none"), vec!["mq-deadline", "none"]);
        assert_eq!(
            Host::at(Path::new("/tmp/x")).path("/proc/sys/vm/swappiness"),
            PathBuf::from("/tmp/x/proc/sys/vm/swappiness")
        );
    }
}
