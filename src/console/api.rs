//! The console's JSON API: the routes, and the read-only cluster and topic views.
//! Figures come from the toolbox's requests (Metadata, DescribeLogDirs, ListOffsets,
//! DescribeConfigs), so any Kafka-compatible broker answers them.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tiny_http::Method;

use super::{actions, groups, messages, metrics, ApiError, ApiResult, ConsoleArgs};
use crate::cli::client::Cluster;
use crate::cli::configs::source_name;
use crate::cli::offsets::{list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::cli::{configs, log_dirs, topic};

/// Topics per page unless the page asks otherwise, and the most it may ask for: a page
/// stays quick to build (one DescribeLogDirs over its topics) with thousands of topics.
pub const TOPICS_PER_PAGE_DEFAULT: usize = 50;
pub const TOPICS_PER_PAGE_MAX: usize = 500;
/// The configs the topic list shows beside each topic.
const RETENTION_KEYS: [&str; 2] = ["retention.ms", "retention.bytes"];

pub fn route(
    args: &ConsoleArgs,
    method: &Method,
    path: &[String],
    query: &[(String, String)],
    body: Option<&Value>,
) -> ApiResult {
    let seg: Vec<&str> = path.iter().map(String::as_str).collect();
    let connect = || {
        Cluster::connect(&args.bootstrap_server)
            .map_err(|e| ApiError::from(topic::TopicError::from(e)))
    };
    match (method, seg.as_slice()) {
        (Method::Get, ["cluster"]) => cluster_view(&mut connect()?),
        (Method::Get, ["metrics"]) => metrics::sample(args.admin.as_deref()),
        (Method::Get, ["topics"]) => topics_page(&mut connect()?, query),
        (Method::Post, ["topics"]) => actions::create_topic(&mut connect()?, body),
        (Method::Get, ["topics", name]) => topic_view(&mut connect()?, name),
        (Method::Delete, ["topics", name]) => actions::delete_topic(&mut connect()?, name),
        (Method::Post, ["topics", name, "configs"]) => {
            actions::alter_configs(&mut connect()?, name, body)
        }
        (Method::Post, ["topics", name, "partitions"]) => {
            actions::add_partitions(&mut connect()?, name, body)
        }
        (Method::Post, ["topics", name, "partitions", p, "delete-records"]) => {
            actions::delete_records(&mut connect()?, name, p, body)
        }
        (Method::Get, ["topics", name, "partitions", p, "messages"]) => {
            messages::browse(&mut connect()?, name, p, query)
        }
        (Method::Get, ["groups"]) => groups::list(&mut connect()?),
        (Method::Get, ["groups", name]) => groups::describe(&mut connect()?, name),
        (Method::Post, ["groups", name, "reset-offsets"]) => {
            groups::reset_offsets(&mut connect()?, name, body)
        }
        _ => Err(ApiError::not_found(format!(
            "no API {method} /api/{}",
            path.join("/")
        ))),
    }
}

/// A query parameter parsed as `T`; a clear 400 when it does not parse.
pub fn param<T: std::str::FromStr>(
    query: &[(String, String)],
    name: &str,
) -> Result<Option<T>, ApiError> {
    match query.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) if v.is_empty() => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{name}={v:?} is not a valid {name}"))),
    }
}

/// Brokers, controller, cluster id, and every broker's log dirs with their space.
fn cluster_view(cluster: &mut Cluster) -> ApiResult {
    let md = cluster
        .metadata(Some(&[][..]), false)
        .map_err(topic::TopicError::from)?;
    let mut brokers: Vec<Value> = md
        .brokers
        .iter()
        .map(|b| {
            json!({
                "node_id": b.node_id.0, "host": b.host.as_str(), "port": b.port,
                "rack": b.rack.as_ref().map(|r| r.as_str()),
                "controller": b.node_id.0 == md.controller_id.0,
            })
        })
        .collect();
    brokers.sort_by_key(|b| b["node_id"].as_i64());
    let dirs = log_dirs::describe(cluster, None)?;
    let dirs: Vec<Value> = dirs
        .iter()
        .map(|d| {
            json!({
                "broker": d.broker, "path": d.path, "state": d.state(),
                "total_bytes": d.total_bytes, "usable_bytes": d.usable_bytes,
                "partitions": d.partitions.len(),
                "size_bytes": d.partitions.iter().map(|p| p.size_bytes).sum::<i64>(),
            })
        })
        .collect();
    Ok(json!({
        "cluster_id": md.cluster_id.as_ref().map(|c| c.as_str()),
        "controller_id": md.controller_id.0,
        "brokers": brokers,
        "log_dirs": dirs,
    }))
}

/// One page of the topic list (sorted by name, optionally filtered by a substring), each
/// topic with its partition count, replication factor, size (the leaders' copies) and
/// retention (time and bytes; -1 is unlimited, as in Kafka).
fn topics_page(cluster: &mut Cluster, query: &[(String, String)]) -> ApiResult {
    let page: usize = param(query, "page")?.unwrap_or(1).max(1);
    let per_page: usize = param(query, "per_page")?
        .unwrap_or(TOPICS_PER_PAGE_DEFAULT)
        .clamp(1, TOPICS_PER_PAGE_MAX);
    let filter: String = param(query, "filter")?.unwrap_or_default();
    let all = topic::list(cluster.any())?;
    let matching: Vec<&topic::TopicInfo> =
        all.iter().filter(|t| t.name.contains(&filter)).collect();
    let shown: Vec<&topic::TopicInfo> = matching
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .copied()
        .collect();
    let parts: BTreeMap<String, Vec<i32>> = shown
        .iter()
        .map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.0).collect()))
        .collect();
    let dirs = if parts.is_empty() {
        Vec::new()
    } else {
        log_dirs::describe(cluster, Some(&parts))?
    };
    let names: Vec<String> = parts.keys().cloned().collect();
    let retention = configs::describe_keys(cluster.any(), &names, &RETENTION_KEYS)?;
    let topics: Vec<Value> = shown
        .iter()
        .map(|t| {
            let sizes = topic::leader_dirs(&dirs, t);
            let config = |key: &str| {
                retention
                    .get(&t.name)
                    .and_then(|cs| cs.iter().find(|c| c.name == key))
                    .and_then(|c| c.value.as_ref())
                    .and_then(|v| v.parse::<i64>().ok())
            };
            json!({
                "name": t.name, "internal": t.internal,
                "partitions": t.partitions.len(),
                "replication": replication(t),
                "size_bytes": sizes.values().map(|(_, s)| s).sum::<i64>(),
                "retention_ms": config("retention.ms"),
                "retention_bytes": config("retention.bytes"),
            })
        })
        .collect();
    Ok(json!({
        "total": matching.len(), "page": page, "per_page": per_page,
        "pages": matching.len().div_ceil(per_page).max(1),
        "topics": topics,
    }))
}

/// The replication factor: the most replicas any partition has (they agree unless a
/// reassignment is under way).
fn replication(t: &topic::TopicInfo) -> usize {
    t.partitions.iter().map(|p| p.2.len()).max().unwrap_or(0)
}

/// One topic: each partition's leader, replicas, ISR, earliest/latest offsets, size and
/// log dir, and every config with its source.
fn topic_view(cluster: &mut Cluster, name: &str) -> ApiResult {
    let d = topic::describe_detail(cluster, name, true)?;
    let leader_of: BTreeMap<i32, i32> = d.info.partitions.iter().map(|p| (p.0, p.1)).collect();
    let ids: Vec<i32> = leader_of.keys().copied().collect();
    let query = |ts: i64| ids.iter().map(|p| (*p, ts)).collect::<Vec<_>>();
    let earliest = list_offsets(cluster, name, &leader_of, &query(EARLIEST_TIMESTAMP))?;
    let latest = list_offsets(cluster, name, &leader_of, &query(LATEST_TIMESTAMP))?;
    let partitions: Vec<Value> = d
        .info
        .partitions
        .iter()
        .map(|(p, leader, replicas, isr)| {
            let dir = d.dirs.get(p);
            json!({
                "partition": p, "leader": leader, "replicas": replicas, "isr": isr,
                "earliest": earliest.get(p), "latest": latest.get(p),
                "size_bytes": dir.map(|d| d.1), "log_dir": dir.map(|d| &d.0),
            })
        })
        .collect();
    let configs: Vec<Value> = d
        .configs
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "value": c.value, "source": source_name(c.source),
                "read_only": c.read_only, "sensitive": c.sensitive,
            })
        })
        .collect();
    Ok(json!({
        "name": d.info.name, "internal": d.info.internal,
        "replication": replication(&d.info),
        "size_bytes": d.dirs.values().map(|(_, s)| s).sum::<i64>(),
        "partitions": partitions, "configs": configs,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_parse_or_say_why() {
        let q = vec![
            ("page".to_string(), "3".to_string()),
            ("offset".to_string(), "x".to_string()),
            ("empty".to_string(), String::new()),
        ];
        assert_eq!(param::<usize>(&q, "page"), Ok(Some(3)));
        assert_eq!(param::<usize>(&q, "missing"), Ok(None));
        assert_eq!(param::<usize>(&q, "empty"), Ok(None));
        let e = param::<i64>(&q, "offset").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.message, "offset=\"x\" is not a valid offset");
    }
}
