//! Recent batches of one partition as `Bytes`, so a tailing consumer is served from
//! memory without a copy or a disk read.
//!
//! ```text
//!   front (oldest)                                   back (newest, ends at the HW)
//!   [b0 .. l0][b1 .. l1][b2 .. l2] ... [bn .. ln]    bytes() <= bytes_max
//! ```
//!
//! Entries are contiguous in log order: the writer pushes batches once they are written
//! (so everything cached is below the high watermark) and eviction drops from the front.
//! The bound is per partition: `LogConfig::cache_bytes_max`, or the shard's current
//! share of its budget (`LogConfig::cache_share`), which the writer applies before each
//! push. There is no cross-partition eviction: an idle partition keeps its share.
//! Each batch is charged its bytes plus [`ENTRY_OVERHEAD_BYTES`], so that a partition of
//! tiny batches stays within its bound in memory too, not only in batch bytes.
//! Not shared across threads; owned by the partition's `RefCell`.

use std::collections::VecDeque;

use bytes::Bytes;

/// Default of `LogConfig::cache_bytes_max`.
pub const CACHE_BYTES_MAX_DEFAULT: usize = 8 << 20;

/// What a cached batch costs beyond its bytes: its entry here, the shared-buffer header
/// of its `Bytes`, malloc's headers and the request bytes around it that its buffer
/// keeps. Measured: in the session-9 soak, malloc's in-use bytes minus the cached batch
/// bytes grew 158 bytes per additional cached batch (9k to 54k batches of ~100-300
/// bytes); without this charge 8 MiB of 100-byte batches cost ~20 MiB.
pub const ENTRY_OVERHEAD_BYTES: usize = 160;

/// What `len` bytes of batch are charged against the bound.
fn charge(len: usize) -> usize {
    len + ENTRY_OVERHEAD_BYTES
}

#[derive(Debug, Clone)]
struct Entry {
    base_offset: i64,
    last_offset: i64,
    data: Bytes,
}

#[derive(Debug)]
pub struct BatchCache {
    entries: VecDeque<Entry>,
    bytes: usize,
    bytes_max: usize,
}

impl BatchCache {
    pub fn new(bytes_max: usize) -> Self {
        BatchCache {
            entries: VecDeque::new(),
            bytes: 0,
            bytes_max,
        }
    }

    /// Batch bytes cached.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// What the cached batches are charged against the bound: their bytes plus
    /// [`ENTRY_OVERHEAD_BYTES`] each.
    pub fn charged_bytes(&self) -> usize {
        self.bytes + self.entries.len() * ENTRY_OVERHEAD_BYTES
    }

    /// Batches cached: each costs an entry and an allocation beside its bytes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The bound in force (the last one `set_bytes_max` or `new` set).
    pub fn bytes_max(&self) -> usize {
        self.bytes_max
    }

    /// Adds the next batch in log order, evicting the oldest ones to stay in budget. A
    /// batch larger than the whole budget empties the cache and is not kept.
    pub fn push(&mut self, base_offset: i64, last_offset: i64, data: Bytes) {
        if let Some(last) = self.entries.back() {
            assert!(
                base_offset > last.last_offset,
                "cache push of {base_offset} after {}",
                last.last_offset
            );
        }
        if charge(data.len()) > self.bytes_max {
            self.clear();
            return;
        }
        while self.charged_bytes() + charge(data.len()) > self.bytes_max {
            let evicted = self.entries.pop_front().expect("bytes > 0 means entries");
            self.bytes -= evicted.data.len();
        }
        self.bytes += data.len();
        self.entries.push_back(Entry {
            base_offset,
            last_offset,
            data,
        });
    }

    /// Changes the bound, evicting the oldest batches if the cache is now over it.
    pub fn set_bytes_max(&mut self, bytes_max: usize) {
        self.bytes_max = bytes_max;
        while self.charged_bytes() > self.bytes_max {
            let evicted = self.entries.pop_front().expect("bytes > 0 means entries");
            self.bytes -= evicted.data.len();
        }
    }

    /// Forgets the batches that start below `offset` (the cleaner rewrote them).
    pub fn drop_below(&mut self, offset: i64) {
        while self.entries.front().is_some_and(|e| e.base_offset < offset) {
            let evicted = self.entries.pop_front().expect("front exists");
            self.bytes -= evicted.data.len();
        }
    }

    /// Forgets the batches that start at or past `offset` (the log was truncated there).
    pub fn drop_from(&mut self, offset: i64) {
        while self.entries.back().is_some_and(|e| e.base_offset >= offset) {
            let evicted = self.entries.pop_back().expect("back exists");
            self.bytes -= evicted.data.len();
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Whole batches starting with the one containing `offset`, up to `max_bytes` but at
    /// least one; `None` if the cache does not reach back to `offset` or ends before it.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Option<Vec<Bytes>> {
        let first = self.entries.front()?;
        if offset < first.base_offset {
            return None;
        }
        let start = self.entries.partition_point(|e| e.last_offset < offset);
        if start == self.entries.len() {
            return None;
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in self.entries.range(start..) {
            if !out.is_empty() && bytes + entry.data.len() > max_bytes {
                break;
            }
            bytes += entry.data.len();
            out.push(entry.data.clone());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(bytes_max: usize) -> BatchCache {
        let mut cache = BatchCache::new(bytes_max);
        // Batches of 100 bytes with 10 offsets each: [0,9], [10,19], ...
        for i in 0..10 {
            cache.push(i * 10, i * 10 + 9, Bytes::from(vec![i as u8; 100]));
        }
        cache
    }

    /// What one of `filled`'s batches is charged.
    const ENTRY: usize = 100 + ENTRY_OVERHEAD_BYTES;

    #[test]
    fn shrinking_the_bound_evicts_oldest() {
        let mut cache = filled(100_000);
        cache.set_bytes_max(2 * ENTRY + 50);
        assert_eq!(cache.bytes(), 200);
        assert_eq!(cache.charged_bytes(), 2 * ENTRY);
        assert!(cache.read(79, 1000).is_none());
        assert_eq!(cache.read(80, 1000).unwrap().len(), 2);
        cache.set_bytes_max(0);
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn reads_whole_batches_at_least_one() {
        let cache = filled(100_000);
        let got = cache.read(15, 250).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0][0], 1);
        assert_eq!(cache.read(15, 1).unwrap().len(), 1);
        assert_eq!(cache.read(0, usize::MAX).unwrap().len(), 10);
        assert!(cache.read(100, 1000).is_none());
    }

    #[test]
    fn evicts_oldest_within_budget() {
        let cache = filled(3 * ENTRY + 50);
        assert_eq!(cache.bytes(), 300);
        assert!(cache.read(69, 1000).is_none());
        assert_eq!(cache.read(70, 1000).unwrap().len(), 3);
        let mut cache = filled(3 * ENTRY + 50);
        cache.push(100, 100, Bytes::from(vec![0; 1000]));
        assert_eq!(cache.bytes(), 0);
        assert!(cache.read(100, 1000).is_none());
    }

    #[test]
    fn tiny_batches_are_charged_their_overhead() {
        // 8 KiB of 10-byte batches: 48 fit, not 819.
        let mut cache = BatchCache::new(8 << 10);
        for i in 0..1000 {
            cache.push(i, i, Bytes::from(vec![0; 10]));
        }
        assert_eq!(cache.len(), (8 << 10) / (10 + ENTRY_OVERHEAD_BYTES));
        assert!(cache.charged_bytes() <= 8 << 10);
        assert_eq!(cache.bytes(), cache.len() * 10);
    }
}
