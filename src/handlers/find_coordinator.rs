//! FindCoordinator. Advertised because librdkafka enables LZ4 only when a broker's
//! FindCoordinator range includes v0 (its proxy for "Kafka 0.8.2 or later"). corelog does
//! not coordinate groups or transactions yet, so every key is answered with
//! COORDINATOR_NOT_AVAILABLE, which clients treat as retriable; assign-mode consumers and
//! producers never need a coordinator.

use bytes::BytesMut;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::protocol::errors as ec;

const NOT_YET: &str = "corelog does not coordinate consumer groups or transactions yet";

pub fn handle(version: i16, body: BytesMut) -> Result<Outcome, RequestError> {
    let req: FindCoordinatorRequest = decode(ApiKey::FindCoordinator, version, body)?;
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let mut c = Coordinator::default();
                c.key = k.clone();
                c.node_id = BrokerId(-1);
                c.port = -1;
                c.error_code = ec::COORDINATOR_NOT_AVAILABLE;
                c.error_message = Some(str_bytes(NOT_YET));
                c
            })
            .collect();
    } else {
        resp.error_code = ec::COORDINATOR_NOT_AVAILABLE;
        resp.node_id = BrokerId(-1);
        resp.port = -1;
        if version >= 1 {
            resp.error_message = Some(str_bytes(NOT_YET));
        }
    }
    respond(ApiKey::FindCoordinator, version, &resp)
}
