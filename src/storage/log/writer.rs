//! The log's writer task: one per log while there is work, it turns pending batches
//! into group-committed O_DIRECT writes, fdatasyncs for acks=all, and rolls segments.

use std::time::{Duration, Instant};

use super::*;

/// Bytes a follower's pending batches reach before it writes them at once.
const FOLLOWER_WRITE_BYTES: u64 = 256 << 10;
/// How long a follower's first pending batch may wait for others before the write.
/// At RF=3 and 5,000 records/s on one machine, 5 ms cut a broker's DMA writes by ~30 %
/// and the acks=all p50 by ~13 % (HARDWARE.md, "Followers' writes"); nothing waits on
/// a follower's write but its own consumers' reads.
const FOLLOWER_WRITE_HOLD: Duration = Duration::from_millis(5);

/// How long a follower's writer waits before writing what is pending, when less than
/// `FOLLOWER_WRITE_BYTES` is: `None` to write now.
fn follower_hold(st: &State) -> Option<Duration> {
    if !st.follower || st.closed || st.roll_requested || st.truncating.is_some() {
        return None;
    }
    let since = st.pending_since?;
    let bytes: u64 = st.pending.iter().map(|b| b.data.len() as u64).sum();
    if bytes >= FOLLOWER_WRITE_BYTES {
        return None;
    }
    FOLLOWER_WRITE_HOLD
        .checked_sub(since.elapsed())
        .filter(|w| !w.is_zero())
}

impl PartitionLog {
    /// Marks the writer as running if there is work and none is running; the caller
    /// then releases its borrow and calls [`Self::spawn_writer`] (glommio runs a new
    /// task right away, which would find the state still borrowed).
    pub(super) fn claim_writer(&self, st: &mut State) -> bool {
        let work = !st.pending.is_empty()
            || st.roll_requested
            || (st.durable_wanted > st.durable_offset && st.written_offset > st.durable_offset);
        // A truncation cuts the segments with the writer stopped, and restarts it.
        if work && !st.writer_running && st.failure.is_none() && st.truncating.is_none() {
            st.writer_running = true;
            return true;
        }
        false
    }

    pub(super) fn spawn_writer(&self) {
        let log = self.clone();
        glommio::spawn_local(async move { log.writer_loop().await }).detach();
    }

    async fn writer_loop(&self) {
        loop {
            let step = self.next_step();
            let result = match step {
                Step::Idle => return,
                Step::Roll => self.roll().await,
                Step::Write(plan) => self.write(plan).await,
                Step::Sync(file, upto) => self.sync(file, upto).await,
                Step::Zero(plan) => self.zero(plan).await,
                Step::Hold(wait) => {
                    crate::runtime::sleep(wait).await;
                    Ok(())
                }
            };
            if let Err(error) = result {
                self.fail(error);
                return;
            }
        }
    }

    /// Decides the writer's next step. Durability first when a waiter wants only
    /// written data durable; otherwise write, then sync what that wrote.
    fn next_step(&self) -> Step {
        let mut st = self.inner.state.borrow_mut();
        let want_sync = st.durable_wanted > st.durable_offset
            && st.written_offset > st.durable_offset
            && (st.durable_wanted <= st.written_offset || st.pending.is_empty());
        if st.roll_requested && st.pending.is_empty() && !want_sync && st.failure.is_none() {
            if st.active().size() > 0 {
                return Step::Roll;
            }
            st.roll_requested = false;
        }
        let quiet = st.pending.is_empty() && !want_sync && st.truncating.is_none();
        if quiet && !st.closed && st.failure.is_none() && !st.follower {
            let ahead_bytes = self.inner.config.borrow().zero_ahead_bytes;
            if let Some(plan) = st.active().plan_zero(ahead_bytes) {
                return Step::Zero(plan);
            }
        }
        if st.failure.is_some() || (st.pending.is_empty() && !want_sync) {
            st.writer_running = false;
            st.idle_waiters.wake_all();
            return Step::Idle;
        }
        if want_sync {
            return Step::Sync(st.active().file().clone(), st.written_offset);
        }
        if let Some(wait) = follower_hold(&st) {
            return Step::Hold(wait);
        }
        let front = &st.pending.front().expect("pending is not empty").header;
        let config = self.inner.config.borrow();
        if st.active().must_roll_for(0, front) || roll_due(st.active(), &config) {
            return Step::Roll;
        }
        drop(config);
        let mut batches = Vec::new();
        let mut bytes = 0u64;
        while let Some(next) = st.pending.front() {
            let fits = bytes == 0 || bytes + next.data.len() as u64 <= WRITE_BYTES_MAX as u64;
            if !fits || st.active().must_roll_for(bytes, &next.header) {
                break;
            }
            bytes += next.data.len() as u64;
            batches.push(st.pending.pop_front().expect("front exists"));
        }
        st.pending_since = (!st.pending.is_empty()).then(Instant::now);
        Step::Write(st.active().plan_write(batches))
    }

    async fn write(&self, plan: WritePlan) -> Result<(), StorageError> {
        if let Some(size) = plan.allocate_to {
            plan.file.pre_allocate(size).await?;
        }
        let mut tail = Vec::new();
        let started = metrics::now();
        plan.file
            .write_aligned(plan.pos, plan.len, |buf| tail = plan.fill(buf))
            .await?;
        metrics::record_since(Stage::StorageWrite, started);
        let mut st = self.inner.state.borrow_mut();
        st.active_mut().apply_write(&plan, tail);
        if let Some(share) = &self.inner.config.borrow().cache_share {
            st.cache.set_bytes_max(share.get());
        }
        for batch in &plan.batches {
            let header = &batch.header;
            st.written_producers
                .record_batch(header, header.base_offset, &batch.data);
            st.cache
                .push(header.base_offset, header.last_offset(), batch.data.clone());
        }
        let written = plan
            .batches
            .last()
            .expect("a write has batches")
            .header
            .last_offset()
            + 1;
        assert!(written > st.written_offset, "the high watermark only grows");
        st.written_offset = written;
        let flush_messages = self.inner.config.borrow().flush_messages;
        if written - st.durable_offset >= flush_messages {
            // flush.messages: make this much durable without an acks=all waiter.
            st.durable_wanted = st.durable_wanted.max(written);
            st.durability_asked = true;
        }
        st.stats.writes += 1;
        let bytes = plan.new_size - (plan.pos + plan.tail_len() as u64);
        st.stats.write_bytes += bytes;
        metrics::add(Counter::Writes, 1);
        metrics::record_size(Size::WriteBatches, plan.batches.len() as u64);
        metrics::record_size(Size::WriteBytes, bytes);
        st.written_waiters.wake_below(written);
        let visible = st.consumer_high_watermark();
        st.data_waiters.wake_below(visible);
        Ok(())
    }

    async fn sync(&self, file: io::LogFile, upto: i64) -> Result<(), StorageError> {
        let started = metrics::now();
        file.fdatasync().await?;
        metrics::record_since(Stage::StorageFdatasync, started);
        metrics::add(Counter::Fdatasyncs, 1);
        let mut st = self.inner.state.borrow_mut();
        st.durable_offset = st.durable_offset.max(upto);
        st.stats.fdatasyncs += 1;
        let durable = st.durable_offset;
        st.durable_waiters.wake_below(durable);
        Ok(())
    }

    /// Writes one chunk of zeros ahead of the data and, on a log some request asked
    /// durability of, fdatasyncs it, so that the conversion of its extents from
    /// unwritten to written is journaled here rather than in the fdatasync of an
    /// acks=all request. Only runs when nothing is pending; an append arriving
    /// meanwhile waits for this one chunk.
    ///
    /// An acks=1 log skips the fdatasync: nothing it answers waits for one, and at
    /// 100 MB/s that was one fdatasync per MiB (an io-wq worker's wake-ups, the inode
    /// and extent writes, a device flush), the largest share of a tail consumer's
    /// broker CPU. The zeros still make its appends overwrites. Crash safety is the
    /// same as for acks=1 data: past the last fdatasync nothing is promised, and
    /// recovery ends the data at the first zero length or invalid batch.
    async fn zero(&self, plan: ZeroPlan) -> Result<(), StorageError> {
        if let Some(size) = plan.allocate_to {
            plan.file.pre_allocate(size).await?;
        }
        plan.file
            .write_aligned(plan.pos, plan.len, |buf| buf.fill(0))
            .await?;
        let sync = self.inner.state.borrow().durability_asked;
        if sync {
            plan.file.fdatasync().await?;
            metrics::add(Counter::ZeroFillFdatasyncs, 1);
        }
        metrics::add(Counter::ZeroFillBytes, plan.len as u64);
        let mut st = self.inner.state.borrow_mut();
        st.active_mut().apply_zero(&plan);
        st.stats.zero_bytes += plan.len as u64;
        st.stats.zero_fdatasyncs += u64::from(sync);
        Ok(())
    }

    /// Finishes the active segment (truncate, fdatasync, index files) and starts a new
    /// one at the first pending offset (or the log end, for a roll retention asked for).
    async fn roll(&self) -> Result<(), StorageError> {
        let (finish, finished_end, next_base) = {
            let st = self.inner.state.borrow();
            let next_base = st
                .pending
                .front()
                .map_or(st.log_end_offset, |front| front.header.base_offset);
            (
                st.active().finish_plan(),
                st.active().next_offset(),
                next_base,
            )
        };
        finish.run().await?;
        self.write_snapshot(next_base).await;
        let config = self.config();
        let segment = Segment::create(
            &self.inner.dir,
            next_base,
            config.index_interval_bytes,
            config.segment_bytes,
        )
        .await?;
        let mut st = self.inner.state.borrow_mut();
        assert!(
            next_base >= finished_end,
            "a new segment starts after the old one"
        );
        st.segments.push(segment);
        st.roll_requested = false;
        st.stats.rolls += 1;
        st.durable_offset = st.durable_offset.max(finished_end);
        let durable = st.durable_offset;
        st.durable_waiters.wake_below(durable);
        Ok(())
    }

    /// Writes the producer snapshot valid at `offset`, which must be the written end
    /// (roll: the new segment's base; close: the log end). A failure is only logged: a
    /// missing snapshot makes the next open replay more of the log, nothing worse.
    pub(super) async fn write_snapshot(&self, offset: i64) {
        let encoded = {
            let st = self.inner.state.borrow();
            assert_eq!(
                st.written_offset, offset,
                "a snapshot is taken at the written end"
            );
            snapshot::encode(offset, &st.written_producers)
        };
        if let Err(error) = snapshot::write(&self.inner.dir, offset, encoded).await {
            tracing::warn!(
                dir = %self.inner.dir.display(),
                offset,
                %error,
                "could not write the producer snapshot; the next open replays more of the log"
            );
        }
    }
}
