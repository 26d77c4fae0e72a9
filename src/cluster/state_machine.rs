//! The metadata state machine as openraft drives it: applies committed entries to
//! `ClusterState`, publishes the shards' `ClusterImage`, builds and installs snapshots
//! (`<metadata dir>/snapshot`, JSON, replaced atomically).

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::broker_configs::BrokerConfigs;
use super::state::{ClusterState, Reply};
use super::{BrokerInfo, ClusterHandle, TypeConfig};

type Error = StorageError<u64>;

fn any(e: impl std::fmt::Display) -> AnyError {
    AnyError::error(e.to_string())
}

/// What a snapshot file holds.
#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<u64, BasicNode>,
    state: ClusterState,
}

#[derive(Default)]
struct Inner {
    state: ClusterState,
    last_applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    snapshot: Option<(SnapshotMeta<u64, BasicNode>, Vec<u8>)>,
}

/// Cheap to clone: the snapshot builder shares it.
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Mutex<Inner>>,
    dir: PathBuf,
    handle: Arc<ClusterHandle>,
    /// The index of the last log entry whose effects the shards' image shows: what an
    /// admin call that proposed an entry waits for (`published_index`).
    published: Arc<AtomicU64>,
}

impl StateMachine {
    /// Loads the newest snapshot from `dir`, if any; openraft replays the log after it.
    pub fn open(dir: PathBuf, handle: Arc<ClusterHandle>) -> std::io::Result<StateMachine> {
        let mut inner = Inner::default();
        match std::fs::read(dir.join("snapshot")) {
            Ok(data) => {
                let file: SnapshotFile = serde_json::from_slice(&data)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                inner.state = file.state;
                inner.last_applied = file.meta.last_log_id;
                inner.membership = file.meta.last_membership.clone();
                inner.snapshot = Some((file.meta, data));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let sm = StateMachine {
            inner: Arc::new(Mutex::new(inner)),
            dir,
            handle,
            published: Arc::new(AtomicU64::new(0)),
        };
        sm.publish();
        Ok(sm)
    }

    fn publish(&self) {
        let dynamic: (BrokerConfigs, BrokerConfigs);
        let index: u64;
        let (brokers, topics, caught_up, acls, (scram_users, scram_bootstrapped), quotas) = {
            let inner = self.inner.lock().expect("state lock");
            index = inner.last_applied.map_or(0, |l| l.index);
            let state = &inner.state;
            let brokers: Vec<BrokerInfo> = state
                .live_brokers()
                .map(|b| BrokerInfo {
                    node_id: b.registration.node_id,
                    host: b.registration.host.clone(),
                    port: b.registration.port,
                    rack: b.registration.rack.clone(),
                    listeners: b.registration.listeners.clone(),
                })
                .collect();
            let caught_up = state
                .brokers
                .get(&self.handle.node_id)
                .is_some_and(|b| b.registration.incarnation == self.handle.incarnation);
            let acls: Vec<_> = state.acls.iter().cloned().collect();
            let users = (
                scram_users(state),
                state.scram_bootstrapped.contains(&self.handle.node_id),
            );
            let quotas = state.client_quotas.clone();
            dynamic = (
                state.default_broker_configs.clone(),
                state.broker_configs(Some(self.handle.node_id)).clone(),
            );
            (
                brokers,
                state.topics.clone(),
                caught_up,
                acls,
                users,
                quotas,
            )
        };
        self.handle.update(|image| {
            image.set_live_brokers(brokers, std::time::Instant::now());
            if *image.topics != topics {
                image.topics = std::sync::Arc::new(topics);
            }
            image.caught_up = caught_up;
            if *image.acls != acls {
                image.acls = std::sync::Arc::new(acls);
            }
            if *image.scram_users != scram_users {
                image.scram_users = std::sync::Arc::new(scram_users);
            }
            image.scram_bootstrapped = scram_bootstrapped;
            if *image.client_quotas != quotas {
                image.client_quotas = std::sync::Arc::new(quotas);
            }
            let (default_configs, node_configs) = dynamic;
            if *image.default_broker_configs != default_configs {
                image.default_broker_configs = Arc::new(default_configs);
            }
            if *image.broker_configs != node_configs {
                image.broker_configs = Arc::new(node_configs);
            }
        });
        self.published.fetch_max(index, Ordering::Release);
    }

    /// The index of the last log entry this member has applied and published to its
    /// shards.
    pub fn published_index(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// A copy of the state (tests compare whole states).
    #[cfg(test)]
    pub fn state(&self) -> ClusterState {
        self.read(ClusterState::clone)
    }

    pub fn handle(&self) -> &ClusterHandle {
        &self.handle
    }

    /// Reads the state under its lock, for the controller's decisions, without copying it.
    pub fn read<R>(&self, f: impl FnOnce(&ClusterState) -> R) -> R {
        f(&self.inner.lock().expect("state lock").state)
    }
}

/// The quorum's SCRAM users as logins read them. A record that does not decode (none
/// should: brokers encode them) is left out with a log line rather than stopping the
/// image.
fn scram_users(state: &ClusterState) -> crate::security::users::Users {
    let mut users = crate::security::users::Users::new();
    for r in &state.scram_credentials {
        match r.decode() {
            Ok((m, c)) => {
                users.entry(r.name.clone()).or_default().insert(m, c);
            }
            Err(e) => tracing::error!("SCRAM record left out of the image: {e}"),
        }
    }
    users
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, Error> {
        let (meta, data) = {
            let inner = self.inner.lock().expect("state lock");
            let last = inner.last_applied;
            let meta = SnapshotMeta {
                last_log_id: last,
                last_membership: inner.membership.clone(),
                snapshot_id: last.map_or("0-0".to_string(), |l| {
                    format!("{}-{}", l.leader_id, l.index)
                }),
            };
            let file = SnapshotFile {
                meta: meta.clone(),
                state: inner.state.clone(),
            };
            let data = serde_json::to_vec(&file)
                .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
            (meta, data)
        };
        crate::util::write_file_atomic_blocking(&self.dir.join("snapshot"), &data)
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        self.inner.lock().expect("state lock").snapshot = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), Error> {
        let inner = self.inner.lock().expect("state lock");
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, Error>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut replies = Vec::new();
        {
            let mut inner = self.inner.lock().expect("state lock");
            for entry in entries {
                inner.last_applied = Some(entry.log_id);
                let reply = match entry.payload {
                    EntryPayload::Blank => Reply::Ok,
                    EntryPayload::Normal(command) => {
                        let reply = inner.state.apply(entry.log_id.index, &command);
                        tracing::debug!(
                            ?command,
                            ?reply,
                            index = entry.log_id.index,
                            "metadata applied"
                        );
                        reply
                    }
                    EntryPayload::Membership(membership) => {
                        inner.membership = StoredMembership::new(Some(entry.log_id), membership);
                        Reply::Ok
                    }
                };
                replies.push(reply);
            }
        }
        self.publish();
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, Error> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), Error> {
        let data = snapshot.into_inner();
        let file: SnapshotFile = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(None, any(e)))?;
        crate::util::write_file_atomic_blocking(&self.dir.join("snapshot"), &data)
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        {
            let mut inner = self.inner.lock().expect("state lock");
            inner.state = file.state;
            inner.last_applied = meta.last_log_id;
            inner.membership = meta.last_membership.clone();
            inner.snapshot = Some((meta.clone(), data));
        }
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, Error> {
        let inner = self.inner.lock().expect("state lock");
        Ok(inner.snapshot.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::{BrokerRegistration, Command};
    use openraft::{CommittedLeaderId, Membership};
    use std::collections::BTreeSet;

    fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload,
        }
    }

    fn register(node_id: i32) -> EntryPayload<TypeConfig> {
        EntryPayload::Normal(Command::RegisterBroker(BrokerRegistration {
            node_id,
            incarnation: format!("inc-{node_id}"),
            host: "127.0.0.1".into(),
            port: 9000 + node_id as u16,
            rack: Some("r1".into()),
            listeners: Vec::new(),
            at_ms: 0,
            cluster_id: String::new(),
        }))
    }

    fn unfence(node_id: i32) -> EntryPayload<TypeConfig> {
        EntryPayload::Normal(Command::UnfenceBroker {
            node_id,
            incarnation: format!("inc-{node_id}"),
        })
    }

    #[test]
    fn applies_publishes_snapshots_and_installs_them_elsewhere() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let tmp = tempfile::tempdir().unwrap();
            let handle = Arc::new(ClusterHandle::default());
            let mut sm = StateMachine::open(tmp.path().join("a"), handle.clone()).unwrap();
            std::fs::create_dir_all(tmp.path().join("a")).unwrap();
            let voters: BTreeSet<u64> = [1, 2, 3].into();
            let membership = Membership::new(vec![voters], None);
            let replies = sm
                .apply(vec![
                    entry(1, EntryPayload::Membership(membership)),
                    entry(2, register(1)),
                    entry(3, register(2)),
                    entry(4, unfence(2)),
                ])
                .await
                .unwrap();
            assert_eq!(replies[1], Reply::BrokerEpoch(2));
            let live: Vec<i32> = handle
                .image()
                .live_brokers
                .iter()
                .map(|b| b.node_id)
                .collect();
            assert_eq!(live, [2], "only the unfenced broker is published");

            // Dynamic broker configs: the default, and this node's own (node 1) only.
            let set = |node_id: Option<i32>, key: &str| {
                EntryPayload::Normal(Command::SetBrokerConfigs {
                    node_id,
                    configs: [(key.to_string(), "1000".to_string())].into(),
                    expected: None,
                })
            };
            sm.apply(vec![
                entry(5, set(None, "log.retention.ms")),
                entry(6, set(Some(1), "log.segment.delete.delay.ms")),
                entry(7, set(Some(2), "log.flush.interval.ms")),
            ])
            .await
            .unwrap();
            let image = handle.image();
            let keys = |m: &BrokerConfigs| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&image.default_broker_configs), ["log.retention.ms"]);
            assert_eq!(keys(&image.broker_configs), ["log.segment.delete.delay.ms"]);

            let snapshot = sm.build_snapshot().await.unwrap();
            assert_eq!(snapshot.meta.last_log_id.map(|l| l.index), Some(7));
            // A fresh node installs it and holds the same state and image.
            let other_handle = Arc::new(ClusterHandle::default());
            std::fs::create_dir_all(tmp.path().join("b")).unwrap();
            let mut other = StateMachine::open(tmp.path().join("b"), other_handle.clone()).unwrap();
            other
                .install_snapshot(&snapshot.meta, snapshot.snapshot)
                .await
                .unwrap();
            assert_eq!(other.state(), sm.state());
            assert_eq!(other_handle.image(), handle.image());
            let (applied, membership) = other.applied_state().await.unwrap();
            assert_eq!(applied.map(|l| l.index), Some(7));
            assert_eq!(membership.log_id().map(|l| l.index), Some(1));
            // And a restart of the first loads its snapshot file.
            let reopened = StateMachine::open(tmp.path().join("a"), Arc::default()).unwrap();
            assert_eq!(reopened.state(), sm.state());
        });
    }
}
