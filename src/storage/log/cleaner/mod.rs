//! Log compaction (`cleanup.policy=compact`): keep the latest record per key.
//!
//! ```text
//!  segments:  | clean ........ | dirty ............ | too young | active |
//!             ^ log start      ^ first_dirty         ^ min.compaction.lag.ms bound
//!  pass:      1. offset map: key -> latest offset, from the dirty segments
//!             2. each group of sealed segments up to the map's end is rewritten into
//!                one `<base>.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`)
//!             3. swapped in (below), first_dirty moves to the map's end
//! ```
//!
//! A record stays when it has a key and no later record in the map has that key.
//! Offsets are never rewritten: a kept batch keeps its baseOffset, lastOffsetDelta and
//! producer fields (gaps are fine in v2 batches); a batch with no record left is
//! dropped. Tombstones follow KIP-534: the first pass that keeps one marks its batch
//! with a delete horizon (attribute bit 6, baseTimestamp = now + delete.retention.ms,
//! record timestamp deltas rebased so consumers see the same timestamps); a later pass
//! after the horizon removes it. Control batches are kept as they are.
//!
//! Transactions (Kafka's rules): only segments wholly below the last stable offset are
//! cleaned, so no open transaction's records are judged; batches of aborted
//! transactions are left out of the offset map and dropped, so an aborted value never
//! replaces a committed one. Their markers stay.
//!
//! Swap, crash-safe (recovery completes or discards it, see `recovery::finish_swaps`):
//! 1. write and fsync the `.cleaned` files;
//! 2. under the borrow, check the group's segments are still the log's, and put the new
//!    segment in their place (readers holding an old file handle finish their read);
//! 3. rename `.cleaned` to `.swap`, index files first, the log last; fsync the dir —
//!    the commit point: from here recovery finishes the swap;
//! 4. rename the old segments' files to `.deleted`, the `.swap` files to their final
//!    names, fsync the dir, unlink the `.deleted` files.
//!
//! While a swap is on disk (`swapping`), retention and DeleteRecords move the log start
//! offset but leave segment files alone. The cleaner runs from the shard's maintenance
//! loop, one partition at a time, yields to other tasks after every chunk it reads, and
//! keeps to `log.cleaner.io.max.bytes.per.second`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{PartitionLog, StorageError};
use crate::storage::batch::{BatchHeader, BatchProblem, BatchWalker, VERIFY_CRC_NEVER};
use crate::storage::io::LogFile;
use crate::storage::producer_state::AbortedTxn;
use crate::storage::records;

/// Bytes the cleaner buffers before handing them to the file.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// Bytes the cleaner reads (and then works through without yielding) at a time.
const READ_CHUNK_BYTES: usize = 256 << 10;

/// Bounds on one cleaning pass (broker settings).
#[derive(Debug, Clone, Copy)]
pub struct CleanLimits {
    /// `log.cleaner.io.max.bytes.per.second` (read + written); 0: unlimited.
    pub io_bytes_per_second: u64,
    /// Key bytes the offset map may hold (`log.cleaner.dedupe.buffer.size`); the map
    /// stops at the first segment boundary past it (at least one segment is mapped).
    pub map_bytes_max: usize,
    /// Dirty bytes one pass maps at most; the rest waits for the next pass.
    pub pass_dirty_bytes_max: u64,
}

impl Default for CleanLimits {
    fn default() -> Self {
        CleanLimits {
            io_bytes_per_second: 0,
            map_bytes_max: 128 << 20,
            pass_dirty_bytes_max: 1 << 30,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// The first dirty offset the pass started from: the checkpoint it resumed at
    /// (clamped to the log). A restart that lost its checkpoint shows here as 0.
    pub dirty_from: i64,
    /// The new first dirty offset (the cleaner checkpoint).
    pub cleaned_to: i64,
    /// Keyed records the offset map read (from batches that end at or past
    /// `dirty_from`): 0 when the pass found nothing dirty, as one that only looks for
    /// expired tombstones.
    pub mapped_records: u64,
    /// Bytes of the segments rewritten (the log cleaned).
    pub cleaned_bytes: u64,
    /// Bytes read: the dirty segments twice (offset map, then rewrite), the rest once.
    pub read_bytes: u64,
    pub written_bytes: u64,
    pub segments_in: usize,
    pub segments_out: usize,
    pub records_removed: u64,
    /// Wall time of the pass, throttling and yields included.
    pub elapsed_ms: u64,
}

/// The cleaner's memory of one log.
#[derive(Debug, Default)]
pub(super) struct CleanerState {
    /// Offsets below were cleaned (the `cleaner-offset-checkpoint` entry).
    pub first_dirty: i64,
    /// A swap is on disk: segment files must not be deleted by anyone else.
    pub swapping: bool,
    /// The earliest delete horizon the last pass left: a pass is due then even with
    /// no new dirty data, so expired tombstones go.
    pub horizon_due_ms: Option<i64>,
}

/// A sealed segment as the cleaner sees it, cloned out of the borrow.
#[derive(Clone)]
struct Source {
    base: i64,
    file: LogFile,
    size: u64,
    next_offset: i64,
    max_timestamp: Option<i64>,
    last_write_ms: Option<i64>,
}

struct Plan {
    sources: Vec<Source>,
    /// Index in `sources` of the first dirty segment.
    dirty_from: usize,
    first_dirty: i64,
    segment_bytes: u64,
    index_interval_bytes: u32,
    delete_retention_ms: i64,
    inflated_max: usize,
    /// The partition's aborted transactions when the pass was planned.
    aborted: Vec<AbortedTxn>,
}

impl Plan {
    /// Whether `header` is a batch of an aborted transaction.
    fn is_aborted(&self, header: &BatchHeader) -> bool {
        header.is_transactional()
            && !header.is_control()
            && self.aborted.iter().any(|a| {
                a.producer_id == header.producer_id
                    && (a.first_offset..=a.last_offset).contains(&header.base_offset)
            })
    }
}

/// Reads a segment's batches a chunk at a time.
struct SegmentReader {
    file: LogFile,
    pos: u64,
    end: u64,
}

impl SegmentReader {
    fn new(source: &Source) -> SegmentReader {
        SegmentReader {
            file: source.file.clone(),
            pos: 0,
            end: source.size,
        }
    }

    /// The next whole batches, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Vec<(BatchHeader, Bytes)>>, StorageError> {
        let mut chunk = READ_CHUNK_BYTES;
        while self.pos < self.end {
            let want = (chunk as u64).min(self.end - self.pos) as usize;
            let buf = self.file.read(self.pos, want).await?;
            let mut walker = BatchWalker::new(&buf, VERIFY_CRC_NEVER);
            let batches: Vec<(BatchHeader, Bytes)> = walker
                .by_ref()
                .map(|(at, h)| (h, buf.slice(at..at + h.size())))
                .collect();
            let at = walker.valid_len() as u64;
            match walker.stop() {
                None => {}
                Some(&BatchProblem::Incomplete { needed }) if batches.is_empty() => {
                    if self.pos + needed as u64 > self.end {
                        return Err(self.corrupt("a batch runs past the segment end"));
                    }
                    chunk = needed;
                    continue;
                }
                Some(BatchProblem::Incomplete { .. }) => {}
                Some(problem) => return Err(self.corrupt(&problem.to_string())),
            }
            self.pos += at;
            return Ok(Some(batches));
        }
        Ok(None)
    }

    fn corrupt(&self, why: &str) -> StorageError {
        StorageError::io(
            self.file.path(),
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("cleaner found an invalid batch at byte {}: {why}", self.pos),
            ),
        )
    }
}

/// Keeps the cleaner's I/O under `log.cleaner.io.max.bytes.per.second` and lets the
/// shard's other tasks run between chunks.
struct Throttle {
    rate: u64,
    start: Instant,
    bytes: u64,
}

impl Throttle {
    async fn account(&mut self, bytes: u64) {
        self.bytes += bytes;
        if self.rate > 0 {
            let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
            if let Some(wait) = due.checked_sub(self.start.elapsed()) {
                crate::runtime::sleep(wait).await;
            }
        }
        // Unconditionally: a chunk is a few hundred microseconds of CPU, and glommio's
        // own preemption point (yield_if_needed) comes only every 100 ms, which is
        // what a producer on this shard would then wait.
        glommio::executor().yield_now().await;
    }
}

/// Key -> offset of its latest record in the mapped range.
struct OffsetMap {
    latest: HashMap<Bytes, i64>,
    key_bytes: usize,
}

impl OffsetMap {
    fn insert(&mut self, key: &[u8], offset: i64) {
        if let Some(latest) = self.latest.get_mut(key) {
            *latest = offset;
        } else {
            self.key_bytes += key.len();
            self.latest.insert(Bytes::copy_from_slice(key), offset);
        }
    }
}

impl PartitionLog {
    /// The cleaner checkpoint: offsets below were cleaned.
    pub fn cleaner_checkpoint(&self) -> i64 {
        self.inner.state.borrow().cleaner.first_dirty
    }

    /// Restores the cleaner checkpoint read at start-up. Whether the clean part holds
    /// tombstones, and their delete horizons, is not persisted: one pass
    /// `delete.retention.ms` from now looks for expired ones (it rewrites only the
    /// segments where it removes something).
    pub fn set_cleaner_checkpoint(&self, offset: i64) {
        let delete_retention_ms = self.inner.config.borrow().delete_retention_ms;
        let mut st = self.inner.state.borrow_mut();
        st.cleaner.first_dirty = offset;
        st.cleaner.horizon_due_ms = Some(crate::util::now_ms().saturating_add(delete_retention_ms));
    }

    /// Cleans the log if it is compacted and due (dirty ratio, max.compaction.lag.ms,
    /// or a delete horizon passed). `None` when there was nothing to do.
    pub async fn clean(
        &self,
        now_ms: i64,
        limits: &CleanLimits,
    ) -> Result<Option<Cleaned>, StorageError> {
        let Some(plan) = self.plan_clean(now_ms)? else {
            return Ok(None);
        };
        let mut throttle = Throttle {
            rate: limits.io_bytes_per_second,
            start: Instant::now(),
            bytes: 0,
        };
        let mut cleaned = Cleaned {
            dirty_from: plan.first_dirty,
            ..Cleaned::default()
        };
        let (map, mapped) = build_map(&plan, limits, &mut throttle, &mut cleaned)
            .await
            .map_err(|e| self.fail(e))?;
        let map_end = plan.sources[mapped - 1].next_offset;
        let mut horizon_due: Option<i64> = None;
        for group in group_sources(&plan.sources[..mapped], plan.segment_bytes) {
            let job = GroupJob {
                plan: &plan,
                map: &map,
                now_ms,
            };
            let outcome = self
                .clean_group(&job, group, &mut throttle, &mut cleaned)
                .await;
            match outcome {
                Ok(Some(due)) => horizon_due = min_opt(horizon_due, due),
                Ok(None) => return Ok(None),
                Err(error) => return Err(self.fail(error)),
            }
        }
        let mut st = self.inner.state.borrow_mut();
        st.cleaner.first_dirty = st.cleaner.first_dirty.max(map_end);
        st.cleaner.horizon_due_ms = horizon_due;
        cleaned.cleaned_to = st.cleaner.first_dirty;
        cleaned.elapsed_ms = throttle.start.elapsed().as_millis() as u64;
        Ok(Some(cleaned))
    }

    /// Decides under the borrow whether the log is due, and what to clean.
    fn plan_clean(&self, now_ms: i64) -> Result<Option<Plan>, StorageError> {
        let config = self.config();
        if !config.cleanup_compact {
            return Ok(None);
        }
        let st = self.inner.state.borrow();
        st.check_usable(&self.inner.dir)?;
        if st.truncating.is_some() {
            // The segments are being cut: the next maintenance tick plans again.
            return Ok(None);
        }
        let young_after = now_ms.saturating_sub(config.min_compaction_lag_ms);
        let stable = st.last_stable_offset();
        let sources: Vec<Source> = st.segments[..st.segments.len() - 1]
            .iter()
            .take_while(|s| s.index.max_timestamp().is_none_or(|t| t <= young_after))
            .take_while(|s| s.next_offset() <= stable)
            .map(|s| Source {
                base: s.base_offset,
                file: s.file().clone(),
                size: s.size(),
                next_offset: s.next_offset(),
                max_timestamp: s.index.max_timestamp(),
                last_write_ms: s.last_write_ms(),
            })
            .collect();
        let first_dirty = st
            .cleaner
            .first_dirty
            .clamp(st.log_start_offset, st.log_end_offset);
        let dirty_from = sources.partition_point(|s| s.next_offset <= first_dirty);
        let clean_bytes: u64 = sources[..dirty_from].iter().map(|s| s.size).sum();
        let dirty_bytes: u64 = sources[dirty_from..].iter().map(|s| s.size).sum();
        let ratio = dirty_bytes as f64 / (clean_bytes + dirty_bytes).max(1) as f64;
        let overdue = sources.get(dirty_from).is_some_and(|s| {
            s.max_timestamp
                .is_some_and(|t| now_ms.saturating_sub(t) > config.max_compaction_lag_ms)
        });
        let horizon_passed = st.cleaner.horizon_due_ms.is_some_and(|t| t <= now_ms);
        let due = (dirty_bytes > 0 && (ratio >= config.min_cleanable_dirty_ratio || overdue))
            || (horizon_passed && !sources.is_empty());
        if !due {
            return Ok(None);
        }
        Ok(Some(Plan {
            dirty_from: dirty_from.min(sources.len() - 1),
            sources,
            first_dirty,
            segment_bytes: config.segment_bytes,
            index_interval_bytes: config.index_interval_bytes,
            delete_retention_ms: config.delete_retention_ms,
            inflated_max: records::inflated_bytes_max(config.max_message_bytes),
            aborted: st.producers.aborted().to_vec(),
        }))
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Maps the dirty segments' keys to their latest offsets. Returns the map and how many
/// of `plan.sources` it covers (from the start: the clean ones, then the mapped dirty).
async fn build_map(
    plan: &Plan,
    limits: &CleanLimits,
    throttle: &mut Throttle,
    cleaned: &mut Cleaned,
) -> Result<(OffsetMap, usize), StorageError> {
    let mut map = OffsetMap {
        latest: HashMap::new(),
        key_bytes: 0,
    };
    let mut mapped = plan.dirty_from;
    let mut dirty_bytes = 0u64;
    for source in &plan.sources[plan.dirty_from..] {
        let full =
            map.key_bytes >= limits.map_bytes_max || dirty_bytes >= limits.pass_dirty_bytes_max;
        if mapped > plan.dirty_from && full {
            break;
        }
        let mut reader = SegmentReader::new(source);
        while let Some(batches) = reader.next_chunk().await? {
            let mut bytes = 0;
            for (header, data) in &batches {
                bytes += data.len() as u64;
                if header.is_control()
                    || header.last_offset() < plan.first_dirty
                    || plan.is_aborted(header)
                {
                    continue;
                }
                let Ok(raw) = records::records_section(data, plan.inflated_max) else {
                    continue;
                };
                let Ok(views) = records::parse_records(&raw, header.records_count) else {
                    continue;
                };
                for r in views {
                    if let Some(key) = r.key {
                        map.insert(key, header.base_offset + r.offset_delta as i64);
                        cleaned.mapped_records += 1;
                    }
                }
            }
            cleaned.read_bytes += bytes;
            throttle.account(bytes).await;
        }
        dirty_bytes += source.size;
        mapped += 1;
    }
    Ok((map, mapped.max(1)))
}

/// Consecutive segments whose total size fits one segment and whose offsets fit the
/// index's relative form, as Kafka groups them.
fn group_sources(sources: &[Source], segment_bytes: u64) -> Vec<Vec<Source>> {
    let mut groups: Vec<Vec<Source>> = Vec::new();
    let mut size = 0u64;
    for source in sources {
        let fits = groups.last().is_some_and(|g| {
            size + source.size <= segment_bytes && source.next_offset - g[0].base <= i32::MAX as i64
        });
        if fits {
            size += source.size;
            groups.last_mut().expect("checked").push(source.clone());
        } else {
            size = source.size;
            groups.push(vec![source.clone()]);
        }
    }
    groups
}

/// Test-only crash points between the swap's steps: the cleaner returns an error
/// there, as if the process died, and the test reopens the directory.
pub(crate) mod faults {
    use crate::storage::StorageError;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Step {
        Written,
        Committed,
        OldRenamed,
        Swapped,
    }

    #[cfg(test)]
    thread_local! {
        static CRASH_AT: std::cell::Cell<Option<Step>> = const { std::cell::Cell::new(None) };
    }

    #[cfg(test)]
    pub fn crash_at(step: Option<Step>) {
        CRASH_AT.with(|c| c.set(step));
    }

    #[cfg(test)]
    pub fn maybe_crash(step: Step) -> Result<(), StorageError> {
        if CRASH_AT.with(|c| c.get()) == Some(step) {
            CRASH_AT.with(|c| c.set(None));
            return Err(StorageError::io(
                std::path::Path::new("cleaner"),
                std::io::Error::other(format!("simulated crash after {step:?}")),
            ));
        }
        Ok(())
    }

    #[cfg(not(test))]
    #[inline]
    pub fn maybe_crash(_step: Step) -> Result<(), StorageError> {
        Ok(())
    }
}

mod rewrite;
use rewrite::GroupJob;

#[cfg(test)]
mod tests;
