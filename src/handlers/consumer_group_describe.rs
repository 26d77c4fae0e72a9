//! ConsumerGroupDescribe (v0-1, KIP-848): epochs, assignor and members (current and
//! target assignments) of consumer-protocol groups. A classic or unknown group answers
//! GROUP_ID_NOT_FOUND, as in Kafka. A group named twice in one request is described once;
//! repeats answer INVALID_REQUEST (`super::first_time`).

use std::collections::HashSet;
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
};

use super::{decode, respond, str_bytes, topic_name, Outcome, RequestError};
use crate::broker::metadata::Snapshot;
use crate::broker::shard::Shard;
use crate::groups::assignor;
use crate::groups::{service, GroupOp, GroupReply};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

/// Kafka's "authorized operations not requested" marker.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// ConsumerGroupDescribe v1's MemberType of a consumer-protocol member.
const MEMBER_TYPE_CONSUMER: i8 = 1;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: ConsumerGroupDescribeRequest = decode(ApiKey::ConsumerGroupDescribe, version, body)?;
    let snap = shard.broker.metadata.snapshot();
    let mut resp = ConsumerGroupDescribeResponse::default();
    let mut seen = HashSet::with_capacity(req.group_ids.len());
    for id in &req.group_ids {
        let mut d = DescribedGroup::default();
        d.group_id = id.clone();
        d.authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
        if !super::first_time(&mut seen, id.as_str()) {
            d.error_code = ec::INVALID_REQUEST;
            d.error_message = Some(str_bytes(&super::repeated_message("group", id)));
            resp.groups.push(d);
            continue;
        }
        if !access.group(Operation::Describe, id) {
            d.error_code = ec::GROUP_AUTHORIZATION_FAILED;
            resp.groups.push(d);
            continue;
        }
        let op = GroupOp::ConsumerDescribe {
            group: id.to_string(),
        };
        match service::call(&shard, id, op).await {
            GroupReply::ConsumerDescribe(Ok(g)) => {
                d.group_state = str_bytes(g.state);
                d.group_epoch = g.group_epoch;
                d.assignment_epoch = g.assignment_epoch;
                d.assignor_name = str_bytes(g.assignor);
                d.members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut out = Member::default();
                        out.member_id = str_bytes(&m.id);
                        out.instance_id = m.instance_id.as_deref().map(str_bytes);
                        out.rack_id = m.rack_id.as_deref().map(str_bytes);
                        out.member_epoch = m.epoch;
                        out.client_id = str_bytes(&m.client_id);
                        out.client_host = str_bytes(&m.client_host);
                        out.subscribed_topic_names =
                            m.topic_names.iter().map(|t| topic_name(t)).collect();
                        out.subscribed_topic_regex = m.topic_regex.as_deref().map(str_bytes);
                        out.assignment = assignment(&m.assigned, &snap);
                        out.target_assignment = assignment(&m.target, &snap);
                        if version >= 1 {
                            out.member_type = MEMBER_TYPE_CONSUMER;
                        }
                        out
                    })
                    .collect();
            }
            GroupReply::ConsumerDescribe(Err((code, message))) => {
                d.error_code = code;
                d.error_message = Some(str_bytes(&message));
            }
            GroupReply::Code(code) => d.error_code = code,
            _ => d.error_code = ec::UNKNOWN_SERVER_ERROR,
        }
        resp.groups.push(d);
    }
    respond(ApiKey::ConsumerGroupDescribe, version, &resp)
}

/// Topic ids with their names (a topic deleted since keeps its id and an empty name).
fn assignment(a: &assignor::Assignment, snap: &Snapshot) -> Assignment {
    let mut out = Assignment::default();
    out.topic_partitions = a
        .iter()
        .map(|(id, parts)| {
            let mut tp = TopicPartitions::default();
            tp.topic_id = uuid::Uuid::from_bytes(*id);
            tp.topic_name = topic_name(snap.topic_by_id(id).map_or("", |t| t.name.as_str()));
            tp.partitions = parts.iter().copied().collect();
            tp
        })
        .collect();
    out
}
