//! Produce. The request is decoded with our zero-copy decoder (each partition's records
//! stay a slice of the request buffer), partitions are grouped by owner shard, and each
//! owner gets one message. Appends happen before `start` returns — locally, or by the
//! ordered send to the owner's mailbox — so one connection's produces keep their order.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use futures::channel::oneshot;
use futures::future::{join_all, FutureExt};
use kafka_protocol::messages::produce_response::{
    NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ProduceResponse};
use uuid::Uuid;

use super::{leader_hint, respond, str_bytes, topic_name, Outcome, Pending, RequestError};
use crate::broker::router::{ProduceItem, ProduceReply, ProduceResult, ShardMsg};
use crate::broker::shard::Shard;
use crate::metrics::{self, Counter, Stage};
use crate::protocol::errors as ec;
use crate::protocol::produce::{decode_produce_request, RECORD_BATCH_VERSION_MIN};
use crate::security::acl::{Access, Operation};
use crate::storage::legacy_format::message_set_to_batch;
use crate::storage::records::inflated_bytes_max;

/// Where a partition's result goes in the response: (topic index, partition index).
type Slot = (usize, usize);

pub fn start(
    shard: &Rc<Shard>,
    version: i16,
    body: bytes::BytesMut,
    listener: usize,
    access: &Access,
) -> Result<Pending, RequestError> {
    let decode_started = metrics::now();
    let body_bytes = body.len();
    let req = decode_produce_request(version, body).map_err(|e| RequestError::Malformed {
        api: ApiKey::Produce,
        version,
        why: e.to_string(),
    })?;
    let acks = req.acks;
    let snap = shard.broker.metadata.snapshot();
    let me = shard.broker.config.node_id;
    let mut resp = ProduceResponse::default();
    let mut groups: HashMap<usize, (Vec<ProduceItem>, Vec<Slot>)> = HashMap::new();
    // KIP-890 part 1: transactional batches only to partitions added to the
    // transaction. Checked here against what this broker knows (the ids it coordinates,
    // and verifications it already got); anything else is `deferred` and asked of the
    // coordinator, wherever it is (`txn::route`), before it is appended.
    let verify_txn = req.transactional_id.is_some();
    let coordinated_here = req.transactional_id.as_ref().is_some_and(|id| {
        crate::handlers::find_coordinator::coordinator_node(shard, 1, id) == Ok(me)
    });
    // Transaction v2 (KIP-890 part 2): a partition not yet in the transaction is added
    // on the coordinator first (`deferred` until then) instead of refused.
    let implicit_add = verify_txn && version >= crate::txn::v2::PRODUCE_SINCE;
    let mut deferred: Vec<Deferred> = Vec::new();
    let mut txn_producer: Option<(i64, i16)> = None;
    let refuse = if !matches!(acks, -1..=1) {
        Some(ec::INVALID_REQUIRED_ACKS)
    } else if req
        .transactional_id
        .as_ref()
        .is_some_and(|id| !access.transactional_id(Operation::Write, id))
    {
        Some(ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else {
        None
    };
    for (ti, topic) in req.topics.into_iter().enumerate() {
        let meta = if version >= 13 {
            snap.topic_by_id(&topic.topic_id)
        } else {
            snap.topic(&topic.name)
        };
        let mut out = TopicProduceResponse::default();
        out.name = topic_name(meta.map_or(topic.name.as_str(), |m| m.name.as_str()));
        out.topic_id = Uuid::from_bytes(topic.topic_id);
        let unknown = if version >= 13 {
            ec::UNKNOWN_TOPIC_ID
        } else {
            ec::UNKNOWN_TOPIC_OR_PARTITION
        };
        // As Kafka: clients cannot append to internal topics; only the group and
        // transaction coordinators write __consumer_offsets and __transaction_state.
        let internal = meta.is_some_and(|m| crate::txn::is_internal_topic(&m.name));
        // An unknown topic id has no name to authorize: it stays UNKNOWN_TOPIC_ID.
        let denied =
            (meta.is_some() || version < 13) && !access.topic(Operation::Write, out.name.as_str());
        for (pi, mut p) in topic.partitions.into_iter().enumerate() {
            let route = meta.map_or(Err(unknown), |m| {
                snap.route(&m.name, p.index, me).map_err(|e| {
                    if e == ec::UNKNOWN_TOPIC_OR_PARTITION {
                        unknown
                    } else {
                        e
                    }
                })
            });
            let placement = route.ok();
            let mut early = refuse.or(if denied {
                Some(ec::TOPIC_AUTHORIZATION_FAILED)
            } else if let Err(e) = route {
                Some(e)
            } else if internal {
                Some(ec::INVALID_TOPIC_EXCEPTION)
            } else {
                None
            });
            if early.is_none() && version < RECORD_BATCH_VERSION_MIN {
                early = convert_message_set(&shard.broker.config, &mut p.records).err();
            }
            if early.is_none() && holds_more_than_one_batch(p.records.as_deref()) {
                early = Some(ec::INVALID_RECORD);
            }
            let mut defer = false;
            if let (None, true, Some(m)) = (early, verify_txn, meta) {
                let producer = transactional_producer(p.records.as_deref());
                txn_producer = txn_producer.or(producer);
                match verify_transactional(shard, producer, &m.name, p.index) {
                    Err(ec::INVALID_TXN_STATE) if implicit_add || !coordinated_here => defer = true,
                    checked => early = checked.err(),
                }
            }
            out.partition_responses.push(partition_response(
                p.index,
                &ProduceResult::error(early.unwrap_or(ec::NONE), None),
            ));
            if let (None, true, Some(pl), Some(m)) = (early, defer, placement, meta) {
                deferred.push(Deferred {
                    owner: pl.shard,
                    item: ProduceItem {
                        topic: m.name.clone(),
                        partition: p.index,
                        records: p.records,
                    },
                    slot: (ti, pi),
                });
            } else if let (None, Some(pl), Some(m)) = (early, placement, meta) {
                let g = groups.entry(pl.shard).or_default();
                g.0.push(ProduceItem {
                    topic: m.name.clone(),
                    partition: p.index,
                    records: p.records,
                });
                g.1.push((ti, pi));
            }
        }
        resp.responses.push(out);
    }
    metrics::record_since(Stage::ProduceDecode, decode_started);
    let gated = txn_producer.is_some_and(|(pid, _)| crate::txn::v2::gated(pid));
    if let (Some(producer), true) = (txn_producer, gated || !deferred.is_empty()) {
        let id = req
            .transactional_id
            .map(|t| t.to_string())
            .unwrap_or_default();
        let shard = shard.clone();
        let (turn, gate) = crate::txn::v2::enter(producer.0);
        return Ok(async move {
            if let Some(turn) = turn {
                let _ = turn.await;
            }
            add_deferred(
                &shard,
                &id,
                producer,
                implicit_add,
                deferred,
                &mut groups,
                &mut resp,
            )
            .await;
            unpin_request_body(&mut groups, body_bytes);
            let waits = route(&shard, acks, groups);
            // Appends are queued: the producer's next request may go.
            drop(gate);
            finish(shard, listener, waits, resp, acks, version).await
        }
        .boxed_local());
    }
    unpin_request_body(&mut groups, body_bytes);
    let waits = route(shard, acks, groups);
    Ok(finish(shard.clone(), listener, waits, resp, acks, version).boxed_local())
}

/// A transactional batch for a partition its transaction does not hold yet (v2).
struct Deferred {
    owner: usize,
    item: ProduceItem,
    slot: Slot,
}

type Groups = HashMap<usize, (Vec<ProduceItem>, Vec<Slot>)>;
type Wait = futures::future::LocalBoxFuture<
    'static,
    (Vec<Slot>, Result<Vec<ProduceResult>, oneshot::Canceled>),
>;

/// Adds the deferred partitions to the producer's transaction on its coordinator, then
/// routes them with the rest; if the coordinator refuses, they answer its code.
async fn add_deferred(
    shard: &Rc<Shard>,
    id: &str,
    producer: (i64, i16),
    add: bool,
    deferred: Vec<Deferred>,
    groups: &mut Groups,
    resp: &mut ProduceResponse,
) {
    if deferred.is_empty() {
        return;
    }
    let partitions = deferred
        .iter()
        .map(|d| (d.item.topic.clone(), d.item.partition))
        .collect();
    // Added (transaction v2) or verified (part 1, the id coordinated elsewhere).
    let checked = crate::txn::route::ensure_in_transaction(shard, id, producer, partitions, !add)
        .await
        .map_err(crate::txn::v2::produce_code);
    match checked {
        Ok(()) => {
            for d in deferred {
                let g = groups.entry(d.owner).or_default();
                g.0.push(d.item);
                g.1.push(d.slot);
            }
        }
        Err(code) => {
            for d in deferred {
                let (ti, pi) = d.slot;
                let index = resp.responses[ti].partition_responses[pi].index;
                resp.responses[ti].partition_responses[pi] =
                    partition_response(index, &ProduceResult::error(code, None));
            }
        }
    }
}

/// Queues each owner's appends (locally, or by the ordered send to its mailbox) and
/// returns what to wait for.
fn route(shard: &Rc<Shard>, acks: i16, groups: Groups) -> Vec<Wait> {
    let mut waits = Vec::with_capacity(groups.len());
    for (owner, (items, slots)) in groups {
        if owner == shard.id {
            waits.push(
                shard
                    .produce_local(acks, items)
                    .map(move |r| (slots, Ok(r)))
                    .boxed_local(),
            );
        } else {
            let (reply, rx) = oneshot::channel();
            let sent = metrics::now();
            shard.broker.send(
                owner,
                ShardMsg::Produce {
                    acks,
                    items,
                    sent,
                    reply,
                },
            );
            waits.push(
                rx.map(move |r| {
                    let r = r.map(|reply| {
                        record_handoff(sent, &reply);
                        reply.results
                    });
                    (slots, r)
                })
                .boxed_local(),
            );
        }
    }
    waits
}

/// Waits for the appends and answers (with KIP-951 leader hints where the version has
/// them, addresses on the client's `listener`).
async fn finish(
    shard: Rc<Shard>,
    listener: usize,
    waits: Vec<Wait>,
    mut resp: ProduceResponse,
    acks: i16,
    version: i16,
) -> Result<Outcome, RequestError> {
    {
        for (slots, results) in join_all(waits).await {
            let results = results.unwrap_or_else(|_| {
                vec![
                    ProduceResult::error(
                        ec::NOT_LEADER_OR_FOLLOWER,
                        Some("shard is shutting down".into())
                    );
                    slots.len()
                ]
            });
            for ((ti, pi), r) in slots.into_iter().zip(results) {
                let index = resp.responses[ti].partition_responses[pi].index;
                resp.responses[ti].partition_responses[pi] = partition_response(index, &r);
            }
        }
        count_errors(&resp);
        if acks == 0 {
            return Ok(Outcome::NoResponse);
        }
        if version >= LEADER_HINT_VERSION_MIN {
            add_leader_hints(&shard, listener, &mut resp);
        }
        respond(ApiKey::Produce, version, &resp)
    }
}

/// Produce v0-2 carry message sets (formats v0/v1): each partition's set becomes one v2
/// batch here, on the accepting shard, before it is routed like any other. Decompression
/// is bounded as for a v2 batch of the broker's `message.max.bytes`; the owner then
/// validates the batch against the topic's own limits. Err is the partition's error code.
fn convert_message_set(
    config: &crate::config::BrokerConfig,
    records: &mut Option<bytes::BytesMut>,
) -> Result<(), i16> {
    let Some(set) = records.as_deref() else {
        return Ok(());
    };
    let inflate_max = inflated_bytes_max(config.message_max_bytes);
    let converted = message_set_to_batch(set, crate::util::now_ms(), inflate_max).map_err(|e| {
        tracing::debug!("Produce v0-2 message set refused: {e}");
        e.kafka_error_code()
    })?;
    metrics::add(Counter::ProduceConvertedRecords, converted.records as u64);
    *records = Some(converted.batch);
    Ok(())
}

/// The (producer id, epoch) of a transactional batch; None for any other. Only the
/// header is read.
fn transactional_producer(records: Option<&[u8]>) -> Option<(i64, i16)> {
    const HEADER_BYTES: usize = 61;
    let header = records
        .filter(|r| r.len() >= HEADER_BYTES)
        .and_then(crate::storage::batch::BatchHeader::parse)?;
    (header.is_transactional() && !header.is_control())
        .then_some((header.producer_id, header.producer_epoch))
}

/// A transactional batch must belong to the producer's ongoing transaction on this
/// partition (`txn::verify`); other batches pass.
fn verify_transactional(
    shard: &Shard,
    producer: Option<(i64, i16)>,
    topic: &str,
    partition: i32,
) -> Result<(), i16> {
    let Some((pid, epoch)) = producer else {
        return Ok(());
    };
    let open = &shard.broker.txn_partitions;
    match open.check(pid, epoch, topic, partition) {
        // Verified with a remote coordinator earlier in this transaction.
        Err(ec::INVALID_TXN_STATE)
            if open.remembered(pid, epoch, &(topic.to_string(), partition)) =>
        {
            Ok(())
        }
        checked => checked,
    }
}

/// Kafka's rule for Produce v3+: exactly one record batch per partition (more is
/// INVALID_RECORD). Without it one partition entry could carry a hundred thousand tiny
/// batches, each from a new idempotent producer id that the partition then remembers.
/// Only the first batch's length is read here; the owner validates the batch itself.
fn holds_more_than_one_batch(records: Option<&[u8]>) -> bool {
    const LENGTH_FIELD_END: usize = 12;
    let Some(records) = records.filter(|r| r.len() >= LENGTH_FIELD_END) else {
        return false;
    };
    let batch_length = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
    usize::try_from(batch_length)
        .is_ok_and(|len| LENGTH_FIELD_END.saturating_add(len) < records.len())
}

/// Records kept from a request are views of its whole body, and the batch cache keeps
/// them after the write: a request whose appended records are a small part of it (a few
/// bytes for a real partition, megabytes for unknown ones) would have the cache pin the
/// whole body for each few bytes it counts. Below half the body, the records are copied
/// out, so what the cache holds is at most twice what it counts.
fn unpin_request_body(
    groups: &mut HashMap<usize, (Vec<ProduceItem>, Vec<Slot>)>,
    body_bytes: usize,
) {
    let kept_bytes: usize = groups
        .values()
        .flat_map(|g| &g.0)
        .filter_map(|i| i.records.as_ref().map(|r| r.len()))
        .sum();
    if kept_bytes.saturating_mul(2) >= body_bytes {
        return;
    }
    for item in groups.values_mut().flat_map(|g| g.0.iter_mut()) {
        if let Some(records) = &mut item.records {
            *records = bytes::BytesMut::from(&records[..]);
        }
    }
}

/// The hop to the owner shard and back: from sent to the owner's receipt, plus from
/// the owner's reply to now (the owner's own work left out).
fn record_handoff(sent: Option<Instant>, reply: &ProduceReply) {
    if let (Some(sent), Some(received), Some(replied)) = (sent, reply.received, reply.replied) {
        let there = metrics::micros(sent, received);
        let back = metrics::micros(replied, Instant::now());
        metrics::record_us(Stage::ProduceHandoff, there + back);
    }
}

/// Counts each partition's error code.
fn count_errors(resp: &ProduceResponse) {
    for p in resp.responses.iter().flat_map(|t| &t.partition_responses) {
        if p.error_code != ec::NONE {
            metrics::error(API_PRODUCE, p.error_code);
        }
    }
}

const API_PRODUCE: i16 = ApiKey::Produce as i16;
/// KIP-951: current_leader and node_endpoints are tagged fields from Produce v10.
const LEADER_HINT_VERSION_MIN: i16 = 10;

/// KIP-951: partitions answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH name
/// their current leader, and the response says where those leaders listen. Nothing is
/// read when every partition succeeded.
fn add_leader_hints(shard: &Shard, listener: usize, resp: &mut ProduceResponse) {
    let hinted = resp
        .responses
        .iter()
        .flat_map(|t| &t.partition_responses)
        .any(|p| leader_hint::wants_hint(p.error_code));
    if !hinted {
        return;
    }
    let snap = shard.broker.metadata.snapshot();
    let mut leaders = Vec::new();
    for t in &mut resp.responses {
        for p in &mut t.partition_responses {
            if !leader_hint::wants_hint(p.error_code) {
                continue;
            }
            if let Some(hint) = leader_hint::leader_of(&snap, t.name.0.as_str(), p.index) {
                p.current_leader.leader_id = BrokerId(hint.leader_id);
                p.current_leader.leader_epoch = hint.leader_epoch;
                leaders.push(hint.leader_id);
            }
        }
    }
    resp.node_endpoints = leader_hint::endpoints(&shard.broker, listener, leaders)
        .into_iter()
        .map(|e| {
            let mut n = NodeEndpoint::default();
            n.node_id = BrokerId(e.node_id);
            n.host = str_bytes(&e.host);
            n.port = e.port;
            n.rack = e.rack.as_deref().map(str_bytes);
            n
        })
        .collect();
}

fn partition_response(index: i32, r: &ProduceResult) -> PartitionProduceResponse {
    let mut p = PartitionProduceResponse::default();
    p.index = index;
    p.error_code = r.error_code;
    p.base_offset = r.base_offset;
    p.log_append_time_ms = r.log_append_time_ms;
    p.log_start_offset = r.log_start_offset;
    p.error_message = r.error_message.as_deref().map(str_bytes);
    p
}

#[cfg(test)]
mod tests {
    use super::holds_more_than_one_batch;

    /// A batch header's first 12 bytes (baseOffset, batchLength) and `body` bytes.
    fn batch(body: usize) -> Vec<u8> {
        let mut b = vec![0u8; 8];
        b.extend_from_slice(&(body as i32).to_be_bytes());
        b.extend(std::iter::repeat_n(7u8, body));
        b
    }

    #[test]
    fn one_batch_per_partition() {
        assert!(!holds_more_than_one_batch(None));
        assert!(!holds_more_than_one_batch(Some(&batch(49))));
        let two = [batch(49), batch(49)].concat();
        assert!(holds_more_than_one_batch(Some(&two)));
        let trailing = [batch(49), vec![0]].concat();
        assert!(holds_more_than_one_batch(Some(&trailing)));
        // Short or lying headers are the owner's to refuse as corrupt.
        assert!(!holds_more_than_one_batch(Some(&[0; 11])));
        let mut negative = batch(49);
        negative[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(!holds_more_than_one_batch(Some(&negative)));
        let mut longer = batch(49);
        longer[8..12].copy_from_slice(&1000i32.to_be_bytes());
        assert!(!holds_more_than_one_batch(Some(&longer)));
    }
}
