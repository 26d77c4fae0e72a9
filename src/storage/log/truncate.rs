//! Truncation of the log's end (`truncate_to`): a follower cutting the suffix that
//! diverged from its leader (found with OffsetForLeaderEpoch), or a former leader
//! becoming a follower.
//!
//! ```text
//!  segments:  [s0 ......][s1 ..... | cut ....][s2 ......][s3 active ...]
//!                                  ^ target (a batch boundary)
//!  after:     [s0 ......][s1 .....]  s1 is the active segment again; s2, s3 deleted
//! ```
//!
//! One truncation at a time, and while it runs (`State::truncating`) nothing else
//! touches the segments: appends are refused with `Truncated`, reads stop at the
//! target, the writer is not started, retention deletes no file, the cleaner plans no
//! pass and swaps nothing in, close waits. It
//! first waits for the writer to finish what it was writing, then reads what it needs
//! (the batch boundary, the cut segment's index up to it, the producer state at the
//! cut from the newest snapshot below it plus a replay), and only then changes the disk:
//!
//! 1. delete the later segments, newest first, so a crash leaves a prefix of the old
//!    log (a valid log: the follower truncates again after its restart);
//! 2. truncate the cut segment's file at the boundary and fdatasync it (its tail page
//!    is read back into memory: the next O_DIRECT append rewrites it), write its index
//!    files for the kept batches;
//! 3. delete the producer snapshots past the cut; fsync the directory;
//! 4. under the borrow: segments, offsets, producer state, cache, epochs, waiters;
//! 5. write the leader epoch checkpoint.
//!
//! Recovery after a crash anywhere in 1-5 sees a prefix of the old log at least as long
//! as the cut, and trims the epoch cache and snapshots to whatever end it finds. An I/O
//! error takes the log offline, as everywhere else.
//!
//! Waiters for offsets at or past the cut get `Truncated` (a produce waiting there lost
//! its data with the leadership). The replicated high watermark comes down to the cut.

use super::{PartitionLog, State, StorageError};
use crate::storage::batch::{BatchProblem, BatchWalker, VERIFY_CRC_NEVER};
use crate::storage::index::SegmentIndex;
use crate::storage::io::{self, align_down, LogFile};
use crate::storage::producer_state::ProducerState;
use crate::storage::segment::{Segment, READ_CHUNK_BYTES};
use crate::storage::snapshot;

/// How often a truncation re-checks that the cleaner has finished a swap on disk.
const CLEANER_POLL_MS: u64 = 1;

/// The part of one segment producer replay reads: `[start, end)` of `file`.
struct ReplaySpan {
    file: LogFile,
    start: u64,
    end: u64,
}

/// What the reads before the cut found.
struct Cut {
    /// Index into `State::segments` of the segment cut.
    at: usize,
    base_offset: i64,
    file: LogFile,
    /// Byte position of the first batch at or past the target.
    position: u64,
    index: SegmentIndex,
    tail: Vec<u8>,
    producers: ProducerState,
}

impl PartitionLog {
    /// Removes every batch at or after `offset`; see the module comment. `offset` must
    /// be a batch boundary (else `NotBatchBoundary`, nothing changed) or at least the
    /// log end offset (nothing to do); below the log start offset everything from the
    /// start is removed. On return the cut is durable and `log_end_offset()` is
    /// `max(offset, log_start_offset())`.
    pub async fn truncate_to(&self, offset: i64) -> Result<(), StorageError> {
        let Some(target) = self.begin_truncation(offset).await? else {
            return Ok(());
        };
        let result = self.truncate_claimed(target).await;
        let spawn = {
            let mut st = self.inner.state.borrow_mut();
            st.truncating = None;
            st.read_ahead.invalidate();
            st.idle_waiters.wake_all();
            self.claim_writer(&mut st)
        };
        if spawn {
            self.spawn_writer();
        }
        result
    }

    /// Waits for any other truncation, then claims the log for this one. `None`: the
    /// log already ends at or before the target.
    async fn begin_truncation(&self, offset: i64) -> Result<Option<i64>, StorageError> {
        self.claim_when_free(|st| {
            if offset < 0 {
                return Err(StorageError::OffsetOutOfRange {
                    offset,
                    start: st.log_start_offset,
                    end: st.log_end_offset,
                });
            }
            let target = offset.max(st.log_start_offset);
            if target >= st.log_end_offset {
                return Ok(None);
            }
            st.truncating = Some(target);
            st.read_ahead.invalidate();
            Ok(Some(target))
        })
        .await
    }

    /// Waits until no truncation or restart holds the log, then runs `claim` under the
    /// same borrow of the state (it checks its request against the log as it is then,
    /// and claims the log by setting `truncating`, or declines). `Err` if the log fails.
    pub(super) async fn claim_when_free<T>(
        &self,
        mut claim: impl FnMut(&mut State) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        loop {
            let rx = {
                let mut st = self.inner.state.borrow_mut();
                st.check_usable(&self.inner.dir)?;
                if st.truncating.is_none() {
                    return claim(&mut st);
                }
                st.idle_waiters.register(i64::MAX)
            };
            let _ = rx.await;
        }
    }

    /// The in-memory part of a truncation, once the data past `target` is gone.
    fn truncated_in_memory(st: &mut State, target: i64) {
        st.log_end_offset = target;
        st.durable_wanted = st.durable_wanted.min(target);
        st.cache.drop_from(target);
        st.read_ahead.invalidate();
        st.cleaner.first_dirty = st.cleaner.first_dirty.min(target);
        st.replicated_hw = st.replicated_hw.map(|hw| hw.min(target));
        if st.epochs.truncate_from_end(target) {
            // The caller writes the file (flush_epochs); an epoch writer running now
            // rewrites it anyway, as it loops while dirty.
            st.epoch_file.mark_dirty();
        }
        st.written_waiters.truncate_from(target);
        st.durable_waiters.truncate_from(target);
        st.data_waiters.truncate_from(target);
        let durable = st.durable_offset;
        st.durable_waiters.wake_below(durable);
    }

    /// The truncation proper, with the log claimed (`truncating`).
    async fn truncate_claimed(&self, target: i64) -> Result<(), StorageError> {
        self.wait_quiet().await?;
        let cut = self.read_cut(target).await?;
        let result = self.cut_on_disk(&cut, target).await;
        if let Err(error) = result {
            return Err(self.fail(error));
        }
        let cut_bytes = {
            let mut st = self.inner.state.borrow_mut();
            let config = self.inner.config.borrow();
            let old = &st.segments[cut.at];
            let last_write_ms = old.last_write_ms();
            let cut_bytes: u64 =
                st.segments[cut.at..].iter().map(Segment::size).sum::<u64>() - cut.position;
            let mut segment = Segment::sealed(
                cut.file.clone(),
                cut.base_offset,
                cut.position,
                cut.index.clone(),
                target,
                config.segment_bytes,
            );
            segment.set_tail(cut.tail.clone());
            segment.start_age_clock(crate::util::now_ms());
            if let Some(ms) = last_write_ms {
                segment.learn_last_write_ms(ms);
            }
            drop(config);
            st.segments.truncate(cut.at);
            st.segments.push(segment);
            assert!(
                st.pending.is_empty(),
                "appends are refused while truncating"
            );
            st.written_offset = target;
            // Everything kept is durable: earlier segments since their roll, the cut one
            // since the fdatasync after its truncation.
            st.durable_offset = target;
            st.log_start_offset = st.log_start_offset.min(target);
            st.producers = cut.producers.clone();
            st.written_producers = cut.producers.clone();
            Self::truncated_in_memory(&mut st, target);
            cut_bytes
        };
        self.flush_epochs().await;
        tracing::info!(
            dir = %self.inner.dir.display(),
            log_end_offset = target,
            removed_bytes = cut_bytes,
            "truncated the log's end"
        );
        Ok(())
    }

    /// Waits until the writer has finished its step and no cleaner swap is on disk.
    pub(super) async fn wait_quiet(&self) -> Result<(), StorageError> {
        loop {
            let rx = {
                let mut st = self.inner.state.borrow_mut();
                if let Some(failure) = &st.failure {
                    return Err(failure.to_error());
                }
                if !st.writer_running {
                    break;
                }
                st.idle_waiters.register(i64::MAX)
            };
            let _ = rx.await;
        }
        while self.inner.state.borrow().cleaner.swapping {
            crate::runtime::sleep(std::time::Duration::from_millis(CLEANER_POLL_MS)).await;
        }
        Ok(())
    }

    /// Finds the cut in the segment holding `target`, rebuilds that segment's index up
    /// to it and the producer state at it. Reads only.
    async fn read_cut(&self, target: i64) -> Result<Cut, StorageError> {
        let (at, base_offset, file, size, resumed) = {
            let st = self.inner.state.borrow();
            let at = st
                .segments
                .partition_point(|s| s.base_offset <= target)
                .saturating_sub(1);
            let segment = &st.segments[at];
            let interval = self.inner.config.borrow().index_interval_bytes;
            let resumed = SegmentIndex::resume(
                segment.index.offsets.clone(),
                segment.index.times.clone(),
                interval,
                target - 1,
            )
            .map(|(index, pos, _)| (index, pos as u64))
            .unwrap_or_else(|| (SegmentIndex::new(segment.base_offset, interval), 0));
            let file = segment.file().clone();
            (at, segment.base_offset, file, segment.size(), resumed)
        };
        let (mut index, from) = resumed;
        let position = walk_to(&file, from, size, target, &mut index)
            .await
            .map_err(|e| self.fail_if_io(e))?;
        let tail_pos = align_down(position);
        let tail = if position > tail_pos {
            let bytes = file.read(tail_pos, (position - tail_pos) as usize).await;
            bytes.map_err(|e| self.fail(e))?.to_vec()
        } else {
            Vec::new()
        };
        let producers = self
            .producers_at(at, position, target)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Cut {
            at,
            base_offset,
            file,
            position,
            index,
            tail,
            producers,
        })
    }

    /// An I/O error fails the log; a refusal (`NotBatchBoundary`) leaves it as it is.
    fn fail_if_io(&self, error: StorageError) -> StorageError {
        match error {
            StorageError::Io { .. } => self.fail(error),
            other => other,
        }
    }

    /// The producer state after the batches below `target`: the newest snapshot at or
    /// below it, plus a replay of the batch headers from there to the cut (segment
    /// `at`, byte `position`).
    async fn producers_at(
        &self,
        at: usize,
        position: u64,
        target: i64,
    ) -> Result<ProducerState, StorageError> {
        let dir = &self.inner.dir;
        let offsets = snapshot::snapshot_offsets(&io::list_dir(dir).await?);
        let (from, mut producers) = snapshot::load_newest(dir, &offsets, target)
            .await?
            .unwrap_or((i64::MIN, ProducerState::new()));
        let spans: Vec<ReplaySpan> = {
            let st = self.inner.state.borrow();
            st.segments[..=at]
                .iter()
                .enumerate()
                .filter(|(_, s)| s.next_offset() > from)
                .map(|(i, s)| ReplaySpan {
                    file: s.file().clone(),
                    start: s.index.offsets.lookup(from).1 as u64,
                    end: if i == at { position } else { s.size() },
                })
                .collect()
        };
        for span in spans {
            replay(&span, from, &mut producers).await?;
        }
        Ok(producers)
    }

    /// Steps 1-3 of the module comment.
    async fn cut_on_disk(&self, cut: &Cut, target: i64) -> Result<(), StorageError> {
        let dir = &self.inner.dir;
        let (later, index_path, time_index_path, index, times) = {
            let st = self.inner.state.borrow();
            // Newest first: see step 1 of the module comment.
            let paths: Vec<[std::path::PathBuf; 3]> = st.segments[cut.at + 1..]
                .iter()
                .rev()
                .map(|s| [s.log_path().to_owned(), s.index_path(), s.time_index_path()])
                .collect();
            let segment = &st.segments[cut.at];
            (
                paths,
                segment.index_path(),
                segment.time_index_path(),
                cut.index.offsets.to_bytes(),
                cut.index.times.to_bytes(),
            )
        };
        for paths in &later {
            for path in paths {
                io::remove_file(path).await?;
            }
        }
        if !later.is_empty() {
            io::sync_dir(dir).await?;
        }
        cut.file.truncate(cut.position).await?;
        cut.file.fdatasync().await?;
        io::write_small_file(&index_path, index).await?;
        io::write_small_file(&time_index_path, times).await?;
        let offsets = snapshot::snapshot_offsets(&io::list_dir(dir).await?);
        for &stale in offsets.iter().filter(|&&o| o > target) {
            io::remove_file(&dir.join(snapshot::snapshot_file_name(stale))).await?;
        }
        io::sync_dir(dir).await
    }
}

/// Walks the batches of `file` from byte `pos` (a batch boundary) to `end`, adding each
/// one below `target` to `index`. Returns the position of the first batch at or past
/// `target`, or `end`. A batch holding `target` past its first offset: NotBatchBoundary.
async fn walk_to(
    file: &LogFile,
    mut pos: u64,
    end: u64,
    target: i64,
    index: &mut SegmentIndex,
) -> Result<u64, StorageError> {
    let mut chunk = READ_CHUNK_BYTES;
    while pos < end {
        let want = (chunk as u64).min(end - pos) as usize;
        let buf = file.read(pos, want).await?;
        let mut walker = BatchWalker::new(&buf, VERIFY_CRC_NEVER);
        for (at, header) in walker.by_ref() {
            if header.base_offset >= target {
                return Ok(pos + at as u64);
            }
            if header.last_offset() >= target {
                return Err(StorageError::NotBatchBoundary {
                    offset: target,
                    base_offset: header.base_offset,
                    last_offset: header.last_offset(),
                });
            }
            index.on_batch(&header, (pos + at as u64) as u32);
        }
        let at = walker.valid_len() as u64;
        match walker.stop() {
            None => {}
            Some(&BatchProblem::Incomplete { needed }) if pos + at + needed as u64 <= end => {
                chunk = chunk.max(needed);
            }
            Some(problem) => return Err(invalid_batch(file, pos + at, problem)),
        }
        pos += at;
    }
    Ok(end)
}

/// Records into `producers` the batches of `span` whose base offset is at least `from`.
async fn replay(
    span: &ReplaySpan,
    from: i64,
    producers: &mut ProducerState,
) -> Result<(), StorageError> {
    let mut pos = span.start;
    let mut chunk = READ_CHUNK_BYTES;
    while pos < span.end {
        let want = (chunk as u64).min(span.end - pos) as usize;
        let buf = span.file.read(pos, want).await?;
        let mut walker = BatchWalker::new(&buf, VERIFY_CRC_NEVER);
        for (at, header) in walker.by_ref() {
            if header.base_offset >= from {
                producers.record_batch(&header, header.base_offset, &buf[at..at + header.size()]);
            }
        }
        let at = walker.valid_len() as u64;
        match walker.stop() {
            None => {}
            Some(&BatchProblem::Incomplete { needed }) if pos + at + needed as u64 <= span.end => {
                chunk = chunk.max(needed);
            }
            Some(problem) => return Err(invalid_batch(&span.file, pos + at, problem)),
        }
        pos += at;
    }
    Ok(())
}

fn invalid_batch(file: &LogFile, pos: u64, problem: &BatchProblem) -> StorageError {
    StorageError::io(
        file.path(),
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("invalid batch at byte {pos} of a validated segment: {problem}"),
        ),
    )
}
