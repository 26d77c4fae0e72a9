//! DescribeCluster: this one broker, which is also the controller.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;

pub fn handle(shard: &Rc<Shard>, version: i16, body: BytesMut) -> Result<Outcome, RequestError> {
    let req: DescribeClusterRequest = decode(ApiKey::DescribeCluster, version, body)?;
    let c = &shard.broker.config;
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(c.node_id);
    b.host = str_bytes(&c.advertised.host);
    b.port = c.advertised.port as i32;
    let mut resp = DescribeClusterResponse::default();
    resp.cluster_id = str_bytes(&shard.broker.cluster_id);
    resp.controller_id = BrokerId(c.node_id);
    resp.brokers = vec![b];
    resp.cluster_authorized_operations = if req.include_cluster_authorized_operations {
        super::metadata::CLUSTER_OPERATIONS_ALL
    } else {
        super::metadata::OPERATIONS_NOT_REQUESTED
    };
    respond(ApiKey::DescribeCluster, version, &resp)
}
