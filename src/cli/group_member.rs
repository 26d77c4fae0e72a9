//! A member of a classic consumer group, for `corelog consume --group G` (one topic) and
//! Connect's file sink (`join_topics`: one or more topics): FindCoordinator,
//! JoinGroup (with the MEMBER_ID_REQUIRED retry), SyncGroup (the leader computes a range
//! assignment), Heartbeat and periodic OffsetCommit from the consume loop, and on exit a
//! last OffsetCommit and LeaveGroup.
//!
//! Subscriptions and assignments use the `consumer` protocol's
//! ConsumerProtocolSubscription / ConsumerProtocolAssignment encoding (an i16 version,
//! then the struct), so librdkafka, kafka-python and Java members can share the group.
//!
//! Concurrency: none. The consume loop calls `tick` between fetches; a fetch waits at
//! most `FETCH_WAIT_MAX_MS`, well under the heartbeat interval, so heartbeats stay timely.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::client::Cluster;
use super::topic::{broker_error, leaders, TopicError};

const FIND_COORDINATOR_VERSION: i16 = 3;
const JOIN_GROUP_VERSION: i16 = 5;
const SYNC_GROUP_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const LEAVE_GROUP_VERSION: i16 = 3;
const OFFSET_COMMIT_VERSION: i16 = 7;
/// The consumer protocol versions we write and the newest we read.
const SUBSCRIPTION_VERSION: i16 = 0;
const ASSIGNMENT_VERSION: i16 = 0;
const CONSUMER_PROTOCOL_VERSION_MAX: i16 = 3;
pub const PROTOCOL_TYPE: &str = "consumer";
pub const ASSIGNOR: &str = "range";
/// Kafka's defaults, except a shorter session so a killed member leaves sooner.
const SESSION_TIMEOUT_MS: i32 = 10_000;
/// JoinGroup can block this long while the others rejoin; the client's I/O timeout
/// (30 s) must stay above it.
const REBALANCE_TIMEOUT_MS: i32 = 20_000;
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(3_000);
const COMMIT_INTERVAL: Duration = Duration::from_millis(5_000);
/// The longest the consume loop may block between two `tick`s.
pub const FETCH_WAIT_MAX_MS: i32 = 500;
/// Join attempts (MEMBER_ID_REQUIRED, REBALANCE_IN_PROGRESS, ...) before giving up.
const JOIN_ATTEMPTS_MAX: u32 = 20;

// Kafka error codes the protocol reacts to.
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;

/// topic → partition → next offset: the positions of a member of several topics.
pub type TopicPositions = BTreeMap<String, BTreeMap<i32, i64>>;

pub struct GroupMember {
    group: String,
    /// The subscription; `corelog consume` subscribes to one topic, a Connect sink to
    /// one or more.
    topics: Vec<String>,
    pub coordinator: i32,
    member_id: String,
    generation: i32,
    /// The partitions of the first subscribed topic this member owns in the current
    /// generation (for single-topic callers).
    pub assignment: Vec<i32>,
    /// Every subscribed topic's partitions this member owns in the current generation.
    pub owned: BTreeMap<String, Vec<i32>>,
    next_heartbeat: Instant,
    next_commit: Instant,
    /// What was last committed, so an unchanged position is not committed again.
    committed: BTreeMap<(String, i32), i64>,
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_string()))
}

/// The node id of `group`'s coordinator, connected.
pub fn find_coordinator(cluster: &mut Cluster, group: &str) -> Result<i32, TopicError> {
    let mut req = FindCoordinatorRequest::default();
    req.key = StrBytes::from_string(group.to_string());
    for attempt in 1.. {
        let resp: FindCoordinatorResponse =
            cluster
                .any()
                .call(ApiKey::FindCoordinator, FIND_COORDINATOR_VERSION, &req)?;
        if resp.error_code == COORDINATOR_NOT_AVAILABLE && attempt < JOIN_ATTEMPTS_MAX {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        if resp.error_code != 0 {
            return Err(broker_error(
                group,
                resp.error_code,
                resp.error_message.as_ref(),
            ));
        }
        cluster.broker_at(resp.node_id.0, resp.host.as_str(), resp.port)?;
        return Ok(resp.node_id.0);
    }
    unreachable!("the loop returns")
}

impl GroupMember {
    /// Joins `group` subscribed to `topic` and waits for this member's assignment.
    pub fn join(cluster: &mut Cluster, group: &str, topic: &str) -> Result<Self, TopicError> {
        Self::join_topics(cluster, group, &[topic.to_string()])
    }

    /// Joins `group` subscribed to `topics` (at least one) and waits for this member's
    /// assignment.
    pub fn join_topics(
        cluster: &mut Cluster,
        group: &str,
        topics: &[String],
    ) -> Result<Self, TopicError> {
        assert!(
            !topics.is_empty(),
            "a member subscribes to at least one topic"
        );
        let coordinator = find_coordinator(cluster, group)?;
        let mut m = GroupMember {
            group: group.to_string(),
            topics: topics.to_vec(),
            coordinator,
            member_id: String::new(),
            generation: -1,
            assignment: Vec::new(),
            owned: BTreeMap::new(),
            next_heartbeat: Instant::now(),
            next_commit: Instant::now() + COMMIT_INTERVAL,
            committed: BTreeMap::new(),
        };
        m.rejoin(cluster)?;
        Ok(m)
    }

    fn rejoin(&mut self, cluster: &mut Cluster) -> Result<(), TopicError> {
        for _ in 0..JOIN_ATTEMPTS_MAX {
            let join = self.join_group(cluster)?;
            match join.error_code {
                0 => {}
                MEMBER_ID_REQUIRED => {
                    self.member_id = join.member_id.to_string();
                    continue;
                }
                UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                    continue;
                }
                REBALANCE_IN_PROGRESS => continue,
                NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE | COORDINATOR_LOAD_IN_PROGRESS => {
                    std::thread::sleep(Duration::from_millis(200));
                    self.coordinator = find_coordinator(cluster, &self.group)?;
                    continue;
                }
                code => return Err(broker_error(&self.group, code, None)),
            }
            self.member_id = join.member_id.to_string();
            self.generation = join.generation_id;
            let assignments = if join.leader == join.member_id {
                self.assign(cluster, &join)?
            } else {
                Vec::new()
            };
            match self.sync_group(cluster, assignments)? {
                Ok(mine) => {
                    self.assignment = mine.get(&self.topics[0]).cloned().unwrap_or_default();
                    self.owned = mine;
                    self.committed.clear();
                    self.next_heartbeat = Instant::now() + HEARTBEAT_INTERVAL;
                    return Ok(());
                }
                Err(UNKNOWN_MEMBER_ID) => self.member_id.clear(),
                Err(REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION) => {}
                Err(code) => return Err(broker_error(&self.group, code, None)),
            }
        }
        Err(TopicError::Refused(format!(
            "{}: no stable group after {JOIN_ATTEMPTS_MAX} join attempts (members keep joining or leaving)",
            self.group
        )))
    }

    fn join_group(&mut self, cluster: &mut Cluster) -> Result<JoinGroupResponse, TopicError> {
        let mut sub = ConsumerProtocolSubscription::default();
        sub.topics = self
            .topics
            .iter()
            .map(|t| StrBytes::from_string(t.clone()))
            .collect();
        let mut protocol = JoinGroupRequestProtocol::default();
        protocol.name = StrBytes::from_static_str(ASSIGNOR);
        protocol.metadata = versioned(&sub, SUBSCRIPTION_VERSION)?;
        let mut req = JoinGroupRequest::default();
        req.group_id = group_id(&self.group);
        req.session_timeout_ms = SESSION_TIMEOUT_MS;
        req.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
        req.member_id = StrBytes::from_string(self.member_id.clone());
        req.protocol_type = StrBytes::from_static_str(PROTOCOL_TYPE);
        req.protocols = vec![protocol];
        Ok(cluster
            .broker(self.coordinator)?
            .call(ApiKey::JoinGroup, JOIN_GROUP_VERSION, &req)?)
    }

    /// As the leader: a range assignment of every member's subscribed topics.
    fn assign(
        &self,
        cluster: &mut Cluster,
        join: &JoinGroupResponse,
    ) -> Result<Vec<SyncGroupRequestAssignment>, TopicError> {
        let mut subscriptions = BTreeMap::new();
        for m in &join.members {
            let sub: ConsumerProtocolSubscription = read_versioned(&m.metadata).map_err(|why| {
                TopicError::Refused(format!(
                    "{}: member {} sent a subscription we cannot read: {why}",
                    self.group, m.member_id
                ))
            })?;
            let topics: Vec<String> = sub.topics.iter().map(|t| t.to_string()).collect();
            subscriptions.insert(m.member_id.to_string(), topics);
        }
        let mut partitions = BTreeMap::new();
        for topic in subscriptions.values().flatten() {
            if !partitions.contains_key(topic) {
                let count = match leaders(cluster, topic, false) {
                    Ok(l) => l.len() as i32,
                    Err(TopicError::Broker { .. }) => 0,
                    Err(e) => return Err(e),
                };
                partitions.insert(topic.clone(), count);
            }
        }
        range_assign(&subscriptions, &partitions)
            .into_iter()
            .map(|(member, owned)| {
                let mut a = ConsumerProtocolAssignment::default();
                a.assigned_partitions = owned
                    .into_iter()
                    .map(|(topic, parts)| {
                        let mut tp = AssignedPartitions::default();
                        tp.topic = TopicName(StrBytes::from_string(topic));
                        tp.partitions = parts;
                        tp
                    })
                    .collect();
                let mut s = SyncGroupRequestAssignment::default();
                s.member_id = StrBytes::from_string(member);
                s.assignment = versioned(&a, ASSIGNMENT_VERSION)?;
                Ok(s)
            })
            .collect()
    }

    /// Ok(this member's partitions of the topic), or Err(error code) to rejoin on.
    fn sync_group(
        &mut self,
        cluster: &mut Cluster,
        assignments: Vec<SyncGroupRequestAssignment>,
    ) -> Result<Result<BTreeMap<String, Vec<i32>>, i16>, TopicError> {
        let mut req = SyncGroupRequest::default();
        req.group_id = group_id(&self.group);
        req.generation_id = self.generation;
        req.member_id = StrBytes::from_string(self.member_id.clone());
        req.assignments = assignments;
        let resp: SyncGroupResponse =
            cluster
                .broker(self.coordinator)?
                .call(ApiKey::SyncGroup, SYNC_GROUP_VERSION, &req)?;
        if resp.error_code != 0 {
            return Ok(Err(resp.error_code));
        }
        if resp.assignment.is_empty() {
            return Ok(Ok(BTreeMap::new()));
        }
        let a: ConsumerProtocolAssignment = read_versioned(&resp.assignment).map_err(|why| {
            TopicError::Refused(format!("{}: unreadable assignment: {why}", self.group))
        })?;
        let mut mine: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for tp in &a.assigned_partitions {
            let topic = tp.topic.0.as_str();
            if self.topics.iter().any(|t| t == topic) {
                mine.entry(topic.to_string())
                    .or_default()
                    .extend(tp.partitions.iter().copied());
            }
        }
        for parts in mine.values_mut() {
            parts.sort_unstable();
            parts.dedup();
        }
        Ok(Ok(mine))
    }

    /// Heartbeats and commits when due. Returns true when the group rebalanced and this
    /// member rejoined: the caller then reads `assignment` and positions anew.
    pub fn tick(
        &mut self,
        cluster: &mut Cluster,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<bool, TopicError> {
        let positions = self.of_first_topic(positions);
        self.tick_topics(cluster, &positions)
    }

    /// `positions` as the first subscribed topic's.
    fn of_first_topic(&self, positions: &BTreeMap<i32, i64>) -> TopicPositions {
        BTreeMap::from([(self.topics[0].clone(), positions.clone())])
    }

    /// `tick` for a member of several topics: the caller then reads `owned` anew.
    pub fn tick_topics(
        &mut self,
        cluster: &mut Cluster,
        positions: &TopicPositions,
    ) -> Result<bool, TopicError> {
        let now = Instant::now();
        if now >= self.next_commit {
            self.commit_topics(cluster, positions)?;
            self.next_commit = now + COMMIT_INTERVAL;
        }
        if now < self.next_heartbeat {
            return Ok(false);
        }
        self.next_heartbeat = now + HEARTBEAT_INTERVAL;
        let mut req = HeartbeatRequest::default();
        req.group_id = group_id(&self.group);
        req.generation_id = self.generation;
        req.member_id = StrBytes::from_string(self.member_id.clone());
        let resp: HeartbeatResponse =
            cluster
                .broker(self.coordinator)?
                .call(ApiKey::Heartbeat, HEARTBEAT_VERSION, &req)?;
        match resp.error_code {
            0 => Ok(false),
            REBALANCE_IN_PROGRESS => {
                // Still a member of this generation: hand over what was consumed.
                self.commit_topics(cluster, positions)?;
                self.rejoin(cluster)?;
                Ok(true)
            }
            ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID => {
                if resp.error_code == UNKNOWN_MEMBER_ID {
                    self.member_id.clear();
                }
                self.rejoin(cluster)?;
                Ok(true)
            }
            code => Err(broker_error(&self.group, code, None)),
        }
    }

    /// Commits the positions of owned partitions that moved since the last commit.
    pub fn commit(
        &mut self,
        cluster: &mut Cluster,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<(), TopicError> {
        let positions = self.of_first_topic(positions);
        self.commit_topics(cluster, &positions)
    }

    /// `commit` for a member of several topics.
    pub fn commit_topics(
        &mut self,
        cluster: &mut Cluster,
        positions: &TopicPositions,
    ) -> Result<(), TopicError> {
        let mut changed: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for (topic, parts) in positions {
            let Some(owned) = self.owned.get(topic) else {
                continue;
            };
            for (p, o) in parts {
                let key = (topic.clone(), *p);
                if owned.contains(p) && self.committed.get(&key) != Some(o) {
                    changed.insert(key, *o);
                }
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        let mut topics: BTreeMap<&str, OffsetCommitRequestTopic> = BTreeMap::new();
        for ((topic, p), o) in &changed {
            let t = topics.entry(topic.as_str()).or_insert_with(|| {
                let mut t = OffsetCommitRequestTopic::default();
                t.name = TopicName(StrBytes::from_string(topic.clone()));
                t
            });
            let mut cp = OffsetCommitRequestPartition::default();
            cp.partition_index = *p;
            cp.committed_offset = *o;
            cp.committed_leader_epoch = -1;
            cp.committed_metadata = Some(StrBytes::from_static_str(""));
            t.partitions.push(cp);
        }
        let mut req = OffsetCommitRequest::default();
        req.group_id = group_id(&self.group);
        req.generation_id_or_member_epoch = self.generation;
        req.member_id = StrBytes::from_string(self.member_id.clone());
        req.topics = topics.into_values().collect();
        let resp: OffsetCommitResponse = cluster.broker(self.coordinator)?.call(
            ApiKey::OffsetCommit,
            OFFSET_COMMIT_VERSION,
            &req,
        )?;
        for t in &resp.topics {
            for p in &t.partitions {
                let key = (t.name.0.to_string(), p.partition_index);
                match p.error_code {
                    0 => {
                        if let Some(o) = changed.get(&key) {
                            self.committed.insert(key, *o);
                        }
                    }
                    // The group moved on; the next heartbeat rejoins, the positions
                    // are committed again from the new generation.
                    REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID => {}
                    code => return Err(broker_error(&self.group, code, None)),
                }
            }
        }
        Ok(())
    }

    /// Last commit, then LeaveGroup so the others get the partitions at once.
    pub fn leave(
        self,
        cluster: &mut Cluster,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<(), TopicError> {
        let positions = self.of_first_topic(positions);
        self.leave_topics(cluster, &positions)
    }

    /// `leave` for a member of several topics.
    pub fn leave_topics(
        mut self,
        cluster: &mut Cluster,
        positions: &TopicPositions,
    ) -> Result<(), TopicError> {
        self.commit_topics(cluster, positions)?;
        let mut who = MemberIdentity::default();
        who.member_id = StrBytes::from_string(self.member_id.clone());
        let mut req = LeaveGroupRequest::default();
        req.group_id = group_id(&self.group);
        req.members = vec![who];
        let resp: LeaveGroupResponse = cluster.broker(self.coordinator)?.call(
            ApiKey::LeaveGroup,
            LEAVE_GROUP_VERSION,
            &req,
        )?;
        match resp.error_code {
            0 | UNKNOWN_MEMBER_ID => Ok(()),
            code => Err(broker_error(&self.group, code, None)),
        }
    }
}

/// Kafka's range assignor: per topic, the members subscribed to it in member-id order
/// each get a contiguous range; the first `partitions % members` get one more.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, count) in partitions {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() {
            continue;
        }
        let n = members.len() as i32;
        let (per, extra) = (count / n, count % n);
        for (i, m) in members.into_iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            let owned: Vec<i32> = (start..start + len).collect();
            out.get_mut(m)
                .expect("every member has an entry")
                .insert(topic.clone(), owned);
        }
    }
    out
}

/// `version: i16` followed by the struct encoded at that version.
fn versioned<T: Encodable>(value: &T, version: i16) -> Result<Bytes, TopicError> {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&version.to_be_bytes());
    value
        .encode(&mut buf, version)
        .map_err(|e| TopicError::Usage(format!("encoding consumer protocol data: {e}")))?;
    Ok(buf.freeze())
}

/// Reads a versioned consumer protocol struct; newer versions only add fields at the
/// end, so they are read as the newest version we know and the rest is ignored.
fn read_versioned<T: Decodable>(data: &Bytes) -> Result<T, String> {
    let mut buf = data.clone();
    if buf.len() < 2 {
        return Err(format!("{} bytes", buf.len()));
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    if version < 0 {
        return Err(format!("version {version}"));
    }
    T::decode(&mut buf, version.min(CONSUMER_PROTOCOL_VERSION_MAX)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(members: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        members
            .iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    #[test]
    fn range_gives_the_first_members_the_extra_partitions() {
        let s = subs(&[("b", &["t"]), ("a", &["t", "u"]), ("c", &["t"])]);
        let p: BTreeMap<String, i32> = [("t".to_string(), 7), ("u".to_string(), 2)].into();
        let a = range_assign(&s, &p);
        assert_eq!(a["a"]["t"], vec![0, 1, 2]);
        assert_eq!(a["b"]["t"], vec![3, 4]);
        assert_eq!(a["c"]["t"], vec![5, 6]);
        assert_eq!(a["a"]["u"], vec![0, 1]);
        assert!(!a["b"].contains_key("u"));
    }

    #[test]
    fn subscription_and_assignment_round_trip() {
        let mut sub = ConsumerProtocolSubscription::default();
        sub.topics = vec![StrBytes::from_static_str("t")];
        let bytes = versioned(&sub, SUBSCRIPTION_VERSION).unwrap();
        // version 0: i16 version, array of one string, null user data
        assert_eq!(
            &bytes[..],
            &[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff]
        );
        let back: ConsumerProtocolSubscription = read_versioned(&bytes).unwrap();
        assert_eq!(back.topics, sub.topics);

        let mut a = ConsumerProtocolAssignment::default();
        let mut tp = AssignedPartitions::default();
        tp.topic = TopicName(StrBytes::from_static_str("t"));
        tp.partitions = vec![0, 2];
        a.assigned_partitions = vec![tp];
        // A member writing a newer version (3) is read at the newest we know.
        let bytes = versioned(&a, 3).unwrap();
        let back: ConsumerProtocolAssignment = read_versioned(&bytes).unwrap();
        assert_eq!(back.assigned_partitions[0].partitions, vec![0, 2]);
    }
}
