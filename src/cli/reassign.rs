//! `corelog topic reassign`, shaped like kafka-reassign-partitions.sh: `--generate` a
//! rack-aware proposal for moving topics onto a broker list, `--execute` a reassignment
//! JSON file (optionally throttled), `--verify` it (and clear the throttles once all is
//! done), `--cancel` it, `--list` what is in progress. Kafka's JSON format:
//! `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}`.

use std::collections::{BTreeMap, BTreeSet};

use clap::{ArgGroup, Args};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::Value;

use super::client::Cluster;
use super::configs::{self, RESOURCE_BROKER};
use super::topic::{broker_error, TopicError};
use crate::cluster::placement::{self, Candidate};
// Kafka's throttle configs: broker rates (bytes/s) and the topics' throttled replicas.
use crate::replication::throttle::{
    FOLLOWER_RATE, FOLLOWER_REPLICAS, LEADER_RATE, LEADER_REPLICAS,
};

/// Only v0 exists before Kafka 4.1 (v1 adds allow_replication_factor_change).
const REASSIGN_VERSIONS: (i16, i16) = (0, 0);
/// How long the broker may take to commit each reassignment through the quorum.
const REASSIGN_TIMEOUT_MS: i32 = 30_000;

#[derive(Args, Debug)]
#[command(
    group(ArgGroup::new("mode").required(true).args(["generate", "execute", "verify", "cancel", "list"])),
    after_help = "Examples:\n  corelog topic reassign --generate --topics-to-move-json-file move.json --broker-list 1,2,3\n  corelog topic reassign --execute --reassignment-json-file plan.json --throttle 10000000\n  corelog topic reassign --verify --reassignment-json-file plan.json\n  corelog topic reassign --cancel --reassignment-json-file plan.json\n  corelog topic reassign --list\n\nmove.json: {\"version\":1,\"topics\":[{\"topic\":\"weblogs\"}]}\nplan.json: {\"version\":1,\"partitions\":[{\"topic\":\"weblogs\",\"partition\":0,\"replicas\":[2,3,1]}]}"
)]
pub struct ReassignArgs {
    /// Propose an assignment of the topics in --topics-to-move-json-file over --broker-list.
    #[arg(long)]
    pub generate: bool,
    /// Start the reassignment in --reassignment-json-file.
    #[arg(long)]
    pub execute: bool,
    /// Report each partition of --reassignment-json-file; clears throttles once all are done.
    #[arg(long)]
    pub verify: bool,
    /// Cancel the reassignments of --reassignment-json-file (back to the original replicas).
    #[arg(long)]
    pub cancel: bool,
    /// List the reassignments in progress.
    #[arg(long)]
    pub list: bool,
    #[arg(long, value_name = "FILE")]
    pub topics_to_move_json_file: Option<std::path::PathBuf>,
    /// Broker ids to place replicas on, e.g. 1,2,3.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub broker_list: Vec<i32>,
    #[arg(long, value_name = "FILE")]
    pub reassignment_json_file: Option<std::path::PathBuf>,
    /// Throttle the catch-up of moving replicas to this many bytes/s (with --execute).
    #[arg(long, value_name = "BYTES/S", default_value_t = -1, allow_negative_numbers = true)]
    pub throttle: i64,
}

/// One partition's replica list, as in Kafka's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
}

fn usage(why: impl Into<String>) -> TopicError {
    TopicError::Usage(why.into())
}

fn read_json(path: &Option<std::path::PathBuf>, flag: &str) -> Result<Value, TopicError> {
    let path = path
        .as_ref()
        .ok_or_else(|| usage(format!("this mode needs --{flag}")))?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| usage(format!("{} is not JSON: {e}", path.display())))
}

/// Parses `{"version":1,"partitions":[{"topic","partition","replicas"}]}`.
pub fn parse_plan(v: &Value) -> Result<Vec<Move>, TopicError> {
    let bad = |why: &str| usage(format!("reassignment JSON: {why}"));
    let parts = v["partitions"]
        .as_array()
        .ok_or_else(|| bad("no \"partitions\" array"))?;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let topic = p["topic"]
            .as_str()
            .ok_or_else(|| bad("a partition without \"topic\""))?;
        let partition = p["partition"]
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| bad("a partition without a \"partition\" number"))?;
        let replicas = p["replicas"]
            .as_array()
            .ok_or_else(|| bad("a partition without \"replicas\""))?
            .iter()
            .map(|r| r.as_i64().and_then(|n| i32::try_from(n).ok()))
            .collect::<Option<Vec<i32>>>()
            .ok_or_else(|| bad("replicas must be broker ids"))?;
        if out
            .iter()
            .any(|m: &Move| m.topic == topic && m.partition == partition)
        {
            return Err(bad(&format!("{topic}-{partition} is listed twice")));
        }
        out.push(Move {
            topic: topic.to_string(),
            partition,
            replicas,
        });
    }
    Ok(out)
}

/// Kafka's JSON, keys in Kafka's order (serde_json's maps would sort them).
pub fn render_plan(moves: &[Move]) -> String {
    let partitions: Vec<String> = moves
        .iter()
        .map(|m| {
            let dirs = vec!["\"any\""; m.replicas.len()].join(",");
            format!(
                "{{\"topic\":{},\"partition\":{},\"replicas\":[{}],\"log_dirs\":[{dirs}]}}",
                Value::from(m.topic.as_str()),
                m.partition,
                join(&m.replicas)
            )
        })
        .collect();
    format!(
        "{{\"version\":1,\"partitions\":[{}]}}",
        partitions.join(",")
    )
}

/// The current replica lists of `topics` (all partitions), and the brokers with racks.
fn current(
    cluster: &mut Cluster,
    topics: &[String],
) -> Result<(Vec<Move>, Vec<Candidate>), TopicError> {
    let md = cluster.metadata(Some(topics), false)?;
    let mut moves = Vec::new();
    for t in &md.topics {
        let name = t
            .name
            .as_ref()
            .map_or_else(String::new, |n| n.0.to_string());
        if t.error_code != 0 {
            return Err(broker_error(&name, t.error_code, None));
        }
        let mut parts: Vec<Move> = t
            .partitions
            .iter()
            .map(|p| Move {
                topic: name.clone(),
                partition: p.partition_index,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
            })
            .collect();
        parts.sort_by_key(|m| m.partition);
        moves.extend(parts);
    }
    let brokers = md
        .brokers
        .iter()
        .map(|b| Candidate {
            node_id: b.node_id.0,
            rack: b.rack.as_ref().map(|r| r.to_string()),
        })
        .collect();
    Ok((moves, brokers))
}

fn current_of(cluster: &mut Cluster, moves: &[Move]) -> Result<Vec<Move>, TopicError> {
    let topics: BTreeSet<String> = moves.iter().map(|m| m.topic.clone()).collect();
    let topics: Vec<String> = topics.into_iter().collect();
    let (all, _) = current(cluster, &topics)?;
    Ok(moves
        .iter()
        .filter_map(|m| {
            all.iter()
                .find(|c| c.topic == m.topic && c.partition == m.partition)
                .cloned()
        })
        .collect())
}

/// `--generate`: the current assignment and a rack-aware proposal over `broker_list`
/// with each topic's replication factor (Kafka's placement, fixed start for a stable
/// proposal).
pub fn generate(
    cluster: &mut Cluster,
    to_move: &Value,
    broker_list: &[i32],
) -> Result<String, TopicError> {
    let topics: Vec<String> = to_move["topics"]
        .as_array()
        .ok_or_else(|| usage("topics-to-move JSON: no \"topics\" array"))?
        .iter()
        .map(|t| t["topic"].as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| usage("topics-to-move JSON: an entry without \"topic\""))?;
    if broker_list.is_empty() {
        return Err(usage("--generate needs --broker-list"));
    }
    let (now, brokers) = current(cluster, &topics)?;
    let candidates: Vec<Candidate> = broker_list
        .iter()
        .map(|id| {
            brokers
                .iter()
                .find(|b| b.node_id == *id)
                .cloned()
                .ok_or_else(|| usage(format!("broker {id} is not a live broker")))
        })
        .collect::<Result<_, _>>()?;
    let mut proposed = Vec::new();
    for topic in &topics {
        let parts: Vec<&Move> = now.iter().filter(|m| &m.topic == topic).collect();
        let rf = parts.first().map_or(1, |m| m.replicas.len()) as i16;
        let lists = placement::assign(&candidates, 0, parts.len() as i32, rf, 0, 0)
            .map_err(TopicError::Refused)?;
        for (m, replicas) in parts.iter().zip(lists) {
            proposed.push(Move {
                topic: m.topic.clone(),
                partition: m.partition,
                replicas,
            });
        }
    }
    Ok(format!(
        "Current partition replica assignment\n{}\n\nProposed partition reassignment configuration\n{}\n",
        render_plan(&now),
        render_plan(&proposed)
    ))
}

/// A partition's answer: (topic, partition, done or the broker's error).
type PartitionOutcome = (String, i32, Result<(), TopicError>);
/// partition → (adding, removing) replicas of a reassignment in progress.
pub type Moving = BTreeMap<i32, (Vec<i32>, Vec<i32>)>;

/// Sends the reassignments (`replicas: None` cancels); errors per partition.
fn alter(
    cluster: &mut Cluster,
    moves: &[(String, i32, Option<Vec<i32>>)],
) -> Result<Vec<PartitionOutcome>, TopicError> {
    let client = cluster.any();
    let version = client.version(ApiKey::AlterPartitionReassignments, REASSIGN_VERSIONS)?;
    let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
    for (topic, partition, replicas) in moves {
        let mut p = ReassignablePartition::default();
        p.partition_index = *partition;
        p.replicas = replicas
            .as_ref()
            .map(|r| r.iter().map(|&b| BrokerId(b)).collect());
        by_topic.entry(topic).or_default().push(p);
    }
    let mut req = AlterPartitionReassignmentsRequest::default();
    req.timeout_ms = REASSIGN_TIMEOUT_MS;
    req.topics = by_topic
        .into_iter()
        .map(|(name, partitions)| {
            let mut t = ReassignableTopic::default();
            t.name = TopicName(StrBytes::from_string(name.to_string()));
            t.partitions = partitions;
            t
        })
        .collect();
    let resp: AlterPartitionReassignmentsResponse =
        client.call(ApiKey::AlterPartitionReassignments, version, &req)?;
    if resp.error_code != 0 {
        return Err(broker_error(
            "",
            resp.error_code,
            resp.error_message.as_ref(),
        ));
    }
    let mut out = Vec::new();
    for t in resp.responses {
        for p in t.partitions {
            let name = format!("{}-{}", t.name.as_str(), p.partition_index);
            let r = if p.error_code == 0 {
                Ok(())
            } else {
                Err(broker_error(&name, p.error_code, p.error_message.as_ref()))
            };
            out.push((t.name.to_string(), p.partition_index, r));
        }
    }
    Ok(out)
}

/// Reassignments in progress: (topic, partition) → (replicas, adding, removing).
pub type Ongoing = BTreeMap<(String, i32), (Vec<i32>, Vec<i32>, Vec<i32>)>;

/// ListPartitionReassignments for `topics` (every topic when None).
pub fn list_ongoing(
    cluster: &mut Cluster,
    topics: Option<&BTreeMap<String, Vec<i32>>>,
) -> Result<Ongoing, TopicError> {
    let client = cluster.any();
    let version = client.version(ApiKey::ListPartitionReassignments, REASSIGN_VERSIONS)?;
    let mut req = ListPartitionReassignmentsRequest::default();
    req.timeout_ms = REASSIGN_TIMEOUT_MS;
    req.topics = topics.map(|ts| {
        ts.iter()
            .map(|(name, parts)| {
                let mut t = ListPartitionReassignmentsTopics::default();
                t.name = TopicName(StrBytes::from_string(name.clone()));
                t.partition_indexes = parts.clone();
                t
            })
            .collect()
    });
    let resp: ListPartitionReassignmentsResponse =
        client.call(ApiKey::ListPartitionReassignments, version, &req)?;
    if resp.error_code != 0 {
        return Err(broker_error(
            "",
            resp.error_code,
            resp.error_message.as_ref(),
        ));
    }
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    let mut out = Ongoing::new();
    for t in &resp.topics {
        for p in &t.partitions {
            out.insert(
                (t.name.to_string(), p.partition_index),
                (
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                ),
            );
        }
    }
    Ok(out)
}

/// partition → (adding, removing) of `topic`'s reassignments in progress; empty from
/// a broker that does not serve ListPartitionReassignments.
pub fn in_progress(cluster: &mut Cluster, topic: &str) -> Result<Moving, TopicError> {
    let client = cluster.any();
    if client
        .version(ApiKey::ListPartitionReassignments, REASSIGN_VERSIONS)
        .is_err()
    {
        return Ok(BTreeMap::new());
    }
    let ongoing = list_ongoing(cluster, None)?;
    Ok(ongoing
        .into_iter()
        .filter(|((t, _), _)| t == topic)
        .map(|((_, p), (_, adding, removing))| (p, (adding, removing)))
        .collect())
}

fn join(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// `p:b,...` entries of `moves` for the throttled-replica topic configs of `topic`.
fn throttled(entries: impl Iterator<Item = (i32, i32)>) -> String {
    let set: BTreeSet<(i32, i32)> = entries.collect();
    set.iter()
        .map(|(p, b)| format!("{p}:{b}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Kafka's throttles for a reassignment: the leaders' side on every current replica,
/// the followers' side on every replica being added, and the rate on every broker
/// involved.
fn set_throttles(
    cluster: &mut Cluster,
    moves: &[Move],
    now: &[Move],
    rate: i64,
) -> Result<String, TopicError> {
    let mut out = String::new();
    let topics: BTreeSet<&str> = moves.iter().map(|m| m.topic.as_str()).collect();
    let mut brokers: BTreeSet<i32> = BTreeSet::new();
    for topic in topics {
        let pairs = |f: &dyn Fn(&Move, &Move) -> Vec<i32>| {
            throttled(
                moves
                    .iter()
                    .filter(|m| m.topic == topic)
                    .filter_map(|m| {
                        let c = now
                            .iter()
                            .find(|c| c.topic == m.topic && c.partition == m.partition)?;
                        Some(
                            f(m, c)
                                .into_iter()
                                .map(|b| (m.partition, b))
                                .collect::<Vec<_>>(),
                        )
                    })
                    .flatten(),
            )
        };
        let leaders = pairs(&|_, c| c.replicas.clone());
        let followers = pairs(&|m, c| {
            m.replicas
                .iter()
                .copied()
                .filter(|r| !c.replicas.contains(r))
                .collect()
        });
        let mut set = vec![(LEADER_REPLICAS.to_string(), leaders)];
        if !followers.is_empty() {
            set.push((FOLLOWER_REPLICAS.to_string(), followers));
        }
        configs::alter(cluster.any(), topic, &set, &[])?;
        out += &format!("Throttled replicas set on topic {topic}\n");
    }
    for m in moves {
        brokers.extend(&m.replicas);
    }
    for c in now.iter() {
        brokers.extend(&c.replicas);
    }
    let rates = [
        (LEADER_RATE.to_string(), rate.to_string()),
        (FOLLOWER_RATE.to_string(), rate.to_string()),
    ];
    for &b in &brokers {
        configs::alter_resource(
            cluster.broker(b)?,
            RESOURCE_BROKER,
            &b.to_string(),
            &rates,
            &[],
        )?;
    }
    out += &format!(
        "The inter-broker throttle limit was set to {rate} B/s on brokers {}\n",
        join(&brokers.into_iter().collect::<Vec<_>>())
    );
    Ok(out)
}

/// `--execute`: prints the current assignment (for a rollback), sets throttles when
/// asked, then starts every reassignment.
pub fn execute(cluster: &mut Cluster, plan: &Value, throttle: i64) -> Result<String, TopicError> {
    let moves = parse_plan(plan)?;
    let now = current_of(cluster, &moves)?;
    let mut out = format!(
        "Current partition replica assignment\n\n{}\n\nSave this to use as the --reassignment-json-file option during rollback\n",
        render_plan(&now)
    );
    if throttle >= 0 {
        out += &set_throttles(cluster, &moves, &now, throttle)?;
    }
    let calls: Vec<(String, i32, Option<Vec<i32>>)> = moves
        .iter()
        .map(|m| (m.topic.clone(), m.partition, Some(m.replicas.clone())))
        .collect();
    let mut failed = Vec::new();
    for (topic, partition, r) in alter(cluster, &calls)? {
        match r {
            Ok(()) => {
                out += &format!(
                    "Successfully started partition reassignment for {topic}-{partition}\n"
                )
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    finish(out, failed)
}

fn finish(out: String, failed: Vec<String>) -> Result<String, TopicError> {
    if failed.is_empty() {
        return Ok(out);
    }
    print!("{out}");
    Err(TopicError::Refused(failed.join("\n")))
}

/// `--verify`: each partition's state; once every one is complete, the throttles go.
pub fn verify(cluster: &mut Cluster, plan: &Value) -> Result<String, TopicError> {
    let moves = parse_plan(plan)?;
    let mut wanted: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for m in &moves {
        wanted.entry(m.topic.clone()).or_default().push(m.partition);
    }
    let ongoing = list_ongoing(cluster, Some(&wanted))?;
    let now = current_of(cluster, &moves)?;
    let mut out = "Status of partition reassignment:\n".to_string();
    let mut all_done = true;
    for m in &moves {
        let name = format!("{}-{}", m.topic, m.partition);
        if ongoing.contains_key(&(m.topic.clone(), m.partition)) {
            all_done = false;
            out += &format!("Reassignment of partition {name} is still in progress.\n");
            continue;
        }
        match now
            .iter()
            .find(|c| c.topic == m.topic && c.partition == m.partition)
        {
            Some(c) if c.replicas == m.replicas => {
                out += &format!("Reassignment of partition {name} is completed.\n");
            }
            Some(c) => {
                out += &format!(
                    "There is no active reassignment of partition {name}, but replica set is {} rather than {}.\n",
                    join(&c.replicas),
                    join(&m.replicas)
                );
            }
            None => out += &format!("Partition {name} does not exist.\n"),
        }
    }
    if all_done {
        out += &clear_throttles(cluster, &moves)?;
    }
    Ok(out)
}

/// Removes the throttle configs Kafka's tool sets: the topics' throttled replicas and
/// every live broker's rates.
fn clear_throttles(cluster: &mut Cluster, moves: &[Move]) -> Result<String, TopicError> {
    let topics: BTreeSet<&str> = moves.iter().map(|m| m.topic.as_str()).collect();
    let replica_keys = [LEADER_REPLICAS.to_string(), FOLLOWER_REPLICAS.to_string()];
    for topic in &topics {
        configs::alter(cluster.any(), topic, &[], &replica_keys)?;
    }
    cluster.metadata(Some(&[]), false)?;
    let brokers = cluster
        .reachable("its throttle rates are not cleared (run --verify again once it is back)")?;
    let rate_keys = [LEADER_RATE.to_string(), FOLLOWER_RATE.to_string()];
    for &b in &brokers {
        configs::alter_resource(
            cluster.broker(b)?,
            RESOURCE_BROKER,
            &b.to_string(),
            &[],
            &rate_keys,
        )?;
    }
    Ok(format!(
        "\nClearing broker-level throttles on brokers {}\nClearing topic-level throttles on topics {}\n",
        join(&brokers),
        topics.into_iter().collect::<Vec<_>>().join(",")
    ))
}

/// `--cancel`: back to the original replicas for every partition of the plan.
pub fn cancel(cluster: &mut Cluster, plan: &Value) -> Result<String, TopicError> {
    let moves = parse_plan(plan)?;
    let calls: Vec<(String, i32, Option<Vec<i32>>)> = moves
        .iter()
        .map(|m| (m.topic.clone(), m.partition, None))
        .collect();
    let mut out = String::new();
    let mut failed = Vec::new();
    for (topic, partition, r) in alter(cluster, &calls)? {
        match r {
            Ok(()) => {
                out += &format!(
                    "Successfully cancelled partition reassignment for {topic}-{partition}\n"
                )
            }
            Err(e) => failed.push(e.to_string()),
        }
    }
    finish(out, failed)
}

/// `--list`: every reassignment in progress.
pub fn list(cluster: &mut Cluster) -> Result<String, TopicError> {
    let ongoing = list_ongoing(cluster, None)?;
    if ongoing.is_empty() {
        return Ok("No partition reassignments found.\n".into());
    }
    let mut out = "Current partition reassignments:\n".to_string();
    for ((topic, partition), (replicas, adding, removing)) in &ongoing {
        out += &format!(
            "{topic}-{partition}: replicas: {}. adding: {}. removing: {}.\n",
            join(replicas),
            join(adding),
            join(removing)
        );
    }
    Ok(out)
}

/// Runs the mode `args` selects.
pub fn run(cluster: &mut Cluster, args: &ReassignArgs) -> Result<String, TopicError> {
    if args.generate {
        let to_move = read_json(&args.topics_to_move_json_file, "topics-to-move-json-file")?;
        return generate(cluster, &to_move, &args.broker_list);
    }
    if args.list {
        return list(cluster);
    }
    let plan = read_json(&args.reassignment_json_file, "reassignment-json-file")?;
    if args.execute {
        execute(cluster, &plan, args.throttle)
    } else if args.verify {
        verify(cluster, &plan)
    } else {
        cancel(cluster, &plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_and_render_in_kafkas_format() {
        let v: Value = serde_json::from_str(
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3,1]},{"topic":"u","partition":2,"replicas":[1],"log_dirs":["any"]}]}"#,
        )
        .unwrap();
        let moves = parse_plan(&v).unwrap();
        assert_eq!(
            moves,
            [
                Move {
                    topic: "t".into(),
                    partition: 0,
                    replicas: vec![2, 3, 1]
                },
                Move {
                    topic: "u".into(),
                    partition: 2,
                    replicas: vec![1]
                },
            ]
        );
        let again: Value = serde_json::from_str(&render_plan(&moves)).unwrap();
        assert_eq!(parse_plan(&again).unwrap(), moves);
        assert_eq!(
            again["partitions"][0]["log_dirs"],
            serde_json::json!(["any", "any", "any"])
        );
        for bad in [
            r#"{"version":1}"#,
            r#"{"partitions":[{"partition":0,"replicas":[1]}]}"#,
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":["a"]}]}"#,
            r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#,
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            assert!(matches!(parse_plan(&v), Err(TopicError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn throttled_replica_lists_are_sorted_and_distinct() {
        assert_eq!(throttled([(1, 3), (0, 2), (1, 3)].into_iter()), "0:2,1:3");
        assert_eq!(throttled(std::iter::empty()), "");
    }
}
