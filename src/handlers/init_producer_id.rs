//! InitProducerId. Without a transactional id: a fresh producer id with epoch 0 for an
//! idempotent producer (`broker::producer_ids`: never reused across restarts). With one:
//! the id's transaction coordinator answers (`txn::coordinator::init_producer_id`):
//! a new producer id, or the same id with its epoch bumped, which fences older
//! instances; an open transaction of the previous epoch is aborted first.

use std::rc::Rc;

use bytes::BytesMut;
use futures::FutureExt;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{decode, respond, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation, ResourceType};
use crate::txn::state::fenced_for_version;

/// The first InitProducerId version whose clients know PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 4;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: InitProducerIdRequest = decode(ApiKey::InitProducerId, version, body)?;
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    let result = match req.transactional_id.as_ref() {
        // As Kafka: an empty id is neither idempotent-only nor a valid transactional id.
        Some(id) if id.is_empty() => Err(ec::INVALID_REQUEST),
        Some(id) if !access.transactional_id(Operation::Write, id) => {
            Err(ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        }
        // Kafka: an idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE
        // on some topic.
        None if !access.cluster(Operation::IdempotentWrite)
            && !access.any(Operation::Write, ResourceType::Topic) =>
        {
            Err(ec::CLUSTER_AUTHORIZATION_FAILED)
        }
        None => crate::broker::producer_ids::next_producer_id(&shard.broker)
            .await
            .map(|id| (id, 0)),
        Some(id) => {
            let requested = if version >= 3 {
                (req.producer_id.0, req.producer_epoch)
            } else {
                (-1, -1)
            };
            transactional(
                &shard,
                id.to_string(),
                req.transaction_timeout_ms,
                requested,
            )
            .await
        }
    };
    match result {
        Ok((id, epoch)) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = epoch;
        }
        Err(code) => resp.error_code = fenced_for_version(code, version, PRODUCER_FENCED_SINCE),
    }
    respond(ApiKey::InitProducerId, version, &resp)
}

async fn transactional(
    shard: &Rc<Shard>,
    id: String,
    timeout_ms: i32,
    requested: (i64, i16),
) -> Result<(i64, i16), i16> {
    if timeout_ms <= 0 || timeout_ms > shard.broker.config.txn.max_timeout_ms {
        return Err(ec::INVALID_TRANSACTION_TIMEOUT);
    }
    let home = crate::handlers::find_coordinator::txn_coordinator(shard, &id)?;
    shard
        .run_on(home.shard, move |s| {
            async move {
                crate::txn::coordinator::init_producer_id(&s, &id, timeout_ms, requested).await
            }
            .boxed_local()
        })
        .await
        .unwrap_or(Err(ec::COORDINATOR_NOT_AVAILABLE))
}
