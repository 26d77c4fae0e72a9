//! InitProducerId for idempotent producers: a fresh producer id with epoch 0. Producer
//! ids come from blocks reserved on disk, so they are never reused across restarts.
//! Transactions are not served yet: a transactional id is refused.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{decode, respond, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
) -> Result<Outcome, RequestError> {
    let req: InitProducerIdRequest = decode(ApiKey::InitProducerId, version, body)?;
    let mut resp = InitProducerIdResponse::default();
    resp.producer_id = ProducerId(-1);
    resp.producer_epoch = -1;
    if req.transactional_id.is_some() {
        resp.error_code = ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        return respond(ApiKey::InitProducerId, version, &resp);
    }
    let broker = shard.broker.clone();
    if let Some(cluster) = broker.cluster.clone() {
        // Ids unique across the cluster: blocks from the quorum.
        let id = match broker.producer_ids.take_from_block() {
            Some(id) => Ok(id),
            None => cluster.allocate_producer_ids().await.map(|start| {
                broker.producer_ids.add_block(start);
                broker.producer_ids.take_from_block().unwrap_or(start)
            }),
        };
        match id {
            Ok(id) => {
                resp.producer_id = ProducerId(id);
                resp.producer_epoch = 0;
            }
            Err((code, why)) => {
                tracing::warn!("no producer id block from the quorum: {why}");
                resp.error_code = if code == ec::REQUEST_TIMED_OUT {
                    ec::COORDINATOR_NOT_AVAILABLE
                } else {
                    code
                };
            }
        }
        return respond(ApiKey::InitProducerId, version, &resp);
    }
    match crate::runtime::blocking(move || broker.producer_ids.allocate_blocking()).await {
        Ok(id) => {
            resp.producer_id = ProducerId(id);
            resp.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!("cannot reserve producer ids: {e}");
            resp.error_code = ec::KAFKA_STORAGE_ERROR;
        }
    }
    respond(ApiKey::InitProducerId, version, &resp)
}
