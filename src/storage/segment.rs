//! One segment: `<20-digit base offset>.log` with its `.index` and `.timeindex`.
//!
//! ```text
//!  file:  | page | page | page |tail..|000000 preallocated 000000|
//!                              ^      ^ size (logical end)      ^ allocated
//!                              align_down(size): the tail page, also kept in memory
//! ```
//!
//! Appends are O_DIRECT writes of whole pages: each write starts at the page holding the
//! logical end (rewriting the tail page from the in-memory copy) and ends at the next
//! page boundary after the new data, zero-padded. The file is preallocated ahead in
//! steps that grow with the segment, from [`PREALLOCATE_STEP_MIN_BYTES`] to
//! [`PREALLOCATE_STEP_BYTES`], and truncated to `size` when the segment is finished
//! (roll or close); after a crash the zeros past the end are cut off by recovery.
//!
//! Written ahead: fallocate leaves *unwritten* extents, and an O_DIRECT write into one
//! cannot complete inline in io_uring (ext4 punts it to a worker thread) and makes the
//! next fdatasync journal the extent conversion. So when the writer has nothing else to
//! do it writes zeros ahead of the data ([`Segment::plan_zero`], [`ZERO_CHUNK_BYTES`] at
//! a time, up to [`zero_ahead_for`] past the end: as much as the segment holds, 256 KiB
//! to [`ZERO_AHEAD_BYTES`]) and fdatasyncs them; appends then
//! overwrite written blocks. `zeroed` is how far the file is known written (data or
//! zeros). Zeros read exactly like fallocated space, so recovery's end-of-data rule (a
//! zero batch length) is unchanged.
//!
//! Concurrency: a `Segment` lives in the partition's `RefCell`. Only the partition's
//! writer task mutates it, in three steps that never hold the borrow across an await:
//! [`Segment::plan_write`] (borrowed), the DMA write on a cloned [`LogFile`] (not
//! borrowed), [`Segment::apply_write`] (borrowed). Readers clone the `LogFile`, note
//! `size` and an index position, and read without the borrow.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::batch::{BatchHeader, BatchProblem, BatchWalker, VERIFY_CRC_NEVER};
use super::index::SegmentIndex;
use super::io::{align_down, align_up, LogFile, PAGE_BYTES};
use super::StorageError;

/// The largest step by which the `.log` file is allocated ahead of the data (capped at
/// the segment size).
pub const PREALLOCATE_STEP_BYTES: u64 = 32 << 20;
/// The smallest step. Steps grow with the segment (the next power of two of its end), so
/// an idle partition holds a few hundred KiB of disk, not 32 MiB: 10,000 partitions with
/// a few records each used to reserve 320 GB.
pub const PREALLOCATE_STEP_MIN_BYTES: u64 = 256 << 10;
/// Smallest DMA read issued by the read path and by recovery.
pub const READ_CHUNK_BYTES: usize = 64 << 10;
/// Largest DMA read issued for one `read_batches` step (a larger batch is still read
/// whole, with one read of its size).
pub const READ_CHUNK_BYTES_MAX: usize = 8 << 20;
/// How far past the logical end the writer keeps the file written with zeros, at most
/// (see [`zero_ahead_for`]).
pub const ZERO_AHEAD_BYTES: u64 = 4 << 20;
/// How far ahead zeros go for a segment holding less than this: as far as it holds, at
/// least this much (a partition with little data gets little written ahead).
pub const ZERO_AHEAD_MIN_BYTES: u64 = 256 << 10;

/// How far past `size` bytes of data the writer keeps zeros written, when allowed
/// `ahead_bytes` (the partition's `zero_ahead_bytes`): as much again as the segment
/// holds, between [`ZERO_AHEAD_MIN_BYTES`] and `ahead_bytes`.
pub fn zero_ahead_for(size: u64, ahead_bytes: u64) -> u64 {
    size.max(ZERO_AHEAD_MIN_BYTES).min(ahead_bytes)
}
/// Bytes of zeros per background write: large enough that the fdatasync after it (which
/// journals the conversion of its extents) is rare, small enough that an append
/// arriving meanwhile waits at most about a millisecond.
pub const ZERO_CHUNK_BYTES: u64 = 1 << 20;

pub fn file_name(base_offset: i64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

/// Parses `00000000000000001234.log` into 1234.
pub fn parse_log_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// A batch accepted by `append` and waiting for the writer: patched bytes and header.
#[derive(Debug, Clone)]
pub struct PendingBatch {
    pub header: BatchHeader,
    pub data: Bytes,
}

/// One DMA write, planned under the partition borrow and executed outside it.
pub struct WritePlan {
    pub file: LogFile,
    pub pos: u64,
    pub len: usize,
    tail: Vec<u8>,
    pub batches: Vec<PendingBatch>,
    pub new_size: u64,
    /// `Some(n)`: preallocate the file to `n` bytes before writing.
    pub allocate_to: Option<u64>,
}

/// One background write of zeros ahead of the data, planned like a [`WritePlan`].
pub struct ZeroPlan {
    pub file: LogFile,
    /// The segment it was planned for (the active one must still be it when applied).
    pub base_offset: i64,
    pub pos: u64,
    pub len: usize,
    /// `Some(n)`: preallocate the file to `n` bytes before writing.
    pub allocate_to: Option<u64>,
}

impl WritePlan {
    /// Bytes of the rewritten tail page in front of the new batches.
    pub fn tail_len(&self) -> usize {
        self.tail.len()
    }

    /// Copies the tail page and the batches into the DMA buffer, zero-pads the rest, and
    /// returns the new tail page content.
    pub fn fill(&self, buf: &mut [u8]) -> Vec<u8> {
        debug_assert_eq!(buf.len(), self.len);
        buf[..self.tail.len()].copy_from_slice(&self.tail);
        let mut at = self.tail.len();
        for batch in &self.batches {
            buf[at..at + batch.data.len()].copy_from_slice(&batch.data);
            at += batch.data.len();
        }
        debug_assert_eq!(self.pos + at as u64, self.new_size);
        buf[at..].fill(0);
        let tail_start = (align_down(self.new_size) - self.pos) as usize;
        buf[tail_start..at].to_vec()
    }
}

pub struct Segment {
    pub base_offset: i64,
    log_path: PathBuf,
    file: LogFile,
    /// Logical end: bytes of whole, written batches.
    size: u64,
    /// File length reserved by preallocation (or the file size found at open).
    allocated: u64,
    /// Bytes from the start known written on disk, with data or with zeros (page
    /// aligned); writes below it overwrite written blocks.
    zeroed: u64,
    /// Bytes `[align_down(size), size)`, rewritten in front of the next append.
    tail: Vec<u8>,
    pub index: SegmentIndex,
    /// One past the last offset in the segment; `base_offset` while empty.
    next_offset: i64,
    /// Bound on `allocated` (the partition's segment.bytes).
    segment_bytes: u64,
    /// Wall-clock ms of the first write into this segment (or of the open that found it
    /// active with data): `segment.ms` counts from here.
    first_write_ms: Option<i64>,
    /// Wall-clock ms of the last append, known for segments written since the open;
    /// for others, the `.log` file's modification time once retention has looked it up.
    /// Time retention never counts from earlier than this.
    last_write_ms: Option<i64>,
}

impl Segment {
    /// Creates an empty segment file in `dir` and makes its directory entry durable.
    pub async fn create(
        dir: &Path,
        base_offset: i64,
        index_interval_bytes: u32,
        segment_bytes: u64,
    ) -> Result<Segment, StorageError> {
        let log_path = dir.join(file_name(base_offset, "log"));
        let file = LogFile::open(&log_path, true).await?;
        super::io::sync_dir(dir).await?;
        Ok(Segment {
            base_offset,
            log_path,
            file,
            size: 0,
            allocated: 0,
            zeroed: 0,
            tail: Vec::new(),
            index: SegmentIndex::new(base_offset, index_interval_bytes),
            next_offset: base_offset,
            segment_bytes,
            first_write_ms: None,
            last_write_ms: None,
        })
    }

    /// A segment as recovery found it: `size` bytes of whole batches ending at
    /// `next_offset` (for a segment it did not read, the file's length, truncated to
    /// the logical size when it was finished), `index` rebuilt or loaded from its files.
    /// It keeps no tail page, so it cannot be appended to until
    /// [`Segment::set_tail`] gives it one (recovery does, for the active segment only).
    pub fn sealed(
        file: LogFile,
        base_offset: i64,
        size: u64,
        index: SegmentIndex,
        next_offset: i64,
        segment_bytes: u64,
    ) -> Segment {
        assert!(next_offset >= base_offset, "segment ends before it starts");
        Segment {
            base_offset,
            log_path: file.path().to_owned(),
            file,
            size,
            allocated: size,
            zeroed: align_up(size),
            tail: Vec::new(),
            index,
            next_offset,
            segment_bytes,
            first_write_ms: None,
            last_write_ms: None,
        }
    }

    /// Gives a recovered segment the content of its partial last page, which the next
    /// append rewrites, making it appendable.
    pub fn set_tail(&mut self, tail: Vec<u8>) {
        assert_eq!(tail.len() as u64, self.size - align_down(self.size));
        self.tail = tail;
    }

    /// Heap bytes this segment keeps in memory: its indexes and the tail page kept for
    /// the next append (for the memory gauges).
    pub fn heap_bytes(&self) -> usize {
        self.index.heap_bytes() + self.tail.capacity()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// When `segment.ms` started counting for this segment, if it has data.
    pub fn first_write_ms(&self) -> Option<i64> {
        self.first_write_ms
    }

    /// Starts the `segment.ms` clock of a segment found active with data at open.
    pub fn start_age_clock(&mut self, now_ms: i64) {
        if self.size > 0 && self.first_write_ms.is_none() {
            self.first_write_ms = Some(now_ms);
        }
    }

    /// A new segment.bytes (topic config change) for the roll decision.
    /// When data last went into the segment, if known (see the field).
    pub fn last_write_ms(&self) -> Option<i64> {
        self.last_write_ms
    }

    /// Records the `.log` file's modification time for a segment found on disk.
    pub fn learn_last_write_ms(&mut self, modified_ms: i64) {
        self.last_write_ms.get_or_insert(modified_ms);
    }

    pub fn set_segment_bytes(&mut self, segment_bytes: u64) {
        self.segment_bytes = segment_bytes;
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn file(&self) -> &LogFile {
        &self.file
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn index_path(&self) -> PathBuf {
        self.log_path.with_extension("index")
    }

    pub fn time_index_path(&self) -> PathBuf {
        self.log_path.with_extension("timeindex")
    }

    /// Whether `batch` must go to a new segment when `planned_bytes` are already planned
    /// after the logical end: the segment is not empty and would grow past
    /// `segment_bytes`, or the batch's offsets would not fit the index's relative form.
    pub fn must_roll_for(&self, planned_bytes: u64, batch: &BatchHeader) -> bool {
        let size = self.size + planned_bytes;
        size > 0
            && (size + batch.size() as u64 > self.segment_bytes
                || batch.last_offset() - self.base_offset > i32::MAX as i64)
    }

    /// Plans writing `batches` (contiguous, starting at `next_offset`) after the logical end.
    pub fn plan_write(&self, batches: Vec<PendingBatch>) -> WritePlan {
        let pos = align_down(self.size);
        assert_eq!(
            pos + self.tail.len() as u64,
            self.size,
            "append to a sealed segment"
        );
        let data_bytes: u64 = batches.iter().map(|b| b.data.len() as u64).sum();
        let new_size = self.size + data_bytes;
        let end = align_up(new_size);
        let allocate_to = self.allocate_for(end);
        WritePlan {
            file: self.file.clone(),
            pos,
            len: (end - pos) as usize,
            tail: self.tail.clone(),
            batches,
            new_size,
            allocate_to,
        }
    }

    /// The preallocation a write ending at `end` needs first, if any.
    fn allocate_for(&self, end: u64) -> Option<u64> {
        (end > self.allocated).then(|| {
            let step = end
                .next_power_of_two()
                .clamp(PREALLOCATE_STEP_MIN_BYTES, PREALLOCATE_STEP_BYTES);
            let stepped = end.div_ceil(step) * step;
            stepped.min(align_up(self.segment_bytes).max(end))
        })
    }

    /// Plans the next background write of zeros: from the first page past both the
    /// data and what is already written, one chunk, never past the segment's bound.
    /// `None` when `ahead_bytes` (normally [`ZERO_AHEAD_BYTES`]) past the end are
    /// already written.
    pub fn plan_zero(&self, ahead_bytes: u64) -> Option<ZeroPlan> {
        let ahead = zero_ahead_for(self.size, ahead_bytes);
        let limit = align_up(self.segment_bytes).min(align_up(self.size + ahead));
        let pos = self.zeroed.max(align_up(self.size));
        if pos >= limit || pos - self.size >= ahead {
            return None;
        }
        let end = (pos + ZERO_CHUNK_BYTES).min(limit);
        Some(ZeroPlan {
            file: self.file.clone(),
            base_offset: self.base_offset,
            pos,
            len: (end - pos) as usize,
            allocate_to: self.allocate_for(end),
        })
    }

    /// Records a completed write of zeros.
    pub fn apply_zero(&mut self, plan: &ZeroPlan) {
        assert_eq!(
            plan.base_offset, self.base_offset,
            "zeros for another segment"
        );
        assert!(
            plan.pos >= align_up(self.size),
            "zeros planned at {} would overwrite data ending at {}",
            plan.pos,
            self.size
        );
        if let Some(allocated) = plan.allocate_to {
            self.allocated = self.allocated.max(allocated);
        }
        self.zeroed = self.zeroed.max(plan.pos + plan.len as u64);
    }

    /// How far the file is known written (data or zeros).
    pub fn zeroed(&self) -> u64 {
        self.zeroed
    }

    /// Records a completed write: new logical end, tail page, index entries.
    pub fn apply_write(&mut self, plan: &WritePlan, new_tail: Vec<u8>) {
        assert_eq!(plan.pos, align_down(self.size), "concurrent segment writes");
        if let Some(allocated) = plan.allocate_to {
            self.allocated = self.allocated.max(allocated);
        }
        self.zeroed = self.zeroed.max(plan.pos + plan.len as u64);
        let mut position = self.size;
        for batch in &plan.batches {
            assert_eq!(
                batch.header.base_offset, self.next_offset,
                "segment {} got batch {} at end offset {}",
                self.base_offset, batch.header.base_offset, self.next_offset
            );
            self.index.on_batch(&batch.header, position as u32);
            position += batch.data.len() as u64;
            self.next_offset = batch.header.last_offset() + 1;
        }
        assert_eq!(position, plan.new_size);
        let now_ms = crate::util::now_ms();
        self.first_write_ms.get_or_insert(now_ms);
        self.last_write_ms = Some(now_ms);
        self.size = plan.new_size;
        self.tail = new_tail;
        if let Some(&(_, last_position)) = self.index.offsets.entries().last() {
            assert!(
                (last_position as u64) < self.size,
                "index points past the log end"
            );
        }
    }

    /// Everything needed to finish the segment (roll or close) without the borrow.
    pub fn finish_plan(&self) -> FinishPlan {
        FinishPlan {
            file: self.file.clone(),
            size: self.size,
            index_path: self.index_path(),
            index: self.index.offsets.to_bytes(),
            time_index_path: self.time_index_path(),
            time_index: self.index.finished_times().to_bytes(),
        }
    }
}

/// Truncate to the logical size, fdatasync, and write both index files.
pub struct FinishPlan {
    file: LogFile,
    size: u64,
    index_path: PathBuf,
    index: Vec<u8>,
    time_index_path: PathBuf,
    time_index: Vec<u8>,
}

impl FinishPlan {
    pub async fn run(self) -> Result<(), StorageError> {
        self.file.truncate(self.size).await?;
        self.file.fdatasync().await?;
        super::io::write_small_file(&self.index_path, self.index).await?;
        super::io::write_small_file(&self.time_index_path, self.time_index).await
    }
}

/// Reads whole batches from `file`, starting the scan at byte `pos` (a batch boundary at
/// or before the batch containing `offset`, from the index) and never reading at or past
/// byte `end` or returning a batch at or past `end_offset` (the high watermark). Returns
/// the batches from the one containing `offset`, up to `max_bytes` but at least one.
pub async fn read_batches(
    file: &LogFile,
    pos: u64,
    end: u64,
    offset: i64,
    end_offset: i64,
    max_bytes: usize,
) -> Result<Vec<Bytes>, StorageError> {
    let scan = Scan {
        pos,
        end,
        offset,
        end_offset,
        max_bytes,
    };
    Ok(read_batches_from(file, scan, None).await?.batches)
}

/// Where `read_batches_from` scans and what it returns.
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    /// A batch boundary at or before the batch containing `offset`.
    pub pos: u64,
    /// Byte bound: nothing at or past it is read.
    pub end: u64,
    pub offset: i64,
    /// Offset bound (the high watermark): no batch starting at or past it is returned.
    pub end_offset: i64,
    pub max_bytes: usize,
}

/// What `read_batches_from` read.
#[derive(Debug, Default)]
pub struct Scanned {
    pub batches: Vec<Bytes>,
    /// The byte just past the last batch returned (where the next sequential read
    /// starts); `scan.pos` if none.
    pub next_pos: u64,
}

/// [`read_batches`], starting from `first` when given: bytes already read from
/// `scan.pos` (read ahead), so the first DMA read is saved; reading continues past them
/// as needed. Stops without another read when the batch after the last one returned
/// would not fit in `max_bytes` anyway (its declared size is known from its header).
pub async fn read_batches_from(
    file: &LogFile,
    scan: Scan,
    mut first: Option<Bytes>,
) -> Result<Scanned, StorageError> {
    let Scan {
        mut pos,
        end,
        offset,
        end_offset,
        max_bytes,
    } = scan;
    let mut out = Scanned {
        batches: Vec::new(),
        next_pos: pos,
    };
    let mut bytes = 0usize;
    let mut chunk = max_bytes.clamp(READ_CHUNK_BYTES, READ_CHUNK_BYTES_MAX);
    while pos < end {
        let buf = match first.take() {
            Some(buf) => buf.slice(..buf.len().min((end - pos) as usize)),
            None => {
                let want = chunk.min((end - pos) as usize);
                let buf = file.read(pos, want).await?;
                crate::metrics::add(crate::metrics::Counter::DmaReads, 1);
                buf
            }
        };
        let mut walker = BatchWalker::new(&buf, VERIFY_CRC_NEVER);
        for (at, header) in walker.by_ref() {
            let size = header.size();
            if header.last_offset() < offset {
                continue;
            }
            if header.base_offset >= end_offset
                || (!out.batches.is_empty() && bytes + size > max_bytes)
            {
                return Ok(out);
            }
            bytes += size;
            out.batches.push(buf.slice(at..at + size));
            out.next_pos = pos + (at + size) as u64;
        }
        let at = walker.valid_len() as u64;
        match walker.stop() {
            None => {}
            Some(&BatchProblem::Incomplete { needed }) if pos + at + needed as u64 <= end => {
                // The next batch is at least `needed` bytes: reading it only to find it
                // does not fit would read up to a whole chunk for nothing.
                if !out.batches.is_empty() && bytes + needed > max_bytes {
                    return Ok(out);
                }
                chunk = chunk.max(needed);
            }
            Some(problem) => return Err(corrupt_on_disk(file, pos + at, problem)),
        }
        pos += at;
    }
    Ok(out)
}

fn corrupt_on_disk(file: &LogFile, pos: u64, problem: &BatchProblem) -> StorageError {
    StorageError::io(
        file.path(),
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("invalid batch at byte {pos} of a validated segment: {problem}"),
        ),
    )
}

const _: () = assert!(PREALLOCATE_STEP_BYTES.is_multiple_of(PAGE_BYTES));
const _: () = assert!(ZERO_CHUNK_BYTES.is_multiple_of(PAGE_BYTES));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::{patch_base_offset, split_and_validate};
    use crate::storage::testutil::{plain, run};

    fn pending(base_offset: i64, count: i32, value_len: usize) -> PendingBatch {
        let mut data = plain(count, value_len);
        patch_base_offset(&mut data, base_offset);
        let header = split_and_validate(&data, usize::MAX).unwrap()[0].header;
        PendingBatch {
            header,
            data: data.freeze(),
        }
    }

    #[test]
    fn names() {
        assert_eq!(file_name(1234, "log"), "00000000000000001234.log");
        assert_eq!(parse_log_file_name("00000000000000001234.log"), Some(1234));
        assert_eq!(parse_log_file_name("00000000000000001234.index"), None);
        assert_eq!(parse_log_file_name("1234.log"), None);
    }

    #[test]
    fn aligned_appends_and_reads() {
        run(async {
            let dir = tempfile::tempdir().unwrap();
            let mut seg = Segment::create(dir.path(), 0, 4096, 1 << 20).await.unwrap();
            let mut expected = Vec::new();
            let mut offset = 0;
            for round in 0..20 {
                let batch = pending(offset, 3, 100 + round * 37);
                offset = batch.header.last_offset() + 1;
                expected.push(batch.data.clone());
                let plan = seg.plan_write(vec![batch]);
                assert_eq!(plan.pos % PAGE_BYTES, 0);
                assert_eq!(plan.len as u64 % PAGE_BYTES, 0);
                if let Some(n) = plan.allocate_to {
                    plan.file.pre_allocate(n).await.unwrap();
                }
                let mut tail = Vec::new();
                plan.file
                    .write_aligned(plan.pos, plan.len, |buf| tail = plan.fill(buf))
                    .await
                    .unwrap();
                seg.apply_write(&plan, tail);
            }
            assert_eq!(seg.next_offset(), 60);
            assert!(!seg.index.offsets.entries().is_empty());
            for target in [0, 1, 30, 31, 59] {
                let (_, pos) = seg.index.offsets.lookup(target);
                let got = read_batches(seg.file(), pos as u64, seg.size(), target, 60, 1)
                    .await
                    .unwrap();
                assert_eq!(got, vec![expected[target as usize / 3].clone()], "{target}");
            }
            let all = read_batches(seg.file(), 0, seg.size(), 0, 60, usize::MAX)
                .await
                .unwrap();
            assert_eq!(all, expected);
            // The high watermark bounds reads.
            let upto = read_batches(seg.file(), 0, seg.size(), 0, 30, usize::MAX)
                .await
                .unwrap();
            assert_eq!(upto.len(), 10);
            let size = seg.size();
            seg.finish_plan().run().await.unwrap();
            assert_eq!(std::fs::metadata(seg.log_path()).unwrap().len(), size);
            assert!(seg.index_path().exists() && seg.time_index_path().exists());
        });
    }

    async fn write(seg: &mut Segment, batch: PendingBatch) {
        let plan = seg.plan_write(vec![batch]);
        if let Some(n) = plan.allocate_to {
            plan.file.pre_allocate(n).await.unwrap();
        }
        let mut tail = Vec::new();
        plan.file
            .write_aligned(plan.pos, plan.len, |buf| tail = plan.fill(buf))
            .await
            .unwrap();
        seg.apply_write(&plan, tail);
    }

    async fn zero(seg: &mut Segment, plan: ZeroPlan) {
        if let Some(n) = plan.allocate_to {
            plan.file.pre_allocate(n).await.unwrap();
        }
        plan.file
            .write_aligned(plan.pos, plan.len, |buf| buf.fill(0))
            .await
            .unwrap();
        seg.apply_zero(&plan);
    }

    #[test]
    fn zeros_go_ahead_of_the_data_never_over_it_and_stop_at_the_bound() {
        run(async {
            let dir = tempfile::tempdir().unwrap();
            let segment_bytes = ZERO_AHEAD_BYTES + 2 * ZERO_CHUNK_BYTES + 100;
            let mut seg = Segment::create(dir.path(), 0, 4096, segment_bytes)
                .await
                .unwrap();
            let first = pending(0, 3, 5000);
            let expected = first.data.clone();
            write(&mut seg, first).await;
            let data_end = align_up(seg.size());
            assert_eq!(seg.zeroed(), data_end, "a data write counts as written");
            let mut chunks = 0;
            while let Some(plan) = seg.plan_zero(ZERO_AHEAD_BYTES) {
                assert!(plan.pos >= data_end, "zeros over data at {}", plan.pos);
                assert_eq!(plan.pos, seg.zeroed(), "zeros leave no gap");
                assert!(plan.pos + plan.len as u64 <= align_up(segment_bytes));
                zero(&mut seg, plan).await;
                chunks += 1;
                assert!(chunks < 10, "zeroing never ends");
            }
            assert!(seg.zeroed() - seg.size() >= zero_ahead_for(seg.size(), ZERO_AHEAD_BYTES));
            assert!(
                seg.zeroed() <= align_up(seg.size() + ZERO_AHEAD_MIN_BYTES),
                "a small segment gets only ZERO_AHEAD_MIN_BYTES of zeros"
            );
            // The data is intact and the zeros read as nothing more.
            let all = read_batches(seg.file(), 0, seg.size(), 0, i64::MAX, usize::MAX)
                .await
                .unwrap();
            assert_eq!(all, vec![expected]);
            let bytes = std::fs::read(seg.log_path()).unwrap();
            assert!(bytes[seg.size() as usize..seg.zeroed() as usize]
                .iter()
                .all(|&b| b == 0));

            // Appends catch up with the zeros until the segment's bound stops them.
            let mut offset = 3;
            while seg.size() + 70_000 < segment_bytes {
                let batch = pending(offset, 7, 10_000);
                offset = batch.header.last_offset() + 1;
                write(&mut seg, batch).await;
                while let Some(plan) = seg.plan_zero(ZERO_AHEAD_BYTES) {
                    assert!(plan.pos >= align_up(seg.size()));
                    zero(&mut seg, plan).await;
                }
            }
            assert_eq!(seg.zeroed(), align_up(segment_bytes));
            assert!(seg.plan_zero(ZERO_AHEAD_BYTES).is_none());
        });
    }

    #[test]
    fn a_recovered_segment_counts_only_its_data_as_written() {
        run(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(file_name(0, "log"));
            let file = LogFile::open(&path, true).await.unwrap();
            let index = SegmentIndex::new(0, 4096);
            let seg = Segment::sealed(file, 0, 5000, index, 10, 1 << 30);
            assert_eq!(seg.zeroed(), align_up(5000));
            let plan = seg.plan_zero(ZERO_AHEAD_BYTES).unwrap();
            assert_eq!(
                (plan.pos, plan.pos + plan.len as u64),
                (align_up(5000), align_up(5000 + ZERO_AHEAD_MIN_BYTES))
            );
            assert_eq!(
                plan.allocate_to,
                Some(512 << 10),
                "allocated to the next power of two"
            );
        });
    }
}
