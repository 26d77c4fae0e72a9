//! The cluster metadata state machine: a pure function of the committed Raft entries.
//!
//! Every node applies the same commands in the same order and so holds the same
//! `ClusterState`. Commands carry every decision already made (which broker to fence,
//! and later which replicas a partition gets): `apply` never reads a clock, a random
//! source or anything local, so replaying the log always gives the same state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::security::acl::AclBinding;
use crate::security::users::CredentialRecord;

pub use super::elect::{ElectionResult, ElectionType};
pub use super::topics::{PartitionState, TopicState, NO_LEADER};

/// A change to the cluster metadata, as stored in the Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A broker (re)starting: its endpoint, rack and incarnation (a new random id per
    /// process start). A registration replaces the previous one and leaves the broker
    /// fenced until its first heartbeat reaches the active controller.
    RegisterBroker(BrokerRegistration),
    /// The active controller saw no heartbeat from the broker (this incarnation) for
    /// `broker.session.timeout.ms`.
    FenceBroker {
        node_id: i32,
        incarnation: String,
        /// The proposer's wall clock (ms since the Unix epoch): the elections this fence
        /// makes avoid brokers that were down shortly before (`topics::LEADER_SETTLE_MS`).
        /// 0 in commands from before it was recorded.
        #[serde(default)]
        at_ms: u64,
    },
    /// The active controller got a heartbeat from a fenced broker of this incarnation.
    UnfenceBroker {
        node_id: i32,
        incarnation: String,
    },
    /// A topic with its replica lists, chosen by the active controller
    /// (`placement::assign` or the request's explicit assignment).
    CreateTopic {
        name: String,
        id: String,
        configs: BTreeMap<String, String>,
        assignment: Vec<Vec<i32>>,
    },
    /// More partitions for a topic, with their replica lists.
    CreatePartitions {
        name: String,
        assignment: Vec<Vec<i32>>,
    },
    DeleteTopic {
        name: String,
    },
    /// A topic's config overrides, replaced whole, made by the proposing member's
    /// controller thread from the ops of an AlterConfigs and the map it read
    /// (`topic_configs::alter`). Applied only while the overrides are still `expected`
    /// (`None`, as in commands of builds before it: always), so two members' concurrent
    /// changes never lose one.
    SetTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<BTreeMap<String, String>>,
    },
    /// A block of `PRODUCER_ID_BLOCK` producer ids for a broker (Kafka's
    /// AllocateProducerIds): ids are unique across the cluster.
    AllocateProducerIds {
        node_id: i32,
    },
    /// A partition leader's new ISR (Kafka's AlterPartition): applied only when `leader`
    /// still leads at `leader_epoch` and the partition is at `partition_epoch`, so a
    /// deposed leader's or an outdated request changes nothing.
    AlterPartition {
        topic: String,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    /// Kafka's ElectLeaders: each partition decided by `elect::ElectionType`'s rule from
    /// the state alone (see `elect.rs`).
    ElectLeaders {
        election: ElectionType,
        partitions: Vec<(String, i32)>,
    },
    /// ACL bindings to add (CreateAcls); those already present change nothing.
    CreateAcls {
        bindings: Vec<AclBinding>,
    },
    /// ACL bindings to remove, exactly: the proposing broker resolved DeleteAcls'
    /// filters against its image, so what it answers is what goes.
    DeleteAcls {
        bindings: Vec<AclBinding>,
    },
    /// Starts a reassignment of a partition to `target` replicas (KIP-455), replacing
    /// one in progress, or cancels the one in progress (`None`). See `reassign.rs`.
    AlterPartitionReassignment {
        topic: String,
        partition: i32,
        target: Option<Vec<i32>>,
    },
    /// SCRAM credentials set (replacing the same user and mechanism) or removed
    /// (AlterUserScramCredentials, checked by the broker that took it). See `users.rs`.
    AlterScramCredentials {
        upserts: Vec<CredentialRecord>,
        deletions: Vec<super::users::Deletion>,
    },
    /// A member's users from `storage format --add-scram`, taken the first time this
    /// node proposes them, and only where the quorum has none for that user and
    /// mechanism. See `users.rs`.
    BootstrapScramCredentials {
        node_id: i32,
        credentials: Vec<CredentialRecord>,
    },
    /// Client quota changes (AlterClientQuotas), applied in order (`quota::entity`).
    AlterClientQuotas {
        changes: Vec<crate::quota::entity::QuotaChange>,
    },
    /// A BROKER resource's dynamic configs, replaced whole (an empty map removes them):
    /// the cluster-wide default (`node_id: None`) or one node's own, made by the
    /// proposing member's controller thread from the ops of an AlterConfigs and the map
    /// it read (`broker_configs::alter`). Applied only while the map is still
    /// `expected` (`None`: always), so two members' concurrent changes never lose one.
    SetBrokerConfigs {
        node_id: Option<i32>,
        configs: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<BTreeMap<String, String>>,
    },
}

/// What `apply` answers to the proposer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Ok,
    /// The broker epoch of a registration: the Raft log index that registered it.
    BrokerEpoch(i64),
    /// The first id of an allocated producer id block.
    ProducerIdBlock(i64),
    /// The command did not apply (its reason); the state is unchanged.
    Rejected(String),
    /// Each partition's outcome of an `ElectLeaders`.
    Elections(Vec<ElectionResult>),
    /// A registration whose cluster.id is not the quorum's (Kafka's
    /// INCONSISTENT_CLUSTER_ID): the broker's log dirs belong to another cluster.
    InconsistentClusterId {
        quorum: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    pub node_id: i32,
    pub incarnation: String,
    /// The client listener as advertised.
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    /// Every client listener as advertised, by name (Kafka's registration endpoints);
    /// empty in registrations from before they were recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<Endpoint>,
    /// The registering broker's wall clock (ms since the Unix epoch); 0 in registrations
    /// from before it was recorded. A re-registration of a broker that was never fenced
    /// (a fast restart) counts as it going down then (`BrokerState::down_at_ms`).
    #[serde(default)]
    pub at_ms: u64,
    /// The cluster.id of the broker's meta.properties; empty in registrations from
    /// before it was recorded (those are not checked).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_id: String,
}

/// One named listener's advertised address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    pub registration: BrokerRegistration,
    /// The log index of the registration (Kafka's broker epoch).
    pub epoch: i64,
    /// Fenced brokers are not listed to clients and (later) lead nothing.
    pub fenced: bool,
    /// When this broker last went down (fenced, or re-registered without a fence), by
    /// the proposer's clock; 0 if never. Elections prefer brokers down longer ago than
    /// `topics::LEADER_SETTLE_MS`.
    #[serde(default)]
    pub down_at_ms: u64,
}

/// The whole metadata; serialized as is into snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    pub brokers: BTreeMap<i32, BrokerState>,
    #[serde(default)]
    pub topics: BTreeMap<String, TopicState>,
    /// The first producer id not yet given to any broker.
    #[serde(default)]
    pub next_producer_id: i64,
    /// Every ACL binding (`security::acl`), enforced alike by every member.
    #[serde(default)]
    pub acls: BTreeSet<AclBinding>,
    /// Every SCRAM credential, one per (user, mechanism): every member logs users in
    /// from these (`users.rs`).
    #[serde(default)]
    pub scram_credentials: BTreeSet<CredentialRecord>,
    /// The members whose formatted users were taken (`BootstrapScramCredentials`).
    #[serde(default)]
    pub scram_bootstrapped: BTreeSet<i32>,
    /// Every client quota, sorted by entity, enforced alike by every member.
    #[serde(default)]
    pub client_quotas: Vec<crate::quota::entity::QuotaRecord>,
    /// The cluster.id of the first registration that carried one; every later
    /// registration must carry the same (`Reply::InconsistentClusterId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The cluster-wide dynamic broker configs (BROKER "").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub default_broker_configs: BTreeMap<String, String>,
    /// Each node's own dynamic broker configs (BROKER <node.id>), by node id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
}

impl ClusterState {
    /// Applies the command committed at log `index`.
    pub fn apply(&mut self, index: u64, command: &Command) -> Reply {
        match command {
            Command::RegisterBroker(registration) => {
                if !registration.cluster_id.is_empty() {
                    match &self.cluster_id {
                        Some(quorum) if *quorum != registration.cluster_id => {
                            return Reply::InconsistentClusterId {
                                quorum: quorum.clone(),
                            }
                        }
                        Some(_) => {}
                        None => self.cluster_id = Some(registration.cluster_id.clone()),
                    }
                }
                let epoch = index as i64;
                // A restart the quorum did not fence first went down now; a fenced one
                // went down at its fence; a first registration was never down.
                let down_at_ms = match self.brokers.get(&registration.node_id) {
                    Some(old) if old.fenced => old.down_at_ms,
                    Some(_) => registration.at_ms,
                    None => 0,
                };
                self.brokers.insert(
                    registration.node_id,
                    BrokerState {
                        registration: registration.clone(),
                        epoch,
                        fenced: true,
                        down_at_ms,
                    },
                );
                // A restart is a fencing of the old incarnation: its leaderships move.
                self.on_fenced(registration.node_id, registration.at_ms);
                Reply::BrokerEpoch(epoch)
            }
            Command::FenceBroker {
                node_id,
                incarnation,
                at_ms,
            } => self.set_fenced(*node_id, incarnation, Some(*at_ms)),
            Command::UnfenceBroker {
                node_id,
                incarnation,
            } => self.set_fenced(*node_id, incarnation, None),
            Command::CreateTopic {
                name,
                id,
                configs,
                assignment,
            } => self.create_topic(name, id, configs, assignment),
            Command::CreatePartitions { name, assignment } => self.add_partitions(name, assignment),
            Command::DeleteTopic { name } => self.delete_topic(name),
            Command::SetTopicConfigs {
                name,
                configs,
                expected,
            } => self.set_topic_configs(name, configs, expected.as_ref()),
            Command::AllocateProducerIds { .. } => {
                let start = self.next_producer_id;
                self.next_producer_id += crate::broker::producer_ids::PRODUCER_ID_BLOCK;
                Reply::ProducerIdBlock(start)
            }
            Command::AlterPartition {
                topic,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                let reply = self.alter_partition(
                    topic,
                    *partition,
                    (*leader, *leader_epoch, *partition_epoch),
                    isr,
                );
                // A reassignment completes when its last target replica joins the ISR.
                if reply == Reply::Ok {
                    self.complete_reassignment(topic, *partition);
                }
                reply
            }
            Command::AlterPartitionReassignment {
                topic,
                partition,
                target,
            } => self.reassign(topic, *partition, target.as_deref()),
            Command::ElectLeaders {
                election,
                partitions,
            } => self.elect_leaders(*election, partitions),
            Command::CreateAcls { bindings } => {
                self.acls.extend(bindings.iter().cloned());
                Reply::Ok
            }
            Command::DeleteAcls { bindings } => {
                for b in bindings {
                    self.acls.remove(b);
                }
                Reply::Ok
            }
            Command::AlterScramCredentials { upserts, deletions } => {
                self.alter_scram(upserts, deletions)
            }
            Command::BootstrapScramCredentials {
                node_id,
                credentials,
            } => self.bootstrap_scram(*node_id, credentials),
            Command::AlterClientQuotas { changes } => {
                crate::quota::entity::apply_changes(&mut self.client_quotas, changes);
                Reply::Ok
            }
            Command::SetBrokerConfigs {
                node_id,
                configs,
                expected,
            } => self.set_broker_configs(*node_id, configs, expected.as_ref()),
        }
    }

    /// A fence or unfence decided for an older incarnation (the broker re-registered
    /// meanwhile) is stale and changes nothing.
    /// Fences (`Some(at_ms)`, the proposer's clock) or unfences (`None`) a broker.
    fn set_fenced(&mut self, node_id: i32, incarnation: &str, fence_at_ms: Option<u64>) -> Reply {
        let fenced = fence_at_ms.is_some();
        match self.brokers.get_mut(&node_id) {
            Some(b) if b.registration.incarnation == incarnation => {
                let changed = b.fenced != fenced;
                b.fenced = fenced;
                if let (true, Some(at_ms)) = (changed, fence_at_ms) {
                    b.down_at_ms = at_ms;
                    self.on_fenced(node_id, at_ms);
                } else if changed {
                    self.on_unfenced();
                }
                Reply::Ok
            }
            Some(_) => Reply::Rejected(format!(
                "broker {node_id} has re-registered since incarnation {incarnation}"
            )),
            None => Reply::Rejected(format!("broker {node_id} is not registered")),
        }
    }

    /// The brokers clients may use: registered and not fenced, by id.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerState> {
        self.brokers.values().filter(|b| !b.fenced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(node_id: i32, incarnation: &str) -> Command {
        Command::RegisterBroker(BrokerRegistration {
            node_id,
            incarnation: incarnation.into(),
            host: "127.0.0.1".into(),
            port: 9000 + node_id as u16,
            rack: None,
            listeners: Vec::new(),
            at_ms: 0,
            cluster_id: String::new(),
        })
    }

    #[test]
    fn a_registration_of_another_cluster_is_refused_unchanged() {
        let of = |node_id: i32, cluster: &str| {
            let Command::RegisterBroker(mut r) = registration(node_id, "a") else {
                unreachable!()
            };
            r.cluster_id = cluster.into();
            Command::RegisterBroker(r)
        };
        let mut state = ClusterState::default();
        // Registrations from before ids were recorded neither set nor meet the check.
        assert_eq!(state.apply(1, &registration(1, "a")), Reply::BrokerEpoch(1));
        assert_eq!(state.cluster_id, None);
        assert_eq!(state.apply(2, &of(2, "X")), Reply::BrokerEpoch(2));
        assert_eq!(state.cluster_id.as_deref(), Some("X"));
        assert_eq!(state.apply(3, &of(3, "X")), Reply::BrokerEpoch(3));
        let before = state.clone();
        assert_eq!(
            state.apply(4, &of(4, "Y")),
            Reply::InconsistentClusterId { quorum: "X".into() }
        );
        assert_eq!(state, before);
        // Nor may a registered member come back with another cluster's dirs.
        assert_eq!(
            state.apply(5, &of(2, "Y")),
            Reply::InconsistentClusterId { quorum: "X".into() }
        );
        assert_eq!(state, before);
        // The id survives a snapshot.
        let json = serde_json::to_vec(&state).unwrap();
        assert_eq!(
            serde_json::from_slice::<ClusterState>(&json).unwrap(),
            state
        );
    }

    #[test]
    fn registration_fencing_and_stale_decisions() {
        let mut state = ClusterState::default();
        assert_eq!(state.apply(5, &registration(1, "a")), Reply::BrokerEpoch(5));
        assert_eq!(
            state.live_brokers().count(),
            0,
            "registered brokers start fenced"
        );
        let unfence = Command::UnfenceBroker {
            node_id: 1,
            incarnation: "a".into(),
        };
        assert_eq!(state.apply(6, &unfence), Reply::Ok);
        assert_eq!(
            state.live_brokers().map(|b| b.epoch).collect::<Vec<_>>(),
            [5]
        );
        // The broker restarts: a new incarnation, fenced again, a new epoch.
        assert_eq!(state.apply(9, &registration(1, "b")), Reply::BrokerEpoch(9));
        assert_eq!(state.live_brokers().count(), 0);
        // A decision about the old incarnation changes nothing.
        assert!(matches!(state.apply(10, &unfence), Reply::Rejected(_)));
        assert!(state.brokers[&1].fenced);
        let fence_unknown = Command::FenceBroker {
            node_id: 7,
            incarnation: "x".into(),
            at_ms: 0,
        };
        assert!(matches!(
            state.apply(11, &fence_unknown),
            Reply::Rejected(_)
        ));
    }

    #[test]
    fn replay_gives_the_same_state_and_snapshots_round_trip() {
        let log = [
            registration(1, "a"),
            registration(2, "b"),
            Command::UnfenceBroker {
                node_id: 2,
                incarnation: "b".into(),
            },
            Command::FenceBroker {
                node_id: 2,
                incarnation: "b".into(),
                at_ms: 0,
            },
            Command::UnfenceBroker {
                node_id: 1,
                incarnation: "a".into(),
            },
        ];
        let replay = || {
            let mut state = ClusterState::default();
            for (i, c) in log.iter().enumerate() {
                state.apply(i as u64 + 1, c);
            }
            state
        };
        let state = replay();
        assert_eq!(state, replay());
        let ids: Vec<i32> = state
            .live_brokers()
            .map(|b| b.registration.node_id)
            .collect();
        assert_eq!(ids, [1]);
        let json = serde_json::to_vec(&state).unwrap();
        assert_eq!(
            serde_json::from_slice::<ClusterState>(&json).unwrap(),
            state
        );
    }

    #[test]
    fn acls_are_added_once_and_removed_exactly() {
        use crate::security::acl::ResourceType;
        use crate::security::acl::{AclBinding, Operation, PatternType, Permission};
        let binding = |name: &str| AclBinding {
            resource_type: ResourceType::Topic,
            name: name.into(),
            pattern: PatternType::Literal,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Write,
            permission: Permission::Allow,
        };
        let mut state = ClusterState::default();
        let create = Command::CreateAcls {
            bindings: vec![binding("t"), binding("u"), binding("t")],
        };
        assert_eq!(state.apply(1, &create), Reply::Ok);
        assert_eq!(state.acls.len(), 2);
        let delete = Command::DeleteAcls {
            bindings: vec![binding("u"), binding("v")],
        };
        assert_eq!(state.apply(2, &delete), Reply::Ok);
        assert_eq!(
            state
                .acls
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>(),
            ["t"]
        );
        let json = serde_json::to_vec(&state).unwrap();
        assert_eq!(
            serde_json::from_slice::<ClusterState>(&json).unwrap(),
            state
        );
    }
}
