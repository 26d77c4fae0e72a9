//! The log as a replica of a Kafka-style cluster: follower appends of the leader's
//! batches as they are, the leader epoch of later appends, and the replication high
//! watermark that caps what consumers see.
//!
//! ```text
//!   log start        consumer HW        written end         log end
//!   |................|..................|...................|
//!   read()  ---------^                  |                   |
//!   read_replica() ---------------------^   (followers)     |
//!                    pending (queued for the writer) -------^
//! ```
//!
//! The consumer high watermark is `min(written, replicated_hw)`, or `written` while no
//! replicated HW is set (a single replica: today's behaviour). The replicated HW only
//! grows once set, except that a truncation below it pulls it down to the new end.

use bytes::Bytes;

use super::{AppendInfo, PartitionLog, ReadResult, StorageError};
use crate::metrics::{self, Counter};
use crate::storage::batch::split_and_validate;
use crate::storage::segment::PendingBatch;

/// Bound on one replicated batch: the batch length field is an i32. The leader already
/// held its batches to the topic's message.max.bytes; refusing one here for a smaller
/// local setting would stop replication for good, so only framing bounds it.
const REPLICATED_BATCH_BYTES_MAX: usize = i32::MAX as usize;

impl PartitionLog {
    /// Follower append: `records` are whole v2 batches exactly as the leader's Fetch
    /// returned them, kept byte for byte (base offsets, partition leader epochs,
    /// timestamps, compression). Framing and CRC are validated; the first batch must
    /// start at `log_end_offset()` and the batches must be contiguous, else
    /// `NotContiguous` and nothing is appended. Producer state records the batches
    /// (no duplicate refusal), so this replica dedupes retries once it leads; each new
    /// partition leader epoch is recorded at its first batch's base offset, replacing
    /// the entries it contradicts (`LeaderEpochCache::assign_replicated`). Queued for
    /// the same writer as `append`.
    pub fn append_replicated(&self, records: Bytes) -> Result<AppendInfo, StorageError> {
        let batches = split_and_validate(&records, REPLICATED_BATCH_BYTES_MAX)?;
        let mut st = self.inner.state.borrow_mut();
        st.check_usable(&self.inner.dir)?;
        if st.truncating.is_some() {
            return Err(StorageError::Truncated {
                offset: st.log_end_offset,
            });
        }
        let first_offset = st.log_end_offset;
        if st.pending.is_empty() {
            st.pending_since = Some(std::time::Instant::now());
        }
        let mut expected = first_offset;
        for batch in &batches {
            if batch.header.base_offset != expected {
                return Err(StorageError::NotContiguous {
                    expected,
                    got: batch.header.base_offset,
                });
            }
            expected = batch.header.last_offset() + 1;
        }
        let mut write_epochs = false;
        for batch in &batches {
            let header = batch.header;
            assert_eq!(header.base_offset, st.log_end_offset, "checked contiguous");
            st.producers
                .record_batch(&header, header.base_offset, &records[batch.range.clone()]);
            write_epochs |= st
                .epochs
                .assign_replicated(header.partition_leader_epoch, header.base_offset);
            st.log_end_offset = header.last_offset() + 1;
            st.pending.push_back(PendingBatch {
                header,
                data: records.slice(batch.range.clone()),
            });
        }
        metrics::add(Counter::AppendedBatches, batches.len() as u64);
        metrics::add(Counter::AppendedBytes, records.len() as u64);
        let spawn_epochs = write_epochs && Self::note_epochs_changed(&mut st);
        let info = AppendInfo {
            base_offset: first_offset,
            last_offset: st.log_end_offset - 1,
            log_append_time_ms: -1,
            log_start_offset: st.log_start_offset,
        };
        let spawn_writer = self.claim_writer(&mut st);
        drop(st);
        if spawn_writer {
            self.spawn_writer();
        }
        if spawn_epochs {
            self.spawn_epoch_writer();
        }
        Ok(info)
    }

    /// Sets the leader epoch `append` writes into batches from now on (the
    /// controller's epoch of this replica as it becomes leader), and records that the
    /// epoch begins at the log end offset if it is new to the epoch cache.
    pub fn set_leader_epoch(&self, epoch: i32) {
        let mut st = self.inner.state.borrow_mut();
        st.leader_epoch = epoch;
        let start = st.log_end_offset;
        let spawn = st.epochs.assign(epoch, start) && Self::note_epochs_changed(&mut st);
        drop(st);
        if spawn {
            self.spawn_epoch_writer();
        }
    }

    /// Marks this replica as following a leader (`true`) or leading / alone (`false`).
    /// A follower writes no zeros ahead of its data: they exist so that a leader's
    /// acks=all fdatasync has no extents to convert, and a follower answers no acks=all
    /// (its zeros' writes and fdatasyncs only compete with the leaders' on the disk).
    /// A follower's writer also lets a few batches gather before writing them
    /// (`writer::follower_hold`): nothing waits for a follower's write but its own
    /// consumers (follower fetching), and fewer, larger writes leave the disk to the
    /// leaders' acks=all writes.
    pub fn set_follower(&self, follower: bool) {
        let mut st = self.inner.state.borrow_mut();
        if st.follower == follower {
            return;
        }
        st.follower = follower;
        // A follower turned leader: start writing what it held, and zeros when idle.
        let spawn = !follower && self.claim_writer(&mut st);
        drop(st);
        if spawn {
            self.spawn_writer();
        }
    }

    /// The leader epoch `append` writes into batches.
    pub fn leader_epoch(&self) -> i32 {
        self.inner.state.borrow().leader_epoch
    }

    /// The last epoch in the leader epoch cache (OffsetForLeaderEpoch), if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.inner.state.borrow().epochs.latest_epoch()
    }

    /// The replication high watermark, `None` while consumers see everything written.
    pub fn replicated_high_watermark(&self) -> Option<i64> {
        self.inner.state.borrow().replicated_hw
    }

    /// Sets the replication high watermark. `None`: consumers see everything written
    /// (a single replica). `Some(hw)`: consumer reads stop at `min(written, hw)`; `hw`
    /// is clamped to the log end offset (a follower taking the leader's HW may be
    /// behind it) and never lowers a replicated HW already set (a leader's HW only
    /// grows; only `truncate_to` pulls it down). Wakes the waiters it lets through.
    pub fn set_replicated_high_watermark(&self, hw: Option<i64>) {
        let mut st = self.inner.state.borrow_mut();
        st.replicated_hw = hw.map(|hw| {
            let clamped = hw.clamp(st.log_start_offset, st.log_end_offset);
            st.replicated_hw.map_or(clamped, |old| old.max(clamped))
        });
        let visible = st.consumer_high_watermark();
        st.data_waiters.wake_below(visible);
    }

    /// The follower read: as `read`, but up to the written end rather than the high
    /// watermark; `ReadResult::high_watermark` is still the consumer one.
    pub async fn read_replica(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult, StorageError> {
        self.read_upto(offset, max_bytes, super::ReadUpto::Written)
            .await
    }
}
