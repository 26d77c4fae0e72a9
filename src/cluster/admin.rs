//! Admin calls from the shards to the controller thread: topic creation, deletion and
//! new partitions, topic and dynamic broker configs, decided here and committed through
//! the quorum (changes made from what the state holds as compare-and-set commands,
//! `commit_cas`). A call is answered
//! once its command is applied on this node, so the broker that asked sees the change
//! in its own image before it answers the client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::controller::Node;
use super::placement::{self, Candidate};
use super::state::{ClusterState, Command, Reply};
use crate::protocol::errors as ec;

/// What the shards ask of the quorum.
#[derive(Debug, Clone)]
pub enum AdminCall {
    CreateTopic {
        name: String,
        partitions: i32,
        /// -1: `default.replication.factor`, given by the caller in `default_rf`.
        replication_factor: i16,
        default_rf: i16,
        /// Explicit replica lists (CreateTopics' assignments), if any.
        assignment: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    CreatePartitions {
        name: String,
        total: i32,
        assignment: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    },
    DeleteTopic {
        name: String,
    },
    /// AlterConfigs / IncrementalAlterConfigs on a quorum topic (`replace`: AlterConfigs'
    /// whole-set form), applied to the quorum's current overrides here, with the
    /// broker-level values list ops start from (see `topic_configs::alter`).
    AlterTopicConfigs {
        name: String,
        replace: bool,
        ops: Vec<crate::broker::admin::ConfigOp>,
        fallbacks: BTreeMap<String, String>,
    },
    /// This broker is stopping (SIGTERM): fence it now, so its leaderships move to
    /// other ISR members before it exits (Kafka's controlled shutdown).
    ControlledShutdown {
        node_id: i32,
        incarnation: String,
    },
    /// A producer id block for this broker; answered with its first id.
    AllocateProducerIds {
        node_id: i32,
    },
    /// ACL bindings to add / to remove exactly (see `Command::CreateAcls`).
    CreateAcls {
        bindings: Vec<crate::security::acl::AclBinding>,
    },
    DeleteAcls {
        bindings: Vec<crate::security::acl::AclBinding>,
    },
    /// A partition leader's ISR change (see `Command::AlterPartition`).
    AlterPartition {
        topic: String,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    /// ElectLeaders (`None`: every partition); answered with `Reply::Elections`.
    ElectLeaders {
        election: super::elect::ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    },
    /// Starts, replaces or (`target: None`) cancels a partition's reassignment
    /// (AlterPartitionReassignments; see `Command::AlterPartitionReassignment`).
    Reassign {
        topic: String,
        partition: i32,
        target: Option<Vec<i32>>,
    },
    /// SCRAM credentials to set / remove (see `Command::AlterScramCredentials`).
    AlterScramCredentials {
        upserts: Vec<crate::security::users::CredentialRecord>,
        deletions: Vec<super::users::Deletion>,
    },
    /// This member's formatted users (see `Command::BootstrapScramCredentials`).
    BootstrapScramCredentials {
        node_id: i32,
        credentials: Vec<crate::security::users::CredentialRecord>,
    },
    /// Client quota changes (see `Command::AlterClientQuotas`).
    AlterClientQuotas {
        changes: Vec<crate::quota::entity::QuotaChange>,
    },
    /// AlterConfigs / IncrementalAlterConfigs on a BROKER resource: the cluster default
    /// (`node_id: None`) or this node's own; `replace`: AlterConfigs' whole-set form.
    /// Applied to the quorum's current map here (see `broker_configs::alter`).
    AlterBrokerConfigs {
        node_id: Option<i32>,
        replace: bool,
        ops: Vec<crate::broker::admin::ConfigOp>,
    },
}

/// Ok, or a Kafka error code with its message.
pub type AdminReply = Result<(), (i16, String)>;
/// As `AdminReply`, with the value a call yields (a producer id block's start, the
/// outcome of elections).
pub(super) type ValueReply = Result<Option<Reply>, (i16, String)>;

pub(super) struct Call {
    pub call: AdminCall,
    pub reply: futures::channel::oneshot::Sender<ValueReply>,
}

/// How long a committed change may take to be applied on this node.
const APPLY_WAIT: Duration = Duration::from_secs(5);
const APPLY_POLL: Duration = Duration::from_millis(10);

/// Serves the shards' calls, each in its own task.
pub(super) async fn serve(node: Arc<Node>, mut calls: tokio::sync::mpsc::UnboundedReceiver<Call>) {
    while let Some(Call { call, reply }) = calls.recv().await {
        let node = node.clone();
        tokio::spawn(async move {
            let answer = match call {
                AdminCall::AllocateProducerIds { node_id } => {
                    match node.propose(Command::AllocateProducerIds { node_id }).await {
                        Ok(r @ Reply::ProducerIdBlock(_)) => Ok(Some(r)),
                        Ok(other) => Err((ec::UNKNOWN_SERVER_ERROR, format!("{other:?}"))),
                        Err(e) => Err((ec::REQUEST_TIMED_OUT, e)),
                    }
                }
                AdminCall::ElectLeaders {
                    election,
                    partitions,
                } => super::elect::elect(&node, election, partitions)
                    .await
                    .map(|r| Some(Reply::Elections(r))),
                call => handle(&node, call).await.map(|()| None),
            };
            let _ = reply.send(answer);
        });
    }
}

async fn handle(node: &Node, call: AdminCall) -> AdminReply {
    match call {
        AdminCall::CreateTopic {
            name,
            partitions,
            replication_factor,
            default_rf,
            assignment,
            configs,
            validate_only,
        } => {
            let assignment = node.state_machine.read(|s| {
                if s.topics.contains_key(&name) {
                    return Err((
                        ec::TOPIC_ALREADY_EXISTS,
                        format!("Topic '{name}' already exists."),
                    ));
                }
                let rf = if replication_factor == -1 {
                    default_rf
                } else {
                    replication_factor
                };
                choose(s, assignment, 0, partitions, rf)
            })?;
            if validate_only {
                return Ok(());
            }
            let id = crate::broker::metadata::hex(&crate::util::random_uuid());
            let command = Command::CreateTopic {
                name,
                id,
                configs,
                assignment,
            };
            commit(node, command).await
        }
        AdminCall::CreatePartitions {
            name,
            total,
            assignment,
            validate_only,
        } => {
            let assignment = node.state_machine.read(|s| {
                let Some(topic) = s.topics.get(&name) else {
                    return Err((
                        ec::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("Topic '{name}' does not exist."),
                    ));
                };
                let have = topic.partitions.len() as i32;
                if total <= have {
                    return Err((
                        ec::INVALID_PARTITIONS,
                        format!("Topic currently has {have} partitions, which is higher than the requested {total}."),
                    ));
                }
                let rf = topic.partitions.first().map_or(1, |p| p.replicas.len()) as i16;
                choose(s, assignment, have, total - have, rf)
            })?;
            if validate_only {
                return Ok(());
            }
            let command = Command::CreatePartitions { name, assignment };
            commit(node, command).await
        }
        AdminCall::AlterPartition {
            topic,
            partition,
            leader,
            leader_epoch,
            partition_epoch,
            isr,
        } => {
            let command = Command::AlterPartition {
                topic,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            };
            commit(node, command).await
        }
        AdminCall::Reassign {
            topic,
            partition,
            target,
        } => {
            node.state_machine
                .read(|s| s.check_reassignment(&topic, partition, target.as_deref()))?;
            let command = Command::AlterPartitionReassignment {
                topic,
                partition,
                target,
            };
            commit(node, command).await
        }
        AdminCall::AlterTopicConfigs {
            name,
            replace,
            ops,
            fallbacks,
        } => super::topic_configs::alter(node, &name, replace, &ops, &fallbacks).await,
        AdminCall::AlterBrokerConfigs {
            node_id,
            replace,
            ops,
        } => super::broker_configs::alter(node, node_id, replace, &ops).await,
        AdminCall::CreateAcls { bindings } => {
            let command = Command::CreateAcls { bindings };
            commit(node, command).await
        }
        AdminCall::AlterClientQuotas { changes } => {
            let command = Command::AlterClientQuotas { changes };
            commit(node, command).await
        }
        AdminCall::DeleteAcls { bindings } => {
            let command = Command::DeleteAcls { bindings };
            commit(node, command).await
        }
        AdminCall::AlterScramCredentials { upserts, deletions } => {
            let command = Command::AlterScramCredentials { upserts, deletions };
            commit(node, command).await
        }
        AdminCall::BootstrapScramCredentials {
            node_id,
            credentials,
        } => {
            let command = Command::BootstrapScramCredentials {
                node_id,
                credentials,
            };
            commit(node, command).await
        }
        AdminCall::ControlledShutdown {
            node_id,
            incarnation,
        } => {
            let command = Command::FenceBroker {
                node_id,
                incarnation,
                at_ms: crate::util::now_ms().max(0) as u64,
            };
            commit(node, command).await
        }
        AdminCall::AllocateProducerIds { .. } | AdminCall::ElectLeaders { .. } => Err((
            ec::UNKNOWN_SERVER_ERROR,
            "answered with a value by `serve`".into(),
        )),
        AdminCall::DeleteTopic { name } => {
            if !node.state_machine.read(|s| s.topics.contains_key(&name)) {
                return Err((
                    ec::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("Topic '{name}' does not exist."),
                ));
            }
            let command = Command::DeleteTopic { name };
            commit(node, command).await
        }
    }
}

/// The replica lists of `count` new partitions numbered from `first`: the request's
/// own (checked) or Kafka's rack-aware placement over the live brokers.
fn choose(
    state: &ClusterState,
    explicit: Option<Vec<Vec<i32>>>,
    first: i32,
    count: i32,
    rf: i16,
) -> Result<Vec<Vec<i32>>, (i16, String)> {
    if let Some(lists) = explicit {
        if lists.len() != count as usize {
            return Err((
                ec::INVALID_REPLICA_ASSIGNMENT,
                format!("{} replica lists for {count} new partitions", lists.len()),
            ));
        }
        return Ok(lists);
    }
    let candidates: Vec<Candidate> = state
        .live_brokers()
        .map(|b| Candidate {
            node_id: b.registration.node_id,
            rack: b.registration.rack.clone(),
        })
        .collect();
    let draw = crate::util::random_uuid();
    let start = usize::from(draw[0]);
    let shift = usize::from(draw[1]);
    placement::assign(&candidates, first, count, rf, start, shift)
        .map_err(|e| (ec::INVALID_REPLICATION_FACTOR, e))
}

/// Proposes `command`, then waits until this node has applied and published it.
async fn commit(node: &Node, command: Command) -> AdminReply {
    let creates = matches!(command, Command::CreateTopic { .. });
    match node.propose_at(command).await {
        Ok((Reply::Ok, index)) => wait_published(node, index).await,
        Ok((Reply::Rejected(why), _)) => Err((rejection_code(creates, &why), why)),
        Ok((other, _)) => Err((ec::UNKNOWN_SERVER_ERROR, format!("{other:?}"))),
        Err(e) => Err((ec::REQUEST_TIMED_OUT, e)),
    }
}

/// The Kafka error code of a command the state machine refused. The member checked the
/// state before proposing, so a refusal means another member's change got in first:
/// the same topic created twice at once must answer TOPIC_ALREADY_EXISTS (tools ignore
/// that one), a topic deleted meanwhile UNKNOWN_TOPIC_OR_PARTITION.
fn rejection_code(creates_topic: bool, why: &str) -> i16 {
    if creates_topic && why.ends_with("already exists.") {
        ec::TOPIC_ALREADY_EXISTS
    } else if why.ends_with("does not exist.") {
        ec::UNKNOWN_TOPIC_OR_PARTITION
    } else {
        ec::INVALID_REPLICA_ASSIGNMENT
    }
}

/// How many times `commit_cas` reads the state again after another change got in first.
const CAS_ATTEMPTS_MAX: usize = 20;
/// The pause before reading again: the change that got in first reaches this node.
const CAS_RETRY_PAUSE: Duration = Duration::from_millis(25);

/// Proposes the compare-and-set command `make` builds from this node's current state
/// (one that the state machine refuses with `Reply::Rejected` when what it expects has
/// changed), then waits until it is published here. A refused command is built again
/// from the newer state after a pause, at most `CAS_ATTEMPTS_MAX` times; an error from
/// `make` (the resource is gone, the change is invalid on the newer state) is the
/// answer. `what` names the resource in the error when it kept changing.
pub(super) async fn commit_cas(
    node: &Node,
    what: &str,
    make: impl Fn(&ClusterState) -> Result<Command, (i16, String)>,
) -> AdminReply {
    for _ in 0..CAS_ATTEMPTS_MAX {
        let command = node.state_machine.read(&make)?;
        match node.propose_at(command).await {
            Ok((Reply::Ok, index)) => return wait_published(node, index).await,
            Ok((Reply::Rejected(_), _)) => tokio::time::sleep(CAS_RETRY_PAUSE).await,
            Ok((other, _)) => return Err((ec::UNKNOWN_SERVER_ERROR, format!("{other:?}"))),
            Err(e) => return Err((ec::REQUEST_TIMED_OUT, e)),
        }
    }
    Err((
        ec::REQUEST_TIMED_OUT,
        format!("the {what} kept changing under this request; try again"),
    ))
}

/// Waits until this node has applied the committed log entry `index` and published its
/// effects to the shards, at most `APPLY_WAIT`. By index rather than by what the entry
/// changed: a later change to the same resource may already have replaced it.
pub(super) async fn wait_published(node: &Node, index: u64) -> AdminReply {
    let deadline = Instant::now() + APPLY_WAIT;
    while node.state_machine.published_index() < index {
        if Instant::now() > deadline {
            return Err((
                ec::REQUEST_TIMED_OUT,
                "committed, but not yet applied on this broker".into(),
            ));
        }
        tokio::time::sleep(APPLY_POLL).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::ClusterState;

    #[test]
    fn a_refusal_answers_the_code_of_its_cause() {
        let mut state = ClusterState::default();
        let create = Command::CreateTopic {
            name: "t".into(),
            id: "00".into(),
            configs: Default::default(),
            assignment: vec![],
        };
        assert!(matches!(state.apply(1, &create), Reply::Ok));
        let Reply::Rejected(why) = state.apply(2, &create) else {
            panic!("a second create is refused")
        };
        assert_eq!(rejection_code(true, &why), ec::TOPIC_ALREADY_EXISTS);
        let delete = Command::DeleteTopic { name: "u".into() };
        let Reply::Rejected(why) = state.apply(3, &delete) else {
            panic!("deleting a missing topic is refused")
        };
        assert_eq!(rejection_code(false, &why), ec::UNKNOWN_TOPIC_OR_PARTITION);
        assert_eq!(
            rejection_code(false, "0 replica lists for 1 new partitions"),
            ec::INVALID_REPLICA_ASSIGNMENT
        );
    }
}
