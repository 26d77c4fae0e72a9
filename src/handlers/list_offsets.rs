//! ListOffsets: earliest (-2), latest (-1, the high watermark), the record with the
//! largest timestamp (-3) and offsets by timestamp, per partition, answered by the owner
//! shard (`Shard::list_offsets_local`). A partition named twice in one request answers
//! INVALID_REQUEST and is not looked up, as in Kafka: each timestamp lookup may read and
//! decompress a batch from disk, and a 4 MiB request could name one partition 200,000
//! times.

use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::future::join_all;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};

use super::{decode, respond, Outcome, RequestError};
use crate::broker::router::{OffsetAnswer, OffsetQuery, ShardMsg};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

/// The queries for one owner shard and where each answer goes: (topic index, partition index).
type Group = (Vec<OffsetQuery>, Vec<(usize, usize)>);

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: bytes::BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: ListOffsetsRequest = decode(ApiKey::ListOffsets, version, body)?;
    let snap = shard.broker.metadata.snapshot();
    let mut resp = ListOffsetsResponse::default();
    // isolation_level is in the request from v2 (READ_UNCOMMITTED before).
    let read_committed = version >= 2 && req.isolation_level == 1;
    let mut groups: HashMap<usize, Group> = HashMap::new();
    let mut named: HashMap<(&str, i32), usize> = HashMap::new();
    for t in &req.topics {
        for p in &t.partitions {
            *named
                .entry((t.name.0.as_str(), p.partition_index))
                .or_default() += 1;
        }
    }
    for (ti, t) in req.topics.iter().enumerate() {
        let mut out = ListOffsetsTopicResponse::default();
        out.name = t.name.clone();
        let denied = !access.topic(Operation::Describe, t.name.0.as_str());
        for (pi, p) in t.partitions.iter().enumerate() {
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            r.timestamp = -1;
            r.offset = -1;
            let duplicated = named[&(t.name.0.as_str(), p.partition_index)] > 1;
            match snap.route(
                t.name.0.as_str(),
                p.partition_index,
                shard.broker.config.node_id,
            ) {
                _ if duplicated => r.error_code = ec::INVALID_REQUEST,
                _ if denied => r.error_code = ec::TOPIC_AUTHORIZATION_FAILED,
                Err(code) => r.error_code = code,
                Ok(pl) => {
                    let g = groups.entry(pl.shard).or_default();
                    g.0.push(OffsetQuery {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        timestamp: p.timestamp,
                        read_committed,
                    });
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
            if owner == shard.id {
                return (slots, Ok(shard.list_offsets_local(items).await));
            }
            let (reply, rx) = oneshot::channel();
            shard
                .broker
                .send(owner, ShardMsg::ListOffsets { items, reply });
            (slots, rx.await)
        }
    });
    for (slots, answers) in join_all(asks).await {
        let answers: Vec<OffsetAnswer> = answers.unwrap_or_else(|_| {
            vec![
                OffsetAnswer {
                    error_code: ec::NOT_LEADER_OR_FOLLOWER,
                    offset: -1,
                    timestamp: -1
                };
                slots.len()
            ]
        });
        for ((ti, pi), a) in slots.into_iter().zip(answers) {
            let r = &mut resp.topics[ti].partitions[pi];
            r.error_code = a.error_code;
            r.offset = a.offset;
            r.timestamp = a.timestamp;
        }
    }
    respond(ApiKey::ListOffsets, version, &resp)
}
