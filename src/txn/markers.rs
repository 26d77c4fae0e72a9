//! Completing a transaction on its partitions: the COMMIT or ABORT decision goes to
//! every partition in the transaction.
//!
//! `write_local` is the one path that applies markers to partitions this broker leads,
//! each on its owner shard, on the produce path's log (`PartitionLog::append_marker`,
//! then fdatasync). The coordinator calls it for its own partitions, and the
//! WriteTxnMarkers handler calls it for markers another broker's coordinator sends: in
//! a cluster `write` sends each other leader its partitions' markers with that API.
//!
//! For a `__consumer_offsets` partition the marker is written there too and applies
//! (commit) or drops (abort) the producer's pending transactional offsets of that
//! partition's groups, on the partition's home shard (`groups::txn_offsets::complete`).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, ProducerId, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};

use futures::future::join_all;
use futures::FutureExt;

use super::state::{TxnMetadata, TxnState};
use crate::broker::shard::Shard;
use crate::groups::offsets::OFFSETS_TOPIC;
use crate::protocol::errors as ec;
use crate::replication::client::Connection;

/// How many rounds `write` tries before leaving the rest to the sweep; between rounds
/// leaders are looked up again (a partition may be moving to a new leader).
const MARKER_ROUNDS_MAX: usize = 8;
/// The pause between rounds.
const MARKER_RETRY_PAUSE: Duration = Duration::from_millis(250);
/// Bound on connecting to a partition leader and on one WriteTxnMarkers exchange.
const MARKER_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The WriteTxnMarkers version brokers speak to each other (the only one served).
const WRITE_TXN_MARKERS_VERSION: i16 = 1;

/// One marker for a set of partitions.
#[derive(Debug, Clone)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Sends the outcome of the Prepare* transaction `m` (of `transactional_id`) to each of
/// its partitions: this broker's own through `write_local`, the others' to their
/// current leader with WriteTxnMarkers, batched per broker. Partitions that fail with a
/// retriable error (leader moved, broker unreachable) are tried again with leaders
/// looked up anew, for a few rounds. Err is a failure left at the end; the caller
/// retries the whole set later (a repeated marker is harmless: it ends no transaction
/// a second time).
pub async fn write(shard: &Rc<Shard>, transactional_id: &str, m: &TxnMetadata) -> Result<(), i16> {
    let marker = Marker {
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        commit: m.state == TxnState::PrepareCommit,
        coordinator_epoch: super::loading::coordinator_epoch(shard, transactional_id),
    };
    let mut pending: Vec<(String, i32)> = m.partitions.iter().cloned().collect();
    let mut last = ec::NONE;
    for round in 0..MARKER_ROUNDS_MAX {
        if round > 0 {
            crate::runtime::sleep(MARKER_RETRY_PAUSE).await;
        }
        let mut failed = Vec::new();
        for ((topic, partition), code) in write_anywhere(shard, &marker, pending).await {
            // A partition deleted since it joined the transaction has nothing to mark.
            if code != ec::NONE && code != ec::UNKNOWN_TOPIC_OR_PARTITION {
                tracing::debug!(%topic, partition, code, producer_id = m.producer_id, round, "transaction marker not written yet");
                last = code;
                failed.push((topic, partition));
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        pending = failed;
    }
    tracing::warn!(
        transactional_id,
        partitions = ?pending,
        code = last,
        "transaction markers not written; the coordinator's sweep retries them"
    );
    Err(last)
}

/// One round of `write`: each partition goes to its leader as the metadata snapshot
/// names it now. A code per partition.
async fn write_anywhere(
    shard: &Rc<Shard>,
    marker: &Marker,
    partitions: Vec<(String, i32)>,
) -> Vec<((String, i32), i16)> {
    let snap = shard.broker.metadata.snapshot();
    let me = shard.broker.config.node_id;
    let mut local = Vec::new();
    let mut remote: HashMap<i32, Vec<(String, i32)>> = HashMap::new();
    let mut out = Vec::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        let leader = snap.topic(&topic).map(|t| {
            t.replication
                .get(partition as usize)
                .map_or(me, |set| set.leader)
        });
        match leader {
            // Unknown here: `write_local` answers UNKNOWN_TOPIC_OR_PARTITION.
            None => local.push((topic, partition)),
            Some(l) if l == me => local.push((topic, partition)),
            Some(l) if l < 0 => out.push(((topic, partition), ec::LEADER_NOT_AVAILABLE)),
            Some(l) => remote.entry(l).or_default().push((topic, partition)),
        }
    }
    let sends = remote
        .into_iter()
        .map(|(node, parts)| send(shard, node, marker, parts));
    let (mine, theirs) = futures::join!(write_local(shard, marker, local), join_all(sends));
    out.extend(mine);
    out.extend(theirs.into_iter().flatten());
    out
}

/// WriteTxnMarkers to broker `node` for `partitions`; a connection failure counts as
/// NOT_LEADER_OR_FOLLOWER for all of them, so they are retried.
async fn send(
    shard: &Rc<Shard>,
    node: i32,
    marker: &Marker,
    partitions: Vec<(String, i32)>,
) -> Vec<((String, i32), i16)> {
    let unreachable = |partitions: Vec<(String, i32)>, why: String| {
        tracing::debug!(node, "cannot send transaction markers: {why}");
        partitions
            .into_iter()
            .map(|p| (p, ec::NOT_LEADER_OR_FOLLOWER))
            .collect::<Vec<_>>()
    };
    let Some(addr) = crate::replication::client::broker_addr(shard, node) else {
        return unreachable(partitions, "not live".into());
    };
    let mut by_topic: Vec<WritableTxnMarkerTopic> = Vec::new();
    for (topic, partition) in &partitions {
        match by_topic.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(t) => t.partition_indexes.push(*partition),
            None => {
                let mut t = WritableTxnMarkerTopic::default();
                t.name = crate::handlers::topic_name(topic);
                t.partition_indexes.push(*partition);
                by_topic.push(t);
            }
        }
    }
    let mut w = WritableTxnMarker::default();
    w.producer_id = ProducerId(marker.producer_id);
    w.producer_epoch = marker.producer_epoch;
    w.transaction_result = marker.commit;
    w.coordinator_epoch = marker.coordinator_epoch;
    w.topics = by_topic;
    let mut req = WriteTxnMarkersRequest::default();
    req.markers.push(w);
    let mut conn = match Connection::connect(&addr, MARKER_CALL_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => return unreachable(partitions, e.why),
    };
    let resp: WriteTxnMarkersResponse = match conn
        .call(
            ApiKey::WriteTxnMarkers,
            WRITE_TXN_MARKERS_VERSION,
            &req,
            MARKER_CALL_TIMEOUT,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return unreachable(partitions, e),
    };
    // A partition the answer leaves out is retried.
    let mut codes: HashMap<(String, i32), i16> = HashMap::new();
    for t in resp.markers.iter().flat_map(|m| m.topics.iter()) {
        for p in &t.partitions {
            codes.insert((t.name.to_string(), p.partition_index), p.error_code);
        }
    }
    partitions
        .into_iter()
        .map(|p| {
            let code = codes.get(&p).copied().unwrap_or(ec::NOT_LEADER_OR_FOLLOWER);
            (p, code)
        })
        .collect()
}

/// Applies `marker` to `partitions` of this broker, each on its owner shard, and waits
/// until every marker is on disk. A code per partition, in the order given.
pub async fn write_local(
    shard: &Rc<Shard>,
    marker: &Marker,
    partitions: Vec<(String, i32)>,
) -> Vec<((String, i32), i16)> {
    let snap = shard.broker.metadata.snapshot();
    let me = shard.broker.config.node_id;
    let mut codes = vec![ec::NONE; partitions.len()];
    let mut by_owner: HashMap<usize, Vec<(usize, String, i32)>> = HashMap::new();
    for (i, (topic, partition)) in partitions.iter().enumerate() {
        match snap.route(topic, *partition, me) {
            Ok(pl) => by_owner
                .entry(pl.shard)
                .or_default()
                .push((i, topic.clone(), *partition)),
            Err(code) => codes[i] = code,
        }
    }
    let waits = by_owner.into_iter().map(|(owner, items)| {
        let marker = marker.clone();
        shard
            .run_on(owner, move |s| {
                async move { on_owner(&s, &marker, items).await }.boxed_local()
            })
            .map(|r| r.unwrap_or_default())
    });
    for results in join_all(waits).await {
        for (i, code) in results {
            codes[i] = code;
        }
    }
    partitions.into_iter().zip(codes).collect()
}

/// On the owner shard: appends each partition's marker, then waits for them all.
async fn on_owner(
    shard: &Rc<Shard>,
    marker: &Marker,
    items: Vec<(usize, String, i32)>,
) -> Vec<(usize, i16)> {
    let mut out = Vec::with_capacity(items.len());
    let mut durable = Vec::new();
    // The transaction is over here: the next one is verified with its coordinator again.
    shard.broker.txn_partitions.forget(marker.producer_id);
    for (i, topic, partition) in items {
        if topic == OFFSETS_TOPIC {
            let code = crate::groups::txn_offsets::complete(shard, partition, marker).await;
            out.push((i, code));
            continue;
        }
        let Some(log) = shard.partition_log(&topic, partition) else {
            out.push((i, ec::UNKNOWN_TOPIC_OR_PARTITION));
            continue;
        };
        match log.append_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.commit,
            marker.coordinator_epoch,
        ) {
            Ok(info) => durable.push((i, log, info.last_offset)),
            Err(e) => out.push((i, e.kafka_error_code())),
        }
    }
    for (i, log, offset) in durable {
        let code = match log.wait_durable(offset).await {
            Ok(()) => ec::NONE,
            Err(e) => e.kafka_error_code(),
        };
        out.push((i, code));
    }
    out
}
