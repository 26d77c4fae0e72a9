//! Client quotas and connection limits (issue 12 item 5), by Kafka's names.
//!
//! - `conn_limits`: `max.connections`, `listener.name.<l>.max.connections`,
//!   `max.connections.per.ip` and `max.connections.per.ip.overrides`, counted per broker
//!   across shards (every shard accepts on every listener).
//! - `conn_rate`: `max.connection.creation.rate` and IP `connection_creation_rate`
//!   quotas (KIP-612), checked at accept.
//! - `entity`: quota entities (user, client id, `<default>`s), Kafka's precedence, and
//!   the changes AlterClientQuotas makes.
//! - `sensor`: one windowed rate (`quota.window.num` × `quota.window.size.seconds`),
//!   lock-free, shared by every shard, and the throttle time it implies.
//! - `store`: where the quotas live (a file in the first log dir, or the quorum).
//! - `mutation`: `controller_mutation_rate` (KIP-599), a token bucket per sensor.
//! - `manager`: the per-broker sensors and the per-connection cache that the
//!   connection's reader and writer use once per request.

pub mod conn_limits;
pub mod conn_rate;
pub mod entity;
pub mod manager;
pub mod mutation;
pub mod sensor;
pub mod store;
pub mod throttle_field;

use crate::config::ConfigError;

/// Kafka's `quota.window.num` default.
pub const QUOTA_WINDOW_NUM_DEFAULT: u32 = 11;
/// Kafka's `quota.window.size.seconds` default.
pub const QUOTA_WINDOW_SIZE_SECONDS_DEFAULT: u32 = 1;
/// Most samples a rate keeps (bounds the sensor's size).
pub const QUOTA_WINDOW_NUM_MAX: u32 = 100;

/// The keys read here, for the known-keys table (`listener.name.<l>.max.connections`
/// is matched by its suffix).
pub const KEYS: &[&str] = &[
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "quota.window.num",
    "quota.window.size.seconds",
    "controller.quota.window.num",
    "max.connection.creation.rate",
    "controller.quota.window.size.seconds",
];

/// The quota and connection-limit settings of a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaConfig {
    pub window_num: u32,
    pub window_size_seconds: u32,
    pub limits: conn_limits::LimitsConfig,
    /// `controller.quota.window.num` × `controller.quota.window.size.seconds`: the
    /// `controller_mutation_rate` burst in seconds of the rate.
    pub mutation_window_num: u32,
    pub mutation_window_size_seconds: u32,
    /// `max.connection.creation.rate` (new connections per second per broker); None:
    /// Kafka's default, no limit.
    pub max_connection_creation_rate: Option<u32>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            window_num: QUOTA_WINDOW_NUM_DEFAULT,
            window_size_seconds: QUOTA_WINDOW_SIZE_SECONDS_DEFAULT,
            limits: Default::default(),
            mutation_window_num: mutation::WINDOW_NUM_DEFAULT,
            mutation_window_size_seconds: mutation::WINDOW_SIZE_SECONDS_DEFAULT,
            max_connection_creation_rate: None,
        }
    }
}

impl QuotaConfig {
    /// Reads the keys `get` has; `listeners` are the client listeners' names (upper
    /// case), for `listener.name.<l>.max.connections`.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        listeners: &[String],
    ) -> Result<QuotaConfig, ConfigError> {
        let mut c = QuotaConfig::default();
        let num = |key: &str, min: u64, max: u64| -> Result<Option<u64>, ConfigError> {
            let Some(v) = get(key) else { return Ok(None) };
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| invalid(key, v, "not a number"))?;
            if n < min || n > max {
                return Err(invalid(key, v, &format!("must be {min}..={max}")));
            }
            Ok(Some(n))
        };
        if let Some(n) = num("quota.window.num", 2, u64::from(QUOTA_WINDOW_NUM_MAX))? {
            c.window_num = n as u32;
        }
        if let Some(n) = num("quota.window.size.seconds", 1, 3600)? {
            c.window_size_seconds = n as u32;
        }
        if let Some(n) = num(
            "controller.quota.window.num",
            1,
            u64::from(QUOTA_WINDOW_NUM_MAX),
        )? {
            c.mutation_window_num = n as u32;
        }
        if let Some(n) = num("controller.quota.window.size.seconds", 1, 3600)? {
            c.mutation_window_size_seconds = n as u32;
        }
        let max = u64::from(u32::MAX);
        if let Some(n) = num("max.connection.creation.rate", 1, max)? {
            // Kafka's default, Int.MaxValue, means no limit.
            c.max_connection_creation_rate = (n < i32::MAX as u64).then_some(n as u32);
        }
        if let Some(n) = num("max.connections", 0, max)? {
            c.limits.max_connections = n as u32;
        }
        if let Some(n) = num("max.connections.per.ip", 0, max)? {
            c.limits.max_per_ip = n as u32;
        }
        if let Some(v) = get("max.connections.per.ip.overrides") {
            c.limits.per_ip_overrides = conn_limits::parse_overrides(v)
                .map_err(|why| invalid("max.connections.per.ip.overrides", v, &why))?;
        }
        for name in listeners {
            let lower = format!("listener.name.{}.max.connections", name.to_lowercase());
            let upper = format!("listener.name.{name}.max.connections");
            let key = if get(&lower).is_some() { lower } else { upper };
            if let Some(n) = num(&key, 0, max)? {
                c.limits.per_listener.push((name.clone(), n as u32));
            }
        }
        Ok(c)
    }

    /// The length of one sample window.
    pub fn window_size_ms(&self) -> u64 {
        u64::from(self.window_size_seconds) * 1000
    }
}

fn invalid(key: &str, value: &str, why: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    }
}
