//! OffsetDelete (v0): deletes a group's committed offsets of some partitions, with
//! tombstones in `__consumer_offsets` made durable before the answer. The group's home
//! shard decides per partition (see `Coordinator::delete_offsets`); partitions of
//! unknown topics are refused here.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse};

use super::{decode, respond, topic_name, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::groups::{service, GroupOp, GroupReply};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

/// A topic's partitions, each with an error decided here or `None` when it goes to the
/// group's home shard.
type Verdicts = Vec<(String, Vec<(i32, Option<i16>)>)>;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: OffsetDeleteRequest = decode(ApiKey::OffsetDelete, version, body)?;
    let group = req.group_id.to_string();
    let mut resp = OffsetDeleteResponse::default();
    if group.is_empty() {
        resp.error_code = ec::INVALID_GROUP_ID;
        return respond(ApiKey::OffsetDelete, version, &resp);
    }
    if !access.group(Operation::Delete, &group) {
        resp.error_code = ec::GROUP_AUTHORIZATION_FAILED;
        return respond(ApiKey::OffsetDelete, version, &resp);
    }
    let snap = shard.broker.metadata.snapshot();
    // Per requested partition: an error decided here, or None when it goes to the group.
    let mut verdicts: Verdicts = Vec::new();
    let mut asked = Vec::new();
    for t in &req.topics {
        let name = t.name.to_string();
        let known = snap.topic(&name).map_or(0, |m| m.partitions.len() as i32);
        let readable = access.topic(Operation::Read, &name);
        let parts = t
            .partitions
            .iter()
            .map(|p| {
                let index = p.partition_index;
                if !readable {
                    (index, Some(ec::TOPIC_AUTHORIZATION_FAILED))
                } else if (0..known).contains(&index) {
                    asked.push((name.clone(), index));
                    (index, None)
                } else {
                    (index, Some(ec::UNKNOWN_TOPIC_OR_PARTITION))
                }
            })
            .collect();
        verdicts.push((name, parts));
    }
    let op = GroupOp::DeleteOffsets {
        group: group.clone(),
        partitions: asked,
    };
    let mut codes = match service::call(&shard, &group, op).await {
        GroupReply::DeleteOffsets(Ok(codes)) => codes.into_iter(),
        GroupReply::DeleteOffsets(Err(code)) | GroupReply::Code(code) => {
            resp.error_code = code;
            return respond(ApiKey::OffsetDelete, version, &resp);
        }
        _ => {
            resp.error_code = ec::UNKNOWN_SERVER_ERROR;
            return respond(ApiKey::OffsetDelete, version, &resp);
        }
    };
    for (name, parts) in verdicts {
        let mut t = OffsetDeleteResponseTopic::default();
        t.name = topic_name(&name);
        t.partitions = parts
            .into_iter()
            .map(|(index, error)| {
                let mut p = OffsetDeleteResponsePartition::default();
                p.partition_index = index;
                p.error_code = error.unwrap_or_else(|| codes.next().unwrap_or(ec::NONE));
                p
            })
            .collect();
        resp.topics.push(t);
    }
    respond(ApiKey::OffsetDelete, version, &resp)
}
