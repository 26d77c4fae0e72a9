//! One group's state (Kafka's `GroupMetadata`): its classic members and generation, or
//! its consumer-protocol state, its committed offsets and the records it has queued for
//! `__consumer_offsets`. The `Coordinator` (coordinator.rs) owns every group of a shard
//! and drives these through the protocol's transitions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::classic_members::subscription_topics;
use super::consumer_group::ConsumerGroup;
use super::coordinator::CONSUMER_PROTOCOL_TYPE;
use super::member::{JoinReply, Member, SyncReply};
use super::offsets::{ClassicMemberRecord, ClassicMetadata, GroupRecord};
use crate::protocol::errors as ec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names Kafka uses in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A committed offset, as kept in memory and in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

pub struct JoinArgs {
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: an unknown member first gets an id (KIP-394).
    pub require_known_member_id: bool,
}

pub struct SyncArgs {
    pub group: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// In join order: the first is the leader when a new one is needed.
    pub members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until their join or expiry.
    pub(super) pending: Vec<(String, Instant)>,
    /// Static members (KIP-345): group.instance.id to its current member id.
    pub(super) static_members: HashMap<String, String>,
    pub(super) rebalance_deadline: Option<Instant>,
    /// While the initial rebalance delay runs, the join does not complete before this.
    pub(super) join_not_before: Option<Instant>,
    /// Since when the group has been Empty with no offsets (see `EMPTY_GROUP_RETENTION`).
    pub(super) idle_since: Option<Instant>,
    /// Since when the group has been Empty after having members: the start of its
    /// offsets' retention clock (Kafka 2.1+, KIP-211).
    pub(super) empty_since: Option<Instant>,
    pub offsets: BTreeMap<(String, i32), Committed>,
    /// Set when the group uses the consumer protocol (KIP-848): then the classic fields
    /// above stay empty and every membership operation goes here.
    pub consumer: Option<ConsumerGroup>,
    /// When a group replayed at start-up became Empty (wall clock ms, from its
    /// GroupMetadata record): its offsets' retention clock, until it has members again.
    pub(super) restored_empty_ms: Option<i64>,
    /// Group records to append to `__consumer_offsets` (see `take_records`).
    pub(super) records: Vec<GroupRecord>,
}

impl Group {
    pub(super) fn new(id: &str) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending: Vec::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            join_not_before: None,
            idle_since: None,
            empty_since: None,
            offsets: BTreeMap::new(),
            consumer: None,
            restored_empty_ms: None,
            records: Vec::new(),
        }
    }

    /// "consumer" for a consumer-protocol group, else "classic" (ListGroups' GroupType).
    pub fn group_type(&self) -> &'static str {
        if self.consumer.is_some() {
            "consumer"
        } else {
            "classic"
        }
    }

    /// Members of either protocol.
    pub fn has_members(&self) -> bool {
        !self.members.is_empty()
            || self
                .consumer
                .as_ref()
                .is_some_and(|c| !c.members.is_empty())
    }

    /// Queues Kafka's GroupMetadata record of the group as it is now (a state change).
    pub(super) fn record_classic_state(&mut self) {
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = self
            .members
            .iter()
            .map(|m| ClassicMemberRecord {
                id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout.as_millis().min(i32::MAX as u128) as i32,
                session_timeout_ms: m.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                subscription: m.metadata(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect();
        self.records
            .push(GroupRecord::Classic(Some(ClassicMetadata {
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                generation: self.generation,
                protocol: self.protocol.clone(),
                leader: self.leader.clone(),
                state_timestamp_ms: crate::util::now_ms(),
                members,
            })));
    }

    pub(super) fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub fn has_member(&self, id: &str) -> bool {
        self.members.iter().any(|m| m.id == id)
    }

    /// A request naming a group.instance.id must come from that instance's current
    /// member id; an older one has been replaced and is fenced.
    pub(super) fn check_instance(&self, instance: Option<&str>, member: &str) -> Result<(), i16> {
        match instance.and_then(|i| self.static_members.get(i)) {
            Some(current) if current != member => Err(ec::FENCED_INSTANCE_ID),
            _ => Ok(()),
        }
    }

    pub(super) fn forget_static_members_gone(&mut self) {
        let members = &self.members;
        self.static_members
            .retain(|_, id| members.iter().any(|m| &m.id == id));
    }

    /// Protocols every member supports, in the leader's order of preference; each member
    /// votes for its first such protocol and the most votes win (ties: leader's order).
    pub(super) fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|p| self.members.iter().all(|m| m.supports(p)))
            .collect();
        let votes = |p: &str| {
            self.members
                .iter()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .find(|n| candidates.contains(n))
                        == Some(p)
                })
                .count()
        };
        let mut best: Option<(&str, usize)> = None;
        for p in &candidates {
            let v = votes(p);
            if best.is_none_or(|(_, bv)| v > bv) {
                best = Some((p, v));
            }
        }
        best.map(|(p, _)| p.to_string())
    }

    /// Whether a joining member's protocols fit the group.
    pub(super) fn accepts(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(p, _)| self.members.iter().all(|m| m.supports(p)))
    }

    pub(super) fn join_reply(&self, member: &Member) -> JoinReply {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = if member.id == leader {
            self.members
                .iter()
                .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol)))
                .collect()
        } else {
            Vec::new()
        };
        JoinReply {
            error_code: ec::NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader,
            member_id: member.id.clone(),
            members,
        }
    }

    pub(super) fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state == GroupState::CompletingRebalance {
            for m in &mut self.members {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncReply::error(ec::REBALANCE_IN_PROGRESS));
                }
            }
        }
        let was_empty = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        self.empty_since = None;
        self.restored_empty_ms = None;
        let timeout = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.rebalance_deadline = Some(now + timeout);
        self.join_not_before = (was_empty && !initial_delay.is_zero()).then(|| now + initial_delay);
    }

    pub(super) fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.iter().all(|m| m.join_waiter.is_some())
    }

    pub(super) fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let timed_out = self.rebalance_deadline.is_some_and(|d| now >= d);
        let delayed = self.join_not_before.is_some_and(|d| now < d);
        if timed_out || (self.all_joined() && !delayed) {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: members that did not rejoin are removed, the generation
    /// advances, and every waiting member gets its JoinGroup answer.
    pub(super) fn complete_join(&mut self, now: Instant) {
        self.members.retain(|m| m.join_waiter.is_some());
        self.forget_static_members_gone();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.iter().any(|m| &m.id == l))
        {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.generation += 1;
        self.rebalance_deadline = None;
        self.join_not_before = None;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.empty_since = Some(now);
            self.protocol = None;
            self.leader = None;
            self.record_classic_state();
            return;
        }
        self.protocol = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
        let replies: Vec<JoinReply> = self.members.iter().map(|m| self.join_reply(m)).collect();
        for (m, reply) in self.members.iter_mut().zip(replies) {
            m.touch(now);
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(reply);
            }
        }
    }

    /// The topics a consumer group's members subscribe to, read from each member's
    /// ConsumerProtocolSubscription (int16 version, then an array of topic names; later
    /// fields are not needed) for the group's protocol, or for every protocol it offers
    /// while none is chosen. `None` when the group is not a consumer group or a
    /// subscription does not decode: then, as in Kafka, no topic can be said to be
    /// unsubscribed.
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if let Some(c) = &self.consumer {
            return Some(c.subscribed_names.iter().cloned().collect());
        }
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        let mut topics = HashSet::new();
        for m in &self.members {
            for (name, metadata) in &m.protocols {
                if self.protocol.as_ref().is_some_and(|p| p != name) {
                    continue;
                }
                topics.extend(subscription_topics(metadata)?);
            }
        }
        Some(topics)
    }

    pub(super) fn remove_member(&mut self, now: Instant, id: &str, initial_delay: Duration) {
        let Some(i) = self.members.iter().position(|m| m.id == id) else {
            return;
        };
        drop(self.members.remove(i));
        self.forget_static_members_gone();
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, initial_delay);
                self.maybe_complete_join(now);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }
}
