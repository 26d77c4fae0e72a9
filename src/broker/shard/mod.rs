//! One shard's own state: the partition logs it owns, and the code that serves the
//! messages other shards send it.
//!
//! Concurrency: a `Shard` lives on one thread behind an `Rc`. The partition map is a
//! `RefCell` that is never borrowed across an `.await`; a `PartitionLog` is a cheap
//! handle, cloned out of the map before any await.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use futures::channel::{mpsc, oneshot};
use futures::future::{join_all, FutureExt, LocalBoxFuture};
use futures::StreamExt;

pub use super::admin::{AdminMsg, TopicResult, TopicSpec};
use super::metadata::Snapshot;
use super::router::*;
use super::Broker;
use crate::metrics::Stage;
use crate::protocol::errors as ec;
use crate::storage::{LogConfig, PartitionLog, StorageError};

/// The shard that writes metadata.
pub const METADATA_SHARD: usize = 0;

mod data;

use super::cache_budget::{cache_bound, cache_share_bytes};
pub use super::cache_budget::{
    INTERNAL_TOPIC_CACHE_BYTES_MAX, PARTITION_CACHE_BYTES_MAX, PARTITION_CACHE_BYTES_MIN,
    SHARD_CACHE_BYTES_MAX,
};

pub struct Shard {
    pub id: usize,
    pub broker: Arc<Broker>,
    logs: RefCell<HashMap<(String, i32), (usize, PartitionLog)>>,
    /// Serialises metadata changes on the metadata shard.
    pub(super) admin_lock: futures::lock::Mutex<()>,
    /// This shard's current per-partition cache share (`cache_share_bytes`).
    cache_share: Rc<Cell<usize>>,
    /// The groups whose home is this shard (`groups::service::home_shard`).
    pub groups: RefCell<crate::groups::coordinator::Coordinator>,
    /// Offsets of open transactions for those groups (`groups::txn_offsets`).
    pub txn_offsets: RefCell<crate::groups::txn_offsets::PendingTxnOffsets>,
    /// The transactional ids whose home is this shard (`txn::coordinator`).
    pub txn: RefCell<crate::txn::coordinator::TxnCoordinator>,
    /// Leaders' follower tracking and followers' fetch state (cluster mode).
    pub replication: RefCell<crate::replication::ShardReplication>,
    /// KIP-227 fetch sessions made by this shard's connections.
    pub fetch_sessions: RefCell<crate::broker::fetch_sessions::FetchSessions>,
}

impl Shard {
    pub fn new(id: usize, broker: Arc<Broker>) -> Rc<Shard> {
        Rc::new(Shard {
            id,
            logs: RefCell::new(HashMap::new()),
            admin_lock: futures::lock::Mutex::new(()),
            cache_share: Rc::new(Cell::new(PARTITION_CACHE_BYTES_MAX)),
            replication: RefCell::default(),
            txn_offsets: RefCell::default(),
            txn: RefCell::default(),
            fetch_sessions: RefCell::new(crate::broker::fetch_sessions::FetchSessions::new(
                broker.config.fetch_session_slots,
                id,
                broker.shard_count,
            )),
            groups: RefCell::new(
                crate::groups::coordinator::Coordinator::new(std::time::Duration::from_millis(
                    broker.config.group_initial_rebalance_delay_ms,
                ))
                .with_consumer_config(crate::groups::consumer_group::ConsumerConfig {
                    session_timeout: std::time::Duration::from_millis(
                        broker.config.group_consumer_session_timeout_ms,
                    ),
                    heartbeat_interval: std::time::Duration::from_millis(
                        broker.config.group_consumer_heartbeat_interval_ms,
                    ),
                    assignors: broker.config.group_consumer_assignors.clone(),
                    max_size: broker.config.group_consumer_max_size,
                })
                .with_group_max_size(broker.config.group_max_size),
            ),
            broker,
        })
    }

    /// The settings a partition of `topic` runs with: the topic's effective configs
    /// and this shard's cache share.
    pub fn log_config(&self, snap: &Snapshot, topic: &str) -> LogConfig {
        let s = self.broker.topic_settings(snap, topic);
        LogConfig {
            segment_bytes: s.segment_bytes,
            segment_ms: segment_ms_with_jitter(s.segment_ms, s.segment_jitter_ms),
            index_entries_max: (s.segment_index_bytes / 8).max(1) as usize,
            index_interval_bytes: s.index_interval_bytes,
            max_message_bytes: s.max_message_bytes,
            retention_ms: s.retention_ms,
            retention_bytes: s.retention_bytes,
            cleanup_delete: s.cleanup_delete,
            cleanup_compact: s.cleanup_compact,
            compression_codec: s.compression.codec_bits(),
            delete_retention_ms: s.delete_retention_ms,
            min_compaction_lag_ms: s.min_compaction_lag_ms,
            max_compaction_lag_ms: s.max_compaction_lag_ms,
            min_cleanable_dirty_ratio: s.min_cleanable_dirty_ratio,
            log_append_time: s.log_append_time,
            timestamp_before_max_ms: s.timestamp_before_max_ms,
            timestamp_after_max_ms: s.timestamp_after_max_ms,
            flush_messages: s.flush_messages,
            flush_ms: s.flush_ms,
            min_insync_replicas: s.min_insync_replicas,
            cache_bytes_max: cache_bound(topic, &self.cache_share).0,
            cache_share: cache_bound(topic, &self.cache_share).1,
            leader_epoch: 0,
            ..LogConfig::default()
        }
    }

    /// Runs `f` on shard `id` (here, without a hop, when it is this shard) and returns
    /// its result; `None` if that shard is shutting down.
    pub async fn run_on<T, F>(self: &Rc<Self>, id: usize, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(Rc<Shard>) -> LocalBoxFuture<'static, T> + Send + 'static,
    {
        if id == self.id {
            return Some(f(self.clone()).await);
        }
        let (reply, rx) = oneshot::channel();
        let task: ShardTask = Box::new(move |shard| {
            async move {
                let _ = reply.send(f(shard).await);
            }
            .boxed_local()
        });
        self.broker.send(id, ShardMsg::Run(task));
        rx.await.ok()
    }

    /// Applies the current snapshot's configs to the partitions of `topics` this shard
    /// owns (every partition when `None`): a config change takes effect without a
    /// restart.
    pub fn reconfigure(&self, topics: Option<&[String]>) {
        let snap = self.broker.metadata.snapshot();
        let logs: Vec<(String, PartitionLog)> = self
            .logs
            .borrow()
            .iter()
            .filter(|((t, _), _)| topics.is_none_or(|ts| ts.contains(t)))
            .map(|((t, _), (_, log))| (t.clone(), log.clone()))
            .collect();
        for (topic, log) in logs {
            if let Err(e) = log.set_config(self.log_config(&snap, &topic)) {
                tracing::error!(%topic, "cannot apply the new topic config: {e}");
            }
        }
    }

    fn rebalance_cache(&self) {
        self.cache_share
            .set(cache_share_bytes(self.logs.borrow().len()));
    }

    /// Every partition this shard owns: (topic, partition, log).
    pub fn owned_logs(&self) -> Vec<(String, i32, PartitionLog)> {
        self.logs
            .borrow()
            .iter()
            .map(|((t, p), (_, log))| (t.clone(), *p, log.clone()))
            .collect()
    }

    /// Every partition this shard owns with its log dir index.
    pub fn owned_logs_with_dirs(&self) -> Vec<(String, i32, usize, PartitionLog)> {
        self.logs
            .borrow()
            .iter()
            .map(|((t, p), (d, log))| (t.clone(), *p, *d, log.clone()))
            .collect()
    }

    /// The log of a partition this shard owns, or the error to answer:
    /// KAFKA_STORAGE_ERROR when its log dir is offline, UNKNOWN_TOPIC_OR_PARTITION when
    /// there is no such partition here.
    pub fn log_checked(&self, topic: &str, partition: i32) -> Result<PartitionLog, i16> {
        let found = self
            .logs
            .borrow()
            .get(&(topic.to_string(), partition))
            .map(|(dir, log)| (*dir, log.clone()));
        match found {
            Some((dir, _)) if self.broker.dirs.is_offline(dir) => Err(ec::KAFKA_STORAGE_ERROR),
            Some((_, log)) => Ok(log),
            None => {
                let snap = self.broker.metadata.snapshot();
                match snap.placement(topic, partition) {
                    Some(p) if self.broker.dirs.is_offline(p.dir) => Err(ec::KAFKA_STORAGE_ERROR),
                    _ => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
                }
            }
        }
    }

    /// Fails every log of this shard in an offline dir (another partition there hit an
    /// I/O error), so their waiters and writers stop at once.
    pub fn fail_offline_dirs(&self) {
        let logs: Vec<(usize, PartitionLog)> = self
            .logs
            .borrow()
            .values()
            .map(|(d, l)| (*d, l.clone()))
            .collect();
        for (dir, log) in logs {
            if self.broker.dirs.is_offline(dir) && !log.is_failed() {
                let why = self.broker.dirs.reason(dir).unwrap_or_default();
                log.take_offline(&format!("log dir is offline: {why}"));
            }
        }
    }

    /// The log of a partition this shard owns.
    pub fn partition_log(&self, topic: &str, partition: i32) -> Option<PartitionLog> {
        self.log(topic, partition)
    }

    fn log(&self, topic: &str, partition: i32) -> Option<PartitionLog> {
        self.logs
            .borrow()
            .get(&(topic.to_string(), partition))
            .map(|(_, l)| l.clone())
    }

    /// Opens every partition the snapshot places on this shard (start-up recovery).
    pub async fn open_owned(&self, snap: &Snapshot) -> Result<(), String> {
        let parts: Vec<PartitionRef> = snap
            .topics
            .values()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .enumerate()
                    .filter(|(i, p)| p.shard == self.id && t.hosted(*i, self.broker.config.node_id))
                    .map(|(i, p)| PartitionRef {
                        topic: t.name.clone(),
                        partition: i as i32,
                        dir: p.dir,
                    })
            })
            .collect();
        // A partition that cannot be opened takes its dir offline (KIP-112) instead of
        // stopping the broker; the dir's other partitions are skipped.
        for p in parts {
            if self.broker.dirs.is_offline(p.dir) {
                continue;
            }
            let dir = p.dir;
            if let Err(e) = self.open_partitions(vec![p], snap).await {
                self.broker
                    .dirs
                    .take_offline(dir, &self.broker.log_dirs[dir], &e);
            }
        }
        Ok(())
    }

    /// Opens partitions with the topic configs of `snap`.
    pub async fn open_partitions(
        &self,
        parts: Vec<PartitionRef>,
        snap: &Snapshot,
    ) -> Result<(), String> {
        for p in parts {
            if self.broker.dirs.is_offline(p.dir) {
                return Err(format!(
                    "log dir {} is offline",
                    self.broker.log_dirs[p.dir].display()
                ));
            }
            let key = (p.topic.clone(), p.partition);
            let cp = &self.broker.checkpoints;
            let recovery_point = cp.recovery_points.get(&key).copied().unwrap_or(0);
            let log_start = cp.log_start_offsets.get(&key).copied().unwrap_or(0);
            let dir = &self.broker.log_dirs[p.dir];
            let log = PartitionLog::open(
                dir,
                &p.topic,
                p.partition,
                self.log_config(snap, &p.topic),
                recovery_point,
                log_start,
            )
            .await
            .map_err(|e| format!("cannot open partition {}-{}: {e}", p.topic, p.partition))?;
            if let Some(&cleaned) = cp.cleaner_offsets.get(p.dir).and_then(|c| c.get(&key)) {
                log.set_cleaner_checkpoint(cleaned);
            }
            let broker = self.broker.clone();
            let dir_index = p.dir;
            log.set_failure_hook(Box::new(move |why| {
                broker
                    .dirs
                    .take_offline(dir_index, &broker.log_dirs[dir_index], why);
            }));
            self.logs.borrow_mut().insert(key, (p.dir, log));
            self.rebalance_cache();
        }
        Ok(())
    }

    pub async fn delete_partitions(&self, parts: Vec<PartitionRef>) -> Result<(), String> {
        for p in parts {
            let removed = self
                .logs
                .borrow_mut()
                .remove(&(p.topic.clone(), p.partition));
            if let Some((dir, log)) = removed {
                log.delete()
                    .await
                    .map_err(|e| format!("cannot delete {}-{}: {e}", p.topic, p.partition))?;
                // A topic created again under this name starts uncleaned.
                let broker = self.broker.clone();
                let (topic, partition) = (p.topic.clone(), p.partition);
                crate::runtime::blocking(move || {
                    broker.write_cleaner_offset_blocking(dir, &topic, partition, None)
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Closes every log (finishing in-flight writes) for a clean shutdown.
    pub async fn close_all(&self) -> Vec<PartitionCheckpoint> {
        let logs: Vec<_> = self.logs.borrow_mut().drain().collect();
        let mut out = Vec::with_capacity(logs.len());
        for ((topic, partition), (dir, log)) in logs {
            if log.is_failed() {
                // Already reported when it failed (or its dir went offline).
                tracing::debug!(%topic, partition, "not closing a failed log");
                continue;
            }
            let log_start_offset = log.log_start_offset();
            match log.close().await {
                Ok(recovery_point) => out.push(PartitionCheckpoint {
                    dir,
                    topic,
                    partition,
                    recovery_point,
                    log_start_offset,
                }),
                Err(e) => tracing::error!(%topic, partition, "closing partition failed: {e}"),
            }
        }
        out
    }

    /// Flushes every log and reports the recovery points for the periodic checkpoint.
    pub async fn checkpoint_local(&self) -> Vec<PartitionCheckpoint> {
        let logs: Vec<_> = self
            .logs
            .borrow()
            .iter()
            .map(|(k, (dir, log))| (k.clone(), *dir, log.clone()))
            .collect();
        let mut out = Vec::with_capacity(logs.len());
        for ((topic, partition), dir, log) in logs {
            match log.flush().await {
                Ok(recovery_point) => out.push(PartitionCheckpoint {
                    dir,
                    topic,
                    partition,
                    recovery_point,
                    log_start_offset: log.log_start_offset(),
                }),
                Err(e) => tracing::error!(%topic, partition, "flush for checkpoint failed: {e}"),
            }
        }
        out
    }

    /// Gathers every shard's recovery points and writes the checkpoint files; run by
    /// the metadata shard every `log.flush.offset.checkpoint.interval.ms`.
    pub async fn write_checkpoints(self: &Rc<Self>) {
        let asks = (0..self.broker.shard_count).map(|id| {
            let me = self.clone();
            async move {
                if id == me.id {
                    return me.checkpoint_local().await;
                }
                let (reply, rx) = oneshot::channel();
                me.broker.send(id, ShardMsg::Checkpoint { reply });
                rx.await.unwrap_or_default()
            }
        });
        let points: Vec<PartitionCheckpoint> = join_all(asks).await.into_iter().flatten().collect();
        let broker = self.broker.clone();
        let written =
            crate::runtime::blocking(move || broker.write_checkpoints_blocking(&points)).await;
        if let Err(e) = written {
            tracing::error!("periodic checkpoint failed: {e}");
        }
    }

    /// Serves this shard's mailbox until shutdown; returns the closed partitions.
    pub async fn serve_mailbox(
        self: Rc<Self>,
        mut inbox: mpsc::UnboundedReceiver<ShardMsg>,
    ) -> Option<oneshot::Sender<Vec<PartitionCheckpoint>>> {
        while let Some(msg) = inbox.next().await {
            match msg {
                ShardMsg::Produce {
                    acks,
                    items,
                    sent,
                    reply,
                } => {
                    let received = sent.and_then(|_| crate::metrics::now());
                    // Append here, in mailbox order; only the wait runs as its own task.
                    let done = self.produce_local(acks, items);
                    crate::runtime::spawn_local(async move {
                        let results = done.await;
                        let replied = received.map(|_| std::time::Instant::now());
                        let _ = reply.send(ProduceReply {
                            results,
                            received,
                            replied,
                        });
                    });
                }
                ShardMsg::Shutdown { reply } => return Some(reply),
                other => {
                    let me = self.clone();
                    crate::runtime::spawn_local(async move { me.serve_msg(other).await });
                }
            }
        }
        None
    }

    async fn serve_msg(self: Rc<Self>, msg: ShardMsg) {
        match msg {
            ShardMsg::Fetch {
                items,
                response_bytes_max,
                wait,
                mut reply,
            } => {
                if let Some(wait) = wait {
                    let cancelled = reply.cancellation();
                    futures::pin_mut!(cancelled);
                    let waited =
                        futures::future::select(self.wait_for_data_until(&items, wait), cancelled)
                            .await;
                    if let futures::future::Either::Right(_) = waited {
                        return;
                    }
                }
                let _ = reply.send(self.fetch_local(items, response_bytes_max).await);
            }
            ShardMsg::Checkpoint { reply } => {
                let _ = reply.send(self.checkpoint_local().await);
            }
            ShardMsg::ListOffsets { items, reply } => {
                let _ = reply.send(self.list_offsets_local(items).await);
            }
            ShardMsg::OpenPartitions { parts, snap, reply } => {
                let _ = reply.send(self.open_partitions(parts, &snap).await);
            }
            ShardMsg::DeletePartitions { parts, reply } => {
                let _ = reply.send(self.delete_partitions(parts).await);
            }
            ShardMsg::Admin(AdminMsg::CreateTopics {
                topics,
                validate_only,
                reply,
            }) => {
                let _ = reply.send(self.create_topics_here(topics, validate_only).await);
            }
            ShardMsg::Admin(AdminMsg::DeleteTopics { names, reply }) => {
                let _ = reply.send(self.delete_topics_here(names).await);
            }
            ShardMsg::Group { op, reply } => {
                let _ = reply.send(crate::groups::service::serve(&self, op).await);
            }
            ShardMsg::Run(task) => task(self.clone()).await,
            ShardMsg::FetchUntil {
                items,
                response_bytes_max,
                min_bytes,
                wait,
                reply,
            } => {
                let read = crate::handlers::fetch::read_until(
                    self.clone(),
                    items,
                    response_bytes_max,
                    min_bytes,
                    wait,
                );
                crate::handlers::fetch::reply_unless_cancelled(read, reply).await;
            }
            ShardMsg::Produce { .. } | ShardMsg::Shutdown { .. } => {
                unreachable!("handled in serve_mailbox")
            }
        }
    }
}

/// `segment.ms` less a random share of `segment.jitter.ms`, drawn once per partition
/// open or config change, so partitions created together do not all roll together.
fn segment_ms_with_jitter(segment_ms: i64, jitter_ms: i64) -> i64 {
    if jitter_ms <= 0 {
        return segment_ms;
    }
    let r = u64::from_le_bytes(crate::util::random_uuid()[..8].try_into().expect("8 bytes"));
    let jitter = (r % jitter_ms.min(segment_ms) as u64) as i64;
    segment_ms - jitter
}
