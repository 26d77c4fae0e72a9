//! `/metrics`: the shards' metrics in Prometheus' text exposition format (0.0.4).
//!
//! Stage latencies and write sizes are exposed as Prometheus *histograms* with fixed
//! buckets, one series per shard, not as summaries: bucket counts add up across shards
//! and brokers (`sum by (le)`), quantiles of a summary do not. The exact per-window
//! quantiles are what `/v1/profile` is for. A bucket's count is read from the
//! HdrHistogram, whose buckets are 1% wide: a value within 1% above a bucket's
//! bound may be counted in it. Stage series appear once the stage has recorded
//! something; counters are there from the start. Every name starts with `corelog_`.

use std::fmt::Write;

use super::{api_name, error_name, Counter, Hist, ShardSnapshot, Size, Stage};

/// Upper bounds of the stage latency buckets, in µs (exposed in seconds).
pub const LATENCY_BUCKETS_US: [u64; 20] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];
/// Upper bounds of the batches-per-write buckets.
pub const WRITE_BATCHES_BUCKETS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/// Upper bounds of the bytes-per-write buckets.
pub const WRITE_BYTES_BUCKETS: [u64; 7] = [
    4_096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216,
];

/// Broker-wide values that are not per shard.
#[derive(Debug, Clone, Default)]
pub struct BrokerGauges {
    pub shards: usize,
    pub uptime_seconds: f64,
    pub log_dirs: usize,
    pub log_dirs_offline: usize,
    /// `broker.dirs.failures()`: dirs taken offline since start.
    pub log_dir_failures: u64,
    /// `metrics.enable`.
    pub recording: bool,
    /// Cluster mode: replicated partitions this broker leads.
    pub leader_partitions: usize,
    /// Of those, the ones whose ISR is smaller than their replica list.
    pub under_replicated_partitions: usize,
}

fn counter_meta(c: Counter) -> (&'static str, &'static str) {
    match c {
        Counter::NetworkReceivedBytes => (
            "corelog_network_received_bytes_total",
            "Kafka request bytes read, size prefixes included.",
        ),
        Counter::NetworkSentBytes => (
            "corelog_network_sent_bytes_total",
            "Kafka response bytes written, size prefixes included.",
        ),
        Counter::AppendedBatches => (
            "corelog_appended_batches_total",
            "Record batches appended to partition logs.",
        ),
        Counter::AppendedBytes => (
            "corelog_appended_bytes_total",
            "Record batch bytes appended to partition logs.",
        ),
        Counter::FetchedBytes => (
            "corelog_fetched_bytes_total",
            "Record batch bytes returned by Fetch.",
        ),
        Counter::CacheHits => (
            "corelog_cache_hits_total",
            "Log reads served from the batch cache.",
        ),
        Counter::CacheMisses => (
            "corelog_cache_misses_total",
            "Log reads that went to the segment files.",
        ),
        Counter::DmaReads => ("corelog_dma_reads_total", "DMA reads of segment files."),
        Counter::Writes => (
            "corelog_storage_writes_total",
            "Group-committed DMA writes of partition logs.",
        ),
        Counter::Fdatasyncs => (
            "corelog_storage_fdatasyncs_total",
            "fdatasync calls of partition logs.",
        ),
        Counter::ZeroFillBytes => (
            "corelog_storage_zero_fill_bytes_total",
            "Bytes of zeros written ahead of partition logs' data, so appends overwrite written blocks.",
        ),
        Counter::ConnectionsOpened => (
            "corelog_connections_opened_total",
            "Kafka connections accepted.",
        ),
        Counter::ConnectionsClosed => (
            "corelog_connections_closed_total",
            "Kafka connections ended.",
        ),
        Counter::ProduceConvertedRecords => (
            "corelog_produce_converted_records_total",
            "Records of Produce v0-2 message sets (formats v0/v1) converted to v2 batches.",
        ),
        Counter::FetchConvertedRecords => (
            "corelog_fetch_converted_records_total",
            "Records converted down to message formats v0/v1 for Fetch v0-3.",
        ),
        Counter::IsrShrinks => (
            "corelog_isr_shrinks_total",
            "ISR shrinks of partitions this broker leads (lagging followers, fenced brokers).",
        ),
        Counter::IsrExpands => (
            "corelog_isr_expands_total",
            "ISR expansions of partitions this broker leads (followers caught up).",
        ),
        Counter::TlsHandshakeFailures => (
            "corelog_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out; the connection was closed.",
        ),
        Counter::TlsHandshakes => ("corelog_tls_handshakes_total", "TLS handshakes completed."),
        Counter::SaslAuthentications => (
            "corelog_sasl_authentications_total",
            "SASL logins that succeeded.",
        ),
        Counter::SaslAuthenticationFailures => (
            "corelog_sasl_authentication_failures_total",
            "SASL logins refused with SASL_AUTHENTICATION_FAILED or abandoned.",
        ),
        Counter::TxnCommitted => (
            "corelog_transactions_committed_total",
            "Transactions this broker's coordinator completed with a commit.",
        ),
        Counter::TxnAborted => (
            "corelog_transactions_aborted_total",
            "Transactions this broker's coordinator completed with an abort (timed-out and fenced ones included).",
        ),
        Counter::TxnTimedOut => (
            "corelog_transactions_timed_out_total",
            "Transactions the coordinator aborted because they outlived transaction.timeout.ms.",
        ),
        Counter::ConnectionsRefused => (
            "corelog_connections_refused_total",
            "Connections closed right after accept: over max.connections, listener.name.<l>.max.connections or max.connections.per.ip.",
        ),
        Counter::QuotaThrottledResponses => (
            "corelog_quota_throttled_responses_total",
            "Responses with a non-zero throttle_time_ms from a client quota; the connection was muted that long.",
        ),
        Counter::FollowerFetchedBytes => (
            "corelog_follower_fetched_bytes_total",
            "Record batch bytes served to consumers as a follower (KIP-392 fetch from follower).",
        ),
        Counter::ZeroFillFdatasyncs => (
            "corelog_storage_zero_fill_fdatasyncs_total",
            "fdatasync calls after zero-fill writes (only on logs some request asked durability of).",
        ),
        Counter::ShardMessages => (
            "corelog_shard_messages_total",
            "Messages sent to another shard's mailbox (each may wake that shard's thread).",
        ),
        Counter::LeaderThrottledBytes => (
            "corelog_leader_replication_throttled_bytes_total",
            "Record batch bytes sent as a leader to followers throttled by leader.replication.throttled.rate.",
        ),
        Counter::LeaderThrottledReads => (
            "corelog_leader_replication_throttled_reads_total",
            "Follower reads a leader answered without records because its leader.replication.throttled.rate budget was spent.",
        ),
        Counter::FetchSessionsCreated => (
            "corelog_fetch_sessions_created_total",
            "KIP-227 incremental fetch sessions created.",
        ),
        Counter::FetchSessionsEvicted => (
            "corelog_fetch_sessions_evicted_total",
            "Fetch sessions evicted from a full cache (max.incremental.fetch.session.cache.slots) for a new one.",
        ),
        Counter::IncrementalFetches => (
            "corelog_incremental_fetches_total",
            "Fetch requests answered incrementally within a fetch session.",
        ),
    }
}

/// The whole exposition for `shards` (in shard order) and the broker's gauges.
pub fn render(shards: &[ShardSnapshot], broker: &BrokerGauges) -> String {
    let mut out = String::with_capacity(16 << 10);
    broker_families(&mut out, broker);
    for c in Counter::ALL {
        let (name, help) = counter_meta(c);
        family(&mut out, name, help, "counter");
        for s in shards {
            sample(
                &mut out,
                name,
                &[("shard", &s.shard.to_string())],
                s.counter(c),
            );
        }
    }
    family(
        &mut out,
        "corelog_transactions_ongoing",
        "Transactions in the Ongoing state on this broker's coordinator.",
        "gauge",
    );
    for s in shards {
        let shard = s.shard.to_string();
        sample(
            &mut out,
            "corelog_transactions_ongoing",
            &[("shard", &shard)],
            s.txn_ongoing,
        );
    }
    family(
        &mut out,
        "corelog_fetch_sessions_open",
        "KIP-227 fetch sessions held, per shard (a session lives on the shard of the connection that made it).",
        "gauge",
    );
    for s in shards {
        sample(
            &mut out,
            "corelog_fetch_sessions_open",
            &[("shard", &s.shard.to_string())],
            s.fetch_sessions_open,
        );
    }
    family(
        &mut out,
        "corelog_connections_active",
        "Kafka connections open now.",
        "gauge",
    );
    for s in shards {
        let open = s.counter(Counter::ConnectionsOpened) - s.counter(Counter::ConnectionsClosed);
        sample(
            &mut out,
            "corelog_connections_active",
            &[("shard", &s.shard.to_string())],
            open,
        );
    }
    replica_lag_families(&mut out, shards);
    request_families(&mut out, shards);
    stage_family(&mut out, shards);
    size_families(&mut out, shards);
    out
}

/// The leader-side lag gauges (Kafka's MaxLag is the follower's; ours is the leader's
/// view, from the fetch offsets its followers send).
fn replica_lag_families(out: &mut String, shards: &[ShardSnapshot]) {
    let records = "corelog_replica_max_lag_records";
    family(
        out,
        records,
        "Largest lag in records of a follower of a partition this shard leads.",
        "gauge",
    );
    for s in shards {
        let shard = s.shard.to_string();
        sample(
            out,
            records,
            &[("shard", &shard)],
            s.replica_lag.max_records,
        );
    }
    let seconds = "corelog_replica_max_lag_seconds";
    family(
        out,
        seconds,
        "Longest time a follower of a partition this shard leads has not been caught up.",
        "gauge",
    );
    for s in shards {
        let labels = label_set(&[("shard", &s.shard.to_string())], None);
        let _ = writeln!(out, "{seconds}{labels} {:.3}", s.replica_lag.max_seconds);
    }
}

fn broker_families(out: &mut String, b: &BrokerGauges) {
    let gauges: [(&str, &str, &str, String); 7] = [
        (
            "corelog_shards",
            "Shards (one thread per core) serving.",
            "gauge",
            b.shards.to_string(),
        ),
        (
            "corelog_uptime_seconds",
            "Seconds since the broker started.",
            "gauge",
            format!("{:.3}", b.uptime_seconds),
        ),
        (
            "corelog_log_dirs_offline",
            "Log dirs offline (KIP-112), of corelog_log_dirs.",
            "gauge",
            b.log_dirs_offline.to_string(),
        ),
        (
            "corelog_log_dir_failures_total",
            "Log dirs taken offline since start, start-up failures included.",
            "counter",
            b.log_dir_failures.to_string(),
        ),
        (
            "corelog_metrics_recording",
            "1 when the shards record metrics (metrics.enable), else 0.",
            "gauge",
            u8::from(b.recording).to_string(),
        ),
        (
            "corelog_leader_partitions",
            "Replicated partitions this broker leads (cluster mode).",
            "gauge",
            b.leader_partitions.to_string(),
        ),
        (
            "corelog_under_replicated_partitions",
            "Partitions this broker leads whose ISR lacks some replica.",
            "gauge",
            b.under_replicated_partitions.to_string(),
        ),
    ];
    family(out, "corelog_log_dirs", "Log dirs configured.", "gauge");
    let _ = writeln!(out, "corelog_log_dirs {}", b.log_dirs);
    for (name, help, kind, value) in gauges {
        family(out, name, help, kind);
        let _ = writeln!(out, "{name} {value}");
    }
}

fn request_families(out: &mut String, shards: &[ShardSnapshot]) {
    let name = "corelog_requests_total";
    family(out, name, "Kafka requests received, by API.", "counter");
    for s in shards {
        let shard = s.shard.to_string();
        for (api, n) in &s.requests {
            sample(
                out,
                name,
                &[("shard", &shard), ("api", &api_name(*api))],
                *n,
            );
        }
    }
    let name = "corelog_request_errors_total";
    family(
        out,
        name,
        "Error codes answered for Produce and Fetch partitions, and requests refused by closing the connection, by API and error.",
        "counter",
    );
    for s in shards {
        let shard = s.shard.to_string();
        for ((api, code), n) in &s.errors {
            let labels = [
                ("shard", shard.as_str()),
                ("api", &api_name(*api)),
                ("error", &error_name(*code)),
            ];
            sample(out, name, &labels, *n);
        }
    }
}

fn stage_family(out: &mut String, shards: &[ShardSnapshot]) {
    let name = "corelog_stage_duration_seconds";
    family(
        out,
        name,
        "Time spent in each stage of a Produce or Fetch, and in storage writes and fdatasyncs.",
        "histogram",
    );
    for s in shards {
        let shard = s.shard.to_string();
        for stage in Stage::ALL {
            let h = s.stage(stage);
            if h.count() == 0 {
                continue;
            }
            let (api, st) = stage.labels();
            let labels = [("shard", shard.as_str()), ("api", api), ("stage", st)];
            histogram(out, name, &labels, h, &LATENCY_BUCKETS_US, 1e6);
        }
    }
}

fn size_families(out: &mut String, shards: &[ShardSnapshot]) {
    for (size, name, help, bounds) in [
        (
            Size::WriteBatches,
            "corelog_storage_write_batches",
            "Record batches per group-committed write.",
            &WRITE_BATCHES_BUCKETS[..],
        ),
        (
            Size::WriteBytes,
            "corelog_storage_write_bytes",
            "Batch bytes per group-committed write.",
            &WRITE_BYTES_BUCKETS[..],
        ),
    ] {
        family(out, name, help, "histogram");
        for s in shards {
            let h = s.size(size);
            if h.count() > 0 {
                histogram(
                    out,
                    name,
                    &[("shard", &s.shard.to_string())],
                    h,
                    bounds,
                    1.0,
                );
            }
        }
    }
}

pub(super) fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub(super) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    let _ = writeln!(out, "{name}{} {value}", label_set(labels, None));
}

/// Buckets (cumulative, then `+Inf`), `_sum` and `_count` of one series; bounds and the
/// sum are divided by `divisor` (1e6: µs to seconds; a correctly rounded division, so
/// 10 µs prints as `0.00001`).
fn histogram(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    h: &Hist,
    bounds: &[u64],
    divisor: f64,
) {
    // One pass over the recorded values: each goes to the first bucket whose bound is
    // at or above the lowest value HdrHistogram treats as equal to it.
    let mut counts = vec![0u64; bounds.len()];
    for v in h.h.iter_recorded() {
        let value = h.h.lowest_equivalent(v.value_iterated_to());
        let first = bounds.partition_point(|&le| le < value);
        if let Some(c) = counts.get_mut(first) {
            *c += v.count_at_value();
        }
    }
    let mut cumulative = 0;
    for (&le, n) in bounds.iter().zip(counts) {
        cumulative += n;
        let le = format_float(le as f64 / divisor);
        let _ = writeln!(
            out,
            "{name}_bucket{} {cumulative}",
            label_set(labels, Some(&le))
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{} {}",
        label_set(labels, Some("+Inf")),
        h.count()
    );
    let set = label_set(labels, None);
    let _ = writeln!(
        out,
        "{name}_sum{set} {}",
        format_float(h.sum as f64 / divisor)
    );
    let _ = writeln!(out, "{name}_count{set} {}", h.count());
}

fn label_set(labels: &[(&str, &str)], le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut s = String::from("{");
    let all = labels.iter().copied().chain(le.map(|v| ("le", v)));
    for (i, (k, v)) in all.enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"{}\"", escape_label(v));
    }
    s.push('}');
    s
}

/// A float as Prometheus reads it: Rust's shortest round-trip form (`0.000025`, `2.5`,
/// `10`).
fn format_float(v: f64) -> String {
    format!("{v}")
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_of_a_small_fixed_registry_is_exact() {
        let mut s = ShardSnapshot::empty(1);
        s.counters[Counter::NetworkReceivedBytes as usize] = 300;
        s.counters[Counter::ConnectionsOpened as usize] = 3;
        s.counters[Counter::ConnectionsClosed as usize] = 1;
        s.replica_lag = crate::metrics::ReplicaLag {
            max_records: 5,
            max_seconds: 2.5,
        };
        s.requests = vec![(0, 7), (1, 2)];
        s.errors = vec![((0, 21), 1)];
        for v in [8, 40, 40, 2_000_000] {
            s.stages[Stage::ProduceAppend as usize].record(v);
        }
        s.sizes[Size::WriteBatches as usize].record(3);
        let b = BrokerGauges {
            shards: 2,
            uptime_seconds: 1.5,
            log_dirs: 2,
            log_dirs_offline: 1,
            log_dir_failures: 1,
            recording: true,
            leader_partitions: 3,
            under_replicated_partitions: 1,
        };
        let text = render(&[s], &b);
        let expected_head = "\
# HELP corelog_log_dirs Log dirs configured.
# TYPE corelog_log_dirs gauge
corelog_log_dirs 2
# HELP corelog_shards Shards (one thread per core) serving.
# TYPE corelog_shards gauge
corelog_shards 2
# HELP corelog_uptime_seconds Seconds since the broker started.
# TYPE corelog_uptime_seconds gauge
corelog_uptime_seconds 1.500
# HELP corelog_log_dirs_offline Log dirs offline (KIP-112), of corelog_log_dirs.
# TYPE corelog_log_dirs_offline gauge
corelog_log_dirs_offline 1
# HELP corelog_log_dir_failures_total Log dirs taken offline since start, start-up failures included.
# TYPE corelog_log_dir_failures_total counter
corelog_log_dir_failures_total 1
# HELP corelog_metrics_recording 1 when the shards record metrics (metrics.enable), else 0.
# TYPE corelog_metrics_recording gauge
corelog_metrics_recording 1
# HELP corelog_leader_partitions Replicated partitions this broker leads (cluster mode).
# TYPE corelog_leader_partitions gauge
corelog_leader_partitions 3
# HELP corelog_under_replicated_partitions Partitions this broker leads whose ISR lacks some replica.
# TYPE corelog_under_replicated_partitions gauge
corelog_under_replicated_partitions 1
# HELP corelog_network_received_bytes_total Kafka request bytes read, size prefixes included.
# TYPE corelog_network_received_bytes_total counter
corelog_network_received_bytes_total{shard=\"1\"} 300
";
        assert!(text.starts_with(expected_head), "{text}");
        let expected_tail = "\
# HELP corelog_connections_active Kafka connections open now.
# TYPE corelog_connections_active gauge
corelog_connections_active{shard=\"1\"} 2
# HELP corelog_replica_max_lag_records Largest lag in records of a follower of a partition this shard leads.
# TYPE corelog_replica_max_lag_records gauge
corelog_replica_max_lag_records{shard=\"1\"} 5
# HELP corelog_replica_max_lag_seconds Longest time a follower of a partition this shard leads has not been caught up.
# TYPE corelog_replica_max_lag_seconds gauge
corelog_replica_max_lag_seconds{shard=\"1\"} 2.500
# HELP corelog_requests_total Kafka requests received, by API.
# TYPE corelog_requests_total counter
corelog_requests_total{shard=\"1\",api=\"Produce\"} 7
corelog_requests_total{shard=\"1\",api=\"Fetch\"} 2
# HELP corelog_request_errors_total Error codes answered for Produce and Fetch partitions, and requests refused by closing the connection, by API and error.
# TYPE corelog_request_errors_total counter
corelog_request_errors_total{shard=\"1\",api=\"Produce\",error=\"InvalidRequiredAcks\"} 1
# HELP corelog_stage_duration_seconds Time spent in each stage of a Produce or Fetch, and in storage writes and fdatasyncs.
# TYPE corelog_stage_duration_seconds histogram
corelog_stage_duration_seconds_bucket{shard=\"1\",api=\"produce\",stage=\"append\",le=\"0.00001\"} 1
corelog_stage_duration_seconds_bucket{shard=\"1\",api=\"produce\",stage=\"append\",le=\"0.000025\"} 1
corelog_stage_duration_seconds_bucket{shard=\"1\",api=\"produce\",stage=\"append\",le=\"0.00005\"} 3
";
        let at = text
            .find("# HELP corelog_connections_active")
            .expect("connections family");
        assert!(text[at..].starts_with(expected_tail), "{}", &text[at..]);
        for line in [
            "corelog_stage_duration_seconds_bucket{shard=\"1\",api=\"produce\",stage=\"append\",le=\"1\"} 3\n",
            "corelog_stage_duration_seconds_bucket{shard=\"1\",api=\"produce\",stage=\"append\",le=\"2.5\"} 4\n",
            "corelog_stage_duration_seconds_bucket{shard=\"1\",api=\"produce\",stage=\"append\",le=\"+Inf\"} 4\n",
            "corelog_stage_duration_seconds_sum{shard=\"1\",api=\"produce\",stage=\"append\"} 2.000088\n",
            "corelog_stage_duration_seconds_count{shard=\"1\",api=\"produce\",stage=\"append\"} 4\n",
        ] {
            assert!(text.contains(line), "missing {line}");
        }
        let expected_end = "\
# HELP corelog_storage_write_batches Record batches per group-committed write.
# TYPE corelog_storage_write_batches histogram
corelog_storage_write_batches_bucket{shard=\"1\",le=\"1\"} 0
corelog_storage_write_batches_bucket{shard=\"1\",le=\"2\"} 0
corelog_storage_write_batches_bucket{shard=\"1\",le=\"4\"} 1
corelog_storage_write_batches_bucket{shard=\"1\",le=\"8\"} 1
corelog_storage_write_batches_bucket{shard=\"1\",le=\"16\"} 1
corelog_storage_write_batches_bucket{shard=\"1\",le=\"32\"} 1
corelog_storage_write_batches_bucket{shard=\"1\",le=\"64\"} 1
corelog_storage_write_batches_bucket{shard=\"1\",le=\"128\"} 1
corelog_storage_write_batches_bucket{shard=\"1\",le=\"256\"} 1
corelog_storage_write_batches_bucket{shard=\"1\",le=\"512\"} 1
corelog_storage_write_batches_bucket{shard=\"1\",le=\"1024\"} 1
corelog_storage_write_batches_bucket{shard=\"1\",le=\"+Inf\"} 1
corelog_storage_write_batches_sum{shard=\"1\"} 3
corelog_storage_write_batches_count{shard=\"1\"} 1
# HELP corelog_storage_write_bytes Batch bytes per group-committed write.
# TYPE corelog_storage_write_bytes histogram
";
        assert!(text.ends_with(expected_end), "{text}");
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            assert!(series.starts_with("corelog_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_set(&[("a", "x\"y\\z\nw")], Some("+Inf")),
            "{a=\"x\\\"y\\\\z\\nw\",le=\"+Inf\"}"
        );
        assert_eq!(label_set(&[], None), "");
    }
}
