//! EndTxn: commits or aborts the producer's open transaction on its coordinator
//! (`txn::coordinator::end_txn`; v5, transaction v2: `txn::v2::end_txn`, which bumps the
//! epoch and answers the producer's next id and epoch), answered once the decision is
//! durable.

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
    // Transaction v2 (KIP-890 part 2): the epoch is bumped and the new one answered.
    let v2 = version >= crate::txn::v2::END_TXN_SINCE;
    let result = match crate::handlers::find_coordinator::txn_coordinator(&shard, &id) {
        _ if !access.transactional_id(Operation::Write, &id) => {
            Err(ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        }
        Err(code) => Err(code),
        Ok(home) => shard
            .run_on(home.shard, move |s| {
                async move {
                    if v2 {
                        crate::txn::v2::end_txn(&s, &id, producer, commit).await
                    } else {
                        crate::txn::coordinator::end_txn(&s, &id, producer, commit)
                            .await
                            .map(|()| (-1, -1))
                    }
                }
                .boxed_local()
            })
            .await
            .unwrap_or(Err(ec::COORDINATOR_NOT_AVAILABLE)),
    };
    let (code, (pid, epoch)) = match result {
        Ok(next) => (ec::NONE, next),
        Err(code) => (code, (-1, -1)),
    };
    let mut resp = EndTxnResponse::default();
    resp.error_code = fenced_for_version(code, version, PRODUCER_FENCED_SINCE);
    resp.producer_id = ProducerId(pid);
    resp.producer_epoch = epoch;
    respond(ApiKey::EndTxn, version, &resp)
}
