//! The transaction coordinator's settings, and the idempotent producer state's expiry
//! (Kafka keeps `producer.id.expiration.ms` among its transaction log configs too), by
//! Kafka's names and with Kafka's defaults.
//! `BrokerConfig` holds one `TxnConfig` and parses it with `TxnConfig::parse`.

use crate::config::ConfigError;

/// Kafka's `transaction.max.timeout.ms` default: 15 minutes.
pub const TRANSACTION_MAX_TIMEOUT_MS_DEFAULT: i32 = 900_000;
/// Kafka's `transactional.id.expiration.ms` default: 7 days.
pub const TRANSACTIONAL_ID_EXPIRATION_MS_DEFAULT: i64 = 604_800_000;
/// Kafka's `transaction.state.log.num.partitions` default.
pub const TXN_STATE_LOG_NUM_PARTITIONS_DEFAULT: i32 = 50;
/// Kafka's `transaction.abort.timed.out.transaction.cleanup.interval.ms` default.
pub const TXN_ABORT_CHECK_INTERVAL_MS_DEFAULT: u64 = 10_000;
/// Kafka's `transaction.remove.expired.transaction.cleanup.interval.ms` default: 1 hour.
pub const TXN_EXPIRE_CHECK_INTERVAL_MS_DEFAULT: u64 = 3_600_000;
/// Kafka's `producer.id.expiration.ms` default: 1 day.
pub const PRODUCER_ID_EXPIRATION_MS_DEFAULT: i64 = 86_400_000;
/// Kafka's `producer.id.expiration.check.interval.ms` default: 10 minutes.
pub const PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS_DEFAULT: u64 = 600_000;
/// Kafka's `transaction.state.log.replication.factor` default: a cluster creates
/// `__transaction_state` once this many brokers are live.
pub const TXN_STATE_LOG_REPLICATION_FACTOR_DEFAULT: i16 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// The longest `transaction.timeout.ms` a producer may ask for.
    pub max_timeout_ms: i32,
    /// An id idle this long (no transaction, no InitProducerId) is forgotten.
    pub id_expiration_ms: i64,
    /// Partitions of `__transaction_state`, fixed when the topic is first created.
    pub state_log_num_partitions: i32,
    /// How often open transactions are checked against their timeout.
    pub abort_check_interval_ms: u64,
    /// How often idle ids are checked against `id_expiration_ms`.
    pub expire_check_interval_ms: u64,
    /// Replicas of each `__transaction_state` partition in a cluster (fixed at creation).
    pub state_log_replication_factor: i16,
    /// A partition forgets an idempotent producer whose newest batch is this old and
    /// that has no transaction open there (`ProducerState::expire`).
    pub producer_id_expiration_ms: i64,
    /// How often each shard's partitions are checked against
    /// `producer_id_expiration_ms`.
    pub producer_id_expiration_check_interval_ms: u64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: TRANSACTION_MAX_TIMEOUT_MS_DEFAULT,
            id_expiration_ms: TRANSACTIONAL_ID_EXPIRATION_MS_DEFAULT,
            state_log_num_partitions: TXN_STATE_LOG_NUM_PARTITIONS_DEFAULT,
            abort_check_interval_ms: TXN_ABORT_CHECK_INTERVAL_MS_DEFAULT,
            expire_check_interval_ms: TXN_EXPIRE_CHECK_INTERVAL_MS_DEFAULT,
            state_log_replication_factor: TXN_STATE_LOG_REPLICATION_FACTOR_DEFAULT,
            producer_id_expiration_ms: PRODUCER_ID_EXPIRATION_MS_DEFAULT,
            producer_id_expiration_check_interval_ms:
                PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS_DEFAULT,
        }
    }
}

/// The keys read here, for the known-keys table.
pub const KEYS: &[&str] = &[
    "transaction.max.timeout.ms",
    "transactional.id.expiration.ms",
    "transaction.state.log.num.partitions",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transaction.remove.expired.transaction.cleanup.interval.ms",
    "transaction.state.log.replication.factor",
    "producer.id.expiration.ms",
    "producer.id.expiration.check.interval.ms",
];

impl TxnConfig {
    /// Reads the keys `get` has; `num` parses one as an integer within bounds.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        num: impl Fn(&str, &str, i64, i64) -> Result<i64, ConfigError>,
    ) -> Result<TxnConfig, ConfigError> {
        let mut c = TxnConfig::default();
        let i32_max = i64::from(i32::MAX);
        let read = |key: &str, min: i64, max: i64| -> Result<Option<i64>, ConfigError> {
            get(key).map(|v| num(key, v, min, max)).transpose()
        };
        if let Some(v) = read(KEYS[0], 1, i32_max)? {
            c.max_timeout_ms = v as i32;
        }
        if let Some(v) = read(KEYS[1], 1, i32_max)? {
            c.id_expiration_ms = v;
        }
        if let Some(v) = read(KEYS[2], 1, 10_000)? {
            c.state_log_num_partitions = v as i32;
        }
        if let Some(v) = read(KEYS[3], 1, i32_max)? {
            c.abort_check_interval_ms = v as u64;
        }
        if let Some(v) = read(KEYS[4], 1, i32_max)? {
            c.expire_check_interval_ms = v as u64;
        }
        if let Some(v) = read(KEYS[5], 1, i64::from(i16::MAX))? {
            c.state_log_replication_factor = v as i16;
        }
        if let Some(v) = read(KEYS[6], 1, i32_max)? {
            c.producer_id_expiration_ms = v;
        }
        if let Some(v) = read(KEYS[7], 1, i32_max)? {
            c.producer_id_expiration_check_interval_ms = v as u64;
        }
        Ok(c)
    }

    /// (key, value in effect), in `KEYS` order, for DescribeConfigs.
    pub fn view(&self) -> [(&'static str, String); 8] {
        [
            (KEYS[0], self.max_timeout_ms.to_string()),
            (KEYS[1], self.id_expiration_ms.to_string()),
            (KEYS[2], self.state_log_num_partitions.to_string()),
            (KEYS[3], self.abort_check_interval_ms.to_string()),
            (KEYS[4], self.expire_check_interval_ms.to_string()),
            (KEYS[5], self.state_log_replication_factor.to_string()),
            (KEYS[6], self.producer_id_expiration_ms.to_string()),
            (
                KEYS[7],
                self.producer_id_expiration_check_interval_ms.to_string(),
            ),
        ]
    }
}
