//! TxnOffsetCommit: offsets a transactional producer commits for a consumer group,
//! served by the group's coordinator. The group's home shard writes them durably and
//! holds them (`groups::txn_offsets`) until the transaction's marker commits or drops
//! them; OffsetFetch does not see them before.
//!
//! The group's `__consumer_offsets` partition must already be in the producer's open
//! transaction (AddOffsetsToTxn), else INVALID_TXN_STATE: offsets no marker would ever
//! reach are refused rather than held forever. The transaction's coordinator may be
//! another broker: the check goes through `txn::route::ensure_in_transaction`. From v5
//! (transaction v2, KIP-890) the partition is added to the transaction there instead.

use std::rc::Rc;

use bytes::BytesMut;
use futures::FutureExt;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::{decode, respond, topic_name, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::groups::coordinator::OFFSET_METADATA_BYTES_MAX;
use crate::groups::offsets::OFFSETS_TOPIC;
use crate::groups::Committed;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};
use crate::txn::state::fenced_for_version;

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const PRODUCER_FENCED_SINCE: i16 = 3;

type Offsets = Vec<((String, i32), Committed)>;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: TxnOffsetCommitRequest = decode(ApiKey::TxnOffsetCommit, version, body)?;
    let snap = shard.broker.metadata.snapshot();
    let now_ms = crate::util::now_ms();
    // Per partition: an error decided here, or None when it goes to the group.
    let mut verdicts: Vec<Vec<(i32, Option<i16>)>> = Vec::with_capacity(req.topics.len());
    let mut offsets: Offsets = Vec::new();
    // Kafka: WRITE on the transactional id, READ on the group, READ on each topic.
    let denied = if !access.transactional_id(Operation::Write, &req.transactional_id) {
        Some(ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else if !access.group(Operation::Read, &req.group_id) {
        Some(ec::GROUP_AUTHORIZATION_FAILED)
    } else {
        None
    };
    for t in &req.topics {
        let known = snap.topic(&t.name).map_or(0, |m| m.partitions.len() as i32);
        let denied = denied.or_else(|| {
            (!access.topic(Operation::Read, &t.name)).then_some(ec::TOPIC_AUTHORIZATION_FAILED)
        });
        let parts = t.partitions.iter().map(|p| {
            let metadata = p.committed_metadata.as_ref().map_or("", |m| m.as_str());
            if denied.is_some() {
                return (p.partition_index, denied);
            }
            if !(0..known).contains(&p.partition_index) {
                return (p.partition_index, Some(ec::UNKNOWN_TOPIC_OR_PARTITION));
            }
            if metadata.len() > OFFSET_METADATA_BYTES_MAX {
                return (p.partition_index, Some(ec::OFFSET_METADATA_TOO_LARGE));
            }
            offsets.push((
                (t.name.to_string(), p.partition_index),
                Committed {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: metadata.to_string(),
                    commit_timestamp_ms: now_ms,
                },
            ));
            (p.partition_index, None)
        });
        verdicts.push(parts.collect());
    }
    let group_code = if req.group_id.is_empty() {
        ec::INVALID_GROUP_ID
    } else if offsets.is_empty() {
        ec::NONE
    } else {
        stage(&shard, &req, version, offsets).await
    };
    let group_code = fenced_for_version(group_code, version, PRODUCER_FENCED_SINCE);
    let mut resp = TxnOffsetCommitResponse::default();
    for (t, parts) in req.topics.iter().zip(verdicts) {
        let mut rt = TxnOffsetCommitResponseTopic::default();
        rt.name = topic_name(&t.name);
        rt.partitions = parts
            .into_iter()
            .map(|(index, error)| {
                let mut rp = TxnOffsetCommitResponsePartition::default();
                rp.partition_index = index;
                rp.error_code = error.unwrap_or(group_code);
                rp
            })
            .collect();
        resp.topics.push(rt);
    }
    respond(ApiKey::TxnOffsetCommit, version, &resp)
}

/// Checks the transaction holds the group's partition, then holds the offsets on the
/// group's home shard.
async fn stage(
    shard: &Rc<Shard>,
    req: &TxnOffsetCommitRequest,
    version: i16,
    offsets: Offsets,
) -> i16 {
    let group = req.group_id.to_string();
    let id = req.transactional_id.to_string();
    let producer = (req.producer_id.0, req.producer_epoch);
    let partition = (
        OFFSETS_TOPIC.to_string(),
        crate::groups::service::group_partition(shard, &group),
    );
    // On the transaction's coordinator, wherever it is (the group coordinator serving
    // this is often another broker). Transaction v2 adds the group's partition here
    // (there is no AddOffsetsToTxn).
    let implicit = version >= crate::txn::v2::TXN_OFFSET_COMMIT_SINCE;
    let verified =
        crate::txn::route::ensure_in_transaction(shard, &id, producer, vec![partition], !implicit)
            .await;
    if let Err(code) = verified {
        return code;
    }
    let member = if version >= 3 {
        (
            req.generation_id,
            req.member_id.to_string(),
            req.group_instance_id.as_ref().map(|s| s.to_string()),
        )
    } else {
        (-1, String::new(), None)
    };
    let home = crate::groups::service::home_shard(shard, &group);
    shard
        .run_on(home, move |s| {
            async move {
                crate::groups::txn_offsets::stage(&s, &group, producer, member, offsets).await
            }
            .boxed_local()
        })
        .await
        .unwrap_or(ec::COORDINATOR_NOT_AVAILABLE)
}
