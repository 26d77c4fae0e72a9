//! The cluster: metadata replicated by openraft on a controller thread of its own
//! (see ARCHITECTURE.md, "The cluster"). Nothing here runs on a shard; shards read the
//! published [`ClusterImage`] through a [`ClusterHandle`].

pub mod admin;
pub mod broker_configs;
pub mod config;
mod controller;
pub mod elect;
mod log_store;
mod net;
pub use net::{install_cluster_id, install_sasl, install_tls};
pub mod placement;
mod probe;
pub mod reassign;
pub mod state;
mod state_machine;
#[cfg(test)]
mod test_support;
pub mod topic_configs;
mod topics;
pub mod users;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex, RwLock};

pub use admin::{AdminCall, AdminReply};
pub use config::ClusterConfig;
pub use controller::start;
pub use elect::{ElectionResult, ElectionType};
pub use state::{PartitionState, TopicState, NO_LEADER};

openraft::declare_raft_types!(
    /// The Raft types of the metadata quorum: commands in, replies out, node ids as
    /// Kafka's `node.id`, the controller listener's address as the node.
    pub TypeConfig:
        D = state::Command,
        R = state::Reply,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A broker as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Its listeners by name, as registered (empty: registered before they were).
    pub listeners: Vec<state::Endpoint>,
}

impl BrokerInfo {
    /// host:port on the listener `name`; the one registered address when the broker
    /// did not register that listener.
    pub fn addr_on(&self, name: &str) -> (&str, u16) {
        self.listeners
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
            .map_or((self.host.as_str(), self.port), |l| {
                (l.host.as_str(), l.port)
            })
    }
}

/// What shards read: an immutable view, replaced whole after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterImage {
    /// The active controller (the Raft leader), if one is known.
    pub controller_id: Option<i32>,
    /// Registered, unfenced brokers by id.
    pub live_brokers: Vec<BrokerInfo>,
    /// Brokers that left `live_brokers` (fenced) within `GONE_LISTED`, and when. Metadata
    /// keeps listing them that long (`gone_still_listed`): librdkafka drops a broker
    /// missing from Metadata by resetting the leader of every partition it had queued
    /// there, and then waits for its once-a-second scan, which made failover ~1 s slower.
    pub recently_gone: Vec<(BrokerInfo, std::time::Instant)>,
    /// Every topic of the quorum, with replicas, ISR and leaders.
    pub topics: Arc<BTreeMap<String, TopicState>>,
    /// This process's own registration is applied here, so every change committed
    /// before it started is in `topics`: only then may a broker delete local data the
    /// image no longer lists (an image still replaying its log lists too little).
    pub caught_up: bool,
    /// Every ACL binding of the quorum (`security::acl::AclStore::follow` takes them).
    pub acls: Arc<Vec<crate::security::acl::AclBinding>>,
    /// Every SCRAM user of the quorum (`security::users::UserStore::follow` takes them).
    pub scram_users: Arc<crate::security::users::Users>,
    /// This member's formatted users were taken by the quorum (or there were none to
    /// take): it proposes them no more (`Command::BootstrapScramCredentials`).
    pub scram_bootstrapped: bool,
    /// Every client quota of the quorum (`quota::store::QuotaStore::follow` takes them).
    pub client_quotas: Arc<Vec<crate::quota::entity::QuotaRecord>>,
    /// The quorum's cluster-wide dynamic broker configs (BROKER "").
    pub default_broker_configs: Arc<broker_configs::BrokerConfigs>,
    /// The quorum's dynamic broker configs of this node (BROKER <node.id>).
    pub broker_configs: Arc<broker_configs::BrokerConfigs>,
}

/// How long Metadata keeps listing a broker after it is fenced (see
/// `ClusterImage::recently_gone`).
pub const GONE_LISTED: std::time::Duration = std::time::Duration::from_secs(3);

impl ClusterImage {
    /// Takes `brokers` as the live ones, remembering those that just left.
    pub fn set_live_brokers(&mut self, brokers: Vec<BrokerInfo>, now: std::time::Instant) {
        let live = |id: i32| brokers.iter().any(|b| b.node_id == id);
        self.recently_gone
            .retain(|(b, at)| !live(b.node_id) && now.saturating_duration_since(*at) < GONE_LISTED);
        let gone: Vec<BrokerInfo> = self
            .live_brokers
            .iter()
            .filter(|b| !live(b.node_id))
            .cloned()
            .collect();
        self.recently_gone
            .extend(gone.into_iter().map(|b| (b, now)));
        self.live_brokers = brokers;
    }

    /// The brokers fenced less than `GONE_LISTED` before `now`.
    pub fn gone_still_listed(&self, now: std::time::Instant) -> impl Iterator<Item = &BrokerInfo> {
        self.recently_gone
            .iter()
            .filter(move |(_, at)| now.saturating_duration_since(*at) < GONE_LISTED)
            .map(|(b, _)| b)
    }
}

type ChangeHook = Box<dyn Fn() + Send + Sync>;

/// How long a stopping broker waits for the quorum to move its leaderships away.
const CONTROLLED_SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The shards' end: the latest image, and the way in to the controller thread. The
/// controller thread is the only writer of the image.
pub struct ClusterHandle {
    image: RwLock<Arc<ClusterImage>>,
    /// This broker's `node.id` and the incarnation it registers with.
    pub node_id: i32,
    pub incarnation: String,
    /// Called (on the controller thread) after the image changed.
    on_change: Mutex<Option<ChangeHook>>,
    /// Set at controlled shutdown: heartbeats stop, so the broker stays fenced.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    calls: tokio::sync::mpsc::UnboundedSender<admin::Call>,
}

impl ClusterHandle {
    fn new(node_id: i32, calls: tokio::sync::mpsc::UnboundedSender<admin::Call>) -> ClusterHandle {
        ClusterHandle {
            image: RwLock::default(),
            node_id,
            incarnation: crate::util::base64_url(&crate::util::random_uuid()),
            on_change: Mutex::new(None),
            stopping: std::sync::atomic::AtomicBool::new(false),
            calls,
        }
    }

    pub fn image(&self) -> Arc<ClusterImage> {
        self.image.read().expect("image lock").clone()
    }

    /// Sets what runs after each change of the image (the broker asks its metadata
    /// shard to reconcile its partitions with the image).
    pub fn set_on_change(&self, hook: ChangeHook) {
        *self.on_change.lock().expect("hook lock") = Some(hook);
        self.changed();
    }

    fn changed(&self) {
        if let Some(hook) = &*self.on_change.lock().expect("hook lock") {
            hook();
        }
    }

    fn update(&self, change: impl FnOnce(&mut ClusterImage)) {
        let changed = {
            let mut guard = self.image.write().expect("image lock");
            let mut next = (**guard).clone();
            change(&mut next);
            let changed = next != **guard;
            if changed {
                *guard = Arc::new(next);
            }
            changed
        };
        if changed {
            self.changed();
        }
    }

    /// Sends an admin call to the controller thread; the answer comes once the change
    /// is committed and applied on this node (or refused).
    pub async fn call(&self, call: AdminCall) -> AdminReply {
        self.call_for_value(call).await.map(|_| ())
    }

    /// Controlled shutdown: stops heartbeats and fences this broker through the quorum,
    /// which moves every leadership it holds to another ISR member. Blocking (main
    /// thread, after the stop signal); gives up after `CONTROLLED_SHUTDOWN_WAIT`.
    pub fn controlled_shutdown_blocking(&self) -> AdminReply {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        let call = AdminCall::ControlledShutdown {
            node_id: self.node_id,
            incarnation: self.incarnation.clone(),
        };
        let answer = futures::executor::block_on(futures::future::select(
            Box::pin(self.call(call)),
            Box::pin(async {
                // A timer that needs no runtime: the call carries its own deadline
                // (PROPOSE_DEADLINE), this bounds a stuck controller thread.
                let (tx, rx) = futures::channel::oneshot::channel::<()>();
                std::thread::spawn(move || {
                    std::thread::sleep(CONTROLLED_SHUTDOWN_WAIT);
                    let _ = tx.send(());
                });
                let _ = rx.await;
            }),
        ));
        match answer {
            futures::future::Either::Left((r, _)) => r,
            futures::future::Either::Right(_) => Err((
                crate::protocol::errors::REQUEST_TIMED_OUT,
                "no answer from the quorum".into(),
            )),
        }
    }

    /// A block of producer ids unique in the cluster: its first id.
    pub async fn allocate_producer_ids(&self) -> Result<i64, (i16, String)> {
        let call = AdminCall::AllocateProducerIds {
            node_id: self.node_id,
        };
        match self.call_for_value(call).await? {
            Some(state::Reply::ProducerIdBlock(start)) => Ok(start),
            _ => Err((
                crate::protocol::errors::UNKNOWN_SERVER_ERROR,
                "no producer id block".into(),
            )),
        }
    }

    pub(super) async fn call_for_value(&self, call: AdminCall) -> admin::ValueReply {
        let (reply, rx) = futures::channel::oneshot::channel();
        if self.calls.send(admin::Call { call, reply }).is_err() {
            return Err((
                crate::protocol::errors::NOT_CONTROLLER,
                "the controller thread has stopped".into(),
            ));
        }
        rx.await.unwrap_or_else(|_| {
            Err((
                crate::protocol::errors::NOT_CONTROLLER,
                "the controller thread has stopped".into(),
            ))
        })
    }
}

#[cfg(test)]
impl Default for ClusterHandle {
    fn default() -> ClusterHandle {
        ClusterHandle::new(1, tokio::sync::mpsc::unbounded_channel().0)
    }
}

#[cfg(test)]
mod image_tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn broker(id: i32) -> BrokerInfo {
        BrokerInfo {
            node_id: id,
            host: "127.0.0.1".into(),
            port: 9000 + id as u16,
            rack: None,
            listeners: Vec::new(),
        }
    }

    fn listed(image: &ClusterImage, now: Instant) -> Vec<i32> {
        image.gone_still_listed(now).map(|b| b.node_id).collect()
    }

    #[test]
    fn a_fenced_broker_stays_listed_for_gone_listed_unless_it_returns() {
        let t0 = Instant::now();
        let mut image = ClusterImage::default();
        image.set_live_brokers(vec![broker(1), broker(2), broker(3)], t0);
        assert!(listed(&image, t0).is_empty());
        image.set_live_brokers(vec![broker(1), broker(3)], t0);
        assert_eq!(listed(&image, t0 + Duration::from_secs(1)), vec![2]);
        assert!(listed(&image, t0 + GONE_LISTED).is_empty());
        // Unchanged brokers keep the entry; a later change drops it once expired.
        image.set_live_brokers(vec![broker(1), broker(3)], t0 + Duration::from_secs(1));
        assert_eq!(image.recently_gone.len(), 1);
        image.set_live_brokers(vec![broker(1), broker(3)], t0 + GONE_LISTED);
        assert!(image.recently_gone.is_empty());
        // A broker back in time is live, not "gone".
        image.set_live_brokers(vec![broker(1)], t0);
        image.set_live_brokers(vec![broker(1), broker(3)], t0 + Duration::from_millis(10));
        assert!(listed(&image, t0 + Duration::from_millis(20)).is_empty());
    }
}
