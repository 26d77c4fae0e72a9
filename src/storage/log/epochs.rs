//! The log's leader epoch cache (`storage::leader_epoch`): filled by appends and
//! recovery, trimmed with the log, persisted to `leader-epoch-checkpoint`, and asked by
//! OffsetForLeaderEpoch.
//!
//! The file is rewritten (temp, fsync, rename) by one task per log at a time, after
//! each change; a crash before it lands loses nothing, since recovery re-learns the
//! epochs of every batch past the recovery point from the batches themselves.

use super::{io, PartitionLog, State, StorageError};
use crate::storage::leader_epoch::{LeaderEpochCache, CHECKPOINT_FILE};
use crate::storage::recovery::Recovered;

/// Where the cache's file stands.
#[derive(Debug, Default)]
pub(super) struct EpochFile {
    /// The cache changed since the file was last written.
    dirty: bool,
    /// A task is writing the file (it loops while `dirty`).
    writing: bool,
}

/// The cache for a log being opened: the checkpoint file, less what lies past the
/// recovered end, plus the epochs recovery saw, trimmed to the log start. A log with
/// data and no epoch at all (written before the cache existed, when every batch carried
/// epoch `default_epoch`) gets that epoch from its start. Returns the cache and whether
/// it differs from the file.
pub(super) async fn load(
    dir: &std::path::Path,
    recovered: &Recovered,
    log_start_offset: i64,
    default_epoch: i32,
) -> Result<(LeaderEpochCache, bool), StorageError> {
    let path = dir.join(CHECKPOINT_FILE);
    let on_disk = io::read_small_file(&path).await?;
    let mut cache = match on_disk.as_deref().map(LeaderEpochCache::decode) {
        Some(Some(cache)) => cache,
        Some(None) => {
            tracing::warn!(path = %path.display(), "leader epoch checkpoint is damaged; rebuilding it");
            LeaderEpochCache::default()
        }
        None => LeaderEpochCache::default(),
    };
    cache.truncate_from_end(recovered.log_end_offset);
    for &(epoch, base_offset) in &recovered.epochs {
        cache.assign(epoch, base_offset);
    }
    if cache.entries().is_empty() && recovered.log_end_offset > log_start_offset {
        cache.assign(default_epoch, log_start_offset);
    }
    cache.truncate_from_start(log_start_offset);
    let changed = on_disk.as_deref() != Some(&cache.encode()[..]);
    Ok((cache, changed))
}

impl EpochFile {
    /// The cache changed: the file must be rewritten (by the running writer task, or by
    /// the caller through `flush_epochs`).
    pub(super) fn mark_dirty(&mut self) {
        self.dirty = true;
    }
}

impl PartitionLog {
    /// OffsetForLeaderEpoch: the epoch `requested` resolves to and where it ends here.
    pub fn end_offset_for_epoch(&self, requested: i32) -> Result<(i32, i64), StorageError> {
        let st = self.inner.state.borrow();
        st.check_usable(&self.inner.dir)?;
        Ok(st.epochs.end_offset_for(requested, st.log_end_offset))
    }

    /// The leader epoch cache's entries (epoch, start offset).
    pub fn leader_epochs(&self) -> Vec<(i32, i64)> {
        self.inner.state.borrow().epochs.entries().to_vec()
    }

    /// Notes that the cache changed. Returns whether the caller must start the writing
    /// task with [`Self::spawn_epoch_writer`] once it has released its borrow (glommio
    /// runs a new task at once, which would find the state still borrowed).
    pub(super) fn note_epochs_changed(st: &mut State) -> bool {
        st.epoch_file.dirty = true;
        if st.epoch_file.writing {
            return false;
        }
        st.epoch_file.writing = true;
        true
    }

    pub(super) fn spawn_epoch_writer(&self) {
        let log = self.clone();
        glommio::spawn_local(async move { log.write_epochs().await }).detach();
    }

    /// Writes the file until it holds the latest cache.
    pub(super) async fn write_epochs(&self) {
        let path = self.inner.dir.join(CHECKPOINT_FILE);
        loop {
            let data = {
                let mut st = self.inner.state.borrow_mut();
                if !st.epoch_file.dirty || st.failure.is_some() {
                    st.epoch_file.writing = false;
                    return;
                }
                st.epoch_file.dirty = false;
                st.epochs.encode()
            };
            if let Err(error) = io::write_small_file(&path, data).await {
                self.fail(error);
            }
        }
    }

    /// Waits for the file to hold the latest cache (close).
    pub(super) async fn flush_epochs(&self) {
        let write_now = {
            let mut st = self.inner.state.borrow_mut();
            let idle = !st.epoch_file.writing;
            if idle && st.epoch_file.dirty {
                st.epoch_file.writing = true;
            }
            idle && st.epoch_file.dirty
        };
        if write_now {
            self.write_epochs().await;
        }
        while self.inner.state.borrow().epoch_file.writing {
            crate::runtime::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}
