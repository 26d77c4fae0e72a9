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
use kafka_protocol::messages::{ApiKey, FetchRequest};

use super::{decode, Outcome, RequestError};
use crate::broker::router::{FetchItem, FetchResult, ShardMsg};
use crate::broker::shard::Shard;
use crate::metrics::{self, Counter, Stage};
use crate::protocol::errors as ec;
use crate::protocol::fetch::{
    encode_fetch_response, FetchPartitionOut, FetchResponseParts, FetchTopicOut,
    RECORD_BATCH_VERSION_MIN,
};
use crate::security::acl::{Access, Operation};
use crate::storage::legacy_format::{batches_to_message_set, DownConvertBudget};
use crate::storage::records::inflated_bytes_max;

/// Upper bound on how long one Fetch may be held, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

/// A partition of the request: where it is owned, or the error to answer with.
struct Wanted {
    topic: usize,
    item: FetchItem,
    owner: Result<usize, i16>,
}

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: bytes::BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: FetchRequest = decode(ApiKey::Fetch, version, body)?;
    let started = Instant::now();
    let max_wait = Duration::from_millis((req.max_wait_ms.max(0) as u64).min(FETCH_WAIT_MS_MAX));
    let min_bytes = req.min_bytes.max(0) as usize;
    // Kafka's fetch.max.bytes caps what a consumer may ask one response to hold.
    let response_bytes_max =
        (req.max_bytes.max(0) as usize).min(shard.broker.config.fetch_bytes_max);
    let (mut topics, mut wanted) = resolve(&shard, version, &req, response_bytes_max, &access);
    let mut results = fetch_round(&shard, &wanted, response_bytes_max).await;
    let mut wait_started = None;
    loop {
        let bytes: usize = results.iter().map(FetchResult::bytes).sum();
        let errors = results.iter().any(|r| r.error_code != ec::NONE);
        let elapsed = started.elapsed();
        if bytes >= min_bytes || errors || elapsed >= max_wait {
            break;
        }
        // Park on the owners; the first to see new data (or the deadline) answers.
        for (w, r) in wanted.iter_mut().zip(&results) {
            w.item.wait_past = w.item.offset.max(r.high_watermark);
        }
        if wait_started.is_none() {
            wait_started = metrics::now();
        }
        for (i, r) in wait_round(&shard, &wanted, response_bytes_max, max_wait - elapsed).await {
            results[i] = r;
        }
    }
    metrics::record_since(Stage::FetchWait, wait_started);
    trim_to(&mut results, response_bytes_max);
    count(&results);
    if version < RECORD_BATCH_VERSION_MIN {
        convert_down(
            &shard,
            version,
            &topics,
            &wanted,
            &mut results,
            response_bytes_max,
        );
    }
    for (w, r) in wanted.iter().zip(results) {
        topics[w.topic].partitions.push(FetchPartitionOut {
            partition_index: w.item.partition,
            error_code: r.error_code,
            high_watermark: r.high_watermark,
            last_stable_offset: r.last_stable_offset,
            log_start_offset: r.log_start_offset,
            preferred_read_replica: -1,
            aborted: r.aborted,
            records: r.batches,
        });
    }
    let parts = FetchResponseParts {
        throttle_time_ms: 0,
        error_code: ec::NONE,
        session_id: 0,
        topics,
    };
    let mut out = Vec::with_capacity(parts.topics.len() * 2 + 1);
    encode_fetch_response(version, &parts, &mut out).map_err(|e| RequestError::Encode {
        api: ApiKey::Fetch,
        version,
        why: e.to_string(),
    })?;
    Ok(Outcome::Respond(out))
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

/// Counts the record bytes returned and each partition's error code.
fn count(results: &[FetchResult]) {
    if !metrics::enabled() {
        return;
    }
    let bytes: usize = results.iter().map(FetchResult::bytes).sum();
    metrics::add(Counter::FetchedBytes, bytes as u64);
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
    response_bytes_max: usize,
    access: &Access,
) -> (Vec<FetchTopicOut>, Vec<Wanted>) {
    let snap = shard.broker.metadata.snapshot();
    // A follower names itself (in the body before v15, in ReplicaState from v15); a
    // consumer sends -1. Only a cluster member's fetch is a replica fetch.
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let replica = (replica_id >= 0 && shard.broker.cluster.is_some()).then_some(replica_id);
    // isolation_level is in the request from v4 (READ_UNCOMMITTED before).
    let read_committed = version >= 4 && req.isolation_level == 1;
    // Kafka: a follower needs CLUSTER_ACTION on the cluster, a consumer READ per topic;
    // either refusal is TOPIC_AUTHORIZATION_FAILED on the partitions.
    let replica_denied = replica.is_some() && !access.cluster(Operation::ClusterAction);
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut wanted = Vec::new();
    for t in &req.topics {
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
            let owner = meta
                .filter(|_| !denied)
                .map_or(
                    Err(if denied {
                        ec::TOPIC_AUTHORIZATION_FAILED
                    } else {
                        unknown
                    }),
                    |m| {
                        snap.route(&m.name, p.partition, shard.broker.config.node_id)
                            .map_err(|e| {
                                if e == ec::UNKNOWN_TOPIC_OR_PARTITION {
                                    unknown
                                } else {
                                    e
                                }
                            })
                    },
                )
                .map(|pl| pl.shard);
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
                },
                owner,
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

/// Partitions grouped by owner shard, each with its index in `wanted`.
fn by_owner(wanted: &[Wanted]) -> HashMap<usize, Vec<(usize, FetchItem)>> {
    let mut groups: HashMap<usize, Vec<(usize, FetchItem)>> = HashMap::new();
    for (i, w) in wanted.iter().enumerate() {
        if let Ok(owner) = w.owner {
            groups.entry(owner).or_default().push((i, w.item.clone()));
        }
    }
    groups
}

async fn fetch_round(
    shard: &Rc<Shard>,
    wanted: &[Wanted],
    response_bytes_max: usize,
) -> Vec<FetchResult> {
    let mut results: Vec<FetchResult> = wanted
        .iter()
        .map(|w| FetchResult::error(w.owner.err().unwrap_or(ec::NONE)))
        .collect();
    let reads = by_owner(wanted).into_iter().map(|(owner, group)| {
        let (idx, items): (Vec<usize>, Vec<FetchItem>) = group.into_iter().unzip();
        read_on(shard.clone(), owner, items, response_bytes_max, None).map(move |r| (idx, r))
    });
    for (idx, rs) in join_all(reads).await {
        idx.into_iter().zip(rs).for_each(|(i, r)| results[i] = r);
    }
    results
}

/// Sends each owner a waiting read. When the first answers, the other owners' waits are
/// dropped (and end) and those owners get an immediate read instead, so data that
/// arrived there meanwhile goes out in the same response. Results come by index in
/// `wanted`.
async fn wait_round(
    shard: &Rc<Shard>,
    wanted: &[Wanted],
    response_bytes_max: usize,
    wait: Duration,
) -> Vec<(usize, FetchResult)> {
    let groups: Vec<(usize, Vec<usize>, Vec<FetchItem>)> = by_owner(wanted)
        .into_iter()
        .map(|(owner, group)| {
            let (idx, items) = group.into_iter().unzip();
            (owner, idx, items)
        })
        .collect();
    if groups.is_empty() {
        crate::runtime::sleep(wait).await;
        return Vec::new();
    }
    let waits: Vec<LocalBoxFuture<'static, Vec<FetchResult>>> = groups
        .iter()
        .map(|(owner, _, items)| {
            read_on(
                shard.clone(),
                *owner,
                items.clone(),
                response_bytes_max,
                Some(wait),
            )
            .boxed_local()
        })
        .collect();
    let (first, woken, rest) = select_all(waits).await;
    drop(rest);
    let others =
        groups
            .iter()
            .enumerate()
            .filter(|(g, _)| *g != woken)
            .map(|(_, (owner, idx, items))| {
                let idx = idx.clone();
                read_on(
                    shard.clone(),
                    *owner,
                    items.clone(),
                    response_bytes_max,
                    None,
                )
                .map(move |r| (idx, r))
            });
    let mut out: Vec<(usize, FetchResult)> = groups[woken].1.iter().copied().zip(first).collect();
    for (idx, rs) in join_all(others).await {
        out.extend(idx.into_iter().zip(rs));
    }
    out
}

/// Reads `items` on their owner shard, in place when that is this shard.
async fn read_on(
    shard: Rc<Shard>,
    owner: usize,
    items: Vec<FetchItem>,
    response_bytes_max: usize,
    wait: Option<Duration>,
) -> Vec<FetchResult> {
    if owner == shard.id {
        if let Some(wait) = wait {
            shard.wait_for_data_until(&items, wait).await;
        }
        return shard.fetch_local(items, response_bytes_max).await;
    }
    let count = items.len();
    let (reply, rx) = oneshot::channel();
    shard.broker.send(
        owner,
        ShardMsg::Fetch {
            items,
            response_bytes_max,
            wait,
            reply,
        },
    );
    rx.await
        .unwrap_or_else(|_| vec![FetchResult::error(ec::NOT_LEADER_OR_FOLLOWER); count])
}

/// Applies the response-wide `max_bytes`: whole batches in request order until the limit,
/// except that the first batch found is always returned (Kafka's rule, so a consumer is
/// never stuck behind a batch larger than its limit).
fn trim_to(results: &mut [FetchResult], max_bytes: usize) {
    let mut used = 0usize;
    let mut first = true;
    for r in results.iter_mut() {
        let mut keep = 0;
        for b in &r.batches {
            if !first && used + b.len() > max_bytes {
                break;
            }
            used += b.len();
            first = false;
            keep += 1;
        }
        r.batches.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn res(sizes: &[usize]) -> FetchResult {
        FetchResult {
            error_code: 0,
            high_watermark: 0,
            log_start_offset: 0,
            last_stable_offset: 0,
            aborted: Vec::new(),
            batches: sizes.iter().map(|n| Bytes::from(vec![0u8; *n])).collect(),
        }
    }

    #[test]
    fn trim_keeps_first_batch_and_stops_at_limit() {
        let mut r = vec![res(&[]), res(&[100, 10]), res(&[5])];
        trim_to(&mut r, 50);
        assert_eq!(r[1].batches.len(), 1);
        assert_eq!(r[2].batches.len(), 0);
        let mut r = vec![res(&[10, 10]), res(&[10])];
        trim_to(&mut r, 25);
        assert_eq!((r[0].batches.len(), r[1].batches.len()), (2, 0));
    }
}
