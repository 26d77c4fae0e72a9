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
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{PartitionLog, StorageError};
use crate::storage::batch::{BatchHeader, BatchProblem, BatchWalker, VERIFY_CRC_NEVER};
use crate::storage::index::SegmentIndex;
use crate::storage::io::{self, LogFile};
use crate::storage::producer_state::AbortedTxn;
use crate::storage::records::{self, Filtered};
use crate::storage::segment::{file_name, Segment};

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

struct GroupJob<'a> {
    plan: &'a Plan,
    map: &'a OffsetMap,
    now_ms: i64,
}

/// The cleaned form of one batch: what to write, and the delete horizon it carries if
/// it keeps a tombstone.
fn clean_batch(
    job: &GroupJob<'_>,
    header: &BatchHeader,
    data: &Bytes,
    removed: &mut u64,
) -> Result<(Option<Bytes>, Option<i64>), StorageError> {
    if header.is_control() {
        return Ok((Some(data.clone()), None));
    }
    if job.plan.is_aborted(header) {
        *removed += header.records_count.max(0) as u64;
        return Ok((None, None));
    }
    let parsed = records::records_section(data, job.plan.inflated_max).and_then(|raw| {
        let views = records::parse_records(&raw, header.records_count)?;
        let has_horizon = records::has_delete_horizon(header);
        let mut keep = Vec::with_capacity(views.len());
        let mut tombstones = false;
        for r in &views {
            let offset = header.base_offset + r.offset_delta as i64;
            let latest = r.key.is_some_and(|key| {
                job.map
                    .latest
                    .get(key)
                    .is_none_or(|&latest| offset >= latest)
            });
            let expired = has_horizon && header.base_timestamp <= job.now_ms;
            let kept = latest && !(r.is_tombstone && expired);
            tombstones |= kept && r.is_tombstone;
            keep.push(kept);
        }
        *removed += keep.iter().filter(|k| !**k).count() as u64;
        let set_horizon = (tombstones && !has_horizon)
            .then(|| job.now_ms.saturating_add(job.plan.delete_retention_ms));
        let horizon = tombstones.then(|| set_horizon.unwrap_or(header.base_timestamp));
        let filtered = records::filter_batch(data, &views, &keep, set_horizon)?;
        Ok((filtered, horizon))
    });
    match parsed {
        Ok((Filtered::Unchanged, horizon)) => Ok((Some(data.clone()), horizon)),
        Ok((Filtered::Empty, _)) => Ok((None, None)),
        Ok((Filtered::Rebuilt(out), horizon)) => Ok((Some(Bytes::from(out)), horizon)),
        Err(error) => {
            // A batch the cleaner cannot read (e.g. it inflates past the bound) is kept
            // whole rather than failing the log: it was accepted once.
            tracing::warn!(offset = header.base_offset, %error, "cleaner keeps a batch it cannot read");
            Ok((Some(data.clone()), None))
        }
    }
}

/// The files one group is written to.
struct CleanedFiles {
    log: PathBuf,
    index: PathBuf,
    time_index: PathBuf,
}

impl CleanedFiles {
    fn new(dir: &Path, base: i64) -> CleanedFiles {
        let named = |ext: &str| dir.join(format!("{}.cleaned", file_name(base, ext)));
        CleanedFiles {
            log: named("log"),
            index: named("index"),
            time_index: named("timeindex"),
        }
    }

    async fn remove(&self) -> Result<(), StorageError> {
        for path in [&self.log, &self.index, &self.time_index] {
            io::remove_file(path).await?;
        }
        Ok(())
    }
}

/// The new segment of one group, written and fsynced, not yet swapped in.
struct Written {
    /// Some batch was rewritten or dropped.
    changed: bool,
    size: u64,
    index: SegmentIndex,
    horizon_due: Option<i64>,
}

impl PartitionLog {
    /// Rewrites one group into a cleaned segment and swaps it in. `Ok(None)`: the log
    /// changed under the cleaner (retention, DeleteRecords); the pass is abandoned.
    async fn clean_group(
        &self,
        job: &GroupJob<'_>,
        group: Vec<Source>,
        throttle: &mut Throttle,
        cleaned: &mut Cleaned,
    ) -> Result<Option<Option<i64>>, StorageError> {
        let base = group[0].base;
        let files = CleanedFiles::new(&self.inner.dir, base);
        files.remove().await?;
        let written = write_group(job, &group, &files, throttle, cleaned).await?;
        if !written.changed && group.len() == 1 {
            // The same bytes again (an already clean segment): nothing to swap.
            files.remove().await?;
            return Ok(Some(written.horizon_due));
        }
        cleaned.segments_in += group.len();
        cleaned.cleaned_bytes += group.iter().map(|s| s.size).sum::<u64>();
        cleaned.segments_out += 1;
        cleaned.written_bytes += written.size;
        let file = LogFile::open(&files.log, false).await?;
        let file = file.renamed(&self.inner.dir.join(file_name(base, "log")));
        let segment_bytes = self.config().segment_bytes;
        let next_offset = group.last().expect("a group has segments").next_offset;
        let mut new = Segment::sealed(
            file,
            base,
            written.size,
            written.index,
            next_offset,
            segment_bytes,
        );
        // Time retention's floor stays the originals' last append, not the rewrite.
        if let Some(last) = group.iter().filter_map(|s| s.last_write_ms).max() {
            new.learn_last_write_ms(last);
        }
        if !self.swap_in_memory(&group, new) {
            files.remove().await?;
            return Ok(None);
        }
        let result = self.swap_on_disk(&group, &files).await;
        self.inner.state.borrow_mut().cleaner.swapping = false;
        result?;
        Ok(Some(written.horizon_due))
    }

    /// Step 2 of the swap: replaces the group's segments by `new` if they are still
    /// the log's, and drops cached batches of the rewritten range.
    fn swap_in_memory(&self, group: &[Source], new: Segment) -> bool {
        let mut st = self.inner.state.borrow_mut();
        if st.failure.is_some() || st.closed || st.cleaner.swapping || st.truncating.is_some() {
            return false;
        }
        let Some(at) = st
            .segments
            .iter()
            .position(|s| s.base_offset == group[0].base)
        else {
            return false;
        };
        let sealed = st.segments.len() - 1;
        let same = at + group.len() <= sealed
            && st.segments[at..at + group.len()]
                .iter()
                .zip(group)
                .all(|(s, g)| s.base_offset == g.base && s.size() == g.size);
        if !same {
            return false;
        }
        st.segments.splice(at..at + group.len(), [new]);
        super::readahead::forget_gone_files(&mut st);
        let end = group.last().expect("a group has segments").next_offset;
        st.cache.drop_below(end);
        st.cleaner.swapping = true;
        true
    }

    /// Steps 3 and 4 of the swap (see the module comment).
    async fn swap_on_disk(
        &self,
        group: &[Source],
        files: &CleanedFiles,
    ) -> Result<(), StorageError> {
        let dir = &self.inner.dir;
        let base = group[0].base;
        let swap = |ext: &str| dir.join(format!("{}.swap", file_name(base, ext)));
        for (from, ext) in [
            (&files.index, "index"),
            (&files.time_index, "timeindex"),
            (&files.log, "log"),
        ] {
            io::rename(from, &swap(ext)).await?;
        }
        io::sync_dir(dir).await?;
        faults::maybe_crash(faults::Step::Committed)?;
        for source in group {
            for ext in ["log", "index", "timeindex"] {
                let path = dir.join(file_name(source.base, ext));
                let deleted = dir.join(format!("{}.deleted", file_name(source.base, ext)));
                match io::rename(&path, &deleted).await {
                    Err(StorageError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    other => other?,
                }
            }
            faults::maybe_crash(faults::Step::OldRenamed)?;
        }
        for ext in ["index", "timeindex", "log"] {
            io::rename(&swap(ext), &dir.join(file_name(base, ext))).await?;
        }
        io::sync_dir(dir).await?;
        faults::maybe_crash(faults::Step::Swapped)?;
        for source in group {
            for ext in ["log", "index", "timeindex"] {
                io::remove_file(&dir.join(format!("{}.deleted", file_name(source.base, ext))))
                    .await?;
            }
        }
        Ok(())
    }
}

/// Step 1 of the swap: writes the group's kept batches and its index files.
async fn write_group(
    job: &GroupJob<'_>,
    group: &[Source],
    files: &CleanedFiles,
    throttle: &mut Throttle,
    cleaned: &mut Cleaned,
) -> Result<Written, StorageError> {
    let mut index = SegmentIndex::new(group[0].base, job.plan.index_interval_bytes);
    let mut size = 0u64;
    let mut horizon_due = None;
    let mut changed = false;
    let mut buffer: Vec<u8> = Vec::with_capacity(WRITE_BUFFER_BYTES);
    for source in group {
        let mut reader = SegmentReader::new(source);
        while let Some(batches) = reader.next_chunk().await? {
            let mut read = 0u64;
            let mut written = 0u64;
            for (header, data) in &batches {
                read += data.len() as u64;
                let (out, horizon) = clean_batch(job, header, data, &mut cleaned.records_removed)?;
                changed |= out.as_ref() != Some(data);
                horizon_due = min_opt(horizon_due, horizon);
                let Some(out) = out else { continue };
                let out_header = BatchHeader::parse(&out).expect("a whole batch");
                index.on_batch(&out_header, size as u32);
                size += out.len() as u64;
                buffer.extend_from_slice(&out);
            }
            if buffer.len() >= WRITE_BUFFER_BYTES {
                written += buffer.len() as u64;
                io::append_file(&files.log, std::mem::take(&mut buffer)).await?;
            }
            cleaned.read_bytes += read;
            throttle.account(read + written).await;
        }
    }
    io::append_file(&files.log, buffer).await?;
    io::sync_file(&files.log).await?;
    faults::maybe_crash(faults::Step::Written)?;
    io::append_file(&files.index, index.offsets.to_bytes()).await?;
    io::sync_file(&files.index).await?;
    io::append_file(&files.time_index, index.finished_times().to_bytes()).await?;
    io::sync_file(&files.time_index).await?;
    Ok(Written {
        changed,
        size,
        index,
        horizon_due,
    })
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

#[cfg(test)]
mod tests {
    use super::faults::{crash_at, Step};
    use super::*;
    use crate::storage::batch::BatchHeader;
    use crate::storage::log::LogConfig;
    use crate::storage::testutil::run;
    use bytes::BytesMut;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    type Entry = (Option<String>, Option<String>);

    fn compact_config() -> LogConfig {
        LogConfig {
            segment_bytes: 1500,
            index_interval_bytes: 256,
            cache_bytes_max: 1 << 20,
            cleanup_compact: true,
            cleanup_delete: false,
            min_cleanable_dirty_ratio: 0.01,
            delete_retention_ms: 1000,
            ..LogConfig::default()
        }
    }

    fn keyed(entries: &[Entry], compression: Compression) -> BytesMut {
        let records: Vec<Record> = entries
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: 1_700_000_000_000 + i as i64,
                key: k.as_ref().map(|k| Bytes::from(k.clone())),
                value: v.as_ref().map(|v| Bytes::from(v.clone())),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf
    }

    fn entry(key: &str, value: Option<String>) -> Entry {
        (Some(key.to_string()), value)
    }

    /// Appends `rounds` updates of keys k0..k9 (batches of 1-3 records, every codec),
    /// k3 and k7 only deleted in the last quarter; returns (offset, key, value) of
    /// every record appended.
    async fn fill(log: &PartitionLog, rounds: usize) -> Vec<(i64, String, Option<String>)> {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        let mut appended = Vec::new();
        for round in 0..rounds {
            let n = 1 + round % 3;
            let entries: Vec<Entry> = (0..n)
                .map(|j| {
                    let key = format!("k{}", (round * 3 + j) % 10);
                    let tombstone = round >= rounds * 3 / 4 && (key == "k3" || key == "k7");
                    let value = (!tombstone).then(|| format!("v{round}-{j}-{}", "p".repeat(40)));
                    entry(&key, value)
                })
                .collect();
            let info = log
                .append(keyed(&entries, codecs[round % codecs.len()]))
                .unwrap();
            for (i, (k, v)) in entries.into_iter().enumerate() {
                appended.push((info.base_offset + i as i64, k.unwrap(), v));
            }
        }
        log.wait_written(log.log_end_offset() - 1).await.unwrap();
        appended
    }

    async fn read_records(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.high_watermark() {
            let result = log.read(offset, 1 << 20).await.unwrap();
            assert!(!result.batches.is_empty());
            for data in result.batches {
                let header = BatchHeader::parse(&data).unwrap();
                crate::storage::batch::check_batch(&data, true).unwrap();
                let set = RecordBatchDecoder::decode(&mut data.clone()).unwrap();
                for r in set.records {
                    let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                    let value = r.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                    out.push((r.offset, key, value));
                }
                offset = header.last_offset() + 1;
            }
        }
        out
    }

    fn latest(records: &[(i64, String, Option<String>)]) -> HashMap<String, Option<String>> {
        records
            .iter()
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The survivors are a subset of what was appended at the same offsets, in offset
    /// order, and give the same latest value per key.
    fn assert_compacted_view(
        appended: &[(i64, String, Option<String>)],
        survivors: &[(i64, String, Option<String>)],
    ) {
        let by_offset: HashMap<i64, _> = appended.iter().map(|r| (r.0, r)).collect();
        for pair in survivors.windows(2) {
            assert!(pair[0].0 < pair[1].0, "offsets only grow");
        }
        for s in survivors {
            assert_eq!(by_offset.get(&s.0), Some(&s), "survivor keeps its offset");
        }
        let mut expected = latest(appended);
        let mut got = latest(survivors);
        // Removed tombstones leave no trace; a kept one reads as None.
        expected.retain(|_, v| v.is_some());
        got.retain(|_, v| v.is_some());
        assert_eq!(got, expected);
    }

    fn sealed_keys(log: &PartitionLog) -> i64 {
        let st = log.inner.state.borrow();
        st.segments.last().unwrap().base_offset
    }

    async fn open(dir: &Path, config: LogConfig) -> PartitionLog {
        PartitionLog::open(dir, "compacted", 0, config, 0, 0)
            .await
            .unwrap()
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted"))
            .collect()
    }

    #[test]
    fn cleaning_keeps_exactly_the_last_value_per_key_at_its_offset() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), compact_config()).await;
            let appended = fill(&log, 120).await;
            let segments_before = log.inner.state.borrow().segments.len();
            assert!(segments_before > 10, "{segments_before} segments");
            let now = crate::util::now_ms();
            let cleaned = log
                .clean(now, &CleanLimits::default())
                .await
                .unwrap()
                .unwrap();
            assert!(cleaned.records_removed > 100, "{cleaned:?}");
            assert_eq!(cleaned.cleaned_to, sealed_keys(&log));
            assert_eq!(cleaned.dirty_from, 0);
            let sealed_records = appended.iter().filter(|r| r.0 < cleaned.cleaned_to).count();
            assert_eq!(cleaned.mapped_records, sealed_records as u64, "{cleaned:?}");
            let survivors = read_records(&log).await;
            assert_compacted_view(&appended, &survivors);
            // Below the active segment each key appears once.
            let active_base = sealed_keys(&log);
            let mut seen = std::collections::HashSet::new();
            for (offset, key, _) in survivors.iter().filter(|r| r.0 < active_base) {
                assert!(seen.insert(key.clone()), "{key} twice, again at {offset}");
            }
            // Nothing new: no pass is due.
            assert_eq!(log.clean(now, &CleanLimits::default()).await.unwrap(), None);
            assert!(leftovers(log.dir()).is_empty());
            // The next pass groups the small cleaned segments into fewer.
            let mut appended = appended;
            appended.extend(fill(&log, 30).await);
            let before = log.inner.state.borrow().segments.len();
            let cleaned = log
                .clean(now, &CleanLimits::default())
                .await
                .unwrap()
                .unwrap();
            assert!(cleaned.segments_out < cleaned.segments_in, "{cleaned:?}");
            assert!(log.inner.state.borrow().segments.len() < before);
            let survivors = read_records(&log).await;
            assert_compacted_view(&appended, &survivors);
            // A pass over an already clean, fully grouped log rewrites nothing.
            let later = now + compact_config().delete_retention_ms + 30_000;
            for _ in 0..3 {
                log.set_cleaner_checkpoint(log.cleaner_checkpoint());
                log.clean(later, &CleanLimits::default())
                    .await
                    .unwrap()
                    .unwrap();
            }
            let files = |dir: &Path| -> Vec<(String, u64)> {
                let mut v: Vec<_> = std::fs::read_dir(dir)
                    .unwrap()
                    .map(|e| e.unwrap())
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            e.metadata().unwrap().len(),
                        )
                    })
                    .collect();
                v.sort();
                v
            };
            // The tombstones' horizon passed too: they are gone.
            let survivors = read_records(&log).await;
            assert_compacted_view(&appended, &survivors);
            let active_base = sealed_keys(&log);
            assert!(survivors
                .iter()
                .filter(|r| r.0 < active_base)
                .all(|r| r.2.is_some()));
            let before = files(log.dir());
            let checkpoint = log.cleaner_checkpoint();
            log.set_cleaner_checkpoint(checkpoint);
            let idle = log
                .clean(later, &CleanLimits::default())
                .await
                .unwrap()
                .unwrap();
            assert_eq!((idle.segments_in, idle.written_bytes), (0, 0), "{idle:?}");
            // It resumed from the checkpoint: nothing below it went into the offset map.
            assert_eq!((idle.dirty_from, idle.cleaned_to), (checkpoint, checkpoint));
            assert_eq!(idle.mapped_records, 0, "{idle:?}");
            assert_eq!(files(log.dir()), before);
            assert_eq!(read_records(&log).await, survivors);

            // A restart reads the same cleaned log (full scan and trusted open), and the
            // full scan finds the cleaner's offset indexes right (it rewrites stale ones).
            let leo = log.close().await.unwrap();
            let indexes = |dir: &Path| -> Vec<(String, Vec<u8>)> {
                let mut files: Vec<_> = std::fs::read_dir(dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "index"))
                    .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
                    .collect();
                files.sort();
                files
            };
            let written_indexes = indexes(log.dir());
            assert!(written_indexes.iter().any(|(_, bytes)| !bytes.is_empty()));
            for recovery_point in [0, leo] {
                let log = PartitionLog::open(
                    tmp.path(),
                    "compacted",
                    0,
                    compact_config(),
                    recovery_point,
                    0,
                )
                .await
                .unwrap();
                assert_eq!(read_records(&log).await, survivors);
                assert_eq!(log.log_end_offset(), leo);
                log.close().await.unwrap();
                assert_eq!(indexes(log.dir()), written_indexes);
            }
        });
    }

    #[test]
    fn tombstones_go_after_the_delete_horizon_and_not_before() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), compact_config()).await;
            let mut appended = fill(&log, 60).await;
            // Later updates of other keys, so that the tombstones are in sealed segments.
            for i in 0..40 {
                let entries = [entry(&format!("z{}", i % 4), Some("z".repeat(100)))];
                let info = log.append(keyed(&entries, Compression::None)).unwrap();
                appended.push((
                    info.base_offset,
                    format!("z{}", i % 4),
                    Some("z".repeat(100)),
                ));
            }
            log.wait_written(log.log_end_offset() - 1).await.unwrap();
            let now = crate::util::now_ms();
            log.clean(now, &CleanLimits::default())
                .await
                .unwrap()
                .unwrap();
            let first = read_records(&log).await;
            let tombstones =
                |rs: &[(i64, String, Option<String>)]| rs.iter().filter(|r| r.2.is_none()).count();
            let expected_tombstones = latest(&appended).values().filter(|v| v.is_none()).count();
            assert!(expected_tombstones > 0);
            assert_eq!(
                tombstones(&first),
                expected_tombstones,
                "kept until the horizon"
            );
            assert_compacted_view(&appended, &first);
            // Before the horizon (1 s) nothing is due; after it the tombstones go.
            assert_eq!(
                log.clean(now + 500, &CleanLimits::default()).await.unwrap(),
                None
            );
            log.clean(now + 1001, &CleanLimits::default())
                .await
                .unwrap()
                .unwrap();
            let second = read_records(&log).await;
            assert_eq!(tombstones(&second), 0);
            assert_compacted_view(&appended, &second);
            assert_eq!(second.len(), first.len() - expected_tombstones);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn a_crash_at_any_swap_step_recovers_a_whole_log() {
        for step in [
            Step::Written,
            Step::Committed,
            Step::OldRenamed,
            Step::Swapped,
        ] {
            run(async move {
                let tmp = tempfile::tempdir().unwrap();
                let log = open(tmp.path(), compact_config()).await;
                let appended = fill(&log, 120).await;
                let leo = log.log_end_offset();
                crash_at(Some(step));
                let now = crate::util::now_ms();
                assert!(
                    log.clean(now, &CleanLimits::default()).await.is_err(),
                    "{step:?}"
                );
                crash_at(None);
                drop(log);
                let log = open(tmp.path(), compact_config()).await;
                assert!(
                    leftovers(log.dir()).is_empty(),
                    "{step:?}: {:?}",
                    leftovers(log.dir())
                );
                assert_eq!(log.log_end_offset(), leo);
                let survivors = read_records(&log).await;
                assert_compacted_view(&appended, &survivors);
                if step == Step::Written {
                    assert_eq!(survivors.len(), appended.len(), "not committed: untouched");
                } else {
                    assert!(survivors.len() < appended.len(), "{step:?}: committed");
                }
                // The cleaner carries on from there.
                log.clean(now, &CleanLimits::default()).await.unwrap();
                assert_compacted_view(&appended, &read_records(&log).await);
                log.close().await.unwrap();
            });
        }
    }

    #[test]
    fn compaction_lags_decide_what_is_cleanable_and_when() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let config = LogConfig {
                min_compaction_lag_ms: 3_600_000,
                ..compact_config()
            };
            let log = open(tmp.path(), config.clone()).await;
            fill(&log, 60).await;
            // The records are stamped 1_700_000_000_000: an hour later they are still
            // too young to compact, a day later they are not.
            let written = 1_700_000_000_000;
            let limits = CleanLimits::default();
            assert_eq!(log.clean(written + 1_000, &limits).await.unwrap(), None);
            assert!(log
                .clean(written + 86_400_000, &limits)
                .await
                .unwrap()
                .is_some());

            // A dirty ratio that is never reached: only max.compaction.lag.ms cleans.
            let lazy = LogConfig {
                min_cleanable_dirty_ratio: 1.0,
                max_compaction_lag_ms: 3_600_000,
                ..compact_config()
            };
            let dir = tempfile::tempdir().unwrap();
            let log = open(dir.path(), lazy).await;
            fill(&log, 60).await;
            log.clean(written + 1_000, &limits).await.unwrap().unwrap();
            fill(&log, 30).await;
            assert_eq!(log.clean(written + 1_000, &limits).await.unwrap(), None);
            assert!(log
                .clean(written + 7_200_000, &limits)
                .await
                .unwrap()
                .is_some());
            log.close().await.unwrap();
        });
    }

    #[test]
    fn readers_holding_an_old_segment_keep_reading() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), compact_config()).await;
            fill(&log, 120).await;
            let (file, size) = {
                let st = log.inner.state.borrow();
                (st.segments[0].file().clone(), st.segments[0].size())
            };
            let before = file.read(0, size as usize).await.unwrap();
            log.clean(crate::util::now_ms(), &CleanLimits::default())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(file.read(0, size as usize).await.unwrap(), before);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn io_rate_bound_slows_the_pass() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), compact_config()).await;
            fill(&log, 120).await;
            let size = log.size_bytes();
            let limits = CleanLimits {
                io_bytes_per_second: size * 4,
                ..CleanLimits::default()
            };
            let start = Instant::now();
            let cleaned = log
                .clean(crate::util::now_ms(), &limits)
                .await
                .unwrap()
                .unwrap();
            let floor = (cleaned.read_bytes + cleaned.written_bytes) as f64 / (size * 4) as f64;
            assert!(start.elapsed().as_secs_f64() >= floor * 0.9, "{cleaned:?}");
            log.close().await.unwrap();
        });
    }

    #[test]
    fn compacted_topics_refuse_keyless_records_and_topics_recompress() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), compact_config()).await;
            let keyless = keyed(
                &[entry("a", Some("1".into())), (None, Some("x".into()))],
                Compression::Lz4,
            );
            assert_eq!(log.append(keyless).unwrap_err().kafka_error_code(), 87);
            assert_eq!(log.log_end_offset(), 0);
            log.close().await.unwrap();

            for codec in 0..=4u8 {
                let dir = tempfile::tempdir().unwrap();
                let config = LogConfig {
                    compression_codec: Some(codec),
                    ..LogConfig::default()
                };
                let log = open(dir.path(), config).await;
                let entries: Vec<Entry> = (0..20)
                    .map(|i| entry(&format!("k{i}"), Some(format!("value {i}"))))
                    .collect();
                log.append(keyed(&entries, Compression::Gzip)).unwrap();
                log.wait_written(19).await.unwrap();
                let batch = log.read(0, 1 << 20).await.unwrap().batches.remove(0);
                let header = BatchHeader::parse(&batch).unwrap();
                assert_eq!(records::codec_of(&header), codec);
                let got: Vec<Entry> = RecordBatchDecoder::decode(&mut batch.clone())
                    .unwrap()
                    .records
                    .into_iter()
                    .map(|r| {
                        let s =
                            |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                        (s(r.key), s(r.value))
                    })
                    .collect();
                assert_eq!(got, entries);
                log.close().await.unwrap();
            }
        });
    }
}
