//! DescribeTransactions (v0): each transactional id's state on its coordinator, as
//! kafka-transactions.sh describe shows it.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::BytesMut;
use futures::FutureExt;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId,
};

use super::{decode, respond, str_bytes, topic_name, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};
use crate::txn::state::TxnMetadata;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DescribeTransactionsRequest = decode(ApiKey::DescribeTransactions, version, body)?;
    let mut resp = DescribeTransactionsResponse::default();
    let mut seen = std::collections::HashSet::new();
    for id in &req.transactional_ids {
        let mut out = TransactionState::default();
        out.transactional_id = id.clone();
        out.producer_id = ProducerId(-1);
        out.producer_epoch = -1;
        out.transaction_start_time_ms = -1;
        out.transaction_state = str_bytes("");
        if !super::first_time(&mut seen, id.as_str()) {
            out.error_code = ec::INVALID_REQUEST;
            resp.transaction_states.push(out);
            continue;
        }
        if !access.transactional_id(Operation::Describe, id) {
            out.error_code = ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            resp.transaction_states.push(out);
            continue;
        }
        match lookup(&shard, id.to_string()).await {
            // As Kafka: topics the principal may not describe are left out.
            Ok(m) => fill(&mut out, &m, |topic| {
                access.topic(Operation::Describe, topic)
            }),
            Err(code) => out.error_code = code,
        }
        resp.transaction_states.push(out);
    }
    respond(ApiKey::DescribeTransactions, version, &resp)
}

async fn lookup(shard: &Rc<Shard>, id: String) -> Result<TxnMetadata, i16> {
    let home = crate::handlers::find_coordinator::txn_coordinator(shard, &id)?;
    shard
        .run_on(home.shard, move |s| {
            async move { s.txn.borrow().get(&id).cloned() }.boxed_local()
        })
        .await
        .ok_or(ec::COORDINATOR_NOT_AVAILABLE)?
        .ok_or(ec::TRANSACTIONAL_ID_NOT_FOUND)
}

fn fill(out: &mut TransactionState, m: &TxnMetadata, may_describe: impl Fn(&str) -> bool) {
    out.transaction_state = str_bytes(m.state.name());
    out.transaction_timeout_ms = m.timeout_ms;
    out.transaction_start_time_ms = m.start_ms;
    out.producer_id = ProducerId(m.producer_id);
    out.producer_epoch = m.producer_epoch;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in m.partitions.iter().filter(|(t, _)| may_describe(t)) {
        by_topic.entry(topic).or_default().push(*p);
    }
    out.topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut t = TopicData::default();
            t.topic = topic_name(topic);
            t.partitions = partitions;
            t
        })
        .collect();
}
