//! Live figures for the cluster page's charts, from a corelog broker's admin API
//! (`GET /metrics`, Prometheus text): cumulative counters summed over shards and labels.
//! The page samples them every few seconds and charts the differences (throughput,
//! request rate, mean Produce latency); a Kafka broker has no such endpoint, so the
//! charts appear only when the console is given `--admin`.

use serde_json::{json, Value};

use super::{ApiError, ApiResult};
use crate::cli::profile::http_get;

/// The counters the charts use, summed over every sample of the family.
const COUNTERS: [(&str, &str); 5] = [
    ("requests", "corelog_requests_total"),
    ("received_bytes", "corelog_network_received_bytes_total"),
    ("sent_bytes", "corelog_network_sent_bytes_total"),
    ("appended_bytes", "corelog_appended_bytes_total"),
    ("fetched_bytes", "corelog_fetched_bytes_total"),
];

pub fn sample(admin: Option<&str>) -> ApiResult {
    let admin = admin.ok_or_else(|| {
        ApiError::not_found(
            "no live figures: start the console with --admin HOST:PORT (a corelog broker's admin.listener)",
        )
    })?;
    let body = http_get(admin, "/metrics").map_err(|e| ApiError {
        status: 502,
        message: format!("cannot read {admin}/metrics: {e}"),
    })?;
    Ok(summarize(&String::from_utf8_lossy(&body)))
}

/// Sums of the chart counters, and of the Produce and Fetch `total` stage histograms'
/// `_sum` (seconds) and `_count`.
fn summarize(text: &str) -> Value {
    let mut out = serde_json::Map::new();
    for (key, family) in COUNTERS {
        out.insert(key.to_string(), json!(sum(text, family, &[])));
    }
    for api in ["produce", "fetch"] {
        let labels = [("api", api), ("stage", "total")];
        let s = sum(text, "corelog_stage_duration_seconds_sum", &labels);
        let n = sum(text, "corelog_stage_duration_seconds_count", &labels);
        out.insert(format!("{api}_latency_seconds_sum"), json!(s));
        out.insert(format!("{api}_latency_count"), json!(n));
    }
    Value::Object(out)
}

/// The sum of `name`'s samples whose labels include every `want` pair.
fn sum(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            if metric != name {
                return None;
            }
            let all = want
                .iter()
                .all(|(k, v)| labels.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_over_shards_and_labels() {
        let text = "# HELP corelog_requests_total x\n\
            corelog_requests_total{shard=\"0\",api=\"Produce\"} 3\n\
            corelog_requests_total{shard=\"1\",api=\"Fetch\"} 4\n\
            corelog_stage_duration_seconds_sum{shard=\"0\",api=\"produce\",stage=\"total\"} 0.5\n\
            corelog_stage_duration_seconds_sum{shard=\"0\",api=\"produce\",stage=\"decode\"} 9\n\
            corelog_stage_duration_seconds_count{shard=\"0\",api=\"produce\",stage=\"total\"} 10\n\
            corelog_network_sent_bytes_total 7\n";
        let v = summarize(text);
        assert_eq!(v["requests"], 7.0);
        assert_eq!(v["sent_bytes"], 7.0);
        assert_eq!(v["received_bytes"], 0.0);
        assert_eq!(v["produce_latency_seconds_sum"], 0.5);
        assert_eq!(v["produce_latency_count"], 10.0);
    }
}
