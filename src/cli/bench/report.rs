//! The result of a run as a stable JSON document (`version` 1), a text table, a
//! self-contained HTML report with SVG charts, and `bench compare` of two results.

use serde::{Deserialize, Serialize};

use super::stats::{Latency, Machine, SpectrumPoint};
use super::Config;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub version: u32,
    pub tool: String,
    pub mode: String,
    pub config: Config,
    pub machine: Machine,
    pub started_unix_ms: u64,
    pub results: Totals,
    pub latency: Latency,
    /// e2e only: the producers' delivery latency beside the end-to-end one.
    pub delivery_latency: Option<Latency>,
    pub spectrum: Vec<SpectrumPoint>,
    pub client_cpu: Cpu,
    /// With `--broker-pid`: that process's CPU time over the same window.
    pub broker_cpu: Option<Cpu>,
    /// With `--profile-admin`: the corelog broker's stage profile over the run, as its
    /// /v1/profile JSON (`metrics::profile::Profile`).
    #[serde(default)]
    pub broker_profile: Option<serde_json::Value>,
    pub series: Vec<Second>,
}

/// Measured window only (warm-up excluded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub records: u64,
    /// Payload bytes (record values) for produce and e2e; record batch bytes for consume.
    pub bytes: u64,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub records_per_sec: f64,
    /// MB = 10^6 bytes.
    pub mb_per_sec: f64,
}

/// CPU time over the whole run (warm-up included), per GB moved in that time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    pub seconds: f64,
    pub cores_busy: f64,
    pub seconds_per_gb: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Second {
    pub second: u32,
    pub warmup: bool,
    pub records: u64,
    pub mb: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn render_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("a report always serializes")
}

pub fn parse_json(text: &str) -> Result<Report, String> {
    let r: Report = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if r.version != SCHEMA_VERSION {
        return Err(format!(
            "result schema version {} (this corelog reads {SCHEMA_VERSION})",
            r.version
        ));
    }
    Ok(r)
}

pub fn render_text(r: &Report) -> String {
    let c = &r.config;
    let t = &r.results;
    let mut out = format!(
        "corelog bench {}: topic {}, {} B records, acks {}, compression {}, {} threads, {}\n",
        r.mode,
        c.topic,
        c.message_size,
        c.acks,
        c.compression,
        c.threads,
        c.rate
            .map_or_else(|| "closed loop".to_string(), |r| format!("{r} records/s"))
    );
    let row = |k: &str, v: String| format!("  {k:<22} {v}\n");
    out += &row("records", t.records.to_string());
    out += &row("seconds", format!("{:.2}", t.seconds));
    out += &row("records/s", format!("{:.1}", t.records_per_sec));
    out += &row("MB/s", format!("{:.2}", t.mb_per_sec));
    out += &row("requests", t.requests.to_string());
    out += &row("errors", t.errors.to_string());
    for l in std::iter::once(&r.latency).chain(r.delivery_latency.as_ref()) {
        if l.count == 0 {
            let why = if c.acks == "0" && l.kind == "delivery" {
                "none (acks=0: nothing is acknowledged)"
            } else {
                "none measured"
            };
            out += &row(&format!("{} latency ms", l.kind), why.to_string());
            continue;
        }
        let cells: Vec<String> = l
            .rows()
            .iter()
            .map(|(n, v)| format!("{n} {v:.3}"))
            .collect();
        out += &row(&format!("{} latency ms", l.kind), cells.join("  "));
    }
    out += &row(
        "client CPU",
        format!(
            "{:.2} s ({:.2} cores), {:.3} s per GB",
            r.client_cpu.seconds, r.client_cpu.cores_busy, r.client_cpu.seconds_per_gb
        ),
    );
    if let Some(b) = &r.broker_cpu {
        out += &row(
            "broker CPU",
            format!(
                "{:.2} s ({:.2} cores), {:.3} s per GB",
                b.seconds, b.cores_busy, b.seconds_per_gb
            ),
        );
    }
    if let Some(table) = profile_table(r) {
        out += "broker latency profile (µs):\n";
        out += &table;
    }
    out
}

/// `bench compare A B`: throughput and latency side by side, B/A ratios.
pub fn render_compare_text(a: &Report, b: &Report) -> String {
    let mut out = format!("{:<14} {:>14} {:>14} {:>8}\n", "metric", "A", "B", "B/A");
    for (name, x, y, digits) in compare_rows(a, b) {
        out += &format!(
            "{name:<14} {:>14} {:>14} {:>8}\n",
            format!("{x:.digits$}"),
            format!("{y:.digits$}"),
            ratio(x, y).map_or_else(|| "-".to_string(), |q| format!("{q:.2}"))
        );
    }
    out
}

pub fn render_compare_json(a: &Report, b: &Report) -> String {
    let rows: Vec<serde_json::Value> = compare_rows(a, b)
        .into_iter()
        .map(|(name, x, y, _)| serde_json::json!({"metric": name, "a": x, "b": y, "ratio": ratio(x, y)}))
        .collect();
    serde_json::json!({"version": SCHEMA_VERSION, "a": a.mode, "b": b.mode, "rows": rows})
        .to_string()
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (a != 0.0).then(|| b / a)
}

fn compare_rows(a: &Report, b: &Report) -> Vec<(String, f64, f64, usize)> {
    let mut rows = vec![
        (
            "records/s".to_string(),
            a.results.records_per_sec,
            b.results.records_per_sec,
            1,
        ),
        (
            "MB/s".to_string(),
            a.results.mb_per_sec,
            b.results.mb_per_sec,
            2,
        ),
    ];
    for ((name, x), (_, y)) in a.latency.rows().into_iter().zip(b.latency.rows()) {
        rows.push((format!("{name} ms"), x, y, 3));
    }
    rows
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 300.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_BOTTOM: f64 = 45.0;
const MARGIN_TOP: f64 = 30.0;
const MARGIN_RIGHT: f64 = 20.0;

struct Series<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart; `x_ticks` are (x, label) and the y axis starts at 0.
fn svg_chart(title: &str, y_label: &str, x_ticks: &[(f64, String)], series: &[Series]) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x0, x1) = xs
        .chain(x_ticks.iter().map(|t| t.0))
        .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let y1 = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let (x0, x1) = if x0 >= x1 {
        (x0 - 1.0, x0 + 1.0)
    } else {
        (x0, x1)
    };
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let px = |x: f64| MARGIN_LEFT + (x - x0) / (x1 - x0) * plot_w;
    let py = |y: f64| MARGIN_TOP + plot_h - y / y1 * plot_h;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\n<text x=\"{}\" y=\"18\" font-size=\"14\" text-anchor=\"middle\">{}</text>\n<rect x=\"{MARGIN_LEFT}\" y=\"{MARGIN_TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#999\"/>\n<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">{}</text>\n",
        WIDTH / 2.0,
        esc(title),
        MARGIN_TOP + plot_h / 2.0,
        MARGIN_TOP + plot_h / 2.0,
        esc(y_label)
    );
    for i in 0..=4 {
        let y = y1 * f64::from(i) / 4.0;
        svg += &format!(
            "<line x1=\"{MARGIN_LEFT}\" x2=\"{}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            MARGIN_LEFT + plot_w,
            MARGIN_LEFT - 4.0,
            py(y) + 4.0,
            short(y),
            py = py(y)
        );
    }
    for (x, label) in x_ticks {
        svg += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            px(*x),
            HEIGHT - MARGIN_BOTTOM + 16.0,
            esc(label)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        svg += &format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>\n<text x=\"{}\" y=\"{}\" fill=\"{}\">{}</text>\n",
            s.color,
            pts.join(" "),
            MARGIN_LEFT + 10.0 + 110.0 * i as f64,
            HEIGHT - 8.0,
            s.color,
            esc(s.name)
        );
    }
    svg + "</svg>\n"
}

fn short(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// One HTML file, no scripts, no network: config table, totals, and three SVG charts.
pub fn render_html(r: &Report) -> String {
    let nines = |p: f64| -(1.0 - p / 100.0).log10();
    let spectrum = Series {
        name: &r.latency.kind,
        color: "#1f77b4",
        points: r
            .spectrum
            .iter()
            .map(|s| (nines(s.percentile), s.ms))
            .collect(),
    };
    let ticks: Vec<(f64, String)> = ["50%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
        .map(|(i, l)| (if i == 0 { nines(50.0) } else { i as f64 }, l.to_string()))
        .collect();
    let secs: Vec<(f64, String)> = r
        .series
        .iter()
        .step_by((r.series.len() / 10).max(1))
        .map(|s| (f64::from(s.second), format!("{}s", s.second)))
        .collect();
    let over_time = |f: fn(&Second) -> f64| -> Vec<(f64, f64)> {
        r.series
            .iter()
            .map(|s| (f64::from(s.second), f(s)))
            .collect()
    };
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>corelog bench {}</title>\n<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}</style></head><body>\n<h1>corelog bench {}</h1>\n<pre>{}</pre>\n<h2>Configuration</h2>\n<table>\n",
        esc(&r.mode),
        esc(&r.mode),
        esc(&render_text(r))
    );
    let config = serde_json::to_value(&r.config).expect("config serializes");
    let machine = serde_json::to_value(&r.machine).expect("machine serializes");
    for (k, v) in config
        .as_object()
        .into_iter()
        .chain(machine.as_object())
        .flatten()
    {
        html += &format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            esc(k),
            esc(&v.to_string())
        );
    }
    html += "</table>\n<h2>Latency percentile spectrum</h2>\n";
    html += &svg_chart(
        &format!("{} latency by percentile (log scale)", r.latency.kind),
        "ms",
        &ticks,
        &[spectrum],
    );
    html += "<h2>Throughput over time</h2>\n";
    html += &svg_chart(
        "MB/s per second (warm-up included)",
        "MB/s",
        &secs,
        &[Series {
            name: "MB/s",
            color: "#2ca02c",
            points: over_time(|s| s.mb),
        }],
    );
    html += "<h2>Latency over time</h2>\n";
    html += &svg_chart(
        "latency per second",
        "ms",
        &secs,
        &[
            Series {
                name: "p50",
                color: "#1f77b4",
                points: over_time(|s| s.p50_ms),
            },
            Series {
                name: "p99",
                color: "#d62728",
                points: over_time(|s| s.p99_ms),
            },
            Series {
                name: "max",
                color: "#999999",
                points: over_time(|s| s.max_ms),
            },
        ],
    );
    if let Some(table) = profile_table(r) {
        html += "<h2>Broker latency profile (corelog stages, µs)</h2>\n<pre>";
        html += &esc(&table);
        html += "</pre>\n";
    }
    html + "</body></html>\n"
}

/// The broker's stage profile as a table, when the report carries one.
fn profile_table(r: &Report) -> Option<String> {
    let v = r.broker_profile.as_ref()?;
    crate::metrics::profile::Profile::from_json(v)
        .ok()
        .map(|p| p.table())
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::stats::{latency, new_hist, spectrum};
    use super::*;

    pub fn sample(rate: f64, p99_us: u64) -> Report {
        let mut h = new_hist();
        for us in [100, 200, 300, p99_us] {
            h.record(us).unwrap();
        }
        Report {
            version: SCHEMA_VERSION,
            tool: "corelog bench".into(),
            mode: "produce".into(),
            config: Config::default(),
            machine: super::super::stats::machine(),
            started_unix_ms: 1,
            results: Totals {
                records: 10,
                bytes: 10_000,
                requests: 2,
                errors: 0,
                seconds: 1.0,
                records_per_sec: rate,
                mb_per_sec: rate / 1000.0,
            },
            latency: latency("delivery", &h),
            delivery_latency: None,
            spectrum: spectrum(&h),
            client_cpu: Cpu {
                seconds: 0.5,
                cores_busy: 0.5,
                seconds_per_gb: 50.0,
            },
            broker_cpu: None,
            broker_profile: None,
            series: vec![Second {
                second: 0,
                warmup: false,
                records: 10,
                mb: 0.01,
                p50_ms: 0.2,
                p99_ms: 0.3,
                max_ms: 0.4,
            }],
        }
    }

    #[test]
    fn json_round_trips_with_the_schema_keys() {
        let r = sample(1000.0, 400);
        let text = render_json(&r);
        assert_eq!(parse_json(&text).unwrap(), r);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "version",
            "tool",
            "mode",
            "config",
            "machine",
            "results",
            "latency",
            "spectrum",
            "client_cpu",
            "series",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        let mut bumped = v.clone();
        bumped["version"] = 2.into();
        assert!(parse_json(&bumped.to_string())
            .unwrap_err()
            .contains("version 2"));
    }

    #[test]
    fn compare_gives_ratios_b_over_a() {
        let a = sample(1000.0, 400);
        let b = sample(2500.0, 800);
        let text = render_compare_text(&a, &b);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "metric                      A              B      B/A"
        );
        assert_eq!(
            lines[1],
            "records/s              1000.0         2500.0     2.50"
        );
        assert_eq!(
            lines[2],
            "MB/s                     1.00           2.50     2.50"
        );
        assert_eq!(
            lines[8],
            "max ms                  0.400          0.800     2.00"
        );
        let mut zero = a.clone();
        zero.results.records_per_sec = 0.0;
        assert!(render_compare_text(&zero, &b)
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("       -"));
    }

    #[test]
    fn html_is_self_contained_with_three_charts() {
        let html = render_html(&sample(1000.0, 400));
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(html.contains("99.999%"));
        assert!(!html.contains("<script") && !html.contains("https://"));
    }
}
