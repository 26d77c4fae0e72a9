//! KIP-890 part 1 on one broker: which partitions each producer's ongoing transaction
//! holds, shared by every shard, so the produce path can refuse a transactional batch
//! for a partition that was never added to the transaction (INVALID_TXN_STATE) before
//! it is appended — synchronously, keeping a connection's produces in order.
//!
//! The coordinator publishes an id's partitions whenever it installs an Ongoing state
//! and withdraws them at any other (Prepare*, Complete*, expiry), so a batch sent after
//! EndTxn is refused too. Touched only for transactional batches and coordinator
//! transitions; the lock is held for one map operation.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::protocol::errors as ec;

/// A producer's epoch and the partitions of its ongoing transaction.
type Ongoing = (i16, HashSet<(String, i32)>);

#[derive(Debug, Default)]
pub struct OpenPartitions {
    by_producer: Mutex<HashMap<i64, Ongoing>>,
    /// Partitions a coordinator on another broker confirmed in a producer's open
    /// transaction (`txn::route`), until a marker for the producer arrives here.
    verified: Mutex<HashMap<i64, Ongoing>>,
}

impl OpenPartitions {
    pub fn publish(&self, producer_id: i64, epoch: i16, partitions: HashSet<(String, i32)>) {
        let mut m = self.by_producer.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(producer_id, (epoch, partitions));
    }

    pub fn withdraw(&self, producer_id: i64) {
        let mut m = self.by_producer.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(&producer_id);
    }

    /// Keeps what a remote coordinator confirmed: `partitions` are in the open
    /// transaction of (producer, epoch). A new epoch replaces an older one's.
    pub fn remember(&self, producer_id: i64, epoch: i16, partitions: Vec<(String, i32)>) {
        let mut m = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let entry = m
            .entry(producer_id)
            .or_insert_with(|| (epoch, HashSet::new()));
        if entry.0 != epoch {
            *entry = (epoch, HashSet::new());
        }
        entry.1.extend(partitions);
    }

    /// Whether a remote coordinator confirmed `partition` for (producer, epoch).
    pub fn remembered(&self, producer_id: i64, epoch: i16, partition: &(String, i32)) -> bool {
        let m = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&producer_id)
            .is_some_and(|(e, parts)| *e == epoch && parts.contains(partition))
    }

    /// A marker for the producer reached this broker: its transaction is over, the next
    /// one is verified again.
    pub fn forget(&self, producer_id: i64) {
        let mut m = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(&producer_id);
    }

    /// Whether a transactional batch of (producer, epoch) may go to `partition`:
    /// INVALID_PRODUCER_EPOCH from an older epoch, INVALID_TXN_STATE when the partition
    /// is not in an ongoing transaction of the producer.
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), i16> {
        let m = self.by_producer.lock().unwrap_or_else(|e| e.into_inner());
        match m.get(&producer_id) {
            Some((current, _)) if epoch < *current => Err(ec::INVALID_PRODUCER_EPOCH),
            Some((current, parts))
                if epoch == *current && parts.contains(&(topic.to_string(), partition)) =>
            {
                Ok(())
            }
            _ => Err(ec::INVALID_TXN_STATE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_added_partitions_of_the_current_epoch_pass() {
        let open = OpenPartitions::default();
        assert_eq!(open.check(7, 0, "t", 0), Err(ec::INVALID_TXN_STATE));
        open.publish(7, 2, [("t".to_string(), 0)].into_iter().collect());
        assert_eq!(open.check(7, 2, "t", 0), Ok(()));
        assert_eq!(open.check(7, 2, "t", 1), Err(ec::INVALID_TXN_STATE));
        assert_eq!(open.check(7, 1, "t", 0), Err(ec::INVALID_PRODUCER_EPOCH));
        open.withdraw(7);
        assert_eq!(open.check(7, 2, "t", 0), Err(ec::INVALID_TXN_STATE));
    }

    #[test]
    fn remote_verifications_last_until_a_marker() {
        let open = OpenPartitions::default();
        let p = ("t".to_string(), 1);
        assert!(!open.remembered(7, 0, &p));
        open.remember(7, 0, vec![p.clone()]);
        assert!(open.remembered(7, 0, &p));
        assert!(
            !open.remembered(7, 1, &p),
            "another epoch is another transaction"
        );
        open.remember(7, 1, vec![("u".to_string(), 0)]);
        assert!(!open.remembered(7, 1, &p), "a new epoch starts afresh");
        open.forget(7);
        assert!(!open.remembered(7, 1, &("u".to_string(), 0)));
    }
}
