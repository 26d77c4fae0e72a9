//! Offsets committed inside a transaction (TxnOffsetCommit): held on the group's home
//! shard, per producer id, until the transaction ends. A commit marker for the group's
//! `__consumer_offsets` partition makes them ordinary committed offsets (written and
//! stored as an OffsetCommit would); an abort marker drops them. Until then OffsetFetch
//! does not see them, as in Kafka.
//!
//! Durable as in Kafka: TxnOffsetCommit writes them to the group's partition as a
//! transactional batch of the producer before answering, and the marker is written
//! there too (a control batch) before it is applied. Replaying the partition
//! (`loading`: start-up, or a new group coordinator after a failover) stages the
//! transactional offsets again and applies or drops them at their marker, so a
//! restart or failover between TxnOffsetCommit and the commit loses nothing.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use super::coordinator::CommitCheck;
use super::offsets::OFFSETS_TOPIC;
use super::Committed;
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::txn::markers::Marker;

/// Partitions one producer may hold pending across all groups of a shard: a real
/// transaction commits the offsets of one consumer's assignment, far below this.
pub const PENDING_PARTITIONS_PER_PRODUCER_MAX: usize = 100_000;

type Offsets = Vec<((String, i32), Committed)>;

/// One producer's pending offsets: group → (topic, partition) → offset.
type ByGroup = HashMap<String, HashMap<(String, i32), Committed>>;

/// Pending offsets of one shard's groups: producer id → group → (topic, partition) →
/// offset (the latest TxnOffsetCommit wins).
#[derive(Debug, Default)]
pub struct PendingTxnOffsets {
    by_producer: HashMap<i64, ByGroup>,
}

impl PendingTxnOffsets {
    /// Holds `offsets` for `group` until `producer_id`'s transaction ends.
    pub fn stage(&mut self, producer_id: i64, group: &str, offsets: Offsets) -> Result<(), i16> {
        let groups = self.by_producer.entry(producer_id).or_default();
        let held: usize = groups.values().map(HashMap::len).sum();
        if held.saturating_add(offsets.len()) > PENDING_PARTITIONS_PER_PRODUCER_MAX {
            return Err(ec::INVALID_REQUEST);
        }
        groups.entry(group.to_string()).or_default().extend(offsets);
        Ok(())
    }

    /// Forgets what every producer holds for the groups `in_partition` accepts (their
    /// partition is no longer coordinated here; a new load stages them again).
    pub fn drop_groups(&mut self, in_partition: impl Fn(&str) -> bool) {
        for groups in self.by_producer.values_mut() {
            groups.retain(|g, _| !in_partition(g));
        }
        self.by_producer.retain(|_, groups| !groups.is_empty());
    }

    /// Takes what `producer_id` holds for the groups `in_partition` accepts.
    pub fn take(
        &mut self,
        producer_id: i64,
        in_partition: impl Fn(&str) -> bool,
    ) -> Vec<(String, Offsets)> {
        let Some(groups) = self.by_producer.get_mut(&producer_id) else {
            return Vec::new();
        };
        let names: Vec<String> = groups.keys().filter(|g| in_partition(g)).cloned().collect();
        let out = names
            .into_iter()
            .filter_map(|g| groups.remove(&g).map(|o| (g, o.into_iter().collect())))
            .collect();
        if groups.is_empty() {
            self.by_producer.remove(&producer_id);
        }
        out
    }
}

/// TxnOffsetCommit on the group's home shard. A request that names a member and
/// generation (v3+) is checked like an OffsetCommit; older ones are not (Kafka too).
/// The offsets are durable (a transactional batch of `producer`) before they are held.
pub async fn stage(
    shard: &Rc<Shard>,
    group: &str,
    producer: (i64, i16),
    member: (i32, String, Option<String>),
    offsets: Offsets,
) -> i16 {
    let producer_id = producer.0;
    if let Err(code) = super::service::check_coordinator(shard, group) {
        return code;
    }
    let (generation, member_id, instance) = member;
    if generation >= 0 {
        let check = shard.groups.borrow_mut().offset_commit_check(
            Instant::now(),
            group,
            generation,
            &member_id,
            instance.as_deref(),
            // The consumer protocol's commit rules (member epoch) as of OffsetCommit v9.
            9,
        );
        if let CommitCheck::Refused(code) = check {
            return code;
        }
    }
    if let Err(code) = super::service::persist_txn_offsets(shard, group, producer, &offsets).await {
        return code;
    }
    match shard
        .txn_offsets
        .borrow_mut()
        .stage(producer_id, group, offsets)
    {
        Ok(()) => ec::NONE,
        Err(code) => code,
    }
}

/// A transaction marker reached `__consumer_offsets` partition `partition` (on this, its
/// home shard): the marker is written there durably, then on commit the producer's
/// pending offsets for the groups of that partition are committed; on abort they are
/// dropped.
pub async fn complete(shard: &Rc<Shard>, partition: i32, marker: &Marker) -> i16 {
    let Some(log) = shard.partition_log(OFFSETS_TOPIC, partition) else {
        return ec::UNKNOWN_TOPIC_OR_PARTITION;
    };
    let appended = match log.append_marker(
        marker.producer_id,
        marker.producer_epoch,
        marker.commit,
        marker.coordinator_epoch,
    ) {
        Ok(info) => info,
        Err(e) => return e.kafka_error_code(),
    };
    let mut waited = log.wait_durable(appended.last_offset).await;
    if waited.is_ok() && shard.replicated_isr(OFFSETS_TOPIC, partition).is_some() {
        waited = log.wait_high_watermark(appended.last_offset).await;
    }
    if let Err(e) = waited {
        return e.kafka_error_code();
    }
    let producer_id = marker.producer_id;
    let taken = shard.txn_offsets.borrow_mut().take(producer_id, |g| {
        super::service::group_partition(shard, g) == partition
    });
    if !marker.commit {
        return ec::NONE;
    }
    for (group, offsets) in taken {
        let code = super::service::commit(shard, group.clone(), offsets).await;
        if code != ec::NONE {
            tracing::warn!(%group, producer_id, code, "committing transactional offsets failed");
            return code;
        }
    }
    ec::NONE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(offset: i64) -> Committed {
        Committed {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 1,
        }
    }

    #[test]
    fn staged_offsets_are_taken_per_producer_and_partition() {
        let mut p = PendingTxnOffsets::default();
        p.stage(7, "g1", vec![(("t".into(), 0), c(5))]).unwrap();
        p.stage(7, "g1", vec![(("t".into(), 0), c(9))]).unwrap();
        p.stage(7, "g2", vec![(("t".into(), 1), c(3))]).unwrap();
        p.stage(8, "g1", vec![(("t".into(), 0), c(1))]).unwrap();
        let g1 = p.take(7, |g| g == "g1");
        assert_eq!(
            g1,
            vec![("g1".to_string(), vec![(("t".to_string(), 0), c(9))])]
        );
        assert!(p.take(7, |g| g == "g1").is_empty());
        assert_eq!(p.take(7, |_| true).len(), 1);
        assert_eq!(p.take(8, |_| true).len(), 1);
        assert!(p.by_producer.is_empty());
    }

    #[test]
    fn dropped_groups_leave_the_others() {
        let mut p = PendingTxnOffsets::default();
        p.stage(7, "g1", vec![(("t".into(), 0), c(5))]).unwrap();
        p.stage(7, "g2", vec![(("t".into(), 0), c(6))]).unwrap();
        p.stage(8, "g1", vec![(("t".into(), 0), c(1))]).unwrap();
        p.drop_groups(|g| g == "g1");
        assert!(p.take(8, |_| true).is_empty());
        assert_eq!(
            p.take(7, |_| true),
            vec![("g2".to_string(), vec![(("t".to_string(), 0), c(6))])]
        );
    }

    #[test]
    fn pending_offsets_are_bounded() {
        let mut p = PendingTxnOffsets::default();
        let many: Offsets = (0..PENDING_PARTITIONS_PER_PRODUCER_MAX as i32)
            .map(|i| (("t".to_string(), i), c(1)))
            .collect();
        p.stage(1, "g", many).unwrap();
        assert_eq!(
            p.stage(1, "h", vec![(("t".into(), 0), c(1))]),
            Err(ec::INVALID_REQUEST)
        );
    }
}
