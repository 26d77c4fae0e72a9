//! The configuration keys the broker knows: those it reads, those Kafka has but that mean
//! nothing here, and those not supported yet, and the warning an unknown key gets.

use super::{PARTITIONS_PER_REQUEST_KAFKA_KEY, PARTITIONS_PER_REQUEST_KEY};

/// Kafka keys that have no meaning for corelog by design (thread pools that
/// thread-per-core replaces, ZooKeeper, listener plumbing of security protocols it does
/// not serve yet). A stock server.properties carries them, so they are accepted quietly.
const MEANINGLESS_KEYS: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "num.recovery.threads.per.data.dir",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
];

/// Kafka keys corelog will honour but does not yet: warned about at start-up with their
/// own message, so an operator knows the setting has no effect.
const NOT_YET_KEYS: &[&str] = &[
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    // Share groups (KIP-932); Kafka 4's stock server.properties sets them.
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
];

const RECOGNISED_KEYS: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    super::controller_listener::MECHANISM_KEY,
    "broker.rack",
    "broker.heartbeat.interval.ms",
    "broker.session.timeout.ms",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
    crate::cluster::config::FAST_FENCING_KEY,
    crate::cluster::config::REPLICA_SELECTOR_KEY,
    "node.id",
    "broker.id",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "sasl.enabled.mechanisms",
    "connection.failed.authentication.delay.ms",
    "log.dirs",
    "log.dir",
    "num.partitions",
    "default.replication.factor",
    "replica.lag.time.max.ms",
    "auto.create.topics.enable",
    PARTITIONS_PER_REQUEST_KEY,
    PARTITIONS_PER_REQUEST_KAFKA_KEY,
    "message.max.bytes",
    "fetch.max.bytes",
    super::FETCH_SESSION_SLOTS_KEY,
    "log.segment.bytes",
    "log.retention.check.interval.ms",
    "log.flush.offset.checkpoint.interval.ms",
    "log.cleaner.enable",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
    "log.cleaner.dedupe.buffer.size",
    "socket.request.max.bytes",
    "connections.max.idle.ms",
    "cluster.id",
    "group.initial.rebalance.delay.ms",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
    "group.consumer.session.timeout.ms",
    "group.consumer.heartbeat.interval.ms",
    "group.consumer.assignors",
    "group.max.size",
    "group.consumer.max.size",
    "admin.listener",
    "metrics.enable",
];

/// The start-up warning a key deserves, if any.
pub(super) fn key_warning(k: &str) -> Option<String> {
    if RECOGNISED_KEYS.contains(&k)
        || super::tls::KEYS.contains(&listener_key(k))
        || listener_key(k) == "sasl.enabled.mechanisms"
        || crate::txn::config::KEYS.contains(&k)
        || crate::quota::KEYS.contains(&k)
        || listener_key(k) == "max.connections"
        || crate::security::acl::CONFIG_KEYS.contains(&k)
        || super::sasl::known_key(k)
        || MEANINGLESS_KEYS.contains(&k)
        || crate::topic_config::def_of_broker_key(k).is_some()
    {
        None
    } else if NOT_YET_KEYS.contains(&k) {
        Some(format!(
            "configuration key {k:?} is not supported yet and has no effect"
        ))
    } else {
        Some(format!("unknown configuration key {k:?} is ignored"))
    }
}

/// `listener.name.<name>.<key>` as `<key>`; any other key as it is.
fn listener_key(k: &str) -> &str {
    k.strip_prefix("listener.name.")
        .and_then(|rest| rest.split_once('.'))
        .map_or(k, |(_, key)| key)
}
