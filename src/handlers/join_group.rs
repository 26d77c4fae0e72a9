//! JoinGroup (v0-9): a member joins (or rejoins) a group; the answer waits until the
//! rebalance completes on the group's home shard.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};

use super::{decode, respond, str_bytes, Client, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::groups::{service, GroupOp, GroupReply, JoinArgs, JoinReply};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    client: Client,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: JoinGroupRequest = decode(ApiKey::JoinGroup, version, body)?;
    let group = req.group_id.to_string();
    let args = JoinArgs {
        group: group.clone(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client.id,
        client_host: client.host,
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            // A copy: the decoded field is a view of the whole request body, which the
            // member would otherwise keep alive for as long as it stays in the group.
            .map(|p| (p.name.to_string(), Bytes::copy_from_slice(&p.metadata)))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let reply = if !access.group(Operation::Read, &group) {
        JoinReply::error(ec::GROUP_AUTHORIZATION_FAILED, &req.member_id)
    } else {
        match service::call(&shard, &group, GroupOp::Join(args)).await {
            GroupReply::Join(r) => r,
            GroupReply::Code(code) => JoinReply::error(code, &req.member_id),
            _ => JoinReply::error(ec::UNKNOWN_SERVER_ERROR, &req.member_id),
        }
    };
    let mut resp = JoinGroupResponse::default();
    resp.error_code = reply.error_code;
    resp.generation_id = reply.generation;
    resp.protocol_type = reply.protocol_type.as_deref().map(str_bytes);
    // Before v7 the protocol name is not nullable.
    resp.protocol_name = Some(str_bytes(reply.protocol.as_deref().unwrap_or("")));
    if version >= 7 {
        resp.protocol_name = reply.protocol.as_deref().map(str_bytes);
    }
    resp.leader = str_bytes(&reply.leader);
    resp.member_id = str_bytes(&reply.member_id);
    resp.members = reply
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            let mut m = JoinGroupResponseMember::default();
            m.member_id = str_bytes(&id);
            m.group_instance_id = instance.as_deref().map(str_bytes);
            m.metadata = metadata;
            m
        })
        .collect();
    respond(ApiKey::JoinGroup, version, &resp)
}
