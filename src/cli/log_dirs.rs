//! `corelog log-dirs describe`, like kafka-log-dirs.sh: every broker's log dirs, their
//! state, the partitions in each with their size, and (DescribeLogDirs v4, Kafka 3.3+)
//! the file system's total and usable bytes. Also the source of the per-partition dir
//! that `corelog topic describe` prints.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::Cluster;
use super::topic::{broker_error, TopicError};

/// v1 is Kafka 2.0's; v4 adds total and usable bytes.
const DESCRIBE_LOG_DIRS_VERSIONS: (i16, i16) = (1, 4);
/// Kafka's KAFKA_STORAGE_ERROR: the dir is offline.
const KAFKA_STORAGE_ERROR: i16 = 56;

#[derive(Debug, Clone, PartialEq)]
pub struct PartitionDir {
    pub topic: String,
    pub partition: i32,
    pub size_bytes: i64,
    pub offset_lag: i64,
    pub is_future: bool,
}

/// One log dir of one broker.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDir {
    pub broker: i32,
    pub path: String,
    pub error_code: i16,
    /// -1 when the broker does not say (DescribeLogDirs before v4, or offline).
    pub total_bytes: i64,
    pub usable_bytes: i64,
    pub partitions: Vec<PartitionDir>,
}

impl LogDir {
    pub fn state(&self) -> String {
        match self.error_code {
            0 => "online".to_string(),
            KAFKA_STORAGE_ERROR => "offline".to_string(),
            code => kafka_protocol::ResponseError::try_from_code(code)
                .map_or_else(|| format!("error {code}"), |e| format!("{e:?}")),
        }
    }
}

/// Every broker's log dirs; with `topics` (name → partitions) only those partitions
/// are listed (the dirs still are). A listed broker that refuses the connection is
/// skipped with a warning (`Cluster::reachable`).
pub fn describe(
    cluster: &mut Cluster,
    topics: Option<&BTreeMap<String, Vec<i32>>>,
) -> Result<Vec<LogDir>, TopicError> {
    cluster.metadata(Some(&[][..]), false)?;
    let mut req = DescribeLogDirsRequest::default();
    req.topics = topics.map(|ts| {
        ts.iter()
            .map(|(name, parts)| {
                let mut t = DescribableLogDirTopic::default();
                t.topic = TopicName(StrBytes::from_string(name.clone()));
                t.partitions = parts.clone();
                t
            })
            .collect()
    });
    let mut out = Vec::new();
    for node in cluster.reachable("its log dirs are not listed")? {
        let client = cluster.broker(node)?;
        let version = client.version(ApiKey::DescribeLogDirs, DESCRIBE_LOG_DIRS_VERSIONS)?;
        let resp: DescribeLogDirsResponse = client.call(ApiKey::DescribeLogDirs, version, &req)?;
        if resp.error_code != 0 {
            return Err(broker_error(
                &format!("broker {node}"),
                resp.error_code,
                None,
            ));
        }
        for r in &resp.results {
            let mut partitions: Vec<PartitionDir> = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| PartitionDir {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        size_bytes: p.partition_size,
                        offset_lag: p.offset_lag,
                        is_future: p.is_future_key,
                    })
                })
                .collect();
            partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            out.push(LogDir {
                broker: node,
                path: r.log_dir.to_string(),
                error_code: r.error_code,
                total_bytes: if version >= 4 { r.total_bytes } else { -1 },
                usable_bytes: if version >= 4 { r.usable_bytes } else { -1 },
                partitions,
            });
        }
    }
    Ok(out)
}

/// Partitions of `topic` as Metadata lists them, for a DescribeLogDirs filter.
pub fn topic_filter(
    cluster: &mut Cluster,
    topic: &str,
) -> Result<BTreeMap<String, Vec<i32>>, TopicError> {
    let md = cluster.metadata(Some(&[topic.to_string()]), false)?;
    let t = md
        .topics
        .first()
        .ok_or_else(|| broker_error(topic, 3, None))?;
    if t.error_code != 0 {
        return Err(broker_error(topic, t.error_code, None));
    }
    let mut parts: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    parts.sort_unstable();
    Ok(BTreeMap::from([(topic.to_string(), parts)]))
}

fn bytes_text(n: i64) -> String {
    if n < 0 {
        "unknown".to_string()
    } else {
        n.to_string()
    }
}

/// One line per dir, then one per partition in it:
/// `broker=0  dir=/d1  state=online  total_bytes=..  usable_bytes=..  partitions=2  size_bytes=..`
/// `\tpartition=t-0  size_bytes=..  offset_lag=0`
pub fn render_text(dirs: &[LogDir]) -> String {
    let mut out = String::new();
    for d in dirs {
        let size: i64 = d.partitions.iter().map(|p| p.size_bytes.max(0)).sum();
        out += &format!(
            "broker={}\tdir={}\tstate={}\ttotal_bytes={}\tusable_bytes={}\tpartitions={}\tsize_bytes={}\n",
            d.broker,
            d.path,
            d.state(),
            bytes_text(d.total_bytes),
            bytes_text(d.usable_bytes),
            d.partitions.len(),
            size
        );
        for p in &d.partitions {
            out += &format!(
                "\tpartition={}-{}\tsize_bytes={}\toffset_lag={}{}\n",
                p.topic,
                p.partition,
                p.size_bytes,
                p.offset_lag,
                if p.is_future { "\tfuture" } else { "" }
            );
        }
    }
    out
}

/// `{"log_dirs":[{"broker":0,"dir":..,"state":..,"error":null|name,"total_bytes":..|null,
/// "usable_bytes":..|null,"partitions":[{"topic":..,"partition":..,"size_bytes":..,
/// "offset_lag":..,"is_future":..}]}]}`
pub fn render_json(dirs: &[LogDir]) -> String {
    use serde_json::{json, Value};
    let bytes = |n: i64| if n < 0 { Value::Null } else { json!(n) };
    let items: Vec<Value> = dirs
        .iter()
        .map(|d| {
            let error = if d.error_code == 0 {
                Value::Null
            } else {
                json!(kafka_protocol::ResponseError::try_from_code(d.error_code)
                    .map_or_else(|| format!("error {}", d.error_code), |e| format!("{e:?}")))
            };
            json!({
                "broker": d.broker,
                "dir": d.path,
                "state": d.state(),
                "error": error,
                "total_bytes": bytes(d.total_bytes),
                "usable_bytes": bytes(d.usable_bytes),
                "partitions": d.partitions.iter().map(|p| json!({
                    "topic": p.topic,
                    "partition": p.partition,
                    "size_bytes": p.size_bytes,
                    "offset_lag": p.offset_lag,
                    "is_future": p.is_future,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "log_dirs": items }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> LogDir {
        LogDir {
            broker: 0,
            path: "/d1".into(),
            error_code: 0,
            total_bytes: 1000,
            usable_bytes: -1,
            partitions: vec![PartitionDir {
                topic: "t".into(),
                partition: 1,
                size_bytes: 42,
                offset_lag: 0,
                is_future: false,
            }],
        }
    }

    #[test]
    fn text_and_json_of_a_dir() {
        assert_eq!(
            render_text(&[dir()]),
            "broker=0\tdir=/d1\tstate=online\ttotal_bytes=1000\tusable_bytes=unknown\tpartitions=1\tsize_bytes=42\n\tpartition=t-1\tsize_bytes=42\toffset_lag=0\n"
        );
        let v: serde_json::Value = serde_json::from_str(&render_json(&[dir()])).unwrap();
        assert_eq!(v["log_dirs"][0]["usable_bytes"], serde_json::Value::Null);
        assert_eq!(v["log_dirs"][0]["partitions"][0]["size_bytes"], 42);
        let offline = LogDir {
            error_code: KAFKA_STORAGE_ERROR,
            ..dir()
        };
        assert_eq!(offline.state(), "offline");
    }
}
