//! A windowed rate shared by every shard, as Kafka's quota sensors measure it: the
//! amounts recorded in the last `window_num` windows of `window_size_ms`, divided by the
//! time they span (at least `window_num - 1` whole windows, so a fresh sensor does not
//! see a huge rate from its first request).
//!
//! Concurrency: lock-free. Each sample is (window number + 1, amount) in two atomics; a
//! recorder that finds its slot holding an older window claims it with a CAS and resets
//! the amount. An amount added by another shard in that instant may be lost; the rate is
//! an estimate either way (Kafka's is per sensor under a lock, per broker too).

use std::sync::atomic::{AtomicU64, Ordering};

struct Sample {
    /// Window number + 1; 0 = never used.
    window: AtomicU64,
    amount: AtomicU64,
}

pub struct Sensor {
    samples: Box<[Sample]>,
    window_size_ms: u64,
}

impl Sensor {
    pub fn new(window_num: u32, window_size_ms: u64) -> Sensor {
        let samples = (0..window_num.max(2))
            .map(|_| Sample {
                window: AtomicU64::new(0),
                amount: AtomicU64::new(0),
            })
            .collect();
        Sensor {
            samples,
            window_size_ms: window_size_ms.max(1),
        }
    }

    /// Adds `amount` at `now_ms` and returns how long the client must wait for the rate
    /// to fall back to `limit_per_s` (0 when within it), as Kafka's
    /// `QuotaUtils.throttleTime`: (rate - limit) / limit × measured span, capped at the
    /// whole measured period.
    pub fn record(&self, now_ms: u64, amount: u64, limit_per_s: f64) -> u64 {
        let window = now_ms / self.window_size_ms;
        let n = self.samples.len() as u64;
        let s = &self.samples[(window % n) as usize];
        let tag = window + 1;
        let seen = s.window.load(Ordering::Acquire);
        if seen != tag
            && s.window
                .compare_exchange(seen, tag, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            s.amount.store(0, Ordering::Release);
        }
        s.amount.fetch_add(amount, Ordering::AcqRel);
        let (total, oldest) = self.live(window);
        let span_ms = self.span_ms(now_ms, oldest);
        let rate = total as f64 * 1000.0 / span_ms as f64;
        if rate <= limit_per_s || limit_per_s <= 0.0 {
            return 0;
        }
        let throttle = (rate - limit_per_s) / limit_per_s * span_ms as f64;
        (throttle as u64).min(n * self.window_size_ms)
    }

    /// Sum of the samples still inside the period ending in `window`, and the oldest of
    /// their window numbers.
    fn live(&self, window: u64) -> (u64, u64) {
        let n = self.samples.len() as u64;
        let first = window.saturating_sub(n - 1);
        let mut total = 0;
        let mut oldest = window;
        for s in self.samples.iter() {
            let tag = s.window.load(Ordering::Acquire);
            if tag == 0 || tag - 1 < first || tag - 1 > window {
                continue;
            }
            total += s.amount.load(Ordering::Acquire);
            oldest = oldest.min(tag - 1);
        }
        (total, oldest)
    }

    /// Kafka's `Rate.windowSize`: from the oldest live window's start to now, but at
    /// least `window_num - 1` whole windows.
    fn span_ms(&self, now_ms: u64, oldest: u64) -> u64 {
        let n = self.samples.len() as u64;
        let mut span = now_ms - oldest * self.window_size_ms;
        let full = span / self.window_size_ms;
        if full < n - 1 {
            span += (n - 1 - full) * self.window_size_ms;
        }
        span.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_rate_is_not_throttled() {
        let s = Sensor::new(11, 1000);
        for sec in 0..30u64 {
            assert_eq!(s.record(sec * 1000, 900, 1000.0), 0, "second {sec}");
        }
    }

    #[test]
    fn over_the_rate_waits_what_brings_it_back() {
        let s = Sensor::new(11, 1000);
        // 20,000 bytes at once against 1,000/s over a 10 s minimum span: rate 2,000/s,
        // so (2000 - 1000) / 1000 × 10 s = 10 s.
        assert_eq!(s.record(0, 20_000, 1000.0), 10_000);
        // Samples older than the period fall out.
        assert_eq!(s.record(12_000, 0, 1000.0), 0);
    }

    #[test]
    fn throttle_is_capped_at_the_period() {
        let s = Sensor::new(3, 1000);
        assert_eq!(s.record(500, 1 << 40, 1.0), 3000);
    }
}
