//! One member of a classic group, and the answers its waiting JoinGroup / SyncGroup
//! requests receive.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;

use crate::protocol::errors as ec;

/// The answer to a JoinGroup, sent when the rebalance completes (or at once).
#[derive(Debug, Clone, Default)]
pub struct JoinReply {
    pub error_code: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: every member with its metadata for `protocol`.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinReply {
    pub fn error(error_code: i16, member_id: &str) -> JoinReply {
        JoinReply {
            error_code,
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinReply::default()
        }
    }
}

/// The answer to a SyncGroup: this member's assignment.
#[derive(Debug, Clone, Default)]
pub struct SyncReply {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncReply {
    pub fn error(error_code: i16) -> SyncReply {
        SyncReply {
            error_code,
            ..SyncReply::default()
        }
    }
}

/// A member. While it waits in JoinGroup or SyncGroup it is kept alive whatever its
/// session timeout (as Kafka does); otherwise it is removed once `expires_at` passes
/// without a heartbeat, join, sync or commit.
#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub join_waiter: Option<oneshot::Sender<JoinReply>>,
    pub sync_waiter: Option<oneshot::Sender<SyncReply>>,
    pub expires_at: Instant,
}

impl Member {
    pub fn touch(&mut self, now: Instant) {
        self.expires_at = now + self.session_timeout;
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub fn waiting(&self) -> bool {
        self.join_waiter.is_some() || self.sync_waiter.is_some()
    }

    /// Ends whatever request the member is waiting in with `error_code`.
    pub fn fail_waiters(&mut self, error_code: i16) {
        if let Some(w) = self.join_waiter.take() {
            let _ = w.send(JoinReply::error(error_code, &self.id));
        }
        if let Some(w) = self.sync_waiter.take() {
            let _ = w.send(SyncReply::error(error_code));
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.fail_waiters(ec::UNKNOWN_MEMBER_ID);
    }
}
