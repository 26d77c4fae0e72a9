//! OffsetForLeaderEpoch (KIP-101, KIP-320): where a leader epoch ended on this replica,
//! from each partition's leader epoch cache on its owner shard. Consumers ask it after a
//! leader change to detect a truncated log; followers (cluster phase 4) to truncate
//! exactly the divergent suffix.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::BytesMut;
use futures::future::{join_all, FutureExt};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{decode, respond, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

/// (topic, partition, current leader epoch, requested epoch) for one owner, and where
/// each answer goes.
type Group = (Vec<(String, i32, i32, i32)>, Vec<(usize, usize)>);

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: OffsetForLeaderEpochRequest = decode(ApiKey::OffsetForLeaderEpoch, version, body)?;
    let snap = shard.broker.metadata.snapshot();
    let mut resp = OffsetForLeaderEpochResponse::default();
    let mut groups: HashMap<usize, Group> = HashMap::new();
    // Kafka: a follower (replica id >= 0, v3+) needs CLUSTER_ACTION, a client DESCRIBE.
    let follower_denied = req.replica_id.0 >= 0 && !access.cluster(Operation::ClusterAction);
    for (ti, t) in req.topics.iter().enumerate() {
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = t.topic.clone();
        let denied = if req.replica_id.0 >= 0 {
            follower_denied.then_some(ec::CLUSTER_AUTHORIZATION_FAILED)
        } else {
            let ok = access.topic(Operation::Describe, t.topic.0.as_str());
            (!ok).then_some(ec::TOPIC_AUTHORIZATION_FAILED)
        };
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut r = EpochEndOffset::default();
            r.partition = p.partition;
            r.leader_epoch = -1;
            r.end_offset = -1;
            match snap.route(t.topic.0.as_str(), p.partition, shard.broker.config.node_id) {
                _ if denied.is_some() => r.error_code = denied.unwrap_or_default(),
                Err(code) => r.error_code = code,
                Ok(pl) => {
                    let g = groups.entry(pl.shard).or_default();
                    g.0.push((
                        t.topic.0.to_string(),
                        p.partition,
                        p.current_leader_epoch,
                        p.leader_epoch,
                    ));
                    g.1.push((ti, pi));
                }
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    let asks = groups.into_iter().map(|(owner, (items, slots))| {
        let shard = shard.clone();
        async move {
            let n = items.len();
            let answers = shard
                .run_on(owner, move |s| {
                    async move {
                        items
                            .into_iter()
                            .map(|(topic, partition, current, requested)| {
                                let log = s.log_checked(&topic, partition)?;
                                check_current_epoch(current, log.leader_epoch())?;
                                log.end_offset_for_epoch(requested)
                                    .map_err(|e| e.kafka_error_code())
                            })
                            .collect::<Vec<_>>()
                    }
                    .boxed_local()
                })
                .await
                .unwrap_or_else(|| vec![Err(ec::NOT_LEADER_OR_FOLLOWER); n]);
            (slots, answers)
        }
    });
    for (slots, answers) in join_all(asks).await {
        for ((ti, pi), answer) in slots.into_iter().zip(answers) {
            let r = &mut resp.topics[ti].partitions[pi];
            match answer {
                Ok((epoch, end_offset)) => {
                    r.leader_epoch = epoch;
                    r.end_offset = end_offset;
                }
                Err(code) => r.error_code = code,
            }
        }
    }
    respond(ApiKey::OffsetForLeaderEpoch, version, &resp)
}

/// Kafka's fencing of the caller's view: -1 skips the check; an epoch older than this
/// leader's is FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH (this replica has
/// not heard of it yet).
fn check_current_epoch(current: i32, ours: i32) -> Result<(), i16> {
    match current {
        -1 => Ok(()),
        c if c < ours => Err(ec::FENCED_LEADER_EPOCH),
        c if c > ours => Err(ec::UNKNOWN_LEADER_EPOCH),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_epoch_is_fenced_like_kafka() {
        assert_eq!(check_current_epoch(-1, 4), Ok(()));
        assert_eq!(check_current_epoch(4, 4), Ok(()));
        assert_eq!(check_current_epoch(3, 4), Err(ec::FENCED_LEADER_EPOCH));
        assert_eq!(check_current_epoch(5, 4), Err(ec::UNKNOWN_LEADER_EPOCH));
    }
}
