//! A topic's config overrides as AlterConfigs and IncrementalAlterConfigs change them:
//! the ops (`apply_ops`, one rule set for a single broker and for the quorum) and, in a
//! cluster, their application on the controller thread to the quorum's latest map
//! (`alter`), so two members' concurrent changes to one topic never lose one.
//!
//! The member that takes the request checks the ops against its own table first (a bad
//! key or value is answered there, and validate_only stops there); then its controller
//! thread applies the same ops again to the topic map the state holds and proposes the
//! result as `Command::SetTopicConfigs` expecting that map. The state machine refuses it
//! when the map changed since (another member's change got in first, or this node had
//! not applied it yet) and `alter` applies the ops again to the newer map, as Kafka's
//! controller applies each IncrementalAlterConfigs to its latest state.
//!
//! APPEND and SUBTRACT on a key the topic does not override start from the value the
//! broker layers give (dynamic broker, dynamic default, static, Kafka's default): the
//! member that took the request resolves those (`list_fallbacks`) and sends them with
//! the ops, so the controller thread, which has no broker layers, applies them alike.

use std::collections::{BTreeMap, HashSet};

use super::admin::{commit_cas, AdminReply};
use super::controller::Node;
use super::state::{ClusterState, Command, Reply};
use crate::broker::admin::ConfigOp;
use crate::protocol::errors as ec;
use crate::topic_config::BrokerLayers;

/// A topic's config overrides (key → value as stored).
pub type TopicConfigs = BTreeMap<String, String>;

/// For each APPEND / SUBTRACT key of `ops`, the value it has at broker level (what it
/// starts from when the topic does not override it).
pub fn list_fallbacks(layers: &BrokerLayers<'_>, ops: &[ConfigOp]) -> TopicConfigs {
    ops.iter()
        .filter_map(|op| match op {
            ConfigOp::Append(k, _) | ConfigOp::Subtract(k, _) => Some(k),
            ConfigOp::Set(..) | ConfigOp::Delete(_) => None,
        })
        .filter_map(|k| {
            let def = crate::topic_config::def(k)?;
            let value = layers.synonyms(def).into_iter().next()?.value;
            Some((k.clone(), value))
        })
        .collect()
}

/// Applies config ops to a topic's overrides, validating each value. `fallbacks`: the
/// broker-level values APPEND and SUBTRACT start from when there is no override.
pub fn apply_ops(
    mut configs: TopicConfigs,
    ops: &[ConfigOp],
    fallbacks: &TopicConfigs,
) -> Result<TopicConfigs, (i16, String)> {
    use crate::topic_config::{def, validate_topic_override, Kind};
    let invalid = |e: String| (ec::INVALID_CONFIG, e);
    for op in ops {
        match op {
            ConfigOp::Set(k, v) => {
                let v = validate_topic_override(k, v).map_err(invalid)?;
                configs.insert(k.clone(), v);
            }
            ConfigOp::Delete(k) => {
                if !crate::replication::throttle::TOPIC_KEYS.contains(&k.as_str()) {
                    def(k).ok_or_else(|| invalid(format!("Unknown topic config name: {k}")))?;
                }
                configs.remove(k);
            }
            ConfigOp::Append(k, v) | ConfigOp::Subtract(k, v) => {
                let d = def(k).ok_or_else(|| invalid(format!("Unknown topic config name: {k}")))?;
                let append = matches!(op, ConfigOp::Append(..));
                if !matches!(d.kind, Kind::List(_)) {
                    let what = if append { "append" } else { "subtract" };
                    return Err(invalid(format!(
                        "Config value {what} is not allowed for config key: {k}"
                    )));
                }
                let current = configs
                    .get(k)
                    .or_else(|| fallbacks.get(k))
                    .cloned()
                    .unwrap_or_default();
                let mut items: Vec<&str> = current
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                // Sets: a value's items are checked only afterwards, so a 32 KiB value
                // of junk items would otherwise cost tens of millions of comparisons.
                let mut present: HashSet<&str> = items.iter().copied().collect();
                let given = v.split(',').map(str::trim).filter(|s| !s.is_empty());
                if append {
                    items.extend(given.filter(|item| present.insert(item)));
                } else {
                    let removed: HashSet<&str> = given.collect();
                    items.retain(|i| !removed.contains(i));
                }
                let v = validate_topic_override(k, &items.join(",")).map_err(invalid)?;
                configs.insert(k.clone(), v);
            }
        }
    }
    Ok(configs)
}

/// AlterConfigs / IncrementalAlterConfigs on a quorum topic, on the proposing member's
/// controller thread: the ops applied to the state's current overrides of `name`
/// (`replace`: to none, AlterConfigs' whole-set form), proposed as
/// `Command::SetTopicConfigs` expecting those overrides, applied again to the newer map
/// when another change got in first (`admin::commit_cas`). Answered once applied on
/// this node.
pub(super) async fn alter(
    node: &Node,
    name: &str,
    replace: bool,
    ops: &[ConfigOp],
    fallbacks: &TopicConfigs,
) -> AdminReply {
    commit_cas(node, "topic's configs", |state| {
        let current = state.topic_configs(name)?;
        let base = if replace {
            TopicConfigs::new()
        } else {
            current.clone()
        };
        Ok(Command::SetTopicConfigs {
            name: name.to_string(),
            configs: apply_ops(base, ops, fallbacks)?,
            expected: Some(current.clone()),
        })
    })
    .await
}

impl ClusterState {
    /// The overrides of topic `name`, or UNKNOWN_TOPIC_OR_PARTITION.
    pub fn topic_configs(&self, name: &str) -> Result<&TopicConfigs, (i16, String)> {
        self.topics.get(name).map(|t| &t.configs).ok_or_else(|| {
            (
                ec::UNKNOWN_TOPIC_OR_PARTITION,
                format!("Topic {name} does not exist."),
            )
        })
    }

    /// `Command::SetTopicConfigs`: replaces the topic's overrides if they are still
    /// `expected` (`None`: always, as commands from before the field was recorded).
    pub(super) fn set_topic_configs(
        &mut self,
        name: &str,
        configs: &TopicConfigs,
        expected: Option<&TopicConfigs>,
    ) -> Reply {
        let Some(topic) = self.topics.get_mut(name) else {
            return Reply::Rejected(format!("Topic '{name}' does not exist."));
        };
        if expected.is_some_and(|e| *e != topic.configs) {
            return Reply::Rejected(format!(
                "the configs of topic '{name}' changed since they were read; apply the ops again"
            ));
        }
        topic.configs = configs.clone();
        Reply::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> TopicConfigs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn set(k: &str, v: &str) -> ConfigOp {
        ConfigOp::Set(k.into(), v.into())
    }

    /// A state with topic `name` on broker 1; later commands go at indexes from 10.
    fn with_topic(name: &str, configs: &[(&str, &str)]) -> ClusterState {
        let (mut state, index) = crate::cluster::test_support::live_brokers(&[1]);
        assert!(index < 9);
        let create = Command::CreateTopic {
            name: name.into(),
            id: "00".repeat(16),
            configs: map(configs),
            assignment: vec![vec![1]],
        };
        assert_eq!(state.apply(9, &create), Reply::Ok);
        state
    }

    #[test]
    fn ops_set_delete_append_and_subtract() {
        let base = map(&[("retention.ms", "1000"), ("cleanup.policy", "delete")]);
        let ops = [
            set("segment.bytes", "1048576"),
            ConfigOp::Delete("retention.ms".into()),
            ConfigOp::Append("cleanup.policy".into(), "compact,delete".into()),
        ];
        assert_eq!(
            apply_ops(base.clone(), &ops, &TopicConfigs::new()).unwrap(),
            map(&[
                ("segment.bytes", "1048576"),
                ("cleanup.policy", "delete,compact")
            ])
        );
        let both = map(&[("cleanup.policy", "compact,delete")]);
        let subtract = [ConfigOp::Subtract("cleanup.policy".into(), "delete".into())];
        assert_eq!(
            apply_ops(both, &subtract, &TopicConfigs::new()).unwrap(),
            map(&[("cleanup.policy", "compact")])
        );
        // Nothing left is not a policy: refused, as the member refuses it.
        assert_eq!(
            apply_ops(base, &subtract, &TopicConfigs::new())
                .unwrap_err()
                .0,
            ec::INVALID_CONFIG
        );
    }

    #[test]
    fn list_ops_start_from_the_broker_value_without_an_override() {
        let fallbacks = map(&[("cleanup.policy", "compact")]);
        let append = [ConfigOp::Append("cleanup.policy".into(), "delete".into())];
        assert_eq!(
            apply_ops(TopicConfigs::new(), &append, &fallbacks).unwrap(),
            map(&[("cleanup.policy", "compact,delete")])
        );
        // An override wins over the broker value.
        let base = map(&[("cleanup.policy", "delete")]);
        assert_eq!(
            apply_ops(base, &append, &fallbacks).unwrap(),
            map(&[("cleanup.policy", "delete")])
        );
        // The fallbacks the member resolves: its broker layers, for list ops only.
        let static_props = map(&[("log.cleanup.policy", "compact")]);
        let empty = TopicConfigs::new();
        let layers = BrokerLayers {
            dynamic_broker: &empty,
            dynamic_default: &empty,
            static_props: &static_props,
        };
        let ops = [append[0].clone(), set("retention.ms", "1")];
        assert_eq!(list_fallbacks(&layers, &ops), fallbacks);
    }

    #[test]
    fn ops_refuse_what_kafka_refuses() {
        let code = |ops: &[ConfigOp]| {
            apply_ops(TopicConfigs::new(), ops, &TopicConfigs::new())
                .unwrap_err()
                .0
        };
        assert_eq!(code(&[set("retention.ms", "soon")]), ec::INVALID_CONFIG);
        assert_eq!(code(&[set("no.such.key", "1")]), ec::INVALID_CONFIG);
        assert_eq!(
            code(&[ConfigOp::Delete("no.such.key".into())]),
            ec::INVALID_CONFIG
        );
        assert_eq!(
            code(&[ConfigOp::Append("retention.ms".into(), "1".into())]),
            ec::INVALID_CONFIG
        );
        assert_eq!(
            code(&[ConfigOp::Append("cleanup.policy".into(), "shred".into())]),
            ec::INVALID_CONFIG
        );
    }

    #[test]
    fn a_change_made_from_an_outdated_map_is_refused_unchanged() {
        let mut state = with_topic("t", &[("retention.ms", "1000")]);
        let cas = |configs: &[(&str, &str)], expected: &[(&str, &str)]| Command::SetTopicConfigs {
            name: "t".into(),
            configs: map(configs),
            expected: Some(map(expected)),
        };
        let old = [("retention.ms", "1000")];
        let a = [("retention.ms", "1000"), ("segment.bytes", "1048576")];
        let b = [("retention.ms", "1000"), ("cleanup.policy", "compact")];
        assert_eq!(state.apply(10, &cas(&a, &old)), Reply::Ok);
        // Another member read the old map too: refused, the first change kept.
        assert!(matches!(
            state.apply(11, &cas(&b, &old)),
            Reply::Rejected(_)
        ));
        assert_eq!(state.topics["t"].configs, map(&a));
        // The ops applied again to the newer map go in, and nothing is lost.
        let ops = [set("cleanup.policy", "compact")];
        let current = state.topic_configs("t").unwrap().clone();
        let merged = apply_ops(current.clone(), &ops, &TopicConfigs::new()).unwrap();
        let command = Command::SetTopicConfigs {
            name: "t".into(),
            configs: merged,
            expected: Some(current),
        };
        assert_eq!(state.apply(12, &command), Reply::Ok);
        assert_eq!(
            state.topics["t"].configs,
            map(&[
                ("retention.ms", "1000"),
                ("segment.bytes", "1048576"),
                ("cleanup.policy", "compact")
            ])
        );
        // A topic that is gone: refused, and `topic_configs` names the error.
        assert!(matches!(
            state.apply(13, &Command::DeleteTopic { name: "t".into() }),
            Reply::Ok
        ));
        assert!(matches!(state.apply(14, &cas(&a, &a)), Reply::Rejected(_)));
        assert_eq!(
            state.topic_configs("t").unwrap_err().0,
            ec::UNKNOWN_TOPIC_OR_PARTITION
        );
    }

    #[test]
    fn commands_from_the_previous_build_still_apply() {
        // The Raft log of a build before `expected`: replaced whole, unconditionally.
        let old = r#"{"SetTopicConfigs":{"name":"t","configs":{"retention.ms":"5"}}}"#;
        let command: Command = serde_json::from_str(old).unwrap();
        assert_eq!(
            command,
            Command::SetTopicConfigs {
                name: "t".into(),
                configs: map(&[("retention.ms", "5")]),
                expected: None,
            }
        );
        let mut state = with_topic("t", &[("segment.bytes", "1048576")]);
        assert_eq!(state.apply(10, &command), Reply::Ok);
        assert_eq!(state.topics["t"].configs, map(&[("retention.ms", "5")]));
        // Without `expected` the encoding is the old one, so an older member reads it.
        assert_eq!(serde_json::to_string(&command).unwrap(), old);
    }
}
