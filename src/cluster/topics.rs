//! Topics in the cluster metadata: replica lists, ISR, leaders and their epochs, and the
//! leader elections that fencing and unfencing a broker cause. Pure, like all of
//! `state`: the active controller decides placement; elections follow from the state.
//!
//! Election rule (Kafka's, clean): the new leader is the first replica, in replica
//! order, that is in the ISR and not fenced. A fenced broker leaves every ISR it is in
//! unless it is the last member (Kafka keeps the last ISR member, so that nothing
//! acknowledged is lost by electing an out-of-sync replica); a partition whose ISR holds
//! no live broker has leader -1 (offline) until one comes back.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::state::{ClusterState, Reply};

/// No leader (Kafka's -1): the partition is offline.
pub const NO_LEADER: i32 = -1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    /// Bumped at every leader change.
    pub leader_epoch: i32,
    /// Bumped at every change of this partition (Kafka's partition epoch).
    pub partition_epoch: i32,
    /// A reassignment in progress (KIP-455): replicas being added (target minus
    /// original) and removed (original minus target); `replicas` holds both sets
    /// until it completes (see `reassign.rs`). Empty when none is in progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    /// Kafka's topic id, 32 hex digits.
    pub id: String,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<PartitionState>,
}

impl PartitionState {
    fn new(replicas: Vec<i32>, fenced: &BTreeSet<i32>) -> PartitionState {
        let mut p = PartitionState {
            isr: replicas.clone(),
            replicas,
            leader: NO_LEADER,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        };
        p.leader = p.electable(fenced).unwrap_or(NO_LEADER);
        p
    }

    /// The first replica in the ISR that is not fenced.
    pub(super) fn electable(&self, fenced: &BTreeSet<i32>) -> Option<i32> {
        self.replicas
            .iter()
            .copied()
            .find(|r| self.isr.contains(r) && !fenced.contains(r))
    }

    pub(super) fn set_leader(&mut self, leader: i32) {
        if leader != self.leader {
            self.leader = leader;
            self.leader_epoch += 1;
        }
        self.partition_epoch += 1;
    }
}

/// How long after a broker went down (fenced, or restarted unfenced) a failover prefers
/// other ISR members as the new leader. A client that needed the broker while it was
/// gone backs off its reconnects, and librdkafka's backoff doubles up to
/// `reconnect.backoff.max.ms` (10 s by default): a broker that restarts and leads again
/// within that time is one such a client may not try for up to 10 s. Kafka elects the
/// first ISR member in replica order; so do we, among the settled ones. The extra second
/// covers the client's attempts between the kill and the fence.
pub const LEADER_SETTLE_MS: u64 = 11_000;

/// The new leader of a failover: the first live ISR member in replica order that went
/// down at least `LEADER_SETTLE_MS` before `now_ms` (or never); failing that, the live
/// ISR member that went down longest ago (replica order breaks ties). Deterministic: the
/// times come from commands, never from a clock here.
pub(super) fn settled_first(
    p: &PartitionState,
    fenced: &BTreeSet<i32>,
    down_at: &BTreeMap<i32, u64>,
    now_ms: u64,
) -> Option<i32> {
    let down = |r: &i32| down_at.get(r).copied().unwrap_or(0);
    let mut candidates = p
        .replicas
        .iter()
        .filter(|r| p.isr.contains(r) && !fenced.contains(r));
    let settled = candidates
        .clone()
        .find(|r| down(r) == 0 || now_ms.saturating_sub(down(r)) >= LEADER_SETTLE_MS);
    // min_by_key keeps the first of equal keys: replica order breaks ties.
    settled
        .or_else(|| candidates.by_ref().min_by_key(|r| down(r)))
        .copied()
}

impl ClusterState {
    pub(super) fn fenced_ids(&self) -> BTreeSet<i32> {
        self.brokers
            .values()
            .filter(|b| b.fenced)
            .map(|b| b.registration.node_id)
            .collect()
    }

    /// `CreateTopic`: every replica must be a registered broker, no list may repeat one,
    /// and all lists have the same length.
    pub(super) fn create_topic(
        &mut self,
        name: &str,
        id: &str,
        configs: &BTreeMap<String, String>,
        assignment: &[Vec<i32>],
    ) -> Reply {
        if self.topics.contains_key(name) {
            return Reply::Rejected(format!("Topic '{name}' already exists."));
        }
        if let Err(why) = self.check_assignment(assignment) {
            return Reply::Rejected(why);
        }
        let fenced = self.fenced_ids();
        let partitions = assignment
            .iter()
            .map(|replicas| PartitionState::new(replicas.clone(), &fenced))
            .collect();
        self.topics.insert(
            name.to_owned(),
            TopicState {
                id: id.to_owned(),
                configs: configs.clone(),
                partitions,
            },
        );
        Reply::Ok
    }

    /// `CreatePartitions`: appends partitions with these replica lists.
    pub(super) fn add_partitions(&mut self, name: &str, assignment: &[Vec<i32>]) -> Reply {
        if let Err(why) = self.check_assignment(assignment) {
            return Reply::Rejected(why);
        }
        let fenced = self.fenced_ids();
        match self.topics.get_mut(name) {
            None => Reply::Rejected(format!("Topic '{name}' does not exist.")),
            Some(topic) => {
                topic.partitions.extend(
                    assignment
                        .iter()
                        .map(|replicas| PartitionState::new(replicas.clone(), &fenced)),
                );
                Reply::Ok
            }
        }
    }

    pub(super) fn delete_topic(&mut self, name: &str) -> Reply {
        match self.topics.remove(name) {
            Some(_) => Reply::Ok,
            None => Reply::Rejected(format!("Topic '{name}' does not exist.")),
        }
    }

    /// `AlterPartition`: the leader's new ISR. It must contain the leader, name only
    /// replicas, and never add a fenced broker (it could not have caught up).
    pub(super) fn alter_partition(
        &mut self,
        topic: &str,
        partition: i32,
        (leader, leader_epoch, partition_epoch): (i32, i32, i32),
        isr: &[i32],
    ) -> Reply {
        let fenced = self.fenced_ids();
        let Some(p) = self.topics.get_mut(topic).and_then(|t| {
            usize::try_from(partition)
                .ok()
                .and_then(|i| t.partitions.get_mut(i))
        }) else {
            return Reply::Rejected(format!("{topic}-{partition} does not exist"));
        };
        if p.leader != leader || p.leader_epoch != leader_epoch {
            return Reply::Rejected(format!(
                "{topic}-{partition}: broker {leader} at epoch {leader_epoch} no longer leads"
            ));
        }
        if p.partition_epoch != partition_epoch {
            return Reply::Rejected(format!(
                "{topic}-{partition}: partition epoch {partition_epoch} is stale (now {})",
                p.partition_epoch
            ));
        }
        let valid = isr.contains(&leader)
            && isr.iter().all(|r| p.replicas.contains(r))
            && isr.iter().all(|r| p.isr.contains(r) || !fenced.contains(r));
        if !valid {
            return Reply::Rejected(format!("{topic}-{partition}: invalid ISR {isr:?}"));
        }
        // Kept in replica order, so every node shows the same list.
        p.isr = p
            .replicas
            .iter()
            .copied()
            .filter(|r| isr.contains(r))
            .collect();
        p.partition_epoch += 1;
        Reply::Ok
    }

    fn check_assignment(&self, assignment: &[Vec<i32>]) -> Result<(), String> {
        let rf = assignment.first().map_or(0, Vec::len);
        for (p, replicas) in assignment.iter().enumerate() {
            if replicas.is_empty() || replicas.len() != rf {
                return Err(format!(
                    "partition {p}: every partition needs {rf} replicas"
                ));
            }
            let distinct: BTreeSet<_> = replicas.iter().collect();
            if distinct.len() != replicas.len() {
                return Err(format!(
                    "partition {p}: a broker appears twice in {replicas:?}"
                ));
            }
            if let Some(unknown) = replicas.iter().find(|r| !self.brokers.contains_key(r)) {
                return Err(format!("partition {p}: broker {unknown} is not registered"));
            }
        }
        Ok(())
    }

    /// After `node_id` was fenced (at `now_ms`, the proposer's clock): it leaves the ISRs
    /// it is not the last member of, and the partitions it led get new leaders (or go
    /// offline), preferring brokers that were not down shortly before (`settled_first`).
    pub(super) fn on_fenced(&mut self, node_id: i32, now_ms: u64) {
        let fenced = self.fenced_ids();
        let down_at: BTreeMap<i32, u64> = self
            .brokers
            .iter()
            .map(|(&id, b)| (id, b.down_at_ms))
            .collect();
        for p in self
            .topics
            .values_mut()
            .flat_map(|t| t.partitions.iter_mut())
        {
            let in_isr = p.isr.contains(&node_id);
            if in_isr && p.isr.len() > 1 {
                p.isr.retain(|&r| r != node_id);
                p.partition_epoch += 1;
            }
            if p.leader == node_id || (in_isr && p.leader == NO_LEADER) {
                let next = settled_first(p, &fenced, &down_at, now_ms).unwrap_or(NO_LEADER);
                p.set_leader(next);
            }
        }
    }

    /// After `node_id` was unfenced: offline partitions it can lead get it as leader.
    pub(super) fn on_unfenced(&mut self) {
        let fenced = self.fenced_ids();
        for p in self
            .topics
            .values_mut()
            .flat_map(|t| t.partitions.iter_mut())
        {
            if p.leader == NO_LEADER {
                if let Some(next) = p.electable(&fenced) {
                    p.set_leader(next);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::{BrokerRegistration, Command};
    use super::super::test_support::{fence, live_brokers as cluster};
    use super::*;

    fn create(assignment: Vec<Vec<i32>>) -> Command {
        Command::CreateTopic {
            name: "t".into(),
            id: "00".repeat(16),
            configs: BTreeMap::new(),
            assignment,
        }
    }

    /// (leader, leader epoch, isr) of each partition of "t".
    fn view(state: &ClusterState) -> Vec<(i32, i32, Vec<i32>)> {
        state.topics["t"]
            .partitions
            .iter()
            .map(|p| (p.leader, p.leader_epoch, p.isr.clone()))
            .collect()
    }

    #[test]
    fn alter_partition_only_from_the_current_leader_at_the_current_epochs() {
        let (mut s, mut i) = cluster(&[1, 2, 3]);
        i += 1;
        assert_eq!(s.apply(i, &create(vec![vec![1, 2, 3]])), Reply::Ok);
        let alter =
            |leader, leader_epoch, partition_epoch, isr: Vec<i32>| Command::AlterPartition {
                topic: "t".into(),
                partition: 0,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            };
        // Shrink to {1, 3}, then a second request at the old partition epoch is stale.
        i += 1;
        assert_eq!(s.apply(i, &alter(1, 0, 0, vec![3, 1])), Reply::Ok);
        assert_eq!(view(&s), [(1, 0, vec![1, 3])]);
        i += 1;
        assert!(matches!(
            s.apply(i, &alter(1, 0, 0, vec![1])),
            Reply::Rejected(_)
        ));
        // Not the leader, or without the leader, or naming a non-replica: refused.
        for bad in [
            alter(2, 0, 1, vec![2]),
            alter(1, 0, 1, vec![3]),
            alter(1, 0, 1, vec![1, 4]),
        ] {
            i += 1;
            assert!(matches!(s.apply(i, &bad), Reply::Rejected(_)), "{bad:?}");
        }
        // A fenced broker is not added back.
        i += 1;
        s.apply(i, &fence(2, true));
        i += 1;
        assert!(matches!(
            s.apply(i, &alter(1, 0, 1, vec![1, 2, 3])),
            Reply::Rejected(_)
        ));
        i += 1;
        s.apply(i, &fence(2, false));
        i += 1;
        assert_eq!(s.apply(i, &alter(1, 0, 1, vec![1, 2, 3])), Reply::Ok);
        assert_eq!(view(&s), [(1, 0, vec![1, 2, 3])]);
    }

    #[test]
    fn fencing_moves_leadership_through_the_isr_and_keeps_the_last_member() {
        let (mut s, mut i) = cluster(&[1, 2, 3]);
        let mut apply = |s: &mut ClusterState, c: Command| {
            i += 1;
            s.apply(i, &c)
        };
        assert_eq!(
            apply(&mut s, create(vec![vec![1, 2, 3], vec![2, 3, 1]])),
            Reply::Ok
        );
        assert_eq!(view(&s), [(1, 0, vec![1, 2, 3]), (2, 0, vec![2, 3, 1])]);
        apply(&mut s, fence(1, true));
        assert_eq!(view(&s), [(2, 1, vec![2, 3]), (2, 0, vec![2, 3])]);
        apply(&mut s, fence(2, true));
        assert_eq!(view(&s), [(3, 2, vec![3]), (3, 1, vec![3])]);
        // The last ISR member stays in it; with it fenced nothing can lead.
        apply(&mut s, fence(3, true));
        assert_eq!(view(&s), [(NO_LEADER, 3, vec![3]), (NO_LEADER, 2, vec![3])]);
        // Broker 1 comes back, but it is not in sync: still offline (clean election).
        apply(&mut s, fence(1, false));
        assert_eq!(view(&s)[0].0, NO_LEADER);
        apply(&mut s, fence(3, false));
        assert_eq!(view(&s), [(3, 4, vec![3]), (3, 3, vec![3])]);
    }

    #[test]
    fn a_restart_re_registers_and_moves_leadership() {
        let (mut s, i) = cluster(&[1, 2]);
        s.apply(i + 1, &create(vec![vec![1, 2]]));
        s.apply(
            i + 2,
            &Command::RegisterBroker(BrokerRegistration {
                node_id: 1,
                incarnation: "b".into(),
                host: "h".into(),
                port: 1,
                rack: None,
                listeners: Vec::new(),
                at_ms: 0,
                cluster_id: String::new(),
            }),
        );
        assert_eq!(view(&s), [(2, 1, vec![2])]);
    }

    #[test]
    fn a_failover_prefers_brokers_not_down_within_the_settle_time() {
        let (mut s, mut i) = cluster(&[1, 2, 3]);
        let mut apply = |s: &mut ClusterState, c: Command| {
            i += 1;
            s.apply(i, &c)
        };
        let fence_at = |node_id, at_ms| Command::FenceBroker {
            node_id,
            incarnation: "a".into(),
            at_ms,
        };
        // The ISR whole again (the restarted broker caught up), as AlterPartition would.
        let rejoin =
            |s: &mut ClusterState| s.topics.get_mut("t").unwrap().partitions[0].isr = vec![1, 2, 3];
        apply(&mut s, create(vec![vec![1, 2, 3]]));
        let t0 = 1_000_000;
        apply(&mut s, fence_at(1, t0));
        assert_eq!(view(&s)[0].0, 2, "nobody was down: replica order");
        apply(&mut s, fence(1, false));
        rejoin(&mut s);
        apply(&mut s, fence_at(2, t0 + 3_000));
        assert_eq!(
            view(&s)[0].0,
            3,
            "1 was down 3 s ago: 3 leads though 1 comes first"
        );
        apply(&mut s, fence(2, false));
        rejoin(&mut s);
        apply(&mut s, fence_at(3, t0 + 6_000));
        assert_eq!(
            view(&s)[0].0,
            1,
            "both were down lately: the one down longest ago"
        );
        apply(&mut s, fence(3, false));
        rejoin(&mut s);
        apply(&mut s, fence_at(1, t0 + 6_000 + LEADER_SETTLE_MS));
        assert_eq!(
            view(&s)[0].0,
            2,
            "2 and 3 have settled: replica order again"
        );
        // A restart the quorum never fenced counts as down at its registration.
        apply(&mut s, fence(1, false));
        rejoin(&mut s);
        let later = t0 + 100_000;
        apply(
            &mut s,
            Command::RegisterBroker(BrokerRegistration {
                node_id: 3,
                incarnation: "b".into(),
                host: "h".into(),
                port: 1,
                rack: None,
                listeners: Vec::new(),
                at_ms: later,
                cluster_id: String::new(),
            }),
        );
        assert_eq!(s.brokers[&3].down_at_ms, later);
        assert_eq!(view(&s)[0].0, 2, "3 was not the leader: nothing moves");
        s.brokers.get_mut(&3).unwrap().fenced = false;
        rejoin(&mut s);
        apply(&mut s, fence_at(2, later + 1_000));
        assert_eq!(view(&s)[0].0, 1, "3 restarted 1 s ago: 1 leads");
    }

    #[test]
    fn bad_assignments_and_names_are_rejected_unchanged() {
        let (mut s, i) = cluster(&[1, 2]);
        assert_eq!(s.apply(i + 1, &create(vec![vec![1, 2]])), Reply::Ok);
        let before = s.clone();
        for (n, command) in [
            create(vec![vec![1]]),
            Command::CreateTopic {
                name: "u".into(),
                id: String::new(),
                configs: BTreeMap::new(),
                assignment: vec![vec![1, 1]],
            },
            Command::CreateTopic {
                name: "u".into(),
                id: String::new(),
                configs: BTreeMap::new(),
                assignment: vec![vec![1, 9]],
            },
            Command::CreatePartitions {
                name: "t".into(),
                assignment: vec![vec![2, 1], vec![2]],
            },
            Command::DeleteTopic { name: "x".into() },
        ]
        .into_iter()
        .enumerate()
        {
            assert!(
                matches!(s.apply(i + 2 + n as u64, &command), Reply::Rejected(_)),
                "{command:?}"
            );
            assert_eq!(s, before);
        }
        let grow = Command::CreatePartitions {
            name: "t".into(),
            assignment: vec![vec![2, 1]],
        };
        assert_eq!(s.apply(i + 9, &grow), Reply::Ok);
        assert_eq!(view(&s)[1], (2, 0, vec![2, 1]));
        assert_eq!(
            s.apply(i + 10, &Command::DeleteTopic { name: "t".into() }),
            Reply::Ok
        );
        assert!(s.topics.is_empty());
    }
}
