//! Completing a transaction on its partitions: the commit or abort decision goes to
//! every partition in the transaction.
//!
//! For a `__consumer_offsets` partition the marker applies (commit) or drops (abort)
//! the producer's pending transactional offsets of that partition's groups, on the
//! partition's home shard (`groups::txn_offsets::complete`).

use std::rc::Rc;

use futures::FutureExt;

use super::state::{TxnMetadata, TxnState};
use crate::broker::shard::Shard;
use crate::groups::offsets::OFFSETS_TOPIC;
use crate::protocol::errors as ec;

/// Sends the outcome of the Prepare* transaction `m` to each of its partitions. Err is
/// the first failure; the caller retries the whole set (each step is idempotent).
pub async fn write(shard: &Rc<Shard>, m: &TxnMetadata) -> Result<(), i16> {
    let commit = m.state == TxnState::PrepareCommit;
    for (topic, partition) in &m.partitions {
        if topic == OFFSETS_TOPIC {
            complete_offsets(shard, *partition, m.producer_id, commit).await?;
        }
    }
    Ok(())
}

async fn complete_offsets(
    shard: &Rc<Shard>,
    partition: i32,
    producer_id: i64,
    commit: bool,
) -> Result<(), i16> {
    let owner = shard
        .broker
        .metadata
        .snapshot()
        .placement(OFFSETS_TOPIC, partition)
        .map(|p| p.shard)
        .ok_or(ec::UNKNOWN_TOPIC_OR_PARTITION)?;
    let code = shard
        .run_on(owner, move |s| {
            async move {
                    crate::groups::txn_offsets::complete(&s, partition, producer_id, commit).await
                }
                .boxed_local()
        })
        .await
        .unwrap_or(ec::COORDINATOR_NOT_AVAILABLE);
    if code == ec::NONE {
        Ok(())
    } else {
        Err(code)
    }
}
