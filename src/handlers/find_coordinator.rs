//! FindCoordinator (v0-6, batched keys from v4). A group's coordinator (key type 0) is
//! what `groups::service::coordinator_of` names: a single broker itself; in a cluster
//! the leader of the group's `__consumer_offsets` partition. Within that broker, the
//! group's home shard is found per request (`groups::service::home_shard`).
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

/// The answer for one key.
struct Answer {
    error_code: i16,
    error_message: Option<String>,
    node_id: i32,
    host: String,
    port: i32,
}

/// The answer for one key, with addresses on the client's `listener`. An empty group
/// id is answered too (as Kafka: JoinGroup then refuses it with INVALID_GROUP_ID).
fn answer(shard: &Shard, key_type: i8, key: &str, listener: usize) -> Answer {
    let unavailable = |error_message: String| Answer {
        error_code: ec::COORDINATOR_NOT_AVAILABLE,
        error_message: Some(error_message),
        node_id: -1,
        host: String::new(),
        port: -1,
    };
    if key_type != KEY_TYPE_GROUP {
        return unavailable(NO_TRANSACTIONS.to_string());
    }
    let node = match crate::groups::service::coordinator_of(shard, key) {
        Ok(node) => node,
        Err((_, why)) => return unavailable(why),
    };
    let (brokers, _) = shard.broker.cluster_view(listener);
    let Some(c) = brokers.iter().find(|b| b.node_id == node) else {
        return unavailable(format!("broker {node} coordinates {key:?} but is not live"));
    };
    Answer {
        error_code: ec::NONE,
        error_message: None,
        node_id: c.node_id,
        host: c.host.clone(),
        port: i32::from(c.port),
    }
}

pub fn handle(
    shard: &Shard,
    version: i16,
    body: BytesMut,
    listener: usize,
) -> Result<Outcome, RequestError> {
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
                let a = answer(shard, key_type, k, listener);
                let mut c = Coordinator::default();
                c.key = k.clone();
                c.node_id = BrokerId(a.node_id);
                c.host = str_bytes(&a.host);
                c.port = a.port;
                c.error_code = a.error_code;
                c.error_message = a.error_message.as_deref().map(str_bytes);
                c
            })
            .collect();
    } else {
        let a = answer(shard, key_type, &req.key, listener);
        resp.error_code = a.error_code;
        resp.node_id = BrokerId(a.node_id);
        resp.host = str_bytes(&a.host);
        resp.port = a.port;
        if version >= 1 {
            resp.error_message = a.error_message.as_deref().map(str_bytes);
        }
    }
    respond(ApiKey::FindCoordinator, version, &resp)
}
