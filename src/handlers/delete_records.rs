//! DeleteRecords (kafka-delete-records.sh): moves each partition's log start offset up,
//! on its owner shard, deleting the segments wholly below it. The new log start offsets
//! reach the checkpoint file right after, so a restart keeps them.

use std::collections::HashMap;
use std::rc::Rc;

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
    let asks = groups.into_iter().map(|(owner, (items, slots))| {
        let shard = shard.clone();
        async move {
            let n = items.len();
            let answers = shard
                .run_on(owner, move |s| {
                    async move {
                        let mut out = Vec::with_capacity(items.len());
                        for (topic, partition, offset) in items {
                            out.push(match s.log_checked(&topic, partition) {
                                Err(code) => Err(code),
                                Ok(log) => log
                                    .delete_records_before(offset)
                                    .await
                                    .map_err(|e| e.kafka_error_code()),
                            });
                        }
                        out
                    }
                    .boxed_local()
                })
                .await
                .unwrap_or_else(|| vec![Err(ec::NOT_LEADER_OR_FOLLOWER); n]);
            (slots, answers)
        }
    });
    let mut any = false;
    for (slots, answers) in join_all(asks).await {
        for ((ti, pi), a) in slots.into_iter().zip(answers) {
            let r = &mut resp.topics[ti].partitions[pi];
            match a {
                Ok(low) => {
                    r.low_watermark = low;
                    any = true;
                }
                Err(code) => r.error_code = code,
            }
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
