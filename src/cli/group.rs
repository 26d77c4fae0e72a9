//! `corelog group list | describe G | delete G...`, like kafka-consumer-groups.sh: groups with their
//! state, and for one group its members and, per partition, committed offset, log end
//! and lag. Group requests go to the group's coordinator, found with FindCoordinator.

use std::collections::BTreeMap;

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
    ConsumerProtocolAssignment, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetFetchRequest, OffsetFetchResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{Client, Cluster};
use super::topic::{broker_error, TopicError};

const LIST_GROUPS_VERSION: i16 = 4;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
/// ConsumerGroupDescribe versions this tool speaks.
const CONSUMER_GROUP_DESCRIBE_VERSIONS: (i16, i16) = (0, 1);
const FIND_COORDINATOR_VERSION: i16 = 3;
const OFFSET_FETCH_VERSION: i16 = 7;
const LIST_OFFSETS_VERSION: i16 = 5;
/// ListOffsets timestamp meaning "the log end".
const LATEST_TIMESTAMP: i64 = -1;

#[derive(Debug, Clone, PartialEq)]
pub struct GroupSummary {
    pub group: String,
    pub state: String,
    pub protocol_type: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupDetail {
    pub group: String,
    pub state: String,
    /// (member id, client id, host)
    pub members: Vec<(String, String, String)>,
    /// (topic, partition, committed offset, log end offset, lag)
    pub offsets: Vec<(String, i32, i64, i64, i64)>,
}

pub fn list(client: &mut Client) -> Result<Vec<GroupSummary>, TopicError> {
    let resp: ListGroupsResponse = client.call(
        ApiKey::ListGroups,
        LIST_GROUPS_VERSION,
        &ListGroupsRequest::default(),
    )?;
    if resp.error_code != 0 {
        return Err(broker_error("ListGroups", resp.error_code, None));
    }
    let mut groups: Vec<GroupSummary> = resp
        .groups
        .iter()
        .map(|g| GroupSummary {
            group: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
        })
        .collect();
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(groups)
}

/// ListGroups on every broker Metadata names, merged by group id: each broker lists
/// only the groups it coordinates (in a cluster, those of the `__consumer_offsets`
/// partitions it leads), so one broker's answer is not the cluster's, as
/// `kafka-consumer-groups --list` also asks every broker.
///
/// A listed broker that refuses the connection is skipped with a warning (a corelog
/// cluster keeps a broker that just died in Metadata for a few seconds, and Kafka lists
/// one until its session runs out); the answer is an error only if none answers.
pub fn list_all(cluster: &mut Cluster) -> Result<Vec<GroupSummary>, TopicError> {
    cluster.metadata(Some(&[]), false)?;
    let mut groups = BTreeMap::new();
    for node in cluster.reachable("its groups are not listed")? {
        for g in list(cluster.broker(node)?)? {
            groups.entry(g.group.clone()).or_insert(g);
        }
    }
    Ok(groups.into_values().collect())
}

/// Connects to the group's coordinator (which is `bootstrap` itself on corelog).
fn coordinator(client: &mut Client, group: &str) -> Result<Option<Client>, TopicError> {
    let mut req = FindCoordinatorRequest::default();
    req.key = StrBytes::from_string(group.to_string());
    let resp: FindCoordinatorResponse =
        client.call(ApiKey::FindCoordinator, FIND_COORDINATOR_VERSION, &req)?;
    if resp.error_code != 0 {
        return Err(broker_error(
            group,
            resp.error_code,
            resp.error_message.as_ref(),
        ));
    }
    if resp.node_id == BrokerId(-1) {
        return Ok(None);
    }
    Ok(Some(Client::connect(&format!(
        "{}:{}",
        resp.host.as_str(),
        resp.port
    ))?))
}

/// (member id, client id, host) of a group member.
type MemberRow = (String, String, String);

/// ConsumerGroupDescribe of one group; `None` when the broker does not serve the API or
/// answers an error for the group (not a KIP-848 consumer group).
fn consumer_group_describe(
    c: &mut Client,
    group: &str,
) -> Result<Option<DescribedGroup>, TopicError> {
    let Ok(version) = c.version(
        ApiKey::ConsumerGroupDescribe,
        CONSUMER_GROUP_DESCRIBE_VERSIONS,
    ) else {
        return Ok(None);
    };
    let mut req = ConsumerGroupDescribeRequest::default();
    req.group_ids = vec![GroupId(StrBytes::from_string(group.to_string()))];
    let resp: ConsumerGroupDescribeResponse =
        c.call(ApiKey::ConsumerGroupDescribe, version, &req)?;
    Ok(resp.groups.into_iter().find(|g| g.error_code == 0))
}

/// A KIP-848 consumer group's state and members, from ConsumerGroupDescribe; `None`
/// when the broker does not serve that API or the group is not a consumer group (then
/// DescribeGroups, the classic view, describes it).
fn describe_consumer_group(
    c: &mut Client,
    group: &str,
) -> Result<Option<(String, Vec<MemberRow>)>, TopicError> {
    let Some(g) = consumer_group_describe(c, group)? else {
        return Ok(None);
    };
    let members = g
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.client_id.to_string(),
                m.client_host.to_string(),
            )
        })
        .collect();
    Ok(Some((g.group_state.to_string(), members)))
}

/// The group's state and members as (member id, client id, host): from
/// ConsumerGroupDescribe for a KIP-848 consumer group, else from DescribeGroups.
fn state_and_members(c: &mut Client, group: &str) -> Result<(String, Vec<MemberRow>), TopicError> {
    if let Some(found) = describe_consumer_group(c, group)? {
        return Ok(found);
    }
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![GroupId(StrBytes::from_string(group.to_string()))];
    let resp: DescribeGroupsResponse =
        c.call(ApiKey::DescribeGroups, DESCRIBE_GROUPS_VERSION, &req)?;
    let g = resp
        .groups
        .first()
        .ok_or_else(|| broker_error(group, -1, None))?;
    if g.error_code != 0 {
        return Err(broker_error(group, g.error_code, g.error_message.as_ref()));
    }
    let members = g
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.client_id.to_string(),
                m.client_host.to_string(),
            )
        })
        .collect();
    Ok((g.group_state.to_string(), members))
}

pub fn describe(client: &mut Client, group: &str) -> Result<GroupDetail, TopicError> {
    let mut coord = coordinator(client, group)?;
    let c = coord.as_mut().unwrap_or(client);
    let (state, members) = state_and_members(c, group)?;
    let mut fetch = OffsetFetchRequest::default();
    fetch.group_id = GroupId(StrBytes::from_string(group.to_string()));
    fetch.topics = None;
    let committed: OffsetFetchResponse =
        c.call(ApiKey::OffsetFetch, OFFSET_FETCH_VERSION, &fetch)?;
    if committed.error_code != 0 {
        return Err(broker_error(group, committed.error_code, None));
    }
    let mut by_topic: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
    for t in &committed.topics {
        for p in t
            .partitions
            .iter()
            .filter(|p| p.error_code == 0 && p.committed_offset >= 0)
        {
            by_topic
                .entry(t.name.0.to_string())
                .or_default()
                .push((p.partition_index, p.committed_offset));
        }
    }
    let ends = log_ends(client, &by_topic)?;
    let mut offsets = Vec::new();
    for (topic, parts) in by_topic {
        for (p, committed) in parts {
            let end = ends.get(&(topic.clone(), p)).copied().unwrap_or(-1);
            let lag = if end >= 0 {
                (end - committed).max(0)
            } else {
                -1
            };
            offsets.push((topic.clone(), p, committed, end, lag));
        }
    }
    offsets.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    Ok(GroupDetail {
        group: group.to_string(),
        state,
        members,
        offsets,
    })
}

/// A member's assigned partitions as (topic, partitions).
pub type MemberAssignment = Vec<(String, Vec<i32>)>;

/// How a group divides its partitions: the assignor in use and each member's share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupAssignments {
    /// The classic protocol's chosen assignor (`range`, `roundrobin`, ...), or a KIP-848
    /// group's server-side assignor; empty before the first rebalance completes.
    pub protocol: String,
    /// member id → assigned partitions
    pub members: BTreeMap<String, MemberAssignment>,
}

/// The group's assignor and members' assignments: from ConsumerGroupDescribe for a
/// KIP-848 consumer group, else from the assignment the classic group's leader handed
/// out (DescribeGroups; a member of another protocol type shows none).
pub fn assignments(client: &mut Client, group: &str) -> Result<GroupAssignments, TopicError> {
    let mut coord = coordinator(client, group)?;
    let c = coord.as_mut().unwrap_or(client);
    if let Some(found) = consumer_group_assignments(c, group)? {
        return Ok(found);
    }
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![GroupId(StrBytes::from_string(group.to_string()))];
    let resp: DescribeGroupsResponse =
        c.call(ApiKey::DescribeGroups, DESCRIBE_GROUPS_VERSION, &req)?;
    let mut out = GroupAssignments::default();
    for g in resp.groups.iter().filter(|g| g.error_code == 0) {
        out.protocol = g.protocol_data.to_string();
        for m in &g.members {
            let mut buf = m.member_assignment.clone();
            if buf.len() < 2 {
                continue;
            }
            let version = i16::from_be_bytes([buf[0], buf[1]]);
            bytes::Buf::advance(&mut buf, 2);
            let Ok(a) = <ConsumerProtocolAssignment as kafka_protocol::protocol::Decodable>::decode(
                &mut buf,
                version.clamp(0, 3),
            ) else {
                continue;
            };
            let topics = a
                .assigned_partitions
                .iter()
                .map(|t| (t.topic.0.to_string(), t.partitions.clone()))
                .collect();
            out.members.insert(m.member_id.to_string(), topics);
        }
    }
    Ok(out)
}

/// A KIP-848 group's assignor and assignments; None when the broker does not know the
/// API or the group is not a KIP-848 consumer group.
fn consumer_group_assignments(
    c: &mut Client,
    group: &str,
) -> Result<Option<GroupAssignments>, TopicError> {
    let Some(g) = consumer_group_describe(c, group)? else {
        return Ok(None);
    };
    let members = g
        .members
        .iter()
        .map(|m| {
            let topics = m
                .assignment
                .topic_partitions
                .iter()
                .map(|t| (t.topic_name.0.to_string(), t.partitions.clone()))
                .collect();
            (m.member_id.to_string(), topics)
        })
        .collect();
    Ok(Some(GroupAssignments {
        protocol: g.assignor_name.to_string(),
        members,
    }))
}

/// The log end offset of every partition that has a committed offset.
fn log_ends(
    client: &mut Client,
    by_topic: &BTreeMap<String, Vec<(i32, i64)>>,
) -> Result<BTreeMap<(String, i32), i64>, TopicError> {
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = by_topic
        .iter()
        .map(|(name, parts)| {
            let mut t = ListOffsetsTopic::default();
            t.name = kafka_protocol::messages::TopicName(StrBytes::from_string(name.clone()));
            t.partitions = parts
                .iter()
                .map(|(p, _)| {
                    let mut lp = ListOffsetsPartition::default();
                    lp.partition_index = *p;
                    lp.timestamp = LATEST_TIMESTAMP;
                    lp
                })
                .collect();
            t
        })
        .collect();
    if req.topics.is_empty() {
        return Ok(BTreeMap::new());
    }
    let resp: ListOffsetsResponse = client.call(ApiKey::ListOffsets, LIST_OFFSETS_VERSION, &req)?;
    let mut ends = BTreeMap::new();
    for t in &resp.topics {
        for p in t.partitions.iter().filter(|p| p.error_code == 0) {
            ends.insert((t.name.0.to_string(), p.partition_index), p.offset);
        }
    }
    Ok(ends)
}

pub fn render_list_text(groups: &[GroupSummary]) -> String {
    groups
        .iter()
        .map(|g| {
            format!(
                "{}\tstate={}\tprotocol_type={}\n",
                g.group, g.state, g.protocol_type
            )
        })
        .collect()
}

pub fn render_list_json(groups: &[GroupSummary]) -> String {
    let items: Vec<String> = groups
        .iter()
        .map(|g| {
            format!(
                "{{\"group\":{:?},\"state\":{:?},\"protocol_type\":{:?}}}",
                g.group, g.state, g.protocol_type
            )
        })
        .collect();
    format!("{{\"groups\":[{}]}}", items.join(","))
}

pub fn render_describe_text(d: &GroupDetail) -> String {
    let mut out = format!(
        "{}\tstate={}\tmembers={}\n",
        d.group,
        d.state,
        d.members.len()
    );
    for (member, client, host) in &d.members {
        out += &format!("\tmember={member}\tclient_id={client}\thost={host}\n");
    }
    for (topic, p, committed, end, lag) in &d.offsets {
        out += &format!(
            "\ttopic={topic}\tpartition={p}\tcommitted={committed}\tlog_end={end}\tlag={lag}\n"
        );
    }
    out
}

pub fn render_describe_json(d: &GroupDetail) -> String {
    let members: Vec<String> = d
        .members
        .iter()
        .map(|(m, c, h)| format!("{{\"member_id\":{m:?},\"client_id\":{c:?},\"host\":{h:?}}}"))
        .collect();
    let offsets: Vec<String> = d
        .offsets
        .iter()
        .map(|(t, p, c, e, l)| {
            format!("{{\"topic\":{t:?},\"partition\":{p},\"committed\":{c},\"log_end\":{e},\"lag\":{l}}}")
        })
        .collect();
    format!(
        "{{\"group\":{:?},\"state\":{:?},\"members\":[{}],\"offsets\":[{}]}}",
        d.group,
        d.state,
        members.join(","),
        offsets.join(",")
    )
}

const DELETE_GROUPS_VERSION: i16 = 1;

/// Deletes `groups` (each at its coordinator) with their committed offsets. Tries every
/// group; the failures are returned, in order, after the successes are done.
pub fn delete(
    cluster: &mut super::client::Cluster,
    groups: &[String],
) -> Result<Vec<(String, Option<TopicError>)>, TopicError> {
    let mut results = Vec::new();
    for group in groups {
        let coordinator = super::group_member::find_coordinator(cluster, group)?;
        let mut req = DeleteGroupsRequest::default();
        req.groups_names = vec![GroupId(StrBytes::from_string(group.clone()))];
        let resp: DeleteGroupsResponse =
            cluster
                .broker(coordinator)?
                .call(ApiKey::DeleteGroups, DELETE_GROUPS_VERSION, &req)?;
        let code = resp.results.first().map_or(-1, |r| r.error_code);
        let error = (code != 0).then(|| match code {
            68 => TopicError::Broker {
                topic: group.clone(),
                code,
                code_name: "NonEmptyGroup".to_string(),
                detail: format!(
                    ": the group still has active members; stop its consumers (`corelog group describe {group}` lists them), then delete it"
                ),
            },
            _ => broker_error(group, code, None),
        });
        results.push((group.clone(), error));
    }
    Ok(results)
}

/// `{"groups":[{"group":g,"deleted":true|false,"error":null|"..."}]}`
pub fn render_delete_json(results: &[(String, Option<TopicError>)]) -> String {
    let items: Vec<serde_json::Value> = results
        .iter()
        .map(|(g, e)| {
            serde_json::json!({"group": g, "deleted": e.is_none(),
                "error": e.as_ref().map(ToString::to_string)})
        })
        .collect();
    serde_json::json!({ "groups": items }).to_string()
}
