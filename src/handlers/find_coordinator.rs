//! FindCoordinator (v0-6, batched keys from v4), and the one place that decides which
//! broker and shard coordinate a group (key type 0) or a transactional id (key type 1):
//! `coordinator_node` and `txn_coordinator`, which the transaction handlers use too.
//!
//! A single broker coordinates everything. In a cluster a group's coordinator is the
//! leader of its `__consumer_offsets` partition (`groups::service::coordinator_of`),
//! and a transactional id's the leader of its `__transaction_state` partition
//! (`txn_coordinator_node`); both topics are replicated quorum topics. Within the
//! broker, the key's home shard is the owner of that partition.

use bytes::BytesMut;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};
use crate::txn::{txn_partition, TXN_STATE_TOPIC};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// The answer for one key.
struct Answer {
    error_code: i16,
    error_message: Option<String>,
    node_id: i32,
    host: String,
    port: i32,
}

/// The node id of the broker that coordinates `key` of `key_type` (0 group, 1
/// transactional id); every broker of a cluster names the same one. Err: no broker can
/// coordinate it now (COORDINATOR_NOT_AVAILABLE, with why).
pub fn coordinator_node(shard: &Shard, key_type: i8, key: &str) -> Result<i32, (i16, String)> {
    if key_type == KEY_TYPE_GROUP {
        return crate::groups::service::coordinator_of(shard, key);
    }
    txn_coordinator_node(shard, key)
}

/// The broker that coordinates `transactional_id`: a single broker itself; in a cluster
/// the leader of the id's partition of the replicated `__transaction_state` (or, for a
/// member whose own unreplicated topic predates replication, the live broker with the
/// lowest id, as before).
fn txn_coordinator_node(shard: &Shard, transactional_id: &str) -> Result<i32, (i16, String)> {
    let config = &shard.broker.config;
    if shard.broker.cluster.is_none() {
        return Ok(config.node_id);
    }
    let snap = shard.broker.metadata.snapshot();
    let Some(t) = snap.topic(TXN_STATE_TOPIC) else {
        let rf = config.txn.state_log_replication_factor;
        return Err((
            ec::COORDINATOR_NOT_AVAILABLE,
            format!(
                "{TXN_STATE_TOPIC} is not created yet: it needs {rf} live brokers \
                 (transaction.state.log.replication.factor)"
            ),
        ));
    };
    if t.replication.is_empty() {
        let (brokers, _) = shard.broker.cluster_view(0);
        return Ok(brokers[0].node_id);
    }
    let p = txn_partition(transactional_id, t.partitions.len() as i32);
    match t.replication.get(p as usize).map(|r| r.leader) {
        Some(leader) if leader >= 0 => Ok(leader),
        _ => Err((
            ec::COORDINATOR_NOT_AVAILABLE,
            format!("{TXN_STATE_TOPIC}-{p} has no leader"),
        )),
    }
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
    let node = coordinator_node(shard, KEY_TYPE_TRANSACTION, transactional_id)
        .map_err(|(code, _)| code)?;
    if node != shard.broker.config.node_id {
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

/// The answer for one key, with addresses on the client's `listener`. Any group id gets
/// its coordinator, an empty one too (as Kafka: JoinGroup then refuses it with
/// INVALID_GROUP_ID); an empty transactional id is refused.
fn answer(shard: &Shard, key_type: i8, key: &str, listener: usize, access: &Access) -> Answer {
    let refuse = |error_code: i16, why: String| Answer {
        error_code,
        error_message: Some(why),
        node_id: -1,
        host: String::new(),
        port: -1,
    };
    match key_type {
        KEY_TYPE_GROUP if !access.group(Operation::Describe, key) => {
            let why = "Authorization failed: DESCRIBE on the group is needed.";
            return refuse(ec::GROUP_AUTHORIZATION_FAILED, why.into());
        }
        KEY_TYPE_GROUP => {}
        KEY_TYPE_TRANSACTION if key.is_empty() => {
            return refuse(ec::INVALID_REQUEST, "the transactional id is empty".into())
        }
        KEY_TYPE_TRANSACTION if !access.transactional_id(Operation::Describe, key) => {
            let why = "Authorization failed: DESCRIBE on the transactional id is needed.";
            return refuse(ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED, why.into());
        }
        KEY_TYPE_TRANSACTION => {}
        _ => return refuse(ec::INVALID_REQUEST, "unknown coordinator key type".into()),
    }
    let node = match coordinator_node(shard, key_type, key) {
        Ok(node) => node,
        Err((code, why)) => return refuse(code, why),
    };
    let (brokers, _) = shard.broker.cluster_view(listener);
    let Some(c) = brokers.iter().find(|b| b.node_id == node) else {
        return refuse(
            ec::COORDINATOR_NOT_AVAILABLE,
            format!("broker {node} coordinates {key:?} but is not live"),
        );
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
    access: Access,
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
                let a = answer(shard, key_type, k, listener, &access);
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
        let a = answer(shard, key_type, &req.key, listener, &access);
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
