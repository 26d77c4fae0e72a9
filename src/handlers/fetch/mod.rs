//! Fetch with long-polling. Partitions are grouped by owner shard and read there (from
//! the shard's cache of recent batches, or disk); the record data comes back as `Bytes`
//! and goes to the socket without a copy. When fewer than `min_bytes` are available the
//! request waits until an append makes data visible on any of its partitions or
//! `max_wait_ms` passes, whichever is first. The wait happens on the owner shards: each
//! gets one waiting read, and the first to answer ends the wait, so a woken long-poll
//! costs one hop to the owner and one back. Partitions of the other owners keep the
//! results of the first, immediate read (no data, and that read's high watermark).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::future::{join_all, select_all, FutureExt, LocalBoxFuture};
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::{ApiKey, FetchRequest};

mod reads;

use super::{decode, fetch_session, leader_hint, Outcome, RequestError};
use crate::broker::fetch_sessions::{PartitionAnswer, PartitionSent};
use crate::broker::metadata::TopicMeta;
use crate::broker::router::{FetchItem, FetchResult, ShardMsg};
use crate::broker::shard::Shard;
use crate::metrics::{self, Counter, Stage};
use crate::protocol::errors as ec;
use crate::protocol::fetch::{
    encode_fetch_response, FetchPartitionOut, FetchResponseParts, FetchTopicOut,
    CURRENT_LEADER_VERSION_MIN, NODE_ENDPOINTS_VERSION_MIN, RECORD_BATCH_VERSION_MIN,
};
use crate::replication::selector;
use crate::security::acl::{Access, Operation};
use crate::storage::legacy_format::{batches_to_message_set, DownConvertBudget};
use crate::storage::records::inflated_bytes_max;
use reads::{read_across, read_until_on, sole_owner, trim_to};
pub use reads::{read_until, reply_unless_cancelled};

/// Upper bound on how long one Fetch may be held, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

/// A partition of the request: where it is owned, or the error to answer with.
struct Wanted {
    topic: usize,
    item: FetchItem,
    owner: Result<usize, i16>,
    /// KIP-392: the follower this consumer should read from instead (-1: none). The
    /// answer then carries no records, as Kafka's.
    preferred: i32,
}

/// What KIP-392 allows a consumer Fetch: v11+ (the first with `rack_id`) may be served
/// by a follower, and the leader points it to one in its rack when
/// `replica.selector.class` is Kafka's RackAwareReplicaSelector.
struct ConsumerReads {
    from_followers: bool,
    /// The consumer's rack and the cluster image to find its replicas' racks in; `None`
    /// when no follower is to be chosen.
    select: Option<(
        String,
        Option<String>,
        std::sync::Arc<crate::cluster::ClusterImage>,
    )>,
}

impl ConsumerReads {
    fn of(shard: &Shard, version: i16, req: &FetchRequest, from_replica: bool) -> ConsumerReads {
        let config = &shard.broker.config;
        let cluster = config.cluster.as_ref().zip(shard.broker.cluster.as_ref());
        let consumer_v11 = !from_replica && version >= RACK_ID_VERSION_MIN && cluster.is_some();
        let select = cluster
            .filter(|(c, _)| consumer_v11 && c.rack_aware_reads && !req.rack_id.is_empty())
            .map(|(c, handle)| (req.rack_id.to_string(), c.rack.clone(), handle.image()));
        ConsumerReads {
            from_followers: consumer_v11,
            select,
        }
    }

    /// The follower the consumer should read `partition` of `m` from (this broker leads it).
    fn preferred(&self, m: &TopicMeta, partition: i32) -> Option<i32> {
        let (client_rack, my_rack, image) = self.select.as_ref()?;
        let set = m.replication.get(usize::try_from(partition).ok()?)?;
        let rack_of = |id: i32| {
            if id == set.leader {
                return my_rack.as_deref();
            }
            image
                .live_brokers
                .iter()
                .find(|b| b.node_id == id)
                .and_then(|b| b.rack.as_deref())
        };
        selector::preferred_read_replica(set.leader, &set.isr, client_rack, rack_of)
    }
}

/// The shard that holds this broker's replica of a partition it does not lead, if it
/// holds one.
fn follower_placement(
    snap: &crate::broker::metadata::Snapshot,
    m: &TopicMeta,
    partition: i32,
    me: i32,
) -> Option<usize> {
    let index = usize::try_from(partition).ok()?;
    m.replication.get(index)?;
    if !m.hosted(index, me) {
        return None;
    }
    snap.placement(&m.name, partition).map(|pl| pl.shard)
}

/// The replica id of a replica fetch: a follower names itself (in the body before v15,
/// in ReplicaState from v15); a consumer sends -1. Only a cluster member's fetch is a
/// replica fetch.
fn replica_of(shard: &Shard, version: i16, req: &FetchRequest) -> Option<i32> {
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    (replica_id >= 0 && shard.broker.cluster.is_some()).then_some(replica_id)
}

/// Fetch v11 added `rack_id` (KIP-392) and `preferred_read_replica`.
const RACK_ID_VERSION_MIN: i16 = 11;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: bytes::BytesMut,
    listener: usize,
    access: Access,
) -> Result<Outcome, RequestError> {
    let mut req: FetchRequest = decode(ApiKey::Fetch, version, body)?;
    let started = Instant::now();
    let max_wait = Duration::from_millis((req.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MS_MAX));
    let min_bytes = req.min_bytes.max(0) as usize;
    // Kafka's fetch.max.bytes caps what a consumer may ask one response to hold.
    let response_bytes_max =
        (req.max_bytes.max(0) as usize).min(shard.broker.config.fetch_bytes_max);
    // KIP-227: an incremental fetch reads (and long-polls on) every partition of its
    // session, not only those it names.
    // Only a cluster member's fetch that may act as one counts as a follower's: the
    // replica id is the client's word.
    let privileged =
        replica_of(&shard, version, &req).is_some() && access.cluster(Operation::ClusterAction);
    let (context, session_topics) = match fetch_session::begin(&shard, version, &req, privileged) {
        Ok(begun) => begun,
        Err(code) => return refuse(version, code),
    };
    let asked = match session_topics {
        Some(topics) => topics,
        None => std::mem::take(&mut req.topics),
    };
    let (topics, mut wanted) = resolve(&shard, version, &req, &asked, response_bytes_max, &access);
    let session = (context, asked);
    // One owner for every partition (the usual consumer of one broker's partitions on
    // one shard): the whole long-poll runs there, one hop there and one back.
    let results = match sole_owner(&wanted) {
        Some(owner) => {
            let items = wanted.iter().map(|w| w.item.clone()).collect();
            let args = (response_bytes_max, min_bytes, max_wait);
            read_until_on(&shard, owner, items, args).await
        }
        None => {
            let wait = (started, min_bytes, max_wait);
            read_across(&shard, &mut wanted, response_bytes_max, wait).await
        }
    };
    respond(
        &shard,
        version,
        listener,
        &wanted,
        (topics, results),
        response_bytes_max,
        session,
    )
}

/// A Fetch refused as a whole (KIP-227 session errors): the top-level error, no
/// partitions, session id 0.
fn refuse(version: i16, error_code: i16) -> Result<Outcome, RequestError> {
    metrics::error(ApiKey::Fetch as i16, error_code);
    let parts = FetchResponseParts {
        throttle_time_ms: 0,
        error_code,
        session_id: 0,
        topics: Vec::new(),
        node_endpoints: Vec::new(),
    };
    encode(version, &parts)
}

fn encode(version: i16, parts: &FetchResponseParts) -> Result<Outcome, RequestError> {
    let mut out = Vec::with_capacity(parts.topics.len() * 2 + 1);
    encode_fetch_response(version, parts, &mut out).map_err(|e| RequestError::Encode {
        api: ApiKey::Fetch,
        version,
        why: e.to_string(),
    })?;
    Ok(Outcome::Respond(out))
}

/// The session's view of each answer, in `wanted` order.
fn session_answers(wanted: &[Wanted], results: &[FetchResult]) -> Vec<PartitionAnswer> {
    wanted
        .iter()
        .zip(results)
        .map(|(w, r)| PartitionAnswer {
            error_code: r.error_code,
            has_records: !r.batches.is_empty(),
            redirected: w.preferred >= 0,
            offsets: PartitionSent {
                high_watermark: r.high_watermark,
                last_stable_offset: r.last_stable_offset,
                log_start_offset: r.log_start_offset,
            },
        })
        .collect()
}

/// The response: `max_bytes` applied, the fetch session updated (an incremental
/// answer keeps only what changed), counted, converted down for v0-3, leader hints,
/// encoded.
fn respond(
    shard: &Shard,
    version: i16,
    listener: usize,
    wanted: &[Wanted],
    (mut topics, mut results): (Vec<FetchTopicOut>, Vec<FetchResult>),
    response_bytes_max: usize,
    (context, asked): (fetch_session::Context, Vec<FetchTopic>),
) -> Result<Outcome, RequestError> {
    trim_to(&mut results, response_bytes_max);
    let answers = session_answers(wanted, &results);
    let (session_id, keep) = fetch_session::finish(shard, version, context, &asked, answers);
    count(wanted, &results);
    if version < RECORD_BATCH_VERSION_MIN {
        convert_down(
            shard,
            version,
            &topics,
            wanted,
            &mut results,
            response_bytes_max,
        );
    }
    let hints = leader_hints(shard, version, wanted, &results);
    for (i, ((w, r), current_leader)) in wanted.iter().zip(results).zip(hints).enumerate() {
        if keep.as_ref().is_some_and(|k| !k[i]) {
            continue;
        }
        topics[w.topic].partitions.push(FetchPartitionOut {
            partition_index: w.item.partition,
            error_code: r.error_code,
            high_watermark: r.high_watermark,
            last_stable_offset: r.last_stable_offset,
            log_start_offset: r.log_start_offset,
            preferred_read_replica: w.preferred,
            current_leader,
            aborted: r.aborted,
            records: r.batches,
        });
    }
    let node_endpoints = if version >= NODE_ENDPOINTS_VERSION_MIN {
        let leaders = topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|p| p.current_leader.map(|l| l.leader_id));
        leader_hint::endpoints(&shard.broker, listener, leaders)
    } else {
        Vec::new()
    };
    if keep.is_some() {
        topics.retain(|t| !t.partitions.is_empty());
    }
    let parts = FetchResponseParts {
        throttle_time_ms: 0,
        error_code: ec::NONE,
        session_id,
        topics,
        node_endpoints,
    };
    encode(version, &parts)
}

/// Fetch v0-3 read message sets: each partition's batches are converted down to format
/// v0 (Fetch v0-1) or v1 (v2-3) here, on the accepting shard, within one budget per
/// request: output up to the response's max bytes, decompression up to what one batch of
/// the broker's `message.max.bytes` may inflate to. A topic with
/// `message.downconversion.enable=false` answers UNSUPPORTED_VERSION, as Kafka does.
fn convert_down(
    shard: &Shard,
    version: i16,
    topics: &[FetchTopicOut],
    wanted: &[Wanted],
    results: &mut [FetchResult],
    response_bytes_max: usize,
) {
    let magic = if version < 2 { 0 } else { 1 };
    let snap = shard.broker.metadata.snapshot();
    let mut budget = DownConvertBudget {
        output_bytes_left: response_bytes_max,
        inflated_bytes_left: inflated_bytes_max(shard.broker.config.message_max_bytes),
    };
    let mut enabled: HashMap<usize, bool> = HashMap::new();
    let mut converted_records = 0;
    for (w, r) in wanted.iter().zip(results.iter_mut()) {
        if r.error_code != ec::NONE {
            continue;
        }
        let allowed = *enabled.entry(w.topic).or_insert_with(|| {
            let name = topics[w.topic].name.as_str();
            shard
                .broker
                .topic_settings(&snap, name)
                .downconversion_enable
        });
        if !allowed {
            r.error_code = ec::UNSUPPORTED_VERSION;
            r.batches.clear();
            continue;
        }
        match batches_to_message_set(
            &r.batches,
            magic,
            w.item.offset,
            w.item.max_bytes,
            &mut budget,
        ) {
            Ok(down) => {
                converted_records += down.records;
                r.batches = vec![down.message_set];
            }
            Err(e) => {
                tracing::warn!(
                    "cannot convert {}-{} at offset {} down to message format v{magic}: {e}",
                    w.item.topic,
                    w.item.partition,
                    w.item.offset
                );
                r.error_code = e.kafka_error_code();
                r.batches.clear();
            }
        }
    }
    metrics::add(Counter::FetchConvertedRecords, converted_records as u64);
}

/// KIP-951: each partition's current leader where it answers NOT_LEADER_OR_FOLLOWER or
/// FENCED_LEADER_EPOCH and the version carries the field; `None` elsewhere. The topic
/// table is read only when some partition needs it.
fn leader_hints(
    shard: &Shard,
    version: i16,
    wanted: &[Wanted],
    results: &[FetchResult],
) -> Vec<Option<crate::protocol::fetch::LeaderHint>> {
    let hinted = version >= CURRENT_LEADER_VERSION_MIN
        && results
            .iter()
            .any(|r| leader_hint::wants_hint(r.error_code));
    if !hinted {
        return vec![None; results.len()];
    }
    let snap = shard.broker.metadata.snapshot();
    wanted
        .iter()
        .zip(results)
        .map(|(w, r)| {
            leader_hint::wants_hint(r.error_code)
                .then(|| leader_hint::leader_of(&snap, &w.item.topic, w.item.partition))
                .flatten()
        })
        .collect()
}

/// Empties the results of partitions whose consumer is pointed to a follower; whether
/// there are any.
fn drop_redirected(wanted: &[Wanted], results: &mut [FetchResult]) -> bool {
    let mut any = false;
    for (w, r) in wanted.iter().zip(results.iter_mut()) {
        if w.preferred >= 0 {
            r.batches.clear();
            r.aborted.clear();
            any = true;
        }
    }
    any
}

/// Counts the record bytes returned (and of them, those a follower served to
/// consumers) and each partition's error code.
fn count(wanted: &[Wanted], results: &[FetchResult]) {
    if !metrics::enabled() {
        return;
    }
    let bytes: usize = results.iter().map(FetchResult::bytes).sum();
    metrics::add(Counter::FetchedBytes, bytes as u64);
    let follower_bytes: usize = wanted
        .iter()
        .zip(results)
        .filter(|(w, _)| w.item.follower_read)
        .map(|(_, r)| r.bytes())
        .sum();
    if follower_bytes > 0 {
        metrics::add(Counter::FollowerFetchedBytes, follower_bytes as u64);
    }
    for r in results.iter().filter(|r| r.error_code != ec::NONE) {
        metrics::error(ApiKey::Fetch as i16, r.error_code);
    }
}

/// Maps the request's topics (by name, or by id from v13) and partitions to owners. No
/// partition reads more than the whole response may hold.
fn resolve(
    shard: &Shard,
    version: i16,
    req: &FetchRequest,
    asked: &[FetchTopic],
    response_bytes_max: usize,
    access: &Access,
) -> (Vec<FetchTopicOut>, Vec<Wanted>) {
    let snap = shard.broker.metadata.snapshot();
    let replica = replica_of(shard, version, req);
    // isolation_level is in the request from v4 (READ_UNCOMMITTED before).
    let read_committed = version >= 4 && req.isolation_level == 1;
    // Kafka: a follower needs CLUSTER_ACTION on the cluster, a consumer READ per topic;
    // either refusal is TOPIC_AUTHORIZATION_FAILED on the partitions.
    let replica_denied = replica.is_some() && !access.cluster(Operation::ClusterAction);
    let me = shard.broker.config.node_id;
    let reads = ConsumerReads::of(shard, version, req, replica.is_some());
    let mut topics = Vec::with_capacity(asked.len());
    let mut wanted = Vec::new();
    for t in asked {
        let meta = if version >= 13 {
            snap.topic_by_id(t.topic_id.as_bytes())
        } else {
            snap.topic(t.topic.0.as_str())
        };
        let name = meta.map_or_else(|| t.topic.0.to_string(), |m| m.name.clone());
        let unknown = if version >= 13 {
            ec::UNKNOWN_TOPIC_ID
        } else {
            ec::UNKNOWN_TOPIC_OR_PARTITION
        };
        let denied = replica_denied
            || (replica.is_none()
                && (meta.is_some() || version < 13)
                && !access.topic(Operation::Read, &name));
        for p in &t.partitions {
            let routed = meta.filter(|_| !denied).map_or(
                Err(if denied {
                    ec::TOPIC_AUTHORIZATION_FAILED
                } else {
                    unknown
                }),
                |m| {
                    snap.route(&m.name, p.partition, me).map_err(|e| {
                        if e == ec::UNKNOWN_TOPIC_OR_PARTITION {
                            unknown
                        } else {
                            e
                        }
                    })
                },
            );
            let mut follower_read = false;
            let mut preferred = -1;
            let owner = match (routed, meta) {
                (Ok(pl), Some(m)) => {
                    preferred = reads.preferred(m, p.partition).unwrap_or(-1);
                    Ok(pl.shard)
                }
                // KIP-392: a follower serves the consumers that may read from it.
                (Err(ec::NOT_LEADER_OR_FOLLOWER), Some(m)) if reads.from_followers => {
                    match follower_placement(&snap, m, p.partition, me) {
                        Some(shard) => {
                            follower_read = true;
                            Ok(shard)
                        }
                        None => Err(ec::NOT_LEADER_OR_FOLLOWER),
                    }
                }
                (Ok(pl), None) => Ok(pl.shard),
                (Err(e), _) => Err(e),
            };
            wanted.push(Wanted {
                topic: topics.len(),
                item: FetchItem {
                    topic: name.clone(),
                    partition: p.partition,
                    offset: p.fetch_offset,
                    max_bytes: (p.partition_max_bytes.max(0) as usize).min(response_bytes_max),
                    wait_past: p.fetch_offset,
                    replica,
                    read_committed,
                    follower_read,
                    replica_log_start: p.log_start_offset,
                },
                owner,
                preferred,
            });
        }
        topics.push(FetchTopicOut {
            name,
            topic_id: *t.topic_id.as_bytes(),
            partitions: Vec::with_capacity(t.partitions.len()),
        });
    }
    (topics, wanted)
}
