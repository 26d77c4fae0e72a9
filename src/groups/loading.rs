//! Bringing groups into a shard's memory from `__consumer_offsets`: every owned
//! partition at start-up (a single broker), or, in a cluster, a partition when this
//! broker becomes its leader (`follow_leadership`, after each change of the topic
//! table), and forgetting a partition's groups when it stops leading it. See
//! `ownership` for the states.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use super::offsets::{self, Replayed, OFFSETS_TOPIC};
use super::offsets_partition;
use crate::broker::shard::Shard;
use crate::storage::batch::BatchHeader;
use crate::storage::log::PartitionLog;
use crate::storage::producer_state::{control_type, CONTROL_TYPE_COMMIT};

/// Bytes read per step when replaying `__consumer_offsets`.
const REPLAY_READ_BYTES_MAX: usize = 1 << 20;

/// How far a replay reads.
#[derive(Clone, Copy)]
enum Until {
    /// The high watermark: a broker's own offsets topic at start-up.
    HighWatermark,
    /// The written end: a new leader's log is the truth from its election on, past its
    /// high watermark too (as Kafka's coordinator loads its whole log).
    WrittenEnd { epoch: i32 },
}

/// Rebuilds committed offsets and groups from this shard's partitions of a broker's own
/// (unreplicated) `__consumer_offsets` at start-up. Replicated partitions load when
/// this broker leads them (`follow_leadership`).
pub async fn replay(shard: &Rc<Shard>) -> Result<usize, String> {
    let snap = shard.broker.metadata.snapshot();
    let Some(topic) = snap.topic(OFFSETS_TOPIC) else {
        return Ok(0);
    };
    if !topic.replication.is_empty() {
        return Ok(0);
    }
    let mut replayed = 0;
    let mut partitions = Vec::new();
    for (p, placement) in topic.partitions.iter().enumerate() {
        if placement.shard != shard.id {
            continue;
        }
        let Some(log) = shard.partition_log(OFFSETS_TOPIC, p as i32) else {
            continue;
        };
        replayed += replay_partition(shard, &log, p as i32, Until::HighWatermark).await?;
        partitions.push(p as i32);
    }
    let count = topic.partitions.len() as i32;
    shard
        .groups
        .borrow_mut()
        .finish_replay(|id| partitions.contains(&offsets_partition(id, count)));
    shard.groups.borrow_mut().tick(Instant::now());
    Ok(replayed)
}

/// Takes up (or gives up) the coordination of the replicated offsets partitions this
/// shard owns, as the topic table now names their leaders: loads newly led ones in the
/// background, forgets the groups of those led elsewhere now.
pub fn follow_leadership(shard: &Rc<Shard>) {
    let snap = shard.broker.metadata.snapshot();
    let Some(topic) = snap
        .topic(OFFSETS_TOPIC)
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
        .filter(|(p, _)| shard.partition_log(OFFSETS_TOPIC, *p as i32).is_some())
        .map(|(p, (_, set))| (p as i32, set.leader_epoch))
        .collect();
    let handover = {
        let mut groups = shard.groups.borrow_mut();
        let handover = groups.ownership.follow(&led);
        for &p in &handover.unload {
            let forgotten = groups.unload(|id| offsets_partition(id, count) == p);
            shard
                .txn_offsets
                .borrow_mut()
                .drop_groups(|id| offsets_partition(id, count) == p);
            tracing::info!(
                partition = p,
                groups = forgotten,
                "no longer the group coordinator for {OFFSETS_TOPIC}-{p}"
            );
        }
        handover
    };
    // Spawned with no borrow held: glommio runs a spawned task at once.
    for (p, epoch) in handover.load {
        crate::runtime::spawn_local(load(shard.clone(), p, epoch, count));
    }
}

/// Loads led partition `p` at leader epoch `epoch`; groups of `p` are served once done.
async fn load(shard: Rc<Shard>, p: i32, epoch: i32, count: i32) {
    let started = Instant::now();
    let Some(log) = shard.partition_log(OFFSETS_TOPIC, p) else {
        shard.groups.borrow_mut().ownership.abandon(p, epoch);
        return;
    };
    let result = replay_partition(&shard, &log, p, Until::WrittenEnd { epoch }).await;
    let mut groups = shard.groups.borrow_mut();
    match result {
        Ok(records) if groups.ownership.finish_load(p, epoch) => {
            groups.finish_replay(|id| offsets_partition(id, count) == p);
            tracing::info!(
                partition = p,
                leader_epoch = epoch,
                records,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "loaded {OFFSETS_TOPIC}-{p}: now the group coordinator of its groups"
            );
        }
        // Leadership moved on while loading: `follow_leadership` unloaded it.
        Ok(_) => {
            groups.unload(|id| offsets_partition(id, count) == p);
            shard
                .txn_offsets
                .borrow_mut()
                .drop_groups(|id| offsets_partition(id, count) == p);
        }
        Err(e) => {
            groups.ownership.abandon(p, epoch);
            groups.unload(|id| offsets_partition(id, count) == p);
            shard
                .txn_offsets
                .borrow_mut()
                .drop_groups(|id| offsets_partition(id, count) == p);
            tracing::error!(partition = p, "cannot load {OFFSETS_TOPIC}-{p}: {e}");
        }
    }
}

/// Applies partition `p`'s records to the shard's coordinator, from the log start to
/// `until`. A leader's load stops as soon as it is no longer wanted.
async fn replay_partition(
    shard: &Rc<Shard>,
    log: &PartitionLog,
    p: i32,
    until: Until,
) -> Result<usize, String> {
    let mut replayed = 0;
    let mut offset = log.log_start_offset();
    loop {
        let end = match until {
            Until::HighWatermark => log.high_watermark(),
            Until::WrittenEnd { .. } => log.written_offset(),
        };
        if offset >= end {
            return Ok(replayed);
        }
        let read = match until {
            Until::HighWatermark => log.read(offset, REPLAY_READ_BYTES_MAX).await,
            Until::WrittenEnd { .. } => log.read_replica(offset, REPLAY_READ_BYTES_MAX).await,
        }
        .map_err(|e| format!("cannot read {OFFSETS_TOPIC}-{p}: {e}"))?;
        if read.batches.is_empty() {
            return Ok(replayed);
        }
        if let Until::WrittenEnd { epoch } = until {
            if !shard.groups.borrow().ownership.is_loading(p, epoch) {
                return Ok(replayed);
            }
        }
        let mut coord = shard.groups.borrow_mut();
        let mut pending = shard.txn_offsets.borrow_mut();
        let now_ms = crate::util::now_ms();
        for batch in read.batches {
            let header = BatchHeader::parse(&batch)
                .ok_or_else(|| format!("{OFFSETS_TOPIC}-{p}: bad batch at {offset}"))?;
            offset = header.last_offset() + 1;
            // A transaction's marker: its offsets held below are committed or dropped.
            if header.is_control() {
                let commit = control_type(&header, &batch) == Some(CONTROL_TYPE_COMMIT);
                let taken = pending.take(header.producer_id, |g| {
                    super::service::group_partition(shard, g) == p
                });
                for (group, held) in taken.into_iter().filter(|_| commit) {
                    let held = held.into_iter().map(|(k, c)| (k, Some(c))).collect();
                    coord.store_offsets(&group, held);
                }
                continue;
            }
            let transactional = header.is_transactional();
            let records =
                offsets::decode_all(batch).map_err(|e| format!("{OFFSETS_TOPIC}-{p}: {e}"))?;
            for r in records {
                replayed += 1;
                match r {
                    // TxnOffsetCommit's offsets: held until their marker.
                    Replayed::Offset(r) if transactional => {
                        if let Some(value) = r.value {
                            let staged = pending.stage(
                                header.producer_id,
                                &r.group,
                                vec![((r.topic, r.partition), value)],
                            );
                            if staged.is_err() {
                                tracing::warn!(group = %r.group, producer_id = header.producer_id, "too many pending transactional offsets in the log; dropped");
                            }
                        }
                    }
                    Replayed::Offset(r) => {
                        coord.store_offsets(&r.group, vec![((r.topic, r.partition), r.value)])
                    }
                    Replayed::Group(group, record) => {
                        coord.replay_group_record(&group, record, Instant::now(), now_ms)
                    }
                }
            }
        }
    }
}
