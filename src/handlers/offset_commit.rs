//! OffsetCommit (v2-9): offsets are checked here (topic, metadata size), then written
//! durably on the group's home shard before the answer.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};

use super::{decode, respond, Outcome, RequestError};
use crate::broker::metadata::Snapshot;
use crate::broker::shard::Shard;
use crate::groups::coordinator::OFFSET_METADATA_BYTES_MAX;
use crate::groups::{service, Committed, GroupOp, GroupReply};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

/// A topic's partitions, each with an error decided here or `None` when it goes to the
/// group's home shard.
type Verdicts = Vec<(String, Vec<(i32, Option<i16>)>)>;

type Offsets = Vec<((String, i32), Committed)>;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: OffsetCommitRequest = decode(ApiKey::OffsetCommit, version, body)?;
    let group = req.group_id.to_string();
    let snap = shard.broker.metadata.snapshot();
    if !access.group(Operation::Read, &group) {
        let (verdicts, _) = check(&req, &snap, 0, &|_| false);
        let denied = denied_all(verdicts, ec::GROUP_AUTHORIZATION_FAILED);
        return respond(ApiKey::OffsetCommit, version, &response(denied, ec::NONE));
    }
    let may_read = |topic: &str| access.topic(Operation::Read, topic);
    let (verdicts, offsets) = check(&req, &snap, crate::util::now_ms(), &may_read);
    let group_code = if offsets.is_empty() && !verdicts.is_empty() {
        ec::NONE
    } else {
        let op = GroupOp::Commit {
            group: group.clone(),
            generation: req.generation_id_or_member_epoch,
            member: req.member_id.to_string(),
            instance: req.group_instance_id.as_ref().map(|s| s.to_string()),
            offsets,
            version,
        };
        match service::call(&shard, &group, op).await {
            GroupReply::Code(code) => code,
            _ => ec::UNKNOWN_SERVER_ERROR,
        }
    };
    respond(
        ApiKey::OffsetCommit,
        version,
        &response(verdicts, group_code),
    )
}

/// Splits the request into partitions refused here and offsets for the group.
/// `may_read` says whether the principal may READ a topic (Kafka's check per topic).
fn check(
    req: &OffsetCommitRequest,
    snap: &Snapshot,
    now_ms: i64,
    may_read: &dyn Fn(&str) -> bool,
) -> (Verdicts, Offsets) {
    let group_empty = req.group_id.is_empty();
    let mut verdicts = Vec::with_capacity(req.topics.len());
    let mut offsets = Vec::new();
    for t in &req.topics {
        let name = t.name.to_string();
        let known = snap.topic(&name).map_or(0, |m| m.partitions.len() as i32);
        let readable = may_read(&name);
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let metadata = p.committed_metadata.as_ref().map_or("", |m| m.as_str());
            let error = if group_empty {
                Some(ec::INVALID_GROUP_ID)
            } else if !readable {
                Some(ec::TOPIC_AUTHORIZATION_FAILED)
            } else if !(0..known).contains(&p.partition_index) {
                Some(ec::UNKNOWN_TOPIC_OR_PARTITION)
            } else if metadata.len() > OFFSET_METADATA_BYTES_MAX {
                Some(ec::OFFSET_METADATA_TOO_LARGE)
            } else {
                let committed = Committed {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: metadata.to_string(),
                    commit_timestamp_ms: now_ms,
                };
                offsets.push(((name.clone(), p.partition_index), committed));
                None
            };
            parts.push((p.partition_index, error));
        }
        verdicts.push((name, parts));
    }
    (verdicts, offsets)
}

/// One entry per topic (a topic listed twice is merged), in request order.
/// Every partition of `verdicts` refused with `code`.
fn denied_all(verdicts: Verdicts, code: i16) -> Verdicts {
    verdicts
        .into_iter()
        .map(|(name, parts)| {
            (
                name,
                parts.into_iter().map(|(i, _)| (i, Some(code))).collect(),
            )
        })
        .collect()
}

fn response(verdicts: Verdicts, group_code: i16) -> OffsetCommitResponse {
    let mut resp = OffsetCommitResponse::default();
    let mut by_topic: HashMap<String, usize> = HashMap::new();
    for (name, parts) in verdicts {
        let partitions = parts.into_iter().map(|(index, error)| {
            let mut r = OffsetCommitResponsePartition::default();
            r.partition_index = index;
            r.error_code = error.unwrap_or(group_code);
            r
        });
        match by_topic.get(&name) {
            Some(&i) => resp.topics[i].partitions.extend(partitions),
            None => {
                let mut t = OffsetCommitResponseTopic::default();
                t.name = super::topic_name(&name);
                t.partitions = partitions.collect();
                by_topic.insert(name, resp.topics.len());
                resp.topics.push(t);
            }
        }
    }
    resp
}
