//! Leaders this broker's replica fetchers find refusing connections: the fetcher's
//! connection to a leader breaks, it reconnects at once, and the connect is refused
//! (ECONNREFUSED: nothing listens, the process is gone). Until the quorum fences that
//! broker (fast fencing takes 0.1-0.3 s, `cluster::probe`), Metadata answers its
//! partitions with LEADER_NOT_AVAILABLE instead of naming a dead leader: librdkafka
//! then keeps re-asking every `topic.metadata.refresh.fast.interval.ms` (100 ms) and
//! sees the new leader as soon as it is elected, where a Metadata answer naming the
//! dead leader would stop its fast queries until its once-a-second scan.
//!
//! Only refusals count, as for fast fencing: a timeout proves nothing (a paused or
//! partitioned leader), so this is on only with `controller.fast.fencing.enable`. A
//! refusal holds for `REFUSAL_HOLD`; the fetcher retries every 200 ms while it still
//! follows that leader, and an accepted connect clears it at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one refused connect keeps a broker marked: several fetcher retries, so a
/// broker that stays gone stays marked until it is fenced and its partitions move.
pub const REFUSAL_HOLD: Duration = Duration::from_millis(1000);

/// Broker ids and when a connect to each was last refused. Written by the shards'
/// fetchers (rarely: only on a failed connect), read by Metadata; the map is empty in
/// a healthy cluster, so the read is one uncontended lock.
#[derive(Debug, Default)]
pub struct Refusals {
    last_refused: Mutex<HashMap<i32, Instant>>,
}

impl Refusals {
    pub fn note_refused(&self, broker: i32, now: Instant) {
        self.lock().insert(broker, now);
    }

    pub fn note_accepted(&self, broker: i32) {
        let mut map = self.lock();
        if !map.is_empty() {
            map.remove(&broker);
        }
    }

    /// The brokers refused within `REFUSAL_HOLD` before `now`; expired entries go.
    pub fn refusing(&self, now: Instant) -> Vec<i32> {
        let mut map = self.lock();
        if map.is_empty() {
            return Vec::new();
        }
        map.retain(|_, at| now.saturating_duration_since(*at) < REFUSAL_HOLD);
        map.keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Instant>> {
        // A panicking holder cannot leave the map half-changed: take it as it is.
        self.last_refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_holds_until_accepted_or_expired() {
        let r = Refusals::default();
        let t0 = Instant::now();
        assert!(r.refusing(t0).is_empty());
        r.note_refused(2, t0);
        r.note_refused(3, t0);
        assert_eq!(
            {
                let mut v = r.refusing(t0 + Duration::from_millis(10));
                v.sort();
                v
            },
            vec![2, 3]
        );
        r.note_accepted(3);
        assert_eq!(r.refusing(t0 + Duration::from_millis(10)), vec![2]);
        // A later refusal renews the hold.
        r.note_refused(2, t0 + Duration::from_millis(900));
        assert_eq!(r.refusing(t0 + Duration::from_millis(1500)), vec![2]);
        assert!(r.refusing(t0 + Duration::from_millis(1900)).is_empty());
    }
}
