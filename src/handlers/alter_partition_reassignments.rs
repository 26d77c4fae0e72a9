//! AlterPartitionReassignments (KIP-455): starts, replaces or cancels (null replicas)
//! the reassignment of each partition through the metadata quorum. Every partition is
//! one `AdminCall::Reassign`, answered once applied on this broker; the checks and
//! their Kafka error codes are `ClusterState::check_reassignment`'s. A single broker
//! (no quorum) has nothing to reassign to: every partition is refused.

use std::rc::Rc;

use bytes::BytesMut;
use futures::future::join_all;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey,
};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::cluster::AdminCall;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: AlterPartitionReassignmentsRequest =
        decode(ApiKey::AlterPartitionReassignments, version, body)?;
    let cluster = shard.broker.cluster.clone();
    let mut resp = AlterPartitionReassignmentsResponse::default();
    if !access.cluster(Operation::Alter) {
        // Kafka's rule: moving replicas is ALTER on the cluster; the whole request fails.
        resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = Some(str_bytes(
            "ALTER on the cluster is needed to reassign partitions",
        ));
        return respond(ApiKey::AlterPartitionReassignments, version, &resp);
    }
    for t in req.topics {
        let calls = t.partitions.iter().map(|p| {
            let call = AdminCall::Reassign {
                topic: t.name.to_string(),
                partition: p.partition_index,
                target: p
                    .replicas
                    .as_ref()
                    .map(|r| r.iter().map(|b| b.0).collect()),
            };
            let cluster = cluster.clone();
            async move {
                match cluster {
                    Some(c) => c.call(call).await,
                    None => Err((
                        ec::INVALID_REPLICA_ASSIGNMENT,
                        "this broker is not a cluster member (no controller.quorum.voters): there is no other broker to reassign to".to_string(),
                    )),
                }
            }
        });
        let results = join_all(calls).await;
        let mut topic = ReassignableTopicResponse::default();
        topic.name = t.name.clone();
        for (p, result) in t.partitions.iter().zip(results) {
            let mut r = ReassignablePartitionResponse::default();
            r.partition_index = p.partition_index;
            if let Err((code, why)) = result {
                r.error_code = code;
                r.error_message = Some(str_bytes(&why));
            }
            topic.partitions.push(r);
        }
        resp.responses.push(topic);
    }
    respond(ApiKey::AlterPartitionReassignments, version, &resp)
}
