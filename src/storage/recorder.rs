//! The write recorder, for simulated power cuts (issue 15 item 2): a journal of every
//! operation `storage::io` does that changes what a disk holds after a power cut —
//! writes, fdatasyncs, length changes, file creation, renames, unlinks, directory
//! syncs — plus the acks=all answers the log gives and marks the test workload adds.
//! `storage::powercut` (tests) turns a journal into the file states a power cut allows.
//!
//! Off unless a test arms it with [`Recording::start`] for a directory tree: then every
//! operation on a path inside that tree is appended to that recording's journal, in
//! completion order (the sequence number is the position in the journal). Operations
//! run on the shard thread and on glommio's blocking pool, so the journal sits behind a
//! mutex. Disarmed, [`armed`] is one relaxed atomic load and nothing else runs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How many recordings are running (any test of the process).
static ARMED: AtomicUsize = AtomicUsize::new(0);
/// The running recordings: root directory and journal.
type Journal = Arc<Mutex<Vec<Op>>>;
static RECORDINGS: Mutex<Vec<(PathBuf, Journal)>> = Mutex::new(Vec::new());

/// One journaled operation. Paths are absolute, as `storage::io` was given them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A new, empty file got a directory entry (O_CREAT of a missing file).
    Create { path: PathBuf },
    /// A new directory got an entry in its parent.
    Mkdir { path: PathBuf },
    /// `data` was written at byte `pos` (a completed write, in the page cache or the
    /// device's volatile cache: durable only after a later [`Op::SyncFile`]).
    Write {
        path: PathBuf,
        pos: u64,
        data: Vec<u8>,
    },
    /// The file's length was set (ftruncate; a shorter file loses its tail).
    SetLen { path: PathBuf, size: u64 },
    /// fallocate: the file is at least `size` long, zeros past its data.
    Allocate { path: PathBuf, size: u64 },
    /// fdatasync/fsync of a file: everything written to it before is durable.
    SyncFile { path: PathBuf },
    /// fsync of a directory: its entries' creations, renames and removals are durable.
    SyncDir { path: PathBuf },
    /// Rename within one directory (replacing `to` if it exists).
    Rename { from: PathBuf, to: PathBuf },
    /// A file's directory entry was removed.
    Unlink { path: PathBuf },
    /// A directory and everything in it was removed.
    RemoveTree { path: PathBuf },
    /// The log in `dir` answered an acks=all wait: every offset up to and including
    /// `offset` was durable when it did.
    Ack { dir: PathBuf, offset: i64 },
    /// A note from the test workload (what it appended, truncated, deleted), kept in
    /// order with the operations it caused.
    Mark { dir: PathBuf, mark: Mark },
}

/// What the workload tells the checker, in journal order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// A batch was appended with these offsets; `bytes` is what the log stores.
    Appended {
        base_offset: i64,
        last_offset: i64,
        bytes: Vec<u8>,
    },
    /// The log was truncated to `offset` (a follower's cut): later offsets may be
    /// written again with other batches.
    TruncatedTo { offset: i64 },
    /// The log start offset moved to `offset` (DeleteRecords or retention).
    LogStartMoved { offset: i64 },
}

/// Whether any recording runs: the cheap check in front of every hook.
#[inline]
pub fn armed() -> bool {
    ARMED.load(Ordering::Relaxed) != 0
}

/// Whether a recording covers `path` (then the caller builds its [`Op`]).
pub fn covers(path: &Path) -> bool {
    armed() && journal_for(path).is_some()
}

fn journal_for(path: &Path) -> Option<Journal> {
    let recordings = RECORDINGS.lock().unwrap_or_else(|e| e.into_inner());
    recordings
        .iter()
        .find(|(root, _)| path.starts_with(root))
        .map(|(_, journal)| journal.clone())
}

/// Journals the operation `op()` on `path` if a recording covers it.
#[inline]
pub fn record(path: &Path, op: impl FnOnce() -> Op) {
    if !armed() {
        return;
    }
    if let Some(journal) = journal_for(path) {
        journal.lock().unwrap_or_else(|e| e.into_inner()).push(op());
    }
}

/// A running recording of everything under `root`; stops when dropped.
#[cfg(test)]
pub struct Recording {
    root: PathBuf,
    journal: Journal,
}

#[cfg(test)]
impl Recording {
    /// Starts journaling operations on paths under `root`.
    pub fn start(root: &Path) -> Recording {
        let journal = Journal::default();
        RECORDINGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((root.to_owned(), journal.clone()));
        ARMED.fetch_add(1, Ordering::Relaxed);
        Recording {
            root: root.to_owned(),
            journal,
        }
    }

    /// The journal so far.
    pub fn ops(&self) -> Vec<Op> {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds a workload note about the log in `dir`.
    pub fn mark(&self, dir: &Path, mark: Mark) {
        record(dir, || Op::Mark {
            dir: dir.to_owned(),
            mark,
        });
    }
}

#[cfg(test)]
impl Drop for Recording {
    fn drop(&mut self) {
        let mut recordings = RECORDINGS.lock().unwrap_or_else(|e| e.into_inner());
        recordings
            .retain(|(root, journal)| !(root == &self.root && Arc::ptr_eq(journal, &self.journal)));
        ARMED.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_under_its_root_and_only_while_armed() {
        let outside = Path::new("/powercut-recorder-test/elsewhere/f");
        let root = Path::new("/powercut-recorder-test/root");
        record(&root.join("f"), || panic!("built an op with no recording"));
        let recording = Recording::start(root);
        record(outside, || panic!("built an op outside the root"));
        record(&root.join("f"), || Op::SyncFile {
            path: root.join("f"),
        });
        assert_eq!(
            recording.ops(),
            vec![Op::SyncFile {
                path: root.join("f")
            }]
        );
        drop(recording);
        record(&root.join("f"), || {
            panic!("built an op after the recording stopped")
        });
    }
}
