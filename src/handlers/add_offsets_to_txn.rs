//! AddOffsetsToTxn: adds the group's `__consumer_offsets` partition to the producer's
//! open transaction, so that its commit or abort reaches the offsets the producer then
//! sends with TxnOffsetCommit (`groups::txn_offsets`).

use std::rc::Rc;

use bytes::BytesMut;
use futures::FutureExt;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey};

use super::{decode, respond, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::groups::offsets::OFFSETS_TOPIC;
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
    let req: AddOffsetsToTxnRequest = decode(ApiKey::AddOffsetsToTxn, version, body)?;
    let mut resp = AddOffsetsToTxnResponse::default();
    let code = if req.group_id.is_empty() {
        ec::INVALID_GROUP_ID
    } else if !access.transactional_id(Operation::Write, &req.transactional_id) {
        ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    } else if !access.group(Operation::Read, &req.group_id) {
        ec::GROUP_AUTHORIZATION_FAILED
    } else {
        add(&shard, &req).await
    };
    resp.error_code = fenced_for_version(code, version, PRODUCER_FENCED_SINCE);
    respond(ApiKey::AddOffsetsToTxn, version, &resp)
}

async fn add(shard: &Rc<Shard>, req: &AddOffsetsToTxnRequest) -> i16 {
    let id = req.transactional_id.to_string();
    let producer = (req.producer_id.0, req.producer_epoch);
    let partition = crate::groups::service::group_partition(shard, &req.group_id);
    let home = match crate::handlers::find_coordinator::txn_coordinator(shard, &id) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let parts = vec![(OFFSETS_TOPIC.to_string(), partition)];
    shard
        .run_on(home.shard, move |s| {
            async move { crate::txn::coordinator::add_partitions(&s, &id, producer, parts).await }
                .boxed_local()
        })
        .await
        .unwrap_or(Err(ec::COORDINATOR_NOT_AVAILABLE))
        .err()
        .unwrap_or(ec::NONE)
}
