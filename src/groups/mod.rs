//! Consumer groups (Kafka's classic protocol and the KIP-848 consumer protocol) and
//! committed offsets.
//!
//! - `coordinator`: the group state machine, no I/O (`Coordinator`, one per shard).
//! - `consumer_group`: the consumer protocol's state machine (epochs, reconciliation).
//! - `assignor`: its server-side assignors, `uniform` and `range`.
//! - `member`: a member and the answers its waiting requests get.
//! - `offsets`: `__consumer_offsets` record formats (Kafka's own).
//! - `service`: runs group operations on a group's home shard, with persistence.
//! - `txn_offsets`: offsets of open transactions, applied when their commit marker lands.
//!
//! Every group has one home shard: the owner of its `__consumer_offsets` partition
//! (`offsets_partition`), so a group's state and its durable offsets sit together.
//! Requests for a group that arrive elsewhere are forwarded there with one
//! `ShardMsg::Group`.

pub mod assignor;
mod classic_members;
pub mod consumer_group;
pub mod coordinator;
pub mod group;
mod loading;
pub mod member;
pub mod offsets;
pub mod ownership;
pub mod service;
pub mod txn_offsets;

pub use loading::{follow_leadership, replay};

use bytes::Bytes;

pub use coordinator::{Committed, JoinArgs, SyncArgs};
pub use member::{JoinReply, SyncReply};

/// 32-bit FNV-1a: stable across processes and versions, unlike std's hasher.
pub fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The `__consumer_offsets` partition holding `group`'s offsets.
pub fn offsets_partition(group: &str, partitions: i32) -> i32 {
    (fnv1a(group) % partitions.max(1) as u32) as i32
}

/// A group operation, run on the group's home shard.
pub enum GroupOp {
    Join(JoinArgs),
    Sync(SyncArgs),
    Heartbeat {
        group: String,
        generation: i32,
        member: String,
        instance: Option<String>,
    },
    /// (member id, group.instance.id) per leaving member.
    Leave {
        group: String,
        members: Vec<(String, Option<String>)>,
    },
    /// Offsets already checked by the handler (topic exists, metadata size).
    Commit {
        group: String,
        generation: i32,
        member: String,
        instance: Option<String>,
        offsets: Vec<((String, i32), Committed)>,
        /// The request's version: consumer-protocol groups need v9+.
        version: i16,
    },
    /// `None`: every committed offset of the group.
    Fetch {
        group: String,
        partitions: Option<Vec<(String, i32)>>,
        /// OffsetFetch v9+: (member id, member epoch), checked for consumer groups.
        member: Option<(Option<String>, i32)>,
    },
    ConsumerHeartbeat(Box<consumer_group::HeartbeatArgs>),
    ConsumerDescribe {
        group: String,
    },
    Describe {
        group: String,
    },
    Delete {
        group: String,
    },
    /// OffsetDelete: partitions of topics the handler found.
    DeleteOffsets {
        group: String,
        partitions: Vec<(String, i32)>,
    },
    /// The groups whose home is this shard.
    List,
}

impl GroupOp {
    /// The group the operation is for (none for List).
    pub fn group(&self) -> Option<&str> {
        Some(match self {
            GroupOp::Join(a) => &a.group,
            GroupOp::Sync(a) => &a.group,
            GroupOp::ConsumerHeartbeat(a) => &a.group,
            GroupOp::Heartbeat { group, .. }
            | GroupOp::Leave { group, .. }
            | GroupOp::Commit { group, .. }
            | GroupOp::Fetch { group, .. }
            | GroupOp::ConsumerDescribe { group }
            | GroupOp::Describe { group }
            | GroupOp::Delete { group }
            | GroupOp::DeleteOffsets { group, .. } => group,
            GroupOp::List => return None,
        })
    }
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct MemberSummary {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub id: String,
    /// "classic" or "consumer".
    pub group_type: &'static str,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberSummary>,
}

/// A consumer-protocol member as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct ConsumerMemberView {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub topic_names: Vec<String>,
    pub topic_regex: Option<String>,
    pub assigned: assignor::Assignment,
    pub target: assignor::Assignment,
}

#[derive(Debug, Clone)]
pub struct ConsumerGroupView {
    pub id: String,
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: &'static str,
    pub members: Vec<ConsumerMemberView>,
}

pub enum GroupReply {
    Join(JoinReply),
    Sync(SyncReply),
    Code(i16),
    Codes(Vec<i16>),
    Fetch(Vec<((String, i32), Option<Committed>)>),
    ConsumerHeartbeat(consumer_group::HeartbeatReply),
    /// A consumer group, or (error code, message).
    ConsumerDescribe(Result<ConsumerGroupView, (i16, String)>),
    Describe(Option<GroupSummary>),
    List(Vec<GroupSummary>),
    /// OffsetDelete: a code per partition, or the group's error.
    DeleteOffsets(Result<Vec<i16>, i16>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
        assert_eq!(fnv1a("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn offsets_partition_is_in_range() {
        for g in ["", "g", "consumers-ü", "a-much-longer-group-name"] {
            let p = offsets_partition(g, 50);
            assert!((0..50).contains(&p));
            assert_eq!(p, offsets_partition(g, 50));
        }
        assert_eq!(offsets_partition("g", 1), 0);
    }
}
