//! `controller_mutation_rate` (KIP-599): how many partitions a user / client id may
//! create (CreateTopics, CreatePartitions) or delete (DeleteTopics) per second.
//!
//! Kafka's semantics: a token bucket per sensor (the entity matched by Kafka's
//! precedence, `entity::QuotaIndex`), refilled at the quota's rate up to a burst of
//! rate × `controller.quota.window.num` × `controller.quota.window.size.seconds`, full
//! at first use. Each topic of a request takes its partitions from the bucket in
//! request order. A topic is taken while the bucket is not below zero, so one large
//! topic may overdraw it; once it is below zero:
//! - strict (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+): the topic is
//!   refused with THROTTLING_QUOTA_EXCEEDED, and the response's throttle_time_ms says
//!   when the bucket is back at zero;
//! - permissive (older versions, whose clients do not know the error): every topic is
//!   taken and the response is held back until the bucket is back at zero.
//!
//! validate_only requests are not counted (as in Kafka). The bucket belongs to the
//! broker that receives the request; in a cluster Kafka counts on the controller.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::entity::{ClientKey, Kind, SensorKey};
use super::manager::QuotaManager;

/// Kafka's `controller.quota.window.num` default.
pub const WINDOW_NUM_DEFAULT: u32 = 11;
/// Kafka's `controller.quota.window.size.seconds` default.
pub const WINDOW_SIZE_SECONDS_DEFAULT: u32 = 1;
/// Most buckets kept; past it, buckets no request holds are dropped.
const BUCKETS_MAX: usize = 100_000;

/// One sensor's tokens (partitions), refilled with time.
pub struct TokenBucket {
    state: Mutex<Option<(f64, Instant)>>,
}

impl TokenBucket {
    fn new() -> TokenBucket {
        TokenBucket {
            state: Mutex::new(None),
        }
    }

    /// Refills to `now` and applies `f` to the tokens; returns the tokens after.
    fn with(&self, now: Instant, rate: f64, burst: f64, f: impl FnOnce(&mut f64)) -> f64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = s.get_or_insert((burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + rate * elapsed).min(burst);
        *last = now;
        f(tokens);
        *tokens
    }
}

/// The buckets of one broker, by sensor.
#[derive(Default)]
pub struct Buckets {
    map: Mutex<HashMap<SensorKey, Arc<TokenBucket>>>,
}

impl Buckets {
    fn get(&self, key: SensorKey) -> Arc<TokenBucket> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= BUCKETS_MAX && !map.contains_key(&key) {
            map.retain(|_, b| Arc::strong_count(b) > 1);
        }
        map.entry(key)
            .or_insert_with(|| Arc::new(TokenBucket::new()))
            .clone()
    }
}

/// One request's view of its client's `controller_mutation_rate`.
pub struct MutationQuota {
    /// The bucket, its rate (partitions/s) and burst; None without a quota.
    bucket: Option<(Arc<TokenBucket>, f64, f64)>,
    strict: bool,
}

/// Why a topic was not taken: THROTTLING_QUOTA_EXCEEDED, retry after this many ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled(pub u64);

pub const THROTTLED_MESSAGE: &str = "The throttling quota has been exceeded.";

impl MutationQuota {
    /// No quota: every topic is taken, nothing is held back.
    pub fn unlimited() -> MutationQuota {
        MutationQuota {
            bucket: None,
            strict: false,
        }
    }

    /// The quota of `who` (principal name, client id) on this broker. `strict`: the
    /// request's version knows THROTTLING_QUOTA_EXCEEDED.
    pub fn new(m: &QuotaManager, who: ClientKey, strict: bool) -> MutationQuota {
        let snapshot = m.store.snapshot();
        let bucket = snapshot
            .index
            .resolve(Kind::Mutation, &who)
            .map(|(key, rate)| {
                let c = &m.config;
                let burst = rate
                    * f64::from(c.mutation_window_num)
                    * f64::from(c.mutation_window_size_seconds);
                (m.buckets.get(key), rate, burst)
            });
        MutationQuota { bucket, strict }
    }

    /// Takes `partitions` for one topic, or (strict, bucket below zero) refuses it.
    pub fn take(&self, partitions: u32) -> Result<(), Throttled> {
        self.take_at(Instant::now(), partitions)
    }

    fn take_at(&self, now: Instant, partitions: u32) -> Result<(), Throttled> {
        let Some((bucket, rate, burst)) = &self.bucket else {
            return Ok(());
        };
        let mut refused = false;
        let strict = self.strict;
        let tokens = bucket.with(now, *rate, *burst, |t| {
            if strict && *t < 0.0 {
                refused = true;
            } else {
                *t -= f64::from(partitions);
            }
        });
        if refused {
            Err(Throttled(wait_ms(tokens, *rate)))
        } else {
            Ok(())
        }
    }

    /// How long until the bucket is back at zero (0: it is not below zero): the
    /// response's throttle_time_ms, and in permissive mode how long it is held back.
    pub fn throttle_ms(&self) -> u64 {
        self.throttle_ms_at(Instant::now())
    }

    fn throttle_ms_at(&self, now: Instant) -> u64 {
        let Some((bucket, rate, burst)) = &self.bucket else {
            return 0;
        };
        wait_ms(bucket.with(now, *rate, *burst, |_| {}), *rate)
    }

    /// Whether the response is held back by `throttle_ms` (older versions).
    pub fn delays_response(&self) -> bool {
        !self.strict
    }

    /// The response's throttle_time_ms; in permissive mode, first waits that long (on
    /// the shard's timer: the connection's later responses wait behind this one, as
    /// Kafka's muted channel makes them).
    pub async fn settle(&self) -> i32 {
        let ms = self.throttle_ms();
        if ms > 0 && self.delays_response() {
            crate::runtime::sleep(std::time::Duration::from_millis(ms)).await;
        }
        i32::try_from(ms).unwrap_or(i32::MAX)
    }
}

fn wait_ms(tokens: f64, rate: f64) -> u64 {
    if tokens >= 0.0 || rate <= 0.0 {
        return 0;
    }
    (-tokens / rate * 1000.0).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn quota(rate: f64, burst: f64, strict: bool) -> MutationQuota {
        MutationQuota {
            bucket: Some((Arc::new(TokenBucket::new()), rate, burst)),
            strict,
        }
    }

    #[test]
    fn strict_takes_until_below_zero_then_refuses_until_refilled() {
        let t0 = Instant::now();
        // 2 partitions/s, burst 22 (Kafka's 11 one-second windows).
        let q = quota(2.0, 22.0, true);
        assert_eq!(q.take_at(t0, 20), Ok(()));
        // 2 left: a topic of 5 is still taken (the bucket may be overdrawn once).
        assert_eq!(q.take_at(t0, 5), Ok(()));
        assert_eq!(q.throttle_ms_at(t0), 1500, "-3 tokens at 2/s");
        assert_eq!(q.take_at(t0, 1), Err(Throttled(1500)));
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(q.throttle_ms_at(later), 0);
        assert_eq!(q.take_at(later, 1), Ok(()));
        // Refill stops at the burst.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!(q.take_at(much_later, 22), Ok(()));
        assert_eq!(
            q.take_at(much_later, 1),
            Ok(()),
            "exactly zero is not below"
        );
        assert_eq!(q.take_at(much_later, 1), Err(Throttled(500)));
    }

    #[test]
    fn permissive_takes_everything_and_says_how_long_to_wait() {
        let t0 = Instant::now();
        let q = quota(1.0, 11.0, false);
        for _ in 0..3 {
            assert_eq!(q.take_at(t0, 10), Ok(()));
        }
        assert_eq!(q.throttle_ms_at(t0), 19_000);
        assert!(q.delays_response());
        let none = MutationQuota::unlimited();
        assert_eq!(none.take_at(t0, 1 << 20), Ok(()));
        assert_eq!(none.throttle_ms_at(t0), 0);
    }
}
