//! FindCoordinator (v0-6, batched keys from v4), and the one place that decides which
//! broker and shard coordinate a group (key type 0) or a transactional id (key type 1):
//! `coordinator_node` and `txn_coordinator`, which the transaction handlers use too.
//!
//! A single broker coordinates everything, so it answers with its own node id and
//! advertised address; in a cluster the live broker with the lowest id does, for both
//! key types, until the internal topics are replicated and the coordinator becomes the
//! leader of the key's partition (`__consumer_offsets` for groups,
//! `__transaction_state` for ids) — a change to `coordinator_node` alone. Within the
//! broker, the key's home shard is the owner of that partition.

use bytes::BytesMut;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::txn::{txn_partition, TXN_STATE_TOPIC};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The answer for one key.
struct Answer {
    error_code: i16,
    error_message: Option<&'static str>,
    node_id: i32,
    host: String,
    port: i32,
}

/// The broker that coordinates `key` of `key_type` (0 group, 1 transactional id).
/// Every broker of a cluster names the same one, so all members of a group and every
/// instance of a transactional id meet on one broker.
pub fn coordinator_node(shard: &Shard, key_type: i8, key: &str) -> crate::cluster::BrokerInfo {
    let _ = (key_type, key);
    let (brokers, _) = shard.broker.cluster_view();
    brokers[0].clone()
}

/// Where a transactional id is coordinated.
pub struct TxnHome {
    /// Its `__transaction_state` partition.
    pub partition: i32,
    /// The shard that owns that partition here.
    pub shard: usize,
}

/// The home of `transactional_id` on this broker, or NOT_COORDINATOR when another
/// broker coordinates it. The topic's own partition count counts, not the configured
/// one: `transaction.state.log.num.partitions` only applies at creation.
pub fn txn_coordinator(shard: &Shard, transactional_id: &str) -> Result<TxnHome, i16> {
    let node = coordinator_node(shard, KEY_TYPE_TRANSACTION, transactional_id);
    if node.node_id != shard.broker.config.node_id {
        return Err(ec::NOT_COORDINATOR);
    }
    let snap = shard.broker.metadata.snapshot();
    let topic = snap
        .topic(TXN_STATE_TOPIC)
        .ok_or(ec::COORDINATOR_NOT_AVAILABLE)?;
    let partition = txn_partition(transactional_id, topic.partitions.len() as i32);
    let placement = snap
        .placement(TXN_STATE_TOPIC, partition)
        .ok_or(ec::COORDINATOR_NOT_AVAILABLE)?;
    Ok(TxnHome {
        partition,
        shard: placement.shard,
    })
}

/// Any group id gets the coordinator, an empty one too (as Kafka: JoinGroup then
/// refuses it with INVALID_GROUP_ID); an empty transactional id is refused.
fn answer(shard: &Shard, key_type: i8, key: &str) -> Answer {
    let refuse = |code: i16, why: &'static str| Answer {
        error_code: code,
        error_message: Some(why),
        node_id: -1,
        host: String::new(),
        port: -1,
    };
    match key_type {
        KEY_TYPE_GROUP => {}
        KEY_TYPE_TRANSACTION if key.is_empty() => {
            return refuse(ec::INVALID_REQUEST, "the transactional id is empty")
        }
        KEY_TYPE_TRANSACTION => {}
        _ => return refuse(ec::INVALID_REQUEST, "unknown coordinator key type"),
    }
    let c = coordinator_node(shard, key_type, key);
    Answer {
        error_code: ec::NONE,
        error_message: None,
        node_id: c.node_id,
        host: c.host.clone(),
        port: i32::from(c.port),
    }
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
                let a = answer(shard, key_type, k);
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
        let a = answer(shard, key_type, &req.key);
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
