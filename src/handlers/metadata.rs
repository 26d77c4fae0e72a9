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
use crate::security::acl::{Access, Operation, ResourceType, CLUSTER_NAME};

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    listener: usize,
    access: Access,
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
            auto_create(&shard, wanted, &access).await
        }
        _ => HashMap::new(),
    };
    let snap = broker.metadata.snapshot();
    let node = BrokerId(broker.config.node_id);
    let refusing = refusing_leaders(broker);
    let topic_ops = |name: &str| {
        if req.include_topic_authorized_operations {
            authorized_ops(&access, ResourceType::Topic, name, TOPIC_OPERATIONS_ALL)
        } else {
            OPERATIONS_NOT_REQUESTED
        }
    };
    let described = |t: &TopicMeta| access.topic(Operation::Describe, &t.name);
    let topics: Vec<MetadataResponseTopic> = match wanted {
        None => snap
            .topics
            .values()
            // Kafka leaves out of "all topics" those the principal may not describe.
            .filter(|t| described(t))
            .map(|t| topic_entry(t, node, topic_ops(&t.name), &broker.dirs, &refusing))
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
                let denied = match (found, &w.name) {
                    (Some(t), _) => !described(t),
                    (None, Some(n)) => !access.topic(Operation::Describe, n.0.as_str()),
                    (None, None) => false,
                };
                match found {
                    _ if denied => {
                        let mut e = MetadataResponseTopic::default();
                        e.name = w
                            .name
                            .clone()
                            .or_else(|| found.map(|t| topic_name(&t.name)));
                        e.topic_id = w.topic_id;
                        e.error_code = ec::TOPIC_AUTHORIZATION_FAILED;
                        e
                    }
                    Some(t) => topic_entry(t, node, topic_ops(&t.name), &broker.dirs, &refusing),
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
    let (mut brokers, controller_id) = broker.cluster_view(listener);
    if let Some(cluster) = &broker.cluster {
        // Fenced moments ago: still listed, so librdkafka keeps its partitions' queues
        // when it moves them to the new leader (`ClusterImage::recently_gone`).
        let image = cluster.image();
        let now = std::time::Instant::now();
        let gone = image
            .gone_still_listed(now)
            .filter(|g| !brokers.iter().any(|b| b.node_id == g.node_id))
            .cloned()
            .collect::<Vec<_>>();
        brokers.extend(gone);
        brokers.sort_by_key(|b| b.node_id);
    }
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
        authorized_ops(
            &access,
            ResourceType::Cluster,
            CLUSTER_NAME,
            CLUSTER_OPERATIONS_ALL,
        )
    } else {
        OPERATIONS_NOT_REQUESTED
    };
    respond(ApiKey::Metadata, version, &resp)
}

/// Creates the named topics that do not exist, with num.partitions partitions each, as
/// one batch (held to `max.partitions.per.request` as a whole). Returns the topics
/// refused with an error a client should see: POLICY_VIOLATION for a batch over the
/// bound, INVALID_TOPIC_EXCEPTION for a name Kafka would not create,
/// TOPIC_AUTHORIZATION_FAILED without CREATE on the cluster or the topic (as Kafka).
async fn auto_create(
    shard: &Rc<Shard>,
    wanted: &[MetadataRequestTopic],
    access: &Access,
) -> HashMap<String, i16> {
    let broker = &shard.broker;
    let snap = broker.metadata.snapshot();
    let mut refused = HashMap::new();
    let may_create_any = access.cluster(Operation::Create);
    let mut names: Vec<&str> = wanted
        .iter()
        .filter_map(|t| t.name.as_ref())
        .map(|n| n.0.as_str())
        .filter(|n| snap.topic(n).is_none())
        .filter(|n| access.topic(Operation::Describe, n))
        .filter(|n| {
            let allowed = may_create_any || access.topic(Operation::Create, n);
            if !allowed {
                refused.insert(n.to_string(), ec::TOPIC_AUTHORIZATION_FAILED);
            }
            allowed
        })
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

/// The operations of `all` (a bit per operation code) that `access` allows on the
/// resource: Kafka's `*_authorized_operations`.
pub fn authorized_ops(access: &Access, rt: ResourceType, name: &str, all: i32) -> i32 {
    Operation::ALL
        .iter()
        .filter(|op| all & (1 << op.code()) != 0 && access.allows(**op, rt, name))
        .fold(0, |bits, op| bits | (1 << op.code()))
}

/// Kafka's "authorized operations were not asked for".
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;
/// Every topic operation: READ(3), WRITE(4), CREATE(5),
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
/// Leaders whose connects this broker's replica fetchers saw refused and that the
/// quorum has not fenced yet (`replication::refusals`); empty unless fast fencing is on.
fn refusing_leaders(broker: &crate::broker::Broker) -> Vec<i32> {
    let fast_fencing = broker
        .config
        .cluster
        .as_ref()
        .is_some_and(|c| c.fast_fencing);
    if !fast_fencing {
        return Vec::new();
    }
    broker.refusals.refusing(std::time::Instant::now())
}

fn topic_entry(
    t: &TopicMeta,
    node: BrokerId,
    ops: i32,
    dirs: &crate::broker::log_dirs::LogDirStates,
    refusing: &[i32],
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
                // A leader refusing connections is gone and about to be fenced: no
                // leader yet, so clients re-ask quickly (`replication::refusals`).
                if refusing.contains(&r.leader) {
                    p.leader_id = BrokerId(-1);
                }
                if p.leader_id.0 < 0 {
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
