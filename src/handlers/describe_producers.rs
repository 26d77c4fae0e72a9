//! DescribeProducers (v0): the producers a partition's producer state holds (epoch,
//! last sequence, the first offset of an open transaction), read on the partition's
//! owner shard, as kafka-transactions.sh describe-producers shows them. Producer
//! timestamps and coordinator epochs are not kept: they answer -1.

use std::rc::Rc;

use bytes::BytesMut;
use futures::FutureExt;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, ProducerId,
};

use super::{decode, respond, topic_name, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

/// (producer id, epoch, last sequence, open transaction's first offset or -1).
type Producer = (i64, i16, i32, i64);

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DescribeProducersRequest = decode(ApiKey::DescribeProducers, version, body)?;
    let snap = shard.broker.metadata.snapshot();
    let me = shard.broker.config.node_id;
    let mut resp = DescribeProducersResponse::default();
    for t in &req.topics {
        let mut out = TopicResponse::default();
        out.name = topic_name(&t.name);
        let denied = !access.topic(Operation::Read, &t.name);
        for &p in &t.partition_indexes {
            let mut pr = PartitionResponse::default();
            pr.partition_index = p;
            match snap.route(&t.name, p, me) {
                _ if denied => pr.error_code = ec::TOPIC_AUTHORIZATION_FAILED,
                Err(code) => pr.error_code = code,
                Ok(pl) => match producers(&shard, pl.shard, t.name.to_string(), p).await {
                    Some(list) => pr.active_producers = list.into_iter().map(state).collect(),
                    None => pr.error_code = ec::NOT_LEADER_OR_FOLLOWER,
                },
            }
            out.partitions.push(pr);
        }
        resp.topics.push(out);
    }
    respond(ApiKey::DescribeProducers, version, &resp)
}

async fn producers(
    shard: &Rc<Shard>,
    owner: usize,
    topic: String,
    p: i32,
) -> Option<Vec<Producer>> {
    shard
        .run_on(owner, move |s| {
            async move { s.partition_log(&topic, p).map(|log| log.producers()) }.boxed_local()
        })
        .await
        .flatten()
}

fn state((producer_id, epoch, last_sequence, txn_start): Producer) -> ProducerState {
    let mut s = ProducerState::default();
    s.producer_id = ProducerId(producer_id);
    s.producer_epoch = i32::from(epoch);
    s.last_sequence = last_sequence;
    s.last_timestamp = -1;
    s.coordinator_epoch = -1;
    s.current_txn_start_offset = txn_start;
    s
}
