//! OffsetFetch (v1-9): committed offsets of one group (v1-7) or several (v8+), from
//! each group's home shard. A partition with no commit answers offset -1. From v9 a
//! consumer-protocol member's id and epoch are checked (UNKNOWN_MEMBER_ID,
//! STALE_MEMBER_EPOCH) as Kafka does. A group named twice in one v8+ request is fetched
//! once; repeats answer INVALID_REQUEST (`super::first_time`).

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse};

use super::{decode, respond, str_bytes, topic_name, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::groups::{service, Committed, GroupOp, GroupReply};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

type Partitions = Vec<(i32, Option<Committed>)>;
type Fetched = BTreeMap<String, Partitions>;

/// A group's committed offsets, or its error code (a consumer-protocol member that is
/// unknown or not at its current epoch, v9+).
async fn fetch_group(
    shard: &Rc<Shard>,
    group: &str,
    partitions: Option<Vec<(String, i32)>>,
    member: Option<(Option<String>, i32)>,
) -> Result<Fetched, i16> {
    let op = GroupOp::Fetch {
        group: group.to_string(),
        partitions,
        member,
    };
    let mut out = Fetched::new();
    match service::call(shard, group, op).await {
        GroupReply::Fetch(entries) => {
            for ((topic, partition), c) in entries {
                out.entry(topic).or_default().push((partition, c));
            }
        }
        GroupReply::Code(code) => return Err(code),
        _ => {}
    }
    Ok(out)
}

/// (offset, leader epoch, metadata) as the response shows them.
fn shown(c: Option<Committed>) -> (i64, i32, String) {
    match c {
        Some(c) => (c.offset, c.leader_epoch, c.metadata),
        None => (-1, -1, String::new()),
    }
}

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: OffsetFetchRequest = decode(ApiKey::OffsetFetch, version, body)?;
    let mut resp = OffsetFetchResponse::default();
    if version >= 8 {
        let mut seen = HashSet::with_capacity(req.groups.len());
        for g in &req.groups {
            if !super::first_time(&mut seen, g.group_id.as_str()) {
                let mut out = OffsetFetchResponseGroup::default();
                out.group_id = g.group_id.clone();
                out.error_code = ec::INVALID_REQUEST;
                resp.groups.push(out);
                continue;
            }
            let wanted = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
                    .collect()
            });
            let member = (version >= 9)
                .then(|| (g.member_id.as_ref().map(|m| m.to_string()), g.member_epoch));
            let mut out = OffsetFetchResponseGroup::default();
            out.group_id = GroupId(str_bytes(&g.group_id));
            if !access.group(Operation::Describe, &g.group_id) {
                out.error_code = ec::GROUP_AUTHORIZATION_FAILED;
                resp.groups.push(out);
                continue;
            }
            let all_topics = wanted.is_none();
            let fetched = match fetch_group(&shard, &g.group_id, wanted, member).await {
                Ok(f) => f,
                Err(code) => {
                    out.error_code = code;
                    resp.groups.push(out);
                    continue;
                }
            };
            out.topics = authorized(fetched, &access, all_topics)
                .into_iter()
                .map(|(name, parts, denied)| {
                    let mut t = OffsetFetchResponseTopics::default();
                    t.name = topic_name(&name);
                    t.partitions = parts
                        .into_iter()
                        .map(|(index, c)| {
                            let (offset, epoch, metadata) = shown(c);
                            let mut p = OffsetFetchResponsePartitions::default();
                            p.partition_index = index;
                            p.committed_offset = offset;
                            p.committed_leader_epoch = epoch;
                            p.metadata = Some(str_bytes(&metadata));
                            p.error_code = denied;
                            p
                        })
                        .collect();
                    t
                })
                .collect();
            resp.groups.push(out);
        }
        return respond(ApiKey::OffsetFetch, version, &resp);
    }
    if !access.group(Operation::Describe, &req.group_id) {
        resp.error_code = ec::GROUP_AUTHORIZATION_FAILED;
        return respond(ApiKey::OffsetFetch, version, &resp);
    }
    let wanted: Option<Vec<(String, i32)>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
            .collect()
    });
    let all_topics = wanted.is_none();
    let fetched = fetch_group(&shard, &req.group_id, wanted, None)
        .await
        .unwrap_or_default();
    resp.topics = authorized(fetched, &access, all_topics)
        .into_iter()
        .map(|(name, parts, denied)| {
            let mut t = OffsetFetchResponseTopic::default();
            t.name = topic_name(&name);
            t.partitions = parts
                .into_iter()
                .map(|(index, c)| {
                    let (offset, epoch, metadata) = shown(c);
                    let mut p = OffsetFetchResponsePartition::default();
                    p.partition_index = index;
                    p.committed_offset = offset;
                    p.committed_leader_epoch = epoch;
                    p.metadata = Some(str_bytes(&metadata));
                    p.error_code = denied;
                    p
                })
                .collect();
            t
        })
        .collect();
    respond(ApiKey::OffsetFetch, version, &resp)
}

/// Kafka's topic check on committed offsets (DESCRIBE): a topic the principal may not
/// describe is left out of "all topics", and a named one answers
/// TOPIC_AUTHORIZATION_FAILED on its partitions (with no offset shown).
fn authorized(
    fetched: Fetched,
    access: &Access,
    all_topics: bool,
) -> Vec<(String, Partitions, i16)> {
    fetched
        .into_iter()
        .filter_map(|(name, parts)| {
            if access.topic(Operation::Describe, &name) {
                return Some((name, parts, ec::NONE));
            }
            let parts = parts.into_iter().map(|(i, _)| (i, None)).collect();
            (!all_topics).then_some((name, parts, ec::TOPIC_AUTHORIZATION_FAILED))
        })
        .collect()
}
