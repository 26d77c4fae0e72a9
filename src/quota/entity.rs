//! Quota entities and Kafka's precedence between them.
//!
//! An entity names a user, a client id, or both; either part may be `<default>`
//! (`Name::Default`, null on the wire). For one connection, each quota kind is taken
//! from the first entity in `PRECEDENCE` that sets it (Kafka's order):
//! user+client-id, user+default client, user, default user+client-id, default
//! user+default client, default user, client-id, default client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
/// Partitions created or deleted per second (KIP-599, `quota::mutation`).
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
/// The quota keys of users and client ids, in `Kind::slot` order.
pub const QUOTA_KEYS: [&str; 4] = [
    PRODUCER_BYTE_RATE,
    CONSUMER_BYTE_RATE,
    REQUEST_PERCENTAGE,
    CONTROLLER_MUTATION_RATE,
];

/// Kafka's entity types on the wire and in kafka-configs.
pub const ENTITY_USER: &str = "user";
pub const ENTITY_CLIENT_ID: &str = "client-id";
/// An IP address (KIP-612), alone: it has `CONNECTION_CREATION_RATE` only.
pub const ENTITY_IP: &str = "ip";
/// New connections per second from one IP address (KIP-612), checked at accept.
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Name {
    Default,
    Named(String),
}

impl Name {
    /// The wire form: `None` is the default entity.
    pub fn from_wire(name: Option<&str>) -> Name {
        name.map_or(Name::Default, |n| Name::Named(n.to_string()))
    }

    pub fn to_wire(&self) -> Option<&str> {
        match self {
            Name::Default => None,
            Name::Named(n) => Some(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<Name>,
    pub client_id: Option<Name>,
    /// An IP entity (never with a user or client id). Absent from the JSON of the
    /// entities written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Name>,
}

impl std::fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let part = |n: &Name| match n {
            Name::Default => "<default>".to_string(),
            Name::Named(s) => format!("'{s}'"),
        };
        let mut parts = Vec::new();
        if let Some(u) = &self.user {
            parts.push(format!("user={}", part(u)));
        }
        if let Some(c) = &self.client_id {
            parts.push(format!("client-id={}", part(c)));
        }
        if let Some(ip) = &self.ip {
            parts.push(format!("ip={}", part(ip)));
        }
        f.write_str(&parts.join(", "))
    }
}

/// The quota kinds enforced, one sensor each per entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Produce,
    Fetch,
    Request,
    /// `controller_mutation_rate`: a token bucket per request (`quota::mutation`),
    /// not one of a connection's sensors.
    Mutation,
}

impl Kind {
    /// The kinds a connection counts in on every request (`manager::ConnQuotas`).
    pub const ALL: [Kind; 3] = [Kind::Produce, Kind::Fetch, Kind::Request];

    pub fn key(self) -> &'static str {
        QUOTA_KEYS[self.slot()]
    }

    /// Its place in `QUOTA_KEYS`.
    pub fn slot(self) -> usize {
        match self {
            Kind::Produce => 0,
            Kind::Fetch => 1,
            Kind::Request => 2,
            Kind::Mutation => 3,
        }
    }
}

/// One entity's quotas. Values are kept as text (their canonical f64 form) so that the
/// quorum's state stays `Eq` and round-trips through JSON exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRecord {
    pub entity: QuotaEntity,
    pub values: BTreeMap<String, String>,
}

/// One change of AlterClientQuotas: set `key` to `value`, or remove it (`None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaChange {
    pub entity: QuotaEntity,
    pub key: String,
    pub value: Option<String>,
}

/// Applies `changes` to `records` (kept sorted by entity; an entity left with no value
/// is removed).
pub fn apply_changes(records: &mut Vec<QuotaRecord>, changes: &[QuotaChange]) {
    for c in changes {
        let at = records.binary_search_by(|r| r.entity.cmp(&c.entity));
        match (at, &c.value) {
            (Ok(i), Some(v)) => {
                records[i].values.insert(c.key.clone(), v.clone());
            }
            (Ok(i), None) => {
                records[i].values.remove(&c.key);
                if records[i].values.is_empty() {
                    records.remove(i);
                }
            }
            (Err(i), Some(v)) => records.insert(
                i,
                QuotaRecord {
                    entity: c.entity.clone(),
                    values: BTreeMap::from([(c.key.clone(), v.clone())]),
                },
            ),
            (Err(_), None) => {}
        }
    }
}

/// Whether `records` show every change (the last one per entity and key).
pub fn holds(records: &[QuotaRecord], changes: &[QuotaChange]) -> bool {
    let mut want = records.to_vec();
    apply_changes(&mut want, changes);
    want == records
}

/// Checks a value as Kafka does (a positive number; `request_percentage` any positive
/// percentage) and gives its canonical text.
pub fn canonical_value(key: &str, value: f64) -> Result<String, String> {
    if !QUOTA_KEYS.contains(&key) && key != CONNECTION_CREATION_RATE {
        return Err(format!(
            "{key} is not a quota corelog knows (known: {}, and {CONNECTION_CREATION_RATE} for ip entities)",
            QUOTA_KEYS.join(", ")
        ));
    }
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("{key} must be a positive number, not {value}"));
    }
    Ok(value.to_string())
}

/// Who a connection is, for quotas: its user (the principal's name; `ANONYMOUS` without
/// a login) and the request's client id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub user: String,
    pub client_id: String,
}

/// The sensor a connection's requests count in: the matched entity with the client's
/// actual names filled in (two users under `users/<default>` get a sensor each; all the
/// client ids of a user under `users/alice` share one), as Kafka's metric tags do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SensorKey {
    pub kind: Kind,
    pub user: Option<String>,
    pub client_id: Option<String>,
}

/// The quotas in force, indexed for `resolve`.
#[derive(Debug, Default)]
pub struct QuotaIndex {
    entries: std::collections::HashMap<QuotaEntity, [Option<f64>; QUOTA_KEYS.len()]>,
    /// `connection_creation_rate` by IP entity (`Name::Default`: the default ip).
    ip_rates: std::collections::HashMap<Name, f64>,
}

impl QuotaIndex {
    pub fn new(records: &[QuotaRecord]) -> QuotaIndex {
        let ip_rates = records
            .iter()
            .filter_map(|r| {
                let rate = r.values.get(CONNECTION_CREATION_RATE)?.parse().ok()?;
                Some((r.entity.ip.clone()?, rate))
            })
            .collect();
        let entries = records
            .iter()
            .filter(|r| r.entity.ip.is_none())
            .map(|r| {
                let mut v = [None; QUOTA_KEYS.len()];
                for (i, key) in QUOTA_KEYS.iter().enumerate() {
                    v[i] = r.values.get(*key).and_then(|s| s.parse().ok());
                }
                (r.entity.clone(), v)
            })
            .collect();
        QuotaIndex { entries, ip_rates }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `connection_creation_rate` of `ip`: its own entity's, else the default ip's.
    pub fn ip_rate(&self, ip: std::net::IpAddr) -> Option<f64> {
        if self.ip_rates.is_empty() {
            return None;
        }
        self.ip_rates
            .get(&Name::Named(ip.to_string()))
            .or_else(|| self.ip_rates.get(&Name::Default))
            .copied()
    }

    /// The quota of `kind` for `who` and the sensor it counts in, by Kafka's precedence.
    pub fn resolve(&self, kind: Kind, who: &ClientKey) -> Option<(SensorKey, f64)> {
        if self.entries.is_empty() {
            return None;
        }
        let slot = kind.slot();
        let user = Name::Named(who.user.clone());
        let client = Name::Named(who.client_id.clone());
        let candidates = [
            (Some(&user), Some(&client)),
            (Some(&user), Some(&Name::Default)),
            (Some(&user), None),
            (Some(&Name::Default), Some(&client)),
            (Some(&Name::Default), Some(&Name::Default)),
            (Some(&Name::Default), None),
            (None, Some(&client)),
            (None, Some(&Name::Default)),
        ];
        for (u, c) in candidates {
            let entity = QuotaEntity {
                user: u.cloned(),
                client_id: c.cloned(),
                ip: None,
            };
            if let Some(limit) = self.entries.get(&entity).and_then(|v| v[slot]) {
                let key = SensorKey {
                    kind,
                    user: u.map(|_| who.user.clone()),
                    client_id: c.map(|_| who.client_id.clone()),
                };
                return Some((key, limit));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> QuotaEntity {
        QuotaEntity {
            user: user.map(Name::from_wire),
            client_id: client.map(Name::from_wire),
            ip: None,
        }
    }

    fn set(records: &mut Vec<QuotaRecord>, e: QuotaEntity, key: &str, v: f64) {
        let change = QuotaChange {
            entity: e,
            key: key.into(),
            value: Some(canonical_value(key, v).unwrap()),
        };
        apply_changes(records, &[change]);
    }

    #[test]
    fn precedence_follows_kafka() {
        let who = ClientKey {
            user: "alice".into(),
            client_id: "app".into(),
        };
        let mut r = Vec::new();
        let p = PRODUCER_BYTE_RATE;
        set(&mut r, entity(None, Some(None)), p, 8.0);
        let idx = |r: &Vec<QuotaRecord>| QuotaIndex::new(r).resolve(Kind::Produce, &who);
        let (key, limit) = idx(&r).unwrap();
        assert_eq!(
            (key.user, key.client_id.as_deref(), limit),
            (None, Some("app"), 8.0)
        );
        set(&mut r, entity(None, Some(Some("app"))), p, 7.0);
        assert_eq!(idx(&r).unwrap().1, 7.0);
        set(&mut r, entity(Some(None), None), p, 6.0);
        assert_eq!(idx(&r).unwrap().1, 6.0);
        set(&mut r, entity(Some(None), Some(None)), p, 5.0);
        assert_eq!(idx(&r).unwrap().1, 5.0);
        set(&mut r, entity(Some(None), Some(Some("app"))), p, 4.0);
        assert_eq!(idx(&r).unwrap().1, 4.0);
        set(&mut r, entity(Some(Some("alice")), None), p, 3.0);
        let (key, limit) = idx(&r).unwrap();
        assert_eq!(
            (key.user.as_deref(), key.client_id, limit),
            (Some("alice"), None, 3.0)
        );
        set(&mut r, entity(Some(Some("alice")), Some(None)), p, 2.0);
        assert_eq!(idx(&r).unwrap().1, 2.0);
        set(
            &mut r,
            entity(Some(Some("alice")), Some(Some("app"))),
            p,
            1.0,
        );
        assert_eq!(idx(&r).unwrap().1, 1.0);
        assert!(QuotaIndex::new(&r).resolve(Kind::Fetch, &who).is_none());
    }

    #[test]
    fn changes_set_replace_and_remove() {
        let mut r = Vec::new();
        let e = entity(Some(Some("bob")), None);
        set(&mut r, e.clone(), CONSUMER_BYTE_RATE, 10.0);
        set(&mut r, e.clone(), CONSUMER_BYTE_RATE, 20.5);
        assert_eq!(r[0].values[CONSUMER_BYTE_RATE], "20.5");
        let remove = QuotaChange {
            entity: e,
            key: CONSUMER_BYTE_RATE.into(),
            value: None,
        };
        apply_changes(&mut r, &[remove]);
        assert!(r.is_empty());
        assert!(canonical_value(CONTROLLER_MUTATION_RATE, 1.0).is_ok());
        assert!(canonical_value("connection_creation_rate_x", 1.0).is_err());
        assert!(canonical_value(CONNECTION_CREATION_RATE, 1.0).is_ok());
    }

    #[test]
    fn ip_rates_fall_back_to_the_default_ip() {
        let ip = |name: Option<&str>| QuotaEntity {
            user: None,
            client_id: None,
            ip: Some(Name::from_wire(name)),
        };
        let mut r = Vec::new();
        set(&mut r, ip(Some("10.0.0.1")), CONNECTION_CREATION_RATE, 5.0);
        let idx = QuotaIndex::new(&r);
        assert_eq!(idx.ip_rate("10.0.0.1".parse().unwrap()), Some(5.0));
        assert_eq!(idx.ip_rate("10.0.0.2".parse().unwrap()), None);
        set(&mut r, ip(None), CONNECTION_CREATION_RATE, 2.0);
        let idx = QuotaIndex::new(&r);
        assert_eq!(idx.ip_rate("10.0.0.2".parse().unwrap()), Some(2.0));
        assert_eq!(idx.ip_rate("10.0.0.1".parse().unwrap()), Some(5.0));
        // An ip entity's record is not a user / client-id entity's.
        let who = ClientKey {
            user: "u".into(),
            client_id: "c".into(),
        };
        assert!(idx.resolve(Kind::Produce, &who).is_none());
        let json = serde_json::to_string(&entity(Some(Some("u")), None)).unwrap();
        assert!(!json.contains("ip"), "{json}");
        let old: QuotaEntity =
            serde_json::from_str(r#"{"user":null,"client_id":"Default"}"#).unwrap();
        assert_eq!(old.ip, None);
        assert!(canonical_value(PRODUCER_BYTE_RATE, 0.0).is_err());
    }
}
