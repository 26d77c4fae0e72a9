//! `PartitionLog`: one partition's log, owned by one shard.
//!
//! ```text
//!  append() ──patch offsets──▶ pending ──writer task──▶ active segment (.log, O_DIRECT)
//!   (sync, no I/O)             (VecDeque)  one DMA write per   │  then cache.push()
//!                                          round, fdatasync    ▼
//!                                          if asked     written_offset = high watermark
//!  read() ◀── cache (no copy) or segment DMA read (index lookup) ── never past the HW
//! ```
//!
//! Concurrency rules: the handle is `Rc<Inner>` (cheap to clone, `!Send`), used by many
//! tasks of the owning shard. All state is in one `RefCell`, borrowed only between
//! awaits, never across one. Offsets are assigned in `append`, so the order of `append`
//! calls is the log order. One writer task per partition at a time (`writer_running`),
//! spawned on demand; it is the only code that mutates segments. Each round it takes
//! everything pending (up to [`WRITE_BYTES_MAX`]) into one write, so appends arriving
//! during a write are grouped into the next one (group commit).
//!
//! Waiters (`wait_written`, `wait_durable`, `wait_for_data`, close) park on oneshot
//! channels with the offset they need; the writer completes only those it satisfied.
//! Waiters whose future was dropped are pruned as the list grows (see `Waiters`), so
//! abandoned long-polls do not pile up.
//!
//! Producer state is kept twice: `producers` includes batches accepted but not yet
//! written (append checks against it), `written_producers` only written ones. The
//! latter is what a snapshot file records at a segment roll (at the new segment's base)
//! and at close (at the log end), so recovery replays only the log after the snapshot.
//!
//! In a cluster (`replica`, `truncate`): followers append the leader's batches as they
//! are (`append_replicated`, same queue and writer), consumers read up to the
//! replication high watermark while followers read up to the written end, and
//! `truncate_to` cuts a diverged suffix with the writer stopped.
//!
//! After an I/O error the log is failed: the error is kept and every later append, read
//! and wait returns it (the log dir is offline; recovery is for a later issue).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use super::batch::{
    patch_base_offset, patch_leader_epoch, split_and_validate, stamp_log_append_time, BatchHeader,
    ValidBatch,
};
use super::cache::BatchCache;
use super::leader_epoch::LeaderEpochCache;
use super::producer_state::{AbortedTxn, Check, ProducerState};
use super::recovery::{self, Geometry};
use super::segment::{PendingBatch, Segment, WritePlan, ZeroPlan};
use super::validate::{validate_produced, TimestampRules};
use super::{io, records, snapshot, StorageError};
use crate::metrics::{self, Counter, Size, Stage};

mod cleaner;
mod config;
mod epochs;
mod memory;
mod readahead;
mod replica;
mod restart;
mod retention;
mod timestamps;
mod truncate;
mod txn;
mod waiters;
mod writer;
pub use cleaner::{CleanLimits, Cleaned};
pub use config::LogConfig;
pub use memory::LogMemory;
pub use readahead::READ_AHEAD_STREAMS_MAX;
pub use retention::Retained;
pub use txn::encode_marker;
use waiters::Waiters;

/// Bound on the batch bytes of one DMA write (one batch larger than this still goes
/// alone in one write).
pub const WRITE_BYTES_MAX: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// -1 unless the topic uses LogAppendTime (not supported yet: always -1).
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    pub batches: Vec<Bytes>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub last_stable_offset: i64,
    /// read_committed reads: the aborted transactions with data in what was read.
    pub aborted: Vec<AbortedTxn>,
}

/// How far a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadUpto {
    /// Consumers (read_uncommitted).
    HighWatermark,
    /// read_committed consumers.
    LastStable,
    /// Followers.
    Written,
}

/// Counters of one partition's writer, for metrics and for tests that check grouping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// DMA writes issued (each carries every batch pending when it started).
    pub writes: u64,
    /// Batch bytes written (not counting rewritten tail pages and padding).
    pub write_bytes: u64,
    /// fdatasync calls made for acks=all waiters.
    pub fdatasyncs: u64,
    /// Segments finished and replaced by a new one.
    pub rolls: u64,
    /// Bytes of zeros written ahead of the data in the background.
    pub zero_bytes: u64,
    /// fdatasync calls after those zeros (only once some request asked durability).
    pub zero_fdatasyncs: u64,
}

/// The I/O error that failed the log, kept to fail every later call the same way.
#[derive(Debug, Clone)]
struct Failure {
    path: String,
    kind: std::io::ErrorKind,
    message: String,
}

impl Failure {
    fn from_error(dir: &Path, error: &StorageError) -> Failure {
        match error {
            StorageError::Io { path, source } => Failure {
                path: path.clone(),
                kind: source.kind(),
                message: source.to_string(),
            },
            other => Failure {
                path: dir.display().to_string(),
                kind: std::io::ErrorKind::Other,
                message: other.to_string(),
            },
        }
    }

    fn to_error(&self) -> StorageError {
        StorageError::Io {
            path: self.path.clone(),
            source: std::io::Error::new(
                self.kind,
                format!("{}; the log is offline after this error", self.message),
            ),
        }
    }
}

struct State {
    /// In base-offset order; the last one is active. Never empty.
    segments: Vec<Segment>,
    log_start_offset: i64,
    /// Next offset `append` assigns.
    log_end_offset: i64,
    /// Offsets below are written (what followers may read).
    written_offset: i64,
    /// The replication high watermark (`replica`); `None`: a single replica, whose
    /// consumers see everything written.
    replicated_hw: Option<i64>,
    /// Written into the batches `append` takes (`set_leader_epoch`).
    leader_epoch: i32,
    /// The target of the `truncate_to` cutting the log: until it is done, appends
    /// are refused, reads stop there, and retention, the cleaner and close leave the
    /// segment files alone.
    truncating: Option<i64>,
    /// Offsets below are written and fdatasync'd.
    durable_offset: i64,
    /// Offsets below are wanted durable by some waiter.
    durable_wanted: i64,
    /// Some request asked for durability since the log opened (an acks=all produce, a
    /// transaction marker, an offset commit; `flush.messages`). Only then does the
    /// writer fdatasync the zeros it writes ahead (`writer::zero`): an acks=1 log has no
    /// request fdatasync to keep the extent conversion out of, and the periodic
    /// checkpoint flush persists it at the next flush anyway.
    durability_asked: bool,
    pending: VecDeque<PendingBatch>,
    /// Checked and updated by `append`: includes pending batches.
    producers: ProducerState,
    /// The state after the batches below `written_offset`; snapshots are taken of it.
    written_producers: ProducerState,
    cache: BatchCache,
    /// Sequential readers' next chunks, read ahead (`readahead`).
    read_ahead: readahead::ReadAhead,
    failure: Option<Failure>,
    closed: bool,
    writer_running: bool,
    written_waiters: Waiters,
    durable_waiters: Waiters,
    /// Parked until the consumer-visible high watermark passes their offset.
    data_waiters: Waiters,
    /// Woken when the writer task ends (`close` waits for it).
    idle_waiters: Waiters,
    /// Retention asked the writer to roll the active segment although nothing is
    /// pending, so that the expired data in it can be deleted.
    roll_requested: bool,
    /// Where the cleaner stands on this log (`cleaner`).
    cleaner: cleaner::CleanerState,
    stats: LogStats,
    /// Where each leader epoch began (`epochs`).
    epochs: LeaderEpochCache,
    epoch_file: epochs::EpochFile,
    /// This replica follows a leader (`set_follower`): no zeros ahead of its data, and
    /// its writes wait to gather more batches (`writer::follower_hold`).
    follower: bool,
    /// When the oldest pending batch was queued, while any is.
    pending_since: Option<std::time::Instant>,
}

impl State {
    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log has at least one segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log has at least one segment")
    }

    /// What consumers may read up to: the written end, capped by the replication high
    /// watermark when there is one.
    fn consumer_high_watermark(&self) -> i64 {
        match self.replicated_hw {
            Some(hw) => hw.min(self.written_offset),
            None => self.written_offset,
        }
    }

    /// What read_committed consumers may read up to: the high watermark, or the first
    /// offset of the oldest open transaction when that is lower.
    fn last_stable_offset(&self) -> i64 {
        let hw = self.consumer_high_watermark();
        self.producers
            .first_unstable_offset()
            .map_or(hw, |first| first.min(hw))
    }

    fn check_usable(&self, dir: &Path) -> Result<(), StorageError> {
        if let Some(failure) = &self.failure {
            return Err(failure.to_error());
        }
        if self.closed {
            return Err(StorageError::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotConnected, "the log is closed"),
            ));
        }
        Ok(())
    }
}

/// Whether the active segment must roll before more data goes in although it has
/// room: it is older than `segment.ms`, or its offset index is full
/// (`segment.index.bytes`).
fn roll_due(active: &Segment, config: &LogConfig) -> bool {
    if active.size() == 0 {
        return false;
    }
    let aged = active
        .first_write_ms()
        .is_some_and(|t| crate::util::now_ms().saturating_sub(t) >= config.segment_ms);
    aged || active.index.offsets.entries().len() >= config.index_entries_max
}

struct Inner {
    dir: PathBuf,
    /// Replaced whole by `set_config`; read by cloning out, never borrowed across an await.
    config: RefCell<LogConfig>,
    state: RefCell<State>,
    /// Told once when the log fails, with the error (the broker takes the log dir
    /// offline). Called with no borrow held.
    on_failure: RefCell<Option<FailureHook>>,
}

/// What a log calls once when it fails, with the error text.
pub type FailureHook = Box<dyn Fn(&str)>;

/// A cheap-clone handle to one partition's log; see the module comment.
#[derive(Clone)]
pub struct PartitionLog {
    inner: Rc<Inner>,
}

/// One unit of writer work, decided under the borrow.
enum Step {
    Idle,
    Roll,
    Write(WritePlan),
    Sync(io::LogFile, i64),
    /// Nothing else to do: write zeros ahead of the data (see `segment`).
    Zero(ZeroPlan),
    /// A follower's few pending batches wait this long for more (`follower_hold`).
    Hold(std::time::Duration),
}

impl PartitionLog {
    /// Opens (creating if missing) the partition dir `<log_dir>/<topic>-<partition>`,
    /// runs recovery from `recovery_point`.
    pub async fn open(
        log_dir: &Path,
        topic: &str,
        partition: i32,
        config: LogConfig,
        recovery_point: i64,
        log_start_offset: i64,
    ) -> Result<PartitionLog, StorageError> {
        let dir = log_dir.join(format!("{topic}-{partition}"));
        config.validate().map_err(|message| {
            StorageError::io(
                &dir,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, message),
            )
        })?;
        io::create_dir(&dir).await?;
        let geometry = Geometry {
            segment_bytes: config.segment_bytes,
            index_interval_bytes: config.index_interval_bytes,
        };
        let mut recovered =
            recovery::recover(&dir, geometry, recovery_point, log_start_offset).await?;
        if let Some(active) = recovered.segments.last_mut() {
            active.start_age_clock(crate::util::now_ms());
        }
        let leo = recovered.log_end_offset;
        let first_base = recovered.segments[0].base_offset;
        let log_start_offset = log_start_offset.max(first_base).min(leo);
        let (epochs, epochs_changed) =
            epochs::load(&dir, &recovered, log_start_offset, config.leader_epoch).await?;
        if epochs_changed {
            io::write_small_file(
                &dir.join(crate::storage::leader_epoch::CHECKPOINT_FILE),
                epochs.encode(),
            )
            .await?;
        }
        let state = State {
            segments: recovered.segments,
            log_start_offset,
            log_end_offset: leo,
            written_offset: leo,
            replicated_hw: None,
            leader_epoch: config.leader_epoch,
            truncating: None,
            durable_offset: leo,
            durable_wanted: leo,
            durability_asked: false,
            pending: VecDeque::new(),
            written_producers: recovered.producers.clone(),
            producers: recovered.producers,
            cache: BatchCache::new(config.cache_bytes_max),
            read_ahead: readahead::ReadAhead::default(),
            failure: None,
            closed: false,
            writer_running: false,
            written_waiters: Waiters::default(),
            durable_waiters: Waiters::default(),
            data_waiters: Waiters::default(),
            idle_waiters: Waiters::default(),
            roll_requested: false,
            cleaner: cleaner::CleanerState::default(),
            stats: LogStats::default(),
            epochs,
            epoch_file: epochs::EpochFile::default(),
            follower: false,
            pending_since: None,
        };
        Ok(PartitionLog {
            inner: Rc::new(Inner {
                dir,
                config: RefCell::new(config),
                state: RefCell::new(state),
                on_failure: RefCell::new(None),
            }),
        })
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The settings the log runs with now, with the current leader epoch.
    pub fn config(&self) -> LogConfig {
        let mut config = self.inner.config.borrow().clone();
        config.leader_epoch = self.leader_epoch();
        config
    }

    /// Replaces the settings (a topic config changed): later appends, rolls and
    /// retention checks use them; the active segment takes the new segment.bytes. The
    /// leader epoch is not among them: it changes only with `set_leader_epoch`.
    pub fn set_config(&self, config: LogConfig) -> Result<(), String> {
        config.validate()?;
        self.inner
            .state
            .borrow_mut()
            .active_mut()
            .set_segment_bytes(config.segment_bytes);
        *self.inner.config.borrow_mut() = config;
        Ok(())
    }

    /// Validates and idempotence-checks the batches of one Produce partition entry,
    /// patches their offsets in place and queues them for the writer. Synchronous, no
    /// I/O; the order of calls is the log order. A retry of one of a producer's last 5
    /// batches returns the original offsets and queues nothing.
    pub fn append(&self, records: BytesMut) -> Result<AppendInfo, StorageError> {
        let config = self.inner.config.borrow();
        let mut records = records;
        let mut batches = split_and_validate(&records, config.max_message_bytes)?;
        let now_ms = crate::util::now_ms();
        let rules = TimestampRules {
            log_append_time: config.log_append_time,
            now_ms,
            before_max_ms: config.timestamp_before_max_ms,
            after_max_ms: config.timestamp_after_max_ms,
        };
        let inflated_max = records::inflated_bytes_max(config.max_message_bytes);
        validate_produced(&mut records, &mut batches, &rules, inflated_max)?;
        let (mut records, batches) = self.check_records(records, batches, &config)?;
        let mut st = self.inner.state.borrow_mut();
        st.check_usable(&self.inner.dir)?;
        if st.truncating.is_some() {
            return Err(StorageError::Truncated {
                offset: st.log_end_offset,
            });
        }
        let mut accepted: Vec<(BatchHeader, i64)> = Vec::with_capacity(batches.len());
        let mut next_offset = st.log_end_offset;
        for batch in &batches {
            match st.producers.check(&batch.header, &accepted)? {
                Check::Duplicate(original) => {
                    return Ok(AppendInfo {
                        base_offset: original.base_offset,
                        last_offset: original.last_offset,
                        log_append_time_ms: -1,
                        log_start_offset: st.log_start_offset,
                    })
                }
                Check::Append => {
                    accepted.push((batch.header, next_offset));
                    next_offset += batch.header.last_offset_delta as i64 + 1;
                }
            }
        }
        let leader_epoch = st.leader_epoch;
        for (batch, (header, base_offset)) in batches.iter().zip(accepted.iter_mut()) {
            let bytes = &mut records[batch.range.clone()];
            patch_base_offset(bytes, *base_offset);
            patch_leader_epoch(bytes, leader_epoch);
            if config.log_append_time {
                *header = stamp_log_append_time(bytes, header, now_ms);
            }
        }
        let log_append_time_ms = if config.log_append_time { now_ms } else { -1 };
        let epoch_start = st.log_end_offset;
        let write_epochs =
            st.epochs.assign(leader_epoch, epoch_start) && Self::note_epochs_changed(&mut st);
        let data = records.freeze();
        metrics::add(Counter::AppendedBatches, accepted.len() as u64);
        metrics::add(Counter::AppendedBytes, data.len() as u64);
        let first_offset = st.log_end_offset;
        for (batch, &(mut header, base_offset)) in batches.iter().zip(&accepted) {
            assert_eq!(base_offset, st.log_end_offset, "offsets must be contiguous");
            header.base_offset = base_offset;
            header.partition_leader_epoch = leader_epoch;
            st.producers.record(&header, base_offset);
            st.log_end_offset = header.last_offset() + 1;
            st.pending.push_back(PendingBatch {
                header,
                data: data.slice(batch.range.clone()),
            });
        }
        let info = AppendInfo {
            base_offset: first_offset,
            last_offset: st.log_end_offset - 1,
            log_append_time_ms,
            log_start_offset: st.log_start_offset,
        };
        drop(config);
        let spawn_writer = self.claim_writer(&mut st);
        drop(st);
        if spawn_writer {
            self.spawn_writer();
        }
        if write_epochs {
            self.spawn_epoch_writer();
        }
        Ok(info)
    }

    /// What `compression.type` and `cleanup.policy=compact` ask of produced records:
    /// every record keyed (INVALID_RECORD otherwise), batches recompressed to the
    /// topic's codec and validated again. Decompression is bounded by
    /// `records::inflated_bytes_max`; a batch inflating past it is refused.
    fn check_records(
        &self,
        records: BytesMut,
        batches: Vec<ValidBatch>,
        config: &LogConfig,
    ) -> Result<(BytesMut, Vec<ValidBatch>), StorageError> {
        let max = records::inflated_bytes_max(config.max_message_bytes);
        let refused = |error: StorageError| {
            tracing::warn!(dir = %self.inner.dir.display(), %error, "produced batch refused");
            error
        };
        if config.cleanup_compact {
            for batch in &batches {
                records::check_keys_present(&records[batch.range.clone()], max).map_err(refused)?;
            }
        }
        let Some(codec) = config.compression_codec else {
            return Ok((records, batches));
        };
        let differs =
            |b: &ValidBatch| !b.header.is_control() && records::codec_of(&b.header) != codec;
        if !batches.iter().any(differs) {
            return Ok((records, batches));
        }
        let mut out = BytesMut::with_capacity(records.len());
        for batch in &batches {
            let bytes = &records[batch.range.clone()];
            if differs(batch) {
                out.extend_from_slice(&records::recompress(bytes, codec, max).map_err(refused)?);
            } else {
                out.extend_from_slice(bytes);
            }
        }
        let batches = split_and_validate(&out, config.max_message_bytes)?;
        Ok((out, batches))
    }

    pub fn log_start_offset(&self) -> i64 {
        self.inner.state.borrow().log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.inner.state.borrow().log_end_offset
    }

    /// Offsets below are written and fdatasync'd, and every segment wholly below has its
    /// index files written: what the broker checkpoints as the recovery point (open
    /// trusts the segments below it without reading them).
    pub fn recovery_point(&self) -> i64 {
        self.inner.state.borrow().durable_offset
    }

    /// Fdatasyncs everything written so far (the high watermark) and returns the new
    /// recovery point; for the periodic checkpoint, so a restart after acks=1 traffic
    /// is cheap too. Appends still pending are not waited for.
    pub async fn flush(&self) -> Result<i64, StorageError> {
        let written = self.written_offset();
        // Not a request asking for durability: `durability_asked` stays as it is.
        self.wait_durable_recorded(written - 1).await?;
        Ok(self.recovery_point())
    }

    /// `flush.ms` of the topic, without cloning the config (maintenance tick).
    pub fn flush_ms(&self) -> i64 {
        self.inner.config.borrow().flush_ms
    }

    /// `min.insync.replicas` of the topic, without cloning the config (produce path).
    pub fn min_insync_replicas(&self) -> i32 {
        self.inner.config.borrow().min_insync_replicas
    }

    /// Bytes in the partition's segments (DescribeLogDirs, retention.bytes).
    pub fn size_bytes(&self) -> u64 {
        self.inner
            .state
            .borrow()
            .segments
            .iter()
            .map(Segment::size)
            .sum()
    }

    pub fn stats(&self) -> LogStats {
        self.inner.state.borrow().stats
    }

    /// What consumers may read up to: the end of the last completed write, capped by
    /// the replication high watermark when one is set (`replica`).
    pub fn high_watermark(&self) -> i64 {
        self.inner.state.borrow().consumer_high_watermark()
    }

    /// End of the last completed write: no read returns data at or past it.
    pub fn written_offset(&self) -> i64 {
        self.inner.state.borrow().written_offset
    }

    /// The consumer read: batches starting with the one containing `offset`, whole
    /// batches only, up to `max_bytes` but at least one if any exists at `offset`,
    /// never past the high watermark. From the cache when possible (no copy), else from
    /// the segment. Past the written end: OFFSET_OUT_OF_RANGE; between the high
    /// watermark and the written end: nothing yet.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, StorageError> {
        self.read_upto(offset, max_bytes, ReadUpto::HighWatermark)
            .await
    }

    /// The read_committed read: as `read`, but never past the last stable offset, with
    /// the aborted transactions whose data the batches read may hold.
    pub async fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
    ) -> Result<ReadResult, StorageError> {
        let mut result = self
            .read_upto(offset, max_bytes, ReadUpto::LastStable)
            .await?;
        if let Some(last) = result.batches.last().and_then(|b| BatchHeader::parse(b)) {
            result.aborted = self
                .inner
                .state
                .borrow()
                .producers
                .aborted_overlapping(offset, last.last_offset() + 1);
        }
        Ok(result)
    }

    /// What read_committed consumers may read up to (ListOffsets, Fetch).
    pub fn last_stable_offset(&self) -> i64 {
        self.inner.state.borrow().last_stable_offset()
    }

    /// `read` (replica: false) or `read_replica` (true: up to the written end).
    async fn read_upto(
        &self,
        offset: i64,
        max_bytes: usize,
        upto: ReadUpto,
    ) -> Result<ReadResult, StorageError> {
        let (high_watermark, stable, written, log_start_offset) = {
            let st = self.inner.state.borrow();
            st.check_usable(&self.inner.dir)?;
            // During a truncation the data past its target may already be cut.
            let cap = st.truncating.unwrap_or(i64::MAX);
            let hw = st.consumer_high_watermark().min(cap);
            let stable = st.last_stable_offset().min(cap);
            (hw, stable, st.written_offset.min(cap), st.log_start_offset)
        };
        if offset < log_start_offset || offset > written {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                start: log_start_offset,
                end: written,
            });
        }
        let end = match upto {
            ReadUpto::HighWatermark => high_watermark,
            ReadUpto::LastStable => stable,
            ReadUpto::Written => written,
        };
        let mut result = ReadResult {
            batches: Vec::new(),
            high_watermark,
            log_start_offset,
            last_stable_offset: stable,
            aborted: Vec::new(),
        };
        if offset >= end {
            return Ok(result);
        }
        let cached = self.inner.state.borrow().cache.read(offset, max_bytes);
        if let Some(mut batches) = cached {
            metrics::add(Counter::CacheHits, 1);
            // The cache holds everything written; a consumer stops at the HW.
            batches.retain(|b| BatchHeader::parse(b).is_some_and(|h| h.base_offset < end));
            result.batches = batches;
            return Ok(result);
        }
        metrics::add(Counter::CacheMisses, 1);
        result.batches = self.read_segments(offset, end, max_bytes).await?;
        Ok(result)
    }

    /// Flushes, truncates the active segment to its logical size, writes its index
    /// files and the producer snapshot at the log end, and lets the writer task end.
    /// Returns the recovery point (= log end offset) for the checkpoint file; opening
    /// with it reads no segment data beyond the active segment's last index interval.
    pub async fn close(&self) -> Result<i64, StorageError> {
        self.inner.state.borrow_mut().closed = true;
        loop {
            let rx = {
                let mut st = self.inner.state.borrow_mut();
                if !st.writer_running && st.truncating.is_none() {
                    break;
                }
                st.idle_waiters.register(i64::MAX)
            };
            let _ = rx.await;
        }
        let (finish, leo) = {
            let st = self.inner.state.borrow();
            if let Some(failure) = &st.failure {
                return Err(failure.to_error());
            }
            // Appends stopped at `closed`; a truncation that was running has finished.
            let leo = st.log_end_offset;
            assert_eq!(st.written_offset, leo, "writer idle with data pending");
            (st.active().finish_plan(), leo)
        };
        finish.run().await.map_err(|e| self.fail(e))?;
        self.write_snapshot(leo).await;
        self.flush_epochs().await;
        io::sync_dir(&self.inner.dir)
            .await
            .map_err(|e| self.fail(e))?;
        let mut st = self.inner.state.borrow_mut();
        st.durable_offset = leo;
        st.written_waiters.wake_all();
        st.durable_waiters.wake_all();
        st.data_waiters.wake_all();
        Ok(leo)
    }

    /// Closes the log and deletes the partition's directory (DeleteTopics).
    pub async fn delete(self) -> Result<(), StorageError> {
        if let Err(error) = self.close().await {
            tracing::warn!(dir = %self.inner.dir.display(), %error, "deleting a failed log");
        }
        io::remove_dir_all(&self.inner.dir).await
    }

    /// Takes the log offline after an I/O error: keeps the error, drops pending
    /// batches, wakes every waiter, and tells the failure hook (first time only).
    /// Returns the error for the caller to report.
    fn fail(&self, error: StorageError) -> StorageError {
        self.fail_logged(error, true)
    }

    fn fail_logged(&self, error: StorageError, log: bool) -> StorageError {
        let first = {
            let mut st = self.inner.state.borrow_mut();
            let first = st.failure.is_none();
            if first && log {
                tracing::error!(
                    dir = %self.inner.dir.display(),
                    %error,
                    "partition log failed; it answers KAFKA_STORAGE_ERROR from now on"
                );
            }
            if first {
                st.failure = Some(Failure::from_error(&self.inner.dir, &error));
            }
            st.pending.clear();
            st.writer_running = false;
            st.written_waiters.wake_all();
            st.durable_waiters.wake_all();
            st.data_waiters.wake_all();
            st.idle_waiters.wake_all();
            first
        };
        if first {
            if let Some(hook) = self.inner.on_failure.borrow().as_ref() {
                hook(&error.to_string());
            }
        }
        error
    }

    /// Sets what to call when the log fails (see `fail`).
    pub fn set_failure_hook(&self, hook: FailureHook) {
        *self.inner.on_failure.borrow_mut() = Some(hook);
    }

    /// Fails the log because its dir went offline through another partition: every
    /// later call answers the storage error.
    pub fn take_offline(&self, why: &str) {
        if self.inner.state.borrow().failure.is_some() {
            return;
        }
        // The dir's failure was logged once; each partition only at debug level.
        tracing::debug!(dir = %self.inner.dir.display(), "partition offline with its log dir");
        self.fail_logged(
            StorageError::io(&self.inner.dir, std::io::Error::other(why.to_string())),
            false,
        );
    }

    /// Whether the log has failed (or was taken offline).
    pub fn is_failed(&self) -> bool {
        self.inner.state.borrow().failure.is_some()
    }
}

#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod zero_sync_tests;
