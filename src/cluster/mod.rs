//! The cluster: metadata replicated by openraft on a controller thread of its own
//! (see ARCHITECTURE.md, "The cluster"). Nothing here runs on a shard; shards read the
//! published [`ClusterImage`] through a [`ClusterHandle`].

pub mod config;
mod controller;
mod log_store;
mod net;
pub mod placement;
pub mod state;
mod state_machine;
mod topics;

use std::io::Cursor;
use std::sync::{Arc, RwLock};

pub use config::ClusterConfig;
pub use controller::start;

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
}

/// What shards read: an immutable view, replaced whole after every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterImage {
    /// The active controller (the Raft leader), if one is known.
    pub controller_id: Option<i32>,
    /// Registered, unfenced brokers by id.
    pub live_brokers: Vec<BrokerInfo>,
}

/// The shards' end: the latest image. The controller thread is the only writer.
#[derive(Debug, Default)]
pub struct ClusterHandle {
    image: RwLock<Arc<ClusterImage>>,
}

impl ClusterHandle {
    pub fn image(&self) -> Arc<ClusterImage> {
        self.image.read().expect("image lock").clone()
    }

    fn update(&self, change: impl FnOnce(&mut ClusterImage)) {
        let mut guard = self.image.write().expect("image lock");
        let mut next = (**guard).clone();
        change(&mut next);
        if next != **guard {
            *guard = Arc::new(next);
        }
    }
}
