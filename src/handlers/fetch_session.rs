//! KIP-227 in the Fetch handler: which fetch session a request names, which partitions
//! it reads, and which of them its response holds. The cache itself is
//! `broker::fetch_sessions`, one per shard; a session lives on the shard of the
//! connection that made it.
//!
//! | session_id | epoch | what happens                                                   |
//! |------------|-------|----------------------------------------------------------------|
//! | any        | -1    | session_id (if any) closed; full fetch, no session            |
//! | any        | 0     | session_id (if any) closed; full fetch that creates a session |
//! | N          | > 0   | incremental fetch of session N (or a top-level error)         |

use std::collections::HashSet;
use std::time::Instant;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::fetch_sessions::{
    Created, PartitionAnswer, PartitionFetch, PartitionKey, Refusal, FINAL_EPOCH, INITIAL_EPOCH,
};
use crate::broker::shard::Shard;
use crate::metrics::{self, Counter};
use crate::protocol::errors as ec;

/// Fetch v7 added session_id, session_epoch and forgotten_topics_data.
pub const SESSION_VERSION_MIN: i16 = 7;
/// Fetch v13 names topics by id.
const TOPIC_ID_VERSION_MIN: i16 = 13;

/// What a Fetch is, session-wise.
#[derive(Debug)]
pub enum Context {
    /// No session (v0-6, epoch -1): every partition of the request is answered.
    Sessionless,
    /// A full fetch with epoch 0: once answered, a session of its partitions is made.
    Create { privileged: bool },
    /// An incremental fetch of session `id`, which named `named` (added or updated).
    Incremental {
        id: i32,
        named: HashSet<PartitionKey>,
    },
}

/// The request's session context and, for an incremental fetch, the topics to read
/// (all of the session's partitions at their stored fetch offsets); `Err` is the
/// top-level error to answer with, nothing read.
///
/// `privileged`: a follower's fetch, allowed as one (Kafka ranks its sessions above
/// consumers' when the cache is full).
pub fn begin(
    shard: &Shard,
    version: i16,
    req: &FetchRequest,
    privileged: bool,
) -> Result<(Context, Option<Vec<FetchTopic>>), i16> {
    if version < SESSION_VERSION_MIN {
        return Ok((Context::Sessionless, None));
    }
    let (id, epoch) = (req.session_id, req.session_epoch);
    let mut cache = shard.fetch_sessions.borrow_mut();
    if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
        // Kafka: any session a full fetch names is closed.
        if id != 0 {
            cache.remove(id);
        }
        if epoch == FINAL_EPOCH {
            return Ok((Context::Sessionless, None));
        }
        return Ok((Context::Create { privileged }, None));
    }
    let updates = requested(&req.topics);
    let named = updates.iter().map(|(k, _)| k.clone()).collect();
    let forgotten: Vec<PartitionKey> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|&partition| PartitionKey {
                topic: t.topic.0.to_string(),
                topic_id: *t.topic_id.as_bytes(),
                partition,
            })
        })
        .collect();
    let uses_ids = version >= TOPIC_ID_VERSION_MIN;
    let parts = cache
        .incremental(Instant::now(), (id, epoch), uses_ids, updates, &forgotten)
        .map_err(|r| match r {
            Refusal::NotFound => ec::FETCH_SESSION_ID_NOT_FOUND,
            Refusal::InvalidEpoch => ec::INVALID_FETCH_SESSION_EPOCH,
            Refusal::TopicIdUsage => ec::FETCH_SESSION_TOPIC_ID_ERROR,
        })?;
    metrics::add(Counter::IncrementalFetches, 1);
    Ok((Context::Incremental { id, named }, Some(topics_of(parts))))
}

/// Every partition of `topics` with what it asks, in request order (the order the
/// handler's `resolve` reads them in).
pub fn requested(topics: &[FetchTopic]) -> Vec<(PartitionKey, PartitionFetch)> {
    topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let key = PartitionKey {
                    topic: t.topic.0.to_string(),
                    topic_id: *t.topic_id.as_bytes(),
                    partition: p.partition,
                };
                let fetch = PartitionFetch {
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes,
                    log_start_offset: p.log_start_offset,
                    current_leader_epoch: p.current_leader_epoch,
                };
                (key, fetch)
            })
        })
        .collect()
}

/// The session's partitions as request topics: each topic once, where its first
/// partition is in the session's order.
fn topics_of(parts: Vec<(PartitionKey, PartitionFetch)>) -> Vec<FetchTopic> {
    let mut topics: Vec<FetchTopic> = Vec::new();
    let mut index: std::collections::HashMap<(String, [u8; 16]), usize> =
        std::collections::HashMap::new();
    for (key, fetch) in parts {
        let i = *index
            .entry((key.topic.clone(), key.topic_id))
            .or_insert_with(|| {
                topics.push(
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(key.topic.clone())))
                        .with_topic_id(uuid::Uuid::from_bytes(key.topic_id)),
                );
                topics.len() - 1
            });
        topics[i].partitions.push(
            FetchPartition::default()
                .with_partition(key.partition)
                .with_fetch_offset(fetch.fetch_offset)
                .with_partition_max_bytes(fetch.partition_max_bytes)
                .with_log_start_offset(fetch.log_start_offset)
                .with_current_leader_epoch(fetch.current_leader_epoch),
        );
    }
    topics
}

/// After the read: the session id to answer and, for an incremental fetch, which
/// partitions (in `topics`' order) the response holds (`None`: all). A full fetch with
/// epoch 0 makes its session here, with these answers as what the client was sent.
pub fn finish(
    shard: &Shard,
    version: i16,
    context: Context,
    topics: &[FetchTopic],
    answers: Vec<PartitionAnswer>,
) -> (i32, Option<Vec<bool>>) {
    let mut cache = shard.fetch_sessions.borrow_mut();
    match context {
        Context::Sessionless => (0, None),
        Context::Create { privileged } => {
            let parts = requested(topics);
            let keyed: Vec<(PartitionKey, PartitionAnswer)> =
                parts.iter().map(|(k, _)| k.clone()).zip(answers).collect();
            let uses_ids = version >= TOPIC_ID_VERSION_MIN;
            match cache.create(Instant::now(), privileged, uses_ids, parts) {
                Created::Yes { id, evicted } => {
                    metrics::add(Counter::FetchSessionsCreated, 1);
                    if evicted {
                        metrics::add(Counter::FetchSessionsEvicted, 1);
                    }
                    cache.answer(id, &keyed, &HashSet::new());
                    (id, None)
                }
                Created::Refused => (0, None),
            }
        }
        Context::Incremental { id, named } => {
            let keyed: Vec<(PartitionKey, PartitionAnswer)> = requested(topics)
                .into_iter()
                .map(|(k, _)| k)
                .zip(answers)
                .collect();
            // Gone (emptied by this request, or closed meanwhile): answered
            // sessionless, with every partition read.
            match cache.answer(id, &keyed, &named) {
                Some(keep) => (id, Some(keep)),
                None => (0, None),
            }
        }
    }
}
