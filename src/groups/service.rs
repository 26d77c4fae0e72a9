//! Runs group operations on a group's home shard: the state machine in memory, committed
//! offsets made durable in `__consumer_offsets` before they are acknowledged, and their
//! replay at start-up.
//!
//! The `Coordinator` sits in a `RefCell` on the shard and is never borrowed across an
//! `.await`: an operation takes what it needs (a oneshot receiver, the offsets to write)
//! and then waits with the borrow released.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use futures::FutureExt;

use bytes::Bytes;

use super::coordinator::{CommitCheck, Coordinator, GroupState};
use super::offsets::{self, GroupRecord, OffsetRecord, OFFSETS_TOPIC};
use super::{
    offsets_partition, Committed, ConsumerGroupView, ConsumerMemberView, GroupOp, GroupReply,
    GroupSummary, JoinReply, MemberSummary, SyncReply,
};
use crate::broker::router::ShardMsg;
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::storage::StorageError;

/// How often a shard applies group deadlines (sessions, rebalance timeouts). Session
/// timeouts are at least 6 s, so expiry is late by at most this much.
pub const TICK_INTERVAL: Duration = Duration::from_millis(100);

/// `group`'s partition of `__consumer_offsets`. The topic's own partition count counts,
/// not the configured one: `offsets.topic.num.partitions` only applies at creation.
pub(crate) fn group_partition(shard: &Shard, group: &str) -> i32 {
    let partitions = shard
        .broker
        .metadata
        .snapshot()
        .topic(OFFSETS_TOPIC)
        .map_or(shard.broker.config.offsets_topic_num_partitions, |t| {
            t.partitions.len() as i32
        });
    offsets_partition(group, partitions)
}

/// The shard that is home to `group`: the owner of its `__consumer_offsets` partition.
pub fn home_shard(shard: &Shard, group: &str) -> usize {
    let p = group_partition(shard, group);
    shard
        .broker
        .metadata
        .snapshot()
        .placement(OFFSETS_TOPIC, p)
        .map_or(p as usize % shard.broker.shard_count, |pl| pl.shard)
}

/// Whether this shard may serve `group` now: in a cluster with a replicated offsets
/// topic only while this broker leads the group's partition and has loaded it
/// (`ownership`); a broker's own offsets topic is always served.
pub fn check_coordinator(shard: &Shard, group: &str) -> Result<(), i16> {
    let snap = shard.broker.metadata.snapshot();
    match snap.topic(OFFSETS_TOPIC) {
        Some(t) if !t.replication.is_empty() => {
            let p = offsets_partition(group, t.partitions.len() as i32);
            shard.groups.borrow().ownership.check(p)
        }
        Some(_) => Ok(()),
        None => Err(ec::COORDINATOR_NOT_AVAILABLE),
    }
}

/// The answer for a request whose group was forgotten while it waited: the
/// coordinator moved (NOT_COORDINATOR, so the client looks it up again), or `otherwise`.
fn dropped_code(shard: &Shard, group: &str, otherwise: i16) -> i16 {
    check_coordinator(shard, group).err().unwrap_or(otherwise)
}

/// The broker that coordinates `group`, as FindCoordinator names it: a single broker
/// itself; in a cluster the leader of the group's partition of the replicated offsets
/// topic (or, for an offsets topic of each broker's own, the live broker with the
/// lowest id, so a group's members still meet on one broker).
pub fn coordinator_of(shard: &Shard, group: &str) -> Result<i32, (i16, String)> {
    let config = &shard.broker.config;
    if shard.broker.cluster.is_none() {
        return Ok(config.node_id);
    }
    let snap = shard.broker.metadata.snapshot();
    let Some(t) = snap.topic(OFFSETS_TOPIC) else {
        let rf = config.offsets_topic_replication_factor;
        return Err((
            ec::COORDINATOR_NOT_AVAILABLE,
            format!(
                "{OFFSETS_TOPIC} is not created yet: it needs {rf} live brokers \
                 (offsets.topic.replication.factor)"
            ),
        ));
    };
    if t.replication.is_empty() {
        let (brokers, _) = shard.broker.cluster_view(0);
        return Ok(brokers[0].node_id);
    }
    let p = offsets_partition(group, t.partitions.len() as i32);
    match t.replication.get(p as usize).map(|r| r.leader) {
        Some(leader) if leader >= 0 => Ok(leader),
        _ => Err((
            ec::COORDINATOR_NOT_AVAILABLE,
            format!("{OFFSETS_TOPIC}-{p} has no leader"),
        )),
    }
}

/// Runs `op` for `group` on its home shard (here, or one message away).
pub async fn call(shard: &Rc<Shard>, group: &str, op: GroupOp) -> GroupReply {
    call_on(shard, home_shard(shard, group), op).await
}

pub async fn call_on(shard: &Rc<Shard>, to: usize, op: GroupOp) -> GroupReply {
    if to == shard.id {
        return serve(shard, op).await;
    }
    let (reply, rx) = oneshot::channel();
    shard.broker.send(to, ShardMsg::Group { op, reply });
    rx.await
        .unwrap_or(GroupReply::Code(ec::COORDINATOR_NOT_AVAILABLE))
}

/// Serves one operation on this (home) shard.
pub async fn serve(shard: &Rc<Shard>, op: GroupOp) -> GroupReply {
    if let Some(Err(code)) = op.group().map(|g| check_coordinator(shard, g)) {
        return GroupReply::Code(code);
    }
    let now = Instant::now();
    match op {
        GroupOp::Join(args) => {
            let member = args.member_id.clone();
            let group = args.group.clone();
            let rx = shard.groups.borrow_mut().join(now, args);
            let _ = persist_group_records(shard, &group).await;
            let reply = rx.await;
            GroupReply::Join(reply.unwrap_or_else(|_| {
                JoinReply::error(dropped_code(shard, &group, ec::UNKNOWN_MEMBER_ID), &member)
            }))
        }
        GroupOp::Sync(args) => {
            let group = args.group.clone();
            let rx = shard.groups.borrow_mut().sync(now, args);
            // The GroupMetadata record of a group that just became Stable is written
            // before the answers are awaited.
            let _ = persist_group_records(shard, &group).await;
            let reply = rx.await;
            GroupReply::Sync(reply.unwrap_or_else(|_| {
                SyncReply::error(dropped_code(shard, &group, ec::UNKNOWN_MEMBER_ID))
            }))
        }
        GroupOp::Heartbeat {
            group,
            generation,
            member,
            instance,
        } => GroupReply::Code(shard.groups.borrow_mut().heartbeat(
            now,
            &group,
            generation,
            &member,
            instance.as_deref(),
        )),
        GroupOp::Leave { group, members } => {
            let codes = shard.groups.borrow_mut().leave(now, &group, &members);
            let _ = persist_group_records(shard, &group).await;
            GroupReply::Codes(codes)
        }
        GroupOp::ConsumerHeartbeat(args) => {
            let group = args.group.clone();
            let snap = shard.broker.metadata.snapshot();
            let mut reply = shard
                .groups
                .borrow_mut()
                .consumer_heartbeat(now, *args, &snap);
            // A new group epoch is durable before a member acts on it.
            if let Err(code) = persist_group_records(shard, &group).await {
                reply = super::consumer_group::HeartbeatReply::error(
                    code,
                    "writing the group's metadata failed",
                );
            }
            GroupReply::ConsumerHeartbeat(reply)
        }
        GroupOp::ConsumerDescribe { group } => {
            GroupReply::ConsumerDescribe(consumer_describe(&shard.groups.borrow(), &group))
        }
        GroupOp::Commit {
            group,
            generation,
            member,
            instance,
            offsets,
            version,
        } => {
            let check = shard.groups.borrow_mut().offset_commit_check(
                now,
                &group,
                generation,
                &member,
                instance.as_deref(),
                version,
            );
            match check {
                CommitCheck::Refused(code) => GroupReply::Code(code),
                CommitCheck::Allowed => GroupReply::Code(commit(shard, group, offsets).await),
            }
        }
        GroupOp::Fetch {
            group,
            partitions,
            member,
        } => {
            if let Some((id, epoch)) = member {
                let check = shard
                    .groups
                    .borrow()
                    .offset_fetch_check(&group, id.as_deref(), epoch);
                if let Err(code) = check {
                    return GroupReply::Code(code);
                }
            }
            GroupReply::Fetch(fetch(shard, &group, partitions))
        }
        GroupOp::Describe { group } => {
            GroupReply::Describe(describe(&shard.groups.borrow(), &group))
        }
        GroupOp::Delete { group } => GroupReply::Code(delete(shard, group).await),
        GroupOp::DeleteOffsets { group, partitions } => {
            GroupReply::DeleteOffsets(delete_offsets(shard, group, &partitions).await)
        }
        GroupOp::List => {
            let coord = shard.groups.borrow();
            let ids: Vec<String> = coord.groups().map(|g| g.id.clone()).collect();
            GroupReply::List(ids.iter().filter_map(|id| describe(&coord, id)).collect())
        }
    }
}

/// Writes allowed offsets durably, then applies them in memory (also the commit of
/// transactional offsets, `txn_offsets::complete`).
pub(crate) async fn commit(
    shard: &Rc<Shard>,
    group: String,
    offsets: Vec<((String, i32), Committed)>,
) -> i16 {
    if offsets.is_empty() {
        return ec::NONE;
    }
    let records: Vec<OffsetRecord> = offsets
        .iter()
        .map(|((topic, partition), c)| OffsetRecord {
            group: group.clone(),
            topic: topic.clone(),
            partition: *partition,
            value: Some(c.clone()),
        })
        .collect();
    if let Err(code) = persist(shard, &group, &records).await {
        return code;
    }
    let stored = offsets.into_iter().map(|(k, c)| (k, Some(c))).collect();
    shard.groups.borrow_mut().store_offsets(&group, stored);
    ec::NONE
}

/// Appends offset records to the group's `__consumer_offsets` partition and waits until
/// they are on disk.
async fn persist(shard: &Rc<Shard>, group: &str, records: &[OffsetRecord]) -> Result<(), i16> {
    let kvs: Vec<(Bytes, Option<Bytes>)> = records
        .iter()
        .map(|r| {
            (
                offsets::encode_key(&r.group, &r.topic, r.partition),
                r.value.as_ref().map(offsets::encode_value),
            )
        })
        .collect();
    persist_kvs(shard, group, &kvs).await
}

/// Writes the group records `group` has queued (GroupMetadata at classic state changes,
/// ConsumerGroupMetadata at consumer group epoch changes), durably.
async fn persist_group_records(shard: &Rc<Shard>, group: &str) -> Result<(), i16> {
    let records = shard.groups.borrow_mut().take_records(group);
    write_group_records(shard, group, &records).await
}

async fn write_group_records(
    shard: &Rc<Shard>,
    group: &str,
    records: &[GroupRecord],
) -> Result<(), i16> {
    if records.is_empty() {
        return Ok(());
    }
    let kvs: Vec<(Bytes, Option<Bytes>)> = records
        .iter()
        .map(|r| offsets::encode_group_record(group, r))
        .collect();
    let result = persist_kvs(shard, group, &kvs).await;
    if let Err(code) = result {
        tracing::warn!(%group, code, "writing group metadata records failed");
    }
    result
}

async fn persist_kvs(
    shard: &Rc<Shard>,
    group: &str,
    kvs: &[(Bytes, Option<Bytes>)],
) -> Result<(), i16> {
    append_and_wait(shard, group, |_| {
        offsets::encode_kv_batch(kvs, crate::util::now_ms())
    })
    .await
}

/// Writes `offsets` of a TxnOffsetCommit as a transactional batch of `producer` (id,
/// epoch) to the group's partition, durably: held there until the transaction's marker
/// commits or drops them (`txn_offsets`), so a new coordinator's load rebuilds them.
pub(crate) async fn persist_txn_offsets(
    shard: &Rc<Shard>,
    group: &str,
    producer: (i64, i16),
    offsets: &[((String, i32), Committed)],
) -> Result<(), i16> {
    let kvs: Vec<(Bytes, Option<Bytes>)> = offsets
        .iter()
        .map(|((topic, partition), c)| {
            (
                offsets::encode_key(group, topic, *partition),
                Some(offsets::encode_value(c)),
            )
        })
        .collect();
    append_and_wait(shard, group, |log| {
        let seq = log.next_sequence(producer.0, producer.1);
        offsets::encode_txn_kv_batch(&kvs, crate::util::now_ms(), producer, seq)
    })
    .await
}

/// Appends the batch `encode` makes (given the log, with no await in between) to the
/// group's `__consumer_offsets` partition and waits until it is durable (and, when
/// replicated, in the ISR).
async fn append_and_wait(
    shard: &Rc<Shard>,
    group: &str,
    encode: impl FnOnce(&crate::storage::log::PartitionLog) -> bytes::BytesMut,
) -> Result<(), i16> {
    // A coordinator that lost its partition must not append to what is now a follower's
    // log.
    check_coordinator(shard, group)?;
    let p = group_partition(shard, group);
    let Some(log) = shard.partition_log(OFFSETS_TOPIC, p) else {
        tracing::error!(%group, partition = p, "{OFFSETS_TOPIC} partition is not on the group's home shard");
        return Err(ec::COORDINATOR_NOT_AVAILABLE);
    };
    let batch = encode(&log);
    let appended = log.append(batch).map_err(|e| e.kafka_error_code())?;
    let mut waited = log.wait_durable(appended.last_offset).await;
    // Replicated: acknowledged once the ISR has it, as an acks=all produce.
    if waited.is_ok() && shard.replicated_isr(OFFSETS_TOPIC, p).is_some() {
        waited = log.wait_high_watermark(appended.last_offset).await;
    }
    waited.map_err(|e| match e {
        StorageError::Truncated { .. } => ec::NOT_COORDINATOR,
        e => {
            tracing::error!(%group, "writing to {OFFSETS_TOPIC}-{p} failed: {e}");
            e.kafka_error_code()
        }
    })
}

fn fetch(
    shard: &Shard,
    group: &str,
    partitions: Option<Vec<(String, i32)>>,
) -> Vec<((String, i32), Option<Committed>)> {
    let coord = shard.groups.borrow();
    match partitions {
        Some(parts) => parts
            .into_iter()
            .map(|(t, p)| {
                let c = coord.committed(group, &t, p).cloned();
                ((t, p), c)
            })
            .collect(),
        None => coord
            .group(group)
            .map(|g| {
                g.offsets
                    .iter()
                    .map(|(k, c)| (k.clone(), Some(c.clone())))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn consumer_describe(coord: &Coordinator, group: &str) -> Result<ConsumerGroupView, (i16, String)> {
    let Some(g) = coord.group(group) else {
        return Err((ec::GROUP_ID_NOT_FOUND, format!("Group {group} not found.")));
    };
    let Some(c) = &g.consumer else {
        return Err((
            ec::GROUP_ID_NOT_FOUND,
            format!("Group {group} is not a consumer group."),
        ));
    };
    let assignor = c
        .assignor
        .unwrap_or_else(|| c.preferred_assignor(coord.consumer_config()));
    Ok(ConsumerGroupView {
        id: g.id.clone(),
        state: c.state(),
        group_epoch: c.group_epoch,
        assignment_epoch: c.assignment_epoch,
        assignor: assignor.name(),
        members: c
            .members
            .values()
            .map(|m| ConsumerMemberView {
                id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                epoch: m.epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                topic_names: m.topic_names.clone(),
                topic_regex: m.topic_regex.clone(),
                assigned: m.assigned.clone(),
                target: c.target.get(&m.id).cloned().unwrap_or_default(),
            })
            .collect(),
    })
}

fn describe(coord: &Coordinator, group: &str) -> Option<GroupSummary> {
    let g = coord.group(group)?;
    if let Some(c) = &g.consumer {
        return Some(GroupSummary {
            id: g.id.clone(),
            group_type: "consumer",
            state: c.state(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: String::new(),
            members: Vec::new(),
        });
    }
    let protocol = g.protocol.clone().unwrap_or_default();
    let stable = matches!(g.state, GroupState::Stable);
    Some(GroupSummary {
        id: g.id.clone(),
        group_type: "classic",
        state: g.state.name(),
        protocol_type: g.protocol_type.clone().unwrap_or_default(),
        protocol: protocol.clone(),
        members: g
            .members
            .iter()
            .map(|m| MemberSummary {
                id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata(&protocol),
                // Kafka shows assignments only once they are all known.
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Default::default()
                },
            })
            .collect(),
    })
}

/// DeleteGroups: the offsets' tombstones, then the group records' (Kafka's order).
async fn delete(shard: &Rc<Shard>, group: String) -> i16 {
    let keys = match shard.groups.borrow_mut().delete(&group) {
        Ok(keys) => keys,
        Err(code) => return code,
    };
    if let Err(code) = write_tombstones(shard, &group, keys).await {
        return code;
    }
    let records = [GroupRecord::Classic(None), GroupRecord::ConsumerEpoch(None)];
    match write_group_records(shard, &group, &records).await {
        Ok(()) => ec::NONE,
        Err(code) => code,
    }
}

/// OffsetDelete: the offsets leave memory first and their tombstones are appended in
/// the same step (no `.await` between), so a commit that follows lands after them in
/// the log too; the answer waits until the tombstones are durable.
async fn delete_offsets(
    shard: &Rc<Shard>,
    group: String,
    partitions: &[(String, i32)],
) -> Result<Vec<i16>, i16> {
    let (codes, keys) = shard
        .groups
        .borrow_mut()
        .delete_offsets(&group, partitions)?;
    write_tombstones(shard, &group, keys).await?;
    Ok(codes)
}

/// Deletes `keys` of `group` in `__consumer_offsets` (durably).
async fn write_tombstones(
    shard: &Rc<Shard>,
    group: &str,
    keys: Vec<(String, i32)>,
) -> Result<(), i16> {
    if keys.is_empty() {
        return Ok(());
    }
    let tombstones: Vec<OffsetRecord> = keys
        .into_iter()
        .map(|(topic, partition)| OffsetRecord {
            group: group.to_string(),
            topic,
            partition,
            value: None,
        })
        .collect();
    persist(shard, group, &tombstones).await
}

/// Applies group deadlines every `TICK_INTERVAL`, and `offsets.retention.minutes` every
/// `offsets.retention.check.interval.ms`, for the life of the shard.
pub async fn tick_loop(shard: Rc<Shard>) {
    let config = &shard.broker.config;
    let retention = Duration::from_secs(config.offsets_retention_minutes.saturating_mul(60));
    let check_every = Duration::from_millis(config.offsets_retention_check_interval_ms);
    let mut next_check = Instant::now() + check_every;
    loop {
        crate::runtime::sleep(TICK_INTERVAL).await;
        let now = Instant::now();
        shard.groups.borrow_mut().tick(now);
        let records = shard.groups.borrow_mut().take_all_records();
        for (group, records) in records {
            let _ = write_group_records(&shard, &group, &records).await;
        }
        if now >= next_check {
            next_check = now + check_every;
            expire_offsets(&shard, now, retention).await;
        }
    }
}

/// `topic` was deleted: each shard's coordinator forgets its groups' committed offsets
/// of it and writes their tombstones, so a deleted topic's offsets do not stay for
/// `offsets.retention.minutes` (a new group's each time a short-lived topic is read) nor
/// come back for a new topic of the same name. Sent to every shard; does not wait.
pub fn topic_deleted(broker: &crate::broker::Broker, topic: &str) {
    for id in 0..broker.shard_count {
        let topic = topic.to_string();
        let task: crate::broker::router::ShardTask = Box::new(move |shard| {
            async move { forget_topic_offsets(&shard, &topic).await }.boxed_local()
        });
        broker.send(id, ShardMsg::Run(task));
    }
}

async fn forget_topic_offsets(shard: &Rc<Shard>, topic: &str) {
    let removed = shard.groups.borrow_mut().remove_topic_offsets(topic);
    for (group, keys) in removed {
        let count = keys.len();
        match write_tombstones(shard, &group, keys).await {
            Ok(()) => tracing::info!(%group, %topic, count, "deleted topic's offsets removed"),
            Err(code) => tracing::warn!(
                %group,
                %topic,
                count,
                code,
                "writing the deleted topic's offset tombstones failed; a restart may bring them back until they expire"
            ),
        }
    }
}

/// Removes offsets past their retention and writes their tombstones.
async fn expire_offsets(shard: &Rc<Shard>, now: Instant, retention: Duration) {
    let expired = shard
        .groups
        .borrow_mut()
        .expire_offsets(now, crate::util::now_ms(), retention);
    for (group, keys) in expired {
        let count = keys.len();
        match write_tombstones(shard, &group, keys).await {
            Ok(()) => tracing::info!(%group, count, "expired committed offsets"),
            Err(code) => {
                tracing::warn!(%group, count, code, "writing expired offsets' tombstones failed")
            }
        }
    }
}
