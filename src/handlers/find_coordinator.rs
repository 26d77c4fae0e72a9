//! FindCoordinator (v0-6, batched keys from v4). This broker coordinates every group
//! (key type 0), so it answers with its own node id and advertised address; within the
//! broker, the group's home shard is found per request (`groups::service::home_shard`).
//! Transactions (key type 1) are not coordinated yet and answer
//! COORDINATOR_NOT_AVAILABLE, which clients treat as retriable.

use bytes::BytesMut;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;

const KEY_TYPE_GROUP: i8 = 0;
const NO_TRANSACTIONS: &str = "corelog does not coordinate transactions yet";

/// (error, message, node id, host, port) for one key.
fn answer(shard: &Shard, key_type: i8, key: &str) -> (i16, Option<&'static str>, i32, String, i32) {
    let c = &shard.broker.config;
    if key_type != KEY_TYPE_GROUP {
        return (
            ec::COORDINATOR_NOT_AVAILABLE,
            Some(NO_TRANSACTIONS),
            -1,
            String::new(),
            -1,
        );
    }
    if key.is_empty() {
        return (
            ec::INVALID_REQUEST,
            Some("empty group id"),
            -1,
            String::new(),
            -1,
        );
    }
    (
        ec::NONE,
        None,
        c.node_id,
        c.advertised.host.clone(),
        i32::from(c.advertised.port),
    )
}

pub fn handle(shard: &Shard, version: i16, body: BytesMut) -> Result<Outcome, RequestError> {
    let req: FindCoordinatorRequest = decode(ApiKey::FindCoordinator, version, body)?;
    let key_type = if version >= 1 {
        req.key_type
    } else {
        KEY_TYPE_GROUP
    };
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let (error, message, node, host, port) = answer(shard, key_type, k);
                let mut c = Coordinator::default();
                c.key = k.clone();
                c.node_id = BrokerId(node);
                c.host = str_bytes(&host);
                c.port = port;
                c.error_code = error;
                c.error_message = message.map(str_bytes);
                c
            })
            .collect();
    } else {
        let (error, message, node, host, port) = answer(shard, key_type, &req.key);
        resp.error_code = error;
        resp.node_id = BrokerId(node);
        resp.host = str_bytes(&host);
        resp.port = port;
        if version >= 1 {
            resp.error_message = message.map(str_bytes);
        }
    }
    respond(ApiKey::FindCoordinator, version, &resp)
}
