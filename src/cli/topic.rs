//! `corelog topic list | describe | create | alter | delete | delete-records`, like
//! kafka-topics.sh (and kafka-delete-records.sh), over the wire protocol against any
//! Kafka-compatible broker. Configs are in `configs.rs`, log dirs in `log_dirs.rs`.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{Client, ClientError, Cluster};
use super::configs::{self, ConfigEntry, SOURCE_DEFAULT};
use super::log_dirs::{self, LogDir};

/// Versions the tools speak: old enough for any broker since Kafka 2.4, new enough for
/// topic ids and flexible encoding.
const METADATA_VERSION: i16 = 9;
const CREATE_TOPICS_VERSION: i16 = 5;
const DELETE_TOPICS_VERSION: i16 = 4;
/// v0 is Kafka 1.0's; v2 adds flexible encoding, v3 nothing new on the wire.
const CREATE_PARTITIONS_VERSIONS: (i16, i16) = (0, 3);
/// v0 is Kafka 0.11's; v2 adds flexible encoding.
const DELETE_RECORDS_VERSIONS: (i16, i16) = (0, 2);
/// How long the broker may take to create or delete topics.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// A failure the user should see: a broker error code, or no connection.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{topic}: {code_name} (error code {code}){detail}")]
    Broker {
        topic: String,
        code: i16,
        code_name: String,
        detail: String,
    },
    /// The tool will not go ahead as asked (exit 1), e.g. the group still has members.
    #[error("{0}")]
    Refused(String),
    /// The command line or its input is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
}

pub fn broker_error(topic: &str, code: i16, message: Option<&StrBytes>) -> TopicError {
    let code_name = kafka_protocol::ResponseError::try_from_code(code)
        .map_or_else(|| "UNKNOWN".to_string(), |e| format!("{e:?}"));
    let mut detail = message.map_or_else(String::new, |m| format!(": {}", m.as_str()));
    if let Some(what) = advice(code) {
        detail += &format!(" ({what})");
    }
    TopicError::Broker {
        topic: topic.to_string(),
        code,
        code_name,
        detail,
    }
}

/// What the user can do about the broker errors the tools meet most.
fn advice(code: i16) -> Option<&'static str> {
    Some(match code {
        3 => "create the topic with `corelog topic create`, or check its name",
        10 => "the batch is larger than the topic's max.message.bytes: lower --batch-size",
        5..=7 => "the partition's leader is unavailable or moved: retry in a moment",
        35 => "the broker does not speak this request version: upgrade it",
        68 => "the group still has active members: stop them first",
        69 => "no such group: `corelog group list` shows the groups",
        87 => "a record was refused (e.g. compacted topic without key)",
        _ => return None,
    })
}

/// One topic as the tools print it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    pub internal: bool,
    /// (partition, leader, replicas, isr)
    pub partitions: Vec<(i32, i32, Vec<i32>, Vec<i32>)>,
}

fn metadata(client: &mut Client, names: Option<&[String]>) -> Result<MetadataResponse, TopicError> {
    let mut req = MetadataRequest::default();
    req.allow_auto_topic_creation = false;
    req.topics = names.map(|ns| {
        ns.iter()
            .map(|n| {
                let mut t = MetadataRequestTopic::default();
                t.name = Some(TopicName(StrBytes::from_string(n.clone())));
                t
            })
            .collect()
    });
    Ok(client.call(ApiKey::Metadata, METADATA_VERSION, &req)?)
}

fn info(t: &MetadataResponseTopic) -> TopicInfo {
    let mut partitions: Vec<_> = t
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.leader_id.0,
                p.replica_nodes.iter().map(|b| b.0).collect(),
                p.isr_nodes.iter().map(|b| b.0).collect(),
            )
        })
        .collect();
    partitions.sort_by_key(|p| p.0);
    TopicInfo {
        name: t
            .name
            .as_ref()
            .map_or_else(String::new, |n| n.0.to_string()),
        internal: t.is_internal,
        partitions,
    }
}

pub fn list(client: &mut Client) -> Result<Vec<TopicInfo>, TopicError> {
    let md = metadata(client, None)?;
    let mut topics: Vec<TopicInfo> = md.topics.iter().map(info).collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(topics)
}

pub fn describe(client: &mut Client, name: &str) -> Result<TopicInfo, TopicError> {
    let md = metadata(client, Some(&[name.to_string()]))?;
    let t = md
        .topics
        .first()
        .ok_or_else(|| broker_error(name, 3, None))?;
    if t.error_code != 0 {
        return Err(broker_error(name, t.error_code, None));
    }
    Ok(info(t))
}

/// Creates `name`; `configs` are topic overrides the broker validates (INVALID_CONFIG
/// with its message when one is wrong, and then nothing is created).
pub fn create(
    client: &mut Client,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(String, String)],
) -> Result<(), TopicError> {
    let mut t = CreatableTopic::default();
    t.name = TopicName(StrBytes::from_string(name.to_string()));
    t.num_partitions = partitions;
    t.replication_factor = replication_factor;
    t.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = StrBytes::from_string(k.clone());
            c.value = Some(StrBytes::from_string(v.clone()));
            c
        })
        .collect();
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = ADMIN_TIMEOUT_MS;
    let resp: CreateTopicsResponse =
        client.call(ApiKey::CreateTopics, CREATE_TOPICS_VERSION, &req)?;
    match resp.topics.first() {
        Some(r) if r.error_code != 0 => {
            Err(broker_error(name, r.error_code, r.error_message.as_ref()))
        }
        Some(_) => Ok(()),
        None => Err(broker_error(name, -1, None)),
    }
}

pub fn delete(client: &mut Client, name: &str) -> Result<(), TopicError> {
    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![TopicName(StrBytes::from_string(name.to_string()))];
    req.timeout_ms = ADMIN_TIMEOUT_MS;
    let resp: DeleteTopicsResponse =
        client.call(ApiKey::DeleteTopics, DELETE_TOPICS_VERSION, &req)?;
    match resp.responses.first() {
        Some(r) if r.error_code != 0 => {
            Err(broker_error(name, r.error_code, r.error_message.as_ref()))
        }
        Some(_) => Ok(()),
        None => Err(broker_error(name, -1, None)),
    }
}

/// Grows `name` to `count` partitions (CreatePartitions); a broker refuses to shrink a
/// topic with INVALID_PARTITIONS.
pub fn add_partitions(client: &mut Client, name: &str, count: i32) -> Result<(), TopicError> {
    let version = client.version(ApiKey::CreatePartitions, CREATE_PARTITIONS_VERSIONS)?;
    let mut t = CreatePartitionsTopic::default();
    t.name = TopicName(StrBytes::from_string(name.to_string()));
    t.count = count;
    t.assignments = None;
    let mut req = CreatePartitionsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = ADMIN_TIMEOUT_MS;
    let resp: CreatePartitionsResponse = client.call(ApiKey::CreatePartitions, version, &req)?;
    match resp.results.first() {
        Some(r) if r.error_code != 0 => {
            Err(broker_error(name, r.error_code, r.error_message.as_ref()))
        }
        Some(_) => Ok(()),
        None => Err(broker_error(name, -1, None)),
    }
}

/// Deletes the records of `topic`/`partition` before `offset` (-1: all of them) at the
/// partition's leader; returns the new low watermark (log start offset).
pub fn delete_records(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, TopicError> {
    if offset < -1 {
        return Err(TopicError::Usage(format!(
            "--offset {offset}: expected an offset >= 0, or -1 for the high watermark"
        )));
    }
    let leaders = leaders(cluster, topic, false)?;
    let what = format!("{topic}-{partition}");
    let Some(&leader) = leaders.get(&partition) else {
        return Err(broker_error(&what, 3, None));
    };
    let client = cluster.broker(leader)?;
    let version = client.version(ApiKey::DeleteRecords, DELETE_RECORDS_VERSIONS)?;
    let mut p = DeleteRecordsPartition::default();
    p.partition_index = partition;
    p.offset = offset;
    let mut t = DeleteRecordsTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut req = DeleteRecordsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = ADMIN_TIMEOUT_MS;
    let resp: DeleteRecordsResponse = client.call(ApiKey::DeleteRecords, version, &req)?;
    let r = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| broker_error(&what, -1, None))?;
    if r.error_code != 0 {
        return Err(broker_error(&what, r.error_code, None));
    }
    Ok(r.low_watermark)
}

/// `topic  partition=P  low_watermark=N`, or the same as JSON.
pub fn render_delete_records(topic: &str, partition: i32, low: i64, json: bool) -> String {
    if json {
        serde_json::json!({"topic": topic, "partition": partition, "low_watermark": low})
            .to_string()
            + "\n"
    } else {
        format!("{topic}\tpartition={partition}\tlow_watermark={low}\n")
    }
}

/// What `topic describe` shows: the partitions, where each lives, and the configs.
#[derive(Debug, Clone)]
pub struct TopicDetail {
    pub info: TopicInfo,
    /// partition → (leader's log dir, size in bytes), when the leader lists it.
    pub dirs: std::collections::BTreeMap<i32, (String, i64)>,
    /// Every config (with `all_configs`) or only those set somewhere (source is not
    /// DEFAULT_CONFIG).
    pub configs: Vec<ConfigEntry>,
    /// partition → (adding, removing) replicas of a reassignment in progress, as
    /// kafka-topics shows them (empty against a broker without the API).
    pub reassigning: std::collections::BTreeMap<i32, (Vec<i32>, Vec<i32>)>,
}

pub fn describe_detail(
    cluster: &mut Cluster,
    name: &str,
    all_configs: bool,
) -> Result<TopicDetail, TopicError> {
    let info = describe(cluster.any(), name)?;
    let mut configs = configs::describe(cluster.any(), name)?;
    if !all_configs {
        configs.retain(|c| c.source != SOURCE_DEFAULT);
    }
    let parts = std::collections::BTreeMap::from([(
        name.to_string(),
        info.partitions.iter().map(|p| p.0).collect(),
    )]);
    let dirs: Vec<LogDir> = log_dirs::describe(cluster, Some(&parts))?;
    let by_partition = leader_dirs(&dirs, &info);
    let reassigning = super::reassign::in_progress(cluster, name)?;
    Ok(TopicDetail {
        info,
        dirs: by_partition,
        configs,
        reassigning,
    })
}

/// partition → (its leader's log dir, size in bytes) for the partitions of `info` whose
/// leader lists them in `dirs` (future replicas of a move between dirs left out).
pub fn leader_dirs(
    dirs: &[LogDir],
    info: &TopicInfo,
) -> std::collections::BTreeMap<i32, (String, i64)> {
    let mut by_partition = std::collections::BTreeMap::new();
    for (p, leader, _, _) in &info.partitions {
        let found = dirs.iter().filter(|d| d.broker == *leader).find_map(|d| {
            d.partitions
                .iter()
                .find(|x| x.topic == info.name && x.partition == *p && !x.is_future)
                .map(|x| (d.path.clone(), x.size_bytes))
        });
        if let Some(f) = found {
            by_partition.insert(*p, f);
        }
    }
    by_partition
}

/// The topic line, its configs (`\tconfig\tkey=value\tsource=..`), then one line per
/// partition with its leader's log dir and size.
pub fn render_detail_text(d: &TopicDetail) -> String {
    let mut out = render_text(std::slice::from_ref(&d.info), false);
    for c in &d.configs {
        let value = match (&c.value, c.sensitive) {
            (_, true) => "(sensitive)".to_string(),
            (Some(v), false) => v.clone(),
            (None, false) => "(null)".to_string(),
        };
        out += &format!(
            "\tconfig\t{}={}\tsource={}{}\n",
            c.name,
            value,
            configs::source_name(c.source),
            if c.read_only { "\tread-only" } else { "" }
        );
    }
    for (p, leader, replicas, isr) in &d.info.partitions {
        let (dir, size) = d.dirs.get(p).map_or(
            ("unknown".to_string(), "unknown".to_string()),
            |(dir, size)| (dir.clone(), size.to_string()),
        );
        let moving = d.reassigning.get(p).map_or_else(String::new, |(a, r)| {
            format!("\tadding_replicas={a:?}\tremoving_replicas={r:?}")
        });
        out += &format!(
            "\tpartition={p}\tleader={leader}\treplicas={replicas:?}\tisr={isr:?}{moving}\tdir={dir}\tsize_bytes={size}\n"
        );
    }
    out
}

/// `{"topics":[{..as list.., "configs":[{name,value,source,read_only,sensitive}],
/// partitions with "dir" and "size_bytes" (null when unknown)}]}`
pub fn render_detail_json(d: &TopicDetail) -> String {
    use serde_json::{json, Value};
    let configs: Vec<Value> = d
        .configs
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "value": if c.sensitive { None } else { c.value.clone() },
                "source": configs::source_name(c.source),
                "read_only": c.read_only,
                "sensitive": c.sensitive,
            })
        })
        .collect();
    let partitions: Vec<Value> = d
        .info
        .partitions
        .iter()
        .map(|(p, leader, replicas, isr)| {
            let (dir, size) = d
                .dirs
                .get(p)
                .map_or((Value::Null, Value::Null), |(dir, size)| {
                    (json!(dir), json!(size))
                });
            let mut part = json!({
                "partition": p, "leader": leader, "replicas": replicas, "isr": isr,
                "dir": dir, "size_bytes": size,
            });
            // Only while a reassignment is in progress, as in the text form.
            if let Some((adding, removing)) = d.reassigning.get(p) {
                part["adding_replicas"] = json!(adding);
                part["removing_replicas"] = json!(removing);
            }
            part
        })
        .collect();
    json!({"topics": [{
        "name": d.info.name,
        "internal": d.info.internal,
        "configs": configs,
        "partitions": partitions,
    }]})
    .to_string()
}

/// `name  partitions=N  replication=R` lines, or one per partition for describe.
pub fn render_text(topics: &[TopicInfo], per_partition: bool) -> String {
    let mut out = String::new();
    for t in topics {
        let rf = t.partitions.first().map_or(0, |p| p.2.len());
        out += &format!(
            "{}\tpartitions={}\treplication={}{}\n",
            t.name,
            t.partitions.len(),
            rf,
            if t.internal { "\tinternal" } else { "" }
        );
        if per_partition {
            for (p, leader, replicas, isr) in &t.partitions {
                out += &format!(
                    "\tpartition={p}\tleader={leader}\treplicas={replicas:?}\tisr={isr:?}\n"
                );
            }
        }
    }
    out
}

pub fn render_json(topics: &[TopicInfo]) -> String {
    let items: Vec<String> = topics
        .iter()
        .map(|t| {
            let parts: Vec<String> = t
                .partitions
                .iter()
                .map(|(p, leader, replicas, isr)| {
                    format!("{{\"partition\":{p},\"leader\":{leader},\"replicas\":{replicas:?},\"isr\":{isr:?}}}")
                })
                .collect();
            format!(
                "{{\"name\":{:?},\"internal\":{},\"partitions\":[{}]}}",
                t.name,
                t.internal,
                parts.join(",")
            )
        })
        .collect();
    format!("{{\"topics\":[{}]}}", items.join(","))
}

/// Metadata retries while a topic that was just created has no leader yet.
const LEADER_WAIT_RETRIES_MAX: u32 = 20;
const LEADER_WAIT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// partition → leader node of `topic`, waiting briefly for leaders of a new topic.
/// `auto_create` asks the broker to create a missing topic, as a producer does.
pub fn leaders(
    cluster: &mut super::client::Cluster,
    topic: &str,
    auto_create: bool,
) -> Result<std::collections::BTreeMap<i32, i32>, TopicError> {
    let names = [topic.to_string()];
    let mut attempt = 0;
    loop {
        attempt += 1;
        let md = cluster.metadata(Some(&names), auto_create)?;
        let t = md
            .topics
            .first()
            .ok_or_else(|| broker_error(topic, 3, None))?;
        let retriable = t.error_code == 5
            || (t.error_code == 0 && t.partitions.iter().any(|p| p.leader_id.0 < 0));
        if retriable && attempt < LEADER_WAIT_RETRIES_MAX {
            std::thread::sleep(LEADER_WAIT_BACKOFF);
            continue;
        }
        if t.error_code != 0 {
            return Err(broker_error(topic, t.error_code, None));
        }
        if t.partitions.is_empty() {
            return Err(broker_error(topic, 3, None));
        }
        return Ok(t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect());
    }
}
