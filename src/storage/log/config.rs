//! `LogConfig`: the per-partition settings a log runs with.

use crate::storage::cache::CACHE_BYTES_MAX_DEFAULT;
use crate::storage::index::INDEX_INTERVAL_BYTES_DEFAULT;
use crate::storage::segment::ZERO_AHEAD_BYTES;

#[cfg(doc)]
use super::PartitionLog;

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
    /// `retention.ms` (-1: none): delete segments whose newest record, and last
    /// append, are older.
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
    /// The leader epoch the log starts with, written into each produced batch's
    /// partitionLeaderEpoch. Read at open only: later it changes with
    /// [`PartitionLog::set_leader_epoch`], and `set_config` leaves it alone.
    pub leader_epoch: i32,
    /// How far past the data the writer keeps the active segment written with zeros
    /// when idle (`segment::ZERO_AHEAD_BYTES`; 0: not at all, appends go into
    /// fallocated space). Not a Kafka config: the broker always uses the default.
    pub zero_ahead_bytes: u64,
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
            zero_ahead_bytes: ZERO_AHEAD_BYTES,
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
