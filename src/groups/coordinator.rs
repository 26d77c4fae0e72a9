//! The classic group protocol's state machine (Kafka's `GroupCoordinator` /
//! `GroupMetadata`), with no network and no timers of its own: every call takes `now`,
//! and `tick` applies the deadlines that have passed (session expiry, rebalance timeout,
//! initial rebalance delay). A shard calls `tick` on a short interval.
//!
//! ```text
//!            join                   all joined / timeout          leader syncs
//!   Empty ─────────▶ PreparingRebalance ─────────▶ CompletingRebalance ─────▶ Stable
//!     ▲                 ▲      │ last member left          │ member joins/leaves  │
//!     └─────────────────┼──────┘                           ▼                      │
//!                       └────────────── member joins, leaves, expires ◀───────────┘
//! ```
//! Dead is where DeleteGroups takes an Empty group; it is then forgotten.
//!
//! Concurrency: one `Coordinator` per shard, owned by that shard alone; a group lives on
//! the shard `groups::group_shard` names. Waiting requests hold a oneshot receiver; the
//! state machine keeps the sender in the `Member`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use super::classic_members::{add_member, rejoin, replace_static_member, sync_member, uuid_text};
use super::consumer_group::{self, ConsumerConfig, ConsumerGroup, HeartbeatArgs, HeartbeatReply};
pub use super::group::{Committed, Group, GroupState, JoinArgs, SyncArgs};
use super::member::{JoinReply, SyncReply};
use super::offsets::GroupRecord;
use super::ownership::Ownership;
use crate::broker::metadata::Snapshot;
use crate::protocol::errors as ec;

/// Kafka's `group.min.session.timeout.ms` and `group.max.session.timeout.ms` defaults.
pub const SESSION_TIMEOUT_MIN: Duration = Duration::from_millis(6_000);
pub const SESSION_TIMEOUT_MAX: Duration = Duration::from_millis(1_800_000);
/// How long an Empty group with no committed offsets stays listed before it is
/// forgotten: Kafka's `offsets.retention.check.interval.ms` default, the period of its
/// cleanup of such groups.
pub const EMPTY_GROUP_RETENTION: Duration = Duration::from_millis(600_000);
/// The protocol type of Kafka's consumers, whose subscriptions corelog can read.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// Kafka's `offset.metadata.max.bytes` default.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;

/// Every group whose home is this shard.
pub struct Coordinator {
    groups: HashMap<String, Group>,
    initial_delay: Duration,
    consumer_config: ConsumerConfig,
    /// `group.max.size`: members a classic group may have.
    group_max_size: usize,
    /// The offsets partitions served, in a cluster (see `ownership`).
    pub ownership: Ownership,
}

/// What OffsetDelete did: a code per requested partition, and the offsets removed.
pub type OffsetDeletion = (Vec<i16>, Vec<(String, i32)>);

/// What `offset_commit_check` decided.
#[derive(Debug, PartialEq, Eq)]
pub enum CommitCheck {
    Allowed,
    Refused(i16),
}

impl Coordinator {
    pub fn new(initial_delay: Duration) -> Coordinator {
        Coordinator {
            groups: HashMap::new(),
            initial_delay,
            consumer_config: ConsumerConfig::default(),
            group_max_size: crate::config::GROUP_MAX_SIZE_DEFAULT,
            ownership: Ownership::default(),
        }
    }

    pub fn with_group_max_size(mut self, members: usize) -> Coordinator {
        self.group_max_size = members;
        self
    }

    pub fn with_consumer_config(mut self, config: ConsumerConfig) -> Coordinator {
        self.consumer_config = config;
        self
    }

    pub fn consumer_config(&self) -> &ConsumerConfig {
        &self.consumer_config
    }

    /// The group records `group` has queued, for the caller to append to its
    /// `__consumer_offsets` partition.
    pub fn take_records(&mut self, group: &str) -> Vec<GroupRecord> {
        self.groups
            .get_mut(group)
            .map(|g| std::mem::take(&mut g.records))
            .unwrap_or_default()
    }

    /// Every group's queued records (after a tick).
    pub fn take_all_records(&mut self) -> Vec<(String, Vec<GroupRecord>)> {
        self.groups
            .values_mut()
            .filter(|g| !g.records.is_empty())
            .map(|g| (g.id.clone(), std::mem::take(&mut g.records)))
            .collect()
    }

    /// Applies a group record read back from `__consumer_offsets` at start-up (`now`,
    /// `now_ms`: the time of the replay). A classic group's membership is not restored
    /// (members rejoin); a consumer-protocol group's members are, with their sessions
    /// starting now. `finish_replay` must follow the last record.
    pub fn replay_group_record(
        &mut self,
        group: &str,
        record: GroupRecord,
        now: Instant,
        now_ms: i64,
    ) {
        let session = self.consumer_config.session_timeout;
        match record {
            GroupRecord::Member(id, Some(meta)) => {
                let g = self
                    .groups
                    .entry(group.to_string())
                    .or_insert_with(|| Group::new(group));
                g.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
                let c = g.consumer.get_or_insert_with(ConsumerGroup::default);
                c.restore_member(&id, meta, now + session);
            }
            GroupRecord::Member(id, None) => {
                if let Some(c) = self.groups.get_mut(group).and_then(|g| g.consumer.as_mut()) {
                    c.forget_member(&id);
                }
            }
            GroupRecord::MemberAssignment(id, a) => {
                if let Some(c) = self.groups.get_mut(group).and_then(|g| g.consumer.as_mut()) {
                    c.restore_assignment(&id, a);
                }
            }
            GroupRecord::Classic(Some(meta)) => {
                let g = self
                    .groups
                    .entry(group.to_string())
                    .or_insert_with(|| Group::new(group));
                g.consumer = None;
                g.generation = meta.generation;
                g.protocol_type = (!meta.protocol_type.is_empty()).then_some(meta.protocol_type);
                // An Empty group's retention clock runs from when it became Empty; a group
                // that had members when the broker stopped is Empty from now on.
                g.restored_empty_ms =
                    Some(if meta.members.is_empty() && meta.state_timestamp_ms > 0 {
                        meta.state_timestamp_ms.min(now_ms)
                    } else {
                        now_ms
                    });
            }
            GroupRecord::Classic(None) => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.restored_empty_ms = None;
                    g.generation = 0;
                }
            }
            GroupRecord::ConsumerEpoch(Some(epoch)) => {
                let g = self
                    .groups
                    .entry(group.to_string())
                    .or_insert_with(|| Group::new(group));
                g.restored_empty_ms = None;
                g.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
                let c = g.consumer.get_or_insert_with(ConsumerGroup::default);
                c.group_epoch = epoch;
                c.assignment_epoch = epoch;
            }
            GroupRecord::ConsumerEpoch(None) => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.consumer = None;
                }
            }
        }
    }

    /// Ends the replay of the groups `replayed` picks: restored consumer groups take
    /// their members' partitions as their target.
    pub fn finish_replay(&mut self, replayed: impl Fn(&str) -> bool) {
        for g in self.groups.values_mut().filter(|g| replayed(&g.id)) {
            if let Some(c) = g.consumer.as_mut() {
                c.finish_restore();
            }
        }
    }

    /// Forgets the groups `unloaded` picks (their partition is coordinated elsewhere
    /// now). Requests waiting in them see their answer dropped.
    pub fn unload(&mut self, unloaded: impl Fn(&str) -> bool) -> usize {
        let before = self.groups.len();
        self.groups.retain(|id, _| !unloaded(id));
        before - self.groups.len()
    }

    /// ConsumerGroupHeartbeat. A classic group with no members becomes a consumer group
    /// when a member joins it (as Kafka 4 converts it); one with members answers
    /// GROUP_ID_NOT_FOUND.
    pub fn consumer_heartbeat(
        &mut self,
        now: Instant,
        args: HeartbeatArgs,
        snap: &Snapshot,
    ) -> HeartbeatReply {
        if let Err((code, message)) = consumer_group::validate(&args, &self.consumer_config) {
            return HeartbeatReply::error(code, message);
        }
        let joining = args.member_epoch == consumer_group::JOIN_EPOCH;
        let group_id = args.group.clone();
        match self.groups.get_mut(&group_id) {
            None if !joining => {
                return HeartbeatReply::error(
                    ec::UNKNOWN_MEMBER_ID,
                    format!("Consumer group {group_id} not found."),
                )
            }
            Some(g) if g.consumer.is_none() => {
                let convertible = g.members.is_empty() && g.pending.is_empty() && joining;
                if !convertible {
                    return HeartbeatReply::error(
                        ec::GROUP_ID_NOT_FOUND,
                        format!("Group {group_id} is not a consumer group."),
                    );
                }
                if g.generation > 0 || g.restored_empty_ms.is_some() {
                    g.records.push(GroupRecord::Classic(None));
                }
                g.state = GroupState::Empty;
                g.protocol = None;
                g.leader = None;
                g.empty_since = None;
                g.restored_empty_ms = None;
                g.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
                g.consumer = Some(ConsumerGroup::default());
            }
            _ => {}
        }
        let config = self.consumer_config.clone();
        let g = self.groups.entry(group_id.clone()).or_insert_with(|| {
            let mut g = Group::new(&group_id);
            g.protocol_type = Some(CONSUMER_PROTOCOL_TYPE.to_string());
            g.consumer = Some(ConsumerGroup::default());
            g
        });
        let c = g.consumer.as_mut().expect("a consumer group");
        let epoch = c.group_epoch;
        let reply = c.heartbeat(now, args, snap, &config);
        g.records.append(&mut c.records);
        if c.group_epoch != epoch {
            let e = c.group_epoch;
            g.records.push(GroupRecord::ConsumerEpoch(Some(e)));
        }
        reply
    }

    /// OffsetFetch v9+ from a consumer-protocol member: the member must be known and at
    /// its current epoch. Requests without member id and epoch (admin tools) pass.
    pub fn offset_fetch_check(
        &self,
        group: &str,
        member: Option<&str>,
        epoch: i32,
    ) -> Result<(), i16> {
        let Some(c) = self.groups.get(group).and_then(|g| g.consumer.as_ref()) else {
            return Ok(());
        };
        let Some(id) = member else {
            return if epoch < 0 {
                Ok(())
            } else {
                Err(ec::UNKNOWN_MEMBER_ID)
            };
        };
        if id.is_empty() && epoch < 0 {
            return Ok(());
        }
        match c.members.get(id) {
            None => Err(ec::UNKNOWN_MEMBER_ID),
            Some(m) if m.epoch != epoch => Err(consumer_group::STALE_MEMBER_EPOCH),
            Some(_) => Ok(()),
        }
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    pub fn join(&mut self, now: Instant, args: JoinArgs) -> oneshot::Receiver<JoinReply> {
        let (tx, rx) = oneshot::channel();
        let fail = |tx: oneshot::Sender<JoinReply>, code: i16, id: &str| {
            let _ = tx.send(JoinReply::error(code, id));
        };
        let session = Duration::from_millis(args.session_timeout_ms.max(0) as u64);
        if args.group.is_empty() {
            fail(tx, ec::INVALID_GROUP_ID, &args.member_id);
            return rx;
        }
        if !(SESSION_TIMEOUT_MIN..=SESSION_TIMEOUT_MAX).contains(&session) {
            fail(tx, ec::INVALID_SESSION_TIMEOUT, &args.member_id);
            return rx;
        }
        if !args.member_id.is_empty() && !self.groups.contains_key(&args.group) {
            fail(tx, ec::UNKNOWN_MEMBER_ID, &args.member_id);
            return rx;
        }
        let delay = self.initial_delay;
        let max_size = self.group_max_size;
        let group = self
            .groups
            .entry(args.group.clone())
            .or_insert_with(|| Group::new(&args.group));
        if group.state == GroupState::Dead {
            fail(tx, ec::COORDINATOR_NOT_AVAILABLE, &args.member_id);
            return rx;
        }
        if let Some(c) = &group.consumer {
            if !c.members.is_empty() {
                fail(tx, ec::INCONSISTENT_GROUP_PROTOCOL, &args.member_id);
                return rx;
            }
            // An Empty consumer group turns back into a classic group, offsets kept.
            group.consumer = None;
            group.records.push(GroupRecord::ConsumerEpoch(None));
        }
        if !group.accepts(&args.protocol_type, &args.protocols) {
            fail(tx, ec::INCONSISTENT_GROUP_PROTOCOL, &args.member_id);
            return rx;
        }
        // group.max.size: a member not in the group yet is refused when the group is
        // full, before it is given a member id (as Kafka's acceptJoiningMember), except
        // a static member replacing its own instance, which does not grow the group.
        let replaces_static = args
            .instance_id
            .as_ref()
            .is_some_and(|i| group.static_members.contains_key(i));
        if !group.has_member(&args.member_id) && !replaces_static && group.members.len() >= max_size
        {
            tracing::info!(
                group = %args.group,
                client = %args.client_id,
                max = max_size,
                "join refused: the group is at group.max.size"
            );
            fail(tx, ec::GROUP_MAX_SIZE_REACHED, "");
            return rx;
        }
        if let Some(instance) = args.instance_id.clone() {
            let known = group.static_members.get(&instance).cloned();
            match known {
                Some(old) if args.member_id.is_empty() => {
                    replace_static_member(group, now, &old, args, tx, delay);
                    return rx;
                }
                Some(current) if current != args.member_id => {
                    fail(tx, ec::FENCED_INSTANCE_ID, &args.member_id);
                    return rx;
                }
                // A static member needs no MEMBER_ID_REQUIRED round (KIP-345).
                None if args.member_id.is_empty() => {
                    let id = format!("{}-{}", args.client_id, uuid_text());
                    add_member(group, now, id, args, tx, delay);
                    return rx;
                }
                _ => {}
            }
        }
        if args.member_id.is_empty() {
            let id = format!("{}-{}", args.client_id, uuid_text());
            if args.require_known_member_id {
                group.pending.push((id.clone(), now + session));
                let _ = tx.send(JoinReply::error(ec::MEMBER_ID_REQUIRED, &id));
                return rx;
            }
            add_member(group, now, id, args, tx, delay);
            return rx;
        }
        if let Some(i) = group
            .pending
            .iter()
            .position(|(id, _)| *id == args.member_id)
        {
            group.pending.remove(i);
            let id = args.member_id.clone();
            add_member(group, now, id, args, tx, delay);
            return rx;
        }
        if !group.has_member(&args.member_id) {
            fail(tx, ec::UNKNOWN_MEMBER_ID, &args.member_id);
            return rx;
        }
        rejoin(group, now, args, tx, delay);
        rx
    }

    pub fn sync(&mut self, now: Instant, args: SyncArgs) -> oneshot::Receiver<SyncReply> {
        let (tx, rx) = oneshot::channel();
        let code = match self.groups.get_mut(&args.group) {
            None if args.group.is_empty() => ec::INVALID_GROUP_ID,
            None => ec::UNKNOWN_MEMBER_ID,
            Some(g) => match sync_member(g, now, args, tx) {
                Ok(()) => return rx,
                Err((code, tx)) => {
                    let _ = tx.send(SyncReply::error(code));
                    return rx;
                }
            },
        };
        let _ = tx.send(SyncReply::error(code));
        rx
    }

    pub fn heartbeat(
        &mut self,
        now: Instant,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
    ) -> i16 {
        let Some(g) = self.groups.get_mut(group) else {
            return if group.is_empty() {
                ec::INVALID_GROUP_ID
            } else {
                ec::UNKNOWN_MEMBER_ID
            };
        };
        if let Err(code) = g.check_instance(instance, member) {
            return code;
        }
        let state = g.state;
        let current = g.generation;
        if state == GroupState::Dead {
            return ec::COORDINATOR_NOT_AVAILABLE;
        }
        let Some(m) = g.member_mut(member) else {
            return ec::UNKNOWN_MEMBER_ID;
        };
        if generation != current {
            return ec::ILLEGAL_GENERATION;
        }
        m.touch(now);
        match state {
            GroupState::PreparingRebalance => ec::REBALANCE_IN_PROGRESS,
            _ => ec::NONE,
        }
    }

    /// Removes members (LeaveGroup): (member id, group.instance.id) each, where a static
    /// member may leave by its instance id alone. One error code per member.
    pub fn leave(
        &mut self,
        now: Instant,
        group: &str,
        members: &[(String, Option<String>)],
    ) -> Vec<i16> {
        let delay = self.initial_delay;
        let Some(g) = self.groups.get_mut(group) else {
            let code = if group.is_empty() {
                ec::INVALID_GROUP_ID
            } else {
                ec::UNKNOWN_MEMBER_ID
            };
            return vec![code; members.len()];
        };
        members
            .iter()
            .map(|(id, instance)| {
                let id = match instance.as_ref().and_then(|i| g.static_members.get(i)) {
                    Some(current) if !id.is_empty() && current != id => {
                        return ec::FENCED_INSTANCE_ID
                    }
                    Some(current) => current.clone(),
                    None => id.clone(),
                };
                let id = &id;
                if let Some(i) = g.pending.iter().position(|(p, _)| p == id) {
                    g.pending.remove(i);
                    g.maybe_complete_join(now);
                    return ec::NONE;
                }
                if !g.has_member(id) {
                    return ec::UNKNOWN_MEMBER_ID;
                }
                g.remove_member(now, id, delay);
                ec::NONE
            })
            .collect()
    }

    /// Applies the deadlines that have passed: pending ids and members whose session
    /// expired, rebalances whose timeout or initial delay ended.
    pub fn tick(&mut self, now: Instant) {
        let delay = self.initial_delay;
        for g in self.groups.values_mut() {
            let before = g.pending.len();
            g.pending.retain(|(_, until)| *until > now);
            if g.pending.len() != before {
                g.maybe_complete_join(now);
            }
            let expired: Vec<String> = g
                .members
                .iter()
                .filter(|m| !m.waiting() && m.expires_at <= now)
                .map(|m| m.id.clone())
                .collect();
            for id in expired {
                tracing::info!(group = %g.id, member = %id, "member session expired");
                g.remove_member(now, &id, delay);
            }
            g.maybe_complete_join(now);
            if let Some(c) = g.consumer.as_mut() {
                let epoch = c.group_epoch;
                for (id, why) in c.expired(now) {
                    tracing::info!(group = %g.id, member = %id, "consumer group member removed: {why}");
                    c.remove_member(&id);
                }
                g.records.append(&mut c.records);
                if c.group_epoch != epoch {
                    let e = c.group_epoch;
                    g.records.push(GroupRecord::ConsumerEpoch(Some(e)));
                }
            }
        }
        self.groups.retain(|_, g| {
            let idle = g.state == GroupState::Empty
                && !g.has_members()
                && g.records.is_empty()
                && g.pending.is_empty()
                && g.offsets.is_empty();
            if !idle {
                g.idle_since = None;
                return true;
            }
            let since = *g.idle_since.get_or_insert(now);
            now.duration_since(since) < EMPTY_GROUP_RETENTION
        });
    }

    /// Kafka's rules for a group's OffsetCommit: generation -1 with no member is a simple
    /// commit, allowed while the group has no members; otherwise the member and
    /// generation must be current.
    pub fn offset_commit_check(
        &mut self,
        now: Instant,
        group: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
        version: i16,
    ) -> CommitCheck {
        let Some(g) = self.groups.get_mut(group) else {
            if generation < 0 {
                return CommitCheck::Allowed;
            }
            return CommitCheck::Refused(ec::ILLEGAL_GENERATION);
        };
        if let Some(c) = &g.consumer {
            return consumer_commit_check(c, generation, member, version);
        }
        if let Err(code) = g.check_instance(instance, member) {
            return CommitCheck::Refused(code);
        }
        if g.state == GroupState::Dead {
            return CommitCheck::Refused(ec::COORDINATOR_NOT_AVAILABLE);
        }
        if generation < 0 && g.state == GroupState::Empty {
            return CommitCheck::Allowed;
        }
        if g.state == GroupState::CompletingRebalance {
            return CommitCheck::Refused(ec::REBALANCE_IN_PROGRESS);
        }
        let current = g.generation;
        let Some(m) = g.member_mut(member) else {
            return CommitCheck::Refused(ec::UNKNOWN_MEMBER_ID);
        };
        if generation != current {
            return CommitCheck::Refused(ec::ILLEGAL_GENERATION);
        }
        m.touch(now);
        CommitCheck::Allowed
    }

    /// Records committed offsets (after they are durable); `None` deletes.
    pub fn store_offsets(&mut self, group: &str, offsets: Vec<((String, i32), Option<Committed>)>) {
        let g = self
            .groups
            .entry(group.to_string())
            .or_insert_with(|| Group::new(group));
        for (key, value) in offsets {
            match value {
                Some(c) => {
                    g.offsets.insert(key, c);
                }
                None => {
                    g.offsets.remove(&key);
                }
            }
        }
    }

    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<&Committed> {
        self.groups
            .get(group)?
            .offsets
            .get(&(topic.to_string(), partition))
    }

    /// OffsetDelete: removes the committed offsets of `partitions` that may go, and
    /// returns an error code per partition and the keys removed (for tombstones). As in
    /// Kafka: an Empty group loses any of them; a consumer group with members keeps the
    /// partitions of topics it subscribes to (GROUP_SUBSCRIBED_TO_TOPIC), judged from the
    /// members' subscriptions in their protocol metadata; any other group with members
    /// refuses with NON_EMPTY_GROUP. A partition with no commit answers no error.
    pub fn delete_offsets(
        &mut self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<OffsetDeletion, i16> {
        let Some(g) = self.groups.get_mut(group) else {
            return Err(ec::GROUP_ID_NOT_FOUND);
        };
        let subscribed = match g.state {
            GroupState::Dead => return Err(ec::GROUP_ID_NOT_FOUND),
            _ if g.consumer.as_ref().is_some_and(|c| !c.members.is_empty()) => {
                g.subscribed_topics().unwrap_or_default()
            }
            GroupState::Empty => HashSet::new(),
            _ if g.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) => {
                match g.subscribed_topics() {
                    Some(topics) => topics,
                    // Unreadable subscriptions: every topic counts as subscribed.
                    None => partitions.iter().map(|(t, _)| t.clone()).collect(),
                }
            }
            _ => return Err(ec::NON_EMPTY_GROUP),
        };
        let mut codes = Vec::with_capacity(partitions.len());
        let mut removed = Vec::new();
        for (topic, partition) in partitions {
            if subscribed.contains(topic) {
                codes.push(ec::GROUP_SUBSCRIBED_TO_TOPIC);
                continue;
            }
            let key = (topic.clone(), *partition);
            if g.offsets.remove(&key).is_some() {
                removed.push(key);
            }
            codes.push(ec::NONE);
        }
        Ok((codes, removed))
    }

    /// `offsets.retention.minutes` (Kafka 2.1+ semantics, KIP-211): removes the offsets
    /// whose retention has run out and returns their keys per group, for tombstones.
    /// - An Empty group that had members: all its offsets, `retention` after it became
    ///   Empty (`now`).
    /// - An Empty group with no membership since start-up (simple commits, or a group
    ///   replayed after a restart, whose Empty time is not persisted): each offset
    ///   `retention` after its commit timestamp (`now_ms`, wall clock).
    /// - A Stable consumer group: offsets of topics no member subscribes to, by commit
    ///   timestamp. Nothing else expires.
    pub fn expire_offsets(
        &mut self,
        now: Instant,
        now_ms: i64,
        retention: Duration,
    ) -> Vec<(String, Vec<(String, i32)>)> {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let old = |c: &Committed| now_ms.saturating_sub(c.commit_timestamp_ms) >= retention_ms;
        let mut out = Vec::new();
        for g in self.groups.values_mut() {
            if g.offsets.is_empty() {
                continue;
            }
            let expired: Vec<(String, i32)> = match g.state {
                // A consumer-protocol group with members: offsets of topics no member
                // subscribes to, by commit timestamp (Kafka's rule for these groups).
                _ if g.consumer.as_ref().is_some_and(|c| !c.members.is_empty()) => {
                    let topics = g.subscribed_topics().unwrap_or_default();
                    g.offsets
                        .iter()
                        .filter(|((t, _), c)| !topics.contains(t) && old(c))
                        .map(|(k, _)| k.clone())
                        .collect()
                }
                GroupState::Empty if g.members.is_empty() && g.restored_empty_ms.is_some() => {
                    let since = g.restored_empty_ms.unwrap_or(now_ms);
                    if now_ms.saturating_sub(since) >= retention_ms {
                        g.offsets.keys().cloned().collect()
                    } else {
                        Vec::new()
                    }
                }
                GroupState::Empty if g.members.is_empty() => match g.empty_since {
                    Some(since) if now.saturating_duration_since(since) >= retention => {
                        g.offsets.keys().cloned().collect()
                    }
                    Some(_) => Vec::new(),
                    None => g
                        .offsets
                        .iter()
                        .filter(|(_, c)| old(c))
                        .map(|(k, _)| k.clone())
                        .collect(),
                },
                GroupState::Stable => match g.subscribed_topics() {
                    Some(topics) => g
                        .offsets
                        .iter()
                        .filter(|((t, _), c)| !topics.contains(t) && old(c))
                        .map(|(k, _)| k.clone())
                        .collect(),
                    None => Vec::new(),
                },
                _ => Vec::new(),
            };
            if expired.is_empty() {
                continue;
            }
            for k in &expired {
                g.offsets.remove(k);
            }
            out.push((g.id.clone(), expired));
        }
        out
    }

    /// The topic was deleted: removes every group's committed offsets of it (Kafka's
    /// `handleDeletedPartitions`) and returns their keys per group, for tombstones. A
    /// group left Empty with no offsets is then dropped by `tick` as any other.
    pub fn remove_topic_offsets(&mut self, topic: &str) -> Vec<(String, Vec<(String, i32)>)> {
        let mut out = Vec::new();
        for g in self.groups.values_mut() {
            let keys: Vec<(String, i32)> = g
                .offsets
                .keys()
                .filter(|(t, _)| t == topic)
                .cloned()
                .collect();
            for k in &keys {
                g.offsets.remove(k);
            }
            if !keys.is_empty() {
                out.push((g.id.clone(), keys));
            }
        }
        out
    }

    /// DeleteGroups: only an Empty group goes. Returns its offsets' keys, for tombstones.
    pub fn delete(&mut self, group: &str) -> Result<Vec<(String, i32)>, i16> {
        let Some(g) = self.groups.get_mut(group) else {
            return Err(ec::GROUP_ID_NOT_FOUND);
        };
        match g.state {
            GroupState::Dead => return Err(ec::GROUP_ID_NOT_FOUND),
            _ if g.has_members() => return Err(ec::NON_EMPTY_GROUP),
            GroupState::Empty if g.pending.is_empty() => {}
            _ => return Err(ec::NON_EMPTY_GROUP),
        }
        g.state = GroupState::Dead;
        let keys = g.offsets.keys().cloned().collect();
        self.groups.remove(group);
        Ok(keys)
    }
}

/// Kafka's rules for a consumer-protocol group's OffsetCommit: epoch -1 (admin tools,
/// simple consumers) while it has no members; otherwise a known member at its current
/// epoch, with OffsetCommit v9+.
fn consumer_commit_check(c: &ConsumerGroup, epoch: i32, member: &str, version: i16) -> CommitCheck {
    if epoch < 0 && c.members.is_empty() {
        return CommitCheck::Allowed;
    }
    let Some(m) = c.members.get(member) else {
        return CommitCheck::Refused(ec::UNKNOWN_MEMBER_ID);
    };
    if version < 9 {
        return CommitCheck::Refused(ec::UNSUPPORTED_VERSION);
    }
    if m.epoch != epoch {
        return CommitCheck::Refused(consumer_group::STALE_MEMBER_EPOCH);
    }
    CommitCheck::Allowed
}

#[cfg(test)]
#[path = "coordinator_tests.rs"]
mod tests;
