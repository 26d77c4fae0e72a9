//! FindCoordinator (v0-6, batched keys from v4). A single broker coordinates every
//! group (key type 0), so it answers with its own node id and advertised address; in a
//! cluster the live broker with the lowest id does. Within the broker, the group's
//! home shard is found per request (`groups::service::home_shard`).
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
    error_message: Option<&'static str>,
    node_id: i32,
    host: String,
    port: i32,
}

/// Any group id gets this broker, an empty one too (as Kafka: JoinGroup then refuses it
/// with INVALID_GROUP_ID).
fn answer(shard: &Shard, key_type: i8, listener: usize) -> Answer {
    if key_type != KEY_TYPE_GROUP {
        return Answer {
            error_code: ec::COORDINATOR_NOT_AVAILABLE,
            error_message: Some(NO_TRANSACTIONS),
            node_id: -1,
            host: String::new(),
            port: -1,
        };
    }
    // In a cluster, every broker names the same coordinator, the live broker with the
    // lowest id, so all members of a group meet on one broker; a single broker names
    // itself. (Groups move with `__consumer_offsets` once it is replicated.)
    let (brokers, _) = shard.broker.cluster_view(listener);
    let c = &brokers[0];
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
    let a = answer(shard, key_type, listener);
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let mut c = Coordinator::default();
                c.key = k.clone();
                c.node_id = BrokerId(a.node_id);
                c.host = str_bytes(&a.host);
                c.port = a.port;
                c.error_code = a.error_code;
                c.error_message = a.error_message.map(str_bytes);
                c
            })
            .collect();
    } else {
        resp.error_code = a.error_code;
        resp.node_id = BrokerId(a.node_id);
        resp.host = str_bytes(&a.host);
        resp.port = a.port;
        if version >= 1 {
            resp.error_message = a.error_message.map(str_bytes);
        }
    }
    respond(ApiKey::FindCoordinator, version, &resp)
}
