//! What one partition log holds in memory, for the broker's memory gauges
//! (`broker::memory`, `/metrics` `corelog_memory_bytes`), and the expiry of idle
//! producers that bounds its producer state (`expire_producers`).
//!
//! Bytes are counted where they are known exactly (pending batch bytes, read-ahead
//! chunk lengths, the cache's charge: batch bytes plus a fixed overhead each) and estimated from container capacities elsewhere
//! (indexes, producer state). Allocator overhead and the request bodies a cached batch
//! may keep alive (see `handlers::produce::unpin_request_body`) are not counted: the
//! difference between RSS and the sum of the gauges is where they show.

use super::PartitionLog;

/// One log's share of each bounded structure, in bytes unless named otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogMemory {
    /// What the batch cache's batches are charged against its bound: their bytes plus
    /// `storage::cache::ENTRY_OVERHEAD_BYTES` each.
    pub cache_bytes: usize,
    /// Batches in the cache.
    pub cache_batches: usize,
    /// The cache's bound in force for this log (its share of the shard's budget).
    pub cache_bytes_max: usize,
    /// Batch bytes appended but not yet written (`pending`).
    pub pending_bytes: usize,
    /// Read-ahead chunks read or being read (`readahead`).
    pub read_ahead_bytes: usize,
    /// Segment indexes and tail pages (estimated from capacities).
    pub index_bytes: usize,
    /// Idempotent producer state, both copies (estimated).
    pub producer_bytes: usize,
    /// Producer ids remembered (in `written_producers`, the larger of the two copies
    /// once the writer caught up).
    pub producers: usize,
}

impl LogMemory {
    /// Adds `other` to `self`, field by field.
    pub fn add(&mut self, other: &LogMemory) {
        self.cache_bytes += other.cache_bytes;
        self.cache_batches += other.cache_batches;
        self.cache_bytes_max += other.cache_bytes_max;
        self.pending_bytes += other.pending_bytes;
        self.read_ahead_bytes += other.read_ahead_bytes;
        self.index_bytes += other.index_bytes;
        self.producer_bytes += other.producer_bytes;
        self.producers += other.producers;
    }
}

impl PartitionLog {
    /// This log's memory now. Walks its segments and pending batches: call it for a
    /// scrape, not on a hot path.
    pub fn memory(&self) -> LogMemory {
        let st = self.inner.state.borrow();
        LogMemory {
            cache_bytes: st.cache.charged_bytes(),
            cache_batches: st.cache.len(),
            cache_bytes_max: st.cache.bytes_max(),
            pending_bytes: st.pending.iter().map(|b| b.data.len()).sum(),
            read_ahead_bytes: st.read_ahead.chunk_bytes(),
            index_bytes: st.segments.iter().map(|s| s.heap_bytes()).sum(),
            producer_bytes: st.producers.heap_bytes() + st.written_producers.heap_bytes(),
            producers: st.producers.len().max(st.written_producers.len()),
        }
    }
}

impl PartitionLog {
    /// Forgets the idempotent producers idle for `expiration_ms`
    /// (`producer.id.expiration.ms`, `ProducerState::expire`) in both copies of the
    /// state; returns how many. The next snapshot no longer has them.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        let mut st = self.inner.state.borrow_mut();
        // `producers` has every producer `written_producers` has, and is the newer:
        // a producer with a batch still pending is not idle there.
        let expired = st.producers.expire(now_ms, expiration_ms);
        for &id in &expired {
            st.written_producers.remove(id);
        }
        expired.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::LogConfig;
    use super::*;
    use crate::storage::testutil::{batch, run};

    const DAY_MS: i64 = 86_400_000;
    /// The newest record timestamp of `testutil::batch(3, ..)`.
    const BATCH_OF_3_MAX_TS: i64 = 1_700_000_000_002;

    async fn open(dir: &std::path::Path) -> PartitionLog {
        let config = LogConfig {
            cache_bytes_max: 1 << 20,
            ..LogConfig::default()
        };
        PartitionLog::open(dir, "orders", 0, config, 0, 0)
            .await
            .unwrap()
    }

    #[test]
    fn memory_counts_what_the_log_holds() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path()).await;
            let empty = log.memory();
            assert_eq!((empty.cache_bytes, empty.producers), (0, 0));
            assert_eq!(empty.cache_bytes_max, 1 << 20);
            let (a, b) = (batch(3, 100, 7, 0, 0), batch(3, 50, 8, 0, 0));
            let bytes = a.len() + b.len() + 2 * crate::storage::cache::ENTRY_OVERHEAD_BYTES;
            log.append(a).unwrap();
            log.append(b).unwrap();
            log.wait_written(log.log_end_offset() - 1).await.unwrap();
            let m = log.memory();
            assert_eq!((m.cache_bytes, m.cache_batches), (bytes, 2));
            assert_eq!((m.pending_bytes, m.read_ahead_bytes), (0, 0));
            assert_eq!(m.producers, 2);
            assert!(m.producer_bytes > empty.producer_bytes);
            let mut sum = LogMemory::default();
            sum.add(&m);
            sum.add(&m);
            assert_eq!(sum.cache_bytes, 2 * bytes);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn idle_producers_expire_from_memory_and_from_the_next_snapshot() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path()).await;
            log.append(batch(3, 10, 7, 0, 0)).unwrap();
            log.append(batch(3, 10, 8, 0, 0)).unwrap();
            log.wait_written(log.log_end_offset() - 1).await.unwrap();
            assert_eq!(
                log.expire_producers(BATCH_OF_3_MAX_TS + DAY_MS - 1, DAY_MS),
                0
            );
            assert_eq!(log.expire_producers(BATCH_OF_3_MAX_TS + DAY_MS, DAY_MS), 2);
            assert_eq!(log.memory().producers, 0);
            // Producer 7 comes back: new to the partition, so any sequence is taken.
            let leo = log.log_end_offset();
            assert_eq!(log.append(batch(3, 10, 7, 0, 42)).unwrap().base_offset, leo);
            let end = log.close().await.unwrap();
            // The snapshot written at close has only the producer seen since.
            let config = LogConfig::default();
            let log = PartitionLog::open(tmp.path(), "orders", 0, config, end, 0)
                .await
                .unwrap();
            assert_eq!(log.memory().producers, 1);
            log.close().await.unwrap();
        });
    }
}
