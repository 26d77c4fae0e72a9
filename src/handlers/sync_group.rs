//! SyncGroup (v0-5): the leader hands out assignments; every member waits for its own.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::groups::{service, GroupOp, GroupReply, SyncArgs, SyncReply};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: SyncGroupRequest = decode(ApiKey::SyncGroup, version, body)?;
    let group = req.group_id.to_string();
    let args = SyncArgs {
        group: group.clone(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
        protocol: req.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: req
            .assignments
            .iter()
            // A copy, as JoinGroup's metadata: not a view that keeps the request alive.
            .map(|a| {
                let assignment = Bytes::copy_from_slice(&a.assignment);
                (a.member_id.to_string(), assignment)
            })
            .collect(),
    };
    let reply = if !access.group(Operation::Read, &group) {
        SyncReply::error(ec::GROUP_AUTHORIZATION_FAILED)
    } else {
        match service::call(&shard, &group, GroupOp::Sync(args)).await {
            GroupReply::Sync(r) => r,
            GroupReply::Code(code) => SyncReply::error(code),
            _ => SyncReply::error(ec::UNKNOWN_SERVER_ERROR),
        }
    };
    let mut resp = SyncGroupResponse::default();
    resp.error_code = reply.error_code;
    resp.protocol_type = reply.protocol_type.as_deref().map(str_bytes);
    resp.protocol_name = reply.protocol.as_deref().map(str_bytes);
    resp.assignment = reply.assignment;
    respond(ApiKey::SyncGroup, version, &resp)
}
