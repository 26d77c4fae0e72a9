//! Test helpers for the metadata state machine's unit tests (elect, reassign, topics).

use super::state::{BrokerRegistration, ClusterState, Command};

/// A state with brokers `ids` registered (incarnation "a") and unfenced; also the last
/// log index used, so a test goes on applying after it.
pub(super) fn live_brokers(ids: &[i32]) -> (ClusterState, u64) {
    let mut state = ClusterState::default();
    let mut index = 0;
    for &node_id in ids {
        index += 1;
        state.apply(
            index,
            &Command::RegisterBroker(BrokerRegistration {
                node_id,
                incarnation: "a".into(),
                host: "h".into(),
                port: 1,
                rack: None,
                listeners: Vec::new(),
                at_ms: 0,
                cluster_id: String::new(),
            }),
        );
        index += 1;
        state.apply(index, &fence(node_id, false));
    }
    (state, index)
}

/// Fences (or unfences) broker `node_id`'s incarnation "a".
pub(super) fn fence(node_id: i32, fenced: bool) -> Command {
    let incarnation = "a".to_string();
    if fenced {
        Command::FenceBroker {
            node_id,
            incarnation,
            at_ms: 0,
        }
    } else {
        Command::UnfenceBroker {
            node_id,
            incarnation,
        }
    }
}
