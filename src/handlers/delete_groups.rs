//! DeleteGroups (v0-2): removes Empty groups and their committed offsets (tombstones in
//! `__consumer_offsets`).

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};

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
    let req: DeleteGroupsRequest = decode(ApiKey::DeleteGroups, version, body)?;
    let mut resp = DeleteGroupsResponse::default();
    for id in &req.groups_names {
        let op = GroupOp::Delete {
            group: id.to_string(),
        };
        let mut r = DeletableGroupResult::default();
        r.group_id = id.clone();
        r.error_code = if !access.group(Operation::Delete, id) {
            ec::GROUP_AUTHORIZATION_FAILED
        } else {
            match service::call(&shard, id, op).await {
                GroupReply::Code(code) => code,
                _ => ec::UNKNOWN_SERVER_ERROR,
            }
        };
        resp.results.push(r);
    }
    respond(ApiKey::DeleteGroups, version, &resp)
}
