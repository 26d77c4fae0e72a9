//! WriteTxnMarkers (v1): a transaction coordinator asks this broker to write COMMIT or
//! ABORT markers into partitions it leads. The coordinator on this broker uses the same
//! path (`txn::markers::write_local`) for its own partitions.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{ApiKey, WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use super::{decode, respond, topic_name, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::security::acl::{Access, Operation};
use crate::txn::markers::{write_local, Marker};

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: WriteTxnMarkersRequest = decode(ApiKey::WriteTxnMarkers, version, body)?;
    let mut resp = WriteTxnMarkersResponse::default();
    // Sent by transaction coordinators: the brokers' principal must be a super user.
    let allowed = access.cluster(Operation::ClusterAction);
    for m in &req.markers {
        let marker = Marker {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
        };
        let partitions: Vec<(String, i32)> = m
            .topics
            .iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
            .collect();
        let codes = if allowed {
            write_local(&shard, &marker, partitions).await
        } else {
            let denied = crate::protocol::errors::CLUSTER_AUTHORIZATION_FAILED;
            partitions.into_iter().map(|p| (p, denied)).collect()
        };
        let mut out = WritableTxnMarkerResult::default();
        out.producer_id = m.producer_id;
        let mut codes = codes.into_iter();
        for t in &m.topics {
            let mut rt = WritableTxnMarkerTopicResult::default();
            rt.name = topic_name(&t.name);
            for _ in &t.partition_indexes {
                let Some(((_, partition), code)) = codes.next() else {
                    break;
                };
                let mut rp = WritableTxnMarkerPartitionResult::default();
                rp.partition_index = partition;
                rp.error_code = code;
                rt.partitions.push(rp);
            }
            out.topics.push(rt);
        }
        resp.markers.push(out);
    }
    respond(ApiKey::WriteTxnMarkers, version, &resp)
}
