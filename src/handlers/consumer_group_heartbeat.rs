//! ConsumerGroupHeartbeat (v0-1, KIP-848): join, heartbeat, reconcile and leave in one
//! API. Topic ids on the wire; the state machine is `groups::consumer_group`, run on
//! the group's home shard.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};

use super::{decode, respond, str_bytes, Client, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::groups::assignor;
use crate::groups::consumer_group::{HeartbeatArgs, HeartbeatReply};
use crate::groups::{service, GroupOp, GroupReply};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    client: Client,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: ConsumerGroupHeartbeatRequest = decode(ApiKey::ConsumerGroupHeartbeat, version, body)?;
    let group = req.group_id.to_string();
    let args = HeartbeatArgs {
        group: group.clone(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.to_string()).collect()),
        topic_regex: req.subscribed_topic_regex.as_ref().map(|s| s.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|s| s.to_string()),
        owned: req.topic_partitions.as_ref().map(|tps| {
            let mut owned = assignor::Assignment::new();
            for tp in tps {
                owned
                    .entry(*tp.topic_id.as_bytes())
                    .or_default()
                    .extend(tp.partitions.iter().copied());
            }
            owned
        }),
        client_id: client.id,
        client_host: client.host,
        version,
    };
    if !access.group(Operation::Read, &group) {
        let why = "Authorization failed: READ on the group is needed.";
        let reply = HeartbeatReply::error(ec::GROUP_AUTHORIZATION_FAILED, why);
        return respond(ApiKey::ConsumerGroupHeartbeat, version, &response(reply));
    }
    // As Kafka: a subscription may name only topics the principal may describe.
    let hidden = args
        .topic_names
        .iter()
        .flatten()
        .any(|t| !access.topic(Operation::Describe, t));
    if hidden {
        let why = "Authorization failed: DESCRIBE on every subscribed topic is needed.";
        let reply = HeartbeatReply::error(ec::TOPIC_AUTHORIZATION_FAILED, why);
        return respond(ApiKey::ConsumerGroupHeartbeat, version, &response(reply));
    }
    let reply =
        match service::call(&shard, &group, GroupOp::ConsumerHeartbeat(Box::new(args))).await {
            GroupReply::ConsumerHeartbeat(r) => r,
            GroupReply::Code(code) => HeartbeatReply::error(code, "the group coordinator failed"),
            _ => HeartbeatReply::error(ec::UNKNOWN_SERVER_ERROR, "unexpected answer"),
        };
    respond(ApiKey::ConsumerGroupHeartbeat, version, &response(reply))
}

fn response(r: HeartbeatReply) -> ConsumerGroupHeartbeatResponse {
    let mut resp = ConsumerGroupHeartbeatResponse::default();
    resp.error_code = r.error_code;
    resp.error_message = r.error_message.as_deref().map(str_bytes);
    resp.member_id = r.member_id.as_deref().map(str_bytes);
    resp.member_epoch = r.member_epoch;
    resp.heartbeat_interval_ms = r.heartbeat_interval_ms;
    resp.assignment = r.assignment.map(|a| {
        let mut out = Assignment::default();
        out.topic_partitions = a
            .into_iter()
            .map(|(topic, parts)| {
                let mut tp = TopicPartitions::default();
                tp.topic_id = uuid::Uuid::from_bytes(topic);
                tp.partitions = parts.into_iter().collect();
                tp
            })
            .collect();
        out
    });
    resp
}
