//! ListGroups (v0-5): every shard's groups, optionally filtered by state (v4+) and type
//! (v5+).

use std::rc::Rc;

use bytes::BytesMut;
use futures::future::join_all;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::groups::{service, GroupOp, GroupReply};
use crate::security::acl::{Access, Operation};

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: ListGroupsRequest = decode(ApiKey::ListGroups, version, body)?;
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let asks = (0..shard.broker.shard_count).map(|to| service::call_on(&shard, to, GroupOp::List));
    let mut resp = ListGroupsResponse::default();
    // Kafka: DESCRIBE on the cluster lists every group, else those the principal may
    // describe.
    let all_groups = access.cluster(Operation::Describe);
    for reply in join_all(asks).await {
        let GroupReply::List(groups) = reply else {
            continue;
        };
        for g in groups {
            if !all_groups && !access.group(Operation::Describe, &g.id) {
                continue;
            }
            if !states.is_empty() && !states.contains(&g.state.to_lowercase()) {
                continue;
            }
            if !types.is_empty() && !types.iter().any(|t| t == g.group_type) {
                continue;
            }
            let mut l = ListedGroup::default();
            l.group_id = GroupId(str_bytes(&g.id));
            l.protocol_type = str_bytes(&g.protocol_type);
            l.group_state = str_bytes(g.state);
            l.group_type = str_bytes(g.group_type);
            resp.groups.push(l);
        }
    }
    respond(ApiKey::ListGroups, version, &resp)
}
