//! The open-loop schedule of a `--rate` run: record i of a connection is due at
//! `i × interval` after the start, whatever happened to earlier records. Latency is
//! measured from that intended time, so a sender that falls behind (a slow broker
//! stalling it) shows up in the latency instead of silently lowering the load — the
//! "coordinated omission" a closed-loop measurement suffers from.

use std::time::Duration;

/// A connection's schedule, in nanoseconds since the run's epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacer {
    pub start_ns: u64,
    pub interval_ns: f64,
    /// Records per batch at most.
    pub batch_records_max: usize,
    /// How long the first record of a batch may wait for more.
    pub linger_ns: u64,
}

impl Pacer {
    pub fn new(
        start_ns: u64,
        records_per_sec: f64,
        batch_records_max: usize,
        linger: Duration,
    ) -> Pacer {
        assert!(records_per_sec > 0.0 && batch_records_max >= 1);
        Pacer {
            start_ns,
            interval_ns: 1e9 / records_per_sec,
            batch_records_max,
            linger_ns: linger.as_nanos() as u64,
        }
    }

    /// When record `i` is due.
    pub fn due_ns(&self, i: u64) -> u64 {
        self.start_ns + (i as f64 * self.interval_ns) as u64
    }

    /// Records due at `now_ns` from `next` on: (count, capped at a batch).
    fn due_count(&self, next: u64, now_ns: u64) -> usize {
        if now_ns < self.due_ns(next) {
            return 0;
        }
        let elapsed = (now_ns - self.start_ns) as f64;
        let last_due = (elapsed / self.interval_ns).floor() as u64;
        ((last_due + 1).saturating_sub(next) as usize).min(self.batch_records_max)
    }

    /// The batch to send at `now_ns` when `next` is the first unsent record: a full batch
    /// as soon as one is due, else whatever is due once the first of it has lingered.
    pub fn batch_at(&self, next: u64, now_ns: u64) -> Option<usize> {
        let due = self.due_count(next, now_ns);
        if due == self.batch_records_max
            || (due > 0 && now_ns >= self.due_ns(next) + self.linger_ns)
        {
            Some(due)
        } else {
            None
        }
    }

    /// When `batch_at` will next have something to send.
    pub fn wake_ns(&self, next: u64) -> u64 {
        let full = self.due_ns(next + self.batch_records_max as u64 - 1);
        full.min(self.due_ns(next) + self.linger_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_fixed_and_batches_fill_or_linger() {
        // 1000 records/s: one every ms; batches of 4; linger 2 ms.
        let p = Pacer::new(10_000, 1000.0, 4, Duration::from_millis(2));
        assert_eq!(p.due_ns(0), 10_000);
        assert_eq!(p.due_ns(3), 3_010_000);
        assert_eq!(p.batch_at(0, 9_999), None);
        // Record 0 is due but has not lingered 2 ms yet.
        assert_eq!(p.batch_at(0, 10_000), None);
        assert_eq!(p.wake_ns(0), 2_010_000);
        // Lingered: records 0, 1, 2 are due.
        assert_eq!(p.batch_at(0, 2_010_000), Some(3));
        // A sender that fell far behind sends full batches, never skips.
        assert_eq!(p.batch_at(3, 100_000_000), Some(4));
        assert_eq!(p.batch_at(7, 100_000_000), Some(4));
        // Exactly full: records 4..7 due at 7.01 ms.
        assert_eq!(p.wake_ns(4), 6_010_000);
        assert_eq!(p.batch_at(4, 7_010_000), Some(4));
    }
}
