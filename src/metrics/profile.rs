//! `/v1/profile`: each stage's count and quantiles (µs) over a window, merged across
//! shards and per shard, as JSON; and the same document read back (`corelog profile`,
//! and later `corelog bench --report`).
//!
//! ```json
//! {"window_seconds": 12.5, "recording": true, "shards": 2,
//!  "stages": [{"api": "produce", "stage": "decode", "count": 10, "p50_us": 3,
//!              "p90_us": 5, "p99_us": 9, "p999_us": 12, "max_us": 12, "mean_us": 3.4}, ...],
//!  "per_shard": [{"shard": 0, "stages": [...]}, ...]}
//! ```
//!
//! Quantiles are HdrHistogram values (within 1%); a stage with count 0 has zeros.

use serde_json::{json, Value};

use super::{Hist, Stage};

#[derive(Debug, Clone, PartialEq)]
pub struct StageSummary {
    pub api: String,
    pub stage: String,
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl StageSummary {
    pub fn of(stage: Stage, h: &Hist) -> StageSummary {
        let (api, name) = stage.labels();
        let count = h.count();
        let q = |p: f64| {
            if count == 0 {
                0
            } else {
                h.h.highest_equivalent(h.h.value_at_quantile(p))
            }
        };
        StageSummary {
            api: api.to_string(),
            stage: name.to_string(),
            count,
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if count == 0 { 0 } else { h.h.max() },
            mean_us: if count == 0 {
                0.0
            } else {
                (h.sum as f64 / count as f64 * 10.0).round() / 10.0
            },
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "api": self.api, "stage": self.stage, "count": self.count,
            "p50_us": self.p50_us, "p90_us": self.p90_us, "p99_us": self.p99_us,
            "p999_us": self.p999_us, "max_us": self.max_us,
            "mean_us": self.mean_us,
        })
    }

    fn from_json(v: &Value) -> Result<StageSummary, String> {
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("stage entry without string {k:?}"))
        };
        let n = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("stage entry without number {k:?}"))
        };
        Ok(StageSummary {
            api: s("api")?,
            stage: s("stage")?,
            count: n("count")?,
            p50_us: n("p50_us")?,
            p90_us: n("p90_us")?,
            p99_us: n("p99_us")?,
            p999_us: n("p999_us")?,
            max_us: n("max_us")?,
            mean_us: v.get("mean_us").and_then(Value::as_f64).unwrap_or(0.0),
        })
    }
}

/// The profile of one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub window_seconds: f64,
    pub recording: bool,
    pub shards: usize,
    /// Merged across shards, in `Stage::ALL` order.
    pub stages: Vec<StageSummary>,
    /// (shard, its stages).
    pub per_shard: Vec<(usize, Vec<StageSummary>)>,
}

impl Profile {
    /// From each shard's window histograms (indexed like `Stage::ALL`).
    pub fn from_windows(
        window_seconds: f64,
        recording: bool,
        shards: usize,
        windows: &[(usize, Vec<Hist>)],
    ) -> Profile {
        let mut merged: Vec<Hist> = Stage::ALL.iter().map(|_| Hist::latency()).collect();
        for (_, hs) in windows {
            for (acc, h) in merged.iter_mut().zip(hs) {
                acc.merge(h);
            }
        }
        let summaries = |hs: &[Hist]| -> Vec<StageSummary> {
            Stage::ALL
                .iter()
                .zip(hs)
                .map(|(s, h)| StageSummary::of(*s, h))
                .collect()
        };
        Profile {
            window_seconds,
            recording,
            shards,
            stages: summaries(&merged),
            per_shard: windows
                .iter()
                .map(|(id, hs)| (*id, summaries(hs)))
                .collect(),
        }
    }

    pub fn to_json(&self) -> Value {
        let list = |ss: &[StageSummary]| -> Vec<Value> { ss.iter().map(|s| s.to_json()).collect() };
        json!({
            "window_seconds": (self.window_seconds * 1000.0).round() / 1000.0,
            "recording": self.recording,
            "shards": self.shards,
            "stages": list(&self.stages),
            "per_shard": self.per_shard.iter()
                .map(|(id, ss)| json!({"shard": id, "stages": list(ss)}))
                .collect::<Vec<_>>(),
        })
    }

    pub fn from_json(v: &Value) -> Result<Profile, String> {
        let stages = |v: &Value| -> Result<Vec<StageSummary>, String> {
            v.get("stages")
                .and_then(Value::as_array)
                .ok_or("no \"stages\" list")?
                .iter()
                .map(StageSummary::from_json)
                .collect()
        };
        let per_shard = v
            .get("per_shard")
            .and_then(Value::as_array)
            .ok_or("no \"per_shard\" list")?
            .iter()
            .map(|s| {
                let id = s
                    .get("shard")
                    .and_then(Value::as_u64)
                    .ok_or("per_shard entry without \"shard\"")?;
                Ok((id as usize, stages(s)?))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Profile {
            window_seconds: v
                .get("window_seconds")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            recording: v.get("recording").and_then(Value::as_bool).unwrap_or(true),
            shards: v.get("shards").and_then(Value::as_u64).unwrap_or(0) as usize,
            stages: stages(v)?,
            per_shard,
        })
    }

    /// The merged stages as a table: stage, count, p50, p99, p99.9, max (µs).
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "STAGE".to_string(),
            "COUNT".into(),
            "P50_US".into(),
            "P99_US".into(),
            "P99.9_US".into(),
            "MAX_US".into(),
        ]];
        for s in &self.stages {
            rows.push([
                format!("{}.{}", s.api, s.stage),
                s.count.to_string(),
                s.p50_us.to_string(),
                s.p99_us.to_string(),
                s.p999_us.to_string(),
                s.max_us.to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        let mut out = format!(
            "window {:.1} s, {} shard(s){}\n",
            self.window_seconds,
            self.shards,
            if self.recording {
                ""
            } else {
                " (recording is off: metrics.enable=false)"
            }
        );
        for r in rows {
            let mut line = format!("{:<w$}", r[0], w = widths[0]);
            for c in 1..6 {
                line.push_str(&format!("  {:>w$}", r[c], w = widths[c]));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> Vec<(usize, Vec<Hist>)> {
        let mut a: Vec<Hist> = Stage::ALL.iter().map(|_| Hist::latency()).collect();
        let mut b = a.clone();
        for v in 1..=100 {
            a[Stage::ProduceDecode as usize].record(v);
        }
        b[Stage::ProduceDecode as usize].record(5_000);
        (vec![(0, a), (1, b)]).into_iter().collect()
    }

    #[test]
    fn merged_and_per_shard_quantiles() {
        let p = Profile::from_windows(2.0, true, 2, &windows());
        let decode = &p.stages[Stage::ProduceDecode as usize];
        assert_eq!(
            (decode.api.as_str(), decode.stage.as_str()),
            ("produce", "decode")
        );
        assert_eq!(decode.count, 101);
        assert_eq!(decode.p50_us, 51);
        assert_eq!(decode.p99_us, 100);
        // The highest value HdrHistogram treats as equal to 5000 (32 µs steps there).
        assert_eq!(decode.max_us, 5_023);
        assert_eq!(p.per_shard[1].1[Stage::ProduceDecode as usize].count, 1);
        assert_eq!(p.stages[Stage::FetchRead as usize].count, 0);
        assert_eq!(p.stages[Stage::FetchRead as usize].max_us, 0);
    }

    #[test]
    fn json_round_trip_and_table() {
        let p = Profile::from_windows(2.0, true, 2, &windows());
        let text = serde_json::to_string(&p.to_json()).unwrap();
        let back = Profile::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back.stages, p.stages);
        assert_eq!(back.per_shard.len(), 2);
        let table = p.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "window 2.0 s, 2 shard(s)");
        assert!(lines[1].starts_with("STAGE"), "{table}");
        assert!(lines[2].starts_with("produce.decode") && lines[2].contains(" 101 "));
        assert_eq!(lines.len(), 2 + Stage::ALL.len());
        assert!(Profile::from_json(&json!({"stages": 3})).is_err());
    }
}
