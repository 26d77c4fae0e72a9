//! Reaching a transactional id's coordinator from anywhere in the cluster: the one
//! function a partition leader or a group coordinator uses to check (or make) that
//! partitions belong to a producer's open transaction.
//!
//! - Coordinated on this broker: the coordinator runs on its home shard (one hop).
//! - Coordinated elsewhere: AddPartitionsToTxn v4 (the broker-to-broker form, KIP-890)
//!   to the coordinator. A positive verification is remembered per producer and epoch
//!   (`OpenPartitions::remember`) until a marker for the producer reaches this broker,
//!   as Kafka's partition leaders keep a verified producer's ongoing transaction; later
//!   checks of the same transaction cost no round trip.

use std::rc::Rc;
use std::time::Duration;

use futures::FutureExt;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ProducerId, TransactionalId,
};

use crate::broker::shard::Shard;
use crate::handlers::find_coordinator::{coordinator_node, txn_coordinator};
use crate::protocol::errors as ec;
use crate::replication::client::Connection;

/// The AddPartitionsToTxn version brokers send each other (batched, with verify_only).
const ADD_PARTITIONS_BROKER_VERSION: i16 = 4;
/// Bound on connecting to the coordinator and on the exchange.
const COORDINATOR_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// `coordinator_node`'s key type of a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Checks (`verify_only`) or makes (`!verify_only`: adds them, opening the transaction)
/// that `partitions` are in the open transaction of `producer` = (producer id, epoch)
/// under `transactional_id`, on its coordinator wherever it is. Err is the first error
/// code for the caller to answer: INVALID_TXN_STATE (not in the transaction),
/// INVALID_PRODUCER_EPOCH / PRODUCER_FENCED, CONCURRENT_TRANSACTIONS,
/// NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS / COORDINATOR_NOT_AVAILABLE (the
/// coordinator moved or cannot be reached now: retriable).
pub async fn ensure_in_transaction(
    shard: &Rc<Shard>,
    transactional_id: &str,
    producer: (i64, i16),
    partitions: Vec<(String, i32)>,
    verify_only: bool,
) -> Result<(), i16> {
    let node = coordinator_node(shard, KEY_TYPE_TRANSACTION, transactional_id)
        .map_err(|(code, _)| code)?;
    if node == shard.broker.config.node_id {
        return coordinate_here(
            shard,
            transactional_id.to_string(),
            producer,
            partitions,
            verify_only,
        )
        .await;
    }
    let open = &shard.broker.txn_partitions;
    if verify_only
        && partitions
            .iter()
            .all(|p| open.remembered(producer.0, producer.1, p))
    {
        return Ok(());
    }
    let code = ask(
        shard,
        node,
        transactional_id,
        producer,
        &partitions,
        verify_only,
    )
    .await;
    if code != ec::NONE {
        return Err(code);
    }
    open.remember(producer.0, producer.1, partitions);
    Ok(())
}

/// The coordinator's part, on this broker: runs on the id's home shard.
pub async fn coordinate_here(
    shard: &Rc<Shard>,
    id: String,
    producer: (i64, i16),
    partitions: Vec<(String, i32)>,
    verify_only: bool,
) -> Result<(), i16> {
    let home = txn_coordinator(shard, &id)?;
    shard
        .run_on(home.shard, move |s| {
            async move {
                if verify_only {
                    partitions
                        .iter()
                        .try_for_each(|p| super::coordinator::verify(&s, &id, producer, p))
                } else {
                    super::coordinator::add_partitions(&s, &id, producer, partitions).await
                }
            }
            .boxed_local()
        })
        .await
        .unwrap_or(Err(ec::COORDINATOR_NOT_AVAILABLE))
}

/// AddPartitionsToTxn v4 to broker `node`: the first error code of the answer, or
/// NONE. An unreachable coordinator is COORDINATOR_NOT_AVAILABLE (retriable).
async fn ask(
    shard: &Rc<Shard>,
    node: i32,
    transactional_id: &str,
    producer: (i64, i16),
    partitions: &[(String, i32)],
    verify_only: bool,
) -> i16 {
    let unreachable = |why: String| {
        tracing::debug!(
            node,
            transactional_id,
            "cannot reach the transaction coordinator: {why}"
        );
        ec::COORDINATOR_NOT_AVAILABLE
    };
    let Some(addr) = crate::replication::client::broker_addr(shard, node) else {
        return unreachable("not live".into());
    };
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (topic, partition) in partitions {
        match topics.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(t) => t.partitions.push(*partition),
            None => {
                let mut t = AddPartitionsToTxnTopic::default();
                t.name = crate::handlers::topic_name(topic);
                t.partitions.push(*partition);
                topics.push(t);
            }
        }
    }
    let mut t = AddPartitionsToTxnTransaction::default();
    t.transactional_id = TransactionalId(crate::handlers::str_bytes(transactional_id));
    t.producer_id = ProducerId(producer.0);
    t.producer_epoch = producer.1;
    t.verify_only = verify_only;
    t.topics = topics;
    let mut req = AddPartitionsToTxnRequest::default();
    req.transactions.push(t);
    let mut conn = match Connection::connect(&addr, COORDINATOR_CALL_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => return unreachable(e.why),
    };
    let resp: AddPartitionsToTxnResponse = match conn
        .call(
            ApiKey::AddPartitionsToTxn,
            ADD_PARTITIONS_BROKER_VERSION,
            &req,
            COORDINATOR_CALL_TIMEOUT,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return unreachable(e),
    };
    if resp.error_code != ec::NONE {
        return resp.error_code;
    }
    let codes = resp
        .results_by_transaction
        .iter()
        .flat_map(|r| r.topic_results.iter())
        .flat_map(|t| t.results_by_partition.iter())
        .map(|p| p.partition_error_code);
    let mut answered = 0;
    for code in codes {
        answered += 1;
        if code != ec::NONE {
            return code;
        }
    }
    if answered < partitions.len() {
        return unreachable(format!(
            "answered {answered} of {} partitions",
            partitions.len()
        ));
    }
    ec::NONE
}
