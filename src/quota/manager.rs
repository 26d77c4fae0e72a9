//! The broker's quota sensors and each connection's view of them.
//!
//! `QuotaManager` (one per broker, shared by all shards) holds the store and the
//! sensors, keyed by `SensorKey`: a client's connections count in the same sensor
//! whichever shard accepted them, so a quota is enforced per broker, as Kafka's are.
//! `ConnQuotas` (one per connection, on its shard) caches the sensors its client
//! counts in; per request it costs one atomic load and a client-id compare when no
//! quota applies, and one `Sensor::record` (a few atomics) per quota that does.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::entity::{ClientKey, Kind, SensorKey};
use super::sensor::Sensor;
use super::store::QuotaStore;
use super::QuotaConfig;

/// Most sensors kept; past it, sensors no connection holds are dropped (Kafka expires
/// idle sensors after an hour instead).
pub const SENSORS_MAX: usize = 100_000;

pub struct QuotaManager {
    pub config: QuotaConfig,
    pub store: QuotaStore,
    sensors: Mutex<HashMap<SensorKey, Arc<Sensor>>>,
    epoch: Instant,
    /// `controller_mutation_rate` buckets (`mutation`).
    pub buckets: super::mutation::Buckets,
    /// New connections per second, by broker and by IP (`conn_rate`).
    pub conn_rates: super::conn_rate::ConnectionRates,
}

impl QuotaManager {
    pub fn new(config: QuotaConfig, store: QuotaStore) -> QuotaManager {
        QuotaManager {
            conn_rates: super::conn_rate::ConnectionRates::new(&config),
            config,
            store,
            sensors: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            buckets: Default::default(),
        }
    }

    /// Counts a new connection from `ip` against `max.connection.creation.rate` and
    /// the IP's `connection_creation_rate`; the reason when it is over one.
    pub fn admit_connection(&self, ip: Option<std::net::IpAddr>) -> Result<(), String> {
        self.conn_rates.admit(ip, &self.store.snapshot().index)
    }

    fn sensor(&self, key: SensorKey) -> Arc<Sensor> {
        let mut map = self.sensors.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SENSORS_MAX && !map.contains_key(&key) {
            map.retain(|_, s| Arc::strong_count(s) > 1);
        }
        map.entry(key)
            .or_insert_with(|| {
                Arc::new(Sensor::new(
                    self.config.window_num,
                    self.config.window_size_ms(),
                ))
            })
            .clone()
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

/// One connection's quotas: the sensors its client counts in (by kind), resolved for
/// the store version and client id they were resolved for, and until when the
/// connection is muted.
pub struct ConnQuotas {
    user: String,
    client_id: String,
    /// `u64::MAX`: never resolved.
    version: u64,
    sensors: [Option<(Arc<Sensor>, f64)>; 3],
    mute_until: Option<Instant>,
}

impl ConnQuotas {
    /// `principal` is the connection's (`User:<name>`); none counts as Kafka's
    /// `ANONYMOUS` user.
    pub fn new(principal: Option<&str>) -> ConnQuotas {
        let user = principal
            .map(|p| p.strip_prefix("User:").unwrap_or(p))
            .unwrap_or("ANONYMOUS")
            .to_string();
        ConnQuotas {
            user,
            client_id: String::new(),
            version: u64::MAX,
            sensors: [None, None, None],
            mute_until: None,
        }
    }

    /// Re-resolves the sensors when the quotas or the client id changed. Returns whether
    /// any quota applies to this client.
    pub fn refresh(&mut self, m: &QuotaManager, client_id: &str) -> bool {
        let version = m.store.version();
        if version != self.version || client_id != self.client_id {
            self.version = version;
            client_id.clone_into(&mut self.client_id);
            let current = m.store.snapshot();
            let who = ClientKey {
                user: self.user.clone(),
                client_id: self.client_id.clone(),
            };
            for (i, kind) in Kind::ALL.iter().enumerate() {
                self.sensors[i] = current
                    .index
                    .resolve(*kind, &who)
                    .map(|(key, limit)| (m.sensor(key), limit));
            }
        }
        self.sensors.iter().any(Option::is_some)
    }

    /// Counts `amount` (bytes, or nanoseconds for `Kind::Request`) and returns the
    /// throttle time in ms (0: within quota, or no quota).
    pub fn record(&mut self, m: &QuotaManager, kind: Kind, amount: u64) -> u64 {
        let i = Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        let Some((sensor, limit)) = &self.sensors[i] else {
            return 0;
        };
        // request_percentage: percent of one thread's time, counted in ns per second.
        let limit_per_s = match kind {
            Kind::Request => limit * 1e7,
            _ => *limit,
        };
        sensor.record(m.now_ms(), amount, limit_per_s)
    }

    /// Mutes the connection for `ms` from now (a later mute wins).
    pub fn mute(&mut self, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms);
        if self.mute_until.is_none_or(|u| u < until) {
            self.mute_until = Some(until);
        }
    }

    /// How long the connection must still stay muted.
    pub fn muted_for(&self) -> Option<Duration> {
        let until = self.mute_until?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }
}

/// A request's future with the time spent polling it (the shard time the request
/// took, for `request_percentage`; waits such as a long poll are not counted). Without
/// a quota on the connection (`spent_ns: None`) it reads no clock.
pub struct Timed<F> {
    inner: F,
    spent_ns: Option<u64>,
}

impl<F> Timed<F> {
    pub fn new(inner: F, spent_ns: Option<u64>) -> Timed<F> {
        Timed { inner, spent_ns }
    }
}

impl<F: Future + Unpin> Future for Timed<F> {
    type Output = (F::Output, u64);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(spent) = self.spent_ns else {
            return Pin::new(&mut self.inner).poll(cx).map(|out| (out, 0));
        };
        let start = Instant::now();
        let r = Pin::new(&mut self.inner).poll(cx);
        let spent = spent + start.elapsed().as_nanos() as u64;
        self.spent_ns = Some(spent);
        r.map(|out| (out, spent))
    }
}

#[cfg(test)]
mod tests {
    use super::super::entity::{Name, QuotaChange, QuotaEntity, PRODUCER_BYTE_RATE};
    use super::*;

    #[test]
    fn connections_of_one_client_share_a_sensor() {
        let dir = tempfile::tempdir().unwrap();
        let m = QuotaManager::new(
            QuotaConfig::default(),
            QuotaStore::open(dir.path()).unwrap(),
        );
        let mut a = ConnQuotas::new(None);
        let mut b = ConnQuotas::new(None);
        assert!(!a.refresh(&m, "app"));
        let change = QuotaChange {
            entity: QuotaEntity {
                user: None,
                client_id: Some(Name::Default),
                ip: None,
            },
            key: PRODUCER_BYTE_RATE.into(),
            value: Some("1000".into()),
        };
        m.store.alter_blocking(&[change]).unwrap();
        assert!(a.refresh(&m, "app"));
        assert!(b.refresh(&m, "app"));
        // 10 s minimum span at 1,000 B/s: 10,000 B are within quota, more is not.
        assert_eq!(a.record(&m, Kind::Produce, 10_000), 0);
        assert!(b.record(&m, Kind::Produce, 5_000) > 0);
        let mut other = ConnQuotas::new(None);
        assert!(other.refresh(&m, "other"));
        assert_eq!(other.record(&m, Kind::Produce, 5_000), 0);
        assert_eq!(other.record(&m, Kind::Fetch, 1 << 30), 0);
    }
}
