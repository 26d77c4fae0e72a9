//! The broker's state: what all shards share (`Broker`, behind an `Arc`) and what each
//! shard owns alone (`shard::Shard`, behind an `Rc` on its own thread).

pub mod admin;
pub mod cache_budget;
pub mod cluster_sync;
pub mod fetch_sessions;
pub mod log_dirs;
pub mod maintenance;
pub mod memory;
pub mod metadata;
pub mod producer_ids;
pub mod request_limits;
pub mod router;
pub mod shard;
pub mod users_sync;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use futures::channel::mpsc;

use crate::config::BrokerConfig;
use crate::storage::checkpoint::{
    self, Checkpoint, LOG_START_OFFSET_CHECKPOINT_FILE, RECOVERY_POINT_CHECKPOINT_FILE,
};
use metadata::MetadataStore;
use producer_ids::ProducerIds;
use router::PartitionCheckpoint;
use router::ShardMsg;

/// Offsets read from the checkpoint files at start-up, per (topic, partition).
#[derive(Debug, Default, Clone)]
pub struct Checkpoints {
    pub recovery_points: HashMap<(String, i32), i64>,
    pub log_start_offsets: HashMap<(String, i32), i64>,
    /// `cleaner-offset-checkpoint` of each log dir, in `log_dirs` order.
    pub cleaner_offsets: Vec<Checkpoint>,
}

/// State every shard can read. Mutable parts are either atomics, the published metadata
/// snapshot (one writer), or mailboxes.
pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub log_dirs: Vec<PathBuf>,
    pub shard_count: usize,
    pub metadata: MetadataStore,
    pub producer_ids: ProducerIds,
    pub checkpoints: Checkpoints,
    /// When the broker was built (uptime in the admin API).
    pub started_at: std::time::Instant,
    /// Which log dirs are online (KIP-112).
    pub dirs: log_dirs::LogDirStates,
    /// The cluster metadata image, in cluster mode (KRaft keys set); `None` for a
    /// single broker.
    pub cluster: Option<std::sync::Arc<crate::cluster::ClusterHandle>>,
    /// The TLS context of each listener in `config.listeners` order; `None` for a
    /// plaintext one. Set by `serve` before the shards start.
    pub tls: Vec<Option<std::sync::Arc<crate::server::tls::TlsContext>>>,
    /// SCRAM users (SASL logins, AlterUserScramCredentials): a single broker's file, or
    /// the quorum's records in a cluster (`users_sync`; see ARCHITECTURE.md, "Security").
    pub users: crate::security::users::UserStore,
    /// The ACLs (`security::acl`): the first log dir's file on a single broker, the
    /// quorum's records in a cluster (set by `serve`).
    pub acls: crate::security::acl::AclStore,
    /// Failed logins per client address, to slow down guessing.
    pub auth_failures: crate::security::throttle::FailureThrottle,
    /// The partitions of the ongoing transactions this broker coordinates (KIP-890).
    pub txn_partitions: crate::txn::verify::OpenPartitions,
    /// The follower side's budget for throttled replica fetches (reassignment).
    pub replication_throttle: crate::replication::throttle::Bucket,
    /// The leader side's budget for what it sends throttled followers (reassignment).
    pub leader_replication_throttle: crate::replication::throttle::Bucket,
    /// Connection counts against `max.connections*` (`quota::conn_limits`).
    pub conn_limits: std::sync::Arc<crate::quota::conn_limits::ConnectionLimits>,
    /// Client quotas and their sensors (`quota::manager`): the first log dir's file on a
    /// single broker (set by `serve`), the quorum's records in a cluster.
    pub quotas: crate::quota::manager::QuotaManager,
    /// Leaders whose connects this broker's replica fetchers saw refused: Metadata
    /// answers their partitions LEADER_NOT_AVAILABLE until they are fenced.
    pub refusals: crate::replication::refusals::Refusals,
    mailboxes: Vec<mpsc::UnboundedSender<ShardMsg>>,
    /// Shards that have opened their partitions; connections are accepted once all have.
    shards_ready: AtomicUsize,
    /// Receivers handed to each shard as it starts.
    inboxes: Mutex<Vec<Option<mpsc::UnboundedReceiver<ShardMsg>>>>,
    /// Held while checkpoint files are written: the periodic writer (on a blocking
    /// thread) and the shutdown writer must not interleave on the same temp files.
    checkpoint_files: Mutex<()>,
    /// Each dir's cleaner checkpoint as the shards' cleaners advance it; the file is
    /// rewritten from here, under this lock, after every cleaning pass.
    cleaner_offsets: Mutex<Vec<Checkpoint>>,
}

impl Broker {
    /// The brokers clients are told about and the controller id. In cluster mode: the
    /// live brokers of the metadata image, this one always among them (it is answering,
    /// and it leads its own partitions), and the active controller (-1 while there is
    /// none). A single broker: itself, its own controller.
    ///
    /// This broker is named by the advertised address of `listener` (the one the asking
    /// client came in on, an index into `config.listeners`); other brokers by their
    /// registered listener of the same name (their first listener's address when they
    /// registered none of that name).
    pub fn cluster_view(&self, listener: usize) -> (Vec<crate::cluster::BrokerInfo>, i32) {
        let client_listener = self.config.listeners.get(listener);
        let adv = client_listener.map_or(&self.config.advertised, |l| &l.advertised);
        let me = crate::cluster::BrokerInfo {
            node_id: self.config.node_id,
            host: adv.host.clone(),
            port: adv.port,
            rack: self.config.cluster.as_ref().and_then(|c| c.rack.clone()),
            listeners: Vec::new(),
        };
        let Some(cluster) = &self.cluster else {
            return (vec![me], self.config.node_id);
        };
        let image = cluster.image();
        let mut brokers: Vec<_> = image
            .live_brokers
            .iter()
            .filter(|b| b.node_id != me.node_id)
            .map(|b| {
                let mut b = b.clone();
                if let Some(l) = client_listener {
                    let (host, port) = b.addr_on(&l.name);
                    (b.host, b.port) = (host.to_string(), port);
                }
                b
            })
            .collect();
        brokers.push(me);
        brokers.sort_by_key(|b| b.node_id);
        let controller = controller_listed(image.controller_id, &brokers, self.config.node_id);
        (brokers, controller)
    }

    pub fn new(
        config: BrokerConfig,
        cluster_id: String,
        metadata: MetadataStore,
        producer_ids: ProducerIds,
        checkpoints: Checkpoints,
        offline_dirs: Vec<Option<String>>,
        users: crate::security::users::UserStore,
    ) -> Broker {
        let auth_delay = std::time::Duration::from_millis(config.failed_authentication_delay_ms);
        let shard_count = config.shard_count();
        let (mailboxes, inboxes): (Vec<_>, Vec<_>) = (0..shard_count)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded();
                (tx, Some(rx))
            })
            .unzip();
        let acls = crate::security::acl::AclStore::in_cluster(config.authorizer.clone());
        let listener_names: Vec<String> = config.listeners.iter().map(|l| l.name.clone()).collect();
        let conn_limits = std::sync::Arc::new(crate::quota::conn_limits::ConnectionLimits::new(
            config.quota.limits.clone(),
            &listener_names,
        ));
        let quotas =
            crate::quota::manager::QuotaManager::new(config.quota.clone(), Default::default());
        Broker {
            log_dirs: config.log_dirs.clone(),
            acls,
            config,
            cluster_id,
            shard_count,
            metadata,
            producer_ids,
            txn_partitions: Default::default(),
            started_at: std::time::Instant::now(),
            dirs: log_dirs::LogDirStates::new(offline_dirs),
            cluster: None,
            tls: Vec::new(),
            users,
            auth_failures: crate::security::throttle::FailureThrottle::new(auth_delay),
            replication_throttle: Default::default(),
            leader_replication_throttle: Default::default(),
            conn_limits,
            quotas,
            refusals: Default::default(),
            mailboxes,
            shards_ready: AtomicUsize::new(0),
            inboxes: Mutex::new(inboxes),
            cleaner_offsets: Mutex::new(checkpoints.cleaner_offsets.clone()),
            checkpoints,
            checkpoint_files: Mutex::new(()),
        }
    }

    /// The broker-level layers topic configs resolve through, for a snapshot.
    pub fn config_layers<'a>(
        &'a self,
        snap: &'a metadata::Snapshot,
    ) -> crate::topic_config::BrokerLayers<'a> {
        crate::topic_config::BrokerLayers {
            dynamic_broker: &snap.broker_configs,
            dynamic_default: &snap.default_broker_configs,
            static_props: &self.config.props,
        }
    }

    /// A topic's effective configs (Kafka's defaults for a topic not in `snap`).
    pub fn topic_settings(
        &self,
        snap: &metadata::Snapshot,
        topic: &str,
    ) -> crate::topic_config::TopicSettings {
        let empty = std::collections::BTreeMap::new();
        let overrides = snap.topic(topic).map_or(&empty, |t| &t.configs);
        self.config_layers(snap).settings(overrides)
    }

    /// Sends a message to shard `to`. Unbounded on purpose: a send never waits, so the
    /// order in which one connection's requests reach an owner shard is the order they
    /// were read. Memory stays bounded by the in-flight request limit per connection.
    pub fn send(&self, to: usize, msg: ShardMsg) {
        // A closed mailbox means that shard is shutting down; the reply sender inside the
        // message is dropped with it and the waiting handler sees the shutdown.
        crate::metrics::add(crate::metrics::Counter::ShardMessages, 1);
        let _ = self.mailboxes[to].unbounded_send(msg);
    }

    pub fn take_inbox(&self, shard: usize) -> Option<mpsc::UnboundedReceiver<ShardMsg>> {
        self.inboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(shard)
            .and_then(Option::take)
    }

    /// Writes `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint` in
    /// every log dir from `points` (each dir's file lists that dir's partitions).
    /// Blocking: call from start-up/shutdown code or through `runtime::blocking`.
    pub fn write_checkpoints_blocking(&self, points: &[PartitionCheckpoint]) -> Result<(), String> {
        let _guard = self
            .checkpoint_files
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut per_dir: HashMap<usize, (Checkpoint, Checkpoint)> = HashMap::new();
        for c in points {
            let e = per_dir.entry(c.dir).or_default();
            e.0.insert((c.topic.clone(), c.partition), c.recovery_point);
            e.1.insert((c.topic.clone(), c.partition), c.log_start_offset);
        }
        for (i, d) in self.log_dirs.iter().enumerate() {
            let (rp, ls) = per_dir.remove(&i).unwrap_or_default();
            if self.dirs.is_offline(i) {
                // Its partitions are not reported; writing would erase their entries.
                continue;
            }
            let written = [
                (RECOVERY_POINT_CHECKPOINT_FILE, rp),
                (LOG_START_OFFSET_CHECKPOINT_FILE, ls),
            ]
            .into_iter()
            .try_for_each(|(file, entries)| {
                let path = d.join(file);
                crate::storage::fault::check(&path)?;
                checkpoint::write_checkpoint_blocking(&path, &entries)
            });
            if let Err(e) = written {
                // An I/O error writing a dir's checkpoints takes that dir offline.
                self.dirs.take_offline(i, d, &e.to_string());
                if i == 0 {
                    return Err(e.to_string());
                }
            }
        }
        Ok(())
    }

    /// Records that `topic`-`partition` (in log dir `dir`) is cleaned below `offset`
    /// (`None`: forget the partition) and rewrites that dir's
    /// `cleaner-offset-checkpoint`. Blocking: call through `runtime::blocking`.
    pub fn write_cleaner_offset_blocking(
        &self,
        dir: usize,
        topic: &str,
        partition: i32,
        offset: Option<i64>,
    ) -> Result<(), String> {
        let mut all = self
            .cleaner_offsets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if all.len() < self.log_dirs.len() {
            all.resize_with(self.log_dirs.len(), Checkpoint::new);
        }
        let entries = &mut all[dir];
        let key = (topic.to_string(), partition);
        let changed = match offset {
            Some(offset) => entries.insert(key, offset) != Some(offset),
            None => entries.remove(&key).is_some(),
        };
        if !changed || self.dirs.is_offline(dir) {
            return Ok(());
        }
        let path = self.log_dirs[dir].join(checkpoint::CLEANER_OFFSET_CHECKPOINT_FILE);
        let written = crate::storage::fault::check(&path)
            .and_then(|()| checkpoint::write_checkpoint_blocking(&path, entries));
        if let Err(e) = written {
            self.dirs
                .take_offline(dir, &self.log_dirs[dir], &e.to_string());
            return Err(e.to_string());
        }
        Ok(())
    }

    pub fn mark_ready(&self) {
        self.shards_ready.fetch_add(1, Ordering::AcqRel);
    }

    pub fn all_ready(&self) -> bool {
        self.shards_ready.load(Ordering::Acquire) >= self.shard_count
    }
}

/// The controller id a Metadata or DescribeCluster answer names: the active controller
/// when it is among the `brokers` listed, else this broker (`me`). Just after a restart
/// the quorum may name a controller whose registration this member has not applied
/// yet; a client told of a controller it was not given the address of fails its admin
/// calls (kafka-python: NodeNotReadyError), and any member takes them. Kafka's KRaft
/// brokers likewise answer a live broker, not the quorum's controller. No controller
/// known: -1, as before (clients wait for one).
fn controller_listed(
    controller: Option<i32>,
    brokers: &[crate::cluster::BrokerInfo],
    me: i32,
) -> i32 {
    match controller {
        None => -1,
        Some(id) if brokers.iter().any(|b| b.node_id == id) => id,
        Some(_) => me,
    }
}

#[cfg(test)]
mod controller_tests {
    use super::*;

    #[test]
    fn a_controller_not_listed_is_answered_as_this_broker() {
        let broker = |node_id| crate::cluster::BrokerInfo {
            node_id,
            host: "h".into(),
            port: 1,
            rack: None,
            listeners: Vec::new(),
        };
        let listed = [broker(1), broker(2)];
        assert_eq!(controller_listed(Some(2), &listed, 1), 2);
        assert_eq!(controller_listed(Some(3), &listed, 1), 1);
        assert_eq!(controller_listed(None, &listed, 1), -1);
    }
}
