//! Leader elections beyond the automatic clean one of `topics.rs`: Kafka's ElectLeaders
//! (preferred and unclean), `unclean.leader.election.enable` and the automatic
//! preferred-leader rebalance (`auto.leader.rebalance.enable`).
//!
//! `Command::ElectLeaders` names the partitions and the election type; `apply` decides
//! each partition from the state alone (deterministic, like every command). What needs a
//! clock or this broker's configuration — when to look for offline partitions or for
//! imbalance, and the broker default of `unclean.leader.election.enable` (dynamic, from
//! the quorum's broker configs, over server.properties: `unclean_default`) — is decided
//! by the active controller (`election_loop`), which proposes the command like an admin
//! call would.
//!
//! Rules (Kafka's):
//! - PREFERRED: the first replica of the assignment leads if it is live and in the ISR;
//!   ELECTION_NOT_NEEDED when it already leads, PREFERRED_LEADER_NOT_AVAILABLE otherwise.
//! - UNCLEAN: only for a partition without a leader. A live ISR member if there is one
//!   (a clean election), else the first live replica in replica order, whose ISR becomes
//!   just itself: records the old ISR had and it lacks are lost, which is what the
//!   operator accepted. ELECTION_NOT_NEEDED when the partition has a leader,
//!   ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::controller::Node;
use super::state::{ClusterState, Command, Reply};
use super::topics::{PartitionState, NO_LEADER};
use crate::config::ConfigError;
use crate::protocol::errors as ec;

/// The topic config (and broker default) that allows electing an out-of-sync replica.
pub const UNCLEAN_KEY: &str = "unclean.leader.election.enable";
/// Kafka's defaults.
pub const AUTO_LEADER_REBALANCE_DEFAULT: bool = true;
pub const LEADER_IMBALANCE_CHECK_INTERVAL_S_DEFAULT: u64 = 300;
pub const LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_DEFAULT: u64 = 10;
/// How often the active controller looks for offline partitions that
/// `unclean.leader.election.enable` lets it elect a leader for.
const UNCLEAN_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// How long an election waits to be applied on this node before it is answered anyway.
const APPLY_WAIT: Duration = Duration::from_secs(5);
const APPLY_POLL: Duration = Duration::from_millis(10);

/// ElectLeaders' election type (the wire's 0 and 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

impl ElectionType {
    pub fn from_wire(value: i8) -> Option<ElectionType> {
        match value {
            0 => Some(ElectionType::Preferred),
            1 => Some(ElectionType::Unclean),
            _ => None,
        }
    }

    /// As Kafka's tools print it.
    pub fn name(self) -> &'static str {
        match self {
            ElectionType::Preferred => "PREFERRED",
            ElectionType::Unclean => "UNCLEAN",
        }
    }
}

/// One partition's outcome; `leader` is the leader after the election (or the one it
/// already had).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionResult {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub message: Option<String>,
    pub leader: i32,
}

/// The broker settings the active controller elects by (from server.properties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// `unclean.leader.election.enable`: the default of topics without the override.
    pub unclean_default: bool,
    /// `auto.leader.rebalance.enable`.
    pub auto_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub imbalance_check_interval: Duration,
    /// `leader.imbalance.per.broker.percentage`.
    pub imbalance_per_broker_percentage: u64,
}

impl Default for ElectionConfig {
    fn default() -> ElectionConfig {
        ElectionConfig {
            unclean_default: false,
            auto_rebalance: AUTO_LEADER_REBALANCE_DEFAULT,
            imbalance_check_interval: Duration::from_secs(
                LEADER_IMBALANCE_CHECK_INTERVAL_S_DEFAULT,
            ),
            imbalance_per_broker_percentage: LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_DEFAULT,
        }
    }
}

impl ElectionConfig {
    pub fn from_properties(
        props: &BTreeMap<String, String>,
    ) -> Result<ElectionConfig, ConfigError> {
        let get = |k: &str| props.get(k).map(|v| v.trim());
        let invalid = |key: &str, value: &str, why: &str| ConfigError::Invalid {
            key: key.into(),
            value: value.into(),
            why: why.into(),
        };
        let boolean = |key: &str, default: bool| match get(key) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(invalid(key, v, "expected true or false")),
        };
        let number = |key: &str, default: u64, range: std::ops::RangeInclusive<u64>| match get(key)
        {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    invalid(
                        key,
                        v,
                        &format!(
                            "expected a number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        };
        Ok(ElectionConfig {
            unclean_default: boolean(UNCLEAN_KEY, false)?,
            auto_rebalance: boolean(
                "auto.leader.rebalance.enable",
                AUTO_LEADER_REBALANCE_DEFAULT,
            )?,
            imbalance_check_interval: Duration::from_secs(number(
                "leader.imbalance.check.interval.seconds",
                LEADER_IMBALANCE_CHECK_INTERVAL_S_DEFAULT,
                1..=u64::from(u32::MAX),
            )?),
            imbalance_per_broker_percentage: number(
                "leader.imbalance.per.broker.percentage",
                LEADER_IMBALANCE_PER_BROKER_PERCENTAGE_DEFAULT,
                0..=100,
            )?,
        })
    }
}

impl ClusterState {
    /// `ElectLeaders`: each partition decided by the rules in the module comment.
    pub(super) fn elect_leaders(
        &mut self,
        election: ElectionType,
        partitions: &[(String, i32)],
    ) -> Reply {
        let fenced = self.fenced_ids();
        let live = |b: i32| self.brokers.contains_key(&b) && !fenced.contains(&b);
        let live: BTreeSet<i32> = self.brokers.keys().copied().filter(|&b| live(b)).collect();
        let mut results = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            let p = self.topics.get_mut(topic).and_then(|t| {
                usize::try_from(*partition)
                    .ok()
                    .and_then(|i| t.partitions.get_mut(i))
            });
            let (error_code, message) = match p {
                None => (
                    ec::UNKNOWN_TOPIC_OR_PARTITION,
                    Some(format!("{topic}-{partition} does not exist")),
                ),
                Some(p) => match election {
                    ElectionType::Preferred => elect_preferred(p, &live),
                    ElectionType::Unclean => elect_unclean(p, &live),
                },
            };
            let leader = self
                .topics
                .get(topic)
                .and_then(|t| t.partitions.get(*partition as usize))
                .map_or(NO_LEADER, |p| p.leader);
            results.push(ElectionResult {
                topic: topic.clone(),
                partition: *partition,
                error_code,
                message,
                leader,
            });
        }
        Reply::Elections(results)
    }
}

fn elect_preferred(p: &mut PartitionState, live: &BTreeSet<i32>) -> (i16, Option<String>) {
    let preferred = p.replicas[0];
    if p.leader == preferred {
        return (ec::ELECTION_NOT_NEEDED, None);
    }
    if !live.contains(&preferred) || !p.isr.contains(&preferred) {
        let why = format!(
            "preferred replica {preferred} is {}",
            if live.contains(&preferred) {
                "not in the ISR"
            } else {
                "not live"
            }
        );
        return (ec::PREFERRED_LEADER_NOT_AVAILABLE, Some(why));
    }
    p.set_leader(preferred);
    (ec::NONE, None)
}

fn elect_unclean(p: &mut PartitionState, live: &BTreeSet<i32>) -> (i16, Option<String>) {
    if p.leader != NO_LEADER {
        return (ec::ELECTION_NOT_NEEDED, None);
    }
    let in_sync = p
        .replicas
        .iter()
        .copied()
        .find(|r| p.isr.contains(r) && live.contains(r));
    if let Some(leader) = in_sync {
        p.set_leader(leader);
        return (ec::NONE, None);
    }
    let Some(leader) = p.replicas.iter().copied().find(|r| live.contains(r)) else {
        return (
            ec::ELIGIBLE_LEADERS_NOT_AVAILABLE,
            Some(format!("no replica of {:?} is live", p.replicas)),
        );
    };
    p.isr = vec![leader];
    p.set_leader(leader);
    (ec::NONE, None)
}

/// `unclean.leader.election.enable` for topics without the override, on the active
/// controller `me`: its own dynamic broker config, else the cluster-wide dynamic default,
/// else its server.properties (`static_default`) — Kafka's order, read afresh on every
/// check so a change through AlterConfigs takes effect without a restart.
pub fn unclean_default(state: &ClusterState, me: i32, static_default: bool) -> bool {
    state
        .dynamic_broker_value(me, UNCLEAN_KEY)
        .map_or(static_default, |v| v.trim().eq_ignore_ascii_case("true"))
}

/// Offline partitions (no leader) of topics that allow unclean election, with a live
/// replica to elect.
pub fn unclean_candidates(state: &ClusterState, unclean_default: bool) -> Vec<(String, i32)> {
    let fenced = state.fenced_ids();
    let live = |b: &i32| state.brokers.contains_key(b) && !fenced.contains(b);
    let mut out = Vec::new();
    for (name, topic) in &state.topics {
        let enabled = topic
            .configs
            .get(UNCLEAN_KEY)
            .map_or(unclean_default, |v| v.trim().eq_ignore_ascii_case("true"));
        if !enabled {
            continue;
        }
        for (i, p) in topic.partitions.iter().enumerate() {
            if p.leader == NO_LEADER && p.replicas.iter().any(live) {
                out.push((name.clone(), i as i32));
            }
        }
    }
    out
}

/// Kafka's auto rebalance check: for each live broker, the share of the partitions it
/// is the preferred replica of that it does not lead; above `percentage` percent, those
/// of them it could lead (it is in their ISR) get a preferred election.
pub fn imbalanced(state: &ClusterState, percentage: u64) -> Vec<(String, i32)> {
    let fenced = state.fenced_ids();
    // preferred broker → (partitions it prefers, those it does not lead, of them those
    // it could lead because it is in their ISR)
    type Tally = (u64, u64, Vec<(String, i32)>);
    let mut by_broker: BTreeMap<i32, Tally> = BTreeMap::new();
    for (name, topic) in &state.topics {
        for (i, p) in topic.partitions.iter().enumerate() {
            let preferred = p.replicas[0];
            let entry = by_broker.entry(preferred).or_default();
            entry.0 += 1;
            if p.leader != preferred {
                entry.1 += 1;
                if p.isr.contains(&preferred) {
                    entry.2.push((name.clone(), i as i32));
                }
            }
        }
    }
    by_broker
        .into_iter()
        .filter(|(b, _)| state.brokers.contains_key(b) && !fenced.contains(b))
        .filter(|(_, (total, not_led, _))| not_led * 100 > percentage * total)
        .flat_map(|(_, (_, _, electable))| electable)
        .collect()
}

/// The active controller's elections: unclean ones for offline partitions whose topic
/// allows them, and (with `auto.leader.rebalance.enable`) the periodic preferred ones.
pub(super) async fn election_loop(node: Arc<Node>, config: ElectionConfig) {
    let mut next_rebalance = Instant::now() + config.imbalance_check_interval;
    loop {
        tokio::time::sleep(UNCLEAN_CHECK_INTERVAL).await;
        if !node.is_leader().await {
            next_rebalance = Instant::now() + config.imbalance_check_interval;
            continue;
        }
        let me = node.state_machine.handle().node_id;
        let offline = node
            .state_machine
            .read(|s| unclean_candidates(s, unclean_default(s, me, config.unclean_default)));
        if !offline.is_empty() {
            tracing::warn!(
                partitions = ?offline,
                "unclean.leader.election.enable: electing out-of-sync replicas of offline partitions; records they lack are lost"
            );
            propose(&node, ElectionType::Unclean, offline).await;
        }
        if config.auto_rebalance && Instant::now() >= next_rebalance {
            next_rebalance = Instant::now() + config.imbalance_check_interval;
            let moves = node
                .state_machine
                .read(|s| imbalanced(s, config.imbalance_per_broker_percentage));
            if !moves.is_empty() {
                tracing::info!(partitions = ?moves, "leader imbalance: preferred replica election");
                propose(&node, ElectionType::Preferred, moves).await;
            }
        }
    }
}

async fn propose(node: &Node, election: ElectionType, partitions: Vec<(String, i32)>) {
    match node
        .propose(Command::ElectLeaders {
            election,
            partitions,
        })
        .await
    {
        Ok(Reply::Elections(results)) => {
            for r in results.iter().filter(|r| r.error_code != ec::NONE) {
                tracing::debug!(?r, "election not made");
            }
        }
        Ok(other) => tracing::info!(?other, "election refused"),
        Err(e) => tracing::info!(error = %e, "election not committed"),
    }
}

/// An ElectLeaders call from a shard: `None` is every partition of the quorum. Answered
/// once this node has applied the elections (or after `APPLY_WAIT`).
pub(super) async fn elect(
    node: &Node,
    election: ElectionType,
    partitions: Option<Vec<(String, i32)>>,
) -> Result<Vec<ElectionResult>, (i16, String)> {
    let partitions = partitions.unwrap_or_else(|| {
        node.state_machine.read(|s| {
            s.topics
                .iter()
                .flat_map(|(name, t)| (0..t.partitions.len() as i32).map(|i| (name.clone(), i)))
                .collect()
        })
    });
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    let command = Command::ElectLeaders {
        election,
        partitions,
    };
    let results = match node.propose(command).await {
        Ok(Reply::Elections(results)) => results,
        Ok(other) => return Err((ec::UNKNOWN_SERVER_ERROR, format!("{other:?}"))),
        Err(e) => return Err((ec::REQUEST_TIMED_OUT, e)),
    };
    let deadline = Instant::now() + APPLY_WAIT;
    let applied = |s: &ClusterState| {
        results
            .iter()
            .filter(|r| r.error_code == ec::NONE)
            .all(|r| {
                s.topics
                    .get(&r.topic)
                    .and_then(|t| t.partitions.get(r.partition as usize))
                    .is_none_or(|p| p.leader == r.leader)
            })
    };
    while !node.state_machine.read(applied) && Instant::now() < deadline {
        tokio::time::sleep(APPLY_POLL).await;
    }
    Ok(results)
}

impl super::ClusterHandle {
    /// ElectLeaders through the quorum (see `elect`).
    pub async fn elect_leaders(
        &self,
        election: ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<ElectionResult>, (i16, String)> {
        let call = super::AdminCall::ElectLeaders {
            election,
            partitions,
        };
        match self.call_for_value(call).await? {
            Some(Reply::Elections(results)) => Ok(results),
            other => Err((ec::UNKNOWN_SERVER_ERROR, format!("{other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{fence, live_brokers as cluster};
    use super::*;

    fn create(name: &str, configs: &[(&str, &str)], assignment: Vec<Vec<i32>>) -> Command {
        Command::CreateTopic {
            name: name.into(),
            id: "00".repeat(16),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            assignment,
        }
    }

    fn elect(election: ElectionType, parts: &[(&str, i32)]) -> Command {
        Command::ElectLeaders {
            election,
            partitions: parts.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
        }
    }

    /// (error code, leader) per result.
    fn codes(reply: Reply) -> Vec<(i16, i32)> {
        match reply {
            Reply::Elections(r) => r.iter().map(|r| (r.error_code, r.leader)).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn leader_epoch_isr(s: &ClusterState, t: &str, p: usize) -> (i32, i32, Vec<i32>) {
        let p = &s.topics[t].partitions[p];
        (p.leader, p.leader_epoch, p.isr.clone())
    }

    #[test]
    fn preferred_election_moves_leadership_back_only_to_a_live_isr_member() {
        let (mut s, mut i) = cluster(&[1, 2, 3]);
        let mut apply = |s: &mut ClusterState, c: &Command| {
            i += 1;
            s.apply(i, c)
        };
        apply(
            &mut s,
            &create("t", &[], vec![vec![1, 2, 3], vec![2, 3, 1]]),
        );
        let both = [("t", 0), ("t", 1), ("t", 7), ("u", 0)];
        assert_eq!(
            codes(apply(&mut s, &elect(ElectionType::Preferred, &both))),
            [
                (ec::ELECTION_NOT_NEEDED, 1),
                (ec::ELECTION_NOT_NEEDED, 2),
                (ec::UNKNOWN_TOPIC_OR_PARTITION, NO_LEADER),
                (ec::UNKNOWN_TOPIC_OR_PARTITION, NO_LEADER),
            ]
        );
        apply(&mut s, &fence(1, true));
        assert_eq!(leader_epoch_isr(&s, "t", 0), (2, 1, vec![2, 3]));
        // Broker 1 is back but not yet in the ISR: not available.
        apply(&mut s, &fence(1, false));
        assert_eq!(
            codes(apply(&mut s, &elect(ElectionType::Preferred, &[("t", 0)]))),
            [(ec::PREFERRED_LEADER_NOT_AVAILABLE, 2)]
        );
        apply(
            &mut s,
            &Command::AlterPartition {
                topic: "t".into(),
                partition: 0,
                leader: 2,
                leader_epoch: 1,
                partition_epoch: 2,
                isr: vec![1, 2, 3],
            },
        );
        assert_eq!(s.topics["t"].partitions[0].isr, [1, 2, 3]);
        assert_eq!(imbalanced(&s, 10), [("t".to_string(), 0)]);
        assert_eq!(
            codes(apply(&mut s, &elect(ElectionType::Preferred, &[("t", 0)]))),
            [(ec::NONE, 1)]
        );
        assert_eq!(leader_epoch_isr(&s, "t", 0), (1, 2, vec![1, 2, 3]));
        assert!(imbalanced(&s, 10).is_empty());
    }

    #[test]
    fn unclean_election_only_for_offline_partitions_and_only_live_replicas() {
        let (mut s, mut i) = cluster(&[1, 2, 3]);
        let mut apply = |s: &mut ClusterState, c: &Command| {
            i += 1;
            s.apply(i, c)
        };
        apply(&mut s, &create("t", &[], vec![vec![1, 2]]));
        assert_eq!(
            codes(apply(&mut s, &elect(ElectionType::Unclean, &[("t", 0)]))),
            [(ec::ELECTION_NOT_NEEDED, 1)]
        );
        // 2 leaves the ISR, then the leader dies: offline, ISR {1}.
        apply(&mut s, &fence(2, true));
        apply(&mut s, &fence(1, true));
        assert_eq!(leader_epoch_isr(&s, "t", 0), (NO_LEADER, 1, vec![1]));
        assert_eq!(
            codes(apply(&mut s, &elect(ElectionType::Unclean, &[("t", 0)]))),
            [(ec::ELIGIBLE_LEADERS_NOT_AVAILABLE, NO_LEADER)]
        );
        apply(&mut s, &fence(2, false));
        assert_eq!(
            leader_epoch_isr(&s, "t", 0).0,
            NO_LEADER,
            "clean stays offline"
        );
        assert!(unclean_candidates(&s, false).is_empty());
        assert_eq!(unclean_candidates(&s, true), [("t".to_string(), 0)]);
        assert_eq!(
            codes(apply(&mut s, &elect(ElectionType::Unclean, &[("t", 0)]))),
            [(ec::NONE, 2)]
        );
        assert_eq!(leader_epoch_isr(&s, "t", 0), (2, 2, vec![2]));
        assert!(unclean_candidates(&s, true).is_empty());
    }

    #[test]
    fn the_topic_override_wins_over_the_broker_default() {
        let (mut s, i) = cluster(&[1, 2]);
        s.apply(
            i + 1,
            &create("on", &[(UNCLEAN_KEY, "true")], vec![vec![1, 2]]),
        );
        s.apply(
            i + 2,
            &create("off", &[(UNCLEAN_KEY, "false")], vec![vec![1, 2]]),
        );
        s.apply(i + 3, &fence(2, true));
        s.apply(i + 4, &fence(1, true));
        s.apply(i + 5, &fence(2, false));
        assert_eq!(unclean_candidates(&s, false), [("on".to_string(), 0)]);
        assert_eq!(unclean_candidates(&s, true), [("on".to_string(), 0)]);
    }

    #[test]
    fn the_dynamic_defaults_win_over_server_properties_and_the_topic_over_both() {
        let (mut s, i) = cluster(&[1, 2]);
        let set = |node_id, value: &str| Command::SetBrokerConfigs {
            node_id,
            configs: [(UNCLEAN_KEY.to_string(), value.to_string())].into(),
            expected: None,
        };
        assert!(!unclean_default(&s, 1, false));
        assert!(unclean_default(&s, 1, true));
        s.apply(i + 1, &set(None, "true"));
        assert!(unclean_default(&s, 1, false), "the cluster default");
        s.apply(i + 2, &set(Some(1), "false"));
        assert!(!unclean_default(&s, 1, true), "the controller's own");
        assert!(
            unclean_default(&s, 2, false),
            "another controller's default"
        );
        s.apply(
            i + 3,
            &create("off", &[(UNCLEAN_KEY, "false")], vec![vec![1, 2]]),
        );
        s.apply(i + 4, &create("dflt", &[], vec![vec![1, 2]]));
        s.apply(i + 5, &fence(2, true));
        s.apply(i + 6, &fence(1, true));
        s.apply(i + 7, &fence(2, false));
        // On broker 2 as the active controller: the default is on, the override off.
        assert_eq!(
            unclean_candidates(&s, unclean_default(&s, 2, false)),
            [("dflt".to_string(), 0)]
        );
    }

    #[test]
    fn imbalance_is_per_preferred_broker_above_the_percentage() {
        let (mut s, i) = cluster(&[1, 2]);
        let assignment: Vec<Vec<i32>> = (0..10)
            .map(|p| if p < 5 { vec![1, 2] } else { vec![2, 1] })
            .collect();
        s.apply(i + 1, &create("t", &[], assignment));
        // Broker 2 leads one of broker 1's five: 20 % of them.
        let p0 = &mut s.topics.get_mut("t").unwrap().partitions[0];
        p0.leader = 2;
        assert_eq!(imbalanced(&s, 10), [("t".to_string(), 0)]);
        assert!(imbalanced(&s, 20).is_empty());
    }

    #[test]
    fn config_keys_and_their_bounds() {
        let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            ElectionConfig::from_properties(&props(&[])).unwrap(),
            ElectionConfig::default()
        );
        let c = ElectionConfig::from_properties(&props(&[
            (UNCLEAN_KEY, "TRUE"),
            ("auto.leader.rebalance.enable", "false"),
            ("leader.imbalance.check.interval.seconds", "2"),
            ("leader.imbalance.per.broker.percentage", "0"),
        ]))
        .unwrap();
        assert!(c.unclean_default && !c.auto_rebalance);
        assert_eq!(c.imbalance_check_interval, Duration::from_secs(2));
        for bad in [
            (UNCLEAN_KEY, "yes"),
            ("leader.imbalance.check.interval.seconds", "0"),
            ("leader.imbalance.per.broker.percentage", "101"),
        ] {
            let e = ElectionConfig::from_properties(&props(&[bad])).unwrap_err();
            assert!(e.to_string().contains(bad.0), "{e}");
        }
    }
}
