//! ApiVersions: the table of what we serve, and the handshake every client starts with.

use bytes::BytesMut;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use super::{respond, Outcome, RequestError};
use crate::protocol::errors as ec;

/// (api, min, max) advertised: from the lowest version Kafka 3.9 served (KIP-896 removed
/// them in 4.0; clients such as Sarama 1.22 and kafka-go 0.2 still send them) to Kafka
/// 4.1's newest. Versions the kafka-protocol crate no longer has go through
/// `protocol::legacy`; Produce v0-2 and Fetch v0-3 carry message formats v0/v1, converted
/// by `storage::legacy_format`.
const ADVERTISED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 13),
    (ApiKey::Fetch, 0, 18),
    (ApiKey::ListOffsets, 0, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 0, 4),
    (ApiKey::DescribeLogDirs, 0, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::InitProducerId, 0, 5),
    // Transactions v1 (classic): the versions of Kafka 4.1 short of transaction v2
    // (KIP-890 part 2: AddPartitionsToTxn v5, EndTxn v5, TxnOffsetCommit v5).
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    // Sent by transaction coordinators (brokers); v1 is Kafka 4's only version.
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::DescribeProducers, 0, 0),
    // v2's transactional id pattern (a regular expression) is not served.
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    // v0 (no pattern type) went with Kafka 4.0.
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
];

pub fn supported(api: ApiKey) -> Option<(i16, i16)> {
    ADVERTISED
        .iter()
        .find(|(a, _, _)| *a == api)
        .map(|(_, min, max)| (*min, *max))
}

fn table() -> Vec<ApiVersion> {
    ADVERTISED
        .iter()
        .map(|(api, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *api as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect()
}

pub fn handle(version: i16, _body: BytesMut) -> Result<Outcome, RequestError> {
    // The body is not needed (client software name/version are informational); a
    // client newer than us sends a version we cannot parse anyway.
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = table();
    let (min, max) = supported(ApiKey::ApiVersions).unwrap_or((0, 0));
    if version < min || version > max {
        // Kafka answers an unknown ApiVersions version with UNSUPPORTED_VERSION in the
        // v0 format, so that the client can retry with a version from the list.
        resp.error_code = ec::UNSUPPORTED_VERSION;
        return respond(ApiKey::ApiVersions, 0, &resp);
    }
    respond(ApiKey::ApiVersions, version, &resp)
}
