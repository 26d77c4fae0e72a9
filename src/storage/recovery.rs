//! Open-time recovery of one partition directory.
//!
//! Every segment is scanned once, in base-offset order, batch header by batch header:
//! - batches whose last offset is at or past the recovery point also get their CRC
//!   checked; earlier ones were synced before the last clean checkpoint and are trusted;
//! - the scan rebuilds the segment's indexes in memory (they are a pure function of the
//!   batches) and rewrites an index file that is missing or differs;
//! - the scan loads producer state from the batch headers (see `producer_state`).
//!
//! At the first invalid batch (bad CRC, a zero length as O_DIRECT padding leaves after a
//! crash, a truncated batch, offsets going back) the segment is truncated there and the
//! later segments are deleted, both with a warning naming the files and byte counts.
//! The one exception: when the valid part of a segment ends exactly at the next
//! segment's base offset (only padding or garbage without offsets was cut), no offset
//! is lost and the later segments stay.

use std::path::Path;

use tracing::{info, warn};

use super::batch::{BatchProblem, BatchWalker};
use super::index::SegmentIndex;
use super::io::{self, align_down, LogFile};
use super::producer_state::ProducerState;
use super::segment::{file_name, parse_log_file_name, Segment};
use super::StorageError;

/// Size of the DMA reads of the recovery scan (a larger batch is read whole).
pub const RECOVERY_READ_BYTES: usize = 1 << 20;

/// What recovery hands to `PartitionLog`.
pub struct Recovered {
    /// In base-offset order, never empty; the last one is the active segment.
    pub segments: Vec<Segment>,
    pub producers: ProducerState,
    pub log_end_offset: i64,
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
    let mut bases: Vec<i64> = names
        .iter()
        .filter_map(|n| parse_log_file_name(n))
        .collect();
    bases.sort_unstable();
    let mut producers = ProducerState::new();
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
        let scan = scan_segment(&file, base, recovery_point, geometry, &mut producers).await?;
        let damaged = scan.problem.is_some();
        if scan.unwritten_tail {
            // The normal state after a crash: fallocated space and write padding.
            tracing::info!(
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
        let segment = recovered_segment(file, base, scan, geometry).await?;
        let next_base = bases.get(i + 1).copied();
        let keep_later = !damaged || next_base == Some(segment.next_offset());
        segments.push(segment);
        if !keep_later && i + 1 < bases.len() {
            delete_segments(dir, &bases[i + 1..]).await?;
            break;
        }
    }
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
    let active = segments.last().expect("at least one segment");
    active.file().fdatasync().await?;
    let log_end_offset = active.next_offset();
    Ok(Recovered {
        segments,
        producers,
        log_end_offset,
    })
}

async fn recovered_segment(
    file: LogFile,
    base: i64,
    scan: Scan,
    geometry: Geometry,
) -> Result<Segment, StorageError> {
    let tail_len = (scan.valid_len - align_down(scan.valid_len)) as usize;
    let tail = if tail_len == 0 {
        Vec::new()
    } else {
        file.read(align_down(scan.valid_len), tail_len)
            .await?
            .to_vec()
    };
    let segment = Segment::recovered(
        file,
        base,
        scan.valid_len,
        tail,
        scan.index,
        scan.next_offset,
        geometry.segment_bytes,
    );
    rewrite_index_if_stale(&segment.index_path(), segment.index.offsets.to_bytes()).await?;
    rewrite_index_if_stale(&segment.time_index_path(), segment.index.times.to_bytes()).await?;
    Ok(segment)
}

async fn rewrite_index_if_stale(path: &Path, rebuilt: Vec<u8>) -> Result<(), StorageError> {
    match io::read_small_file(path).await? {
        Some(on_disk) if on_disk == rebuilt => return Ok(()),
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

/// Scans the batches of one segment file; see the module comment.
async fn scan_segment(
    file: &LogFile,
    base: i64,
    recovery_point: i64,
    geometry: Geometry,
    producers: &mut ProducerState,
) -> Result<Scan, StorageError> {
    let file_len = file.size().await?;
    let mut index = SegmentIndex::new(base, geometry.index_interval_bytes);
    let mut next_offset = base;
    let mut pos = 0u64;
    let mut chunk = RECOVERY_READ_BYTES;
    let mut stop: Option<BatchProblem> = None;
    let mut went_back: Option<i64> = None;
    'scan: while pos < file_len {
        let want = (chunk as u64).min(file_len - pos) as usize;
        let buf = file.read(pos, want).await?;
        let mut walker = BatchWalker::new(&buf, recovery_point);
        for (at, header) in walker.by_ref() {
            if header.base_offset < next_offset {
                went_back = Some(header.base_offset);
                pos += at as u64;
                break 'scan;
            }
            index.on_batch(&header, (pos + at as u64) as u32);
            producers.record(&header, header.base_offset);
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
    let unwritten_tail = went_back.is_none() && matches!(stop, Some(BatchProblem::BadLength(0)));
    let problem = match (went_back, stop) {
        (Some(offset), _) => Some(format!(
            "batch at offset {offset} is below the expected {next_offset}"
        )),
        (None, Some(problem)) => Some(problem.to_string()),
        (None, None) => None,
    };
    Ok(Scan {
        file_len,
        valid_len: pos,
        next_offset,
        index,
        problem,
        unwritten_tail,
    })
}
