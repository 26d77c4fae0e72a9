//! EndTxn: commits or aborts the producer's open transaction on its coordinator
//! (`txn::coordinator::end_txn`), answered once the decision is durable.

use std::rc::Rc;

use bytes::BytesMut;
use futures::FutureExt;
use kafka_protocol::messages::{ApiKey, EndTxnRequest, EndTxnResponse, ProducerId};

use super::{decode, respond, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};
use crate::txn::state::fenced_for_version;

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 2;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: EndTxnRequest = decode(ApiKey::EndTxn, version, body)?;
    let id = req.transactional_id.to_string();
    let producer = (req.producer_id.0, req.producer_epoch);
    let commit = req.committed;
    let code = match crate::handlers::find_coordinator::txn_coordinator(&shard, &id) {
        _ if !access.transactional_id(Operation::Write, &id) => {
            ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        }
        Err(code) => code,
        Ok(home) => shard
            .run_on(home.shard, move |s| {
                async move { crate::txn::coordinator::end_txn(&s, &id, producer, commit).await }
                    .boxed_local()
            })
            .await
            .unwrap_or(Err(ec::COORDINATOR_NOT_AVAILABLE))
            .err()
            .unwrap_or(ec::NONE),
    };
    let mut resp = EndTxnResponse::default();
    resp.error_code = fenced_for_version(code, version, PRODUCER_FENCED_SINCE);
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    respond(ApiKey::EndTxn, version, &resp)
}
