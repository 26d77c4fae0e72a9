//! The broker's metrics probe: per-shard counters and HdrHistograms of each stage of a
//! Produce and a Fetch, recorded with no cross-core traffic and merged only when
//! someone asks (`/metrics`, `/v1/profile`).
//!
//! ```text
//!   shard k thread ── thread_local REGISTRY: RefCell<Option<Box<Registry>>>
//!        record(stage, since)  ── one TLS access, one RefCell borrow, one histogram add
//!        add(counter, n)       ── one TLS access, one u64 add
//!   admin request on shard 0 ── Shard::run_on(k, snapshot) for every k ── merge, render
//! ```
//!
//! Concurrency: every shard thread records into its own thread-local `Registry`, so no
//! atomics and no shared cache lines on the hot path. A `Registry` exists only on a
//! thread that called [`init_shard`] with recording enabled (`metrics.enable`, default
//! true); everywhere else (recording off, unit tests, the CLI) every probe call is a
//! TLS read of `None` and [`now`] does not even read the clock.
//!
//! Clock: `std::time::Instant` (CLOCK_MONOTONIC through the vDSO, about 20 ns on this
//! machine's TSC clocksource; see `benches/hot_paths.rs`). CLOCK_MONOTONIC_COARSE is
//! cheaper but ticks at the kernel's HZ (4 ms here), coarser than every stage measured.
//!
//! Histograms: values in microseconds from 1 µs to [`LATENCY_US_MAX`] (60 s, longer
//! than the longest Fetch wait) at 2 significant digits (1% value resolution): 20 KiB
//! each, 310 KiB per shard for all stages and sizes. 3 digits would take 136 KiB each
//! and made a scrape's copy-and-merge of two shards cost 4 ms of reactor time (see
//! `benches/hot_paths.rs`), itself a tail-latency event. A value above the range is
//! clamped to it.

pub mod http;
pub mod memory;
pub mod profile;
pub mod prometheus;

use std::cell::RefCell;
use std::time::Instant;

use hdrhistogram::Histogram;

/// Largest latency a stage histogram tells apart, in µs (60 s).
pub const LATENCY_US_MAX: u64 = 60_000_000;
/// Significant digits of every histogram (1% value resolution).
pub const SIGNIFICANT_DIGITS: u8 = 2;
/// Largest value of the size histograms (batches or bytes per write).
pub const SIZE_MAX: u64 = 1 << 30;
/// API keys counted by index; a key outside is counted as the last slot.
pub const API_KEYS_MAX: usize = 96;

/// A timed stage. `api` and `stage` are the labels it is exposed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Produce: decode the request and group its partitions by owner shard.
    ProduceDecode,
    /// Produce: the message to the owner shard and its reply back (queueing and
    /// wake-up on both sides), without the owner's own work. Only for remote owners.
    ProduceHandoff,
    /// Produce: validate, idempotence-check and queue the batches (owner shard).
    ProduceAppend,
    /// Produce: from queued to written (the group-committed DMA write completed).
    ProduceWrite,
    /// Produce, acks=all: from written to fdatasync'd.
    ProduceSync,
    /// Produce: from the response ready to written to the socket (including waiting for
    /// earlier responses of the connection).
    ProduceResponse,
    /// Produce: from the request read to its response written.
    ProduceTotal,
    /// Fetch: long-poll wait for data (only requests that waited).
    FetchWait,
    /// Fetch: read from cache or disk on the owner shard.
    FetchRead,
    /// Fetch: from the response ready to written to the socket.
    FetchSend,
    /// Fetch: from the request read to its response written.
    FetchTotal,
    /// Storage: one group-committed DMA write.
    StorageWrite,
    /// Storage: one fdatasync.
    StorageFdatasync,
    /// Transaction: from its first partition added (begin) to CompleteCommit written,
    /// on the coordinator shard (wall-clock milliseconds, so 1 ms resolution).
    TxnCommit,
    /// Transaction: from begin to CompleteAbort written (EndTxn abort, timeout, fencing).
    TxnAbort,
    /// Produce, acks=all on a replicated partition (leader): from the batch durable on
    /// the leader to the high watermark passing it, i.e. every ISR member has it.
    ProduceReplicate,
}

impl Stage {
    pub const ALL: [Stage; 16] = [
        Stage::ProduceDecode,
        Stage::ProduceHandoff,
        Stage::ProduceAppend,
        Stage::ProduceWrite,
        Stage::ProduceSync,
        Stage::ProduceResponse,
        Stage::ProduceTotal,
        Stage::FetchWait,
        Stage::FetchRead,
        Stage::FetchSend,
        Stage::FetchTotal,
        Stage::StorageWrite,
        Stage::StorageFdatasync,
        Stage::TxnCommit,
        Stage::TxnAbort,
        Stage::ProduceReplicate,
    ];

    /// (api, stage) labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Stage::ProduceDecode => ("produce", "decode"),
            Stage::ProduceHandoff => ("produce", "handoff"),
            Stage::ProduceAppend => ("produce", "append"),
            Stage::ProduceWrite => ("produce", "write_wait"),
            Stage::ProduceSync => ("produce", "fdatasync_wait"),
            Stage::ProduceResponse => ("produce", "response"),
            Stage::ProduceTotal => ("produce", "total"),
            Stage::FetchWait => ("fetch", "long_poll_wait"),
            Stage::FetchRead => ("fetch", "read"),
            Stage::FetchSend => ("fetch", "send"),
            Stage::FetchTotal => ("fetch", "total"),
            Stage::StorageWrite => ("storage", "write"),
            Stage::StorageFdatasync => ("storage", "fdatasync"),
            Stage::TxnCommit => ("transaction", "begin_to_commit"),
            Stage::TxnAbort => ("transaction", "begin_to_abort"),
            Stage::ProduceReplicate => ("produce", "replication_wait"),
        }
    }
}

/// A recorded distribution of sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Record batches per group-committed write.
    WriteBatches,
    /// Batch bytes per group-committed write.
    WriteBytes,
}

impl Size {
    pub const ALL: [Size; 2] = [Size::WriteBatches, Size::WriteBytes];
}

/// A per-shard counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Kafka request bytes read (frames with their size prefix).
    NetworkReceivedBytes,
    /// Kafka response bytes written.
    NetworkSentBytes,
    /// Record batches appended to partition logs.
    AppendedBatches,
    /// Record batch bytes appended to partition logs.
    AppendedBytes,
    /// Record batch bytes returned by Fetch.
    FetchedBytes,
    /// Reads served from the batch cache.
    CacheHits,
    /// Reads that went to the segment files.
    CacheMisses,
    /// DMA reads issued for those.
    DmaReads,
    /// Group-committed DMA writes.
    Writes,
    /// fdatasync calls of partition logs.
    Fdatasyncs,
    /// Bytes of zeros written ahead of partition logs' data (see `storage::segment`).
    ZeroFillBytes,
    /// Kafka connections accepted.
    ConnectionsOpened,
    /// Kafka connections ended.
    ConnectionsClosed,
    /// Records of Produce v0-2 message sets converted to v2 batches.
    ProduceConvertedRecords,
    /// Records of v2 batches converted down to message sets for Fetch v0-3.
    FetchConvertedRecords,
    /// ISR shrinks of partitions this broker leads (Kafka's IsrShrinksPerSec).
    IsrShrinks,
    /// ISR expansions of partitions this broker leads (IsrExpandsPerSec).
    IsrExpands,
    /// TLS handshakes that failed or timed out (the connection was closed).
    TlsHandshakeFailures,
    /// TLS handshakes completed.
    TlsHandshakes,
    /// SASL logins that succeeded.
    SaslAuthentications,
    /// SASL logins refused (SASL_AUTHENTICATION_FAILED) or abandoned.
    SaslAuthenticationFailures,
    /// Transactions this broker's coordinator completed with a commit.
    TxnCommitted,
    /// Transactions completed with an abort (EndTxn abort, timeout, fencing).
    TxnAborted,
    /// Of those aborts, the ones the coordinator started because the transaction
    /// outlived its `transaction.timeout.ms`.
    TxnTimedOut,
    /// Connections closed right after accept for being over a `max.connections*` limit.
    ConnectionsRefused,
    /// Responses that carried a non-zero quota throttle time (the connection was muted).
    QuotaThrottledResponses,
    /// Record batch bytes this broker served to consumers as a follower (KIP-392).
    FollowerFetchedBytes,
    /// Of the zero-fill writes, those followed by an fdatasync (logs that some request
    /// asked durability of; see `storage::log::writer`).
    ZeroFillFdatasyncs,
    /// Messages this shard sent to another shard's mailbox (`Broker::send`): each may
    /// wake that shard's thread.
    ShardMessages,
    /// Record batch bytes this broker sent, as a leader, to throttled followers
    /// (`leader.replication.throttled.rate`).
    LeaderThrottledBytes,
    /// Follower reads this broker left empty, as a leader, because its replication
    /// throttle's budget was spent.
    LeaderThrottledReads,
    /// KIP-227 fetch sessions created (full fetches with epoch 0 given a session).
    FetchSessionsCreated,
    /// Fetch sessions evicted from a full cache for a new one.
    FetchSessionsEvicted,
    /// Incremental fetches answered within a session.
    IncrementalFetches,
}

impl Counter {
    pub const ALL: [Counter; 34] = [
        Counter::NetworkReceivedBytes,
        Counter::NetworkSentBytes,
        Counter::AppendedBatches,
        Counter::AppendedBytes,
        Counter::FetchedBytes,
        Counter::CacheHits,
        Counter::CacheMisses,
        Counter::DmaReads,
        Counter::Writes,
        Counter::Fdatasyncs,
        Counter::ZeroFillBytes,
        Counter::ConnectionsOpened,
        Counter::ConnectionsClosed,
        Counter::ProduceConvertedRecords,
        Counter::FetchConvertedRecords,
        Counter::IsrShrinks,
        Counter::IsrExpands,
        Counter::TlsHandshakeFailures,
        Counter::TlsHandshakes,
        Counter::SaslAuthentications,
        Counter::SaslAuthenticationFailures,
        Counter::TxnCommitted,
        Counter::TxnAborted,
        Counter::TxnTimedOut,
        Counter::ConnectionsRefused,
        Counter::QuotaThrottledResponses,
        Counter::FollowerFetchedBytes,
        Counter::ZeroFillFdatasyncs,
        Counter::ShardMessages,
        Counter::LeaderThrottledBytes,
        Counter::LeaderThrottledReads,
        Counter::FetchSessionsCreated,
        Counter::FetchSessionsEvicted,
        Counter::IncrementalFetches,
    ];
}

/// One histogram and the exact sum of what it recorded (HdrHistogram keeps only
/// bucketed values; Prometheus wants `_sum`).
#[derive(Debug, Clone)]
pub struct Hist {
    pub h: Histogram<u64>,
    pub sum: u64,
}

impl Hist {
    pub fn new(high: u64) -> Hist {
        Hist {
            h: Histogram::new_with_bounds(1, high, SIGNIFICANT_DIGITS)
                .expect("constant bounds are valid"),
            sum: 0,
        }
    }

    pub fn latency() -> Hist {
        Hist::new(LATENCY_US_MAX)
    }

    pub fn size() -> Hist {
        Hist::new(SIZE_MAX)
    }

    #[inline]
    pub fn record(&mut self, value: u64) {
        self.h.saturating_record(value);
        self.sum = self.sum.saturating_add(value);
    }

    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// Adds `other` (same bounds: every `Hist` of one kind is made alike).
    pub fn merge(&mut self, other: &Hist) {
        // Same bounds and digits, so `add` cannot fail; ignore rather than panic.
        let _ = self.h.add(&other.h);
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// What was recorded since `earlier`, a copy of this histogram taken before.
    /// Counts only grow, so this is exact; if `earlier` is not a past state of this
    /// histogram, the whole histogram is returned.
    pub fn since(&self, earlier: &Hist) -> Hist {
        let mut out = self.clone();
        if out.h.subtract(&earlier.h).is_err() {
            return self.clone();
        }
        out.sum = self.sum.saturating_sub(earlier.sum);
        out
    }
}

/// Everything one shard records.
struct Registry {
    stages: Vec<Hist>,
    sizes: Vec<Hist>,
    counters: [u64; Counter::ALL.len()],
    requests: [u64; API_KEYS_MAX],
    /// (api key, error code) → count; errors are rare, so a small map.
    errors: std::collections::BTreeMap<(i16, i16), u64>,
}

impl Registry {
    fn new() -> Registry {
        Registry {
            stages: Stage::ALL.iter().map(|_| Hist::latency()).collect(),
            sizes: Size::ALL.iter().map(|_| Hist::size()).collect(),
            counters: [0; Counter::ALL.len()],
            requests: [0; API_KEYS_MAX],
            errors: std::collections::BTreeMap::new(),
        }
    }
}

thread_local! {
    static REGISTRY: RefCell<Option<Box<Registry>>> = const { RefCell::new(None) };
}

/// Starts (or, with `enabled` false, stops) recording on this thread: each shard
/// thread calls it once at start-up.
pub fn init_shard(enabled: bool) {
    REGISTRY.with(|r| *r.borrow_mut() = enabled.then(|| Box::new(Registry::new())));
}

#[inline]
fn with<F: FnOnce(&mut Registry)>(f: F) {
    REGISTRY.with(|r| {
        if let Ok(mut r) = r.try_borrow_mut() {
            if let Some(reg) = r.as_deref_mut() {
                f(reg);
            }
        }
    });
}

/// Whether this thread records.
#[inline]
pub fn enabled() -> bool {
    REGISTRY.with(|r| r.try_borrow().is_ok_and(|r| r.is_some()))
}

/// The time now, or `None` when this thread does not record (no clock read then).
#[inline]
pub fn now() -> Option<Instant> {
    enabled().then(Instant::now)
}

/// Microseconds from `from` to `to`, 0 if `to` is earlier.
#[inline]
pub fn micros(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_micros() as u64
}

/// Records the time since `start` (taken with [`now`]) for `stage`.
#[inline]
pub fn record_since(stage: Stage, start: Option<Instant>) {
    if let Some(start) = start {
        record_us(stage, micros(start, Instant::now()));
    }
}

/// Records `us` microseconds for `stage`.
#[inline]
pub fn record_us(stage: Stage, us: u64) {
    with(|r| r.stages[stage as usize].record(us));
}

#[inline]
pub fn record_size(size: Size, value: u64) {
    with(|r| r.sizes[size as usize].record(value));
}

#[inline]
pub fn add(counter: Counter, n: u64) {
    with(|r| r.counters[counter as usize] += n);
}

/// Counts a request of API `api_key`.
#[inline]
pub fn request(api_key: i16) {
    with(|r| r.requests[api_slot(api_key)] += 1);
}

/// Counts an error code answered (or a request refused) for API `api_key`.
pub fn error(api_key: i16, code: i16) {
    with(|r| *r.errors.entry((api_key, code)).or_insert(0) += 1);
}

fn api_slot(api_key: i16) -> usize {
    (api_key.max(0) as usize).min(API_KEYS_MAX - 1)
}

/// A copy of one shard's metrics, sent to whoever asked (it crosses threads).
#[derive(Debug, Clone)]
pub struct ShardSnapshot {
    pub shard: usize,
    /// Indexed like `Stage::ALL`.
    pub stages: Vec<Hist>,
    /// Indexed like `Size::ALL`.
    pub sizes: Vec<Hist>,
    /// Indexed like `Counter::ALL`.
    pub counters: Vec<u64>,
    /// (api key, count), non-zero only.
    pub requests: Vec<(i16, u64)>,
    /// ((api key, error code), count).
    pub errors: Vec<((i16, i16), u64)>,
    /// The leader's view of its followers on this shard (`Shard::replica_lag`).
    pub replica_lag: ReplicaLag,
    /// Transactions in the Ongoing state on this shard's coordinator
    /// (`txn::probe::ongoing`).
    pub txn_ongoing: u64,
    /// KIP-227 fetch sessions this shard holds (`Shard::fetch_sessions`).
    pub fetch_sessions_open: u64,
}

/// Over the replicated partitions a shard leads: the largest lag in records of any
/// follower (the leader's written end minus the follower's fetch offset), and the
/// longest time any follower has not been caught up.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplicaLag {
    pub max_records: u64,
    pub max_seconds: f64,
}

impl ShardSnapshot {
    pub fn empty(shard: usize) -> ShardSnapshot {
        ShardSnapshot {
            shard,
            stages: Stage::ALL.iter().map(|_| Hist::latency()).collect(),
            sizes: Size::ALL.iter().map(|_| Hist::size()).collect(),
            counters: vec![0; Counter::ALL.len()],
            requests: Vec::new(),
            errors: Vec::new(),
            replica_lag: ReplicaLag::default(),
            txn_ongoing: 0,
            fetch_sessions_open: 0,
        }
    }

    pub fn counter(&self, c: Counter) -> u64 {
        self.counters[c as usize]
    }

    pub fn stage(&self, s: Stage) -> &Hist {
        &self.stages[s as usize]
    }

    pub fn size(&self, s: Size) -> &Hist {
        &self.sizes[s as usize]
    }
}

/// This thread's metrics, or `None` when it does not record.
pub fn snapshot(shard: usize) -> Option<ShardSnapshot> {
    REGISTRY.with(|r| {
        let r = r.borrow();
        let reg = r.as_deref()?;
        Some(ShardSnapshot {
            shard,
            stages: reg.stages.clone(),
            sizes: reg.sizes.clone(),
            counters: reg.counters.to_vec(),
            requests: reg
                .requests
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| (k as i16, *n))
                .collect(),
            errors: reg.errors.iter().map(|(k, n)| (*k, *n)).collect(),
            replica_lag: ReplicaLag::default(),
            txn_ongoing: 0,
            fetch_sessions_open: 0,
        })
    })
}

/// The stage histograms of all shards added together.
pub fn merge_stages(shards: &[ShardSnapshot]) -> Vec<Hist> {
    let mut out: Vec<Hist> = Stage::ALL.iter().map(|_| Hist::latency()).collect();
    for s in shards {
        for (acc, h) in out.iter_mut().zip(&s.stages) {
            acc.merge(h);
        }
    }
    out
}

/// A name for a Kafka API key, as exposed in the `api` label of request counters.
pub fn api_name(api_key: i16) -> String {
    match kafka_protocol::messages::ApiKey::try_from(api_key) {
        Ok(k) => format!("{k:?}"),
        Err(_) => format!("api_{api_key}"),
    }
}

/// A name for a Kafka error code, as exposed in the `error` label.
pub fn error_name(code: i16) -> String {
    use kafka_protocol::error::ResponseError;
    match ResponseError::try_from_code(code) {
        Some(ResponseError::Unknown(_)) | None => format!("error_{code}"),
        Some(e) => format!("{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_sums_and_keeps_quantiles() {
        let mut a = Hist::latency();
        let mut b = Hist::latency();
        for v in 1..=1000 {
            a.record(v);
        }
        for _ in 0..1000 {
            b.record(100_000);
        }
        a.merge(&b);
        assert_eq!(a.count(), 2000);
        assert_eq!(a.sum, 500_500 + 100_000_000);
        // 2 significant digits: 500 shares a 2 µs bucket with 501.
        assert_eq!(a.h.value_at_quantile(0.25), 501);
        assert_eq!(a.h.highest_equivalent(a.h.value_at_quantile(0.99)), 100_351);
        assert_eq!(a.h.max(), a.h.highest_equivalent(100_000));
    }

    #[test]
    fn values_past_the_range_are_clamped_not_lost() {
        let mut h = Hist::latency();
        h.record(0);
        h.record(u64::MAX / 2);
        assert_eq!(h.count(), 2);
        assert!(h.h.max() >= LATENCY_US_MAX);
    }

    #[test]
    fn since_is_the_window_after_a_copy() {
        let mut h = Hist::latency();
        for _ in 0..10 {
            h.record(5_000);
        }
        let earlier = h.clone();
        h.record(7);
        h.record(9);
        let w = h.since(&earlier);
        assert_eq!((w.count(), w.sum), (2, 16));
        assert_eq!(w.h.max(), 9);
        assert_eq!(h.since(&h.clone()).count(), 0);
    }

    #[test]
    fn a_thread_records_only_once_initialised() {
        std::thread::spawn(|| {
            assert!(now().is_none());
            add(Counter::Writes, 1);
            assert!(snapshot(0).is_none());
            init_shard(true);
            add(Counter::Writes, 2);
            request(0);
            request(0);
            request(1000);
            error(0, 21);
            record_us(Stage::ProduceAppend, 12);
            record_since(Stage::FetchRead, now());
            let s = snapshot(3).unwrap();
            assert_eq!(s.shard, 3);
            assert_eq!(s.counter(Counter::Writes), 2);
            assert_eq!(s.requests, vec![(0, 2), ((API_KEYS_MAX - 1) as i16, 1)]);
            assert_eq!(s.errors, vec![((0, 21), 1)]);
            assert_eq!(s.stage(Stage::ProduceAppend).count(), 1);
            assert_eq!(s.stage(Stage::FetchRead).count(), 1);
            init_shard(false);
            assert!(snapshot(3).is_none());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn names_of_apis_and_errors() {
        assert_eq!(api_name(0), "Produce");
        assert_eq!(api_name(1), "Fetch");
        assert_eq!(error_name(21), "InvalidRequiredAcks");
        assert_eq!(error_name(-1), "UnknownServerError");
        assert_eq!(error_name(9999), "error_9999");
    }
}
