//! Connection limits, counted per broker: every shard accepts on every listener, so the
//! counts are atomics shared by all shards (touched on accept and close only, never per
//! request). A connection over a limit is closed right after accept, with a log line and
//! `corelog_connections_refused_total`.
//!
//! Kafka's semantics: `max.connections.per.ip` (and its overrides, by IP address or
//! host name resolved at start-up) counts one address's connections across listeners;
//! `max.connections` counts the broker's, `listener.name.<l>.max.connections` one
//! listener's. Over `max.connections` a new connection waits for a free slot, as behind
//! Kafka's acceptor: each shard's accept loop holds the one connection it accepted
//! (unread) until `try_reserve` gets a slot, and accepts nothing more meanwhile, so the
//! rest queue in the kernel's backlog (`server::shard_main::accept_loop`). The other
//! limits (per listener, per IP) close the new connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Kafka's default for both limits: no limit.
pub const UNLIMITED: u32 = i32::MAX as u32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    pub max_connections: u32,
    pub max_per_ip: u32,
    pub per_ip_overrides: Vec<(IpAddr, u32)>,
    /// (listener name, limit) from `listener.name.<l>.max.connections`.
    pub per_listener: Vec<(String, u32)>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: UNLIMITED,
            max_per_ip: UNLIMITED,
            per_ip_overrides: Vec::new(),
            per_listener: Vec::new(),
        }
    }
}

/// `host:count,ip:count`; host names are resolved now (Kafka resolves them too).
pub fn parse_overrides(v: &str) -> Result<Vec<(IpAddr, u32)>, String> {
    let mut out = Vec::new();
    for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| format!("{entry:?} is not host:count"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("{entry:?}: the count is not a number"))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let ip = match host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => {
                use std::net::ToSocketAddrs;
                (host, 0)
                    .to_socket_addrs()
                    .map_err(|e| format!("{entry:?}: cannot resolve {host}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("{entry:?}: {host} has no address"))?
                    .ip()
            }
        };
        out.push((ip, count));
    }
    Ok(out)
}

/// The broker's connection counts; `admit` takes a slot or says which limit is full.
pub struct ConnectionLimits {
    config: LimitsConfig,
    total: AtomicU32,
    /// Per `config.listeners` index; the limit from `listener.name.<l>.max.connections`.
    per_listener: Vec<(AtomicU32, u32)>,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
}

/// A broker-wide count taken before a connection is served (`try_reserve`); moved into
/// its `Slot` by `admit`, else given back when dropped.
pub struct Reservation {
    limits: Arc<ConnectionLimits>,
    live: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.live {
            self.limits.total.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A connection's slot; dropping it gives the slot back.
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    listener: usize,
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let l = &self.limits;
        l.total.fetch_sub(1, Ordering::AcqRel);
        if let Some((n, _)) = l.per_listener.get(self.listener) {
            n.fetch_sub(1, Ordering::AcqRel);
        }
        if let Some(ip) = self.ip {
            let mut map = l.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

impl ConnectionLimits {
    /// `listeners` are the client listeners' names in config order.
    pub fn new(config: LimitsConfig, listeners: &[String]) -> ConnectionLimits {
        let per_listener = listeners
            .iter()
            .map(|name| {
                let limit = config
                    .per_listener
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map_or(UNLIMITED, |(_, l)| *l);
                (AtomicU32::new(0), limit)
            })
            .collect();
        ConnectionLimits {
            config,
            total: AtomicU32::new(0),
            per_listener,
            per_ip: Mutex::new(HashMap::new()),
        }
    }

    fn ip_limit(&self, ip: IpAddr) -> u32 {
        self.config
            .per_ip_overrides
            .iter()
            .find(|(o, _)| *o == ip)
            .map_or(self.config.max_per_ip, |(_, n)| *n)
    }

    /// One of the broker's `max.connections` slots, or None while the broker is full.
    pub fn try_reserve(self: &Arc<Self>) -> Option<Reservation> {
        let max = self.config.max_connections;
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Reservation {
                limits: self.clone(),
                live: true,
            })
    }

    /// Takes a slot for a connection from `ip` on listener `listener`, or says which
    /// limit it is over (the log line's text). With `reserved`, the broker-wide count
    /// was taken already (`try_reserve`).
    pub fn admit(
        self: &Arc<Self>,
        listener: usize,
        ip: Option<IpAddr>,
        reserved: Option<Reservation>,
    ) -> Result<Slot, String> {
        if let Some(ip) = ip {
            let limit = self.ip_limit(ip);
            let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= limit {
                if *n == 0 {
                    map.remove(&ip);
                }
                return Err(format!(
                    "{ip} already has {limit} connections (max.connections.per.ip)"
                ));
            }
            *n += 1;
        }
        // From here the slot owns the per-ip count; dropping it on a refusal below
        // gives back what was taken.
        let slot = Slot {
            limits: self.clone(),
            listener,
            ip,
        };
        let total = match reserved {
            Some(mut r) => {
                r.live = false; // the slot owns the count now
                0
            }
            None => self.total.fetch_add(1, Ordering::AcqRel),
        };
        let on_listener = self
            .per_listener
            .get(listener)
            .map(|(n, limit)| (n.fetch_add(1, Ordering::AcqRel), *limit));
        if total >= self.config.max_connections {
            return Err(format!(
                "the broker has {total} connections (max.connections)"
            ));
        }
        if let Some((n, limit)) = on_listener {
            if n >= limit {
                return Err(format!(
                    "the listener has {n} connections (listener.name.<l>.max.connections)"
                ));
            }
        }
        Ok(slot)
    }

    /// Connections now open (tests, metrics).
    pub fn open(&self) -> u32 {
        self.total.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(config: LimitsConfig) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits::new(
            config,
            &["PLAINTEXT".into(), "SSL".into()],
        ))
    }

    #[test]
    fn per_ip_limit_refuses_then_frees() {
        let l = limits(LimitsConfig {
            max_per_ip: 2,
            ..Default::default()
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = l.admit(0, Some(a), None).unwrap();
        let _s2 = l.admit(1, Some(a), None).unwrap();
        assert!(l.admit(0, Some(a), None).is_err());
        assert_eq!(l.open(), 2, "a refusal gives its slot back");
        let _s3 = l.admit(0, Some(b), None).unwrap();
        drop(s1);
        let _s4 = l.admit(0, Some(a), None).unwrap();
    }

    #[test]
    fn overrides_total_and_listener_limits() {
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let l = limits(LimitsConfig {
            max_per_ip: 1,
            per_ip_overrides: parse_overrides("127.0.0.1:3, localhost:5").unwrap(),
            max_connections: 3,
            per_listener: vec![("SSL".into(), 1)],
        });
        let _a = l.admit(1, Some(a), None).unwrap();
        assert!(l
            .admit(1, Some(a), None)
            .err()
            .unwrap()
            .contains("listener"));
        let _b = l.admit(0, Some(a), None).unwrap();
        let _c = l.admit(0, Some(a), None).unwrap();
        assert!(l
            .admit(0, None, None)
            .err()
            .unwrap()
            .contains("max.connections"));
        assert_eq!(l.open(), 3);
    }

    #[test]
    fn reservations_count_against_max_connections() {
        let l = limits(LimitsConfig {
            max_connections: 2,
            ..Default::default()
        });
        let r1 = l.try_reserve().unwrap();
        let r2 = l.try_reserve().unwrap();
        assert!(l.try_reserve().is_none(), "full");
        let s1 = l.admit(0, None, Some(r1)).unwrap();
        drop(r2); // not used: given back
        assert_eq!(l.open(), 1);
        let r3 = l.try_reserve().unwrap();
        assert!(l.try_reserve().is_none());
        drop(s1);
        assert!(
            l.try_reserve().is_some(),
            "a closed connection frees its slot"
        );
        drop(r3);
        assert_eq!(l.open(), 0);
    }

    #[test]
    fn overrides_reject_garbage() {
        assert!(parse_overrides("127.0.0.1").is_err());
        assert!(parse_overrides("127.0.0.1:x").is_err());
        assert_eq!(parse_overrides("").unwrap(), vec![]);
    }
}
