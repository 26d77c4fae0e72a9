//! `corelog bench produce|consume|e2e|compare`: load against any Kafka-compatible broker
//! over the wire protocol, built like the broker so the tool is not the bottleneck:
//! worker threads pinned one per core (`worker.rs`), each owning its connections and
//! pipelining Produce requests on them; payloads and request frames built once before
//! the clock starts and patched per send (`payload.rs`); latencies in HdrHistograms
//! (`stats.rs`); `--rate` runs on a fixed schedule measured from the intended send time
//! (`pacing.rs`); results as text, JSON, HTML (`report.rs`); the issue-13 table's rows
//! as presets run in one go (`suite.rs`); the disk's own append bandwidth beside them
//! (`disk.rs`).

pub mod disk;
pub mod pacing;
pub mod payload;
pub mod report;
pub mod stats;
pub mod suite;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::client::Cluster;
use super::offsets::{list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use super::records::parse_compression;
use super::topic::{self, leaders, TopicError};
use payload::{PayloadKind, Pool, Template, STAMP_BYTES};
use report::{Cpu, Report, Second, Totals, SCHEMA_VERSION};
use stats::Buckets;
use worker::{FetcherSpec, Msg, ProducerSpec, Shared, Worker, DRAIN_NS};

pub const NS_PER_SEC: u64 = 1_000_000_000;
/// A run bounded by --count alone still ends after this long.
pub const COUNT_SECONDS_MAX: u64 = 300;
/// The run length when neither --seconds nor --count is given.
pub const SECONDS_DEFAULT: u64 = 10;
/// The watchdog's allowance past the run's planned end and drain.
const WATCHDOG_GRACE: Duration = Duration::from_secs(10);
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// Fetch long-poll in consume and e2e (librdkafka's fetch.wait.max.ms default).
const FETCH_WAIT_MS: i32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Produce,
    Consume,
    E2e,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Produce => "produce",
            Mode::Consume => "consume",
            Mode::E2e => "e2e",
        }
    }
}

/// Everything a run was asked to do; written into the JSON result as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub mode: Mode,
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub create: bool,
    pub seconds: Option<u64>,
    pub count: Option<u64>,
    pub warmup_seconds: u64,
    pub threads: usize,
    /// Connections per broker (produce); fetch connections are capped at one per partition.
    pub connections: usize,
    pub max_in_flight: usize,
    pub message_size: usize,
    pub batch_size: usize,
    pub linger_ms: u64,
    /// "0", "1" or "all".
    pub acks: String,
    pub compression: String,
    pub payload: PayloadKind,
    /// Records per second in total; None: closed loop (as fast as acks come back).
    pub rate: Option<f64>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mode: Mode::Produce,
            bootstrap: "localhost:9092".into(),
            topic: "corelog-bench".into(),
            partitions: 1,
            create: false,
            seconds: None,
            count: None,
            warmup_seconds: 1,
            threads: 1,
            connections: 1,
            max_in_flight: 5,
            message_size: 1024,
            batch_size: 65536,
            linger_ms: 1,
            acks: "all".into(),
            compression: "none".into(),
            payload: PayloadKind::Random,
            rate: None,
        }
    }
}

impl Config {
    fn acks_code(&self) -> i16 {
        match self.acks.as_str() {
            "0" => 0,
            "1" => 1,
            _ => -1,
        }
    }

    /// Records per batch: as many whole records as fit in --batch-size, at least one.
    pub fn batch_records(&self) -> usize {
        (self.batch_size / (self.message_size + RECORD_OVERHEAD_BYTES)).max(1)
    }

    fn validate(&self) -> Result<(), TopicError> {
        let usage = |m: String| Err(TopicError::Usage(m));
        if self.mode == Mode::E2e && self.message_size < STAMP_BYTES {
            return usage(format!(
                "e2e stamps each record with {STAMP_BYTES} bytes: --message-size must be at least that"
            ));
        }
        if self.threads == 0 || self.connections == 0 || self.max_in_flight == 0 {
            return usage("--threads, --connections and --max-in-flight must be at least 1".into());
        }
        if self.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
            return usage("--rate must be above 0 records/s".into());
        }
        if self.mode == Mode::Consume && self.rate.is_some() {
            return usage("--rate paces producers; consume reads as fast as it can".into());
        }
        Ok(())
    }
}

/// Per-record bytes of a v2 record besides its value (length, attributes, deltas, key
/// and value lengths, header count), for sizing batches.
const RECORD_OVERHEAD_BYTES: usize = 10;

/// One connection's broker and partitions.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnPlan {
    pub broker: i32,
    pub partitions: Vec<i32>,
}

/// `per_broker` connections to each leader, its partitions dealt out round robin. With
/// `share` (producers) there are always `per_broker` connections, sharing partitions
/// when there are fewer; without it (fetchers, which must not read a partition twice)
/// at most one per partition.
pub fn plan_conns(leader_of: &BTreeMap<i32, i32>, per_broker: usize, share: bool) -> Vec<ConnPlan> {
    let mut by_broker: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for (p, b) in leader_of {
        by_broker.entry(*b).or_default().push(*p);
    }
    let mut out = Vec::new();
    for (broker, parts) in by_broker {
        let n = if share {
            per_broker
        } else {
            per_broker.min(parts.len())
        };
        for j in 0..n {
            let mut mine: Vec<i32> = parts.iter().skip(j).step_by(n).copied().collect();
            if mine.is_empty() {
                mine.push(parts[j % parts.len()]);
            }
            out.push(ConnPlan {
                broker,
                partitions: mine,
            });
        }
    }
    out
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs a produce, consume or e2e benchmark and returns its report. Progress goes to
/// stderr once a second; a watchdog ends the process (exit 3) if the run overruns.
pub fn run(cfg: &Config, broker_pid: Option<u32>) -> Result<Report, TopicError> {
    cfg.validate()?;
    let mut cluster = Cluster::connect(&cfg.bootstrap)?;
    if cfg.create {
        match topic::create(cluster.any(), &cfg.topic, cfg.partitions, 1, &[]) {
            Ok(()) => {}
            Err(TopicError::Broker { code, .. }) if code == TOPIC_ALREADY_EXISTS => {}
            Err(e) => return Err(e),
        }
    }
    let leader_of = leaders(&mut cluster, &cfg.topic, false)?;
    let addr = |cluster: &Cluster, node: i32| {
        cluster.address(node).map(str::to_string).ok_or_else(|| {
            TopicError::Usage(format!(
                "leader {node} is not among the brokers Metadata listed"
            ))
        })
    };
    let (produce_plan, fetch_plan) = match cfg.mode {
        Mode::Produce => (plan_conns(&leader_of, cfg.connections, true), vec![]),
        Mode::Consume => (vec![], plan_conns(&leader_of, cfg.connections, false)),
        Mode::E2e => (
            plan_conns(&leader_of, cfg.connections, true),
            plan_conns(&leader_of, cfg.connections, false),
        ),
    };
    let all: Vec<(i32, i64)> = leader_of.keys().map(|p| (*p, 0)).collect();
    let at = |ts: i64, cluster: &mut Cluster| {
        let q: Vec<(i32, i64)> = all.iter().map(|(p, _)| (*p, ts)).collect();
        list_offsets(cluster, &cfg.topic, &leader_of, &q)
    };
    let (starts, ends) = match cfg.mode {
        Mode::Produce => (BTreeMap::new(), None),
        Mode::Consume => (
            at(EARLIEST_TIMESTAMP, &mut cluster)?,
            Some(at(LATEST_TIMESTAMP, &mut cluster)?),
        ),
        Mode::E2e => (at(LATEST_TIMESTAMP, &mut cluster)?, None),
    };
    let threads = cfg.threads;
    let pool = Arc::new(Pool::new(cfg.payload, cfg.message_size, unix_ms()));
    let compression = parse_compression(&cfg.compression)
        .ok_or_else(|| TopicError::Usage(format!("unknown codec {}", cfg.compression)))?;
    let mut producers: Vec<Vec<ProducerSpec>> = (0..threads).map(|_| Vec::new()).collect();
    let conn_rate = cfg.rate.map(|r| r / produce_plan.len().max(1) as f64);
    let records = cfg.batch_records();
    for (g, c) in produce_plan.iter().enumerate() {
        let templates = c
            .partitions
            .iter()
            .enumerate()
            .map(|(k, p)| {
                Template::new(
                    &cfg.topic,
                    *p,
                    cfg.acks_code(),
                    compression,
                    &pool,
                    (g * 7 + k) * records,
                    records,
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map_err(|e| TopicError::Usage(format!("building batches: {e}")))?;
        producers[g % threads].push(ProducerSpec {
            addr: addr(&cluster, c.broker)?,
            templates,
            pacer_rate: conn_rate,
            linger: Duration::from_millis(cfg.linger_ms),
        });
    }
    let mut fetchers: Vec<Vec<FetcherSpec>> = (0..threads).map(|_| Vec::new()).collect();
    for (g, c) in fetch_plan.iter().enumerate() {
        let pick = |m: &BTreeMap<i32, i64>| -> BTreeMap<i32, i64> {
            c.partitions
                .iter()
                .map(|p| (*p, m.get(p).copied().unwrap_or(0)))
                .collect()
        };
        fetchers[g % threads].push(FetcherSpec {
            addr: addr(&cluster, c.broker)?,
            positions: pick(&starts),
            ends: ends.as_ref().map(pick),
        });
    }
    let seconds = match (cfg.seconds, cfg.count) {
        (Some(s), _) => s,
        (None, Some(_)) => COUNT_SECONDS_MAX,
        (None, None) => SECONDS_DEFAULT,
    };
    let shared = Arc::new(Shared {
        mode: cfg.mode,
        topic: cfg.topic.clone(),
        run_id: pool
            .value(0)
            .iter()
            .fold(unix_ms(), |h, b| h.rotate_left(5) ^ u64::from(*b)),
        epoch: OnceLock::new(),
        start: Barrier::new(threads + 1),
        stop: AtomicBool::new(false),
        count_left: cfg.count.map(|c| AtomicI64::new(c as i64)),
        measure_start_ns: cfg.warmup_seconds * NS_PER_SEC,
        acked: AtomicU64::new(0),
        received: AtomicU64::new(0),
        producing: AtomicUsize::new(producers.iter().filter(|p| !p.is_empty()).count()),
        acks: cfg.acks_code(),
        max_in_flight: cfg.max_in_flight,
        fetch_wait_ms: FETCH_WAIT_MS,
        message_size: cfg.message_size,
    });
    let watchdog = Duration::from_secs(cfg.warmup_seconds + seconds)
        + Duration::from_nanos(DRAIN_NS)
        + WATCHDOG_GRACE;
    // The watchdog ends with this run: dropping `_run_alive` wakes it, so a later run in
    // the same process (`bench suite`) is not ended by an earlier run's deadline.
    let (_run_alive, run_ended) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if run_ended.recv_timeout(watchdog) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!(
                "corelog bench: watchdog: the run did not end within {} s; giving up",
                watchdog.as_secs()
            );
            std::process::exit(3);
        }
    });
    let (tx, rx) = mpsc::channel();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut handles = Vec::new();
    for (i, (p, f)) in producers.into_iter().zip(fetchers).enumerate() {
        let (shared, pool, tx) = (Arc::clone(&shared), Arc::clone(&pool), tx.clone());
        let core = (!cores.is_empty()).then(|| cores[i % cores.len()]);
        handles.push(
            std::thread::Builder::new()
                .name(format!("bench-{i}"))
                .spawn(move || {
                    if let Some(c) = core {
                        core_affinity::set_for_current(c);
                    }
                    let w = Worker::start(Arc::clone(&shared), pool, p, f, tx.clone());
                    shared.start.wait();
                    shared.start.wait();
                    let result = w.and_then(Worker::run);
                    let _ = tx.send(Msg::Done(result));
                })
                .map_err(|e| TopicError::Usage(format!("cannot start a worker thread: {e}")))?,
        );
    }
    drop(tx);
    shared.start.wait();
    let cpu0 = stats::cpu_seconds("self");
    let broker_pid = broker_pid.map(|p| p.to_string());
    let broker0 = broker_pid.as_deref().and_then(stats::cpu_seconds);
    let started_unix_ms = unix_ms();
    let epoch = Instant::now();
    shared.epoch.set(epoch).expect("set once");
    shared.start.wait();
    let collected = collect(cfg, &shared, rx, epoch, seconds, threads);
    for h in handles {
        let _ = h.join();
    }
    let (buckets, error, ended_early, wall) = collected;
    if let Some(e) = error {
        return Err(TopicError::Usage(format!("bench: {e}")));
    }
    let cpu = |before: Option<f64>, pid: &str, bytes: u64| {
        let used = stats::cpu_seconds(pid)? - before?;
        Some(Cpu {
            seconds: used,
            cores_busy: used / wall.as_secs_f64().max(1e-9),
            seconds_per_gb: used / (bytes as f64 / 1e9).max(1e-12),
        })
    };
    let all_bytes: u64 = buckets.values().map(|b| b.bytes).sum();
    let client_cpu = cpu(cpu0, "self", all_bytes).unwrap_or(Cpu {
        seconds: 0.0,
        cores_busy: 0.0,
        seconds_per_gb: 0.0,
    });
    let broker_cpu = broker_pid
        .as_deref()
        .and_then(|p| cpu(broker0, p, all_bytes));
    let run = RunEnd {
        seconds,
        ended_early,
        wall,
    };
    Ok(build_report(
        cfg,
        &buckets,
        &run,
        started_unix_ms,
        client_cpu,
        broker_cpu,
    ))
}

/// The main thread during a run: merges the workers' buckets, prints progress, sets
/// the stop flag at the deadline. Returns the buckets, the first worker error, whether
/// the run ended before its deadline, and the wall time.
fn collect(
    cfg: &Config,
    shared: &Shared,
    rx: mpsc::Receiver<Msg>,
    epoch: Instant,
    seconds: u64,
    threads: usize,
) -> (Buckets, Option<String>, bool, Duration) {
    let deadline = Duration::from_secs(cfg.warmup_seconds + seconds);
    let mut buckets = Buckets::new();
    let mut done = 0;
    let mut error = None;
    let mut printed = 0u32;
    let mut ended_early = true;
    while done < threads {
        let elapsed = epoch.elapsed();
        if elapsed >= deadline && !shared.stop.swap(true, Ordering::Relaxed) {
            ended_early = false;
        }
        // Print second s once s + 1.2 s have passed: most of its acks are in by then.
        if elapsed.as_millis() as u64 >= u64::from(printed + 1) * 1000 + 200 {
            progress(cfg, printed, buckets.get(&printed));
            printed += 1;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Msg::Buckets(b)) => {
                for (s, bucket) in b {
                    buckets.entry(s).or_default().add(&bucket);
                }
            }
            Ok(Msg::Done(r)) => {
                done += 1;
                if let (Err(e), None) = (r, &error) {
                    error = Some(e);
                    shared.stop.store(true, Ordering::Relaxed);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    (buckets, error, ended_early, epoch.elapsed())
}

fn progress(cfg: &Config, second: u32, b: Option<&stats::Bucket>) {
    let warm = if u64::from(second) < cfg.warmup_seconds {
        " (warm-up)"
    } else {
        ""
    };
    let (records, mb, p99) = b.map_or((0, 0.0, 0.0), |b| {
        let h = if cfg.mode == Mode::E2e || !b.latency.is_empty() {
            &b.latency
        } else {
            &b.delivery
        };
        let p99 = if h.is_empty() {
            0.0
        } else {
            h.value_at_percentile(99.0) as f64 / 1000.0
        };
        (b.records, b.bytes as f64 / 1e6, p99)
    });
    eprintln!(
        "bench {} {:>4}s: {records:>10} records/s {mb:>9.2} MB/s  p99 {p99:.3} ms{warm}",
        cfg.mode.name(),
        second
    );
}

/// How a run ended: its planned measured seconds, whether it ended before its deadline
/// (--count, or consume caught up), and the wall time from the start to the last worker.
#[derive(Clone, Copy)]
struct RunEnd {
    seconds: u64,
    ended_early: bool,
    wall: Duration,
}

fn build_report(
    cfg: &Config,
    buckets: &Buckets,
    run: &RunEnd,
    started_unix_ms: u64,
    client_cpu: Cpu,
    broker_cpu: Option<Cpu>,
) -> Report {
    let RunEnd {
        seconds,
        ended_early,
        wall,
    } = *run;
    let warm = cfg.warmup_seconds as u32;
    // A run that went to its deadline measures [warm-up, warm-up + seconds); records
    // due after the deadline (the stop flag is seen within a poll interval) are left out.
    let end = if ended_early {
        u32::MAX
    } else {
        warm + seconds as u32
    };
    let mut total = stats::Bucket::new();
    for (_, b) in buckets.range(warm..end) {
        total.add(b);
    }
    let last = buckets.keys().next_back().copied().unwrap_or(0);
    let span = if ended_early {
        // Ended by --count or caught up: until every worker had finished (its last ack or
        // fetch, plus at most one poll interval).
        (wall.as_secs_f64() - cfg.warmup_seconds as f64).max(1e-3)
    } else {
        seconds as f64
    };
    let kind = match cfg.mode {
        Mode::Produce => "delivery",
        Mode::Consume => "fetch",
        Mode::E2e => "end_to_end",
    };
    let series = (0..=last)
        .map(|s| {
            let b = buckets.get(&s);
            let q = |p: f64| {
                b.filter(|b| !b.latency.is_empty())
                    .map_or(0.0, |b| b.latency.value_at_percentile(p) as f64 / 1000.0)
            };
            Second {
                second: s,
                warmup: s < warm,
                records: b.map_or(0, |b| b.records),
                mb: b.map_or(0.0, |b| b.bytes as f64 / 1e6),
                p50_ms: q(50.0),
                p99_ms: q(99.0),
                max_ms: q(100.0),
            }
        })
        .collect();
    Report {
        version: SCHEMA_VERSION,
        tool: format!("corelog bench {}", env!("CARGO_PKG_VERSION")),
        mode: cfg.mode.name().to_string(),
        config: cfg.clone(),
        machine: stats::machine(),
        started_unix_ms,
        results: Totals {
            records: total.records,
            bytes: total.bytes,
            requests: total.requests,
            errors: total.errors,
            seconds: span,
            records_per_sec: total.records as f64 / span,
            mb_per_sec: total.bytes as f64 / 1e6 / span,
        },
        latency: stats::latency(kind, &total.latency),
        delivery_latency: (cfg.mode == Mode::E2e)
            .then(|| stats::latency("delivery", &total.delivery)),
        spectrum: stats::spectrum(&total.latency),
        client_cpu,
        broker_cpu,
        broker_profile: None,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_deal_partitions_per_leader() {
        let leaders: BTreeMap<i32, i32> = [(0, 1), (1, 2), (2, 1), (3, 1)].into();
        let p = plan_conns(&leaders, 2, true);
        assert_eq!(
            p,
            vec![
                ConnPlan {
                    broker: 1,
                    partitions: vec![0, 3]
                },
                ConnPlan {
                    broker: 1,
                    partitions: vec![2]
                },
                ConnPlan {
                    broker: 2,
                    partitions: vec![1]
                },
                ConnPlan {
                    broker: 2,
                    partitions: vec![1]
                },
            ]
        );
        // Fetchers never read a partition twice.
        let f = plan_conns(&leaders, 2, false);
        assert_eq!(f.len(), 3);
        let mut parts: Vec<i32> = f.iter().flat_map(|c| c.partitions.clone()).collect();
        parts.sort();
        assert_eq!(parts, vec![0, 1, 2, 3]);
    }

    #[test]
    fn batch_records_fit_the_batch_size() {
        let c = Config {
            message_size: 1000,
            batch_size: 16384,
            ..Config::default()
        };
        assert_eq!(c.batch_records(), 16);
        let big = Config {
            message_size: 100_000,
            ..c
        };
        assert_eq!(big.batch_records(), 1);
    }
}
