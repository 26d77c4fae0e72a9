//! Segment reads with read-ahead per sequential reader (issue 13 item 3).
//!
//! ```text
//!  fetch at offset o ──▶ stream whose next_offset == o?  ── yes ─▶ await its chunk (read
//!                        (same file, same generation)             while the last answer
//!                               │ no                              was being sent), scan
//!                               ▼                                 from its exact position
//!                        index lookup, DMA read                         │
//!                               │                                       ▼
//!                               └──▶ remember the stream at next_offset; if it was
//!                                    sequential, start reading its next chunk now
//! ```
//!
//! A consumer that reads a partition from disk asks for the batches right after the
//! ones it got last time. Its *stream* is keyed by that next offset and the segment
//! file: a read that continues a stream takes the chunk already read (or in flight) and
//! starts the next one, so the disk works while the previous answer is on the wire. A
//! read that matches no stream is remembered without reading ahead (a one-off read
//! costs no extra I/O); the second read in sequence starts the read-ahead.
//!
//! Size: one chunk per stream, sized like that stream's own reads (its `max_bytes`,
//! between `READ_CHUNK_BYTES` and `READ_CHUNK_BYTES_MAX`), at most
//! [`READ_AHEAD_STREAMS_MAX`] streams per partition (least recently used dropped).
//!
//! Correctness: a chunk holds bytes of the file below its logical size when the read
//! started; those bytes never change while the file is the same (appends only add
//! after them, and a segment the cleaner rewrites is a new file, compared by identity).
//! A truncation does change them: it bumps `generation` (dropping every stream) when it
//! starts and when it ends, and no read-ahead starts while one runs. Chunks are scanned
//! with the same high-watermark and byte bounds as a fresh read.

use std::collections::VecDeque;

use bytes::Bytes;
use glommio::Task;

use super::{PartitionLog, State};
use crate::storage::io::LogFile;
use crate::storage::segment::{read_batches_from, Scan, READ_CHUNK_BYTES, READ_CHUNK_BYTES_MAX};
use crate::storage::StorageError;

/// Sequential readers of one partition remembered at a time (consumer groups, a
/// follower, a tool): past this the least recently used stream is dropped.
pub const READ_AHEAD_STREAMS_MAX: usize = 4;

struct Stream {
    file: LogFile,
    /// The offset the next read of this stream asks for ...
    next_offset: i64,
    /// ... and the byte of `file` where its batch starts.
    pos: u64,
    generation: u64,
    /// The chunk at `pos`, being read or read; `None` until the stream is sequential.
    chunk: Option<Task<Result<Bytes, StorageError>>>,
    /// The length `chunk` reads (0 without one): what it holds once read.
    chunk_bytes: usize,
}

/// The read-ahead streams of one partition (in its `State`).
#[derive(Default)]
pub(super) struct ReadAhead {
    /// Most recently used last.
    streams: VecDeque<Stream>,
    generation: u64,
}

impl ReadAhead {
    /// Forgets every stream (their in-flight reads are cancelled): the bytes of the
    /// log may change (a truncation).
    pub(super) fn invalidate(&mut self) {
        self.generation += 1;
        self.streams.clear();
    }

    /// Takes the stream a read at `offset` in `file` continues, if any.
    fn take(&mut self, file: &LogFile, offset: i64) -> Option<Stream> {
        let at = self.streams.iter().position(|s| {
            s.next_offset == offset && s.generation == self.generation && s.file.same_file(file)
        })?;
        self.streams.remove(at)
    }

    fn remember(&mut self, stream: Stream) {
        if self.streams.len() >= READ_AHEAD_STREAMS_MAX {
            self.streams.pop_front();
        }
        self.streams.push_back(stream);
    }

    /// Bytes the streams' chunks hold (or will, once read): the read-ahead part of the
    /// partition's memory (`memory`).
    pub(super) fn chunk_bytes(&self) -> usize {
        self.streams.iter().map(|s| s.chunk_bytes).sum()
    }

    #[cfg(test)]
    pub(super) fn streams(&self) -> usize {
        self.streams.len()
    }
}

/// Forgets the streams whose file is no longer one of the log's segments (retention
/// deleted it, the cleaner replaced it): a stream holds its file open, which would keep
/// a deleted segment's disk space until that reader came back.
pub(super) fn forget_gone_files(st: &mut State) {
    let State {
        read_ahead,
        segments,
        ..
    } = st;
    read_ahead
        .streams
        .retain(|s| segments.iter().any(|g| g.file().same_file(&s.file)));
}

/// Where a read ended: the next sequential read of its stream starts there.
struct Next {
    file: LogFile,
    offset: i64,
    pos: u64,
    /// `ReadAhead::generation` when the read began.
    generation: u64,
}

/// Reads `[pos, pos + len)` of `file` in a task of its own, so the read proceeds while
/// the caller answers its fetch.
fn read_chunk(file: &LogFile, pos: u64, len: usize) -> Task<Result<Bytes, StorageError>> {
    let file = file.clone();
    glommio::spawn_local(async move {
        let buf = file.read(pos, len).await;
        crate::metrics::add(crate::metrics::Counter::DmaReads, 1);
        buf
    })
}

impl PartitionLog {
    /// Reads from the segment holding `offset`, or the next ones if it ends before it
    /// (a gap left by recovery), through the read-ahead streams.
    pub(super) async fn read_segments(
        &self,
        offset: i64,
        high_watermark: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        let mut after_base: Option<i64> = None;
        loop {
            let (file, index_pos, end, stream, generation) = {
                let mut st = self.inner.state.borrow_mut();
                let at = match after_base {
                    None => st
                        .segments
                        .partition_point(|s| s.base_offset <= offset)
                        .saturating_sub(1),
                    Some(base) => match st.segments.iter().position(|s| s.base_offset > base) {
                        Some(at) => at,
                        None => return Ok(Vec::new()),
                    },
                };
                let segment = &st.segments[at];
                if segment.base_offset >= high_watermark {
                    return Ok(Vec::new());
                }
                after_base = Some(segment.base_offset);
                let (_, pos) = segment.index.offsets.lookup(offset);
                let (file, end) = (segment.file().clone(), segment.size());
                let stream = st.read_ahead.take(&file, offset);
                (file, pos as u64, end, stream, st.read_ahead.generation)
            };
            let sequential = stream.is_some();
            let (pos, first) = match stream {
                Some(Stream {
                    pos,
                    chunk: Some(chunk),
                    ..
                }) => match chunk.await {
                    Ok(buf) => (pos, Some(buf)),
                    // Read again below: a real error is reported by that read.
                    Err(_) => (pos, None),
                },
                Some(Stream { pos, .. }) => (pos, None),
                None => (index_pos, None),
            };
            let scan = Scan {
                pos,
                end,
                offset,
                end_offset: high_watermark,
                max_bytes,
            };
            let scanned = match read_batches_from(&file, scan, first).await {
                Ok(scanned) => scanned,
                Err(error) => return Err(self.fail(error)),
            };
            let Some(last) = scanned.batches.last() else {
                continue;
            };
            let header = crate::storage::batch::BatchHeader::parse(last)
                .expect("read_batches_from returns whole batches");
            let chunk = max_bytes.clamp(READ_CHUNK_BYTES, READ_CHUNK_BYTES_MAX);
            let next = Next {
                file,
                offset: header.last_offset() + 1,
                pos: scanned.next_pos,
                generation,
            };
            self.continue_stream(next, chunk, sequential);
            return Ok(scanned.batches);
        }
    }

    /// Remembers the stream that continues at `next` and, if it was `sequential`,
    /// starts reading its next `chunk` bytes. At the end of a sealed segment the stream
    /// continues at the start of the next one.
    fn continue_stream(&self, next: Next, chunk: usize, sequential: bool) {
        let Next {
            file,
            offset: next_offset,
            pos,
            generation,
        } = next;
        let mut st = self.inner.state.borrow_mut();
        // A truncation running, or one that ran during this read: the position may not
        // be where `next_offset` is any more.
        if st.truncating.is_some() || st.read_ahead.generation != generation {
            return;
        }
        let Some(at) = st.segments.iter().position(|s| s.file().same_file(&file)) else {
            return; // the segment was deleted or replaced meanwhile
        };
        let (file, pos, end) = if pos < st.segments[at].size() {
            (file, pos, st.segments[at].size())
        } else {
            match st.segments.get(at + 1) {
                Some(next) if next.base_offset == next_offset => {
                    (next.file().clone(), 0, next.size())
                }
                _ => return,
            }
        };
        let chunk_bytes = chunk.min(end.saturating_sub(pos) as usize);
        let chunk = (sequential && pos < end && next_offset < st.written_offset)
            .then(|| read_chunk(&file, pos, chunk_bytes));
        let chunk_bytes = if chunk.is_some() { chunk_bytes } else { 0 };
        st.read_ahead.remember(Stream {
            file,
            next_offset,
            pos,
            generation,
            chunk,
            chunk_bytes,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use bytes::Bytes;

    use super::super::{LogConfig, PartitionLog};
    use crate::storage::batch::BatchHeader;
    use crate::storage::io::faults::dma_reads;
    use crate::storage::testutil::{plain, run};

    /// Small segments and no cache: every read goes to the segment files.
    async fn open(dir: &Path) -> PartitionLog {
        let config = LogConfig {
            segment_bytes: 64 << 10,
            index_interval_bytes: 1024,
            cache_bytes_max: 0,
            ..LogConfig::default()
        };
        PartitionLog::open(dir, "orders", 3, config, 0, 0)
            .await
            .unwrap()
    }

    /// Appends `n` batches of 3 records with values of `value_len` + i bytes.
    async fn fill(log: &PartitionLog, n: usize, value_len: usize) {
        for i in 0..n {
            log.append(plain(3, value_len + i)).unwrap();
        }
        log.wait_written(log.log_end_offset() - 1).await.unwrap();
    }

    /// Reads from `offset` to the high watermark, `max_bytes` per read, as a consumer
    /// does; returns the batches and how many reads it took.
    async fn consume(log: &PartitionLog, mut offset: i64, max_bytes: usize) -> (Vec<Bytes>, u64) {
        let (mut out, mut reads) = (Vec::new(), 0);
        while offset < log.high_watermark() {
            let batches = log.read(offset, max_bytes).await.unwrap().batches;
            reads += 1;
            let last = BatchHeader::parse(batches.last().unwrap()).unwrap();
            offset = last.last_offset() + 1;
            out.extend(batches);
        }
        (out, reads)
    }

    /// The same batches, one read per batch through a fresh log (no streams shared).
    async fn one_by_one(dir: &Path) -> Vec<Bytes> {
        let log = open(dir).await;
        let mut out = Vec::new();
        let mut offset = 0;
        while offset < log.high_watermark() {
            let batch = log.read(offset, 1).await.unwrap().batches.remove(0);
            offset = BatchHeader::parse(&batch).unwrap().last_offset() + 1;
            out.push(batch);
            log.inner.state.borrow_mut().read_ahead.invalidate();
        }
        log.close().await.unwrap();
        out
    }

    #[test]
    fn a_sequential_reader_gets_every_batch_once_across_segments_with_one_read_each() {
        run(async {
            let dir = tempfile::tempdir().unwrap();
            let log = open(dir.path()).await;
            fill(&log, 300, 900).await;
            let segments = log.inner.state.borrow().segments.len();
            assert!(segments > 3, "{segments} segments");
            let before = dma_reads();
            let (read, reads) = consume(&log, 0, 16 << 10).await;
            let dma = dma_reads() - before;
            // At most one DMA read per consumer read (the read ahead replaces the read
            // of the next one; one left in flight at the end), plus a first read per
            // segment for a reader that is not yet a stream.
            assert!(dma <= reads + 2, "{dma} DMA reads for {reads} reads");
            assert_eq!(
                log.inner.state.borrow().read_ahead.streams(),
                0,
                "read to the end"
            );
            log.close().await.unwrap();
            assert_eq!(read, one_by_one(dir.path()).await);
        });
    }

    #[test]
    fn a_one_off_read_reads_nothing_ahead_and_streams_are_bounded() {
        run(async {
            let dir = tempfile::tempdir().unwrap();
            let log = open(dir.path()).await;
            fill(&log, 100, 900).await;
            let before = dma_reads();
            log.read(40, 4096).await.unwrap();
            glommio::timer::sleep(Duration::from_millis(20)).await;
            assert_eq!(dma_reads() - before, 1, "no read ahead for a single read");
            for start in [0, 30, 60, 90, 120, 150] {
                log.read(start, 4096).await.unwrap();
            }
            assert_eq!(
                log.inner.state.borrow().read_ahead.streams(),
                super::READ_AHEAD_STREAMS_MAX
            );
            log.close().await.unwrap();
        });
    }

    #[test]
    fn retention_drops_the_streams_on_deleted_segments() {
        run(async {
            let dir = tempfile::tempdir().unwrap();
            let log = open(dir.path()).await;
            fill(&log, 300, 900).await;
            // Two sequential reads at the start: a stream on the first segment.
            let first = log.read(0, 2048).await.unwrap().batches;
            let next = BatchHeader::parse(first.last().unwrap())
                .unwrap()
                .last_offset()
                + 1;
            log.read(next, 2048).await.unwrap();
            assert_eq!(log.inner.state.borrow().read_ahead.streams(), 1);
            log.delete_records_before(log.high_watermark() - 30)
                .await
                .unwrap();
            log.enforce_retention(0).await.unwrap();
            assert!(log.log_start_offset() > next);
            assert_eq!(log.inner.state.borrow().read_ahead.streams(), 0);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn a_truncation_drops_the_streams_so_rewritten_offsets_read_the_new_data() {
        run(async {
            let dir = tempfile::tempdir().unwrap();
            let log = open(dir.path()).await;
            fill(&log, 40, 500).await;
            // Two sequential reads: the second reads ahead from the batch after it.
            let first = log.read(0, 2048).await.unwrap().batches;
            let next = BatchHeader::parse(first.last().unwrap())
                .unwrap()
                .last_offset()
                + 1;
            let second = log.read(next, 2048).await.unwrap().batches;
            let cut = BatchHeader::parse(second.last().unwrap())
                .unwrap()
                .last_offset()
                + 1;
            assert_eq!(log.inner.state.borrow().read_ahead.streams(), 1);
            log.truncate_to(cut).await.unwrap();
            assert_eq!(log.inner.state.borrow().read_ahead.streams(), 0);
            // Different sizes at the same offsets.
            fill(&log, 5, 3000).await;
            let after = log.read(cut, 1).await.unwrap().batches;
            let header = BatchHeader::parse(&after[0]).unwrap();
            assert_eq!(header.base_offset, cut);
            assert!(
                after[0].len() > 9000,
                "the new batch, {} bytes",
                after[0].len()
            );
            log.close().await.unwrap();
        });
    }
}
