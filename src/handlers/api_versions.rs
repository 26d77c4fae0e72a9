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
    // Transaction v2 (KIP-890 part 2, `txn::v2`): Produce v12+, EndTxn v5 and
    // TxnOffsetCommit v5, enabled by the `transaction.version` feature below.
    // AddOffsetsToTxn v5 is not in the kafka-protocol crate (v2 clients do not send it).
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    // Sent by transaction coordinators (brokers); v1 is Kafka 4's only version.
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
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

/// ApiVersions v3 added the (tagged) feature lists (KIP-584).
const FEATURES_SINCE: i16 = 3;
/// The epoch of our finalized features: they never change while a broker runs.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

/// `transaction.version` supported up to 2 and finalized at 2 (KIP-1022;
/// `txn::v2::finalized_level`): clients enable transaction v2 (KIP-890 part 2) only when
/// the broker finalizes it.
fn add_features(resp: &mut ApiVersionsResponse) {
    use crate::txn::v2::{finalized_level, FEATURE_LEVEL_MAX, FEATURE_LEVEL_MIN, FEATURE_NAME};
    use kafka_protocol::messages::api_versions_response::{
        FinalizedFeatureKey, SupportedFeatureKey,
    };
    use kafka_protocol::protocol::StrBytes;
    let mut supported = SupportedFeatureKey::default();
    supported.name = StrBytes::from_static_str(FEATURE_NAME);
    supported.min_version = FEATURE_LEVEL_MIN;
    supported.max_version = FEATURE_LEVEL_MAX;
    resp.supported_features = vec![supported];
    resp.finalized_features_epoch = FINALIZED_FEATURES_EPOCH;
    // As Kafka: a feature at level 0 is not listed as finalized.
    let level = finalized_level();
    if level > 0 {
        let mut finalized = FinalizedFeatureKey::default();
        finalized.name = StrBytes::from_static_str(FEATURE_NAME);
        finalized.min_version_level = level;
        finalized.max_version_level = level;
        resp.finalized_features = vec![finalized];
    }
}

pub fn handle(version: i16, _body: BytesMut) -> Result<Outcome, RequestError> {
    // The body is not needed (client software name/version are informational); a
    // client newer than us sends a version we cannot parse anyway.
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = table();
    if version >= FEATURES_SINCE {
        add_features(&mut resp);
    }
    let (min, max) = supported(ApiKey::ApiVersions).unwrap_or((0, 0));
    if version < min || version > max {
        // Kafka answers an unknown ApiVersions version with UNSUPPORTED_VERSION in the
        // v0 format, so that the client can retry with a version from the list.
        resp.error_code = ec::UNSUPPORTED_VERSION;
        return respond(ApiKey::ApiVersions, 0, &resp);
    }
    respond(ApiKey::ApiVersions, version, &resp)
}
