//! The log's lifecycle at its old end: retention by time and size, DeleteRecords, and
//! deleting the segments that fall below the log start offset.
//!
//! Whole segments are deleted, oldest first, never the active one: when retention finds
//! the active segment itself expired (by time) it asks the writer to roll it first, as
//! Kafka does, so an idle topic's data still expires. Deleting takes the segments out of
//! the log under the borrow (readers that already hold a file handle finish their read;
//! new reads below the log start offset get OFFSET_OUT_OF_RANGE), then unlinks their
//! files on the blocking pool, so the shard never waits on the file system.

use super::{PartitionLog, State, StorageError};
use crate::storage::io;
use crate::storage::segment::Segment;

/// What one retention pass did, for the log line and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retained {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: i64,
}

impl PartitionLog {
    /// Applies `retention.ms` and `retention.bytes` (when `cleanup.policy` has delete)
    /// and drops segments wholly below the log start offset (left by DeleteRecords).
    pub async fn enforce_retention(&self, now_ms: i64) -> Result<Retained, StorageError> {
        self.trim(now_ms, true).await
    }

    /// Deletes the oldest segments: those below the log start offset, and with
    /// `by_policy` those retention.ms / retention.bytes let go.
    async fn trim(&self, now_ms: i64, by_policy: bool) -> Result<Retained, StorageError> {
        let mut config = self.config();
        config.cleanup_delete &= by_policy;
        if config.cleanup_delete && config.retention_ms >= 0 {
            self.learn_last_writes(now_ms, config.retention_ms).await;
            if self.active_expired(now_ms) {
                self.roll_and_wait().await?;
            }
        }
        let (doomed, write_epochs) = {
            let mut st = self.inner.state.borrow_mut();
            st.check_usable(&self.inner.dir)?;
            // The cleaner is renaming segment files: leave them to the next pass.
            // A truncation is cutting them: the same.
            let sealed = if st.cleaner.swapping || st.truncating.is_some() {
                0
            } else {
                st.segments.len() - 1
            };
            // Retention never deletes data of an open transaction: only segments wholly
            // below the last stable offset go (the log start offset may be moved by
            // DeleteRecords, as in Kafka).
            let stable = st.last_stable_offset();
            let below_stable = |st: &State, i: usize| st.segments[i + 1].base_offset <= stable;
            let mut count = 0;
            // Below the log start offset: the next segment starts at or before it.
            while count < sealed && st.segments[count + 1].base_offset <= st.log_start_offset {
                count += 1;
            }
            if config.cleanup_delete {
                if config.retention_ms >= 0 {
                    while count < sealed
                        && below_stable(&st, count)
                        && expired(&st.segments[count], now_ms, config.retention_ms)
                    {
                        count += 1;
                    }
                }
                if config.retention_bytes >= 0 {
                    let total: u64 = st.segments.iter().map(Segment::size).sum();
                    let mut excess = total.saturating_sub(config.retention_bytes as u64);
                    let already: u64 = st.segments[..count].iter().map(Segment::size).sum();
                    excess = excess.saturating_sub(already);
                    while count < sealed
                        && below_stable(&st, count)
                        && st.segments[count].size() <= excess
                    {
                        excess -= st.segments[count].size();
                        count += 1;
                    }
                }
            }
            let doomed: Vec<Segment> = st.segments.drain(..count).collect();
            super::readahead::forget_gone_files(&mut st);
            if let Some(first) = st.segments.first() {
                st.log_start_offset = st.log_start_offset.max(first.base_offset);
            }
            let start = st.log_start_offset;
            st.producers.prune_aborted(start);
            st.written_producers.prune_aborted(start);
            let write_epochs =
                st.epochs.truncate_from_start(start) && Self::note_epochs_changed(&mut st);
            (doomed, write_epochs)
        };
        if write_epochs {
            self.spawn_epoch_writer();
        }
        let mut retained = Retained {
            deleted_segments: doomed.len(),
            deleted_bytes: doomed.iter().map(Segment::size).sum(),
            log_start_offset: self.log_start_offset(),
        };
        for segment in doomed {
            for path in [
                segment.log_path().to_owned(),
                segment.index_path(),
                segment.time_index_path(),
            ] {
                if let Err(e) = io::remove_file(&path).await {
                    return Err(self.fail(e));
                }
            }
        }
        if retained.deleted_segments > 0 {
            tracing::info!(
                dir = %self.inner.dir.display(),
                segments = retained.deleted_segments,
                bytes = retained.deleted_bytes,
                log_start_offset = retained.log_start_offset,
                "deleted segments by retention"
            );
        }
        retained.log_start_offset = self.log_start_offset();
        Ok(retained)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1: the high
    /// watermark), deletes the segments wholly below it, and returns the new log start
    /// offset (the low watermark). Past the high watermark: OFFSET_OUT_OF_RANGE.
    pub async fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        {
            let mut st = self.inner.state.borrow_mut();
            st.check_usable(&self.inner.dir)?;
            let high_watermark = st.consumer_high_watermark();
            let target = if offset == -1 { high_watermark } else { offset };
            if target < 0 || target > high_watermark {
                return Err(StorageError::OffsetOutOfRange {
                    offset,
                    start: st.log_start_offset,
                    end: high_watermark,
                });
            }
            if target > st.log_start_offset {
                st.log_start_offset = target;
                // Followers' long-polls re-read and answer with the new log start
                // (the leader's DeleteRecords waits for them to follow it).
                st.written_waiters.wake_all();
            }
        }
        // Only the segments below the new start go; retention proper waits its turn.
        let trimmed = self.trim(crate::util::now_ms(), false).await?;
        Ok(trimmed.log_start_offset)
    }

    /// Looks up the `.log` modification time of the oldest segments whose records
    /// alone would let them expire but whose last append is not known (they were found
    /// on disk at the open), so that `expired` can apply its floor. Only those segments
    /// are looked at: retention deletes from the front and stops at the first one kept.
    /// A failed look-up is logged and leaves the segment kept for this pass.
    async fn learn_last_writes(&self, now_ms: i64, retention_ms: i64) {
        let unknown: Vec<(i64, std::path::PathBuf)> = {
            let st = self.inner.state.borrow();
            st.segments
                .iter()
                .take_while(|s| !timestamps_keep(s, now_ms, retention_ms))
                .filter(|s| s.last_write_ms().is_none())
                .map(|s| (s.base_offset, s.log_path().to_owned()))
                .collect()
        };
        for (base_offset, path) in unknown {
            match io::modified_ms(&path).await {
                Ok(modified_ms) => {
                    let mut st = self.inner.state.borrow_mut();
                    if let Some(s) = st
                        .segments
                        .iter_mut()
                        .find(|s| s.base_offset == base_offset)
                    {
                        s.learn_last_write_ms(modified_ms);
                    }
                }
                Err(error) => tracing::warn!(
                    path = %path.display(), %error,
                    "cannot read the segment's modification time; keeping it this retention pass"
                ),
            }
        }
    }

    /// Whether the active segment has data and all of it is older than retention.ms.
    fn active_expired(&self, now_ms: i64) -> bool {
        let st = self.inner.state.borrow();
        let config = self.inner.config.borrow();
        let active = st.active();
        active.size() > 0 && st.pending.is_empty() && expired(active, now_ms, config.retention_ms)
    }

    /// Has the writer roll the active segment, and waits until it has.
    async fn roll_and_wait(&self) -> Result<(), StorageError> {
        let spawn = {
            let mut st = self.inner.state.borrow_mut();
            st.check_usable(&self.inner.dir)?;
            st.roll_requested = true;
            self.claim_writer(&mut st)
        };
        if spawn {
            self.spawn_writer();
        }
        loop {
            let rx = {
                let mut st = self.inner.state.borrow_mut();
                if let Some(failure) = &st.failure {
                    return Err(failure.to_error());
                }
                if !st.roll_requested {
                    return Ok(());
                }
                st.idle_waiters.register(i64::MAX)
            };
            let _ = rx.await;
        }
    }
}

/// The time rule: a segment expires when its newest record is older than
/// `retention_ms` and its last append too. Kafka looks at the records' timestamps alone
/// (falling back to the file's modification time when none has one); the append-time
/// floor is ours, so that no client's timestamps — unset, wrong clock, or replayed
/// history — get a record deleted before `retention_ms` has passed since it was
/// written. An empty segment (the cleaner removed every record of a `compact,delete`
/// log's segment) expires at once so that it does not hold back the segments after it.
fn expired(segment: &Segment, now_ms: i64, retention_ms: i64) -> bool {
    if segment.size() == 0 {
        return true;
    }
    let Some(last_write_ms) = segment.last_write_ms() else {
        return false;
    };
    let newest = segment
        .index
        .max_timestamp()
        .map_or(last_write_ms, |t| t.max(last_write_ms));
    now_ms.saturating_sub(newest) > retention_ms
}

/// Whether the segment's record timestamps alone keep it (its newest record is
/// younger than `retention_ms`): then its last append need not be known.
fn timestamps_keep(segment: &Segment, now_ms: i64, retention_ms: i64) -> bool {
    segment.size() > 0
        && segment
            .index
            .max_timestamp()
            .is_some_and(|newest| now_ms.saturating_sub(newest) <= retention_ms)
}
