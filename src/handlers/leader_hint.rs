//! KIP-951 leader discovery: a Produce (v10+) or Fetch (v12+) partition answered with
//! NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH carries the leader this broker knows
//! (id and epoch), and the response lists where those leaders listen (Produce v10+,
//! Fetch v16+), so a client moves at once instead of waiting for a Metadata round
//! trip. Built only for such error answers: the common path never comes here.

use std::collections::BTreeSet;

use crate::broker::metadata::Snapshot;
use crate::broker::Broker;
use crate::protocol::errors as ec;
use crate::protocol::fetch::{LeaderHint, NodeEndpointOut};

/// Whether a partition answered with `error_code` gets the leader hint.
pub fn wants_hint(error_code: i16) -> bool {
    matches!(
        error_code,
        ec::NOT_LEADER_OR_FOLLOWER | ec::FENCED_LEADER_EPOCH
    )
}

/// The partition's leader as the topic table has it; `None` for a topic without
/// replication info (a single broker's) or a partition with no leader (which a hint of
/// -1 would only repeat as the default).
pub fn leader_of(snap: &Snapshot, topic: &str, partition: i32) -> Option<LeaderHint> {
    let set = snap
        .topic(topic)?
        .replication
        .get(usize::try_from(partition).ok()?)?;
    (set.leader >= 0).then_some(LeaderHint {
        leader_id: set.leader,
        leader_epoch: set.leader_epoch,
    })
}

/// Where the named brokers listen, as Metadata on `listener` would list them; brokers
/// not live are left out (the client finds them through Metadata, as before KIP-951).
pub fn endpoints(
    broker: &Broker,
    listener: usize,
    ids: impl IntoIterator<Item = i32>,
) -> Vec<NodeEndpointOut> {
    let ids: BTreeSet<i32> = ids.into_iter().collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let (brokers, _) = broker.cluster_view(listener);
    brokers
        .into_iter()
        .filter(|b| ids.contains(&b.node_id))
        .map(|b| NodeEndpointOut {
            node_id: b.node_id,
            host: b.host,
            port: i32::from(b.port),
            rack: b.rack,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::metadata::{Placement, ReplicaSet, TopicMeta};
    use std::sync::Arc;

    fn snap(leader: i32) -> Snapshot {
        let mut s = Snapshot::default();
        s.topics.insert(
            "t".into(),
            Arc::new(TopicMeta {
                name: "t".into(),
                id: [1; 16],
                partitions: vec![Placement { shard: 0, dir: 0 }],
                configs: Default::default(),
                replication: vec![ReplicaSet {
                    replicas: vec![1, 2, 3],
                    isr: vec![1, 2, 3],
                    leader,
                    leader_epoch: 4,
                    partition_epoch: 9,
                }],
            }),
        );
        s
    }

    #[test]
    fn hints_name_a_known_leader_only() {
        assert_eq!(
            leader_of(&snap(2), "t", 0),
            Some(LeaderHint {
                leader_id: 2,
                leader_epoch: 4
            })
        );
        assert_eq!(leader_of(&snap(-1), "t", 0), None);
        assert_eq!(leader_of(&snap(2), "t", 1), None);
        assert_eq!(leader_of(&snap(2), "t", -1), None);
        assert_eq!(leader_of(&snap(2), "other", 0), None);
    }

    #[test]
    fn only_leadership_errors_get_hints() {
        assert!(wants_hint(ec::NOT_LEADER_OR_FOLLOWER));
        assert!(wants_hint(ec::FENCED_LEADER_EPOCH));
        assert!(!wants_hint(ec::NONE));
        assert!(!wants_hint(ec::UNKNOWN_TOPIC_OR_PARTITION));
    }
}
