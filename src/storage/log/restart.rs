//! Restarting the log at a later offset (`restart_at`, Kafka's
//! `truncateFullyAndStartAt`): a follower whose log ends below its leader's log start
//! offset cannot fetch what it is missing (the leader deleted it by retention or
//! DeleteRecords), so it drops its whole log and continues from the leader's start.
//! A replica added by a reassignment starts this way too when the leader's log no
//! longer begins at 0.
//!
//! ```text
//!  before:  [s0 .....][s1 ... active]            log end 700
//!  leader:                     log start 5000 ...........
//!  after:   [s5000 active, empty]                log start = log end = 5000
//! ```
//!
//! It claims the log as a truncation does (`State::truncating`: appends refused, no
//! writer, retention and the cleaner leave the files alone, close waits), waits for
//! the writer and any cleaner swap, then on disk: deletes every segment newest first
//! and every producer snapshot, fsyncs the directory, creates the empty segment at the
//! new offset and fsyncs the directory again. A crash in between leaves a prefix of the
//! old log, or no segment at all; either is a log the follower restarts again after its
//! own restart. The caller checkpoints the new log start and recovery point.

use super::{PartitionLog, StorageError};
use crate::storage::io;
use crate::storage::producer_state::ProducerState;
use crate::storage::segment::Segment;
use crate::storage::snapshot;

impl PartitionLog {
    /// Drops every record and continues at `offset`, which must be past the log end, or
    /// anywhere else when the log is empty (else `OffsetOutOfRange`, nothing changed): on return the log is empty, durable,
    /// and `log_start_offset() == log_end_offset() == offset`; the leader epoch cache
    /// and producer state are empty (the leader's batches bring both again), and the
    /// replicated high watermark, if set, is `offset`.
    pub async fn restart_at(&self, offset: i64) -> Result<(), StorageError> {
        self.begin_restart(offset).await?;
        let result = self.restart_claimed(offset).await;
        let spawn = {
            let mut st = self.inner.state.borrow_mut();
            st.truncating = None;
            st.idle_waiters.wake_all();
            self.claim_writer(&mut st)
        };
        if spawn {
            self.spawn_writer();
        }
        result
    }

    /// Waits for any truncation, then claims the log for this restart.
    async fn begin_restart(&self, offset: i64) -> Result<(), StorageError> {
        self.claim_when_free(|st| {
            let empty = st.log_start_offset == st.log_end_offset;
            if offset < 0 || offset == st.log_end_offset || (offset < st.log_end_offset && !empty) {
                return Err(StorageError::OffsetOutOfRange {
                    offset,
                    start: st.log_start_offset,
                    end: st.log_end_offset,
                });
            }
            st.truncating = Some(st.log_start_offset);
            Ok(())
        })
        .await
    }

    async fn restart_claimed(&self, offset: i64) -> Result<(), StorageError> {
        self.wait_quiet().await?;
        let segment = match self.restart_on_disk(offset).await {
            Ok(segment) => segment,
            Err(error) => return Err(self.fail(error)),
        };
        let dropped_bytes = {
            let mut st = self.inner.state.borrow_mut();
            assert!(
                st.pending.is_empty(),
                "appends are refused while the log is claimed"
            );
            let dropped: u64 = st.segments.iter().map(Segment::size).sum();
            st.segments = vec![segment];
            st.log_start_offset = offset;
            st.written_offset = offset;
            st.durable_offset = offset;
            st.producers = ProducerState::new();
            st.written_producers = ProducerState::new();
            st.cleaner.first_dirty = offset;
            st.cache.clear();
            st.replicated_hw = st.replicated_hw.map(|_| offset);
            st.log_end_offset = offset;
            st.durable_wanted = st.durable_wanted.min(offset);
            if st.epochs.truncate_from_end(i64::MIN) {
                st.epoch_file.mark_dirty();
            }
            // Every waiter was waiting for records this log no longer has or never
            // will at that offset: they are told `Truncated` and ask again.
            st.written_waiters.truncate_from(i64::MIN);
            st.durable_waiters.truncate_from(i64::MIN);
            st.data_waiters.truncate_from(i64::MIN);
            dropped
        };
        self.flush_epochs().await;
        tracing::info!(
            dir = %self.inner.dir.display(),
            log_start_offset = offset,
            dropped_bytes,
            "restarted the log at the leader's log start offset"
        );
        Ok(())
    }

    /// The disk part of `restart_at`; see the module comment.
    async fn restart_on_disk(&self, offset: i64) -> Result<Segment, StorageError> {
        let dir = &self.inner.dir;
        let paths: Vec<[std::path::PathBuf; 3]> = {
            let st = self.inner.state.borrow();
            st.segments
                .iter()
                .rev()
                .map(|s| [s.log_path().to_owned(), s.index_path(), s.time_index_path()])
                .collect()
        };
        for paths in &paths {
            for path in paths {
                io::remove_file(path).await?;
            }
        }
        for stale in snapshot::snapshot_offsets(&io::list_dir(dir).await?) {
            io::remove_file(&dir.join(snapshot::snapshot_file_name(stale))).await?;
        }
        io::sync_dir(dir).await?;
        let config = self.config();
        let segment = Segment::create(
            dir,
            offset,
            config.index_interval_bytes,
            config.segment_bytes,
        )
        .await?;
        io::sync_dir(dir).await?;
        Ok(segment)
    }
}
