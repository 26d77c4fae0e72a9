//! Measurements: per-second buckets (records, bytes, a latency HdrHistogram), latency
//! percentiles, the machine's facts and the process's CPU time.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies are recorded in microseconds, 3 significant digits, up to an hour.
const HIST_LOW_US: u64 = 1;
const HIST_HIGH_US: u64 = 3_600_000_000;
const HIST_SIGFIG: u8 = 3;

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(HIST_LOW_US, HIST_HIGH_US, HIST_SIGFIG).expect("valid bounds")
}

/// What happened to records whose (intended) send time, or for `consume` receive time,
/// fell in one second of the run.
pub struct Bucket {
    pub records: u64,
    pub bytes: u64,
    pub requests: u64,
    pub errors: u64,
    /// The run's main latency: delivery (produce), fetch (consume), end to end (e2e).
    pub latency: Histogram<u64>,
    /// Delivery latency of the e2e producers.
    pub delivery: Histogram<u64>,
}

impl Bucket {
    pub fn new() -> Bucket {
        Bucket {
            records: 0,
            bytes: 0,
            requests: 0,
            errors: 0,
            latency: new_hist(),
            delivery: new_hist(),
        }
    }

    pub fn add(&mut self, other: &Bucket) {
        self.records += other.records;
        self.bytes += other.bytes;
        self.requests += other.requests;
        self.errors += other.errors;
        self.latency.add(&other.latency).expect("same bounds");
        self.delivery.add(&other.delivery).expect("same bounds");
    }
}

impl Default for Bucket {
    fn default() -> Bucket {
        Bucket::new()
    }
}

/// Buckets by second since the run's epoch.
pub type Buckets = BTreeMap<u32, Bucket>;

/// Percentiles of one latency histogram, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// delivery | fetch | end_to_end
    pub kind: String,
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub p99_99_ms: f64,
    pub max_ms: f64,
}

pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
];

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn latency(kind: &str, h: &Histogram<u64>) -> Latency {
    let at = |p: f64| {
        if h.is_empty() {
            0.0
        } else {
            ms(h.value_at_percentile(p))
        }
    };
    Latency {
        kind: kind.to_string(),
        count: h.len(),
        mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
        p50_ms: at(50.0),
        p90_ms: at(90.0),
        p99_ms: at(99.0),
        p99_9_ms: at(99.9),
        p99_99_ms: at(99.99),
        max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
    }
}

impl Latency {
    /// (name, ms) in percentile order, max last.
    pub fn rows(&self) -> [(&'static str, f64); 6] {
        [
            ("p50", self.p50_ms),
            ("p90", self.p90_ms),
            ("p99", self.p99_ms),
            ("p99.9", self.p99_9_ms),
            ("p99.99", self.p99_99_ms),
            ("max", self.max_ms),
        ]
    }
}

/// One point of the percentile spectrum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrumPoint {
    pub percentile: f64,
    pub ms: f64,
}

/// The latency at percentiles from 50% to 99.999%, evenly spaced in log(1/(1-p)).
pub fn spectrum(h: &Histogram<u64>) -> Vec<SpectrumPoint> {
    if h.is_empty() {
        return Vec::new();
    }
    const STEPS: u32 = 94; // 0.301 .. 5.0 in steps of 0.05
    (0..=STEPS)
        .map(|i| {
            let x = (std::f64::consts::LOG10_2 + f64::from(i) * 0.05).min(5.0);
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            SpectrumPoint {
                percentile: (p * 1000.0).round() / 1000.0,
                ms: ms(h.value_at_percentile(p)),
            }
        })
        .collect()
}

/// The machine a run ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string());
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model,
        kernel,
    }
}

/// utime + stime of process `pid` ("self" for this one), in seconds.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_render_in_ms_and_never_decrease() {
        let mut h = new_hist();
        for us in 1..=10_000u64 {
            h.record(us).unwrap();
        }
        let l = latency("delivery", &h);
        assert_eq!(l.count, 10_000);
        assert!((l.p50_ms - 5.0).abs() < 0.01, "{l:?}");
        assert!((l.p90_ms - 9.0).abs() < 0.01, "{l:?}");
        assert!((l.p99_ms - 9.9).abs() < 0.01, "{l:?}");
        assert!((l.max_ms - 10.0).abs() < 0.01, "{l:?}");
        let rows = l.rows();
        assert!(rows.windows(2).all(|w| w[0].1 <= w[1].1), "{rows:?}");
        let s = spectrum(&h);
        assert_eq!(s.first().unwrap().percentile, 50.0);
        assert_eq!(s.last().unwrap().percentile, 99.999);
        assert!(s.windows(2).all(|w| w[0].ms <= w[1].ms));
        let empty = latency("fetch", &new_hist());
        assert_eq!((empty.count, empty.max_ms), (0, 0.0));
    }

    #[test]
    fn own_cpu_time_agrees_with_getrusage() {
        fn rusage_s() -> f64 {
            // SAFETY: getrusage only writes the struct it is given.
            let mut u: libc::rusage = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) }, 0);
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            tv(u.ru_utime) + tv(u.ru_stime)
        }
        // Burn some CPU so that a wrong field (or a child's time) cannot pass as ours.
        let start = rusage_s();
        let mut x = 0u64;
        while rusage_s() < start + 0.2 {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
        }
        std::hint::black_box(x);
        let before = rusage_s();
        let ours = cpu_seconds("self").unwrap();
        let after = rusage_s();
        // /proc counts in clock ticks (10 ms); allow two either side.
        assert!(
            before - 0.02 <= ours && ours <= after + 0.02,
            "{before} <= {ours} <= {after}"
        );
        assert_eq!(cpu_seconds("0"), None, "no such process");
    }
}
