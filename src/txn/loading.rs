//! Which `__transaction_state` partitions a shard coordinates, in a cluster: the same
//! pattern as `groups::loading` for `__consumer_offsets`. The topic is a replicated
//! quorum topic and a transactional id's coordinator is the leader of its partition.
//! When this broker becomes leader, the owning shard loads the partition (replays it to
//! the written end; requests for its ids answer COORDINATOR_LOAD_IN_PROGRESS
//! meanwhile), then completes what the previous coordinator left in Prepare* and
//! aborts Ongoing transactions past their timeout (`coordinator::sweep`). When it stops
//! leading, the shard forgets the partition's ids and answers NOT_COORDINATOR, so
//! clients look the coordinator up again. States: `groups::ownership`.
//!
//! A single broker (or a member whose own, unreplicated topic predates replication)
//! replays its partitions at start-up (`coordinator::replay`) and coordinates them all.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use super::{log as txn_log, txn_partition, TXN_STATE_TOPIC};
use crate::broker::shard::Shard;

/// The replicated `__transaction_state`'s partition count, or None when the topic is
/// absent or this broker's own.
fn replicated_partitions(shard: &Shard) -> Option<i32> {
    let snap = shard.broker.metadata.snapshot();
    snap.topic(TXN_STATE_TOPIC)
        .filter(|t| !t.replication.is_empty())
        .map(|t| t.partitions.len() as i32)
}

/// Whether this (home) shard may serve `transactional_id` now: in a cluster only while
/// this broker leads the id's partition and has loaded it.
pub fn check(shard: &Shard, transactional_id: &str) -> Result<(), i16> {
    match replicated_partitions(shard) {
        Some(count) => shard
            .txn
            .borrow()
            .ownership
            .check(txn_partition(transactional_id, count)),
        None => Ok(()),
    }
}

/// The coordinator epoch markers carry for `transactional_id`: the leader epoch its
/// partition was loaded at (0 on a single broker). A partition leader keeps the epoch
/// of the last marker, so a deposed coordinator's late marker is recognisable.
pub fn coordinator_epoch(shard: &Shard, transactional_id: &str) -> i32 {
    replicated_partitions(shard)
        .and_then(|count| {
            shard
                .txn
                .borrow()
                .ownership
                .epoch(txn_partition(transactional_id, count))
        })
        .unwrap_or(0)
}

/// Takes up (or gives up) the replicated `__transaction_state` partitions this shard
/// owns, as the topic table now names their leaders.
pub fn follow_leadership(shard: &Rc<Shard>) {
    let snap = shard.broker.metadata.snapshot();
    let Some(topic) = snap
        .topic(TXN_STATE_TOPIC)
        .filter(|t| !t.replication.is_empty())
    else {
        return;
    };
    let me = shard.broker.config.node_id;
    let count = topic.partitions.len() as i32;
    let led: HashMap<i32, i32> = topic
        .partitions
        .iter()
        .zip(topic.replication.iter())
        .enumerate()
        .filter(|(_, (placement, set))| placement.shard == shard.id && set.leader == me)
        .filter(|(p, _)| shard.partition_log(TXN_STATE_TOPIC, *p as i32).is_some())
        .map(|(p, (_, set))| (p as i32, set.leader_epoch))
        .collect();
    let handover = {
        let mut txn = shard.txn.borrow_mut();
        let handover = txn.ownership.follow(&led);
        for &p in &handover.unload {
            let forgotten = txn.unload(&shard.broker.txn_partitions, |id| {
                txn_partition(id, count) == p
            });
            tracing::info!(
                partition = p,
                transactional_ids = forgotten,
                "no longer the transaction coordinator for {TXN_STATE_TOPIC}-{p}"
            );
        }
        handover
    };
    // Spawned with no borrow held: glommio runs a spawned task at once.
    for (p, epoch) in handover.load {
        crate::runtime::spawn_local(load(shard.clone(), p, epoch, count));
    }
}

/// Loads led partition `p` at leader epoch `epoch`, then completes or aborts what the
/// previous coordinator left in flight.
async fn load(shard: Rc<Shard>, p: i32, epoch: i32, count: i32) {
    let started = Instant::now();
    let Some(log) = shard.partition_log(TXN_STATE_TOPIC, p) else {
        shard.txn.borrow_mut().ownership.abandon(p, epoch);
        return;
    };
    let result = txn_log::read_partition(&log, p, true).await;
    {
        let mut txn = shard.txn.borrow_mut();
        let open = &shard.broker.txn_partitions;
        let mine = |id: &str| txn_partition(id, count) == p;
        match result {
            Ok(records) if txn.ownership.is_loading(p, epoch) => {
                let n = records.len();
                for (id, m) in records {
                    txn.install(open, &id, m);
                }
                txn.ownership.finish_load(p, epoch);
                tracing::info!(
                    partition = p,
                    leader_epoch = epoch,
                    records = n,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "loaded {TXN_STATE_TOPIC}-{p}: now the transaction coordinator of its ids"
                );
            }
            // Leadership moved on while loading: `follow_leadership` unloaded it.
            Ok(_) => {
                txn.unload(open, mine);
                return;
            }
            Err(e) => {
                txn.ownership.abandon(p, epoch);
                txn.unload(open, mine);
                tracing::error!(partition = p, "cannot load {TXN_STATE_TOPIC}-{p}: {e}");
                return;
            }
        }
    }
    // Prepare* left by the previous coordinator: markers, then Complete*, now rather
    // than at the next periodic sweep.
    super::coordinator::sweep(&shard).await;
}
