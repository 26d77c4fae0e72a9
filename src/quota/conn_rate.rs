//! Connection creation rates (KIP-612): the broker's `max.connection.creation.rate` and
//! each IP address's `connection_creation_rate` quota (an `ip` entity, or the default
//! ip), counted at accept over the quota windows (`quota.window.num` ×
//! `quota.window.size.seconds`, Kafka's `Rate`).
//!
//! A connection over either rate is closed at once, before TLS or SASL, with a log line
//! and `corelog_connections_refused_total`. Kafka instead delays: the acceptor waits
//! before accepting more when the broker's rate is reached, and a connection over its
//! IP's quota is closed only after the throttle time. Every accepted connection is
//! counted, refused ones included, as in Kafka.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::entity::QuotaIndex;
use super::sensor::Sensor;
use super::QuotaConfig;

/// Most per-IP sensors kept; past it the map starts over (the rates of the addresses
/// seen since are measured afresh).
const IP_SENSORS_MAX: usize = 100_000;

pub struct ConnectionRates {
    /// `max.connection.creation.rate` and its sensor, when set.
    broker: Option<(Sensor, f64)>,
    per_ip: Mutex<HashMap<IpAddr, Arc<Sensor>>>,
    window_num: u32,
    window_size_ms: u64,
    epoch: Instant,
}

impl ConnectionRates {
    pub fn new(config: &QuotaConfig) -> ConnectionRates {
        let sensor = || Sensor::new(config.window_num, config.window_size_ms());
        ConnectionRates {
            broker: config
                .max_connection_creation_rate
                .map(|rate| (sensor(), f64::from(rate))),
            per_ip: Mutex::new(HashMap::new()),
            window_num: config.window_num,
            window_size_ms: config.window_size_ms(),
            epoch: Instant::now(),
        }
    }

    /// Counts a new connection from `ip`; the reason (the log line's text) when it is
    /// over the broker's rate or its IP's quota. `quotas`: the quotas in force.
    pub fn admit(&self, ip: Option<IpAddr>, quotas: &QuotaIndex) -> Result<(), String> {
        self.admit_at(self.epoch.elapsed().as_millis() as u64, ip, quotas)
    }

    fn admit_at(&self, now_ms: u64, ip: Option<IpAddr>, quotas: &QuotaIndex) -> Result<(), String> {
        if let Some((sensor, rate)) = &self.broker {
            if sensor.record(now_ms, 1, *rate) > 0 {
                return Err(format!(
                    "over the broker's max.connection.creation.rate ({rate}/s)"
                ));
            }
        }
        let Some(ip) = ip else { return Ok(()) };
        let Some(rate) = quotas.ip_rate(ip) else {
            return Ok(());
        };
        let sensor = {
            let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= IP_SENSORS_MAX && !map.contains_key(&ip) {
                map.clear();
            }
            map.entry(ip)
                .or_insert_with(|| Arc::new(Sensor::new(self.window_num, self.window_size_ms)))
                .clone()
        };
        if sensor.record(now_ms, 1, rate) > 0 {
            return Err(format!(
                "{ip} is over its connection_creation_rate quota ({rate}/s)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::entity::{
        apply_changes, Name, QuotaChange, QuotaEntity, CONNECTION_CREATION_RATE,
    };
    use super::*;

    #[test]
    fn ip_quota_and_broker_rate_refuse_past_their_rate() {
        let config = QuotaConfig {
            window_num: 2,
            window_size_seconds: 1,
            max_connection_creation_rate: Some(100),
            ..Default::default()
        };
        let rates = ConnectionRates::new(&config);
        let mut records = Vec::new();
        apply_changes(
            &mut records,
            &[QuotaChange {
                entity: QuotaEntity {
                    user: None,
                    client_id: None,
                    ip: Some(Name::Named("10.0.0.1".into())),
                },
                key: CONNECTION_CREATION_RATE.into(),
                value: Some("3".into()),
            }],
        );
        let index = QuotaIndex::new(&records);
        let limited: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        // 3/s over a span of at least 1 s (at its start): three connections, not a fourth.
        for _ in 0..3 {
            rates.admit_at(0, Some(limited), &index).unwrap();
        }
        let why = rates.admit_at(0, Some(limited), &index).unwrap_err();
        assert!(why.contains("connection_creation_rate"), "{why}");
        for _ in 0..90 {
            rates.admit_at(0, Some(other), &index).unwrap();
        }
        // 94 counted so far; the broker's 100/s refuses the 101st.
        for _ in 0..6 {
            rates.admit_at(0, Some(other), &index).unwrap();
        }
        let why = rates.admit_at(0, Some(other), &index).unwrap_err();
        assert!(why.contains("max.connection.creation.rate"), "{why}");
        // Two windows later both rates are back under their limits.
        rates.admit_at(2_000, Some(limited), &index).unwrap();
        rates.admit_at(2_000, Some(other), &index).unwrap();
    }
}
