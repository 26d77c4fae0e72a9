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
//! After an I/O error the log is failed: the error is kept and every later append, read
//! and wait returns it (the log dir is offline; recovery is for a later issue).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures::channel::oneshot;

use super::batch::{
    patch_base_offset, patch_leader_epoch, split_and_validate, stamp_log_append_time, BatchHeader,
    ValidBatch,
};
use super::cache::{BatchCache, CACHE_BYTES_MAX_DEFAULT};
use super::index::INDEX_INTERVAL_BYTES_DEFAULT;
use super::producer_state::{Check, ProducerState};
use super::recovery::{self, Geometry};
use super::segment::{read_batches, PendingBatch, Segment, WritePlan};
use super::{io, records, snapshot, StorageError};
use crate::metrics::{self, Counter, Size, Stage};

mod cleaner;
mod retention;
mod timestamps;
pub use cleaner::{CleanLimits, Cleaned};
pub use retention::Retained;

/// Bound on the batch bytes of one DMA write (one batch larger than this still goes
/// alone in one write).
pub const WRITE_BYTES_MAX: usize = 4 << 20;

/// Per-partition settings (Kafka topic config names in the comments). The broker builds
/// it from the topic's effective configs (`topic_config::TopicSettings`) and replaces it
/// live with [`PartitionLog::set_config`] when they change.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before the active one grows past this.
    pub segment_bytes: u64,
    /// `segment.ms` less this segment's share of `segment.jitter.ms`: roll the active
    /// segment once its first write is this old.
    pub segment_ms: i64,
    /// `segment.index.bytes` / 8: offset index entries per segment before a roll.
    pub index_entries_max: usize,
    /// `index.interval.bytes`: log bytes between two offset index entries.
    pub index_interval_bytes: u32,
    /// `message.max.bytes`: the largest record batch accepted.
    pub max_message_bytes: usize,
    /// `retention.ms` (-1: none): delete segments whose newest record is older.
    pub retention_ms: i64,
    /// `retention.bytes` (-1: none): delete the oldest segments while larger.
    pub retention_bytes: i64,
    /// `cleanup.policy` contains delete: retention applies.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains compact: keyless records are refused at append and
    /// the cleaner keeps the latest record per key (see `cleaner`).
    pub cleanup_compact: bool,
    /// `compression.type`: the codec bits (0 none .. 4 zstd) produced batches are
    /// recompressed to; `None` for `producer` (kept as sent).
    pub compression_codec: Option<u8>,
    /// `delete.retention.ms`: how long a tombstone outlives the cleaner's first pass.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest dirty record is older is cleaned
    /// whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: dirty share of the cleanable log above which it
    /// is cleaned.
    pub min_cleanable_dirty_ratio: f64,
    /// `message.timestamp.type=LogAppendTime`: batches are stamped at append.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms` / `after.max.ms` (CreateTime only).
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// `flush.messages`: fdatasync once this many messages are written but not synced.
    pub flush_messages: i64,
    /// `flush.ms`: the shard's maintenance tick fdatasyncs a log this often.
    pub flush_ms: i64,
    /// `min.insync.replicas`: one broker holds one replica, so above 1 every acks=all
    /// produce is refused with NOT_ENOUGH_REPLICAS (checked by the broker, not here).
    pub min_insync_replicas: i32,
    /// Bytes of recent batches this partition keeps in memory for tail reads.
    pub cache_bytes_max: usize,
    /// When set, the shard's current per-partition share of its cache budget; it
    /// replaces `cache_bytes_max` at every push, so the shard's total stays bounded as
    /// partitions come and go (see `broker::shard::CacheBudget`).
    pub cache_share: Option<std::rc::Rc<std::cell::Cell<usize>>>,
    /// Written into each batch's partitionLeaderEpoch (a single broker: fixed).
    pub leader_epoch: i32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 604_800_000,
            index_entries_max: 10 << 20 >> 3,
            index_interval_bytes: INDEX_INTERVAL_BYTES_DEFAULT,
            max_message_bytes: 1_048_588,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            cleanup_delete: true,
            cleanup_compact: false,
            compression_codec: None,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            log_append_time: false,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            min_insync_replicas: 1,
            cache_bytes_max: CACHE_BYTES_MAX_DEFAULT,
            cache_share: None,
            leader_epoch: 0,
        }
    }
}

impl LogConfig {
    /// Kafka's bounds: segment.bytes >= 14 and, like every position in an index entry,
    /// below 2 GiB.
    pub fn validate(&self) -> Result<(), String> {
        if !(14..=i32::MAX as u64).contains(&self.segment_bytes) {
            return Err(format!(
                "segment.bytes {} is outside [14, {}]",
                self.segment_bytes,
                i32::MAX
            ));
        }
        Ok(())
    }
}

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
    /// Offsets below are written: the high watermark.
    written_offset: i64,
    /// Offsets below are written and fdatasync'd.
    durable_offset: i64,
    /// Offsets below are wanted durable by some waiter.
    durable_wanted: i64,
    pending: VecDeque<PendingBatch>,
    /// Checked and updated by `append`: includes pending batches.
    producers: ProducerState,
    /// The state after the batches below `written_offset`; snapshots are taken of it.
    written_producers: ProducerState,
    cache: BatchCache,
    failure: Option<Failure>,
    closed: bool,
    writer_running: bool,
    written_waiters: Waiters,
    durable_waiters: Waiters,
    data_waiters: Waiters,
    /// Woken when the writer task ends (`close` waits for it).
    idle_waiters: Waiters,
    /// Retention asked the writer to roll the active segment although nothing is
    /// pending, so that the expired data in it can be deleted.
    roll_requested: bool,
    /// Where the cleaner stands on this log (`cleaner`).
    cleaner: cleaner::CleanerState,
    stats: LogStats,
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

/// Kafka's CreateTime bounds (`message.timestamp.before.max.ms` / `after.max.ms`),
/// checked on the batch's first (base) and largest timestamps without decompressing.
fn check_create_time(
    header: &BatchHeader,
    now_ms: i64,
    config: &LogConfig,
) -> Result<(), StorageError> {
    let earliest = now_ms.saturating_sub(config.timestamp_before_max_ms);
    let latest = now_ms.saturating_add(config.timestamp_after_max_ms);
    for ts in [header.base_timestamp, header.max_timestamp] {
        // -1 is "no timestamp"; Kafka does not bound it.
        if ts != -1 && (ts < earliest || ts > latest) {
            return Err(StorageError::InvalidTimestamp(format!(
                "Timestamp {ts} of a record batch is out of range. The timestamp should be within [{earliest}, {latest}]"
            )));
        }
    }
    Ok(())
}

/// Below this many waiters, registering does not bother pruning abandoned ones.
const WAITERS_PRUNE_MIN: usize = 64;

/// Tasks parked until some offset is reached. Each waiter keeps the offset it needs
/// passed, and is woken only once that happens (or on failure and close). A waiter
/// whose future was dropped is pruned when the list has doubled since the last prune,
/// so abandoned long-polls cost amortised O(1) and never accumulate.
#[derive(Default)]
struct Waiters {
    list: Vec<(i64, oneshot::Sender<()>)>,
    prune_at_len: usize,
}

impl Waiters {
    /// Parks a waiter until an offset greater than `offset` is reached.
    fn register(&mut self, offset: i64) -> oneshot::Receiver<()> {
        if self.list.len() >= self.prune_at_len.max(WAITERS_PRUNE_MIN) {
            self.list.retain(|(_, tx)| !tx.is_canceled());
            self.prune_at_len = 2 * self.list.len();
        }
        let (tx, rx) = oneshot::channel();
        self.list.push((offset, tx));
        rx
    }

    /// Wakes the waiters whose offset is below `end`.
    fn wake_below(&mut self, end: i64) {
        for (_, tx) in self.list.extract_if(.., |(offset, _)| *offset < end) {
            let _ = tx.send(());
        }
    }

    /// Wakes everyone; each re-checks the state it waits on.
    fn wake_all(&mut self) {
        for (_, tx) in self.list.drain(..) {
            let _ = tx.send(());
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.list.len()
    }
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
        let state = State {
            segments: recovered.segments,
            log_start_offset: log_start_offset.max(first_base).min(leo),
            log_end_offset: leo,
            written_offset: leo,
            durable_offset: leo,
            durable_wanted: leo,
            pending: VecDeque::new(),
            written_producers: recovered.producers.clone(),
            producers: recovered.producers,
            cache: BatchCache::new(config.cache_bytes_max),
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

    /// The settings the log runs with now.
    pub fn config(&self) -> LogConfig {
        self.inner.config.borrow().clone()
    }

    /// Replaces the settings (a topic config changed): later appends, rolls and
    /// retention checks use them; the active segment takes the new segment.bytes.
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
        let batches = split_and_validate(&records, config.max_message_bytes)?;
        let (mut records, batches) = self.check_records(records, batches, &config)?;
        let now_ms = crate::util::now_ms();
        if !config.log_append_time {
            for batch in &batches {
                check_create_time(&batch.header, now_ms, &config)?;
            }
        }
        let mut st = self.inner.state.borrow_mut();
        st.check_usable(&self.inner.dir)?;
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
        let leader_epoch = config.leader_epoch;
        for (batch, (header, base_offset)) in batches.iter().zip(accepted.iter_mut()) {
            let bytes = &mut records[batch.range.clone()];
            patch_base_offset(bytes, *base_offset);
            patch_leader_epoch(bytes, leader_epoch);
            if config.log_append_time {
                *header = stamp_log_append_time(bytes, header, now_ms);
            }
        }
        let log_append_time_ms = if config.log_append_time { now_ms } else { -1 };
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
        if self.claim_writer(&mut st) {
            drop(st);
            self.spawn_writer();
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

    /// Resolves when everything up to and including `offset` is written (acks=1).
    pub async fn wait_written(&self, offset: i64) -> Result<(), StorageError> {
        loop {
            let rx = {
                let mut st = self.inner.state.borrow_mut();
                if let Some(failure) = &st.failure {
                    return Err(failure.to_error());
                }
                if st.written_offset > offset {
                    return Ok(());
                }
                st.check_usable(&self.inner.dir)?;
                st.written_waiters.register(offset)
            };
            let _ = rx.await;
        }
    }

    /// Resolves when everything up to and including `offset` is written and
    /// fdatasync'd (acks=all).
    pub async fn wait_durable(&self, offset: i64) -> Result<(), StorageError> {
        loop {
            let rx = {
                let mut st = self.inner.state.borrow_mut();
                if let Some(failure) = &st.failure {
                    return Err(failure.to_error());
                }
                if st.durable_offset > offset {
                    return Ok(());
                }
                st.check_usable(&self.inner.dir)?;
                st.durable_wanted = st.durable_wanted.max(offset + 1);
                let spawn = self.claim_writer(&mut st);
                let rx = st.durable_waiters.register(offset);
                drop(st);
                if spawn {
                    self.spawn_writer();
                }
                rx
            };
            let _ = rx.await;
        }
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
        let written = self.high_watermark();
        self.wait_durable(written - 1).await?;
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

    /// End of the last completed write: Fetch never returns data at or past it.
    pub fn high_watermark(&self) -> i64 {
        self.inner.state.borrow().written_offset
    }

    /// Batches starting with the one containing `offset`, whole batches only, up to
    /// `max_bytes` but at least one if any exists at `offset`, never past the high
    /// watermark. From the cache when possible (no copy), else from the segment.
    pub async fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, StorageError> {
        let (high_watermark, log_start_offset) = {
            let st = self.inner.state.borrow();
            st.check_usable(&self.inner.dir)?;
            (st.written_offset, st.log_start_offset)
        };
        if offset < log_start_offset || offset > high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                start: log_start_offset,
                end: high_watermark,
            });
        }
        let mut result = ReadResult {
            batches: Vec::new(),
            high_watermark,
            log_start_offset,
        };
        if offset == high_watermark {
            return Ok(result);
        }
        if let Some(batches) = self.inner.state.borrow().cache.read(offset, max_bytes) {
            metrics::add(Counter::CacheHits, 1);
            result.batches = batches;
            return Ok(result);
        }
        metrics::add(Counter::CacheMisses, 1);
        result.batches = self
            .read_segments(offset, high_watermark, max_bytes)
            .await?;
        Ok(result)
    }

    /// Reads from the segment holding `offset`, or the next ones if it ends before it
    /// (a gap left by recovery).
    async fn read_segments(
        &self,
        offset: i64,
        high_watermark: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>, StorageError> {
        let mut after_base: Option<i64> = None;
        loop {
            let (file, pos, end) = {
                let st = self.inner.state.borrow();
                let segment = match after_base {
                    None => {
                        let n = st.segments.partition_point(|s| s.base_offset <= offset);
                        &st.segments[n.saturating_sub(1)]
                    }
                    Some(base) => match st.segments.iter().find(|s| s.base_offset > base) {
                        Some(segment) => segment,
                        None => return Ok(Vec::new()),
                    },
                };
                if segment.base_offset >= high_watermark {
                    return Ok(Vec::new());
                }
                after_base = Some(segment.base_offset);
                let (_, pos) = segment.index.offsets.lookup(offset);
                (segment.file().clone(), pos as u64, segment.size())
            };
            let read = read_batches(&file, pos, end, offset, high_watermark, max_bytes).await;
            match read {
                Ok(batches) if batches.is_empty() => continue,
                Ok(batches) => return Ok(batches),
                Err(error) => return Err(self.fail(error)),
            }
        }
    }

    /// Resolves when `high_watermark() > offset`, or the log fails or closes. Dropping
    /// the future is fine (Fetch long-poll timeouts): its waiter is pruned.
    pub fn wait_for_data(&self, offset: i64) -> impl std::future::Future<Output = ()> + 'static {
        let inner = self.inner.clone();
        async move {
            loop {
                let rx = {
                    let mut st = inner.state.borrow_mut();
                    if st.written_offset > offset || st.failure.is_some() || st.closed {
                        return;
                    }
                    st.data_waiters.register(offset)
                };
                let _ = rx.await;
            }
        }
    }

    /// Flushes, truncates the active segment to its logical size, writes its index
    /// files and the producer snapshot at the log end, and lets the writer task end.
    /// Returns the recovery point (= log end offset) for the checkpoint file; opening
    /// with it reads no segment data beyond the active segment's last index interval.
    pub async fn close(&self) -> Result<i64, StorageError> {
        let leo = {
            let mut st = self.inner.state.borrow_mut();
            st.closed = true;
            st.log_end_offset
        };
        loop {
            let rx = {
                let mut st = self.inner.state.borrow_mut();
                if !st.writer_running {
                    break;
                }
                st.idle_waiters.register(i64::MAX)
            };
            let _ = rx.await;
        }
        let finish = {
            let st = self.inner.state.borrow();
            if let Some(failure) = &st.failure {
                return Err(failure.to_error());
            }
            assert_eq!(st.written_offset, leo, "writer idle with data pending");
            st.active().finish_plan()
        };
        finish.run().await.map_err(|e| self.fail(e))?;
        self.write_snapshot(leo).await;
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

    /// Marks the writer as running if there is work and none is running; the caller
    /// then releases its borrow and calls [`Self::spawn_writer`] (glommio runs a new
    /// task right away, which would find the state still borrowed).
    fn claim_writer(&self, st: &mut State) -> bool {
        let work = !st.pending.is_empty()
            || st.roll_requested
            || (st.durable_wanted > st.durable_offset && st.written_offset > st.durable_offset);
        if work && !st.writer_running && st.failure.is_none() {
            st.writer_running = true;
            return true;
        }
        false
    }

    fn spawn_writer(&self) {
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
        if st.failure.is_some() || (st.pending.is_empty() && !want_sync) {
            st.writer_running = false;
            st.idle_waiters.wake_all();
            return Step::Idle;
        }
        if want_sync {
            return Step::Sync(st.active().file().clone(), st.written_offset);
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
            st.written_producers.record(header, header.base_offset);
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
        }
        st.stats.writes += 1;
        let bytes = plan.new_size - (plan.pos + plan.tail_len() as u64);
        st.stats.write_bytes += bytes;
        metrics::add(Counter::Writes, 1);
        metrics::record_size(Size::WriteBatches, plan.batches.len() as u64);
        metrics::record_size(Size::WriteBytes, bytes);
        st.written_waiters.wake_below(written);
        st.data_waiters.wake_below(written);
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
    async fn write_snapshot(&self, offset: i64) {
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
mod tests {
    use super::*;
    use crate::storage::testutil::{batch, plain, run};
    use std::time::Duration;

    fn config(segment_bytes: u64, cache_bytes_max: usize) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 1024,
            cache_bytes_max,
            ..LogConfig::default()
        }
    }

    async fn open(dir: &Path, config: LogConfig) -> PartitionLog {
        PartitionLog::open(dir, "orders", 3, config, 0, 0)
            .await
            .unwrap()
    }

    /// What a batch looks like in the log once appended at `base_offset`.
    fn patched(mut data: BytesMut, base_offset: i64) -> Bytes {
        patch_base_offset(&mut data, base_offset);
        patch_leader_epoch(&mut data, 0);
        data.freeze()
    }

    /// Appends `n` plain batches of 3 records, returns them as stored.
    async fn fill(log: &PartitionLog, n: usize, value_len: usize) -> Vec<Bytes> {
        let mut stored = Vec::new();
        for i in 0..n {
            let data = plain(3, value_len + i);
            let info = log.append(data.clone()).unwrap();
            assert_eq!(info.last_offset, info.base_offset + 2);
            stored.push(patched(data, info.base_offset));
        }
        log.wait_written(log.log_end_offset() - 1).await.unwrap();
        stored
    }

    async fn read_all(log: &PartitionLog) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.high_watermark() {
            let result = log.read(offset, 1).await.unwrap();
            assert_eq!(result.batches.len(), 1);
            let header = BatchHeader::parse(&result.batches[0]).unwrap();
            assert!(header.base_offset <= offset && offset <= header.last_offset());
            offset = header.last_offset() + 1;
            out.push(result.batches[0].clone());
        }
        out
    }

    fn log_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        files
    }

    fn files_with(dir: &Path, extension: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == extension))
            .collect();
        files.sort();
        files
    }

    /// Appends `n` batches of 3 records of producer 7 (epoch 0) from sequence `seq`,
    /// waits until written; returns them as stored.
    async fn fill_idempotent(log: &PartitionLog, n: usize, seq: i32) -> Vec<Bytes> {
        let mut stored = Vec::new();
        for i in 0..n {
            let data = batch(3, 300, 7, 0, seq + 3 * i as i32);
            let info = log.append(data.clone()).unwrap();
            stored.push(patched(data, info.base_offset));
        }
        log.wait_written(log.log_end_offset() - 1).await.unwrap();
        stored
    }

    /// The producer state after `next_seq`: the last batch is a duplicate with its
    /// original offsets, a gap is refused, the next sequence is accepted (and appended).
    async fn assert_producer_continues(log: &PartitionLog, next_seq: i32, last_base: i64) {
        let retry = log.append(batch(3, 300, 7, 0, next_seq - 3)).unwrap();
        assert_eq!(retry.base_offset, last_base, "duplicate detected");
        assert!(matches!(
            log.append(batch(1, 10, 7, 0, next_seq + 1)),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        let leo = log.log_end_offset();
        let next = log.append(batch(1, 10, 7, 0, next_seq)).unwrap();
        assert_eq!(next.base_offset, leo);
        log.wait_written(leo).await.unwrap();
    }

    async fn open_at(dir: &Path, config: LogConfig, recovery_point: i64) -> PartitionLog {
        PartitionLog::open(dir, "orders", 3, config, recovery_point, 0)
            .await
            .unwrap()
    }

    #[test]
    fn clean_reopen_reads_no_segment_data_and_keeps_producer_state() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(3000, 0)).await;
            let stored = fill_idempotent(&log, 30, 0).await;
            let leo = log.close().await.unwrap();
            let segments = log_files(log.dir()).len();
            assert!(segments >= 8, "{segments} segments");
            let indexes_on_disk: Vec<Vec<u8>> = files_with(log.dir(), "index")
                .iter()
                .map(|p| std::fs::read(p).unwrap())
                .collect();

            let reads = io::faults::dma_reads();
            let log = open_at(tmp.path(), config(3000, 0), leo).await;
            let open_reads = io::faults::dma_reads() - reads;
            // The active segment's end from its last index entry, and its tail page.
            assert!(open_reads <= 2, "a clean open made {open_reads} DMA reads");
            assert_eq!(log.log_end_offset(), leo);
            assert_eq!(log.recovery_point(), leo);
            // Loaded indexes equal rebuilt ones, the active one down to its state.
            let loaded: Vec<SegmentIndexParts> = index_parts(&log);
            let active_loaded = log.inner.state.borrow().active().index.clone();
            log.close().await.unwrap();
            let rebuilt = open_at(tmp.path(), config(3000, 0), 0).await;
            assert_eq!(index_parts(&rebuilt), loaded);
            assert_eq!(rebuilt.inner.state.borrow().active().index, active_loaded);
            rebuilt.close().await.unwrap();
            let indexes_after: Vec<Vec<u8>> = files_with(log.dir(), "index")
                .iter()
                .map(|p| std::fs::read(p).unwrap())
                .collect();
            assert_eq!(indexes_after, indexes_on_disk);

            let log = open_at(tmp.path(), config(3000, 0), leo).await;
            assert_eq!(read_all(&log).await, stored);
            assert_producer_continues(&log, 90, leo - 3).await;
            // An older batch among the last five is still a duplicate too.
            let retry = log.append(batch(3, 300, 7, 0, 81)).unwrap();
            assert_eq!(retry.base_offset, leo - 9);
            log.close().await.unwrap();
        });
    }

    type SegmentIndexParts = (i64, Vec<(u32, u32)>, Vec<(i64, u32)>);

    fn index_parts(log: &PartitionLog) -> Vec<SegmentIndexParts> {
        let st = log.inner.state.borrow();
        st.segments
            .iter()
            .map(|s| {
                (
                    s.base_offset,
                    s.index.offsets.entries().to_vec(),
                    s.index.times.entries().to_vec(),
                )
            })
            .collect()
    }

    #[test]
    fn crash_with_a_mid_log_recovery_point_scans_only_after_it() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(3000, 0)).await;
            let mut stored = fill_idempotent(&log, 12, 0).await;
            let recovery_point = log.flush().await.unwrap();
            assert_eq!(recovery_point, log.log_end_offset());
            assert_eq!(log.recovery_point(), recovery_point);
            stored.extend(fill_idempotent(&log, 12, 36).await);
            assert!(log.recovery_point() >= recovery_point, "rolls move it on");
            let leo = log.log_end_offset();
            let logs = log_files(log.dir());
            drop(log);
            let bases: Vec<i64> = logs
                .iter()
                .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
                .collect();
            let trusted = bases
                .iter()
                .skip(1)
                .filter(|&&b| b <= recovery_point)
                .count();
            assert!(trusted >= 2 && trusted + 2 <= logs.len(), "{bases:?}");

            // A zero batchLength in a trusted segment: a scan would cut it there.
            let victim = &logs[1];
            let original = std::fs::read(victim).unwrap();
            let mut damaged = original.clone();
            damaged[8..12].copy_from_slice(&[0; 4]);
            std::fs::write(victim, &damaged).unwrap();
            // A torn last write: half a batch after the active segment's data.
            let active = logs.last().unwrap();
            let mut data = std::fs::read(active).unwrap();
            let mut end = 0;
            while let Some(h) = BatchHeader::parse(&data[end..]).filter(|h| h.batch_length > 0) {
                end += h.size();
            }
            let mut torn = batch(3, 300, 7, 0, 72);
            patch_base_offset(&mut torn, leo);
            data[end..end + torn.len() / 2].copy_from_slice(&torn[..torn.len() / 2]);
            std::fs::write(active, &data).unwrap();

            let reads = io::faults::dma_reads();
            let log = open_at(tmp.path(), config(3000, 0), recovery_point).await;
            let open_reads = io::faults::dma_reads() - reads;
            assert!(
                open_reads >= (logs.len() - trusted) as u64,
                "{open_reads} reads for {} segments past the recovery point",
                logs.len() - trusted
            );
            assert_eq!(log.log_end_offset(), leo);
            assert_eq!(
                std::fs::read(victim).unwrap(),
                damaged,
                "trusted: not scanned"
            );
            assert_eq!(std::fs::metadata(active).unwrap().len(), end as u64);
            std::fs::write(victim, &original).unwrap();
            assert_eq!(read_all(&log).await, stored);
            assert_producer_continues(&log, 72, leo - 3).await;
            log.close().await.unwrap();
        });
    }

    #[test]
    fn corrupt_or_stale_snapshots_fall_back_and_state_stays_right() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(3000, 0)).await;
            let stored = fill_idempotent(&log, 20, 0).await;
            let leo = log.close().await.unwrap();
            let snapshots = files_with(log.dir(), "snapshot");
            assert_eq!(snapshots.len(), 2);
            assert_eq!(
                snapshots[1],
                log.dir().join(snapshot::snapshot_file_name(leo))
            );

            // The newest is corrupt: the older one plus a replay of the rest.
            let mut data = std::fs::read(&snapshots[1]).unwrap();
            let last = data.len() - 1;
            data[last] ^= 1;
            std::fs::write(&snapshots[1], &data).unwrap();
            let log = open_at(tmp.path(), config(3000, 0), leo).await;
            assert_eq!(read_all(&log).await, stored);
            let retry = log.append(batch(3, 300, 7, 0, 57)).unwrap();
            assert_eq!(retry.base_offset, leo - 3);
            log.close().await.unwrap();

            // Both corrupt (a bad version, a bad crc): a full header scan.
            for path in files_with(log.dir(), "snapshot") {
                let mut data = std::fs::read(&path).unwrap();
                data[5] = 9;
                std::fs::write(&path, &data).unwrap();
            }
            std::fs::write(
                tmp.path()
                    .join("orders-3")
                    .join(snapshot::snapshot_file_name(3)),
                b"junk",
            )
            .unwrap();
            let log = open_at(tmp.path(), config(3000, 0), leo).await;
            assert_producer_continues(&log, 60, leo - 3).await;
            let leo = log.close().await.unwrap();
            assert_eq!(files_with(log.dir(), "snapshot").len(), 2, "retention");

            // The log lost its last batch behind the snapshot's back: the snapshot at the
            // old end is past the log end, so it is deleted and an older one is replayed.
            let active = log_files(log.dir()).pop().unwrap();
            let data = std::fs::read(&active).unwrap();
            let mut end = 0;
            let mut last_size = 0;
            while let Some(h) = BatchHeader::parse(&data[end..]) {
                last_size = h.size();
                end += last_size;
            }
            std::fs::write(&active, &data[..end - last_size]).unwrap();
            let log = open_at(tmp.path(), config(3000, 0), leo - 1).await;
            assert_eq!(log.log_end_offset(), leo - 1);
            assert!(!log.dir().join(snapshot::snapshot_file_name(leo)).exists());
            // Sequence 60 (the lost batch) is expected again, not a duplicate.
            let again = log.append(batch(1, 10, 7, 0, 60)).unwrap();
            assert_eq!(again.base_offset, leo - 1);
            let before = log.append(batch(3, 300, 7, 0, 57)).unwrap();
            assert_eq!(before.base_offset, leo - 4, "duplicate detected");
            let next = log.append(batch(1, 10, 7, 0, 61)).unwrap();
            assert_eq!(next.base_offset, leo);
            log.wait_written(leo).await.unwrap();
            log.close().await.unwrap();
        });
    }

    #[test]
    fn missing_index_of_a_trusted_segment_is_rebuilt_from_that_segment_alone() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(3000, 0)).await;
            let stored = fill_idempotent(&log, 30, 0).await;
            let leo = log.close().await.unwrap();
            let reads = io::faults::dma_reads();
            open_at(tmp.path(), config(3000, 0), leo)
                .await
                .close()
                .await
                .unwrap();
            let clean_reads = io::faults::dma_reads() - reads;

            let logs = log_files(log.dir());
            let index = logs[2].with_extension("index");
            let original = std::fs::read(&index).unwrap();
            std::fs::remove_file(&index).unwrap();
            std::fs::write(logs[4].with_extension("timeindex"), [1u8; 5]).unwrap();
            let reads = io::faults::dma_reads();
            let log = open_at(tmp.path(), config(3000, 0), leo).await;
            let open_reads = io::faults::dma_reads() - reads;
            assert_eq!(open_reads, clean_reads + 2, "one read per damaged segment");
            assert_eq!(std::fs::read(&index).unwrap(), original);
            assert_eq!(
                std::fs::metadata(logs[4].with_extension("timeindex"))
                    .unwrap()
                    .len()
                    % 12,
                0
            );
            assert_eq!(read_all(&log).await, stored);
            assert_producer_continues(&log, 90, leo - 3).await;
            log.close().await.unwrap();
        });
    }

    /// Open-time benchmark (not run by default):
    /// `CORELOG_BENCH_SEGMENTS=8 cargo test --release --lib bench_open -- --ignored --nocapture`.
    /// Writes `CORELOG_BENCH_SEGMENTS` segments of 256 MiB of 1 KiB batches, then times
    /// open() after a clean close, and after a crash with the recovery point at the base
    /// of the last segment.
    #[test]
    #[ignore]
    fn bench_open() {
        run(async {
            let segments: u64 = std::env::var("CORELOG_BENCH_SEGMENTS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(8);
            let tmp = tempfile::tempdir().unwrap();
            let config = LogConfig {
                segment_bytes: 256 << 20,
                cache_bytes_max: 0,
                ..LogConfig::default()
            };
            let reopen = |recovery_point: i64| {
                PartitionLog::open(tmp.path(), "bench", 0, config.clone(), recovery_point, 0)
            };
            let template = plain(1, 950);
            let batch_bytes = template.len() as u64;
            let total = segments * (256 << 20) - (4 << 20);
            let started = std::time::Instant::now();
            let log = reopen(0).await.unwrap();
            let mut written = 0u64;
            while written < total {
                let mut last = 0;
                for _ in 0..4096 {
                    last = log
                        .append(BytesMut::from(&template[..]))
                        .unwrap()
                        .last_offset;
                    written += batch_bytes;
                }
                log.wait_written(last).await.unwrap();
            }
            let leo = log.close().await.unwrap();
            eprintln!(
                "bench_open: wrote {} MiB, {} batches of {} bytes, {} segments in {:?}",
                written >> 20,
                leo,
                batch_bytes,
                log_files(log.dir()).len(),
                started.elapsed()
            );
            let started = std::time::Instant::now();
            let log = reopen(leo).await.unwrap();
            eprintln!("bench_open: clean open took {:?}", started.elapsed());
            assert_eq!(log.log_end_offset(), leo);
            let mut last = 0;
            for _ in 0..2048 {
                last = log
                    .append(BytesMut::from(&template[..]))
                    .unwrap()
                    .last_offset;
            }
            log.wait_written(last).await.unwrap();
            let files = log_files(log.dir());
            let last_base: i64 = files
                .last()
                .unwrap()
                .file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            drop(log);
            let started = std::time::Instant::now();
            let log = reopen(last_base).await.unwrap();
            eprintln!(
                "bench_open: open after a crash, recovery point at the last segment's base {last_base}, took {:?}",
                started.elapsed()
            );
            assert_eq!(log.log_end_offset(), last + 1);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn append_read_round_trip_across_rolls_from_disk_and_cache() {
        run(async {
            for cache_bytes_max in [0, 1 << 20] {
                let tmp = tempfile::tempdir().unwrap();
                let log = open(tmp.path(), config(3000, cache_bytes_max)).await;
                let stored = fill(&log, 20, 300).await;
                assert_eq!(log.log_end_offset(), 60);
                assert_eq!(log.high_watermark(), 60);
                assert!(log_files(log.dir()).len() >= 5, "segments rolled");
                assert_eq!(read_all(&log).await, stored);
                // All at once, and bounded by max_bytes (but at least one batch).
                let all = log.read(0, usize::MAX).await.unwrap();
                assert_eq!(all.batches, stored[..all.batches.len()]);
                assert_eq!(all.high_watermark, 60);
                assert_eq!(
                    log.read(4, 0).await.unwrap().batches,
                    vec![stored[1].clone()]
                );
                // Mid-batch offset returns the whole batch containing it.
                for offset in [31, 32] {
                    let got = log.read(offset, 1).await.unwrap();
                    assert_eq!(got.batches, vec![stored[10].clone()]);
                }
                assert!(log.read(60, 100).await.unwrap().batches.is_empty());
                assert!(matches!(
                    log.read(61, 100).await,
                    Err(StorageError::OffsetOutOfRange {
                        offset: 61,
                        start: 0,
                        end: 60
                    })
                ));
                assert_eq!(log.close().await.unwrap(), 60);
            }
        });
    }

    #[test]
    fn durable_wait_and_reopen_keep_identical_bytes() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(1 << 20, 0)).await;
            let stored = fill(&log, 10, 500).await;
            let info = log.append(plain(2, 10)).unwrap();
            log.wait_durable(info.last_offset).await.unwrap();
            assert_eq!(log.high_watermark(), info.last_offset + 1);
            let before = read_all(&log).await;
            assert_eq!(before[..10], stored[..]);
            let leo = log.close().await.unwrap();
            let size = std::fs::metadata(&log_files(log.dir())[0]).unwrap().len();
            let expected: usize = before.iter().map(|b| b.len()).sum();
            assert_eq!(
                size as usize, expected,
                "close truncates to the logical size"
            );
            assert!(
                log.append(plain(1, 1)).is_err(),
                "closed logs refuse appends"
            );

            let log = open(tmp.path(), config(1 << 20, 0)).await;
            assert_eq!(log.log_end_offset(), leo);
            assert_eq!(log.high_watermark(), leo);
            assert_eq!(read_all(&log).await, before);
            // Appends continue after the recovered tail page.
            let more = fill(&log, 3, 100).await;
            let after = read_all(&log).await;
            assert_eq!(after[..before.len()], before[..]);
            assert_eq!(after[before.len()..], more[..]);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn torn_tail_is_truncated_to_the_last_good_batch() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(1 << 20, 0)).await;
            let stored = fill(&log, 5, 200).await;
            log.close().await.unwrap();
            let path = log_files(log.dir())[0].clone();
            let good_len = std::fs::metadata(&path).unwrap().len();
            for garbage in [vec![0u8; 10_000], plain(4, 50)[..100].to_vec(), {
                let mut bad_crc = plain(2, 50).to_vec();
                let last = bad_crc.len() - 1;
                bad_crc[last] ^= 1;
                bad_crc
            }] {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                file.write_all(&garbage).unwrap();
                drop(file);
                let log = open(tmp.path(), config(1 << 20, 0)).await;
                assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
                assert_eq!(log.log_end_offset(), 15);
                assert_eq!(read_all(&log).await, stored);
                log.close().await.unwrap();
            }
        });
    }

    #[test]
    fn crash_without_close_recovers_acknowledged_writes() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(1 << 20, 0)).await;
            let stored = fill(&log, 7, 333).await;
            let path = log_files(log.dir())[0].clone();
            // No close: the file is still preallocated and zero-padded past the data.
            assert!(std::fs::metadata(&path).unwrap().len() > 7 * 333);
            drop(log);
            let log = open(tmp.path(), config(1 << 20, 0)).await;
            assert_eq!(log.log_end_offset(), 21);
            assert_eq!(read_all(&log).await, stored);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn missing_or_wrong_index_is_rebuilt() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(8000, 0)).await;
            let stored = fill(&log, 30, 400).await;
            log.close().await.unwrap();
            let logs = log_files(log.dir());
            assert!(logs.len() >= 3);
            let first_index = logs[0].with_extension("index");
            let original = std::fs::read(&first_index).unwrap();
            assert!(!original.is_empty(), "the test needs index entries");
            std::fs::remove_file(&first_index).unwrap();
            std::fs::remove_file(logs[1].with_extension("timeindex")).unwrap();
            std::fs::write(logs[2].with_extension("index"), [0xff; 16]).unwrap();

            let log = open(tmp.path(), config(8000, 0)).await;
            assert_eq!(std::fs::read(&first_index).unwrap(), original);
            assert!(logs[1].with_extension("timeindex").exists());
            assert_ne!(
                std::fs::read(logs[2].with_extension("index")).unwrap(),
                [0xff; 16]
            );
            assert_eq!(read_all(&log).await, stored);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn idempotent_producer_duplicates_gaps_and_restart() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(1 << 20, 1 << 20)).await;
            log.append(plain(2, 10)).unwrap();
            let first = log.append(batch(3, 10, 42, 0, 0)).unwrap();
            assert_eq!((first.base_offset, first.last_offset), (2, 4));
            let second = log.append(batch(2, 10, 42, 0, 3)).unwrap();
            assert_eq!(second.base_offset, 5);
            // A retry of the first batch: original offsets, nothing written.
            let retry = log.append(batch(3, 10, 42, 0, 0)).unwrap();
            assert_eq!((retry.base_offset, retry.last_offset), (2, 4));
            assert_eq!(log.log_end_offset(), 7);
            assert!(matches!(
                log.append(batch(1, 10, 42, 0, 9)),
                Err(StorageError::OutOfOrderSequence(_))
            ));
            assert!(matches!(
                log.append(batch(1, 10, 42, -1, 0)),
                Err(StorageError::InvalidProducerEpoch(_))
            ));
            log.wait_written(6).await.unwrap();
            assert_eq!(read_all(&log).await.len(), 3);
            log.close().await.unwrap();

            let log = open(tmp.path(), config(1 << 20, 1 << 20)).await;
            let retry = log.append(batch(2, 10, 42, 0, 3)).unwrap();
            assert_eq!((retry.base_offset, retry.last_offset), (5, 6));
            assert!(matches!(
                log.append(batch(1, 10, 42, 0, 6)),
                Err(StorageError::OutOfOrderSequence(_))
            ));
            let next = log.append(batch(1, 10, 42, 0, 5)).unwrap();
            assert_eq!(next.base_offset, 7);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn wait_for_data_wakes_on_append_and_drops_cleanly() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(1 << 20, 1 << 20)).await;
            // Abandoned long-polls are pruned as the list grows.
            for _ in 0..200 {
                let wait = log.wait_for_data(0);
                let timeout = glommio::timer::sleep(Duration::from_millis(1));
                futures::pin_mut!(wait, timeout);
                futures::future::select(wait, timeout).await;
            }
            let waiter = glommio::spawn_local(log.wait_for_data(0));
            glommio::timer::sleep(Duration::from_millis(5)).await;
            let parked = log.inner.state.borrow().data_waiters.len();
            assert!(parked <= 2 * WAITERS_PRUNE_MIN, "{parked} waiters parked");
            log.append(plain(1, 10)).unwrap();
            waiter.await;
            assert_eq!(log.high_watermark(), 1);
            log.wait_for_data(0).await;
            log.close().await.unwrap();
        });
    }

    #[test]
    fn rejects_bad_input_without_side_effects() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(1 << 20, 0)).await;
            let mut corrupt = plain(2, 10);
            let last = corrupt.len() - 1;
            corrupt[last] ^= 1;
            assert_eq!(log.append(corrupt).unwrap_err().kafka_error_code(), 2);
            let mut too_large = LogConfig::default().max_message_bytes;
            too_large += 1;
            assert!(matches!(
                log.append(plain(1, too_large)),
                Err(StorageError::TooLarge { .. })
            ));
            assert_eq!(log.log_end_offset(), 0);
            log.delete().await.unwrap();
            assert!(!tmp.path().join("orders-3").exists());
        });
    }

    #[test]
    fn appends_during_a_write_are_grouped_and_acks_all_share_fdatasyncs() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(1 << 30, 1 << 20)).await;
            let mut last_offset = 0;
            let mut bytes = 0;
            for _ in 0..100 {
                let data = plain(2, 100);
                bytes += data.len() as u64;
                last_offset = log.append(data).unwrap().last_offset;
            }
            log.wait_written(last_offset).await.unwrap();
            let stats = log.stats();
            assert!(stats.writes <= 3, "100 appends in one go took {stats:?}");
            assert_eq!(stats.write_bytes, bytes);
            assert_eq!(stats.fdatasyncs, 0, "acks=1 needs no fdatasync");
            assert_eq!(stats.rolls, 0);

            let mut waiters = Vec::new();
            for _ in 0..20 {
                let info = log.append(plain(1, 10)).unwrap();
                let log = log.clone();
                waiters.push(glommio::spawn_local(async move {
                    log.wait_durable(info.last_offset).await
                }));
            }
            for waiter in waiters {
                waiter.await.unwrap();
            }
            let stats = log.stats();
            assert!(
                (1..=3).contains(&stats.fdatasyncs),
                "20 acks=all waiters took {stats:?}"
            );
            log.close().await.unwrap();
        });
    }

    #[test]
    fn io_error_takes_the_log_offline() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(1 << 20, 1 << 20)).await;
            fill(&log, 2, 10).await;
            crate::storage::io::faults::fail_next_write();
            let info = log.append(plain(1, 10)).unwrap();
            let error = log.wait_written(info.last_offset).await.unwrap_err();
            assert_eq!(error.kafka_error_code(), 56);
            assert!(
                error.to_string().contains("00000000000000000000.log"),
                "{error}"
            );
            assert_eq!(log.append(plain(1, 10)).unwrap_err().kafka_error_code(), 56);
            assert_eq!(log.read(0, 100).await.unwrap_err().kafka_error_code(), 56);
            assert_eq!(
                log.wait_durable(0).await.unwrap_err().kafka_error_code(),
                56
            );
            log.wait_for_data(100).await;
            assert!(log.close().await.is_err());
        });
    }

    #[test]
    fn batches_larger_than_a_read_chunk_are_read_whole() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(1 << 20, 0)).await;
            let mut stored = fill(&log, 1, 10).await;
            let big = plain(1, 300_000);
            let info = log.append(big.clone()).unwrap();
            stored.push(patched(big, info.base_offset));
            stored.extend(fill(&log, 2, 10).await);
            assert_eq!(read_all(&log).await, stored);
            assert_eq!(
                log.read(3, 1).await.unwrap().batches,
                vec![stored[1].clone()]
            );
            log.close().await.unwrap();
        });
    }

    #[test]
    fn corruption_in_a_middle_segment_drops_it_from_there_unless_trusted() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(3000, 0)).await;
            let stored = fill(&log, 20, 300).await;
            let leo = log.close().await.unwrap();
            let logs = log_files(log.dir());
            assert!(logs.len() >= 4);
            // Flip the last byte of the second batch of segment 1 (inside the CRC).
            let mut data = std::fs::read(&logs[1]).unwrap();
            let first = BatchHeader::parse(&data).unwrap();
            let second = BatchHeader::parse(&data[first.size()..]).unwrap();
            let at = first.size() + second.size() - 1;
            data[at] ^= 0x55;
            std::fs::write(&logs[1], &data).unwrap();

            // Recovery point at the end: the data is trusted, the CRC is not checked.
            let config_ = config(3000, 0);
            let log = PartitionLog::open(tmp.path(), "orders", 3, config_.clone(), leo, 0)
                .await
                .unwrap();
            assert_eq!(log.log_end_offset(), leo);
            log.close().await.unwrap();

            // From recovery point 0 the bad batch is found: segment 1 keeps one batch,
            // later segments are deleted.
            let log = open(tmp.path(), config_).await;
            assert_eq!(log.log_end_offset(), second.base_offset);
            assert_eq!(log_files(log.dir()), logs[..2]);
            let kept = read_all(&log).await;
            assert_eq!(kept[..], stored[..kept.len()]);
            assert_eq!(
                std::fs::metadata(&logs[1]).unwrap().len(),
                first.size() as u64
            );
            log.close().await.unwrap();
        });
    }

    #[test]
    fn padding_after_a_middle_segment_loses_nothing() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(3000, 0)).await;
            let stored = fill(&log, 20, 300).await;
            let leo = log.close().await.unwrap();
            let logs = log_files(log.dir());
            let len = std::fs::metadata(&logs[1]).unwrap().len();
            {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&logs[1])
                    .unwrap();
                file.write_all(&[0u8; 5000]).unwrap();
            }
            let log = open(tmp.path(), config(3000, 0)).await;
            assert_eq!(log.log_end_offset(), leo);
            assert_eq!(log_files(log.dir()), logs);
            assert_eq!(std::fs::metadata(&logs[1]).unwrap().len(), len);
            assert_eq!(read_all(&log).await, stored);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn tailing_consumer_sees_every_batch_once_and_never_past_the_hw() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            // A small cache and segments: the consumer hits the cache, the disk and rolls.
            let log = open(tmp.path(), config(20_000, 2_000)).await;
            let consumer = {
                let log = log.clone();
                glommio::spawn_local(async move {
                    let mut next = 0i64;
                    let mut seen = Vec::new();
                    while next < 600 {
                        log.wait_for_data(next).await;
                        let result = log.read(next, 3_000).await.unwrap();
                        assert!(!result.batches.is_empty());
                        for data in result.batches {
                            let header = BatchHeader::parse(&data).unwrap();
                            assert!(header.base_offset <= next && next <= header.last_offset());
                            assert!(header.last_offset() < result.high_watermark);
                            next = header.last_offset() + 1;
                            seen.push(data);
                        }
                    }
                    seen
                })
            };
            let mut stored = Vec::new();
            for i in 0..200 {
                let data = plain(3, 50 + i % 7);
                let info = log.append(data.clone()).unwrap();
                stored.push(patched(data, info.base_offset));
                if i % 10 == 0 {
                    glommio::yield_if_needed().await;
                    glommio::timer::sleep(Duration::from_micros(200)).await;
                }
            }
            assert_eq!(consumer.await, stored);
            assert!(log.stats().rolls > 0);
            log.close().await.unwrap();
        });
    }
}
