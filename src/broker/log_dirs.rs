//! Which log dirs are online (Kafka's KIP-112). A dir goes offline for good (until a
//! restart) when it fails start-up checks or any of its partitions hits an I/O error:
//! every partition in it then answers KAFKA_STORAGE_ERROR, new partitions are placed in
//! the other dirs, and the broker keeps serving everything else.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

struct DirState {
    offline: AtomicBool,
    reason: Mutex<Option<String>>,
}

/// Shared by every shard; flags are read on every request, so they are atomics.
pub struct LogDirStates {
    dirs: Vec<DirState>,
    /// Dirs taken offline since start (start-up failures included), for metrics.
    failures: AtomicU64,
}

impl LogDirStates {
    /// `offline[i]` holds the reason dir i is unusable at start-up, if it is.
    pub fn new(offline: Vec<Option<String>>) -> LogDirStates {
        let failures = offline.iter().filter(|o| o.is_some()).count() as u64;
        LogDirStates {
            dirs: offline
                .into_iter()
                .map(|reason| DirState {
                    offline: AtomicBool::new(reason.is_some()),
                    reason: Mutex::new(reason),
                })
                .collect(),
            failures: AtomicU64::new(failures),
        }
    }

    pub fn is_offline(&self, dir: usize) -> bool {
        self.dirs
            .get(dir)
            .is_some_and(|d| d.offline.load(Ordering::Relaxed))
    }

    /// Takes a dir offline; logs and counts it the first time. Returns whether it was
    /// online until now.
    pub fn take_offline(&self, dir: usize, path: &std::path::Path, why: &str) -> bool {
        let Some(d) = self.dirs.get(dir) else {
            return false;
        };
        if d.offline.swap(true, Ordering::AcqRel) {
            return false;
        }
        *d.reason.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.to_string());
        self.failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            dir = %path.display(),
            reason = why,
            "log dir is offline: its partitions answer KAFKA_STORAGE_ERROR until a restart; the other dirs keep serving"
        );
        true
    }

    pub fn reason(&self, dir: usize) -> Option<String> {
        self.dirs
            .get(dir)
            .and_then(|d| d.reason.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Whether each dir may take new partitions.
    pub fn online_mask(&self) -> Vec<bool> {
        (0..self.dirs.len()).map(|i| !self.is_offline(i)).collect()
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}
