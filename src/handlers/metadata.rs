//! Metadata: this broker, and the topics asked for (all when none are named). With
//! auto.create.topics.enable, a named topic that does not exist is created with
//! num.partitions partitions, as Kafka does. The missing topics of one request are
//! created as one batch, so together they are held to `max.partitions.per.request`:
//! over it none is created and each answers POLICY_VIOLATION (Kafka's controller
//! refuses the batch its broker forwards the same way). A name Kafka would not create
//! answers INVALID_TOPIC_EXCEPTION, as in Kafka.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse};
use uuid::Uuid;

use super::{decode, respond, str_bytes, topic_name, Outcome, RequestError};
use crate::broker::metadata::TopicMeta;
use crate::broker::shard::{Shard, TopicSpec};
use crate::protocol::errors as ec;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    listener: usize,
) -> Result<Outcome, RequestError> {
    let req: MetadataRequest = decode(ApiKey::Metadata, version, body)?;
    let broker = &shard.broker;
    // v0 has no null: an empty list means every topic.
    let wanted = match req.topics {
        Some(t) if !(version == 0 && t.is_empty()) => Some(t),
        _ => None,
    };
    let allow_create = version < 4 || req.allow_auto_topic_creation;
    let refused = match &wanted {
        Some(wanted) if broker.config.auto_create_topics_enable && allow_create => {
            auto_create(&shard, wanted).await
        }
        _ => HashMap::new(),
    };
    let snap = broker.metadata.snapshot();
    let node = BrokerId(broker.config.node_id);
    let topic_ops = if req.include_topic_authorized_operations {
        TOPIC_OPERATIONS_ALL
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    let topics: Vec<MetadataResponseTopic> = match wanted {
        None => snap
            .topics
            .values()
            .map(|t| topic_entry(t, node, topic_ops, &broker.dirs))
            .collect(),
        // Each topic is answered once however often it is named, as Kafka answers the
        // set of names: a 4 MiB request naming a 1,000-partition topic 500,000 times
        // would otherwise make an answer of tens of gigabytes.
        Some(wanted) => wanted
            .iter()
            .filter({
                let mut seen: HashSet<(Option<&str>, Uuid)> = HashSet::new();
                move |w| seen.insert((w.name.as_ref().map(|n| n.0.as_str()), w.topic_id))
            })
            .map(|w| {
                let found = match &w.name {
                    Some(n) => snap.topic(n.0.as_str()),
                    None => snap.topic_by_id(w.topic_id.as_bytes()),
                };
                match found {
                    Some(t) => topic_entry(t, node, topic_ops, &broker.dirs),
                    None => {
                        let mut e = MetadataResponseTopic::default();
                        e.name = w.name.clone();
                        e.topic_id = w.topic_id;
                        e.error_code = match &w.name {
                            Some(n) => refused
                                .get(n.0.as_str())
                                .copied()
                                .unwrap_or(ec::UNKNOWN_TOPIC_OR_PARTITION),
                            None => ec::UNKNOWN_TOPIC_ID,
                        };
                        e
                    }
                }
            })
            .collect(),
    };
    let (brokers, controller_id) = broker.cluster_view(listener);
    let mut resp = MetadataResponse::default();
    resp.brokers = brokers
        .iter()
        .map(|info| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(info.node_id);
            b.host = str_bytes(&info.host);
            b.port = info.port as i32;
            b.rack = info.rack.as_deref().map(str_bytes);
            b
        })
        .collect();
    resp.cluster_id = Some(str_bytes(&broker.cluster_id));
    resp.controller_id = BrokerId(controller_id);
    resp.topics = topics;
    resp.cluster_authorized_operations = if req.include_cluster_authorized_operations {
        CLUSTER_OPERATIONS_ALL
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    respond(ApiKey::Metadata, version, &resp)
}

/// Creates the named topics that do not exist, with num.partitions partitions each, as
/// one batch (held to `max.partitions.per.request` as a whole). Returns the topics
/// refused with an error a client should see: POLICY_VIOLATION for a batch over the
/// bound, INVALID_TOPIC_EXCEPTION for a name Kafka would not create.
async fn auto_create(shard: &Rc<Shard>, wanted: &[MetadataRequestTopic]) -> HashMap<String, i16> {
    let broker = &shard.broker;
    let snap = broker.metadata.snapshot();
    let mut names: Vec<&str> = wanted
        .iter()
        .filter_map(|t| t.name.as_ref())
        .map(|n| n.0.as_str())
        .filter(|n| snap.topic(n).is_none())
        .collect();
    // A name listed twice is one topic to create, and counts once.
    names.sort_unstable();
    names.dedup();
    let missing: Vec<TopicSpec> = names
        .into_iter()
        .map(|n| TopicSpec {
            name: n.to_string(),
            partitions: broker.config.num_partitions,
            configs: Vec::new(),
            replication_factor: -1,
            assignment: None,
        })
        .collect();
    let mut refused = HashMap::new();
    if missing.is_empty() {
        return refused;
    }
    // Races with another creator are fine: TOPIC_ALREADY_EXISTS then means it exists.
    for (name, r) in shard.create_topics(missing, false).await {
        if let Err((code @ (ec::POLICY_VIOLATION | ec::INVALID_TOPIC_EXCEPTION), _)) = r {
            refused.insert(name, code);
        }
    }
    refused
}

/// Kafka's "authorized operations were not asked for".
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;
/// No ACLs yet, so every topic operation is allowed: READ(3), WRITE(4), CREATE(5),
/// DELETE(6), ALTER(7), DESCRIBE(8), DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11).
pub const TOPIC_OPERATIONS_ALL: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Every cluster operation: CREATE(5), ALTER(7), DESCRIBE(8), CLUSTER_ACTION(9),
/// DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11), IDEMPOTENT_WRITE(12).
pub const CLUSTER_OPERATIONS_ALL: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// A topic's entry. A partition in an offline log dir (KIP-112) has no leader, its one
/// replica is listed offline and the error is KAFKA_STORAGE_ERROR, as Kafka shows a
/// partition whose only replica is on a failed disk; clients stop sending to it.
fn topic_entry(
    t: &TopicMeta,
    node: BrokerId,
    ops: i32,
    dirs: &crate::broker::log_dirs::LogDirStates,
) -> MetadataResponseTopic {
    let mut e = MetadataResponseTopic::default();
    e.name = Some(topic_name(&t.name));
    e.topic_id = Uuid::from_bytes(t.id);
    e.is_internal = crate::txn::is_internal_topic(&t.name);
    e.topic_authorized_operations = ops;
    e.partitions = t
        .partitions
        .iter()
        .enumerate()
        .map(|(i, placement)| {
            let mut p = MetadataResponsePartition::default();
            p.partition_index = i as i32;
            if let Some(r) = t.replication.get(i) {
                // Cluster mode: as the quorum's image has it.
                p.leader_id = BrokerId(r.leader);
                p.leader_epoch = r.leader_epoch.max(0);
                p.replica_nodes = r.replicas.iter().map(|&b| BrokerId(b)).collect();
                p.isr_nodes = r.isr.iter().map(|&b| BrokerId(b)).collect();
                if r.leader < 0 {
                    p.error_code = ec::LEADER_NOT_AVAILABLE;
                }
                return p;
            }
            p.leader_epoch = 0;
            p.replica_nodes = vec![node];
            if dirs.is_offline(placement.dir) {
                p.error_code = ec::KAFKA_STORAGE_ERROR;
                p.leader_id = BrokerId(-1);
                p.offline_replicas = vec![node];
            } else {
                p.leader_id = node;
                p.isr_nodes = vec![node];
            }
            p
        })
        .collect();
    e
}
