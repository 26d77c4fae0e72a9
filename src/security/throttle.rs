//! Slows down password guessing: each failed login from an address delays the answer to
//! the next failure from it, doubling from `connection.failed.authentication.delay.ms`
//! up to `FAILURE_DELAY_MAX`. An address with no failure for `FAILURE_MEMORY` is
//! forgotten. Shared by all shards (a guesser's connections land on every shard); a
//! mutex is fine here, logins are not the data path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a failed login's answer is held back.
pub const FAILURE_DELAY_MAX: Duration = Duration::from_secs(5);
/// How long an address's failures are remembered after its last one.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(60);
/// Addresses remembered at most; past it, the oldest are forgotten first.
pub const ADDRESSES_MAX: usize = 10_000;

pub struct FailureThrottle {
    base: Duration,
    seen: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailureThrottle {
    pub fn new(base: Duration) -> FailureThrottle {
        FailureThrottle {
            base,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Notes a failure from `ip` at `now`; returns how long to hold back the answer.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> Duration {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= ADDRESSES_MAX && !seen.contains_key(&ip) {
            seen.retain(|_, (_, last)| now.duration_since(*last) < FAILURE_MEMORY);
            if seen.len() >= ADDRESSES_MAX {
                if let Some(oldest) = seen.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k) {
                    seen.remove(&oldest);
                }
            }
        }
        let entry = seen.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let doublings = (entry.0 - 1).min(16);
        self.base
            .saturating_mul(1u32 << doublings)
            .min(FAILURE_DELAY_MAX.max(self.base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_failure_caps_and_forgets() {
        let t = FailureThrottle::new(Duration::from_millis(100));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let now = Instant::now();
        let delays: Vec<u128> = (0..8).map(|_| t.failed(ip, now).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(t.failed(other, now).as_millis(), 100);
        assert_eq!(t.failed(ip, now + FAILURE_MEMORY).as_millis(), 100);
    }
}
