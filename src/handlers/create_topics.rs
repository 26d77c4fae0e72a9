//! CreateTopics. One broker: the replication factor must be 1 (or -1, the default).
//! In a cluster the quorum places replicas (or takes the request's assignments) and
//! every replica's broker opens its partitions (`broker::cluster_sync`). A request that would add
//! more than `max.partitions.per.request` partitions in total is refused as a whole,
//! before anything is placed (`broker::request_limits`). Each topic's partitions are
//! taken from the client's `controller_mutation_rate` quota first (`quota::mutation`).

use std::collections::HashSet;
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use uuid::Uuid;

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::request_limits;
use crate::broker::shard::{Shard, TopicSpec};
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
    let req: CreateTopicsRequest = decode(ApiKey::CreateTopics, version, body)?;
    let broker = shard.broker.clone();
    let mut resp = CreateTopicsResponse::default();
    // As Kafka: a name given twice is answered once, INVALID_REQUEST, and is neither
    // created nor counted.
    let repeated = super::repeated_names(req.topics.iter().map(|t| t.name.0.as_str()));
    for name in &repeated {
        let msg = super::DUPLICATE_TOPIC_NAME.to_string();
        resp.topics
            .push(result(name, ec::INVALID_REQUEST, Some(msg), -1, None));
    }
    let repeated: HashSet<&str> = repeated.into_iter().collect();
    // Kafka: CREATE on the cluster, or on each topic.
    let may_create_any = access.cluster(Operation::Create);
    let (topics, denied): (Vec<&CreatableTopic>, Vec<&CreatableTopic>) = req
        .topics
        .iter()
        .filter(|t| !repeated.contains(t.name.0.as_str()))
        .partition(|t| may_create_any || access.topic(Operation::Create, t.name.0.as_str()));
    for t in denied {
        let msg = "Authorization failed: CREATE on the topic or the cluster is needed.";
        resp.topics.push(result(
            &t.name.0,
            ec::TOPIC_AUTHORIZATION_FAILED,
            Some(msg.into()),
            -1,
            None,
        ));
    }
    let requested = topics.iter().map(|t| {
        request_limits::topic_partitions(
            t.num_partitions,
            t.assignments.len(),
            broker.config.num_partitions,
        )
    });
    if let Err((code, msg)) =
        request_limits::check_total(requested, broker.config.partitions_per_request_max)
    {
        resp.topics.extend(
            topics
                .iter()
                .map(|t| result(&t.name.0, code, Some(msg.clone()), -1, None)),
        );
        return respond(ApiKey::CreateTopics, version, &resp);
    }
    let (early, specs) = specs(
        &topics,
        broker.config.num_partitions,
        broker.cluster.is_some(),
    );
    let (specs, throttled): (Vec<TopicSpec>, Vec<TopicSpec>) = specs
        .into_iter()
        .partition(|s| req.validate_only || quota.take(s.partitions.max(0) as u32).is_ok());
    let results = shard.create_topics(specs.clone(), req.validate_only).await;
    let snap = broker.metadata.snapshot();
    for (name, code, msg) in early {
        resp.topics.push(result(&name, code, Some(msg), -1, None));
    }
    for t in throttled {
        let msg = Some(THROTTLED_MESSAGE.to_string());
        let code = ec::THROTTLING_QUOTA_EXCEEDED;
        resp.topics.push(result(&t.name, code, msg, -1, None));
    }
    for ((name, r), spec) in results.into_iter().zip(specs) {
        let id = snap.topic(&name).map(|t| t.id);
        resp.topics.push(match r {
            Ok(()) => result(&name, ec::NONE, None, spec.partitions, id),
            Err((code, msg)) => result(&name, code, Some(msg), -1, None),
        });
    }
    resp.throttle_time_ms = quota.settle().await;
    respond(ApiKey::CreateTopics, version, &resp)
}

/// The topics to create, and those refused before: (name, error code, message).
fn specs(
    topics: &[&CreatableTopic],
    num_partitions: i32,
    cluster: bool,
) -> (Vec<(String, i16, String)>, Vec<TopicSpec>) {
    let mut early: Vec<(String, i16, String)> = Vec::new();
    let mut specs = Vec::new();
    for t in topics {
        let name = t.name.0.to_string();
        let partitions = if !t.assignments.is_empty() {
            t.assignments.len() as i32
        } else if t.num_partitions == -1 {
            num_partitions
        } else {
            t.num_partitions
        };
        if !cluster && t.replication_factor != -1 && t.replication_factor != 1 {
            early.push((
                name,
                ec::INVALID_REPLICATION_FACTOR,
                format!(
                    "Replication factor: {} larger than available brokers: 1.",
                    t.replication_factor
                ),
            ));
        } else {
            let configs = t
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            let assignment = (!t.assignments.is_empty()).then(|| {
                t.assignments
                    .iter()
                    .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                    .collect()
            });
            specs.push(TopicSpec {
                name,
                partitions,
                configs,
                replication_factor: t.replication_factor,
                assignment,
            });
        }
    }
    (early, specs)
}

fn result(
    name: &str,
    code: i16,
    msg: Option<String>,
    partitions: i32,
    id: Option<[u8; 16]>,
) -> CreatableTopicResult {
    let mut r = CreatableTopicResult::default();
    r.name = super::topic_name(name);
    r.error_code = code;
    r.error_message = msg.map(|m| str_bytes(&m));
    r.num_partitions = partitions;
    r.replication_factor = if code == ec::NONE { 1 } else { -1 };
    r.topic_id = id.map(Uuid::from_bytes).unwrap_or(Uuid::nil());
    r
}
