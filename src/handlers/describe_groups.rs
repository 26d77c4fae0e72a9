//! DescribeGroups (v0-5): state, protocol and members of each group, from its home shard.
//! A group named twice in one request is described once; repeats answer INVALID_REQUEST
//! (`super::first_time`).

use std::collections::HashSet;
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::groups::{service, GroupOp, GroupReply};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

/// Kafka's "authorized operations not requested" marker.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DescribeGroupsRequest = decode(ApiKey::DescribeGroups, version, body)?;
    let mut resp = DescribeGroupsResponse::default();
    let mut seen = HashSet::with_capacity(req.groups.len());
    for id in &req.groups {
        if !super::first_time(&mut seen, id.as_str()) {
            let mut d = DescribedGroup::default();
            d.group_id = id.clone();
            d.error_code = ec::INVALID_REQUEST;
            d.authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
            resp.groups.push(d);
            continue;
        }
        let op = GroupOp::Describe {
            group: id.to_string(),
        };
        let mut d = DescribedGroup::default();
        d.group_id = id.clone();
        d.authorized_operations = AUTHORIZED_OPERATIONS_OMITTED;
        if !access.group(Operation::Describe, id) {
            d.error_code = ec::GROUP_AUTHORIZATION_FAILED;
            resp.groups.push(d);
            continue;
        }
        match service::call(&shard, id, op).await {
            // Kafka 4 answers DescribeGroups v0-5 for a consumer-protocol group as for
            // an unknown one (v6 would say GROUP_ID_NOT_FOUND).
            GroupReply::Describe(Some(g)) if g.group_type == "consumer" => {
                d.group_state = str_bytes("Dead")
            }
            GroupReply::Describe(Some(g)) => {
                d.group_state = str_bytes(g.state);
                d.protocol_type = str_bytes(&g.protocol_type);
                d.protocol_data = str_bytes(&g.protocol);
                d.members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut out = DescribedGroupMember::default();
                        out.member_id = str_bytes(&m.id);
                        out.group_instance_id = m.instance_id.as_deref().map(str_bytes);
                        out.client_id = str_bytes(&m.client_id);
                        out.client_host = str_bytes(&m.client_host);
                        out.member_metadata = m.metadata;
                        out.member_assignment = m.assignment;
                        out
                    })
                    .collect();
            }
            // Kafka describes an unknown group as Dead, with no error (v0-5).
            GroupReply::Describe(None) => d.group_state = str_bytes("Dead"),
            GroupReply::Code(code) => d.error_code = code,
            _ => d.error_code = ec::UNKNOWN_SERVER_ERROR,
        }
        resp.groups.push(d);
    }
    respond(ApiKey::DescribeGroups, version, &resp)
}
