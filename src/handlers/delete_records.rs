//! DeleteRecords (kafka-delete-records.sh): moves each partition's log start offset up,
//! on its owner shard, deleting the segments wholly below it. The new log start offsets
//! reach the checkpoint file right after, so a restart keeps them. In a cluster the
//! answer waits, as Kafka's DelayedDeleteRecords does, until every live replica's log
//! start has followed (`Shard::wait_low_watermark`), at most the request's `timeout_ms`
//! (then REQUEST_TIMED_OUT; the leader's records are deleted all the same).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::future::{join_all, FutureExt};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};

use super::{decode, respond, Outcome, RequestError};
use crate::broker::shard::{Shard, METADATA_SHARD};
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

/// (topic, partition, offset) for one owner, and where each answer goes.
type Group = (Vec<(String, i32, i64)>, Vec<(usize, usize)>);

/// The longest a DeleteRecords waits for followers, whatever its `timeout_ms` says: a
/// bound on how long a request can hold its task.
const FOLLOWERS_WAIT_MAX: Duration = Duration::from_secs(300);

/// One partition's answer: the low watermark, or an error code with the low watermark
/// to report beside it (-1 when there is none).
type Answer = Result<i64, (i16, i64)>;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DeleteRecordsRequest = decode(ApiKey::DeleteRecords, version, body)?;
    let snap = shard.broker.metadata.snapshot();
    let mut resp = DeleteRecordsResponse::default();
    let mut groups: HashMap<usize, Group> = HashMap::new();
    for (ti, t) in req.topics.iter().enumerate() {
        let mut out = DeleteRecordsTopicResult::default();
        out.name = t.name.clone();
        let denied = !access.topic(Operation::Delete, t.name.0.as_str());
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            r.low_watermark = -1;
            match snap.route(
                t.name.0.as_str(),
                p.partition_index,
                shard.broker.config.node_id,
            ) {
                _ if denied => r.error_code = ec::TOPIC_AUTHORIZATION_FAILED,
                Err(code) => r.error_code = code,
                Ok(pl) => {
                    let g = groups.entry(pl.shard).or_default();
                    g.0.push((t.name.0.to_string(), p.partition_index, p.offset));
                    g.1.push((ti, pi));
                }
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    let wait = Duration::from_millis(req.timeout_ms.max(0) as u64).min(FOLLOWERS_WAIT_MAX);
    let deadline = Instant::now() + wait;
    let asks = groups.into_iter().map(|(owner, (items, slots))| {
        let shard = shard.clone();
        async move {
            let n = items.len();
            let answers = shard
                .run_on(owner, move |s| {
                    delete_on_owner(s, items, deadline).boxed_local()
                })
                .await
                .unwrap_or_else(|| vec![Err((ec::NOT_LEADER_OR_FOLLOWER, -1)); n]);
            (slots, answers)
        }
    });
    let mut any = false;
    for (slots, answers) in join_all(asks).await {
        for ((ti, pi), a) in slots.into_iter().zip(answers) {
            let r = &mut resp.topics[ti].partitions[pi];
            match a {
                Ok(low) => r.low_watermark = low,
                Err((code, low)) => {
                    r.error_code = code;
                    r.low_watermark = low;
                }
            }
            // The leader's log start moved whenever a low watermark is known, even if
            // the followers did not follow in time.
            any |= r.low_watermark >= 0;
        }
    }
    if any {
        // Persist the new log start offsets now rather than at the next periodic write.
        let s = shard.clone();
        crate::runtime::spawn_local(async move {
            s.run_on(METADATA_SHARD, |m| {
                async move { m.write_checkpoints().await }.boxed_local()
            })
            .await;
        });
    }
    respond(ApiKey::DeleteRecords, version, &resp)
}

/// On the owner shard: moves each partition's log start up, then waits (all partitions
/// at once, until `deadline`) for the followers to follow.
async fn delete_on_owner(
    s: Rc<Shard>,
    items: Vec<(String, i32, i64)>,
    deadline: Instant,
) -> Vec<Answer> {
    let mut deleted = Vec::with_capacity(items.len());
    for (topic, partition, offset) in items {
        let done = match s.log_checked(&topic, partition) {
            Err(code) => Err((code, -1)),
            Ok(log) => match log.delete_records_before(offset).await {
                Ok(low) => Ok((log, low)),
                Err(e) => Err((e.kafka_error_code(), -1)),
            },
        };
        deleted.push((topic, partition, done));
    }
    let waits = deleted.into_iter().map(|(topic, partition, done)| {
        let s = s.clone();
        async move {
            let (log, low) = done?;
            s.wait_low_watermark(&topic, partition, &log, low, deadline)
                .await
                .map_err(|m| (m.error_code, m.low_watermark))
        }
    });
    join_all(waits).await
}
