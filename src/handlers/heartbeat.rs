//! Heartbeat (v0-4): keeps a member's session alive and tells it about rebalances.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};

use super::{decode, respond, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::groups::{service, GroupOp, GroupReply};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: HeartbeatRequest = decode(ApiKey::Heartbeat, version, body)?;
    let group = req.group_id.to_string();
    let op = GroupOp::Heartbeat {
        group: group.clone(),
        generation: req.generation_id,
        member: req.member_id.to_string(),
        instance: req.group_instance_id.as_ref().map(|s| s.to_string()),
    };
    let mut resp = HeartbeatResponse::default();
    resp.error_code = if !access.group(Operation::Read, &group) {
        ec::GROUP_AUTHORIZATION_FAILED
    } else {
        match service::call(&shard, &group, op).await {
            GroupReply::Code(code) => code,
            _ => ec::UNKNOWN_SERVER_ERROR,
        }
    };
    respond(ApiKey::Heartbeat, version, &resp)
}
