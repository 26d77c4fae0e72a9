//! Open-time recovery of one partition directory.
//!
//! Segments are visited in base-offset order. Two offsets decide how much is read:
//! the recovery point (everything below it was fdatasync'd, with the index files of the
//! segments it passed) and the offset of the newest valid producer snapshot (the
//! producer state is known up to there; see `snapshot`). Below the smaller of the two,
//! `trusted_below`:
//! - a segment that ends there (the next segment's base <= `trusted_below`) is not read
//!   at all when its `.index` and `.timeindex` pass a sanity check (whole, monotonic
//!   entries inside the file and the offset range): its indexes are loaded from the
//!   files, its size is the file's length and its end the next segment's base;
//! - in the segment containing `trusted_below`, and in later ones, the walk starts at
//!   the last index entry at or below it (whose batch must be where the entry says), so
//!   only what follows is read: after a clean close, one short read of the active
//!   segment's end.
//!
//! A segment whose index files are missing or fail the check is walked from its first
//! byte, like every segment when there is no snapshot. The walk reads batch headers:
//! - batches whose last offset is at or past the recovery point also get their CRC
//!   checked; earlier ones are trusted;
//! - it rebuilds the segment's indexes in memory (they are a pure function of the
//!   batches) and rewrites an index file that is missing or differs;
//! - batches at or past the snapshot's offset are replayed into the producer state.
//!
//! At the first invalid batch (bad CRC, a zero length as O_DIRECT padding leaves after a
//! crash, a truncated batch, offsets going back) the segment is truncated there and the
//! later segments are deleted, both with a warning naming the files and byte counts.
//! The one exception: when the valid part of a segment ends exactly at the next
//! segment's base offset (only padding or garbage without offsets was cut), no offset
//! is lost and the later segments stay. Snapshots past the recovered log end are then
//! deleted, and if the one used was among them the producer state is rebuilt from an
//! older one (or the whole log).

use std::path::Path;

use tracing::{info, warn};

/// The largest offset past its segment's base that a segment's indexes can hold (they
/// store it as a u32).
const SEGMENT_RELATIVE_OFFSET_MAX: i64 = u32::MAX as i64;

use super::batch::{BatchHeader, BatchProblem, BatchWalker, VERIFY_CRC_NEVER};
use super::index::{OffsetIndex, SegmentIndex, TimeIndex};
use super::io::{self, align_down, LogFile};
use super::producer_state::ProducerState;
use super::records::INFLATED_BYTES_CAP;
use super::segment::{file_name, parse_log_file_name, Segment};
use super::snapshot;
use super::validate;
use super::StorageError;

/// Size of the DMA reads of the recovery scan (a larger batch is read whole).
pub const RECOVERY_READ_BYTES: usize = 1 << 20;

/// What recovery hands to `PartitionLog`.
pub struct Recovered {
    /// In base-offset order, never empty; the last one is the active segment.
    pub segments: Vec<Segment>,
    pub producers: ProducerState,
    pub log_end_offset: i64,
    /// (partitionLeaderEpoch, base offset) of each scanned batch that changed the epoch,
    /// in log order: what the leader epoch cache learns from the walk.
    pub epochs: Vec<(i32, i64)>,
}

/// Segment geometry recovery needs from the log config.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub segment_bytes: u64,
    pub index_interval_bytes: u32,
}

/// Result of scanning one segment file.
struct Scan {
    file_len: u64,
    valid_len: u64,
    next_offset: i64,
    index: SegmentIndex,
    /// Why the scan stopped before `file_len`.
    problem: Option<String>,
    /// The scan stopped at a zero batch length: what follows was never written (space
    /// fallocated ahead, or the zero padding of the last O_DIRECT write) rather than damaged.
    unwritten_tail: bool,
}

/// Where a scan starts: byte `pos`, with `index` holding the entries before it.
struct ScanFrom {
    pos: u64,
    index: SegmentIndex,
    /// The last offset the batch at `pos` must have (from the index entry pointing at it).
    expect_last_offset: Option<i64>,
}

/// What one recovery pass knows and builds.
struct Pass<'a> {
    dir: &'a Path,
    geometry: Geometry,
    recovery_point: i64,
    /// Batches at or past this offset are replayed into `producers`.
    replay_from: i64,
    producers: ProducerState,
    epochs: Vec<(i32, i64)>,
}

impl Pass<'_> {
    /// Below this, segments need neither validation nor producer replay.
    fn trusted_below(&self) -> i64 {
        self.recovery_point.min(self.replay_from)
    }
}

pub async fn recover(
    dir: &Path,
    geometry: Geometry,
    recovery_point: i64,
    log_start_offset: i64,
) -> Result<Recovered, StorageError> {
    let names = io::list_dir(dir).await?;
    for name in names.iter().filter(|n| n.ends_with(".tmp")) {
        io::remove_file(&dir.join(name)).await?;
    }
    let names = if finish_swaps(dir, &names).await? {
        io::list_dir(dir).await?
    } else {
        names
    };
    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|n| parse_log_file_name(n))
        .collect();
    bases.sort_unstable();
    let snapshots = snapshot::snapshot_offsets(&names);
    let (replay_from, producers) = snapshot::load_newest(dir, &snapshots, i64::MAX)
        .await?
        .unwrap_or((i64::MIN, ProducerState::new()));
    let mut pass = Pass {
        dir,
        geometry,
        recovery_point,
        replay_from,
        producers,
        epochs: Vec::new(),
    };
    let mut segments = recover_segments(&mut pass, &bases).await?;
    if segments.is_empty() {
        let base = log_start_offset.max(0);
        let segment = Segment::create(
            dir,
            base,
            geometry.index_interval_bytes,
            geometry.segment_bytes,
        )
        .await?;
        segments.push(segment);
    }
    let active = segments.last_mut().expect("at least one segment");
    let size = active.size();
    let tail_len = (size - align_down(size)) as usize;
    if tail_len > 0 {
        let tail = active.file().read(align_down(size), tail_len).await?;
        active.set_tail(tail.to_vec());
    }
    active.file().fdatasync().await?;
    let log_end_offset = active.next_offset();
    let mut producers = pass.producers;
    if replay_from > log_end_offset {
        warn!(
            dir = %dir.display(),
            snapshot_offset = replay_from,
            log_end_offset,
            "producer snapshot is past the recovered log end; rebuilding from an older one"
        );
        let (from, older) = snapshot::load_newest(dir, &snapshots, log_end_offset)
            .await?
            .unwrap_or((i64::MIN, ProducerState::new()));
        producers = older;
        replay_producers(&segments, from, &mut producers).await?;
    }
    snapshot::remove_above(dir, &snapshots, log_end_offset).await?;
    let mut epochs = std::mem::take(&mut pass.epochs);
    epochs.retain(|&(_, base)| base < log_end_offset);
    Ok(Recovered {
        segments,
        producers,
        log_end_offset,
        epochs,
    })
}

/// Opens, checks and (where needed) scans the segments based at `bases`, ascending.
async fn recover_segments(
    pass: &mut Pass<'_>,
    bases: &[i64],
) -> Result<Vec<Segment>, StorageError> {
    let dir = pass.dir;
    let mut segments: Vec<Segment> = Vec::new();
    for (i, &base) in bases.iter().enumerate() {
        let expected = segments.last().map_or(base, |s| s.next_offset());
        if base < expected {
            warn!(
                dir = %dir.display(),
                base, expected, "segment overlaps the previous one; deleting it and later ones"
            );
            delete_segments(dir, &bases[i..]).await?;
            break;
        }
        let path = dir.join(file_name(base, "log"));
        let file = LogFile::open(&path, false).await?;
        let file_len = file.size().await?;
        let next_base = bases.get(i + 1).copied();
        let mut indexes = load_indexes(dir, base, file_len, next_base).await?;
        if indexes
            .as_ref()
            .is_some_and(|(_, times)| SegmentIndex::has_unset_timestamps(times))
        {
            info!(
                path = %path.display(),
                "time index holds unset (-1) timestamps written before they were derived from the records; rebuilding it"
            );
            indexes = None;
        }
        let interval = pass.geometry.index_interval_bytes;
        if let (Some(next), Some((offsets, times))) = (next_base, &indexes) {
            if next <= pass.trusted_below() {
                if let Some((mut index, _, _)) =
                    SegmentIndex::resume(offsets.clone(), times.clone(), interval, i64::MAX)
                {
                    index.absorb_sealed_times(times.clone());
                    let segment = Segment::sealed(
                        file,
                        base,
                        file_len,
                        index,
                        next,
                        pass.geometry.segment_bytes,
                    );
                    segments.push(segment);
                    continue;
                }
            }
        }
        let scan = scan_resuming(pass, &file, file_len, base, indexes).await?;
        let damaged = scan.problem.is_some();
        if scan.unwritten_tail {
            // The normal state after a crash: fallocated space and write padding.
            info!(
                path = %path.display(),
                trimmed_bytes = scan.file_len - scan.valid_len,
                kept_bytes = scan.valid_len,
                "trimming never-written (zero) space after the last complete batch"
            );
            file.truncate(scan.valid_len).await?;
            file.fdatasync().await?;
        } else if let Some(problem) = &scan.problem {
            warn!(
                path = %path.display(),
                dropped_bytes = scan.file_len - scan.valid_len,
                kept_bytes = scan.valid_len,
                reason = %problem,
                "truncating segment at its first invalid batch"
            );
            file.truncate(scan.valid_len).await?;
            file.fdatasync().await?;
        }
        let sealed = next_base.is_some();
        let segment = recovered_segment(file, base, scan, pass.geometry, sealed).await?;
        let keep_later = !damaged || next_base == Some(segment.next_offset());
        segments.push(segment);
        if !keep_later && i + 1 < bases.len() {
            delete_segments(dir, &bases[i + 1..]).await?;
            break;
        }
    }
    Ok(segments)
}

/// Scans a segment from its last index entry at or below `trusted_below`, or from its
/// first byte when the index files are unusable or that entry does not match the log.
async fn scan_resuming(
    pass: &mut Pass<'_>,
    file: &LogFile,
    file_len: u64,
    base: i64,
    indexes: Option<(OffsetIndex, TimeIndex)>,
) -> Result<Scan, StorageError> {
    let interval = pass.geometry.index_interval_bytes;
    let resume = indexes.and_then(|(offsets, times)| {
        SegmentIndex::resume(offsets, times, interval, pass.trusted_below())
    });
    if let Some((index, pos, expect_last_offset)) = resume {
        let from = ScanFrom {
            pos: pos as u64,
            index,
            expect_last_offset,
        };
        if let Some(scan) = scan_segment(pass, file, file_len, base, from).await? {
            return Ok(scan);
        }
        warn!(
            path = %file.path().display(),
            position = pos,
            "index entry does not match the batch it points at; scanning the whole segment"
        );
    }
    let from = ScanFrom {
        pos: 0,
        index: SegmentIndex::new(base, interval),
        expect_last_offset: None,
    };
    let scan = scan_segment(pass, file, file_len, base, from).await?;
    Ok(scan.expect("a scan from byte 0 has no index entry to contradict"))
}

/// A segment's index files, if both exist and pass the sanity check: whole monotonic
/// entries, offsets inside the segment (below `next_base` when known), positions inside
/// the `.log` file, and a time entry whenever there is an offset entry.
async fn load_indexes(
    dir: &Path,
    base: i64,
    file_len: u64,
    next_base: Option<i64>,
) -> Result<Option<(OffsetIndex, TimeIndex)>, StorageError> {
    let index_path = dir.join(file_name(base, "index"));
    let time_index_path = dir.join(file_name(base, "timeindex"));
    let Some(index_bytes) = io::read_small_file(&index_path).await? else {
        return Ok(None);
    };
    let Some(time_bytes) = io::read_small_file(&time_index_path).await? else {
        return Ok(None);
    };
    let offsets = OffsetIndex::from_bytes(base, &index_bytes);
    let times = TimeIndex::from_bytes(base, &time_bytes);
    let (Some(offsets), Some(times)) = (offsets, times) else {
        warn!(path = %index_path.display(), "index files are not well-formed; scanning the segment");
        return Ok(None);
    };
    let rel_end = next_base.map_or(u32::MAX as i64 + 1, |next| next - base);
    let last_offset = offsets.entries().last().copied();
    let last_time = times.entries().last().copied();
    let sane = match (last_offset, last_time) {
        (None, None) => true,
        // A finished segment too small for an offset entry still has its final time entry.
        (None, Some((_, time_rel))) => (time_rel as i64) < rel_end,
        (Some(_), None) => false,
        (Some((rel, pos)), Some((_, time_rel))) => {
            (pos as u64) < file_len && (rel as i64) < rel_end && (time_rel as i64) < rel_end
        }
    };
    if !sane {
        warn!(
            path = %index_path.display(),
            log_bytes = file_len,
            "index files point outside their segment; scanning the segment"
        );
        return Ok(None);
    }
    Ok(Some((offsets, times)))
}

async fn recovered_segment(
    file: LogFile,
    base: i64,
    scan: Scan,
    geometry: Geometry,
    sealed: bool,
) -> Result<Segment, StorageError> {
    let mut segment = Segment::sealed(
        file,
        base,
        scan.valid_len,
        scan.index,
        scan.next_offset,
        geometry.segment_bytes,
    );
    // A finished segment's time index ends with its largest timestamp (see
    // `SegmentIndex::finished_times`); the active one may have that entry on disk from
    // its last close, which is as good as the rebuilt form.
    let finished = segment.index.finished_times();
    let times = if sealed {
        segment.index.absorb_sealed_times(finished.clone());
        finished.to_bytes()
    } else {
        segment.index.times.to_bytes()
    };
    rewrite_index_if_stale(
        &segment.index_path(),
        segment.index.offsets.to_bytes(),
        None,
    )
    .await?;
    rewrite_index_if_stale(&segment.time_index_path(), times, Some(finished.to_bytes())).await?;
    Ok(segment)
}

/// Rewrites an index file unless it holds `rebuilt` (or `also_fine`).
async fn rewrite_index_if_stale(
    path: &Path,
    rebuilt: Vec<u8>,
    also_fine: Option<Vec<u8>>,
) -> Result<(), StorageError> {
    match io::read_small_file(path).await? {
        Some(on_disk) if on_disk == rebuilt || Some(&on_disk) == also_fine.as_ref() => {
            return Ok(())
        }
        Some(on_disk) => warn!(
            path = %path.display(),
            bytes_on_disk = on_disk.len(),
            bytes_rebuilt = rebuilt.len(),
            "index file inconsistent with its segment; rewriting it"
        ),
        None => info!(path = %path.display(), "index file missing; rebuilt it"),
    }
    io::write_small_file(path, rebuilt).await
}

/// The header as the time index sees it: a CreateTime batch stored with an unset
/// maxTimestamp (by a broker that trusted a client's -1) counts with its records'
/// largest timestamp. A batch that cannot be walked keeps its header.
fn indexed_header(batch: &[u8], header: BatchHeader) -> BatchHeader {
    if header.max_timestamp >= 0 || header.is_log_append_time() || header.is_control() {
        return header;
    }
    match validate::record_times(batch, INFLATED_BYTES_CAP, false) {
        Ok(times) => BatchHeader {
            max_timestamp: times.max,
            ..header
        },
        Err(_) => header,
    }
}

async fn delete_segments(dir: &Path, bases: &[i64]) -> Result<(), StorageError> {
    for &base in bases {
        for extension in ["log", "index", "timeindex"] {
            let path = dir.join(file_name(base, extension));
            if extension == "log" {
                warn!(path = %path.display(), "deleting segment after a damaged one");
            }
            io::remove_file(&path).await?;
        }
    }
    io::sync_dir(dir).await
}

/// Scans the batches of one segment file from `from.pos`; see the module comment.
/// `None` when the batch at `from.pos` is not the one the index entry promised.
async fn scan_segment(
    pass: &mut Pass<'_>,
    file: &LogFile,
    file_len: u64,
    base: i64,
    from: ScanFrom,
) -> Result<Option<Scan>, StorageError> {
    let ScanFrom {
        mut pos,
        mut index,
        mut expect_last_offset,
    } = from;
    let mut next_offset = base;
    let mut chunk = RECOVERY_READ_BYTES;
    let mut stop: Option<BatchProblem> = None;
    let mut went_back: Option<i64> = None;
    let mut out_of_range: Option<i64> = None;
    'scan: while pos < file_len {
        let want = (chunk as u64).min(file_len - pos) as usize;
        let buf = file.read(pos, want).await?;
        let mut walker = BatchWalker::new(&buf, pass.recovery_point);
        for (at, header) in walker.by_ref() {
            if let Some(expected) = expect_last_offset.take() {
                if header.last_offset() != expected {
                    return Ok(None);
                }
            }
            if header.base_offset < next_offset {
                went_back = Some(header.base_offset);
                pos += at as u64;
                break 'scan;
            }
            // The indexes hold offsets relative to the base as u32: a batch past that
            // range was never appended to this segment (a roll comes first), so it is
            // corruption, not data. Found by the `recovery` fuzz target: it tripped the
            // time index's range assertion and aborted start-up.
            if header.last_offset() - base > SEGMENT_RELATIVE_OFFSET_MAX {
                out_of_range = Some(header.base_offset);
                pos += at as u64;
                break 'scan;
            }
            if pass
                .epochs
                .last()
                .is_none_or(|&(e, _)| e != header.partition_leader_epoch)
            {
                pass.epochs
                    .push((header.partition_leader_epoch, header.base_offset));
            }
            let indexed = indexed_header(&buf[at..at + header.size()], header);
            index.on_batch(&indexed, (pos + at as u64) as u32);
            if header.base_offset >= pass.replay_from {
                pass.producers.record_batch(
                    &header,
                    header.base_offset,
                    &buf[at..at + header.size()],
                );
            }
            next_offset = header.last_offset() + 1;
        }
        let at = walker.valid_len() as u64;
        match walker.stop() {
            None => {}
            Some(&BatchProblem::Incomplete { needed }) if pos + at + needed as u64 <= file_len => {
                chunk = chunk.max(needed);
            }
            Some(problem) => {
                stop = Some(problem.clone());
                pos += at;
                break 'scan;
            }
        }
        pos += at;
    }
    if expect_last_offset.is_some() {
        return Ok(None);
    }
    let unwritten_tail = went_back.is_none()
        && out_of_range.is_none()
        && matches!(stop, Some(BatchProblem::BadLength(0)));
    let problem = match (went_back, out_of_range, stop) {
        (Some(offset), _, _) => Some(format!(
            "batch at offset {offset} is below the expected {next_offset}"
        )),
        (None, Some(offset), _) => Some(format!(
            "batch at offset {offset} lies past the segment's offset range ({base} + {SEGMENT_RELATIVE_OFFSET_MAX})"
        )),
        (None, None, Some(problem)) => Some(problem.to_string()),
        (None, None, None) => None,
    };
    Ok(Some(Scan {
        file_len,
        valid_len: pos,
        next_offset,
        index,
        problem,
        unwritten_tail,
    }))
}

/// Rebuilds producer state from batch headers at or past `from` in recovered
/// `segments` (which hold only valid batches), on top of the state of a snapshot at
/// `from`. Used when the snapshot the main pass used turned out to be past the log end.
async fn replay_producers(
    segments: &[Segment],
    from: i64,
    producers: &mut ProducerState,
) -> Result<(), StorageError> {
    for segment in segments.iter().filter(|s| s.next_offset() > from) {
        let file = segment.file();
        let end = segment.size();
        let (_, start) = segment.index.offsets.lookup(from);
        let mut pos = start as u64;
        let mut chunk = RECOVERY_READ_BYTES;
        while pos < end {
            let want = (chunk as u64).min(end - pos) as usize;
            let buf = file.read(pos, want).await?;
            let mut walker = BatchWalker::new(&buf, VERIFY_CRC_NEVER);
            for (at, header) in walker.by_ref() {
                if header.base_offset >= from {
                    producers.record_batch(
                        &header,
                        header.base_offset,
                        &buf[at..at + header.size()],
                    );
                }
            }
            let at = walker.valid_len() as u64;
            match walker.stop() {
                None => {}
                Some(&BatchProblem::Incomplete { needed }) if pos + at + needed as u64 <= end => {
                    chunk = chunk.max(needed);
                }
                Some(problem) => {
                    return Err(StorageError::io(
                        file.path(),
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "invalid batch at byte {} of a recovered segment: {problem}",
                                pos + at
                            ),
                        ),
                    ))
                }
            }
            pos += at;
        }
    }
    Ok(())
}

/// Completes or discards what a cleaner pass left when the process stopped (see
/// `log::cleaner` for the protocol): `.cleaned` files were never committed and are
/// deleted; a `<base>.log.swap` was committed, so the old segments it overlaps are
/// deleted and the swap files take their final names (an index file whose swap is
/// missing is deleted and rebuilt by the scan); `.deleted` files are deleted. Returns
/// whether anything was done.
async fn finish_swaps(dir: &Path, names: &[String]) -> Result<bool, StorageError> {
    let mut changed = false;
    for name in names
        .iter()
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".deleted"))
    {
        io::remove_file(&dir.join(name)).await?;
        changed = true;
    }
    let swaps: Vec<i64> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".swap").and_then(parse_log_file_name))
        .collect();
    for name in names.iter().filter(|n| n.ends_with(".swap")) {
        let base = name.split('.').next().and_then(|b| b.parse::<i64>().ok());
        if !base.is_some_and(|b| swaps.contains(&b)) {
            // An index swap whose log swap was never renamed: not committed.
            io::remove_file(&dir.join(name)).await?;
            changed = true;
        }
    }
    for &base in &swaps {
        let swap = |ext: &str| dir.join(format!("{}.swap", file_name(base, ext)));
        let end = swap_end_offset(&swap("log"), base).await?;
        let overlapped = names
            .iter()
            .filter_map(|n| parse_log_file_name(n))
            .filter(|&b| b > base && b < end);
        for old in overlapped {
            info!(dir = %dir.display(), base = old, "deleting a segment a finished cleaner swap replaces");
            for ext in ["log", "index", "timeindex"] {
                io::remove_file(&dir.join(file_name(old, ext))).await?;
            }
        }
        for ext in ["index", "timeindex"] {
            if names.contains(&format!("{}.swap", file_name(base, ext))) {
                io::rename(&swap(ext), &dir.join(file_name(base, ext))).await?;
            } else {
                io::remove_file(&dir.join(file_name(base, ext))).await?;
            }
        }
        io::rename(&swap("log"), &dir.join(file_name(base, "log"))).await?;
        info!(dir = %dir.display(), base, "completed an interrupted cleaner swap");
        changed = true;
    }
    if changed {
        io::sync_dir(dir).await?;
    }
    Ok(changed)
}

/// One past the last offset in a committed swap file (`base` if it is empty).
async fn swap_end_offset(path: &Path, base: i64) -> Result<i64, StorageError> {
    let file = LogFile::open(path, false).await?;
    let len = file.size().await?;
    let mut end = base;
    let mut pos = 0u64;
    let mut chunk = RECOVERY_READ_BYTES;
    while pos < len {
        let want = (chunk as u64).min(len - pos) as usize;
        let buf = file.read(pos, want).await?;
        let mut walker = BatchWalker::new(&buf, VERIFY_CRC_NEVER);
        for (_, header) in walker.by_ref() {
            end = header.last_offset() + 1;
        }
        let at = walker.valid_len() as u64;
        match walker.stop() {
            None => {}
            Some(&BatchProblem::Incomplete { needed }) if pos + at + needed as u64 <= len => {
                chunk = chunk.max(needed);
            }
            Some(_) => break,
        }
        pos += at;
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use crate::storage::batch::{patch_base_offset, patch_leader_epoch};
    use crate::storage::log::{LogConfig, PartitionLog};
    use crate::storage::testutil::{plain, run};

    /// Fuzz finding (recovery): a segment holding a valid batch whose offsets lie more
    /// than 2^32 - 1 past the segment's base aborted start-up on the time index's range
    /// assertion. Recovery now truncates the segment at that batch, trusted or not.
    #[test]
    fn a_batch_past_the_segment_offset_range_is_truncated() {
        for recovery_point in [0, i64::MAX] {
            run(async move {
                let tmp = tempfile::tempdir().unwrap();
                let dir = tmp.path().join("t-0");
                std::fs::create_dir_all(&dir).unwrap();
                let mut first = plain(3, 50);
                patch_base_offset(&mut first, 0);
                patch_leader_epoch(&mut first, 0);
                let mut far = plain(2, 50);
                patch_base_offset(&mut far, 1 << 33);
                patch_leader_epoch(&mut far, 0);
                let path = dir.join("00000000000000000000.log");
                std::fs::write(&path, [&first[..], &far[..]].concat()).unwrap();
                let log =
                    PartitionLog::open(tmp.path(), "t", 0, LogConfig::default(), recovery_point, 0)
                        .await
                        .unwrap();
                assert_eq!(log.log_end_offset(), 3);
                let read = log.read(0, 1 << 20).await.unwrap();
                assert_eq!(read.batches, vec![first.freeze()]);
                log.close().await.unwrap();
                assert_eq!(std::fs::metadata(&path).unwrap().len(), read_len(&read));
            });
        }
    }

    fn read_len(read: &crate::storage::log::ReadResult) -> u64 {
        read.batches.iter().map(|b| b.len() as u64).sum()
    }
}
