//! Broker configuration, read with Kafka's own property names.
//!
//! Sources, later ones winning: built-in defaults, `--config server.properties`, then each
//! `--override key=value` in order (as `kafka-server-start.sh --override` takes them).
//! Unknown keys are warned about, never silently dropped; an invalid value is a start-up
//! error that names the key, the value and what is allowed.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// Kafka's default `connection.failed.authentication.delay.ms`.
pub const FAILED_AUTHENTICATION_DELAY_MS_DEFAULT: u64 = 100;
/// Kafka's default `connections.max.idle.ms` (10 minutes).
pub const CONNECTIONS_MAX_IDLE_MS_DEFAULT: u64 = 600_000;
/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const SOCKET_REQUEST_MAX_BYTES_DEFAULT: usize = 104_857_600;
/// Kafka's default `message.max.bytes`: the largest record batch a topic accepts.
pub const MESSAGE_MAX_BYTES_DEFAULT: usize = 1_048_588;
/// Kafka's default `fetch.max.bytes` (55 MiB) and its minimum.
pub const FETCH_MAX_BYTES_DEFAULT: usize = 57_671_680;
pub const FETCH_MAX_BYTES_MIN: i64 = 1024;
/// Kafka's key for the fetch session cache's size, in sessions per broker.
pub const FETCH_SESSION_SLOTS_KEY: &str = "max.incremental.fetch.session.cache.slots";
/// Kafka's default `log.segment.bytes` (1 GiB).
pub const LOG_SEGMENT_BYTES_DEFAULT: u64 = 1_073_741_824;
/// Kafka's minimum for `log.segment.bytes` (the 14-byte header of an empty log, rounded).
pub const LOG_SEGMENT_BYTES_MIN: u64 = 14;
/// Kafka's default `log.retention.check.interval.ms` (5 minutes).
pub const LOG_RETENTION_CHECK_INTERVAL_MS_DEFAULT: u64 = 300_000;
/// Kafka's default `log.flush.offset.checkpoint.interval.ms` (1 minute).
pub const LOG_FLUSH_OFFSET_CHECKPOINT_INTERVAL_MS_DEFAULT: u64 = 60_000;
/// Kafka's default `log.cleaner.backoff.ms`: how long the cleaner sleeps when no log
/// is due.
pub const LOG_CLEANER_BACKOFF_MS_DEFAULT: u64 = 15_000;
/// Kafka's default `log.cleaner.dedupe.buffer.size` (128 MiB): here the key bytes one
/// cleaning pass's offset map holds.
pub const LOG_CLEANER_DEDUPE_BUFFER_SIZE_DEFAULT: u64 = 134_217_728;
/// The bound on partitions created per request, by corelog's name and by the name of
/// the Kafka setting that moves the same bound (KAFKA-20976; its controller writes at
/// most that many records per metadata batch). The first wins when both are given.
pub const PARTITIONS_PER_REQUEST_KEY: &str = "max.partitions.per.request";
pub const PARTITIONS_PER_REQUEST_KAFKA_KEY: &str = "controller.max.records.per.batch";
pub use crate::broker::request_limits::PARTITIONS_PER_REQUEST_MAX_DEFAULT;
/// Default listener port, as Kafka's.
pub const PORT_DEFAULT: u16 = 9092;
/// Kafka's default: an empty group's first rebalance waits 3 s for more members.
pub const GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT: u64 = 3_000;
/// Kafka's default partition count of `__consumer_offsets`.
pub const OFFSETS_TOPIC_NUM_PARTITIONS_DEFAULT: i32 = 50;
/// Kafka's `offsets.topic.replication.factor` default.
pub const OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT: i16 = 3;
/// Kafka's consumer group protocol (KIP-848) defaults.
pub const GROUP_CONSUMER_SESSION_TIMEOUT_MS_DEFAULT: u64 = 45_000;
pub const GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 5_000;
pub const GROUP_CONSUMER_ASSIGNORS_DEFAULT: &str = "uniform,range";
/// Kafka's `group.max.size` and `group.consumer.max.size` defaults (Integer.MAX_VALUE:
/// no bound unless the operator sets one).
pub const GROUP_MAX_SIZE_DEFAULT: usize = i32::MAX as usize;
/// Kafka's `offsets.retention.minutes` default: 7 days.
pub const OFFSETS_RETENTION_MINUTES_DEFAULT: u64 = 10_080;
/// Default `admin.listener`: loopback on Redpanda's admin port.
pub const ADMIN_LISTENER_DEFAULT: &str = "127.0.0.1:9644";
/// Kafka's `offsets.retention.check.interval.ms` default: 10 minutes.
pub const OFFSETS_RETENTION_CHECK_INTERVAL_MS_DEFAULT: u64 = 600_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: expected `key=value`, found {text:?}")]
    Syntax {
        file: String,
        line: usize,
        text: String,
    },
    #[error("--override {0:?}: expected key=value")]
    Override(String),
    /// A topic-default property (`log.retention.ms`...) with a bad value; the message
    /// names the key and what is allowed.
    #[error("{0}")]
    TopicDefault(String),
    #[error("invalid value {value:?} for {key}: {why}")]
    Invalid {
        key: String,
        value: String,
        why: String,
    },
}

/// A `PLAINTEXT://host:port` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub host: String,
    pub port: u16,
}

impl Listener {
    /// The socket address to bind: an empty host means every interface, as in Kafka.
    pub fn bind_addr(&self) -> Result<SocketAddr, String> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        (host, self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))
    }
}

/// Everything `corelog serve` is configured with.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// The first client listener (`listeners[0].bind`): what a cluster member registers.
    pub listener: Listener,
    /// What clients are told to connect to (Metadata, DescribeCluster): the first
    /// listener's advertised address; a connection on another listener is told that
    /// listener's (`listeners[i].advertised`).
    pub advertised: Listener,
    /// Every client listener, in the order `listeners` gives them (never empty).
    pub listeners: Vec<ClientListener>,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    /// `default.replication.factor`: the replicas of a topic created without one (in a
    /// cluster; a single broker only has 1).
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    /// `max.partitions.per.request` (Kafka: `controller.max.records.per.batch`): the most
    /// partitions one CreateTopics, CreatePartitions or auto-creating Metadata request
    /// may add in total; more is refused with POLICY_VIOLATION before anything is placed.
    pub partitions_per_request_max: u32,
    pub message_max_bytes: usize,
    /// `fetch.max.bytes`: the most record bytes one Fetch response holds, whatever the
    /// consumer asks (KIP-541); it also bounds what a Fetch makes a shard read.
    pub fetch_bytes_max: usize,
    /// `max.incremental.fetch.session.cache.slots`: KIP-227 fetch sessions this broker
    /// keeps, split over the shards (`broker::fetch_sessions`); 0: no sessions.
    pub fetch_session_slots: usize,
    pub log_segment_bytes: u64,
    pub log_retention_check_interval_ms: u64,
    /// `log.cleaner.enable`: compacted topics are cleaned.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.io.max.bytes.per.second` per shard (read + written); 0: unlimited
    /// (Kafka's default is Double.MAX_VALUE).
    pub log_cleaner_io_max_bytes_per_second: u64,
    /// `log.cleaner.backoff.ms`: the pause between cleaner passes over a shard's logs.
    pub log_cleaner_backoff_ms: u64,
    /// `log.cleaner.dedupe.buffer.size`: key bytes of one pass's offset map.
    pub log_cleaner_dedupe_buffer_size: u64,
    /// How often every partition is flushed and its recovery point checkpointed, which
    /// bounds how much log a restart after a crash re-validates.
    pub log_flush_offset_checkpoint_interval_ms: u64,
    pub socket_request_max_bytes: usize,
    /// `connections.max.idle.ms`: a client connection that sent nothing and has nothing
    /// left to be answered for this long is closed (Kafka's default, 10 minutes).
    pub connections_max_idle_ms: u64,
    /// How long the first rebalance of an empty group waits for more members to join.
    pub group_initial_rebalance_delay_ms: u64,
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// Partitions of `__consumer_offsets`, fixed when the topic is first created.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`: replicas of `__consumer_offsets` in a cluster
    /// (Kafka's default 3; it is not created until that many brokers are live).
    pub offsets_topic_replication_factor: i16,
    /// How long committed offsets outlive their group's last member (or, for commits
    /// outside any membership, their commit); Kafka's `offsets.retention.minutes`.
    pub offsets_retention_minutes: u64,
    /// How often expired offsets are looked for.
    pub offsets_retention_check_interval_ms: u64,
    /// `group.consumer.session.timeout.ms`: a consumer-protocol member that sends no
    /// heartbeat for this long is removed.
    pub group_consumer_session_timeout_ms: u64,
    /// `group.consumer.heartbeat.interval.ms`: what members are told to heartbeat at.
    pub group_consumer_heartbeat_interval_ms: u64,
    /// `group.consumer.assignors`: server-side assignors by name, the first the default.
    pub group_consumer_assignors: Vec<crate::groups::assignor::Assignor>,
    /// `group.max.size`: members a classic group may have; one more gets
    /// GROUP_MAX_SIZE_REACHED. `group.consumer.max.size`: the same for a consumer group.
    pub group_max_size: usize,
    pub group_consumer_max_size: usize,
    /// Number of shards (executors); `None` = one per core.
    pub smp: Option<usize>,
    /// `admin.listener` (host:port): the HTTP admin API (/metrics, /v1/profile,
    /// /v1/status) on shard 0; `None` (`admin.listener=` empty) disables it.
    pub admin_listener: Option<Listener>,
    /// `metrics.enable`: whether shards record metrics (counters and stage histograms).
    pub metrics_enable: bool,
    /// `connection.failed.authentication.delay.ms`: the first failed login's answer is
    /// held back this long; repeated failures from one address double it
    /// (`security::throttle`).
    pub failed_authentication_delay_ms: u64,
    /// `transaction.*` and `transactional.id.*` settings.
    pub txn: crate::txn::config::TxnConfig,
    /// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
    pub authorizer: crate::security::acl::AuthorizerConfig,
    /// `quota.window.*` and the connection limits (`max.connections*`).
    pub quota: crate::quota::QuotaConfig,
    pub cluster_id: String,
    /// KRaft membership (`process.roles`, `controller.quorum.voters`, ...); `None` for
    /// a single broker.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// The listener and SASL login brokers use among themselves (`config/sasl.rs`).
    pub inter_broker: sasl::InterBroker,
    /// `connections.max.reauth.ms` (KIP-368): a SASL session's lifetime; 0, never ends.
    pub connections_max_reauth_ms: u64,
    /// Every property given (file, then overrides): the static layer topic configs
    /// resolve through (`topic_config::BrokerLayers`), and what DescribeConfigs shows
    /// for the broker.
    pub props: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let listener = Listener {
            host: String::new(),
            port: PORT_DEFAULT,
        };
        BrokerConfig {
            node_id: 0,
            advertised: Listener {
                host: "localhost".into(),
                port: PORT_DEFAULT,
            },
            listeners: vec![ClientListener {
                name: "PLAINTEXT".into(),
                protocol: SecurityProtocol::Plaintext,
                bind: listener.clone(),
                advertised: Listener {
                    host: "localhost".into(),
                    port: PORT_DEFAULT,
                },
                tls: None,
                sasl_mechanisms: Vec::new(),
            }],
            listener,
            log_dirs: vec![PathBuf::from("data")],
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            partitions_per_request_max: PARTITIONS_PER_REQUEST_MAX_DEFAULT,
            message_max_bytes: MESSAGE_MAX_BYTES_DEFAULT,
            fetch_bytes_max: FETCH_MAX_BYTES_DEFAULT,
            fetch_session_slots: crate::broker::fetch_sessions::SESSION_SLOTS_DEFAULT,
            log_segment_bytes: LOG_SEGMENT_BYTES_DEFAULT,
            log_retention_check_interval_ms: LOG_RETENTION_CHECK_INTERVAL_MS_DEFAULT,
            log_cleaner_enable: true,
            log_cleaner_io_max_bytes_per_second: 0,
            log_cleaner_backoff_ms: LOG_CLEANER_BACKOFF_MS_DEFAULT,
            log_cleaner_dedupe_buffer_size: LOG_CLEANER_DEDUPE_BUFFER_SIZE_DEFAULT,
            log_flush_offset_checkpoint_interval_ms:
                LOG_FLUSH_OFFSET_CHECKPOINT_INTERVAL_MS_DEFAULT,
            socket_request_max_bytes: SOCKET_REQUEST_MAX_BYTES_DEFAULT,
            connections_max_idle_ms: CONNECTIONS_MAX_IDLE_MS_DEFAULT,
            group_initial_rebalance_delay_ms: GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT,
            replica_lag_time_max_ms: crate::replication::REPLICA_LAG_TIME_MAX_MS_DEFAULT,
            offsets_topic_num_partitions: OFFSETS_TOPIC_NUM_PARTITIONS_DEFAULT,
            offsets_topic_replication_factor: OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT,
            offsets_retention_minutes: OFFSETS_RETENTION_MINUTES_DEFAULT,
            offsets_retention_check_interval_ms: OFFSETS_RETENTION_CHECK_INTERVAL_MS_DEFAULT,
            group_consumer_session_timeout_ms: GROUP_CONSUMER_SESSION_TIMEOUT_MS_DEFAULT,
            group_consumer_heartbeat_interval_ms: GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS_DEFAULT,
            group_consumer_assignors: parse_assignors("", GROUP_CONSUMER_ASSIGNORS_DEFAULT)
                .expect("the default assignors parse"),
            group_max_size: GROUP_MAX_SIZE_DEFAULT,
            group_consumer_max_size: GROUP_MAX_SIZE_DEFAULT,
            smp: None,
            admin_listener: Some(
                parse_host_port("admin.listener", ADMIN_LISTENER_DEFAULT)
                    .expect("the default admin listener parses"),
            ),
            metrics_enable: true,
            failed_authentication_delay_ms: FAILED_AUTHENTICATION_DELAY_MS_DEFAULT,
            txn: crate::txn::config::TxnConfig::default(),
            authorizer: Default::default(),
            quota: Default::default(),
            cluster_id: String::new(),
            cluster: None,
            inter_broker: Default::default(),
            connections_max_reauth_ms: 0,
            props: BTreeMap::new(),
        }
    }
}

impl BrokerConfig {
    /// Builds the configuration from an optional properties file and overrides.
    /// Returns the config and the warnings to log (unknown keys).
    pub fn load(
        file: Option<&Path>,
        overrides: &[String],
        smp: Option<usize>,
    ) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let mut props = read_properties(file, overrides)?;
        formatted_voters(&mut props)?;
        let mut config = BrokerConfig::from_properties(&props)?;
        if let Some(n) = smp {
            if n == 0 {
                return Err(invalid("--smp", "0", "at least one shard is needed"));
            }
            config.smp = Some(n);
        }
        let warnings = props.keys().filter_map(|k| key_warning(k)).collect();
        Ok((config, warnings))
    }

    /// Applies the recognised properties over the defaults.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        let mut c = BrokerConfig::default();
        let get = |k: &str| props.get(k).map(String::as_str);
        if let Some(v) = get("node.id").or(get("broker.id")) {
            c.node_id =
                parse_num(key_of(props, "node.id", "broker.id"), v, 0, i32::MAX as i64)? as i32;
        }
        let parsed = listeners::parse(props, &c.listener)?;
        c.listeners = parsed.client;
        for l in c.listeners.iter_mut() {
            if l.protocol.tls() {
                l.tls = Some(tls::settings(props, &l.name)?);
            }
            if l.protocol.sasl() {
                l.sasl_mechanisms = listeners::sasl_mechanisms(props, &l.name)?;
            }
        }
        c.listener = c.listeners[0].bind.clone();
        c.advertised = c.listeners[0].advertised.clone();
        let controller_listener = parsed.controller;
        c.cluster = crate::cluster::config::from_properties(props, c.node_id, controller_listener)?;
        if let Some(cluster) = c.cluster.as_mut() {
            let security = controller_listener::security(props)?;
            cluster.controller_tls = security.tls;
            cluster.controller_sasl = security.sasl;
        }
        c.inter_broker = sasl::inter_broker(props, &c.listeners, c.cluster.is_some())?;
        c.connections_max_reauth_ms = sasl::reauth_ms(props)?;
        if let Some(cluster) = c.cluster.as_mut() {
            cluster.endpoints = c
                .listeners
                .iter()
                .map(|l| crate::cluster::state::Endpoint {
                    name: l.name.clone(),
                    host: l.advertised.host.clone(),
                    port: l.advertised.port,
                })
                .collect();
        }
        if let Some(v) = get("log.dirs").or(get("log.dir")) {
            c.log_dirs = parse_dirs(key_of(props, "log.dirs", "log.dir"), v)?;
        }
        if let Some(v) = get("num.partitions") {
            c.num_partitions = parse_num("num.partitions", v, 1, i32::MAX as i64)? as i32;
        }
        if let Some(v) = get("default.replication.factor") {
            c.default_replication_factor =
                parse_num("default.replication.factor", v, 1, i16::MAX as i64)? as i16;
        }
        if let Some(v) = get("auto.create.topics.enable") {
            c.auto_create_topics_enable = parse_bool("auto.create.topics.enable", v)?;
        }
        if let Some(v) = get(PARTITIONS_PER_REQUEST_KEY).or(get(PARTITIONS_PER_REQUEST_KAFKA_KEY)) {
            let key = key_of(
                props,
                PARTITIONS_PER_REQUEST_KEY,
                PARTITIONS_PER_REQUEST_KAFKA_KEY,
            );
            c.partitions_per_request_max = parse_num(key, v, 1, i32::MAX as i64)? as u32;
        }
        if let Some(v) = get("message.max.bytes") {
            c.message_max_bytes = parse_num("message.max.bytes", v, 0, i32::MAX as i64)? as usize;
        }
        if let Some(v) = get("fetch.max.bytes") {
            c.fetch_bytes_max =
                parse_num("fetch.max.bytes", v, FETCH_MAX_BYTES_MIN, i32::MAX as i64)? as usize;
        }
        if let Some(v) = get(FETCH_SESSION_SLOTS_KEY) {
            c.fetch_session_slots =
                parse_num(FETCH_SESSION_SLOTS_KEY, v, 0, i32::MAX as i64)? as usize;
        }
        if let Some(v) = get("log.segment.bytes") {
            c.log_segment_bytes = parse_num(
                "log.segment.bytes",
                v,
                LOG_SEGMENT_BYTES_MIN as i64,
                i32::MAX as i64,
            )? as u64;
        }
        if let Some(v) = get("log.retention.check.interval.ms") {
            c.log_retention_check_interval_ms =
                parse_num("log.retention.check.interval.ms", v, 1, i64::MAX)? as u64;
        }
        if let Some(v) = get("log.cleaner.enable") {
            c.log_cleaner_enable = parse_bool("log.cleaner.enable", v)?;
        }
        if let Some(v) = get("log.cleaner.io.max.bytes.per.second") {
            let key = "log.cleaner.io.max.bytes.per.second";
            let rate: f64 = v
                .parse()
                .map_err(|_| invalid(key, v, "expected a number"))?;
            if rate.is_nan() || rate < 1.0 {
                return Err(invalid(key, v, "must be at least 1"));
            }
            c.log_cleaner_io_max_bytes_per_second = if rate >= u64::MAX as f64 {
                0
            } else {
                rate as u64
            };
        }
        if let Some(v) = get("log.cleaner.backoff.ms") {
            c.log_cleaner_backoff_ms = parse_num("log.cleaner.backoff.ms", v, 1, i64::MAX)? as u64;
        }
        if let Some(v) = get("log.cleaner.dedupe.buffer.size") {
            c.log_cleaner_dedupe_buffer_size =
                parse_num("log.cleaner.dedupe.buffer.size", v, 1024, i64::MAX)? as u64;
        }
        if let Some(v) = get("log.flush.offset.checkpoint.interval.ms") {
            c.log_flush_offset_checkpoint_interval_ms = parse_num(
                "log.flush.offset.checkpoint.interval.ms",
                v,
                1,
                i32::MAX as i64,
            )? as u64;
        }
        if let Some(v) = get("socket.request.max.bytes") {
            c.socket_request_max_bytes =
                parse_num("socket.request.max.bytes", v, 1, i32::MAX as i64)? as usize;
        }
        if let Some(v) = get("connections.max.idle.ms") {
            c.connections_max_idle_ms =
                parse_num("connections.max.idle.ms", v, 1, i64::MAX)? as u64;
        }
        if let Some(v) = get("group.initial.rebalance.delay.ms") {
            c.group_initial_rebalance_delay_ms =
                parse_num("group.initial.rebalance.delay.ms", v, 0, i32::MAX as i64)? as u64;
        }
        if let Some(v) = get("replica.lag.time.max.ms") {
            c.replica_lag_time_max_ms =
                parse_num("replica.lag.time.max.ms", v, 1, i32::MAX as i64)? as u64;
        }
        if let Some(v) = get("offsets.topic.num.partitions") {
            c.offsets_topic_num_partitions =
                parse_num("offsets.topic.num.partitions", v, 1, 10_000)? as i32;
        }
        if let Some(v) = get("offsets.topic.replication.factor") {
            c.offsets_topic_replication_factor =
                parse_num("offsets.topic.replication.factor", v, 1, i16::MAX as i64)? as i16;
        }
        if let Some(v) = get("offsets.retention.minutes") {
            c.offsets_retention_minutes =
                parse_num("offsets.retention.minutes", v, 1, i32::MAX as i64)? as u64;
        }
        if let Some(v) = get("offsets.retention.check.interval.ms") {
            c.offsets_retention_check_interval_ms =
                parse_num("offsets.retention.check.interval.ms", v, 1, i64::MAX)? as u64;
        }
        if let Some(v) = get("group.consumer.session.timeout.ms") {
            c.group_consumer_session_timeout_ms = parse_num(
                "group.consumer.session.timeout.ms",
                v,
                1_000,
                i32::MAX as i64,
            )? as u64;
        }
        if let Some(v) = get("group.max.size") {
            c.group_max_size = parse_num("group.max.size", v, 1, i32::MAX as i64)? as usize;
        }
        if let Some(v) = get("group.consumer.max.size") {
            c.group_consumer_max_size =
                parse_num("group.consumer.max.size", v, 1, i32::MAX as i64)? as usize;
        }
        if let Some(v) = get("group.consumer.heartbeat.interval.ms") {
            c.group_consumer_heartbeat_interval_ms = parse_num(
                "group.consumer.heartbeat.interval.ms",
                v,
                100,
                i32::MAX as i64,
            )? as u64;
        }
        if c.group_consumer_heartbeat_interval_ms >= c.group_consumer_session_timeout_ms {
            return Err(ConfigError::Invalid {
                key: "group.consumer.heartbeat.interval.ms".into(),
                value: c.group_consumer_heartbeat_interval_ms.to_string(),
                why: format!(
                    "must be less than group.consumer.session.timeout.ms ({})",
                    c.group_consumer_session_timeout_ms
                ),
            });
        }
        if let Some(v) = get("group.consumer.assignors") {
            c.group_consumer_assignors = parse_assignors("group.consumer.assignors", v)?;
        }
        if let Some(v) = get("admin.listener") {
            c.admin_listener = if v.is_empty() {
                None
            } else {
                Some(parse_host_port("admin.listener", v)?)
            };
        }
        if let Some(v) = get("metrics.enable") {
            c.metrics_enable = parse_bool("metrics.enable", v)?;
        }
        if let Some(v) = get("connection.failed.authentication.delay.ms") {
            c.failed_authentication_delay_ms =
                parse_num("connection.failed.authentication.delay.ms", v, 0, 60_000)? as u64;
        }
        if let Some(v) = get("cluster.id") {
            c.cluster_id = v.to_string();
        }
        c.txn = crate::txn::config::TxnConfig::parse(get, parse_num)?;
        c.authorizer = crate::security::acl::AuthorizerConfig::parse(get)
            .map_err(|(key, value, why)| ConfigError::Invalid { key, value, why })?;
        let listener_names: Vec<String> = c.listeners.iter().map(|l| l.name.clone()).collect();
        c.quota = crate::quota::QuotaConfig::parse(get, &listener_names)?;
        crate::topic_config::validate_broker_props(props).map_err(ConfigError::TopicDefault)?;
        c.props = props.clone();
        Ok(c)
    }

    /// The broker-only properties as DescribeConfigs shows them (read-only): name,
    /// value in effect, and whether it was set rather than defaulted. Topic defaults
    /// (`log.retention.ms`...) are described through `topic_config` instead.
    pub fn static_view(&self) -> Vec<(&'static str, String, bool)> {
        let listeners = |adv: bool| {
            self.listeners
                .iter()
                .map(|l| {
                    let a = if adv { &l.advertised } else { &l.bind };
                    format!("{}://{}:{}", l.name, a.host, a.port)
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let dirs = self
            .log_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let values: [(&'static str, String); 26] = [
            ("node.id", self.node_id.to_string()),
            ("listeners", listeners(false)),
            ("advertised.listeners", listeners(true)),
            ("log.dirs", dirs),
            ("num.partitions", self.num_partitions.to_string()),
            (
                "default.replication.factor",
                self.default_replication_factor.to_string(),
            ),
            (
                "auto.create.topics.enable",
                self.auto_create_topics_enable.to_string(),
            ),
            ("fetch.max.bytes", self.fetch_bytes_max.to_string()),
            (
                FETCH_SESSION_SLOTS_KEY,
                self.fetch_session_slots.to_string(),
            ),
            (
                PARTITIONS_PER_REQUEST_KEY,
                self.partitions_per_request_max.to_string(),
            ),
            (
                "log.retention.check.interval.ms",
                self.log_retention_check_interval_ms.to_string(),
            ),
            (
                "log.flush.offset.checkpoint.interval.ms",
                self.log_flush_offset_checkpoint_interval_ms.to_string(),
            ),
            ("log.cleaner.enable", self.log_cleaner_enable.to_string()),
            (
                "log.cleaner.io.max.bytes.per.second",
                match self.log_cleaner_io_max_bytes_per_second {
                    0 => f64::MAX.to_string(),
                    rate => rate.to_string(),
                },
            ),
            (
                "log.cleaner.backoff.ms",
                self.log_cleaner_backoff_ms.to_string(),
            ),
            (
                "log.cleaner.dedupe.buffer.size",
                self.log_cleaner_dedupe_buffer_size.to_string(),
            ),
            (
                "socket.request.max.bytes",
                self.socket_request_max_bytes.to_string(),
            ),
            (
                "connections.max.idle.ms",
                self.connections_max_idle_ms.to_string(),
            ),
            (
                "group.initial.rebalance.delay.ms",
                self.group_initial_rebalance_delay_ms.to_string(),
            ),
            (
                "replica.lag.time.max.ms",
                self.replica_lag_time_max_ms.to_string(),
            ),
            (
                "offsets.topic.num.partitions",
                self.offsets_topic_num_partitions.to_string(),
            ),
            (
                "offsets.topic.replication.factor",
                self.offsets_topic_replication_factor.to_string(),
            ),
            (
                "offsets.retention.minutes",
                self.offsets_retention_minutes.to_string(),
            ),
            (
                "offsets.retention.check.interval.ms",
                self.offsets_retention_check_interval_ms.to_string(),
            ),
            ("cluster.id", self.cluster_id.clone()),
            ("num.shards", self.shard_count().to_string()),
        ];
        values
            .into_iter()
            .chain(self.txn.view())
            .map(|(k, v)| {
                let set = match k {
                    "node.id" => self.props.contains_key(k) || self.props.contains_key("broker.id"),
                    "log.dirs" => self.props.contains_key(k) || self.props.contains_key("log.dir"),
                    PARTITIONS_PER_REQUEST_KEY => {
                        self.props.contains_key(k)
                            || self.props.contains_key(PARTITIONS_PER_REQUEST_KAFKA_KEY)
                    }
                    "num.shards" => self.smp.is_some(),
                    _ => self.props.contains_key(k),
                };
                (k, v, set)
            })
            .collect()
    }

    pub fn shard_count(&self) -> usize {
        self.smp
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

pub mod controller_listener;
mod keys;
pub mod listeners;
mod parse;
pub mod sasl;
pub mod tls;
use keys::key_warning;
pub use listeners::{ClientListener, SecurityProtocol};
use parse::{
    formatted_voters, invalid, key_of, parse_assignors, parse_bool, parse_dirs, parse_host_port,
    parse_num,
};
pub use parse::{parse_properties, read_properties};

#[cfg(test)]
mod tests;
