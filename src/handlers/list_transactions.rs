//! ListTransactions (v0-2): the transactional ids this broker coordinates, across its
//! shards, filtered by state names, producer ids, (v1) how long the transaction has
//! been open and (v2) a regular expression the whole id must match, as
//! kafka-transactions.sh list and find-hanging use it.

use std::rc::Rc;

use bytes::BytesMut;
use futures::FutureExt;
use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ApiKey, ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::security::acl::{Access, Operation};
use crate::txn::state::{TxnState, ALL_STATES};

/// (id, producer id, state, start time) of one transactional id.
type Listed = (String, i64, TxnState, i64);

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: ListTransactionsRequest = decode(ApiKey::ListTransactions, version, body)?;
    let mut resp = ListTransactionsResponse::default();
    let mut states = Vec::new();
    for name in &req.state_filters {
        match ALL_STATES.iter().find(|s| s.name() == name.as_str()) {
            Some(s) => states.push(*s),
            None => resp.unknown_state_filters.push(name.clone()),
        }
    }
    let producers: Vec<i64> = req.producer_id_filters.iter().map(|p| p.0).collect();
    let duration_ms = if version >= 1 {
        req.duration_filter
    } else {
        -1
    };
    // KIP-1152: an empty or null pattern lists every id; the pattern must match the
    // whole id (RE2/J syntax, as consumer-group regexes).
    let pattern = match req.transactional_id_pattern.as_deref() {
        Some(p) if version >= 2 && !p.is_empty() => {
            match crate::groups::consumer_group::compile_regex(p) {
                Ok(re) => Some(re),
                Err(_) => {
                    resp.error_code = crate::groups::consumer_group::INVALID_REGULAR_EXPRESSION;
                    return respond(ApiKey::ListTransactions, version, &resp);
                }
            }
        }
        _ => None,
    };
    let now_ms = crate::util::now_ms();
    for s in 0..shard.broker.shard_count {
        let listed: Vec<Listed> = shard
            .run_on(s, |s| {
                async move {
                    s.txn
                        .borrow()
                        .iter()
                        .map(|(id, m)| (id.clone(), m.producer_id, m.state, m.start_ms))
                        .collect()
                }
                .boxed_local()
            })
            .await
            .unwrap_or_default();
        for (id, pid, state, start_ms) in listed {
            let state_ok = states.is_empty() || states.contains(&state);
            let producer_ok = producers.is_empty() || producers.contains(&pid);
            // Kafka: a duration filter keeps transactions open at least that long.
            let duration_ok = duration_ms < 0
                || (state == TxnState::Ongoing
                    && start_ms >= 0
                    && now_ms - start_ms >= duration_ms);
            let pattern_ok = pattern.as_ref().is_none_or(|re| re.is_match(&id));
            let described = access.transactional_id(Operation::Describe, &id);
            if !(state_ok && producer_ok && duration_ok && pattern_ok && described) {
                continue;
            }
            let mut t = TransactionState::default();
            t.transactional_id = TransactionalId(str_bytes(&id));
            t.producer_id = ProducerId(pid);
            t.transaction_state = str_bytes(state.name());
            resp.transaction_states.push(t);
        }
    }
    respond(ApiKey::ListTransactions, version, &resp)
}
