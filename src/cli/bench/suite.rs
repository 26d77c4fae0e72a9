//! `corelog bench suite`: every row of the performance table (issue 13) that `corelog
//! bench` can drive, as named presets, run one after another against one broker. Each
//! run leaves its own result (`<row>-<n>.json`, the version-1 schema, and an HTML page);
//! the suite adds `suite.json` (per row: the workload, its target, the median of the
//! runs) and `index.html` (that table, linking each run's page). `bench compare` reads
//! two `suite.json` files and compares them row by row.
//!
//! The presets are the commands HARDWARE.md and the issue quote, so a rerun measures
//! the same thing; a preset never changes silently (a new workload gets a new name).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::report::{self, Report, SCHEMA_VERSION};
use super::{Config, Mode};
use crate::cli::topic::TopicError;

/// Records the consume row writes first (1 KiB each: about 1 GB), so most of what it
/// reads comes from the segment files, not from the broker's per-partition cache.
pub const CONSUME_FILL_RECORDS_DEFAULT: u64 = 1_000_000;
/// Measured seconds of each run unless `--seconds` says otherwise.
pub const SUITE_SECONDS_DEFAULT: u64 = 8;
/// Warm-up seconds of each timed run.
pub const SUITE_WARMUP_SECONDS: u64 = 2;

#[derive(clap::Args, Debug, Clone)]
pub struct SuiteArgs {
    /// Broker list, host:port[,host:port...].
    #[arg(short = 'b', long, env = crate::cli::client::BROKERS_ENV, default_value = crate::cli::client::BROKERS_DEFAULT)]
    pub bootstrap: String,
    /// Rows to run (comma-separated names, see --list); default all.
    #[arg(long, value_delimiter = ',')]
    pub rows: Vec<String>,
    /// Print the rows (name, workload, target) and exit.
    #[arg(long)]
    pub list: bool,
    /// Runs of each row; the suite reports their median.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Measured seconds of each timed run.
    #[arg(long, default_value_t = SUITE_SECONDS_DEFAULT)]
    pub seconds: u64,
    /// Records the consume row writes before it reads them back.
    #[arg(long, default_value_t = CONSUME_FILL_RECORDS_DEFAULT)]
    pub consume_fill_records: u64,
    /// Directory for the results (created if missing).
    #[arg(long, default_value = "bench-suite")]
    pub out: PathBuf,
    /// Also report this process's CPU time (the broker's, on the same machine).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// A corelog broker's admin.listener: its stage profile is added to each run's result.
    #[arg(long, value_name = "HOST:PORT")]
    pub profile_admin: Option<String>,
    /// A directory on the broker's log-dir disk: the disk-bound row then measures the
    /// disk's own append bandwidth there (`bench disk --sync end`, no broker) before each
    /// of its runs and after the last, and reports the row's share of it.
    #[arg(long, value_name = "DIR")]
    pub disk_dir: Option<PathBuf>,
    /// Keep each run's topic; by default the suite deletes it once the run is measured,
    /// so that a long suite (the disk-bound row writes ~1 GB/s) does not fill the disk.
    #[arg(long)]
    pub keep_topics: bool,
}

/// The row whose target is a share of the disk's own bandwidth (`--disk-dir`).
pub const DISK_ROW: &str = "disk-bound";

/// One row of the table: a named workload and what issue 13 asks of it.
pub struct Row {
    pub name: &'static str,
    pub workload: &'static str,
    pub target: &'static str,
    /// The bench configuration, given the suite's bootstrap, topic and seconds.
    config: fn(Config) -> Config,
}

fn e2e(c: Config, partitions: i32, acks: &str, rate: f64) -> Config {
    Config {
        mode: Mode::E2e,
        partitions,
        acks: acks.into(),
        rate: Some(rate),
        ..c
    }
}

fn ingest(c: Config, acks: &str) -> Config {
    Config {
        mode: Mode::Produce,
        partitions: 4,
        acks: acks.into(),
        batch_size: 262_144,
        ..c
    }
}

pub const ROWS: [Row; 8] = [
    Row {
        name: "acks-all-5k",
        workload: "acks=all e2e at 5,000 rec/s, 4 partitions",
        target: "p99 <= 1 ms, p99.9 <= 2 ms",
        config: |c| e2e(c, 4, "all", 5_000.0),
    },
    Row {
        name: "acks-all-50k",
        workload: "acks=all e2e at 50,000 rec/s, 2 partitions, one client thread",
        target: "p99 <= 2 ms, p99.9 <= 5 ms, <= 2 broker CPU-s/GB",
        config: |c| Config {
            threads: 1,
            connections: 1,
            ..e2e(c, 2, "all", 50_000.0)
        },
    },
    Row {
        name: "tail-100mb",
        workload: "tail consumer at 100 MB/s paced (e2e acks=1, 4 partitions)",
        target: "<= 0.6 broker CPU-s/GB served",
        config: |c| e2e(c, 4, "1", 100_000.0),
    },
    Row {
        name: "ingest-acks1",
        workload: "closed-loop ingest acks=1, 4 partitions, 256 KiB batches",
        target: "<= 0.35 broker CPU-s/GB",
        config: |c| ingest(c, "1"),
    },
    Row {
        name: "ingest-acks-all",
        workload: "closed-loop ingest acks=all, 4 partitions, 256 KiB batches",
        target: "<= 0.45 broker CPU-s/GB",
        config: |c| ingest(c, "all"),
    },
    Row {
        name: "consume-disk",
        workload: "closed-loop consume from the start of a filled 4-partition topic",
        target: ">= 1.2 GB/s at <= 0.3 broker CPU-s/GB, from disk",
        config: |c| Config {
            mode: Mode::Consume,
            partitions: 4,
            warmup_seconds: 0,
            seconds: None,
            ..c
        },
    },
    Row {
        name: "small-records",
        workload: "closed-loop ingest acks=1 of 100-byte records, 4 partitions",
        target: ">= 1 M records/s per broker core",
        config: |c| Config {
            message_size: 100,
            ..ingest(c, "1")
        },
    },
    Row {
        name: "disk-bound",
        workload:
            "closed-loop ingest acks=all, 8 partitions, 4 connections per thread, 1 MiB batches",
        target: ">= 80% of the disk's fallocated O_DIRECT append bandwidth (measure it beside)",
        config: |c| Config {
            partitions: 8,
            connections: 4 * c.threads,
            batch_size: 1 << 20,
            ..ingest(c, "all")
        },
    },
];

/// Medians over a row's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    /// None when the suite ran without --broker-pid.
    pub broker_cpu_s_per_gb: Option<f64>,
    pub errors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowResult {
    pub name: String,
    pub workload: String,
    pub target: String,
    /// Result files of the runs, relative to the suite's directory.
    pub runs: Vec<String>,
    pub median: Figures,
    /// The disk's own bandwidth measured beside the runs (the disk-bound row, with
    /// --disk-dir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskBeside>,
}

/// The disk's fallocated O_DIRECT append bandwidth, probed between a row's runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskBeside {
    /// Median of the probes.
    pub mb_per_sec: f64,
    /// The row's median MB/s over `mb_per_sec`.
    pub share: f64,
    pub probes: Vec<super::disk::DiskResult>,
}

/// One probe of the disk with the row's shape: as many files as partitions, one
/// append per batch, durable at the end.
fn probe_disk(
    dir: &Path,
    cfg: &Config,
    seconds: u64,
) -> Result<super::disk::DiskResult, TopicError> {
    let args = super::disk::DiskArgs {
        dir: dir.to_owned(),
        files: cfg.partitions.max(1) as usize,
        write_kib: cfg.batch_size.div_ceil(4096) * 4,
        seconds,
        sync: super::disk::Sync::End,
        rate: 0,
        prewritten: false,
        json: false,
    };
    super::disk::measure(&args).map_err(|e| TopicError::Usage(format!("bench disk: {e}")))
}

/// `suite.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    pub version: u32,
    pub kind: String,
    pub bootstrap: String,
    pub started_unix_ms: u64,
    pub rows: Vec<RowResult>,
}

const SUITE_KIND: &str = "suite";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn figures(runs: &[Report]) -> Figures {
    let of = |f: fn(&Report) -> f64| median(runs.iter().map(f).collect());
    Figures {
        records_per_sec: of(|r| r.results.records_per_sec),
        mb_per_sec: of(|r| r.results.mb_per_sec),
        p50_ms: of(|r| r.latency.p50_ms),
        p99_ms: of(|r| r.latency.p99_ms),
        p99_9_ms: of(|r| r.latency.p99_9_ms),
        broker_cpu_s_per_gb: runs
            .iter()
            .all(|r| r.broker_cpu.is_some())
            .then(|| of(|r| r.broker_cpu.as_ref().map_or(0.0, |c| c.seconds_per_gb))),
        errors: runs.iter().map(|r| r.results.errors).sum(),
    }
}

/// The rows `names` asks for, in table order; an unknown name is a usage error.
pub fn select(names: &[String]) -> Result<Vec<&'static Row>, TopicError> {
    if let Some(unknown) = names.iter().find(|n| !ROWS.iter().any(|r| r.name == *n)) {
        let known: Vec<&str> = ROWS.iter().map(|r| r.name).collect();
        return Err(TopicError::Usage(format!(
            "no suite row {unknown:?}; rows: {}",
            known.join(", ")
        )));
    }
    Ok(ROWS
        .iter()
        .filter(|r| names.is_empty() || names.iter().any(|n| n == r.name))
        .collect())
}

pub fn render_list() -> String {
    let mut out = String::new();
    for r in &ROWS {
        out += &format!(
            "{:<16} {}\n{:<16} target: {}\n",
            r.name, r.workload, "", r.target
        );
    }
    out
}

/// The configuration of `row`'s run `n`: a fresh topic per run.
pub fn row_config(row: &Row, args: &SuiteArgs, threads: usize, stamp: u64, n: usize) -> Config {
    let base = Config {
        bootstrap: args.bootstrap.clone(),
        topic: format!("suite-{}-{stamp}-{n}", row.name),
        create: true,
        seconds: Some(args.seconds),
        warmup_seconds: SUITE_WARMUP_SECONDS,
        threads,
        connections: threads,
        ..Config::default()
    };
    (row.config)(base)
}

/// Runs the suite; progress goes to stderr. Returns the summary table and the number
/// of failed or lost requests over all runs.
pub fn run(args: &SuiteArgs) -> Result<(String, u64), TopicError> {
    let rows = select(&args.rows)?;
    if args.repeat == 0 {
        return Err(TopicError::Usage("--repeat must be at least 1".into()));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| io_error(&args.out, e))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stamp = super::unix_ms();
    let mut suite = Suite {
        version: SCHEMA_VERSION,
        kind: SUITE_KIND.into(),
        bootstrap: args.bootstrap.clone(),
        started_unix_ms: stamp,
        rows: Vec::new(),
    };
    for row in rows {
        let mut reports = Vec::new();
        let mut files = Vec::new();
        let disk_dir = args.disk_dir.as_deref().filter(|_| row.name == DISK_ROW);
        let mut probes = Vec::new();
        for n in 0..args.repeat {
            eprintln!("bench suite: {} run {} of {}", row.name, n + 1, args.repeat);
            let cfg = row_config(row, args, threads, stamp, n);
            if cfg.mode == Mode::Consume {
                fill(&cfg, args.consume_fill_records)?;
            }
            if let Some(dir) = disk_dir {
                probes.push(probe_disk(dir, &cfg, args.seconds)?);
            }
            let r = run_one(&cfg, args)?;
            files.push(write_run(args, row, n, &r)?);
            reports.push(r);
            if !args.keep_topics {
                drop_topic(&cfg);
            }
            if let (Some(dir), true) = (disk_dir, n + 1 == args.repeat) {
                // Probes bracket the runs: a shared disk's bandwidth drifts.
                probes.push(probe_disk(dir, &cfg, args.seconds)?);
            }
        }
        let median = figures(&reports);
        let disk = (!probes.is_empty()).then(|| {
            let disk_mb = self::median(probes.iter().map(|p| p.mb_per_sec).collect());
            DiskBeside {
                mb_per_sec: disk_mb,
                share: if disk_mb > 0.0 {
                    median.mb_per_sec / disk_mb
                } else {
                    0.0
                },
                probes,
            }
        });
        suite.rows.push(RowResult {
            name: row.name.into(),
            workload: row.workload.into(),
            target: row.target.into(),
            runs: files,
            median,
            disk,
        });
        // Written after every row, so an interrupted suite keeps what it measured.
        write(&args.out.join("suite.json"), &render_json(&suite))?;
        write(&args.out.join("index.html"), &render_html(&suite))?;
    }
    let errors = suite.rows.iter().map(|r| r.median.errors).sum();
    Ok((render_text(&suite), errors))
}

/// `corelog bench suite`: exit code 0 done, 1 some run saw errors, 2 usage or no broker.
pub fn main(args: &SuiteArgs) -> std::process::ExitCode {
    use std::process::ExitCode;
    if args.list {
        print!("{}", render_list());
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok((text, errors)) => {
            print!("{text}");
            eprintln!("bench suite: results in {}", args.out.display());
            if errors > 0 {
                eprintln!("bench suite: {errors} requests failed or were lost");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corelog bench suite: {e}");
            ExitCode::from(2)
        }
    }
}

/// `bench compare` of two `suite.json` files; `None` when `a` is not one (the caller
/// compares single runs).
pub fn compare_files(a: &Path, b: &Path, json: bool) -> Option<std::process::ExitCode> {
    use std::process::ExitCode;
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let text_a = read(a).ok()?;
    let suite_a = parse_json(&text_a)?;
    let suite_b = read(b).and_then(|t| {
        parse_json(&t).unwrap_or_else(|| Err(format!("{}: not a suite.json", b.display())))
    });
    match (suite_a, suite_b) {
        (Ok(sa), Ok(sb)) => {
            if json {
                println!("{}", render_compare_json(&sa, &sb));
            } else {
                print!("{}", render_compare_text(&sa, &sb));
            }
            Some(ExitCode::SUCCESS)
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("corelog: {e}");
            Some(ExitCode::from(2))
        }
    }
}

/// Writes `records` 1 KiB records into the consume row's topic, acks=1, large batches.
fn fill(cfg: &Config, records: u64) -> Result<(), TopicError> {
    let fill = Config {
        mode: Mode::Produce,
        count: Some(records),
        seconds: None,
        warmup_seconds: 0,
        acks: "1".into(),
        batch_size: 262_144,
        rate: None,
        ..cfg.clone()
    };
    super::run(&fill, None).map(|_| ())
}

/// Deletes a measured run's topic; a failure is only reported (the figures are written).
fn drop_topic(cfg: &Config) {
    let deleted = crate::cli::client::Client::connect(&cfg.bootstrap)
        .map_err(TopicError::from)
        .and_then(|mut client| crate::cli::topic::delete(&mut client, &cfg.topic));
    if let Err(e) = deleted {
        eprintln!("bench suite: topic {} not deleted: {e}", cfg.topic);
    }
}

/// Writes run `n`'s JSON and HTML; returns the JSON's name.
fn write_run(args: &SuiteArgs, row: &Row, n: usize, r: &Report) -> Result<String, TopicError> {
    let file = format!("{}-{n}.json", row.name);
    write(&args.out.join(&file), &report::render_json(r))?;
    write(
        &args.out.join(format!("{}-{n}.html", row.name)),
        &report::render_html(r),
    )?;
    Ok(file)
}

fn run_one(cfg: &Config, args: &SuiteArgs) -> Result<Report, TopicError> {
    if let Some(admin) = &args.profile_admin {
        crate::cli::profile::fetch_profile_with(admin, true)
            .map_err(|e| TopicError::Usage(format!("broker profile at {admin}: {e}")))?;
    }
    let mut r = super::run(cfg, args.broker_pid)?;
    if let Some(admin) = &args.profile_admin {
        match crate::cli::profile::fetch_profile(admin) {
            Ok(p) => r.broker_profile = Some(p.to_json()),
            Err(e) => eprintln!("bench suite: cannot read the broker profile at {admin}: {e}"),
        }
    }
    Ok(r)
}

fn io_error(path: &Path, e: std::io::Error) -> TopicError {
    TopicError::Usage(format!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), TopicError> {
    std::fs::write(path, text).map_err(|e| io_error(path, e))
}

pub fn render_json(s: &Suite) -> String {
    serde_json::to_string_pretty(s).expect("a suite always serializes")
}

/// A `suite.json`; `None` if the text is not one (it may be a single run's result).
pub fn parse_json(text: &str) -> Option<Result<Suite, String>> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if value.get("kind").and_then(|k| k.as_str()) != Some(SUITE_KIND) {
        return None;
    }
    Some(serde_json::from_value(value).map_err(|e| e.to_string()))
}

fn cpu(f: &Figures) -> String {
    f.broker_cpu_s_per_gb
        .map_or_else(|| "-".into(), |c| format!("{c:.2}"))
}

const HEADER: [&str; 7] = [
    "row",
    "records/s",
    "MB/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "CPU-s/GB",
];

fn cells(r: &RowResult) -> [String; 7] {
    let m = &r.median;
    [
        r.name.clone(),
        format!("{:.0}", m.records_per_sec),
        format!("{:.1}", m.mb_per_sec),
        format!("{:.3}", m.p50_ms),
        format!("{:.3}", m.p99_ms),
        format!("{:.3}", m.p99_9_ms),
        cpu(m),
    ]
}

pub fn render_text(s: &Suite) -> String {
    let line = |c: &[String]| {
        format!(
            "{:<16} {:>10} {:>9} {:>8} {:>9} {:>9} {:>9}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        )
    };
    let mut out = line(&HEADER.map(String::from));
    for r in &s.rows {
        out += &line(&cells(r));
    }
    for r in &s.rows {
        if let Some(d) = &r.disk {
            out += &disk_line(&r.name, d);
            out.push('\n');
        }
    }
    out
}

/// What the disk-bound row's target is judged on.
fn disk_line(row: &str, d: &DiskBeside) -> String {
    format!(
        "{row}: {:.0} % of the disk's own append bandwidth measured beside it ({:.1} MB/s, median of {} probes)",
        d.share * 100.0,
        d.mb_per_sec,
        d.probes.len()
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn render_html(s: &Suite) -> String {
    let mut rows = String::new();
    for r in &s.rows {
        let c = cells(r);
        let links: Vec<String> = r
            .runs
            .iter()
            .map(|f| {
                let page = f.trim_end_matches(".json");
                format!("<a href=\"{}.html\">{}</a>", esc(page), esc(page))
            })
            .collect();
        let disk = r.disk.as_ref().map_or_else(String::new, |d| {
            format!("<br><small>{}</small>", esc(&disk_line(&r.name, d)))
        });
        rows += &format!(
            "<tr><td><b>{}</b><br><small>{}</small></td><td>{}{}</td>{}<td>{}</td></tr>\n",
            esc(&c[0]),
            esc(&r.workload),
            esc(&r.target),
            disk,
            c[1..]
                .iter()
                .map(|v| format!("<td class=n>{}</td>", esc(v)))
                .collect::<String>(),
            links.join(" ")
        );
    }
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>corelog bench suite</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}.n{{text-align:right}}</style>\
         </head><body><h1>corelog bench suite</h1><p>Broker {}; medians of each row's runs; \
         CPU is the broker's CPU-seconds per GB moved (with --broker-pid).</p>\
         <table><tr><th>row</th><th>target (issue 13)</th><th>records/s</th><th>MB/s</th>\
         <th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>CPU-s/GB</th><th>runs</th></tr>\n\
         {rows}</table></body></html>\n",
        esc(&s.bootstrap)
    )
}

/// `bench compare` of two suites: each row present in both, its medians and B/A.
pub fn render_compare_text(a: &Suite, b: &Suite) -> String {
    let mut out = format!(
        "{:<16} {:<12} {:>12} {:>12} {:>7}\n",
        "row", "metric", "A", "B", "B/A"
    );
    for (ra, rb) in paired(a, b) {
        for (metric, x, y) in compare_figures(&ra.median, &rb.median) {
            let ratio = (x != 0.0).then(|| y / x);
            out += &format!(
                "{:<16} {:<12} {:>12.3} {:>12.3} {:>7}\n",
                ra.name,
                metric,
                x,
                y,
                ratio.map_or_else(|| "-".into(), |q| format!("{q:.2}"))
            );
        }
    }
    out
}

pub fn render_compare_json(a: &Suite, b: &Suite) -> String {
    let rows: Vec<serde_json::Value> = paired(a, b)
        .flat_map(|(ra, rb)| {
            compare_figures(&ra.median, &rb.median)
                .into_iter()
                .map(|(metric, x, y)| {
                    serde_json::json!({"row": ra.name, "metric": metric, "a": x, "b": y,
                        "ratio": (x != 0.0).then(|| y / x)})
                })
        })
        .collect();
    serde_json::json!({"version": SCHEMA_VERSION, "kind": "suite-compare", "rows": rows})
        .to_string()
}

fn paired<'a>(a: &'a Suite, b: &'a Suite) -> impl Iterator<Item = (&'a RowResult, &'a RowResult)> {
    a.rows.iter().filter_map(|ra| {
        b.rows
            .iter()
            .find(|rb| rb.name == ra.name)
            .map(|rb| (ra, rb))
    })
}

fn compare_figures(a: &Figures, b: &Figures) -> Vec<(&'static str, f64, f64)> {
    let mut out = vec![
        ("records/s", a.records_per_sec, b.records_per_sec),
        ("MB/s", a.mb_per_sec, b.mb_per_sec),
        ("p50 ms", a.p50_ms, b.p50_ms),
        ("p99 ms", a.p99_ms, b.p99_ms),
        ("p99.9 ms", a.p99_9_ms, b.p99_9_ms),
    ];
    if let (Some(x), Some(y)) = (a.broker_cpu_s_per_gb, b.broker_cpu_s_per_gb) {
        out.push(("CPU-s/GB", x, y));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::bench::report::tests::sample;

    fn args() -> SuiteArgs {
        SuiteArgs {
            bootstrap: "127.0.0.1:9".into(),
            rows: vec![],
            list: false,
            repeat: 1,
            seconds: 3,
            consume_fill_records: 10,
            out: PathBuf::from("x"),
            broker_pid: None,
            profile_admin: None,
            disk_dir: None,
            keep_topics: false,
        }
    }

    #[test]
    fn presets_are_the_issue_rows() {
        let a = args();
        let cfg = |name: &str| {
            let row = ROWS.iter().find(|r| r.name == name).unwrap();
            row_config(row, &a, 2, 7, 1)
        };
        let c = cfg("acks-all-5k");
        assert_eq!(
            (c.mode, c.partitions, c.acks.as_str(), c.rate),
            (Mode::E2e, 4, "all", Some(5000.0))
        );
        assert_eq!(
            (c.topic.as_str(), c.seconds, c.create),
            ("suite-acks-all-5k-7-1", Some(3), true)
        );
        let c = cfg("acks-all-50k");
        assert_eq!((c.partitions, c.threads, c.rate), (2, 1, Some(50_000.0)));
        let c = cfg("consume-disk");
        assert_eq!(
            (c.mode, c.seconds, c.warmup_seconds),
            (Mode::Consume, None, 0)
        );
        assert_eq!(cfg("small-records").message_size, 100);
        let c = cfg("disk-bound");
        assert_eq!(
            (c.connections, c.batch_size, c.acks.as_str()),
            (8, 1 << 20, "all")
        );
        for row in &ROWS {
            let c = row_config(row, &a, 2, 7, 0);
            c.validate().unwrap_or_else(|e| panic!("{}: {e}", row.name));
        }
        let names: std::collections::HashSet<_> = ROWS.iter().map(|r| r.name).collect();
        assert_eq!(names.len(), ROWS.len(), "row names are unique");
    }

    #[test]
    fn select_keeps_table_order_and_refuses_unknown_rows() {
        let picked = select(&["small-records".into(), "acks-all-5k".into()]).unwrap();
        let names: Vec<_> = picked.iter().map(|r| r.name).collect();
        assert_eq!(names, ["acks-all-5k", "small-records"]);
        assert_eq!(select(&[]).unwrap().len(), ROWS.len());
        assert!(
            matches!(select(&["nope".into()]), Err(TopicError::Usage(m)) if m.contains("nope"))
        );
    }

    #[test]
    fn medians_json_round_trip_and_compare() {
        let runs = vec![sample(100.0, 900), sample(300.0, 3000), sample(200.0, 2000)];
        let f = figures(&runs);
        assert_eq!(f.records_per_sec, 200.0);
        assert_eq!(f.p99_ms, runs[2].latency.p99_ms);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        let suite = |rate: f64| Suite {
            version: SCHEMA_VERSION,
            kind: SUITE_KIND.into(),
            bootstrap: "b".into(),
            started_unix_ms: 1,
            rows: vec![RowResult {
                name: "acks-all-5k".into(),
                workload: "w <x>".into(),
                target: "t".into(),
                runs: vec!["acks-all-5k-0.json".into()],
                median: figures(&[sample(rate, 1000)]),
                disk: None,
            }],
        };
        let (a, b) = (suite(100.0), suite(150.0));
        let parsed = parse_json(&render_json(&a)).unwrap().unwrap();
        assert_eq!(parsed, a);
        assert!(parse_json(&report::render_json(&sample(1.0, 1))).is_none());
        let text = render_compare_text(&a, &b);
        assert!(
            text.contains("records/s") && text.contains("1.50"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&render_compare_json(&a, &b)).unwrap();
        assert_eq!(json["rows"][0]["ratio"], 1.5);
        let html = render_html(&a);
        assert!(html.contains("w &lt;x&gt;") && html.contains("acks-all-5k-0.html"));
        assert!(render_text(&a).contains("acks-all-5k"));
    }

    #[test]
    fn the_disk_row_reports_its_share_of_the_disk_beside_it() {
        let probe = |mb: f64| crate::cli::bench::disk::DiskResult {
            files: 8,
            write_bytes: 1 << 20,
            sync: crate::cli::bench::disk::Sync::End,
            seconds: 8.0,
            writes: 1,
            fdatasyncs: 8,
            mb_per_sec: mb,
            rate: 0,
            prewritten: false,
            append_us: Default::default(),
        };
        let mut suite = Suite {
            version: SCHEMA_VERSION,
            kind: SUITE_KIND.into(),
            bootstrap: "b".into(),
            started_unix_ms: 1,
            rows: vec![RowResult {
                name: DISK_ROW.into(),
                workload: "w".into(),
                target: "t".into(),
                runs: vec![],
                median: figures(&[sample(1000.0, 1000)]),
                disk: None,
            }],
        };
        // A suite.json written before --disk-dir existed still parses.
        let old = render_json(&suite);
        assert!(!old.contains("\"disk\""));
        assert_eq!(parse_json(&old).unwrap().unwrap(), suite);
        let row_mb = suite.rows[0].median.mb_per_sec;
        suite.rows[0].disk = Some(DiskBeside {
            mb_per_sec: row_mb / 0.8,
            share: 0.8,
            probes: vec![probe(row_mb / 0.8)],
        });
        let text = render_text(&suite);
        assert!(
            text.contains("disk-bound: 80 % of the disk's own"),
            "{text}"
        );
        assert_eq!(parse_json(&render_json(&suite)).unwrap().unwrap(), suite);
        assert!(render_html(&suite).contains("80 % of the disk"));
    }
}
