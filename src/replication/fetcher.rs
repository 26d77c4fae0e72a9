//! A follower's fetcher: one task per (shard, leader broker), fetching every partition
//! this shard follows from that leader in one Fetch request as replica `node.id`.
//! Before its first fetch under a leader epoch, a partition asks the leader where its
//! own last epoch ends (OffsetForLeaderEpoch) and cuts its log there, so a replica
//! that led or lagged under an older leader drops exactly the records the new leader
//! does not have. Fetched batches are appended with the leader's offsets and epochs
//! (`PartitionLog::append_replicated`), and the follower's high watermark and log
//! start offset follow the leader's. A partition whose fetch offset is below the
//! leader's log start offset (OFFSET_OUT_OF_RANGE) restarts its log there.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::Connection;
use super::throttle;
use super::{Follow, Key};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::storage::PartitionLog;

/// Fetch v12: replica id in the body, topics by name, last fetched epoch.
const FETCH_VERSION: i16 = 12;
const EPOCH_VERSION: i16 = 4;
/// ListOffsets v2: replica id and isolation level in the body.
const LIST_OFFSETS_VERSION: i16 = 2;
/// ListOffsets' timestamp for the log start offset.
const EARLIEST_TIMESTAMP: i64 = -2;
/// How long the leader may hold a replica fetch that finds nothing new.
const FETCH_MAX_WAIT_MS: i32 = 500;
/// Bounds of one replica fetch (Kafka's replica.fetch.response.max.bytes and
/// replica.fetch.max.bytes defaults are 10 MiB and 1 MiB).
const FETCH_BYTES_MAX: i32 = 10 << 20;
const PARTITION_FETCH_BYTES_MAX: i32 = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A response later than the long-poll wait plus this is a dead connection.
const ANSWER_GRACE: Duration = Duration::from_secs(5);
/// At most one warning per this long for a refused inter-broker login or TLS handshake.
const LOGIN_WARN_EVERY: Duration = Duration::from_secs(10);
/// Pause after an error before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Pause when every followed partition is throttled and the budget is spent.
const THROTTLED_PAUSE: Duration = Duration::from_millis(50);

/// This broker's follower throttle for one round: the rate, if set, and the
/// partitions it applies to (listed for this broker and not in the ISR).
struct Throttled {
    rate: Option<i64>,
    snap: std::sync::Arc<crate::broker::metadata::Snapshot>,
    me: i32,
}

impl Throttled {
    fn of(shard: &Shard, me: i32) -> Throttled {
        let snap = shard.broker.metadata.snapshot();
        let rate = snap
            .broker_configs
            .get(throttle::FOLLOWER_RATE)
            .and_then(|v| v.parse::<i64>().ok());
        Throttled { rate, snap, me }
    }

    fn applies(&self, (topic, partition): &Key) -> bool {
        if self.rate.is_none() {
            return false;
        }
        self.snap.topic(topic).is_some_and(|t| {
            let in_sync = t
                .replication
                .get(*partition as usize)
                .is_some_and(|r| r.isr.contains(&self.me));
            !in_sync
                && throttle::listed(&t.configs, throttle::FOLLOWER_REPLICAS, *partition, self.me)
        })
    }
}

type Followed = Vec<(Key, Follow, PartitionLog)>;

/// The partitions this shard follows from `leader`, with their logs.
fn followed(shard: &Shard, leader: i32) -> Followed {
    let rep = shard.replication.borrow();
    rep.following
        .iter()
        .filter(|(_, f)| f.leader == leader)
        .filter_map(|(k, f)| {
            shard
                .partition_log(&k.0, k.1)
                .map(|log| (k.clone(), f.clone(), log))
        })
        .collect()
}

/// Whether `key` is still followed from the same leader at the same epoch.
fn still(shard: &Shard, key: &Key, follow: &Follow) -> bool {
    shard
        .replication
        .borrow()
        .following
        .get(key)
        .is_some_and(|f| f.leader == follow.leader && f.leader_epoch == follow.leader_epoch)
}

pub(super) async fn run(shard: Rc<Shard>, leader: i32) {
    let mut conn: Option<(Connection, Instant)> = None;
    let mut warned: Option<Instant> = None;
    loop {
        let parts = followed(&shard, leader);
        if parts.is_empty() {
            shard.replication.borrow_mut().fetchers.remove(&leader);
            return;
        }
        if conn.is_none() {
            let Some(addr) = super::client::broker_addr(&shard, leader) else {
                crate::runtime::sleep(RETRY_PAUSE).await;
                continue;
            };
            match Connection::connect(&addr, CONNECT_TIMEOUT).await {
                Ok(c) => {
                    shard.broker.refusals.note_accepted(leader);
                    conn = Some((c, Instant::now()));
                }
                Err(e) if e.misconfigured => {
                    // A refused login or TLS handshake is a configuration problem the
                    // operator must see.
                    if warned.is_none_or(|t: Instant| t.elapsed() >= LOGIN_WARN_EVERY) {
                        if e.why.starts_with("TLS") {
                            tracing::warn!(leader, %addr, "replica fetcher cannot connect over TLS: {e}");
                        } else {
                            tracing::warn!(leader, %addr, "replica fetcher cannot log in: {e}");
                        }
                        warned = Some(Instant::now());
                    }
                    crate::runtime::sleep(RETRY_PAUSE).await;
                    continue;
                }
                Err(e) => {
                    if e.refused {
                        shard.broker.refusals.note_refused(leader, Instant::now());
                    }
                    tracing::debug!(leader, %addr, "replica fetcher cannot connect: {e}");
                    crate::runtime::sleep(RETRY_PAUSE).await;
                    continue;
                }
            }
        }
        let (c, connected_at) = conn.as_mut().expect("connected above");
        if let Err(e) = round(&shard, c, parts).await {
            tracing::debug!(leader, addr = %c.addr, "replica fetch failed: {e}");
            // Reconnect at once after a connection that worked for a while: a leader
            // whose process is gone refuses it, and `refusals` tells Metadata now rather
            // than a pause later. A connection that fails young pauses first, so a
            // leader that accepts and fails every round is not hammered.
            if connected_at.elapsed() < RETRY_PAUSE {
                crate::runtime::sleep(RETRY_PAUSE).await;
            }
            conn = None;
        }
    }
}

/// One round: truncation where still needed, then one Fetch. An error means the
/// connection is unusable.
async fn round(shard: &Rc<Shard>, conn: &mut Connection, parts: Followed) -> Result<(), String> {
    let me = shard.broker.config.node_id;
    let untruncated: Followed = parts.iter().filter(|p| !p.1.truncated).cloned().collect();
    if !untruncated.is_empty() {
        truncate(shard, conn, me, untruncated).await?;
    }
    let ready: Followed = followed(shard, parts[0].1.leader)
        .into_iter()
        .filter(|p| p.1.truncated)
        .collect();
    // Throttled catch-up: throttled partitions wait out an exhausted budget.
    let throttle = Throttled::of(shard, me);
    let budget = throttle
        .rate
        .is_some_and(|rate| shard.broker.replication_throttle.ready(rate));
    let ready: Followed = ready
        .into_iter()
        .filter(|p| budget || !throttle.applies(&p.0))
        .collect();
    if ready.is_empty() {
        crate::runtime::sleep(THROTTLED_PAUSE).await;
        return Ok(());
    }
    let mut by_topic: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for ((topic, partition), follow, log) in &ready {
        let mut p = FetchPartition::default();
        p.partition = *partition;
        p.current_leader_epoch = follow.leader_epoch;
        p.fetch_offset = log.log_end_offset();
        p.log_start_offset = log.log_start_offset();
        p.partition_max_bytes = match throttle.rate {
            Some(rate) if throttle.applies(&(topic.clone(), *partition)) => {
                rate.clamp(1, i64::from(PARTITION_FETCH_BYTES_MAX)) as i32
            }
            _ => PARTITION_FETCH_BYTES_MAX,
        };
        by_topic.entry(topic.as_str()).or_default().push(p);
    }
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(me);
    req.max_wait_ms = FETCH_MAX_WAIT_MS;
    req.min_bytes = 1;
    req.max_bytes = FETCH_BYTES_MAX;
    req.session_epoch = -1;
    req.topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = FetchTopic::default();
            t.topic = TopicName(StrBytes::from_string(topic.to_string()));
            t.partitions = partitions;
            t
        })
        .collect();
    let timeout = Duration::from_millis(FETCH_MAX_WAIT_MS as u64) + ANSWER_GRACE;
    let resp: FetchResponse = conn
        .call(ApiKey::Fetch, FETCH_VERSION, &req, timeout)
        .await?;
    if resp.error_code != ec::NONE {
        crate::runtime::sleep(RETRY_PAUSE).await;
        return Ok(());
    }
    let mut progressed = false;
    let mut out_of_range: Followed = Vec::new();
    for t in resp.responses {
        for p in t.partitions {
            let key = (t.topic.0.to_string(), p.partition_index);
            let Some((_, follow, log)) = ready.iter().find(|r| r.0 == key) else {
                continue;
            };
            if !still(shard, &key, follow) {
                continue;
            }
            if p.error_code != ec::NONE {
                tracing::debug!(topic = %key.0, partition = key.1, code = p.error_code, "replica fetch refused");
                if p.error_code == ec::OFFSET_OUT_OF_RANGE {
                    out_of_range.push((key, follow.clone(), log.clone()));
                }
                continue;
            }
            if let Some(records) = p.records.filter(|r| !r.is_empty()) {
                if throttle.applies(&key) {
                    shard.broker.replication_throttle.take(records.len() as i64);
                }
                if let Err(e) = append(shard, &key, log, records).await {
                    tracing::warn!(topic = %key.0, partition = key.1, "replicated append refused: {e}");
                    mark_untruncated(shard, &key);
                    continue;
                }
                progressed = true;
            }
            log.set_replicated_high_watermark(Some(p.high_watermark.min(log.log_end_offset())));
            follow_log_start(shard, &key, log, p.log_start_offset).await;
        }
    }
    if !out_of_range.is_empty() {
        restart_behind_start(shard, conn, me, out_of_range).await?;
    }
    if !progressed {
        // Nothing new (the leader's long poll expired) or only errors: no busy loop.
        crate::runtime::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Appends the leader's batches. An empty log whose first fetched batch begins before
/// the log's offset (the leader's log start offset fell inside that batch, after
/// DeleteRecords, and this log restarted there) restarts at the batch's base offset
/// and appends it whole, as Kafka's follower does; `follow_log_start` then hides the
/// records below the leader's start.
async fn append(
    shard: &Rc<Shard>,
    key: &Key,
    log: &PartitionLog,
    records: bytes::Bytes,
) -> Result<(), crate::storage::StorageError> {
    use crate::storage::StorageError;
    match log.append_replicated(records.clone()) {
        Err(StorageError::NotContiguous { expected, got })
            if got < expected && log.log_start_offset() == log.log_end_offset() =>
        {
            tracing::info!(
                topic = %key.0,
                partition = key.1,
                from = expected,
                to = got,
                "the leader's first batch starts before this empty log; restarting it there"
            );
            log.restart_at(got).await?;
            shard.write_checkpoints().await;
            log.append_replicated(records).map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// Moves this replica's log start offset up to the leader's (retention or DeleteRecords
/// there), as far as this replica's log reaches, so that records deleted on
/// the leader do not come back when this replica leads (Kafka's follower does the same
/// with the log start offset of each fetch response).
///
/// It runs before the next fetch is sent, which is what tells the leader this replica
/// has the batches: so by the time the leader counts it in the ISR, its log start has
/// moved too. The records below the target were just appended and may still be
/// queued for the writer, so it waits for them to be written first.
async fn follow_log_start(shard: &Rc<Shard>, key: &Key, log: &PartitionLog, leader_start: i64) {
    let target = leader_start.min(log.log_end_offset());
    if target <= log.log_start_offset() {
        return;
    }
    if let Err(e) = log.wait_written(target - 1).await {
        tracing::debug!(topic = %key.0, partition = key.1, "log start not moved: {e}");
        return;
    }
    match log.delete_records_before(target).await {
        Ok(start) => {
            tracing::debug!(topic = %key.0, partition = key.1, log_start_offset = start, "followed the leader's log start offset");
            shard.write_checkpoints().await;
        }
        Err(e) => {
            tracing::warn!(topic = %key.0, partition = key.1, "cannot move the log start offset to the leader's: {e}")
        }
    }
}

/// Partitions whose fetch offset the leader refused as out of range (Kafka's
/// `handleOutOfRangeError`): one whose log ends below the leader's log start offset
/// cannot catch up by fetching, because the leader deleted those records (retention,
/// DeleteRecords), so its log restarts at the leader's start (`restart_at`); any other
/// asks OffsetForLeaderEpoch again before its next fetch (it may have diverged).
async fn restart_behind_start(
    shard: &Rc<Shard>,
    conn: &mut Connection,
    me: i32,
    parts: Followed,
) -> Result<(), String> {
    let mut by_topic: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
    for ((topic, partition), follow, _) in &parts {
        let mut p = ListOffsetsPartition::default();
        p.partition_index = *partition;
        p.current_leader_epoch = follow.leader_epoch;
        p.timestamp = EARLIEST_TIMESTAMP;
        by_topic.entry(topic.as_str()).or_default().push(p);
    }
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(me);
    req.topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = ListOffsetsTopic::default();
            t.name = TopicName(StrBytes::from_string(topic.to_string()));
            t.partitions = partitions;
            t
        })
        .collect();
    let resp: ListOffsetsResponse = conn
        .call(
            ApiKey::ListOffsets,
            LIST_OFFSETS_VERSION,
            &req,
            ANSWER_GRACE,
        )
        .await?;
    let mut answered = Vec::new();
    for t in resp.topics {
        for p in t.partitions {
            let key = (t.name.0.to_string(), p.partition_index);
            let Some((_, follow, log)) = parts.iter().find(|a| a.0 == key) else {
                continue;
            };
            answered.push(key.clone());
            if !still(shard, &key, follow) {
                continue;
            }
            let leader_start = p.offset;
            if p.error_code != ec::NONE || leader_start <= log.log_end_offset() {
                mark_untruncated(shard, &key);
                continue;
            }
            tracing::info!(
                topic = %key.0,
                partition = key.1,
                log_end_offset = log.log_end_offset(),
                leader_log_start_offset = leader_start,
                "this replica is behind the leader's log start; restarting its log there"
            );
            if let Err(e) = log.restart_at(leader_start).await {
                tracing::error!(topic = %key.0, partition = key.1, "restarting the log failed: {e}");
                continue;
            }
            // The log start and recovery point moved up: checkpoint them at once, so a
            // crash does not recover from the stale ones.
            shard.write_checkpoints().await;
        }
    }
    for (key, _, _) in &parts {
        if !answered.contains(key) {
            mark_untruncated(shard, key);
        }
    }
    Ok(())
}

fn mark_untruncated(shard: &Shard, key: &Key) {
    if let Some(f) = shard.replication.borrow_mut().following.get_mut(key) {
        f.truncated = false;
    }
}

/// Asks the leader where each partition's last epoch ends and cuts the log there.
async fn truncate(
    shard: &Rc<Shard>,
    conn: &mut Connection,
    me: i32,
    parts: Followed,
) -> Result<(), String> {
    let mut asked: Followed = Vec::new();
    let mut by_topic: BTreeMap<&str, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
    for part in &parts {
        let ((topic, partition), follow, log) = part;
        match log.latest_epoch() {
            // An empty log (or one without epochs) has nothing to cut.
            None => set_truncated(shard, &part.0, follow),
            Some(epoch) => {
                let mut p = OffsetForLeaderPartition::default();
                p.partition = *partition;
                p.current_leader_epoch = follow.leader_epoch;
                p.leader_epoch = epoch;
                by_topic.entry(topic.as_str()).or_default().push(p);
                asked.push(part.clone());
            }
        }
    }
    if asked.is_empty() {
        return Ok(());
    }
    let mut req = OffsetForLeaderEpochRequest::default();
    req.replica_id = BrokerId(me);
    req.topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = OffsetForLeaderTopic::default();
            t.topic = TopicName(StrBytes::from_string(topic.to_string()));
            t.partitions = partitions;
            t
        })
        .collect();
    let resp: OffsetForLeaderEpochResponse = conn
        .call(
            ApiKey::OffsetForLeaderEpoch,
            EPOCH_VERSION,
            &req,
            ANSWER_GRACE,
        )
        .await?;
    for t in resp.topics {
        for p in t.partitions {
            let key = (t.topic.0.to_string(), p.partition);
            let Some((_, follow, log)) = asked.iter().find(|a| a.0 == key) else {
                continue;
            };
            if p.error_code != ec::NONE {
                tracing::debug!(topic = %key.0, partition = key.1, code = p.error_code, "leader epoch lookup refused");
                continue;
            }
            if !still(shard, &key, follow) {
                continue;
            }
            let leo = log.log_end_offset();
            if p.end_offset >= 0 && p.end_offset < leo {
                tracing::info!(
                    topic = %key.0,
                    partition = key.1,
                    from = leo,
                    to = p.end_offset,
                    "truncating the divergent suffix before following the new leader"
                );
                if let Err(e) = log.truncate_to(p.end_offset).await {
                    tracing::error!(topic = %key.0, partition = key.1, "truncation failed: {e}");
                    continue;
                }
                // The recovery point is now the cut: checkpoint it at once, so a crash
                // does not trust a stale, higher recovery point over data written
                // after the cut.
                shard.write_checkpoints().await;
            }
            set_truncated(shard, &key, follow);
        }
    }
    Ok(())
}

fn set_truncated(shard: &Shard, key: &Key, follow: &Follow) {
    if let Some(f) = shard.replication.borrow_mut().following.get_mut(key) {
        if f.leader == follow.leader && f.leader_epoch == follow.leader_epoch {
            f.truncated = true;
        }
    }
}
