//! `corelog txn list|describe|describe-producers|find-hanging|abort`: what
//! kafka-transactions.sh does, over the wire to any Kafka-compatible cluster.
//!
//! - `list`: ListTransactions to every broker (each answers for the ids it
//!   coordinates), merged.
//! - `describe`: FindCoordinator (key type transaction), then DescribeTransactions there.
//! - `describe-producers`: DescribeProducers at a partition's leader.
//! - `find-hanging` and `abort`: in `hanging.rs`.

pub mod hanging;

use std::process::ExitCode;

use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use super::client::{Client, Cluster, BROKERS_DEFAULT, BROKERS_ENV};
use super::topic::{broker_error, TopicError};

/// ListTransactions versions this tool speaks: v1 adds the duration filter, v2 the id
/// pattern.
const LIST_TRANSACTIONS_VERSIONS: (i16, i16) = (0, 2);
const DESCRIBE_TRANSACTIONS_VERSION: i16 = 0;
const DESCRIBE_PRODUCERS_VERSION: i16 = 0;
const FIND_COORDINATOR_VERSION: i16 = 3;
/// FindCoordinator key type of a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;

#[derive(clap::Args)]
pub struct TxnArgs {
    /// Broker list, host:port[,host:port...].
    #[arg(short = 'b', long = "bootstrap-server", visible_alias = "bootstrap", env = BROKERS_ENV, default_value = BROKERS_DEFAULT, global = true)]
    pub bootstrap: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text", global = true)]
    pub output: Format,
    #[command(subcommand)]
    pub action: TxnAction,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Subcommand)]
pub enum TxnAction {
    /// Transactional ids of every broker's coordinator (ListTransactions, merged).
    List {
        /// Only ids in this state (Empty, Ongoing, PrepareCommit, ...); repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only ids with this producer id; repeatable.
        #[arg(long = "producer-id")]
        producer_ids: Vec<i64>,
        /// Only transactions open at least this many ms (ListTransactions v1).
        #[arg(long = "duration-filter")]
        duration_ms: Option<i64>,
        /// Only ids matching this regular expression (ListTransactions v2).
        #[arg(long = "transactional-id-pattern")]
        pattern: Option<String>,
    },
    /// One transactional id on its coordinator, with the partitions of its transaction.
    Describe {
        #[arg(long = "transactional-id")]
        transactional_id: String,
    },
    /// The producers a partition's leader knows (DescribeProducers).
    DescribeProducers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
    },
    /// Open transactions on partitions whose coordinator does not know them as ongoing,
    /// or open longer than --max-transaction-timeout.
    FindHanging(hanging::FindHangingArgs),
    /// Aborts one hanging transaction: WriteTxnMarkers ABORT at the partition's leader.
    Abort(hanging::AbortArgs),
}

pub fn run(args: TxnArgs) -> ExitCode {
    let json = args.output == Format::Json;
    let result = Cluster::connect(&args.bootstrap)
        .map_err(TopicError::from)
        .and_then(|mut c| match args.action {
            TxnAction::List {
                states,
                producer_ids,
                duration_ms,
                pattern,
            } => {
                let filter = ListFilter {
                    states,
                    producer_ids,
                    duration_ms,
                    pattern,
                };
                list(&mut c, &filter).map(|rows| render_list(&rows, json))
            }
            TxnAction::Describe { transactional_id } => {
                describe(&mut c, &transactional_id).map(|d| render_describe(&d, json))
            }
            TxnAction::DescribeProducers { topic, partition } => {
                describe_producers(&mut c, &topic, &[partition]).map(|ps| {
                    let ps: Vec<Producer> = ps.into_iter().map(|(_, p)| p).collect();
                    render_producers(&ps, json)
                })
            }
            TxnAction::FindHanging(a) => {
                hanging::find(&mut c, &a).map(|h| hanging::render(&h, json))
            }
            TxnAction::Abort(a) => hanging::abort(&mut c, &a),
        });
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e @ (TopicError::Broker { .. } | TopicError::Refused(_))) => {
            eprintln!("corelog txn: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("corelog txn: {e}");
            ExitCode::from(2)
        }
    }
}

/// What `list` keeps.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub states: Vec<String>,
    pub producer_ids: Vec<i64>,
    pub duration_ms: Option<i64>,
    pub pattern: Option<String>,
}

/// One transactional id as ListTransactions names it, with the broker that answered
/// (its coordinator).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    pub transactional_id: String,
    pub coordinator: i32,
    pub producer_id: i64,
    pub state: String,
}

/// ListTransactions to every broker, merged and sorted by id.
pub fn list(cluster: &mut Cluster, filter: &ListFilter) -> Result<Vec<Listed>, TopicError> {
    cluster.metadata(Some(&[]), false)?;
    let needed = if filter.pattern.is_some() {
        2
    } else if filter.duration_ms.is_some() {
        1
    } else {
        0
    };
    let mut req = ListTransactionsRequest::default();
    req.state_filters = filter.states.iter().map(|s| str_bytes(s)).collect();
    req.producer_id_filters = filter.producer_ids.iter().map(|p| ProducerId(*p)).collect();
    req.duration_filter = filter.duration_ms.unwrap_or(-1);
    req.transactional_id_pattern = filter.pattern.as_deref().map(str_bytes);
    let mut out = Vec::new();
    for node in cluster.node_ids() {
        let client = cluster.broker(node)?;
        let version = client.version(
            ApiKey::ListTransactions,
            (LIST_TRANSACTIONS_VERSIONS.0, LIST_TRANSACTIONS_VERSIONS.1),
        )?;
        if version < needed {
            return Err(TopicError::Usage(format!(
                "broker {node} serves ListTransactions up to v{version}; the filter needs v{needed}"
            )));
        }
        let resp: ListTransactionsResponse =
            client.call(ApiKey::ListTransactions, version, &req)?;
        if resp.error_code != 0 {
            return Err(broker_error(
                &format!("broker {node}"),
                resp.error_code,
                None,
            ));
        }
        if let Some(unknown) = resp.unknown_state_filters.first() {
            return Err(TopicError::Usage(format!(
                "unknown transaction state {unknown:?}: give Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort or Dead"
            )));
        }
        out.extend(resp.transaction_states.iter().map(|t| Listed {
            transactional_id: t.transactional_id.to_string(),
            coordinator: node,
            producer_id: t.producer_id.0,
            state: t.transaction_state.to_string(),
        }));
    }
    out.sort();
    Ok(out)
}

/// A transactional id as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub transactional_id: String,
    pub coordinator: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub state: String,
    pub timeout_ms: i32,
    /// -1 without an open transaction.
    pub start_ms: i64,
    /// (topic, partition), sorted.
    pub partitions: Vec<(String, i32)>,
}

/// FindCoordinator for the id, then DescribeTransactions at that broker.
pub fn describe(cluster: &mut Cluster, id: &str) -> Result<Described, TopicError> {
    let mut fc = FindCoordinatorRequest::default();
    fc.key = str_bytes(id);
    fc.key_type = KEY_TYPE_TRANSACTION;
    let resp: FindCoordinatorResponse =
        cluster
            .any()
            .call(ApiKey::FindCoordinator, FIND_COORDINATOR_VERSION, &fc)?;
    if resp.error_code != 0 {
        return Err(broker_error(
            id,
            resp.error_code,
            resp.error_message.as_ref(),
        ));
    }
    let node = resp.node_id.0;
    let client = cluster.broker_at(node, resp.host.as_str(), resp.port)?;
    describe_at(client, node, &[id.to_string()])?
        .pop()
        .ok_or_else(|| TopicError::Refused(format!("{id}: the coordinator sent no answer")))?
}

/// DescribeTransactions of `ids` at their coordinator `node`: one result per id.
pub fn describe_at(
    client: &mut Client,
    node: i32,
    ids: &[String],
) -> Result<Vec<Result<Described, TopicError>>, TopicError> {
    let mut req = DescribeTransactionsRequest::default();
    req.transactional_ids = ids.iter().map(|i| TransactionalId(str_bytes(i))).collect();
    let resp: DescribeTransactionsResponse = client.call(
        ApiKey::DescribeTransactions,
        DESCRIBE_TRANSACTIONS_VERSION,
        &req,
    )?;
    Ok(resp
        .transaction_states
        .iter()
        .map(|t| {
            let id = t.transactional_id.to_string();
            if t.error_code != 0 {
                return Err(broker_error(&id, t.error_code, None));
            }
            let mut partitions: Vec<(String, i32)> = t
                .topics
                .iter()
                .flat_map(|d| d.partitions.iter().map(|p| (d.topic.to_string(), *p)))
                .collect();
            partitions.sort();
            Ok(Described {
                transactional_id: id,
                coordinator: node,
                producer_id: t.producer_id.0,
                producer_epoch: t.producer_epoch,
                state: t.transaction_state.to_string(),
                timeout_ms: t.transaction_timeout_ms,
                start_ms: t.transaction_start_time_ms,
                partitions,
            })
        })
        .collect())
}

/// One producer of a partition, as DescribeProducers gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producer {
    pub producer_id: i64,
    pub producer_epoch: i32,
    pub coordinator_epoch: i32,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    /// -1 without an open transaction on the partition.
    pub txn_start_offset: i64,
}

/// DescribeProducers for `partitions` of `topic` at each one's leader: (partition,
/// producer) pairs.
pub fn describe_producers(
    cluster: &mut Cluster,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<(i32, Producer)>, TopicError> {
    let leaders = super::topic::leaders(cluster, topic, false)?;
    let mut by_leader: std::collections::BTreeMap<i32, Vec<i32>> = Default::default();
    for p in partitions {
        let leader = leaders
            .get(p)
            .copied()
            .ok_or_else(|| TopicError::Usage(format!("{topic} has no partition {p}")))?;
        by_leader.entry(leader).or_default().push(*p);
    }
    let mut out = Vec::new();
    for (leader, ps) in by_leader {
        out.extend(producers_at(cluster.broker(leader)?, topic, &ps)?);
    }
    Ok(out)
}

/// DescribeProducers of `partitions` of `topic` at one broker (their leader).
pub fn producers_at(
    client: &mut Client,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<(i32, Producer)>, TopicError> {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    let mut t = TopicRequest::default();
    t.name = TopicName(str_bytes(topic));
    t.partition_indexes = partitions.to_vec();
    let mut req = DescribeProducersRequest::default();
    req.topics = vec![t];
    let resp: DescribeProducersResponse =
        client.call(ApiKey::DescribeProducers, DESCRIBE_PRODUCERS_VERSION, &req)?;
    let mut out = Vec::new();
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                let what = format!("{topic}-{}", p.partition_index);
                return Err(broker_error(&what, p.error_code, p.error_message.as_ref()));
            }
            out.extend(p.active_producers.iter().map(|s| {
                (
                    p.partition_index,
                    Producer {
                        producer_id: s.producer_id.0,
                        producer_epoch: s.producer_epoch,
                        coordinator_epoch: s.coordinator_epoch,
                        last_sequence: s.last_sequence,
                        last_timestamp: s.last_timestamp,
                        txn_start_offset: s.current_txn_start_offset,
                    },
                )
            }));
        }
    }
    Ok(out)
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// `rows` under `header`, each column as wide as its widest cell plus two spaces (as
/// kafka-transactions.sh prints them).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s += cell;
            } else {
                s += &format!("{cell:<w$}  ");
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out
}

pub fn render_list(rows: &[Listed], json: bool) -> String {
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({"transactional_id": r.transactional_id, "coordinator": r.coordinator,
                       "producer_id": r.producer_id, "state": r.state})
            })
            .collect();
        return serde_json::Value::from(v).to_string() + "\n";
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.transactional_id.clone(),
                r.coordinator.to_string(),
                r.producer_id.to_string(),
                r.state.clone(),
            ]
        })
        .collect();
    table(
        &[
            "TransactionalId",
            "Coordinator",
            "ProducerId",
            "TransactionState",
        ],
        &rows,
    )
}

fn partitions_text(ps: &[(String, i32)]) -> String {
    ps.iter()
        .map(|(t, p)| format!("{t}-{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn render_describe(d: &Described, json: bool) -> String {
    let duration_ms = (d.start_ms >= 0).then(|| crate::util::now_ms() - d.start_ms);
    if json {
        let parts: Vec<_> = d
            .partitions
            .iter()
            .map(|(t, p)| json!({"topic": t, "partition": p}))
            .collect();
        return json!({
            "transactional_id": d.transactional_id, "coordinator": d.coordinator,
            "producer_id": d.producer_id, "producer_epoch": d.producer_epoch,
            "state": d.state, "timeout_ms": d.timeout_ms,
            "start_time_ms": (d.start_ms >= 0).then_some(d.start_ms),
            "duration_ms": duration_ms, "partitions": parts,
        })
        .to_string()
            + "\n";
    }
    let none = || "None".to_string();
    table(
        &[
            "CoordinatorId",
            "TransactionalId",
            "ProducerId",
            "ProducerEpoch",
            "TransactionState",
            "TransactionTimeoutMs",
            "CurrentTransactionStartTimeMs",
            "TransactionDurationMs",
            "TopicPartitions",
        ],
        &[vec![
            d.coordinator.to_string(),
            d.transactional_id.clone(),
            d.producer_id.to_string(),
            d.producer_epoch.to_string(),
            d.state.clone(),
            d.timeout_ms.to_string(),
            if d.start_ms >= 0 {
                d.start_ms.to_string()
            } else {
                none()
            },
            duration_ms.map(|v| v.to_string()).unwrap_or_else(none),
            partitions_text(&d.partitions),
        ]],
    )
}

pub fn render_producers(ps: &[Producer], json: bool) -> String {
    if json {
        let v: Vec<_> = ps
            .iter()
            .map(|p| {
                json!({"producer_id": p.producer_id, "producer_epoch": p.producer_epoch,
                       "coordinator_epoch": p.coordinator_epoch, "last_sequence": p.last_sequence,
                       "last_timestamp": p.last_timestamp,
                       "current_transaction_start_offset": p.txn_start_offset})
            })
            .collect();
        return serde_json::Value::from(v).to_string() + "\n";
    }
    let rows: Vec<Vec<String>> = ps
        .iter()
        .map(|p| {
            vec![
                p.producer_id.to_string(),
                p.producer_epoch.to_string(),
                p.coordinator_epoch.to_string(),
                p.last_sequence.to_string(),
                p.last_timestamp.to_string(),
                p.txn_start_offset.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ProducerId",
            "ProducerEpoch",
            "LatestCoordinatorEpoch",
            "LastSequence",
            "LastTimestamp",
            "CurrentTransactionStartOffset",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_every_column_but_the_last() {
        let t = table(
            &["A", "Bee"],
            &[
                vec!["long-cell".into(), "x".into()],
                vec!["s".into(), "".into()],
            ],
        );
        assert_eq!(t, "A          Bee\nlong-cell  x\ns\n");
    }

    #[test]
    fn describe_text_names_partitions_and_none() {
        let d = Described {
            transactional_id: "t1".into(),
            coordinator: 3,
            producer_id: 9,
            producer_epoch: 2,
            state: "Empty".into(),
            timeout_ms: 60000,
            start_ms: -1,
            partitions: vec![("a".into(), 0), ("b".into(), 2)],
        };
        let text = render_describe(&d, false);
        let row = text.lines().nth(1).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            ["3", "t1", "9", "2", "Empty", "60000", "None", "None", "a-0,b-2"]
        );
    }
}
