//! The consumer group protocol of KIP-848 (ConsumerGroupHeartbeat): the broker computes
//! assignments and members converge on them one heartbeat at a time, with no
//! stop-the-world rebalance. No I/O, no timers: every call takes `now`, and the
//! coordinator's `tick` applies session and revocation deadlines.
//!
//! Three epochs, as in Kafka:
//! ```text
//!   group epoch        bumped when membership, a subscription or subscribed topic
//!                      metadata changes
//!   assignment epoch   the group epoch the target assignment was computed for; when it
//!                      is behind the group epoch the assignor runs again
//!   member epoch       the assignment epoch the member has caught up with
//! ```
//! Reconciling one member (`reconcile`): partitions it owns but its target does not are
//! revoked first (it keeps its epoch and is answered without them); only once its
//! heartbeat reports them gone does it move to the assignment epoch, and it is then
//! given the partitions of its target that no other member still owns. A partition so
//! held back is handed over on a later heartbeat, after its previous owner revoked it,
//! left, or was evicted: a partition never has two owners.
//!
//! Concurrency: a `ConsumerGroup` lives in its `Group` on the group's home shard and is
//! touched by that shard alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use regex::Regex;

use super::assignor::{Assignment, Assignor, TopicId};
use super::offsets::{CurrentAssignment, GroupRecord, MemberMetadata};
use crate::broker::metadata::Snapshot;
use crate::protocol::errors as ec;

/// Kafka's error codes of this protocol (not in `protocol::errors`, which holds the
/// codes the rest of the broker shares).
pub const FENCED_MEMBER_EPOCH: i16 = 110;
pub const UNRELEASED_INSTANCE_ID: i16 = 111;
pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
pub const STALE_MEMBER_EPOCH: i16 = 113;
pub const INVALID_REGULAR_EXPRESSION: i16 = 128;

/// Member epochs with a meaning of their own.
pub const JOIN_EPOCH: i32 = 0;
pub const LEAVE_EPOCH: i32 = -1;
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// Longest SubscribedTopicRegex accepted, and the compiled program's size limit: a
/// pattern is compiled on the home shard's reactor, so both are bounded.
pub const REGEX_CHARS_MAX: usize = 4096;
const REGEX_PROGRAM_BYTES_MAX: usize = 1 << 20;

/// `group.consumer.*` settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// `group.consumer.assignors`: the first is the default.
    pub assignors: Vec<Assignor>,
    /// `group.consumer.max.size`: a member joining a group this big is refused.
    pub max_size: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(5_000),
            assignors: vec![Assignor::Uniform, Assignor::Range],
            max_size: crate::config::GROUP_MAX_SIZE_DEFAULT,
        }
    }
}

/// One ConsumerGroupHeartbeat, decoded.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatArgs {
    pub group: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    /// `None`: unchanged since the last heartbeat.
    pub topic_names: Option<Vec<String>>,
    pub topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns, when it reports them.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
    pub version: i16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Sent when it changed, on a join, or when the member's view differs.
    pub assignment: Option<Assignment>,
}

impl HeartbeatReply {
    pub fn error(code: i16, message: impl Into<String>) -> HeartbeatReply {
        HeartbeatReply {
            error_code: code,
            error_message: Some(message.into()),
            ..HeartbeatReply::default()
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: Duration,
    pub topic_names: Vec<String>,
    pub topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub epoch: i32,
    pub previous_epoch: i32,
    /// What the member owns as far as the coordinator knows.
    pub assigned: Assignment,
    /// Partitions it was asked to give up and has not yet reported gone.
    pub revoking: Assignment,
    pub revoke_deadline: Option<Instant>,
    pub expires_at: Instant,
    /// A static member that left with epoch -2: its partitions wait for its instance.
    pub departed: bool,
}

#[derive(Debug, Default)]
pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    /// The assignor of the current target assignment.
    pub assignor: Option<Assignor>,
    pub target: BTreeMap<String, Assignment>,
    pub members: BTreeMap<String, ConsumerMember>,
    /// group.instance.id to member id.
    static_members: HashMap<String, String>,
    /// Partition counts of the subscribed topics the target was computed from.
    subscribed: BTreeMap<TopicId, i32>,
    /// Names of the subscribed topics that exist (for OffsetDelete and retention).
    pub subscribed_names: BTreeSet<String>,
    /// Each member's subscribed topic ids, as of the last metadata refresh.
    member_subs: BTreeMap<String, BTreeSet<TopicId>>,
    regexes: HashMap<String, Regex>,
    /// The group epoch when the current heartbeat started: whatever it changes, the
    /// epoch moves by one (`bump`).
    epoch_at_start: i32,
    /// Member records (Kafka's key v5 and v8) for the caller to persist.
    pub records: Vec<GroupRecord>,
}

/// Compiles a SubscribedTopicRegex (RE2/J syntax, matched against whole topic names).
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > REGEX_CHARS_MAX {
        return Err(format!(
            "SubscribedTopicRegex is longer than {REGEX_CHARS_MAX} characters"
        ));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(REGEX_PROGRAM_BYTES_MAX)
        .build()
        .map_err(|e| format!("SubscribedTopicRegex `{pattern}` is invalid: {e}"))
}

/// Kafka's checks of a heartbeat before it touches a group (INVALID_REQUEST and the
/// assignor and regex errors).
pub fn validate(args: &HeartbeatArgs, config: &ConsumerConfig) -> Result<(), (i16, String)> {
    let invalid = |m: &str| Err((ec::INVALID_REQUEST, m.to_string()));
    if args.group.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if args.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if args.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    let e = args.member_epoch;
    if e < STATIC_LEAVE_EPOCH {
        return invalid("MemberEpoch is invalid.");
    }
    if args.member_id.is_empty() && (e != JOIN_EPOCH || args.version >= 1) {
        return invalid("MemberId can't be empty.");
    }
    if e == STATIC_LEAVE_EPOCH && args.instance_id.is_none() {
        return invalid("InstanceId can't be null.");
    }
    if e == JOIN_EPOCH {
        if args.rebalance_timeout_ms <= 0 {
            return invalid("RebalanceTimeoutMs must be provided in first request.");
        }
        if args.topic_names.is_none() && args.topic_regex.is_none() {
            return invalid(
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            );
        }
        if args.owned.as_ref().is_some_and(|o| !o.is_empty()) {
            return invalid("TopicPartitions must be empty when (re-)joining.");
        }
    }
    if let Some(name) = args.server_assignor.as_deref() {
        let known = Assignor::from_name(name).is_some_and(|a| config.assignors.contains(&a));
        if !known {
            return Err((
                UNSUPPORTED_ASSIGNOR,
                format!(
                    "ServerAssignor {name} is not supported. Supported assignors: {}.",
                    names(&config.assignors)
                ),
            ));
        }
    }
    if let Some(r) = args.topic_regex.as_deref().filter(|r| !r.is_empty()) {
        compile_regex(r).map_err(|m| (INVALID_REGULAR_EXPRESSION, m))?;
    }
    Ok(())
}

fn names(assignors: &[Assignor]) -> String {
    assignors
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(other) => ps.difference(other).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        if let Some(other) = b.get(t) {
            let both: BTreeSet<i32> = ps.intersection(other).copied().collect();
            if !both.is_empty() {
                out.insert(*t, both);
            }
        }
    }
    out
}

fn contains_any(a: &Assignment, b: &Assignment) -> bool {
    count(&intersect(a, b)) > 0
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    minus(a, b).is_empty()
}

impl ConsumerGroup {
    /// Queues the member records of `id` that differ from `before`.
    fn record_member(&mut self, id: &str, before: Option<(MemberMetadata, CurrentAssignment)>) {
        let m = &self.members[id];
        let (meta, asg) = (metadata_of(m), self.assignment_of(m));
        let (meta_changed, asg_changed) = match &before {
            Some((bm, ba)) => (*bm != meta, *ba != asg),
            None => (true, true),
        };
        if meta_changed {
            self.records
                .push(GroupRecord::Member(id.to_string(), Some(meta)));
        }
        if asg_changed {
            self.records
                .push(GroupRecord::MemberAssignment(id.to_string(), Some(asg)));
        }
    }

    /// A member's current assignment as Kafka's record holds it; a static member that
    /// left temporarily has epoch -2 there.
    fn assignment_of(&self, m: &ConsumerMember) -> CurrentAssignment {
        let state = if !m.revoking.is_empty() {
            1
        } else if self.target.get(&m.id).is_some_and(|t| *t != m.assigned) {
            2
        } else {
            0
        };
        CurrentAssignment {
            epoch: if m.departed {
                STATIC_LEAVE_EPOCH
            } else {
                m.epoch
            },
            previous_epoch: if m.departed {
                m.epoch
            } else {
                m.previous_epoch
            },
            state,
            assigned: m.assigned.clone(),
            revoking: m.revoking.clone(),
        }
    }

    /// Restores a member from its ConsumerGroupMemberMetadata record (start-up); its
    /// session starts now.
    pub fn restore_member(&mut self, id: &str, meta: MemberMetadata, expires_at: Instant) {
        if let Some(instance) = &meta.instance_id {
            self.static_members.insert(instance.clone(), id.to_string());
        }
        let m = self
            .members
            .entry(id.to_string())
            .or_insert_with(|| ConsumerMember {
                id: id.to_string(),
                instance_id: None,
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                rebalance_timeout: Duration::ZERO,
                topic_names: Vec::new(),
                topic_regex: None,
                server_assignor: None,
                epoch: JOIN_EPOCH,
                previous_epoch: JOIN_EPOCH,
                assigned: Assignment::new(),
                revoking: Assignment::new(),
                revoke_deadline: None,
                expires_at,
                departed: false,
            });
        m.instance_id = meta.instance_id;
        m.rack_id = meta.rack_id;
        m.client_id = meta.client_id;
        m.client_host = meta.client_host;
        m.rebalance_timeout = Duration::from_millis(meta.rebalance_timeout_ms.max(0) as u64);
        m.topic_names = meta.topic_names;
        m.topic_regex = meta.topic_regex;
        m.server_assignor = meta.server_assignor;
        m.expires_at = expires_at;
    }

    /// Restores a member's epochs and partitions from its current-assignment record.
    pub fn restore_assignment(&mut self, id: &str, a: Option<CurrentAssignment>) {
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        match a {
            Some(a) => {
                m.departed = a.epoch == STATIC_LEAVE_EPOCH;
                (m.epoch, m.previous_epoch) = if m.departed {
                    (a.previous_epoch, a.previous_epoch)
                } else {
                    (a.epoch, a.previous_epoch)
                };
                m.assigned = a.assigned;
                m.revoking = a.revoking;
            }
            None => {
                m.assigned.clear();
                m.revoking.clear();
            }
        }
    }

    /// Forgets a member at start-up (its records were tombstoned).
    pub fn forget_member(&mut self, id: &str) {
        if let Some(m) = self.members.remove(id) {
            if let Some(instance) = &m.instance_id {
                if self.static_members.get(instance) == Some(&m.id) {
                    self.static_members.remove(instance);
                }
            }
        }
    }

    /// After the replay: the target is what members own, at the persisted epoch (the
    /// assignor runs again once a heartbeat finds the subscribed topics).
    pub fn finish_restore(&mut self) {
        self.assignment_epoch = self.group_epoch;
        self.target = self
            .members
            .values()
            .map(|m| (m.id.clone(), m.assigned.clone()))
            .collect();
    }

    fn bump(&mut self) {
        self.group_epoch = self.group_epoch.max(self.epoch_at_start + 1);
    }

    /// Kafka's consumer group states.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|m| !self.reconciled(m)) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    fn reconciled(&self, m: &ConsumerMember) -> bool {
        m.epoch == self.assignment_epoch
            && m.revoking.is_empty()
            && self
                .target
                .get(&m.id)
                .map_or(m.assigned.is_empty(), |t| *t == m.assigned)
    }

    /// The group's (or the default) assignor: the one most members ask for, ties in
    /// configuration order.
    pub fn preferred_assignor(&self, config: &ConsumerConfig) -> Assignor {
        let votes = |a: Assignor| {
            self.members
                .values()
                .filter(|m| m.server_assignor.as_deref() == Some(a.name()))
                .count()
        };
        let mut best = config
            .assignors
            .first()
            .copied()
            .unwrap_or(Assignor::Uniform);
        let mut best_votes = 0;
        for &a in &config.assignors {
            let v = votes(a);
            if v > best_votes {
                best = a;
                best_votes = v;
            }
        }
        best
    }

    /// Serves one heartbeat of a validated request. The caller bumps nothing: a change
    /// of `group_epoch` is for it to persist.
    pub fn heartbeat(
        &mut self,
        now: Instant,
        args: HeartbeatArgs,
        snap: &Snapshot,
        config: &ConsumerConfig,
    ) -> HeartbeatReply {
        if args.member_epoch == LEAVE_EPOCH || args.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(&args);
        }
        let joining = args.member_epoch == JOIN_EPOCH;
        let id = if args.member_id.is_empty() {
            uuid::Uuid::from_bytes(crate::util::random_uuid()).to_string()
        } else {
            args.member_id.clone()
        };
        let before = self.members.get(&id).map(|m| (m.epoch, m.assigned.clone()));
        let before_records = self
            .members
            .get(&id)
            .map(|m| (metadata_of(m), self.assignment_of(m)));
        self.epoch_at_start = self.group_epoch;
        if let Err((code, message)) = self.admit(now, &id, &args, config) {
            return HeartbeatReply::error(code, message);
        }
        self.update_member(now, &id, &args, config);
        self.refresh_metadata(snap);
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(config);
        }
        self.reconcile(now, &id, args.owned.as_ref());
        self.record_member(&id, before_records);
        let m = &self.members[&id];
        let changed = before.is_none_or(|(e, a)| e != m.epoch || a != m.assigned);
        let stale_view = args.owned.as_ref().is_some_and(|o| *o != m.assigned);
        HeartbeatReply {
            error_code: ec::NONE,
            error_message: None,
            member_id: Some(id.clone()),
            member_epoch: m.epoch,
            heartbeat_interval_ms: config.heartbeat_interval.as_millis().min(i32::MAX as u128)
                as i32,
            assignment: (joining || changed || stale_view).then(|| m.assigned.clone()),
        }
    }

    /// Checks the member may heartbeat at this epoch; creates a joining member.
    fn admit(
        &mut self,
        now: Instant,
        id: &str,
        args: &HeartbeatArgs,
        config: &ConsumerConfig,
    ) -> Result<(), (i16, String)> {
        if args.member_epoch == JOIN_EPOCH {
            if let Some(instance) = &args.instance_id {
                self.take_over_static(id, instance)?;
            }
            match self.members.get_mut(id) {
                Some(m) => {
                    // A known member rejoining has given up everything it owned.
                    m.assigned.clear();
                    m.revoking.clear();
                    m.revoke_deadline = None;
                    m.previous_epoch = m.epoch;
                    m.epoch = JOIN_EPOCH;
                    m.departed = false;
                }
                None => {
                    let live = self.members.values().filter(|m| !m.departed).count();
                    // A static member taking over its instance's place does not grow
                    // the group (take_over_static removed the one it replaces).
                    if live >= config.max_size {
                        return Err((
                            ec::GROUP_MAX_SIZE_REACHED,
                            format!(
                                "The consumer group has reached its maximum capacity of {} members (group.consumer.max.size).",
                                config.max_size
                            ),
                        ));
                    }
                    self.members
                        .insert(id.to_string(), new_member(now, id, args, config));
                    if let Some(instance) = &args.instance_id {
                        self.static_members.insert(instance.clone(), id.to_string());
                    }
                    self.bump();
                }
            }
            return Ok(());
        }
        let Some(m) = self.members.get(id) else {
            return Err((
                ec::UNKNOWN_MEMBER_ID,
                format!("Member {id} is not a member of group {}.", args.group),
            ));
        };
        if m.departed {
            return Err((
                ec::UNKNOWN_MEMBER_ID,
                format!("Member {id} left the group."),
            ));
        }
        if m.instance_id != args.instance_id && args.instance_id.is_some() {
            return Err((
                ec::FENCED_INSTANCE_ID,
                "The instance id does not match.".into(),
            ));
        }
        let e = args.member_epoch;
        let previous_ok = e == m.previous_epoch
            && args
                .owned
                .as_ref()
                .is_some_and(|o| is_subset(o, &m.assigned));
        if e > m.epoch || (e < m.epoch && !previous_ok) {
            return Err((
                FENCED_MEMBER_EPOCH,
                format!("The consumer group member has a member epoch ({e}) which is not the expected one ({}).", m.epoch),
            ));
        }
        Ok(())
    }

    /// A static member joining under a new member id: it replaces the member its
    /// instance had, if that one left temporarily (epoch -2), keeping its epoch and
    /// partitions; while that one is still active the join is refused.
    fn take_over_static(&mut self, id: &str, instance: &str) -> Result<(), (i16, String)> {
        let Some(old_id) = self.static_members.get(instance).cloned() else {
            return Ok(());
        };
        if old_id == id {
            return Ok(());
        }
        match self.members.get(&old_id) {
            Some(old) if !old.departed => Err((
                UNRELEASED_INSTANCE_ID,
                format!("Static member {old_id} with instance id {instance} is not released yet."),
            )),
            Some(_) => {
                self.records
                    .push(GroupRecord::MemberAssignment(old_id.clone(), None));
                self.records.push(GroupRecord::Member(old_id.clone(), None));
                let mut m = self.members.remove(&old_id).expect("checked");
                m.id = id.to_string();
                m.departed = false;
                if let Some(t) = self.target.remove(&old_id) {
                    self.target.insert(id.to_string(), t);
                }
                self.members.insert(id.to_string(), m);
                self.static_members
                    .insert(instance.to_string(), id.to_string());
                Ok(())
            }
            None => {
                self.static_members.remove(instance);
                Ok(())
            }
        }
    }

    fn update_member(
        &mut self,
        now: Instant,
        id: &str,
        args: &HeartbeatArgs,
        config: &ConsumerConfig,
    ) {
        let m = self.members.get_mut(id).expect("admitted");
        let mut subscription_changed = false;
        if let Some(names) = &args.topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            if m.topic_names != names {
                subscription_changed = true;
                m.topic_names = names;
            }
        }
        if let Some(regex) = &args.topic_regex {
            let regex = (!regex.is_empty()).then(|| regex.clone());
            if m.topic_regex != regex {
                subscription_changed = true;
                m.topic_regex = regex;
            }
        }
        if let Some(a) = &args.server_assignor {
            if m.server_assignor.as_ref() != Some(a) {
                subscription_changed = true;
                m.server_assignor = Some(a.clone());
            }
        }
        if args.rebalance_timeout_ms > 0 {
            m.rebalance_timeout = Duration::from_millis(args.rebalance_timeout_ms as u64);
        }
        if args.rack_id.is_some() {
            m.rack_id = args.rack_id.clone();
        }
        m.client_id = args.client_id.clone();
        m.client_host = args.client_host.clone();
        m.expires_at = now + config.session_timeout;
        if subscription_changed {
            self.bump();
        }
    }

    /// The topic ids (with partition counts) `m` subscribes to, from `snap`. A regex
    /// matches no internal topic, as in Kafka.
    fn member_topics(
        &self,
        m: &ConsumerMember,
        snap: &Snapshot,
    ) -> BTreeMap<TopicId, (String, i32)> {
        let mut out = BTreeMap::new();
        for name in &m.topic_names {
            if let Some(t) = snap.topic(name) {
                out.insert(t.id, (t.name.clone(), t.partitions.len() as i32));
            }
        }
        if let Some(re) = m.topic_regex.as_ref().and_then(|r| self.regexes.get(r)) {
            for (name, t) in &snap.topics {
                if !name.starts_with("__") && re.is_match(name) {
                    out.insert(t.id, (t.name.clone(), t.partitions.len() as i32));
                }
            }
        }
        out
    }

    /// Bumps the group epoch when a subscribed topic appeared, vanished or grew.
    pub fn refresh_metadata(&mut self, snap: &Snapshot) {
        for m in self.members.values() {
            let Some(r) = &m.topic_regex else { continue };
            if let std::collections::hash_map::Entry::Vacant(e) = self.regexes.entry(r.clone()) {
                if let Ok(compiled) = compile_regex(e.key()) {
                    e.insert(compiled);
                }
            }
        }
        let mut subscribed = BTreeMap::new();
        let mut names = BTreeSet::new();
        let mut member_subs = BTreeMap::new();
        for m in self.members.values() {
            let topics = self.member_topics(m, snap);
            member_subs.insert(m.id.clone(), topics.keys().copied().collect());
            for (id, (name, parts)) in topics {
                subscribed.insert(id, parts);
                names.insert(name);
            }
        }
        self.member_subs = member_subs;
        let members = &self.members;
        self.regexes
            .retain(|r, _| members.values().any(|m| m.topic_regex.as_ref() == Some(r)));
        if subscribed != self.subscribed {
            self.subscribed = subscribed;
            self.bump();
        }
        self.subscribed_names = names;
    }

    fn compute_target(&mut self, config: &ConsumerConfig) {
        let assignor = self.preferred_assignor(config);
        // Subscriptions as topic ids, from the names resolved in `refresh_metadata`.
        let members: BTreeMap<String, BTreeSet<TopicId>> = self
            .members
            .keys()
            .map(|id| {
                (
                    id.clone(),
                    self.member_subs.get(id).cloned().unwrap_or_default(),
                )
            })
            .collect();
        self.target = assignor.assign(&members, &self.subscribed, &self.target);
        self.assignor = Some(assignor);
        self.assignment_epoch = self.group_epoch;
    }

    /// Partitions owned (assigned or still being revoked) by members other than `id`.
    fn owned_by_others(&self, id: &str) -> Assignment {
        let mut out = Assignment::new();
        for m in self.members.values().filter(|m| m.id != id) {
            for a in [&m.assigned, &m.revoking] {
                for (t, ps) in a {
                    out.entry(*t).or_default().extend(ps.iter().copied());
                }
            }
        }
        out
    }

    /// Moves member `id` towards its target (see the module comment).
    fn reconcile(&mut self, now: Instant, id: &str, owned: Option<&Assignment>) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let epoch = self.assignment_epoch;
        let others = self.owned_by_others(id);
        let m = self.members.get_mut(id).expect("admitted");
        if !m.revoking.is_empty() {
            match owned {
                Some(o) if !contains_any(o, &m.revoking) => {
                    m.revoking.clear();
                    m.revoke_deadline = None;
                }
                _ => return,
            }
        }
        if m.epoch == epoch && m.assigned == target {
            return;
        }
        let keep = intersect(&m.assigned, &target);
        let revoke = minus(&m.assigned, &target);
        if !revoke.is_empty() {
            m.assigned = keep;
            m.revoking = revoke;
            m.revoke_deadline = Some(now + m.rebalance_timeout);
            return;
        }
        let free = minus(&minus(&target, &keep), &others);
        for (t, ps) in free {
            m.assigned.entry(t).or_default().extend(ps);
        }
        if m.epoch != epoch {
            m.previous_epoch = m.epoch;
            m.epoch = epoch;
        }
    }

    fn leave(&mut self, args: &HeartbeatArgs) -> HeartbeatReply {
        let id = &args.member_id;
        let Some(m) = self.members.get_mut(id) else {
            return HeartbeatReply::error(
                ec::UNKNOWN_MEMBER_ID,
                format!("Member {id} is not a member of group {}.", args.group),
            );
        };
        if args.member_epoch == STATIC_LEAVE_EPOCH && m.instance_id.is_some() {
            // Kept, with its partitions, until its instance rejoins or its session ends.
            m.departed = true;
            let asg = self.assignment_of(&self.members[id]);
            self.records
                .push(GroupRecord::MemberAssignment(id.clone(), Some(asg)));
        } else {
            self.remove_member(id);
        }
        HeartbeatReply {
            member_id: Some(id.clone()),
            member_epoch: args.member_epoch,
            ..HeartbeatReply::default()
        }
    }

    /// Removes a member; its partitions become free at once.
    pub fn remove_member(&mut self, id: &str) {
        if let Some(m) = self.members.remove(id) {
            if let Some(instance) = &m.instance_id {
                if self.static_members.get(instance) == Some(&m.id) {
                    self.static_members.remove(instance);
                }
            }
            self.target.remove(id);
            self.group_epoch += 1;
            self.records
                .push(GroupRecord::MemberAssignment(id.to_string(), None));
            self.records.push(GroupRecord::Member(id.to_string(), None));
        }
    }

    /// Members whose session ended, or who did not revoke within their rebalance
    /// timeout (Kafka fences those).
    pub fn expired(&self, now: Instant) -> Vec<(String, &'static str)> {
        self.members
            .values()
            .filter_map(|m| {
                if m.expires_at <= now {
                    Some((m.id.clone(), "session expired"))
                } else if m.revoke_deadline.is_some_and(|d| d <= now) {
                    Some((
                        m.id.clone(),
                        "did not revoke partitions within its rebalance timeout",
                    ))
                } else {
                    None
                }
            })
            .collect()
    }
}

fn metadata_of(m: &ConsumerMember) -> MemberMetadata {
    MemberMetadata {
        instance_id: m.instance_id.clone(),
        rack_id: m.rack_id.clone(),
        client_id: m.client_id.clone(),
        client_host: m.client_host.clone(),
        topic_names: m.topic_names.clone(),
        topic_regex: m.topic_regex.clone(),
        rebalance_timeout_ms: m.rebalance_timeout.as_millis().min(i32::MAX as u128) as i32,
        server_assignor: m.server_assignor.clone(),
    }
}

fn new_member(
    now: Instant,
    id: &str,
    args: &HeartbeatArgs,
    config: &ConsumerConfig,
) -> ConsumerMember {
    ConsumerMember {
        id: id.to_string(),
        instance_id: args.instance_id.clone(),
        rack_id: args.rack_id.clone(),
        client_id: args.client_id.clone(),
        client_host: args.client_host.clone(),
        rebalance_timeout: Duration::from_millis(args.rebalance_timeout_ms.max(0) as u64),
        topic_names: Vec::new(),
        topic_regex: None,
        server_assignor: None,
        epoch: JOIN_EPOCH,
        previous_epoch: JOIN_EPOCH,
        assigned: Assignment::new(),
        revoking: Assignment::new(),
        revoke_deadline: None,
        expires_at: now + config.session_timeout,
        departed: false,
    }
}

#[cfg(test)]
#[path = "consumer_group_tests.rs"]
mod tests;
