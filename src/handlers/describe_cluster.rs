//! DescribeCluster: the live brokers and the active controller (a single broker: itself).

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::security::acl::{Access, ResourceType, CLUSTER_NAME};

pub fn handle(
    shard: &Rc<Shard>,
    version: i16,
    body: BytesMut,
    listener: usize,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DescribeClusterRequest = decode(ApiKey::DescribeCluster, version, body)?;
    let (brokers, controller_id) = shard.broker.cluster_view(listener);
    let mut resp = DescribeClusterResponse::default();
    resp.cluster_id = str_bytes(&shard.broker.cluster_id);
    resp.controller_id = BrokerId(controller_id);
    resp.brokers = brokers
        .iter()
        .map(|info| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = BrokerId(info.node_id);
            b.host = str_bytes(&info.host);
            b.port = info.port as i32;
            b.rack = info.rack.as_deref().map(str_bytes);
            b
        })
        .collect();
    resp.cluster_authorized_operations = if req.include_cluster_authorized_operations {
        super::metadata::authorized_ops(
            &access,
            ResourceType::Cluster,
            CLUSTER_NAME,
            super::metadata::CLUSTER_OPERATIONS_ALL,
        )
    } else {
        super::metadata::OPERATIONS_NOT_REQUESTED
    };
    respond(ApiKey::DescribeCluster, version, &resp)
}
