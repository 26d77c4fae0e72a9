//! Partition reassignment (KIP-455), as deterministic state changes.
//!
//! A reassignment of a partition from its original replicas OR to target replicas TR
//! makes the replica list TR followed by OR's members not in TR, with `adding` = TR−OR
//! and `removing` = OR−TR. The added brokers open the replica and fetch like any
//! follower; the leader adds them to the ISR (`AlterPartition`) once caught up. As soon
//! as every TR member is in the ISR the reassignment completes, in the same apply that
//! saw the ISR condition (so every node completes at the same log index, with no extra
//! command and no clock): replicas = TR, ISR = ISR ∩ TR, and a leader that is being
//! removed hands over to TR's first live ISR member (leader epoch bump). Removed
//! brokers then delete their copy (`broker::cluster_sync`).
//!
//! A new reassignment while one is in progress starts from the same original replicas
//! (Kafka's rule); cancelling (no target) goes back to them, dropping added replicas.

use std::collections::BTreeSet;

use super::state::{ClusterState, Reply};
use super::topics::{PartitionState, NO_LEADER};
use crate::protocol::errors as ec;

/// A refusal with its Kafka error code.
pub type Refusal = (i16, String);

impl PartitionState {
    /// Whether a reassignment is in progress.
    pub fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replicas before the reassignment in progress (all of them when none is).
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding.contains(r))
            .collect()
    }

    /// The replicas the reassignment in progress ends with.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect()
    }

    /// Completes the reassignment in progress if every target replica is in the ISR
    /// and, when the leader is being removed, a target replica can take over.
    fn complete_if_ready(&mut self, fenced: &BTreeSet<i32>) -> bool {
        if !self.reassigning() {
            return false;
        }
        let target = self.target_replicas();
        if !target.iter().all(|r| self.isr.contains(r)) {
            return false;
        }
        let isr: Vec<i32> = target
            .iter()
            .copied()
            .filter(|r| self.isr.contains(r))
            .collect();
        let leader = if target.contains(&self.leader) {
            self.leader
        } else {
            match target
                .iter()
                .copied()
                .find(|r| isr.contains(r) && !fenced.contains(r))
            {
                Some(next) => next,
                None => return false,
            }
        };
        self.replicas = target;
        self.isr = isr;
        self.adding.clear();
        self.removing.clear();
        self.set_leader(leader);
        true
    }
}

/// Checks a target replica list as Kafka does: not empty, no broker twice, every
/// broker registered.
fn check_target(state: &ClusterState, target: &[i32]) -> Result<(), Refusal> {
    let bad = |why: String| Err((ec::INVALID_REPLICA_ASSIGNMENT, why));
    if target.is_empty() {
        return bad("The manual partition assignment includes an empty replica list.".into());
    }
    let distinct: BTreeSet<_> = target.iter().collect();
    if distinct.len() != target.len() {
        return bad(format!(
            "The manual partition assignment includes a duplicate replica: {target:?}"
        ));
    }
    if let Some(unknown) = target.iter().find(|r| !state.brokers.contains_key(r)) {
        return bad(format!(
            "The manual partition assignment includes broker {unknown}, which is not registered."
        ));
    }
    Ok(())
}

impl ClusterState {
    fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        let t = self.topics.get(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|i| t.partitions.get(i))
    }

    /// Whether `AlterPartitionReassignment` would apply, and Kafka's error if not.
    pub fn check_reassignment(
        &self,
        topic: &str,
        partition: i32,
        target: Option<&[i32]>,
    ) -> Result<(), Refusal> {
        let Some(p) = self.partition(topic, partition) else {
            return Err((
                ec::UNKNOWN_TOPIC_OR_PARTITION,
                format!("Partition {topic}-{partition} does not exist."),
            ));
        };
        match target {
            Some(target) => check_target(self, target),
            None if !p.reassigning() => Err((
                ec::NO_REASSIGNMENT_IN_PROGRESS,
                format!("No reassignment of {topic}-{partition} is in progress."),
            )),
            None if !p.original_replicas().iter().any(|r| p.isr.contains(r)) => Err((
                ec::INVALID_REPLICA_ASSIGNMENT,
                format!(
                    "Cannot cancel the reassignment of {topic}-{partition}: no original replica is in the ISR."
                ),
            )),
            None => Ok(()),
        }
    }

    /// `AlterPartitionReassignment`: starts (or replaces) a reassignment to `target`,
    /// or cancels the one in progress when `target` is `None`.
    pub(super) fn reassign(
        &mut self,
        topic: &str,
        partition: i32,
        target: Option<&[i32]>,
    ) -> Reply {
        if let Err((_, why)) = self.check_reassignment(topic, partition, target) {
            return Reply::Rejected(why);
        }
        let fenced = self.fenced_ids();
        let p = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(partition as usize))
            .expect("checked above");
        let original = p.original_replicas();
        let replicas: Vec<i32> = match target {
            Some(target) => target
                .iter()
                .copied()
                .chain(original.iter().copied().filter(|r| !target.contains(r)))
                .collect(),
            None => original.clone(),
        };
        p.adding = replicas
            .iter()
            .copied()
            .filter(|r| !original.contains(r))
            .collect();
        p.removing = match target {
            Some(target) => original
                .iter()
                .copied()
                .filter(|r| !target.contains(r))
                .collect(),
            None => Vec::new(),
        };
        p.isr.retain(|r| replicas.contains(r));
        p.replicas = replicas;
        // Replacing or cancelling may drop an added replica that had come to lead.
        let leader = if p.replicas.contains(&p.leader) {
            p.leader
        } else {
            p.electable(&fenced).unwrap_or(NO_LEADER)
        };
        p.set_leader(leader);
        p.complete_if_ready(&fenced);
        Reply::Ok
    }

    /// After an ISR change of `topic`-`partition`: completes its reassignment if the
    /// whole target is now in sync.
    pub(super) fn complete_reassignment(&mut self, topic: &str, partition: i32) {
        let fenced = self.fenced_ids();
        if let Some(p) = self.topics.get_mut(topic).and_then(|t| {
            usize::try_from(partition)
                .ok()
                .and_then(|i| t.partitions.get_mut(i))
        }) {
            p.complete_if_ready(&fenced);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::state::Command;
    use super::super::test_support::live_brokers;
    use super::*;

    /// Brokers `ids` live, and topic "t" with one partition on broker 1.
    fn cluster(ids: &[i32]) -> (ClusterState, u64) {
        let (mut state, mut index) = live_brokers(ids);
        index += 1;
        state.apply(
            index,
            &Command::CreateTopic {
                name: "t".into(),
                id: "00".repeat(16),
                configs: BTreeMap::new(),
                assignment: vec![vec![1]],
            },
        );
        (state, index)
    }

    fn reassign(target: Option<Vec<i32>>) -> Command {
        Command::AlterPartitionReassignment {
            topic: "t".into(),
            partition: 0,
            target,
        }
    }

    fn isr(p: &PartitionState, isr: Vec<i32>) -> Command {
        Command::AlterPartition {
            topic: "t".into(),
            partition: 0,
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr,
        }
    }

    fn p(s: &ClusterState) -> PartitionState {
        s.topics["t"].partitions[0].clone()
    }

    #[test]
    fn growing_completes_once_every_target_replica_is_in_sync() {
        let (mut s, mut i) = cluster(&[1, 2, 3]);
        i += 1;
        assert_eq!(s.apply(i, &reassign(Some(vec![2, 3, 1]))), Reply::Ok);
        let q = p(&s);
        assert_eq!(
            (q.replicas.clone(), q.adding.clone(), q.removing.clone()),
            (vec![2, 3, 1], vec![2, 3], vec![])
        );
        assert_eq!((q.leader, q.isr.clone()), (1, vec![1]));
        i += 1;
        assert_eq!(s.apply(i, &isr(&q, vec![1, 2])), Reply::Ok);
        assert!(p(&s).reassigning(), "3 is not in sync yet");
        i += 1;
        assert_eq!(s.apply(i, &isr(&p(&s), vec![1, 2, 3])), Reply::Ok);
        let q = p(&s);
        assert!(!q.reassigning());
        assert_eq!((q.replicas, q.isr), (vec![2, 3, 1], vec![2, 3, 1]));
        assert_eq!((q.leader, q.leader_epoch), (1, 0), "the leader stays");
    }

    #[test]
    fn moving_off_the_leader_hands_leadership_to_the_target() {
        let (mut s, mut i) = cluster(&[1, 2, 3]);
        i += 1;
        s.apply(i, &reassign(Some(vec![3, 2])));
        let q = p(&s);
        assert_eq!(
            (q.adding.clone(), q.removing.clone()),
            (vec![3, 2], vec![1])
        );
        i += 1;
        s.apply(i, &isr(&q, vec![1, 2, 3]));
        let q = p(&s);
        assert_eq!((q.replicas, q.isr), (vec![3, 2], vec![3, 2]));
        assert_eq!((q.leader, q.leader_epoch), (3, 1));
    }

    #[test]
    fn shrinking_or_reordering_completes_at_once() {
        let (mut s, mut i) = cluster(&[1, 2, 3]);
        i += 1;
        s.apply(i, &reassign(Some(vec![1, 2])));
        i += 1;
        s.apply(i, &isr(&p(&s), vec![1, 2]));
        i += 1;
        assert_eq!(s.apply(i, &reassign(Some(vec![2]))), Reply::Ok);
        let q = p(&s);
        assert!(!q.reassigning());
        assert_eq!((q.replicas, q.isr, q.leader), (vec![2], vec![2], 2));
    }

    #[test]
    fn cancel_and_replace_start_from_the_original_replicas() {
        let (mut s, mut i) = cluster(&[1, 2, 3]);
        i += 1;
        s.apply(i, &reassign(Some(vec![2, 3])));
        i += 1;
        s.apply(i, &isr(&p(&s), vec![1, 2]));
        // Replaced: 2 (added, in sync) is no longer wanted and leaves the ISR.
        i += 1;
        s.apply(i, &reassign(Some(vec![3])));
        let q = p(&s);
        assert_eq!(
            (
                q.replicas.clone(),
                q.adding.clone(),
                q.removing.clone(),
                q.isr.clone()
            ),
            (vec![3, 1], vec![3], vec![1], vec![1])
        );
        i += 1;
        assert_eq!(s.apply(i, &reassign(None)), Reply::Ok);
        let q = p(&s);
        assert!(!q.reassigning());
        assert_eq!((q.replicas, q.isr, q.leader), (vec![1], vec![1], 1));
        assert_eq!(
            s.check_reassignment("t", 0, None).unwrap_err().0,
            ec::NO_REASSIGNMENT_IN_PROGRESS
        );
    }

    #[test]
    fn bad_targets_are_refused_with_kafkas_codes() {
        let (mut s, i) = cluster(&[1, 2]);
        let before = s.clone();
        for (target, code) in [
            (Some(vec![]), ec::INVALID_REPLICA_ASSIGNMENT),
            (Some(vec![2, 2]), ec::INVALID_REPLICA_ASSIGNMENT),
            (Some(vec![9]), ec::INVALID_REPLICA_ASSIGNMENT),
            (None, ec::NO_REASSIGNMENT_IN_PROGRESS),
        ] {
            let err = s.check_reassignment("t", 0, target.as_deref()).unwrap_err();
            assert_eq!(err.0, code, "{target:?}");
            assert!(matches!(
                s.apply(i + 1, &reassign(target)),
                Reply::Rejected(_)
            ));
            assert_eq!(s, before);
        }
        for (topic, partition) in [("t", 1), ("t", -1), ("u", 0)] {
            let err = s
                .check_reassignment(topic, partition, Some(&[1]))
                .unwrap_err();
            assert_eq!(err.0, ec::UNKNOWN_TOPIC_OR_PARTITION);
        }
    }
}
