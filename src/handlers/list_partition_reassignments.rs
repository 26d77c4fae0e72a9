//! ListPartitionReassignments (KIP-455): the reassignments in progress, read from this
//! broker's cluster image (all topics, or the named partitions). Partitions not being
//! reassigned, and unknown ones, are left out, as Kafka does. A single broker has none.

use bytes::BytesMut;
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    TopicName,
};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::cluster::PartitionState;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

pub fn handle(
    shard: &Shard,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: ListPartitionReassignmentsRequest =
        decode(ApiKey::ListPartitionReassignments, version, body)?;
    let mut resp = ListPartitionReassignmentsResponse::default();
    if !access.cluster(Operation::Describe) {
        resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = Some(str_bytes(
            "DESCRIBE on the cluster is needed to list reassignments",
        ));
        return respond(ApiKey::ListPartitionReassignments, version, &resp);
    }
    let Some(cluster) = shard.broker.cluster.as_ref() else {
        return respond(ApiKey::ListPartitionReassignments, version, &resp);
    };
    let image = cluster.image();
    let wanted: Vec<(String, Option<Vec<i32>>)> = match req.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.name.to_string(), Some(t.partition_indexes)))
            .collect(),
        None => image.topics.keys().map(|n| (n.clone(), None)).collect(),
    };
    for (name, indexes) in wanted {
        let Some(topic) = image.topics.get(&name) else {
            continue;
        };
        let ongoing: Vec<OngoingPartitionReassignment> = topic
            .partitions
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                p.reassigning()
                    && indexes
                        .as_ref()
                        .is_none_or(|want| want.contains(&(*i as i32)))
            })
            .map(|(i, p)| ongoing(i as i32, p))
            .collect();
        if !ongoing.is_empty() {
            let mut t = OngoingTopicReassignment::default();
            t.name = TopicName(str_bytes(&name));
            t.partitions = ongoing;
            resp.topics.push(t);
        }
    }
    respond(ApiKey::ListPartitionReassignments, version, &resp)
}

fn ongoing(index: i32, p: &PartitionState) -> OngoingPartitionReassignment {
    let ids = |v: &[i32]| v.iter().map(|&b| BrokerId(b)).collect();
    let mut o = OngoingPartitionReassignment::default();
    o.partition_index = index;
    o.replicas = ids(&p.replicas);
    o.adding_replicas = ids(&p.adding);
    o.removing_replicas = ids(&p.removing);
    o
}
