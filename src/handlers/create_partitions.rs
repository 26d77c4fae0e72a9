//! CreatePartitions: grows a topic. New partitions are placed like new topics' (least
//! loaded shard and log dir); explicit assignments must name this broker only. A request
//! that would add more than `max.partitions.per.request` partitions in total is refused
//! as a whole by the metadata shard before anything is placed. The new partitions are
//! taken from the client's `controller_mutation_rate` quota first (`quota::mutation`).

use std::collections::HashSet;
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, TopicName,
};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::quota::mutation::{MutationQuota, THROTTLED_MESSAGE};
use crate::security::acl::{Access, Operation};

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
    quota: MutationQuota,
) -> Result<Outcome, RequestError> {
    let req: CreatePartitionsRequest = decode(ApiKey::CreatePartitions, version, body)?;
    let node_id = shard.broker.config.node_id;
    let snap = shard.broker.metadata.snapshot();
    // As Kafka: a name given twice is answered once, INVALID_REQUEST, and not grown.
    let repeated = super::repeated_names(req.topics.iter().map(|t| t.name.as_str()));
    let mut resp = CreatePartitionsResponse::default();
    for name in &repeated {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = TopicName(str_bytes(name));
        r.error_code = ec::INVALID_REQUEST;
        r.error_message = Some(str_bytes(super::DUPLICATE_TOPIC_NAME));
        resp.results.push(r);
    }
    let repeated: HashSet<&str> = repeated.into_iter().collect();
    let topics: Vec<_> = req
        .topics
        .iter()
        .filter(|t| !repeated.contains(t.name.as_str()))
        .collect();
    let mut early: Vec<Option<(i16, String)>> = Vec::with_capacity(topics.len());
    let mut requests = Vec::new();
    for t in &topics {
        if !access.topic(Operation::Alter, t.name.as_str()) {
            let why = "Authorization failed: ALTER on the topic is needed.";
            early.push(Some((ec::TOPIC_AUTHORIZATION_FAILED, why.into())));
            continue;
        }
        let foreign = t
            .assignments
            .iter()
            .flatten()
            .any(|a| a.broker_ids.len() != 1 || a.broker_ids.iter().any(|b| b.0 != node_id));
        if foreign {
            early.push(Some((
                ec::INVALID_REPLICA_ASSIGNMENT,
                format!("each new partition must be assigned to broker {node_id} alone"),
            )));
        } else {
            let current = snap
                .topic(t.name.as_str())
                .map(|m| m.partitions.len() as i64);
            let added = current.map_or(0, |c| (i64::from(t.count) - c).max(0) as u32);
            if !req.validate_only && added > 0 && quota.take(added).is_err() {
                let why = THROTTLED_MESSAGE.to_string();
                early.push(Some((ec::THROTTLING_QUOTA_EXCEEDED, why)));
                continue;
            }
            early.push(None);
            requests.push((t.name.to_string(), t.count));
        }
    }
    let mut results = shard
        .create_partitions(requests, req.validate_only)
        .await
        .into_iter();
    for (t, early) in topics.iter().zip(early) {
        let outcome = match early {
            Some(e) => Err(e),
            None => results
                .next()
                .map_or(Err((ec::UNKNOWN_SERVER_ERROR, "no result".into())), |r| r.1),
        };
        let mut r = CreatePartitionsTopicResult::default();
        r.name = t.name.clone();
        if let Err((code, msg)) = outcome {
            r.error_code = code;
            r.error_message = Some(str_bytes(&msg));
        }
        resp.results.push(r);
    }
    resp.throttle_time_ms = quota.settle().await;
    respond(ApiKey::CreatePartitions, version, &resp)
}
