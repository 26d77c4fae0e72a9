//! Completing a transaction on its partitions: the COMMIT or ABORT decision goes to
//! every partition in the transaction.
//!
//! `write_local` is the one path that applies markers to partitions this broker leads,
//! each on its owner shard, on the produce path's log (`PartitionLog::append_marker`,
//! then fdatasync). The coordinator calls it for its own partitions, and the
//! WriteTxnMarkers handler calls it for markers another broker's coordinator sends, so
//! in a cluster the coordinator reaches a partition leader elsewhere with that API.
//!
//! For a `__consumer_offsets` partition the marker applies (commit) or drops (abort) the
//! producer's pending transactional offsets of that partition's groups, on the
//! partition's home shard (`groups::txn_offsets::complete`); no control batch is
//! written there.

use std::collections::HashMap;
use std::rc::Rc;

use futures::future::join_all;
use futures::FutureExt;

use super::state::{TxnMetadata, TxnState};
use crate::broker::shard::Shard;
use crate::groups::offsets::OFFSETS_TOPIC;
use crate::protocol::errors as ec;

/// Coordinator epochs are not tracked yet (one coordinator per id, no failover): every
/// marker carries this one.
pub const COORDINATOR_EPOCH: i32 = 0;

/// One marker for a set of partitions.
#[derive(Debug, Clone)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Sends the outcome of the Prepare* transaction `m` to each of its partitions. Err is
/// the first failure; the caller retries the whole set (a repeated marker is harmless:
/// it ends no transaction a second time).
pub async fn write(shard: &Rc<Shard>, m: &TxnMetadata) -> Result<(), i16> {
    let marker = Marker {
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        commit: m.state == TxnState::PrepareCommit,
        coordinator_epoch: COORDINATOR_EPOCH,
    };
    let partitions: Vec<(String, i32)> = m.partitions.iter().cloned().collect();
    for ((topic, partition), code) in write_local(shard, &marker, partitions).await {
        // A partition deleted since it joined the transaction has nothing to mark.
        if code != ec::NONE && code != ec::UNKNOWN_TOPIC_OR_PARTITION {
            tracing::warn!(%topic, partition, code, producer_id = m.producer_id, "transaction marker not written");
            return Err(code);
        }
    }
    Ok(())
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
    for (i, topic, partition) in items {
        if topic == OFFSETS_TOPIC {
            let code = crate::groups::txn_offsets::complete(
                shard,
                partition,
                marker.producer_id,
                marker.commit,
            )
            .await;
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
