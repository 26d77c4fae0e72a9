//! Dynamic broker configs: what AlterConfigs and IncrementalAlterConfigs may change on a
//! BROKER resource, and, in a cluster, those configs as records of the metadata quorum.
//!
//! Two resources, as in Kafka: BROKER "" is the cluster-wide default (Kafka's source
//! DYNAMIC_DEFAULT_BROKER_CONFIG), BROKER <node.id> one node's own (DYNAMIC_BROKER_CONFIG),
//! which wins over the default on that node. In a cluster both live in `ClusterState`
//! (`Command::SetBrokerConfigs`, one resource's map replaced whole, made from the ops on
//! the controller thread by `alter`), so every member, and whichever member is the
//! active controller, resolves the same values, after restarts and controller failovers
//! alike. A single broker keeps them in its own topics file
//! (`broker::metadata::Snapshot`).
//!
//! What may change (`apply_ops`): the broker defaults of topic configs (each topic
//! config's first broker key, e.g. `log.retention.ms`, `unclean.leader.election.enable`),
//! which Kafka documents with Update Mode "cluster-wide" (settable per broker or as the
//! cluster default); and, per broker only, the replication throttle rates. Every other
//! key is refused as Kafka refuses a read-only one (e.g. `auto.leader.rebalance.enable`).

use std::collections::BTreeMap;

use super::admin::{commit_cas, AdminReply};
use super::controller::Node;
use super::state::{ClusterState, Command, Reply};
use crate::broker::admin::ConfigOp;
use crate::protocol::errors as ec;

/// A BROKER resource's dynamic configs (key → value as stored).
pub type BrokerConfigs = BTreeMap<String, String>;

/// Applies config ops to a BROKER resource's dynamic configs (`node`: a node's own
/// resource, else the cluster default). Values come back validated and normalised.
pub fn apply_ops(
    mut configs: BrokerConfigs,
    ops: &[ConfigOp],
    node: bool,
) -> Result<BrokerConfigs, (i16, String)> {
    use crate::replication::throttle;
    use crate::topic_config::{def_of_broker_key, validate};
    for op in ops {
        let k = match op {
            ConfigOp::Set(k, _)
            | ConfigOp::Delete(k)
            | ConfigOp::Append(k, _)
            | ConfigOp::Subtract(k, _) => k,
        };
        // Replication throttle rates: per broker only (a cluster-wide default is not
        // kept), as kafka-reassign-partitions.sh sets them.
        if node && throttle::BROKER_KEYS.contains(&k.as_str()) {
            match op {
                ConfigOp::Set(k, v) => {
                    let v = throttle::validate_rate(k, v).map_err(|e| (ec::INVALID_CONFIG, e))?;
                    configs.insert(k.clone(), v);
                }
                ConfigOp::Delete(k) => {
                    configs.remove(k);
                }
                _ => return Err(no_list_ops(k)),
            }
            continue;
        }
        let Some((def, bk)) = def_of_broker_key(k).filter(|(d, _)| d.broker_keys[0].name == k)
        else {
            return Err((
                ec::INVALID_REQUEST,
                format!("Cannot update these configs dynamically: [{k}]; corelog changes only topic defaults at run time"),
            ));
        };
        debug_assert_eq!(bk.factor, 1);
        match op {
            ConfigOp::Set(k, v) => {
                let v = validate(k, def.kind, v).map_err(|e| (ec::INVALID_CONFIG, e))?;
                configs.insert(k.clone(), v);
            }
            ConfigOp::Delete(k) => {
                configs.remove(k);
            }
            ConfigOp::Append(..) | ConfigOp::Subtract(..) => return Err(no_list_ops(k)),
        }
    }
    Ok(configs)
}

fn no_list_ops(k: &str) -> (i16, String) {
    (
        ec::INVALID_CONFIG,
        format!("Config value append/subtract is not supported for broker config key: {k}"),
    )
}

/// AlterConfigs on a BROKER resource, on the proposing member's controller thread: the
/// ops applied to the quorum's current map with a single broker's rules (`apply_ops`:
/// the controller side validates whatever the member's shard checked), proposed as
/// `Command::SetBrokerConfigs` expecting that map. When another change got in first
/// (this node's state had not caught up, or another member altered the resource) the
/// command is refused and the ops are applied again to the newer map
/// (`admin::commit_cas`), as Kafka's controller applies each IncrementalAlterConfigs to
/// its latest state. Answered once applied on this node.
pub(super) async fn alter(
    node: &Node,
    node_id: Option<i32>,
    replace: bool,
    ops: &[ConfigOp],
) -> AdminReply {
    commit_cas(node, "broker configs", |state| {
        let current = state.broker_configs(node_id);
        let base = if replace {
            BrokerConfigs::new()
        } else {
            current.clone()
        };
        Ok(Command::SetBrokerConfigs {
            node_id,
            configs: apply_ops(base, ops, node_id.is_some())?,
            expected: Some(current.clone()),
        })
    })
    .await
}

impl ClusterState {
    /// `Command::SetBrokerConfigs`: replaces the resource's map (an empty one removes
    /// it) if it is still `expected`.
    pub(super) fn set_broker_configs(
        &mut self,
        node_id: Option<i32>,
        configs: &BrokerConfigs,
        expected: Option<&BrokerConfigs>,
    ) -> Reply {
        if expected.is_some_and(|e| e != self.broker_configs(node_id)) {
            return Reply::Rejected(
                "the broker configs changed since they were read; apply the ops again".into(),
            );
        }
        match node_id {
            None => self.default_broker_configs = configs.clone(),
            Some(id) if configs.is_empty() => {
                self.node_broker_configs.remove(&id);
            }
            Some(id) => {
                self.node_broker_configs.insert(id, configs.clone());
            }
        }
        Reply::Ok
    }

    /// The dynamic configs of `node_id`'s BROKER resource, or of the default one (`None`).
    pub fn broker_configs(&self, node_id: Option<i32>) -> &BrokerConfigs {
        static EMPTY: BrokerConfigs = BrokerConfigs::new();
        match node_id {
            None => &self.default_broker_configs,
            Some(id) => self.node_broker_configs.get(&id).unwrap_or(&EMPTY),
        }
    }

    /// A broker key's dynamic value on node `node_id`: its own, else the cluster default.
    /// `None`: not set dynamically (server.properties or Kafka's default applies).
    pub fn dynamic_broker_value(&self, node_id: i32, key: &str) -> Option<&str> {
        self.broker_configs(Some(node_id))
            .get(key)
            .or_else(|| self.default_broker_configs.get(key))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::Command;
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BrokerConfigs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn set(node_id: Option<i32>, pairs: &[(&str, &str)]) -> Command {
        Command::SetBrokerConfigs {
            node_id,
            configs: map(pairs),
            expected: None,
        }
    }

    #[test]
    fn the_default_and_node_maps_replace_whole_and_survive_a_snapshot() {
        let mut state = ClusterState::default();
        let unclean = crate::cluster::elect::UNCLEAN_KEY;
        assert_eq!(state.apply(1, &set(None, &[(unclean, "true")])), Reply::Ok);
        assert_eq!(
            state.apply(2, &set(Some(2), &[("log.retention.ms", "1000")])),
            Reply::Ok
        );
        assert_eq!(state.dynamic_broker_value(1, unclean), Some("true"));
        assert_eq!(
            state.dynamic_broker_value(2, "log.retention.ms"),
            Some("1000")
        );
        assert_eq!(state.dynamic_broker_value(1, "log.retention.ms"), None);
        // A node's own value wins over the default on that node only.
        state.apply(3, &set(Some(2), &[(unclean, "false")]));
        assert_eq!(state.dynamic_broker_value(2, unclean), Some("false"));
        assert_eq!(
            state.dynamic_broker_value(2, "log.retention.ms"),
            None,
            "replaced whole"
        );
        assert_eq!(state.dynamic_broker_value(3, unclean), Some("true"));
        let json = serde_json::to_vec(&state).unwrap();
        assert_eq!(
            serde_json::from_slice::<ClusterState>(&json).unwrap(),
            state
        );
        // Empty maps remove; the state is as if nothing had been set.
        state.apply(4, &set(None, &[]));
        state.apply(5, &set(Some(2), &[]));
        assert_eq!(state, ClusterState::default());
        // Snapshots from before these fields read as empty.
        let old: ClusterState = serde_json::from_str(r#"{"brokers":{}}"#).unwrap();
        assert!(old.default_broker_configs.is_empty() && old.node_broker_configs.is_empty());
    }

    #[test]
    fn a_change_made_from_an_outdated_map_is_refused_unchanged() {
        let mut state = ClusterState::default();
        let cas = |node_id, pairs: &[(&str, &str)], expected: &[(&str, &str)]| {
            Command::SetBrokerConfigs {
                node_id,
                configs: map(pairs),
                expected: Some(map(expected)),
            }
        };
        let a = [("log.retention.ms", "1000")];
        let ab = [
            ("log.retention.ms", "1000"),
            ("log.segment.bytes", "1048576"),
        ];
        assert_eq!(state.apply(1, &cas(None, &a, &[])), Reply::Ok);
        // Another member read the empty map too: refused, nothing lost.
        let other = [("compression.type", "lz4")];
        assert!(matches!(
            state.apply(2, &cas(None, &other, &[])),
            Reply::Rejected(_)
        ));
        assert_eq!(state.default_broker_configs, map(&a));
        assert_eq!(state.apply(3, &cas(None, &ab, &a)), Reply::Ok);
        // Each resource is compared on its own: node 2's is still empty.
        assert_eq!(state.apply(4, &cas(Some(2), &a, &[])), Reply::Ok);
        assert_eq!(state.default_broker_configs, map(&ab));
        assert_eq!(*state.broker_configs(Some(2)), map(&a));
    }

    #[test]
    fn the_rules_refuse_what_kafka_refuses() {
        let sets = |node_id: Option<i32>, pairs: &[(&str, &str)]| {
            let ops: Vec<ConfigOp> = pairs
                .iter()
                .map(|(k, v)| ConfigOp::Set(k.to_string(), v.to_string()))
                .collect();
            apply_ops(BrokerConfigs::new(), &ops, node_id.is_some())
        };
        let code =
            |node_id: Option<i32>, pairs: &[(&str, &str)]| sets(node_id, pairs).unwrap_err().0;
        // Read-only in Kafka: refused as it refuses them.
        assert_eq!(
            code(None, &[("auto.leader.rebalance.enable", "false")]),
            ec::INVALID_REQUEST
        );
        assert_eq!(code(Some(1), &[("node.id", "4")]), ec::INVALID_REQUEST);
        // Only the first broker key of a topic config (Kafka's dynamic one).
        assert_eq!(
            code(None, &[("log.retention.hours", "1")]),
            ec::INVALID_REQUEST
        );
        // Throttle rates are per broker.
        let rate = crate::replication::throttle::BROKER_KEYS[0];
        assert_eq!(code(None, &[(rate, "1000")]), ec::INVALID_REQUEST);
        assert_eq!(
            sets(Some(1), &[(rate, "1000")]).unwrap(),
            map(&[(rate, "1000")])
        );
        // Values are checked against the topic config's type and bounds.
        assert_eq!(
            code(None, &[("unclean.leader.election.enable", "yes")]),
            ec::INVALID_CONFIG
        );
        assert_eq!(
            code(None, &[("min.insync.replicas", "0")]),
            ec::INVALID_CONFIG
        );
        let ok = [
            ("unclean.leader.election.enable", "true"),
            ("log.segment.bytes", "1048576"),
        ];
        assert_eq!(sets(None, &ok).unwrap(), map(&ok));
    }

    #[test]
    fn ops_delete_and_refuse_list_ops() {
        let base = map(&[("log.retention.ms", "1000"), ("compression.type", "lz4")]);
        let ops = [ConfigOp::Delete("log.retention.ms".into())];
        assert_eq!(
            apply_ops(base.clone(), &ops, false).unwrap(),
            map(&[("compression.type", "lz4")])
        );
        let append = [ConfigOp::Append(
            "log.cleanup.policy".into(),
            "compact".into(),
        )];
        assert_eq!(
            apply_ops(base, &append, true).unwrap_err().0,
            ec::INVALID_CONFIG
        );
    }
}
