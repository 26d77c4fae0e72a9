//! ElectLeaders (kafka-leader-election.sh, AdminClient.electLeaders): preferred or
//! unclean leader election, decided in the quorum (`cluster::elect`) whichever broker
//! takes the request. A null partition list (v1+) means every partition. A single
//! broker leads all its partitions already: each one it has is ELECTION_NOT_NEEDED.

use std::collections::BTreeSet;
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::cluster::{ElectionResult, ElectionType, NO_LEADER};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: ElectLeadersRequest = decode(ApiKey::ElectLeaders, version, body)?;
    // Each partition once, in the order first asked (Kafka answers duplicates once too).
    let requested: Option<Vec<(String, i32)>> = req.topic_partitions.as_ref().map(|topics| {
        let mut seen = BTreeSet::new();
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.to_string(), p)))
            .filter(|tp| seen.insert(tp.clone()))
            .collect()
    });
    if !access.cluster(Operation::Alter) {
        // Kafka's rule: electing leaders is ALTER on the cluster.
        let why = "ALTER on the cluster is needed to elect leaders";
        return answer_all(version, requested, ec::CLUSTER_AUTHORIZATION_FAILED, why);
    }
    let mut resp = ElectLeadersResponse::default();
    let Some(election) = ElectionType::from_wire(req.election_type) else {
        let why = format!("unknown election type {}", req.election_type);
        return answer_all(version, requested, ec::INVALID_REQUEST, &why);
    };
    let outcome = match shard.broker.cluster.as_deref() {
        Some(cluster) => cluster.elect_leaders(election, requested.clone()).await,
        None => Ok(single_broker(&shard, requested.clone())),
    };
    match outcome {
        Ok(results) => resp.replica_election_results = group(&results),
        Err((code, why)) => return answer_all(version, requested, code, &why),
    }
    respond(ApiKey::ElectLeaders, version, &resp)
}

/// A single broker: it leads every partition it has.
fn single_broker(shard: &Shard, requested: Option<Vec<(String, i32)>>) -> Vec<ElectionResult> {
    let snap = shard.broker.metadata.snapshot();
    let partitions = requested.unwrap_or_else(|| {
        snap.topics
            .values()
            .flat_map(|t| (0..t.partitions.len() as i32).map(|p| (t.name.clone(), p)))
            .collect()
    });
    partitions
        .into_iter()
        .map(|(topic, partition)| {
            let exists = snap
                .topic(&topic)
                .is_some_and(|t| partition >= 0 && (partition as usize) < t.partitions.len());
            let (error_code, message, leader) = if exists {
                (ec::ELECTION_NOT_NEEDED, None, shard.broker.config.node_id)
            } else {
                let why = format!("{topic}-{partition} does not exist");
                (ec::UNKNOWN_TOPIC_OR_PARTITION, Some(why), NO_LEADER)
            };
            ElectionResult {
                topic,
                partition,
                error_code,
                message,
                leader,
            }
        })
        .collect()
}

/// The results by topic, topics in first-seen order.
fn group(results: &[ElectionResult]) -> Vec<ReplicaElectionResult> {
    let mut out: Vec<ReplicaElectionResult> = Vec::new();
    for r in results {
        let mut p = PartitionResult::default();
        p.partition_id = r.partition;
        p.error_code = r.error_code;
        p.error_message = r.message.as_deref().map(str_bytes);
        match out.iter_mut().find(|t| t.topic.as_str() == r.topic) {
            Some(t) => t.partition_result.push(p),
            None => {
                let mut t = ReplicaElectionResult::default();
                t.topic = TopicName(str_bytes(&r.topic));
                t.partition_result.push(p);
                out.push(t);
            }
        }
    }
    out
}

/// One error for the whole request: per partition when they were named, else (v1+) at
/// the top.
fn answer_all(
    version: i16,
    requested: Option<Vec<(String, i32)>>,
    code: i16,
    why: &str,
) -> Result<Outcome, RequestError> {
    let mut resp = ElectLeadersResponse::default();
    match requested {
        Some(partitions) => {
            let results: Vec<ElectionResult> = partitions
                .into_iter()
                .map(|(topic, partition)| ElectionResult {
                    topic,
                    partition,
                    error_code: code,
                    message: Some(why.to_string()),
                    leader: NO_LEADER,
                })
                .collect();
            resp.replica_election_results = group(&results);
        }
        None if version >= 1 => resp.error_code = code,
        None => {}
    }
    respond(ApiKey::ElectLeaders, version, &resp)
}
