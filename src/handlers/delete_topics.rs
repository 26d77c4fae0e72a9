//! DeleteTopics, by name (all versions) or by topic id (v6+). A request that would delete
//! more than `CHANGES_PER_REQUEST_MAX` topics is refused as a whole, as in Kafka. Each
//! existing topic's partitions are taken from the client's `controller_mutation_rate`
//! quota first (`quota::mutation`).

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse};
use uuid::Uuid;

use super::{decode, respond, str_bytes, topic_name, Outcome, RequestError};
use crate::broker::request_limits;
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
    let req: DeleteTopicsRequest = decode(ApiKey::DeleteTopics, version, body)?;
    let snap = shard.broker.metadata.snapshot();
    let mut resp = DeleteTopicsResponse::default();
    let mut names = Vec::new();
    let mut ids = Vec::new();
    for n in &req.topic_names {
        names.push(n.0.to_string());
        ids.push(Uuid::nil());
    }
    for t in &req.topics {
        match (&t.name, snap.topic_by_id(t.topic_id.as_bytes())) {
            (Some(n), _) => {
                names.push(n.0.to_string());
                ids.push(t.topic_id);
            }
            (None, Some(meta)) => {
                names.push(meta.name.clone());
                ids.push(t.topic_id);
            }
            (None, None) => {
                let mut r = DeletableTopicResult::default();
                r.topic_id = t.topic_id;
                r.error_code = ec::UNKNOWN_TOPIC_ID;
                resp.responses.push(r);
            }
        }
    }
    // Kafka: DELETE on each topic.
    let (names, ids): (Vec<String>, Vec<Uuid>) = names
        .into_iter()
        .zip(ids)
        .filter(|(name, id)| {
            let allowed = access.topic(Operation::Delete, name);
            if !allowed {
                let mut r = DeletableTopicResult::default();
                r.name = Some(topic_name(name));
                r.topic_id = *id;
                r.error_code = ec::TOPIC_AUTHORIZATION_FAILED;
                resp.responses.push(r);
            }
            allowed
        })
        .unzip();
    let (names, ids): (Vec<String>, Vec<Uuid>) = names
        .into_iter()
        .zip(ids)
        .filter(|(name, id)| {
            let Some(topic) = snap.topic(name) else {
                return true;
            };
            if quota.take(topic.partitions.len() as u32).is_ok() {
                return true;
            }
            let mut r = DeletableTopicResult::default();
            r.name = Some(topic_name(name));
            r.topic_id = *id;
            r.error_code = ec::THROTTLING_QUOTA_EXCEEDED;
            r.error_message = Some(str_bytes(THROTTLED_MESSAGE));
            resp.responses.push(r);
            false
        })
        .unzip();
    let mut existing: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| snap.topic(n).is_some())
        .collect();
    existing.sort_unstable();
    existing.dedup();
    let results = match request_limits::check_changes(existing.len()) {
        Ok(()) => shard.delete_topics(names).await,
        Err(e) => names.into_iter().map(|n| (n, Err(e.clone()))).collect(),
    };
    for ((name, r), id) in results.into_iter().zip(ids) {
        let mut out = DeletableTopicResult::default();
        out.name = Some(topic_name(&name));
        out.topic_id = id;
        if let Err((code, msg)) = r {
            out.error_code = code;
            out.error_message = Some(str_bytes(&msg));
        }
        resp.responses.push(out);
    }
    resp.throttle_time_ms = quota.settle().await;
    respond(ApiKey::DeleteTopics, version, &resp)
}
