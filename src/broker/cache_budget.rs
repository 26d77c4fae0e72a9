//! Each shard's budget for the batch cache (`storage::cache`): how it is split among
//! the shard's partitions (`cache_share_bytes`, re-read by every log before it caches a
//! write) and the small fixed cache of internal topics (`cache_bound`).

use std::cell::Cell;
use std::rc::Rc;

/// Memory a shard spends on caching recent batches for tailing consumers, shared evenly
/// by the partitions it owns.
pub const SHARD_CACHE_BYTES_MAX: usize = 512 << 20;
/// A partition's share never drops below this (a few large batches), so with very many
/// partitions the total is `partitions * PARTITION_CACHE_BYTES_MIN` at most.
pub const PARTITION_CACHE_BYTES_MIN: usize = 256 << 10;
/// Nor rises above this: one partition cannot take the whole budget.
pub const PARTITION_CACHE_BYTES_MAX: usize = 8 << 20;

/// The cache of a partition of an internal topic (`__consumer_offsets`,
/// `__transaction_state`). Their records are read back only at a coordinator's load
/// (once per leadership, the whole log, mostly from disk) and by followers at the tail, so a full
/// share would be memory nothing reads: with 50 offsets partitions, 400 MiB once groups
/// have committed for long enough (the session-8 soak's slow last slope).
pub const INTERNAL_TOPIC_CACHE_BYTES_MAX: usize = PARTITION_CACHE_BYTES_MIN;

/// The per-partition share of the shard's cache budget, read by every log of the shard
/// before it caches a write.
pub(super) fn cache_share_bytes(partitions: usize) -> usize {
    (SHARD_CACHE_BYTES_MAX / partitions.max(1))
        .clamp(PARTITION_CACHE_BYTES_MIN, PARTITION_CACHE_BYTES_MAX)
}

/// A partition's cache bound and the share cell it follows: the shard's share for a
/// data topic, `INTERNAL_TOPIC_CACHE_BYTES_MAX` (fixed) for an internal one.
pub(super) fn cache_bound(
    topic: &str,
    share: &Rc<Cell<usize>>,
) -> (usize, Option<Rc<Cell<usize>>>) {
    if crate::txn::is_internal_topic(topic) {
        (INTERNAL_TOPIC_CACHE_BYTES_MAX.min(share.get()), None)
    } else {
        (share.get(), Some(share.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_topics_get_a_small_fixed_cache() {
        let share = Rc::new(Cell::new(PARTITION_CACHE_BYTES_MAX));
        for topic in ["__consumer_offsets", "__transaction_state"] {
            let (bound, follows) = cache_bound(topic, &share);
            assert_eq!(bound, INTERNAL_TOPIC_CACHE_BYTES_MAX);
            assert!(follows.is_none());
        }
        let (bound, follows) = cache_bound("orders", &share);
        assert_eq!(bound, PARTITION_CACHE_BYTES_MAX);
        assert!(Rc::ptr_eq(&follows.unwrap(), &share));
        const { assert!(INTERNAL_TOPIC_CACHE_BYTES_MAX < PARTITION_CACHE_BYTES_MAX) };
    }

    #[test]
    fn cache_share_keeps_the_shard_total_bounded() {
        assert_eq!(cache_share_bytes(0), PARTITION_CACHE_BYTES_MAX);
        assert_eq!(cache_share_bytes(1), PARTITION_CACHE_BYTES_MAX);
        assert_eq!(cache_share_bytes(128), SHARD_CACHE_BYTES_MAX / 128);
        assert_eq!(cache_share_bytes(1 << 20), PARTITION_CACHE_BYTES_MIN);
        for n in [1, 7, 64, 100, 2048] {
            assert!(
                n * cache_share_bytes(n)
                    <= SHARD_CACHE_BYTES_MAX.max(n * PARTITION_CACHE_BYTES_MIN)
            );
        }
    }
}
