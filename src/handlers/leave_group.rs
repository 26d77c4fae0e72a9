//! LeaveGroup (v0-5): one member (v0-2) or a batch of members (v3+) leave a group.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
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
    let req: LeaveGroupRequest = decode(ApiKey::LeaveGroup, version, body)?;
    let group = req.group_id.to_string();
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| {
                let instance = m.group_instance_id.as_ref().map(|s| s.to_string());
                (m.member_id.to_string(), instance)
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let op = GroupOp::Leave {
        group: group.clone(),
        members: members.clone(),
    };
    let codes = if !access.group(Operation::Read, &group) {
        vec![ec::GROUP_AUTHORIZATION_FAILED; members.len()]
    } else {
        match service::call(&shard, &group, op).await {
            GroupReply::Codes(codes) => codes,
            GroupReply::Code(code) => vec![code; members.len()],
            _ => vec![ec::UNKNOWN_SERVER_ERROR; members.len()],
        }
    };
    let mut resp = LeaveGroupResponse::default();
    if version >= 3 {
        resp.members = members
            .into_iter()
            .zip(codes)
            .map(|((id, instance), code)| {
                let mut m = MemberResponse::default();
                m.member_id = str_bytes(&id);
                m.group_instance_id = instance.as_deref().map(str_bytes);
                m.error_code = code;
                m
            })
            .collect();
    } else {
        resp.error_code = codes.first().copied().unwrap_or(ec::NONE);
    }
    respond(ApiKey::LeaveGroup, version, &resp)
}
