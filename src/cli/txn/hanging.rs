//! `corelog txn find-hanging` and `corelog txn abort`.
//!
//! A transaction hangs on a partition when the partition's producer state holds it open
//! (DescribeProducers: a current transaction start offset) but nothing will ever close
//! it: the coordinator does not know the producer, knows it with another producer id,
//! has it in a state other than Ongoing/Prepare*, or does not list the partition in the
//! transaction. One open longer than `--max-transaction-timeout` is reported too: the
//! coordinator should have aborted it by then. The last stable offset of a partition
//! with a hanging transaction never moves, so read_committed consumers stall there.
//!
//! `abort` ends one such transaction as the coordinator would: WriteTxnMarkers ABORT to
//! the partition's leader, with the producer's id, epoch and coordinator epoch from
//! DescribeProducers (Kafka's `--topic --partition --start-offset` form), or given
//! directly.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use serde_json::json;

use super::super::client::Cluster;
use super::super::topic::{broker_error, TopicError};
use super::{describe_at, producers_at, str_bytes, table, Described, Producer};

const WRITE_TXN_MARKERS_VERSION: i16 = 1;
const LIST_TRANSACTIONS_VERSION: i16 = 0;
/// Kafka's default `transaction.max.timeout.ms`, in minutes, as kafka-transactions.sh's
/// `--max-transaction-timeout` defaults.
const MAX_TRANSACTION_TIMEOUT_MIN_DEFAULT: i64 = 15;

#[derive(clap::Args)]
pub struct FindHangingArgs {
    /// Partitions this broker leads (default: every partition of every topic).
    #[arg(long = "broker-id")]
    pub broker_id: Option<i32>,
    /// Partitions of this topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// One partition of --topic.
    #[arg(long, requires = "topic")]
    pub partition: Option<i32>,
    /// Minutes after which an open transaction counts as hanging whatever its
    /// coordinator says (the cluster's transaction.max.timeout.ms).
    #[arg(long = "max-transaction-timeout", default_value_t = MAX_TRANSACTION_TIMEOUT_MIN_DEFAULT)]
    pub max_timeout_min: i64,
}

#[derive(clap::Args)]
pub struct AbortArgs {
    #[arg(long)]
    pub topic: String,
    #[arg(long)]
    pub partition: i32,
    /// The first offset of the open transaction (find-hanging's StartOffset).
    #[arg(long = "start-offset", required_unless_present = "producer_id")]
    pub start_offset: Option<i64>,
    /// With --producer-epoch and --coordinator-epoch instead of --start-offset.
    #[arg(long = "producer-id", conflicts_with = "start_offset", requires_all = ["producer_epoch", "coordinator_epoch"])]
    pub producer_id: Option<i64>,
    #[arg(long = "producer-epoch")]
    pub producer_epoch: Option<i16>,
    #[arg(long = "coordinator-epoch")]
    pub coordinator_epoch: Option<i32>,
}

/// One open transaction of a partition found hanging, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hanging {
    pub topic: String,
    pub partition: i32,
    pub producer: Producer,
    /// How long the coordinator has had it open; None when it does not know it.
    pub duration_ms: Option<i64>,
    pub reason: String,
}

/// Every partition to look at, by its leader.
fn partitions_by_leader(
    cluster: &mut Cluster,
    args: &FindHangingArgs,
) -> Result<BTreeMap<i32, Vec<(String, i32)>>, TopicError> {
    let names = args.topic.clone().map(|t| vec![t]);
    let md = cluster.metadata(names.as_deref(), false)?;
    let mut out: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for t in &md.topics {
        let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        if t.error_code != 0 {
            return Err(broker_error(&name, t.error_code, None));
        }
        // Markers for offsets partitions are applied by their group coordinator;
        // their producer state is not the data path's.
        if args.topic.is_none() && t.is_internal {
            continue;
        }
        for p in &t.partitions {
            let wanted = args.partition.is_none_or(|only| only == p.partition_index)
                && args.broker_id.is_none_or(|b| b == p.leader_id.0);
            if wanted && p.leader_id.0 >= 0 {
                out.entry(p.leader_id.0)
                    .or_default()
                    .push((name.clone(), p.partition_index));
            }
        }
    }
    if let (Some(t), Some(p)) = (&args.topic, args.partition) {
        if out.is_empty() {
            return Err(TopicError::Usage(format!(
                "{t} has no partition {p} with a leader"
            )));
        }
    }
    Ok(out)
}

/// Open transactions on the chosen partitions: (topic, partition, producer).
fn open_transactions(
    cluster: &mut Cluster,
    args: &FindHangingArgs,
) -> Result<Vec<(String, i32, Producer)>, TopicError> {
    let mut open = Vec::new();
    for (leader, parts) in partitions_by_leader(cluster, args)? {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in parts {
            by_topic.entry(t).or_default().push(p);
        }
        let client = cluster.broker(leader)?;
        for (topic, ps) in by_topic {
            for (p, producer) in producers_at(client, &topic, &ps)? {
                if producer.txn_start_offset >= 0 {
                    open.push((topic.clone(), p, producer));
                }
            }
        }
    }
    Ok(open)
}

/// producer id → its transactional id's description, from every broker's coordinator.
fn coordinators_view(
    cluster: &mut Cluster,
    producer_ids: Vec<i64>,
) -> Result<HashMap<i64, Described>, TopicError> {
    let mut req = ListTransactionsRequest::default();
    req.producer_id_filters = producer_ids.into_iter().map(ProducerId).collect();
    let mut out = HashMap::new();
    for node in cluster.node_ids() {
        let client = cluster.broker(node)?;
        let resp: ListTransactionsResponse =
            client.call(ApiKey::ListTransactions, LIST_TRANSACTIONS_VERSION, &req)?;
        if resp.error_code != 0 {
            return Err(broker_error(
                &format!("broker {node}"),
                resp.error_code,
                None,
            ));
        }
        let ids: Vec<String> = resp
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.to_string())
            .collect();
        if ids.is_empty() {
            continue;
        }
        // An id that expired between the two calls is simply not known.
        for d in describe_at(client, node, &ids)?.into_iter().flatten() {
            out.insert(d.producer_id, d);
        }
    }
    Ok(out)
}

/// Why the open transaction of `producer` on (topic, partition) hangs, or None.
pub fn verdict(
    topic: &str,
    partition: i32,
    coordinator: Option<&Described>,
    now_ms: i64,
    max_timeout_ms: i64,
) -> Option<String> {
    let Some(d) = coordinator else {
        return Some("no coordinator knows the producer".into());
    };
    let open = matches!(
        d.state.as_str(),
        "Ongoing" | "PrepareCommit" | "PrepareAbort"
    );
    if !open {
        return Some(format!(
            "{} is {} on its coordinator",
            d.transactional_id, d.state
        ));
    }
    if !d
        .partitions
        .iter()
        .any(|(t, p)| t == topic && *p == partition)
    {
        return Some(format!(
            "{} does not hold {topic}-{partition}",
            d.transactional_id
        ));
    }
    if d.start_ms >= 0 && now_ms - d.start_ms > max_timeout_ms {
        return Some(format!(
            "open {} ms, past the maximum timeout",
            now_ms - d.start_ms
        ));
    }
    None
}

pub fn find(cluster: &mut Cluster, args: &FindHangingArgs) -> Result<Vec<Hanging>, TopicError> {
    let open = open_transactions(cluster, args)?;
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let mut pids: Vec<i64> = open.iter().map(|(_, _, p)| p.producer_id).collect();
    pids.sort_unstable();
    pids.dedup();
    let view = coordinators_view(cluster, pids)?;
    let now_ms = crate::util::now_ms();
    let max_timeout_ms = args.max_timeout_min.saturating_mul(60_000);
    let mut out = Vec::new();
    for (topic, partition, producer) in open {
        let d = view.get(&producer.producer_id);
        if let Some(reason) = verdict(&topic, partition, d, now_ms, max_timeout_ms) {
            out.push(Hanging {
                duration_ms: d.filter(|d| d.start_ms >= 0).map(|d| now_ms - d.start_ms),
                topic,
                partition,
                producer,
                reason,
            });
        }
    }
    Ok(out)
}

pub fn render(hs: &[Hanging], json: bool) -> String {
    if json {
        let v: Vec<_> = hs
            .iter()
            .map(|h| {
                json!({"topic": h.topic, "partition": h.partition,
                       "producer_id": h.producer.producer_id,
                       "producer_epoch": h.producer.producer_epoch,
                       "coordinator_epoch": h.producer.coordinator_epoch,
                       "start_offset": h.producer.txn_start_offset,
                       "last_timestamp": h.producer.last_timestamp,
                       "duration_ms": h.duration_ms, "reason": h.reason})
            })
            .collect();
        return serde_json::Value::from(v).to_string() + "\n";
    }
    let rows: Vec<Vec<String>> = hs
        .iter()
        .map(|h| {
            vec![
                h.topic.clone(),
                h.partition.to_string(),
                h.producer.producer_id.to_string(),
                h.producer.producer_epoch.to_string(),
                h.producer.coordinator_epoch.to_string(),
                h.producer.txn_start_offset.to_string(),
                h.producer.last_timestamp.to_string(),
                h.duration_ms
                    .map_or_else(|| "-".to_string(), |ms| (ms / 60_000).to_string()),
                h.reason.clone(),
            ]
        })
        .collect();
    table(
        &[
            "Topic",
            "Partition",
            "ProducerId",
            "ProducerEpoch",
            "CoordinatorEpoch",
            "StartOffset",
            "LastTimestamp",
            "Duration(min)",
            "Why",
        ],
        &rows,
    )
}

/// The producer to abort: given, or the one whose open transaction starts at
/// `--start-offset`.
fn target(cluster: &mut Cluster, args: &AbortArgs) -> Result<(i64, i16, i32), TopicError> {
    if let (Some(pid), Some(epoch), Some(ce)) = (
        args.producer_id,
        args.producer_epoch,
        args.coordinator_epoch,
    ) {
        return Ok((pid, epoch, ce));
    }
    let start = args.start_offset.ok_or_else(|| {
        TopicError::Usage(
            "give --start-offset, or --producer-id with --producer-epoch and --coordinator-epoch"
                .into(),
        )
    })?;
    let producers = super::describe_producers(cluster, &args.topic, &[args.partition])?;
    let found = producers
        .into_iter()
        .find(|(_, p)| p.txn_start_offset == start)
        .ok_or_else(|| {
            TopicError::Refused(format!(
                "{}-{}: no open transaction starts at offset {start} (see corelog txn find-hanging)",
                args.topic, args.partition
            ))
        })?;
    let p = found.1;
    let epoch = i16::try_from(p.producer_epoch).map_err(|_| {
        TopicError::Refused(format!("producer epoch {} out of range", p.producer_epoch))
    })?;
    Ok((p.producer_id, epoch, p.coordinator_epoch))
}

/// WriteTxnMarkers ABORT for the producer's transaction on one partition, at its leader.
pub fn abort(cluster: &mut Cluster, args: &AbortArgs) -> Result<String, TopicError> {
    let (pid, epoch, coordinator_epoch) = target(cluster, args)?;
    let leaders = super::super::topic::leaders(cluster, &args.topic, false)?;
    let leader = *leaders.get(&args.partition).ok_or_else(|| {
        TopicError::Usage(format!(
            "{} has no partition {}",
            args.topic, args.partition
        ))
    })?;
    let mut topic = WritableTxnMarkerTopic::default();
    topic.name = TopicName(str_bytes(&args.topic));
    topic.partition_indexes = vec![args.partition];
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = ProducerId(pid);
    marker.producer_epoch = epoch;
    marker.transaction_result = false;
    marker.coordinator_epoch = coordinator_epoch;
    marker.topics = vec![topic];
    let mut req = WriteTxnMarkersRequest::default();
    req.markers = vec![marker];
    let resp: WriteTxnMarkersResponse =
        cluster
            .broker(leader)?
            .call(ApiKey::WriteTxnMarkers, WRITE_TXN_MARKERS_VERSION, &req)?;
    let what = format!("{}-{}", args.topic, args.partition);
    let code = resp
        .markers
        .iter()
        .flat_map(|m| &m.topics)
        .flat_map(|t| &t.partitions)
        .map(|p| p.error_code)
        .next()
        .ok_or_else(|| TopicError::Refused(format!("{what}: the leader sent no result")))?;
    if code != 0 {
        return Err(broker_error(&what, code, None));
    }
    Ok(format!(
        "Aborted the transaction of producer {pid} (epoch {epoch}) on {what}\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(state: &str, partitions: &[(&str, i32)], start_ms: i64) -> Described {
        Described {
            transactional_id: "tx".into(),
            coordinator: 1,
            producer_id: 7,
            producer_epoch: 0,
            state: state.into(),
            timeout_ms: 60_000,
            start_ms,
            partitions: partitions
                .iter()
                .map(|(t, p)| (t.to_string(), *p))
                .collect(),
        }
    }

    #[test]
    fn an_ongoing_transaction_holding_the_partition_is_not_hanging() {
        let d = described("Ongoing", &[("t", 0)], 1_000);
        assert_eq!(verdict("t", 0, Some(&d), 2_000, 60_000), None);
        let d = described("PrepareCommit", &[("t", 0)], 1_000);
        assert_eq!(verdict("t", 0, Some(&d), 2_000, 60_000), None);
    }

    #[test]
    fn unknown_finished_foreign_and_overdue_transactions_hang() {
        assert!(verdict("t", 0, None, 0, 60_000)
            .unwrap()
            .contains("no coordinator"));
        let done = described("CompleteCommit", &[], -1);
        assert!(verdict("t", 0, Some(&done), 0, 60_000)
            .unwrap()
            .contains("CompleteCommit"));
        let other = described("Ongoing", &[("t", 1)], 1_000);
        assert!(verdict("t", 0, Some(&other), 2_000, 60_000)
            .unwrap()
            .contains("does not hold t-0"));
        let old = described("Ongoing", &[("t", 0)], 1_000);
        assert!(verdict("t", 0, Some(&old), 61_001, 60_000)
            .unwrap()
            .contains("past the maximum timeout"));
    }
}
