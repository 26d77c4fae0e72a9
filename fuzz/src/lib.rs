//! What several fuzz targets share: CRC repair, so that mutated batches get past the
//! CRC check to the parsers behind it, and the produce path's batch pipeline.

use bytes::BytesMut;
use corelog::storage::batch::split_and_validate;
use corelog::storage::records::{self, Filtered};
use corelog::storage::validate::{self, TimestampRules};

/// Kafka's `message.max.bytes` default: the largest batch the pipeline accepts.
pub const MESSAGE_MAX_BYTES: usize = 1_048_588;
/// Record batch v2: size of the fixed header, and where its fields lie.
const BATCH_HEADER_BYTES: usize = 61;
const LOG_OVERHEAD_BYTES: usize = 12;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;

/// Rewrites the CRC of every whole batch in `buf` (walking by the length fields), so
/// that the fuzzer's mutations reach the record parser instead of failing the CRC.
/// Each target that uses it also feeds some inputs unrepaired, for the CRC path.
pub fn repair_crcs(buf: &mut [u8]) {
    let mut pos = 0usize;
    while buf.len() - pos >= BATCH_HEADER_BYTES {
        let length = i32::from_be_bytes(buf[pos + 8..pos + 12].try_into().expect("4 bytes"));
        let Ok(length) = usize::try_from(length) else {
            return;
        };
        let end = pos + LOG_OVERHEAD_BYTES + length;
        if length < BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES || end > buf.len() {
            return;
        }
        let crc = crc32c::crc32c(&buf[pos + ATTRIBUTES_AT..end]);
        buf[pos + CRC_AT..pos + CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}

/// What the broker does with a Produce partition's `records` before appending them:
/// split and validate the batches, check (and derive) timestamps, and — for compacted
/// topics and topics with their own compression.type — walk, filter and recompress
/// every batch, all with decompression bounded by `message.max.bytes`.
pub fn produce_pipeline(records: &mut BytesMut, target_codec: u8) {
    let Ok(mut batches) = split_and_validate(records, MESSAGE_MAX_BYTES) else {
        return;
    };
    let inflated_max = records::inflated_bytes_max(MESSAGE_MAX_BYTES);
    let rules = TimestampRules {
        log_append_time: target_codec & 0x80 != 0,
        now_ms: 1_700_000_000_000,
        before_max_ms: i64::MAX,
        after_max_ms: i64::MAX,
    };
    if validate::validate_produced(records, &mut batches, &rules, inflated_max).is_err() {
        return;
    }
    for batch in &batches {
        let bytes = &records[batch.range.clone()];
        let _ = records::check_keys_present(bytes, inflated_max);
        let _ = records::recompress(bytes, target_codec % 5, inflated_max);
        let _ = validate::record_times(bytes, inflated_max, false);
        let Ok(raw) = records::records_section(bytes, inflated_max) else {
            continue;
        };
        let Ok(views) = records::parse_records(&raw, batch.header.records_count) else {
            continue;
        };
        // Keep every other record, as the cleaner does with superseded keys, and mark a
        // delete horizon: the rebuilt batch must itself validate.
        let keep: Vec<bool> = (0..views.len()).map(|i| i % 2 == 0).collect();
        let horizon = (target_codec & 0x40 != 0).then_some(1_700_000_000_000);
        if let Ok(Filtered::Rebuilt(rebuilt)) = records::filter_batch(bytes, &views, &keep, horizon)
        {
            corelog::storage::batch::check_batch(&rebuilt, true)
                .expect("a batch the cleaner rebuilt is valid");
        }
    }
}

/// Decodes a control-plane request body with the kafka-protocol crate, as
/// `handlers::decode` does after the guard accepted it. `false` for an API the broker
/// answers without the crate's decoder (Produce) or does not serve.
pub fn crate_decode(api: kafka_protocol::messages::ApiKey, version: i16, body: &[u8]) -> bool {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Decodable;

    fn decode<T: Decodable>(version: i16, body: &[u8]) -> bool {
        let mut buf = BytesMut::from(body);
        let _ = T::decode(&mut buf, version);
        true
    }
    match api {
        ApiKey::Metadata => decode::<MetadataRequest>(version, body),
        ApiKey::CreateTopics => decode::<CreateTopicsRequest>(version, body),
        ApiKey::DeleteTopics => decode::<DeleteTopicsRequest>(version, body),
        ApiKey::ListOffsets => decode::<ListOffsetsRequest>(version, body),
        ApiKey::Fetch => decode::<FetchRequest>(version, body),
        ApiKey::InitProducerId => decode::<InitProducerIdRequest>(version, body),
        ApiKey::DescribeCluster => decode::<DescribeClusterRequest>(version, body),
        ApiKey::FindCoordinator => decode::<FindCoordinatorRequest>(version, body),
        ApiKey::ApiVersions => decode::<ApiVersionsRequest>(version, body),
        ApiKey::JoinGroup => decode::<JoinGroupRequest>(version, body),
        ApiKey::SyncGroup => decode::<SyncGroupRequest>(version, body),
        ApiKey::Heartbeat => decode::<HeartbeatRequest>(version, body),
        ApiKey::LeaveGroup => decode::<LeaveGroupRequest>(version, body),
        ApiKey::OffsetCommit => decode::<OffsetCommitRequest>(version, body),
        ApiKey::OffsetFetch => decode::<OffsetFetchRequest>(version, body),
        ApiKey::ListGroups => decode::<ListGroupsRequest>(version, body),
        ApiKey::DescribeGroups => decode::<DescribeGroupsRequest>(version, body),
        ApiKey::DeleteGroups => decode::<DeleteGroupsRequest>(version, body),
        ApiKey::OffsetDelete => decode::<OffsetDeleteRequest>(version, body),
        ApiKey::CreatePartitions => decode::<CreatePartitionsRequest>(version, body),
        ApiKey::DescribeConfigs => decode::<DescribeConfigsRequest>(version, body),
        ApiKey::AlterConfigs => decode::<AlterConfigsRequest>(version, body),
        ApiKey::IncrementalAlterConfigs => decode::<IncrementalAlterConfigsRequest>(version, body),
        ApiKey::DeleteRecords => decode::<DeleteRecordsRequest>(version, body),
        ApiKey::OffsetForLeaderEpoch => decode::<OffsetForLeaderEpochRequest>(version, body),
        ApiKey::DescribeLogDirs => decode::<DescribeLogDirsRequest>(version, body),
        ApiKey::ConsumerGroupHeartbeat => decode::<ConsumerGroupHeartbeatRequest>(version, body),
        ApiKey::ConsumerGroupDescribe => decode::<ConsumerGroupDescribeRequest>(version, body),
        _ => false,
    }
}
