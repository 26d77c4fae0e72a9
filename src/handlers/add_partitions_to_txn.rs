//! AddPartitionsToTxn: v0-3 add one producer's partitions to its open transaction
//! (opening it); v4+ (what brokers send, KIP-890) carry many transactions, and with
//! `verify_only` only check that the partitions are already in them.
//!
//! Unknown partitions fail with UNKNOWN_TOPIC_OR_PARTITION and the others of the same
//! transaction with OPERATION_NOT_ATTEMPTED, as in Kafka; otherwise every partition gets
//! the coordinator's answer.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, TransactionalId,
};

use super::{decode, respond, topic_name, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};
use crate::txn::state::fenced_for_version;

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;
/// Transactions per v4+ request: brokers batch what one produce verification needs.
const TRANSACTIONS_PER_REQUEST_MAX: usize = 10_000;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: AddPartitionsToTxnRequest = decode(ApiKey::AddPartitionsToTxn, version, body)?;
    let mut resp = AddPartitionsToTxnResponse::default();
    if version <= 3 {
        let id = req.v3_and_below_transactional_id.to_string();
        let producer = (
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
        );
        resp.results_by_topic_v3_and_below = one(
            &shard,
            version,
            id,
            producer,
            &req.v3_and_below_topics,
            false,
            &access,
        )
        .await;
        return respond(ApiKey::AddPartitionsToTxn, version, &resp);
    }
    if req.transactions.len() > TRANSACTIONS_PER_REQUEST_MAX {
        resp.error_code = ec::INVALID_REQUEST;
        return respond(ApiKey::AddPartitionsToTxn, version, &resp);
    }
    // v4+ is sent by brokers (KIP-890): Kafka asks CLUSTER_ACTION for it.
    if !access.cluster(Operation::ClusterAction) {
        resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
        return respond(ApiKey::AddPartitionsToTxn, version, &resp);
    }
    for t in &req.transactions {
        let id = t.transactional_id.to_string();
        let producer = (t.producer_id.0, t.producer_epoch);
        let mut r = AddPartitionsToTxnResult::default();
        r.transactional_id = TransactionalId(super::str_bytes(&id));
        r.topic_results = one(
            &shard,
            version,
            id,
            producer,
            &t.topics,
            t.verify_only,
            &access,
        )
        .await;
        resp.results_by_transaction.push(r);
    }
    respond(ApiKey::AddPartitionsToTxn, version, &resp)
}

/// One transaction's partitions, each with its error code.
async fn one(
    shard: &Rc<Shard>,
    version: i16,
    id: String,
    producer: (i64, i16),
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    access: &Access,
) -> Vec<AddPartitionsToTxnTopicResult> {
    // Kafka: WRITE on the transactional id, then WRITE on each topic; any refusal and
    // nothing is added (the others answer OPERATION_NOT_ATTEMPTED).
    let id_denied = !access.transactional_id(Operation::Write, &id);
    let topic_denied = |topic: &str| !access.topic(Operation::Write, topic);
    let any_denied = id_denied || topics.iter().any(|t| topic_denied(&t.name));
    let snap = shard.broker.metadata.snapshot();
    // A group coordinator verifies a `__consumer_offsets` partition (TxnOffsetCommit,
    // `txn::route`); clients cannot add internal topics.
    let known = |topic: &str, p: i32| {
        (verify_only || !crate::txn::is_internal_topic(topic))
            && snap
                .topic(topic)
                .is_some_and(|m| (0..m.partitions.len() as i32).contains(&p))
    };
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect();
    let any_unknown = partitions.iter().any(|(t, p)| !known(t, *p));
    let code = if any_unknown || any_denied {
        ec::OPERATION_NOT_ATTEMPTED
    } else {
        coordinate(shard, id, producer, partitions, verify_only).await
    };
    let code = fenced_for_version(code, version, PRODUCER_FENCED_SINCE);
    topics
        .iter()
        .map(|t| {
            let mut r = AddPartitionsToTxnTopicResult::default();
            r.name = topic_name(&t.name);
            r.results_by_partition = t
                .partitions
                .iter()
                .map(|p| {
                    let mut pr = AddPartitionsToTxnPartitionResult::default();
                    pr.partition_index = *p;
                    pr.partition_error_code = if id_denied {
                        ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                    } else if topic_denied(&t.name) {
                        ec::TOPIC_AUTHORIZATION_FAILED
                    } else if known(&t.name, *p) {
                        code
                    } else {
                        ec::UNKNOWN_TOPIC_OR_PARTITION
                    };
                    pr
                })
                .collect();
            r
        })
        .collect()
}

async fn coordinate(
    shard: &Rc<Shard>,
    id: String,
    producer: (i64, i16),
    partitions: Vec<(String, i32)>,
    verify_only: bool,
) -> i16 {
    crate::txn::route::coordinate_here(shard, id, producer, partitions, verify_only)
        .await
        .err()
        .unwrap_or(ec::NONE)
}
