//! Old versions written by hand from Kafka 3.9's JSON schemas (field order and types as
//! `OffsetCommitRequest.json`, `ListOffsetsResponse.json`, `ProduceResponse.json`, ...
//! give them for these versions), bridged, and compared with what the handlers see or
//! what the client gets.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{self as new, ApiKey};
use kafka_protocol::protocol::StrBytes;

use super::*;

fn string(out: &mut BytesMut, s: &str) {
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

fn upgrade<T: kafka_protocol::protocol::Decodable>(
    api: ApiKey,
    version: i16,
    body: &BytesMut,
) -> T {
    let bridge = api.valid_versions().min;
    let mut body = body.clone();
    let mut bridged = upgrade_request(api, version, bridge, &mut body).unwrap();
    assert!(
        body.is_empty(),
        "{api:?} v{version}: the whole request is read"
    );
    T::decode(&mut bridged, bridge).unwrap()
}

fn downgrade<T: kafka_protocol::protocol::Encodable>(
    api: ApiKey,
    version: i16,
    msg: &T,
) -> Vec<u8> {
    let bridge = api.valid_versions().min;
    let mut out = BytesMut::new();
    msg.encode(&mut out, bridge).unwrap();
    downgrade_response(api, version, bridge, out)
        .unwrap()
        .to_vec()
}

fn offset_commit_body(version: i16) -> BytesMut {
    let mut b = BytesMut::new();
    string(&mut b, "group");
    if version == 1 {
        b.put_i32(7); // generation_id
        string(&mut b, "member-1");
    }
    b.put_i32(1); // topics
    string(&mut b, "orders");
    b.put_i32(1); // partitions
    b.put_i32(3); // partition_index
    b.put_i64(42); // committed_offset
    if version == 1 {
        b.put_i64(1_700_000_000_000); // commit_timestamp (v1 only)
    }
    string(&mut b, "meta");
    b
}

#[test]
fn offset_commit_v0_and_v1_reach_the_handler_as_v2() {
    for version in [0, 1] {
        let r: new::OffsetCommitRequest =
            upgrade(ApiKey::OffsetCommit, version, &offset_commit_body(version));
        assert_eq!(r.group_id.0.as_str(), "group");
        let (generation, member) = if version == 1 {
            (7, "member-1")
        } else {
            (-1, "")
        };
        assert_eq!(r.generation_id_or_member_epoch, generation);
        assert_eq!(r.member_id.as_str(), member);
        assert_eq!(r.retention_time_ms, -1);
        let p = &r.topics[0].partitions[0];
        assert_eq!(r.topics[0].name.0.as_str(), "orders");
        assert_eq!((p.partition_index, p.committed_offset), (3, 42));
        assert_eq!(
            p.committed_metadata.as_ref().map(|m| m.as_str()),
            Some("meta")
        );
    }
}

#[test]
fn fetch_v0_to_v3_reach_the_handler_as_v4() {
    for version in 0..4 {
        let mut b = BytesMut::new();
        b.put_i32(-1); // replica_id
        b.put_i32(500); // max_wait_ms
        b.put_i32(1); // min_bytes
        if version == 3 {
            b.put_i32(1 << 20); // max_bytes
        }
        b.put_i32(1);
        string(&mut b, "orders");
        b.put_i32(1);
        b.put_i32(2); // partition
        b.put_i64(99); // fetch_offset
        b.put_i32(4096); // partition_max_bytes
        let r: new::FetchRequest = upgrade(ApiKey::Fetch, version, &b);
        assert_eq!((r.max_wait_ms, r.min_bytes), (500, 1));
        let max_bytes = if version == 3 { 1 << 20 } else { i32::MAX };
        assert_eq!(r.max_bytes, max_bytes, "v{version}");
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.partition, p.fetch_offset, p.partition_max_bytes),
            (2, 99, 4096)
        );
    }
}

#[test]
fn list_offsets_v0_answers_an_offset_list() {
    let mut b = BytesMut::new();
    b.put_i32(-1);
    b.put_i32(1);
    string(&mut b, "orders");
    b.put_i32(1);
    b.put_i32(0);
    b.put_i64(-1); // latest
    b.put_i32(1); // max_num_offsets (v0 only)
    let r: new::ListOffsetsRequest = upgrade(ApiKey::ListOffsets, 0, &b);
    assert_eq!(r.topics[0].partitions[0].timestamp, -1);

    let partition = new::list_offsets_response::ListOffsetsPartitionResponse::default()
        .with_partition_index(0)
        .with_offset(17)
        .with_timestamp(-1);
    let topic = new::list_offsets_response::ListOffsetsTopicResponse::default()
        .with_name(new::TopicName(StrBytes::from_static_str("orders")))
        .with_partitions(vec![partition]);
    let resp = new::ListOffsetsResponse::default().with_topics(vec![topic]);
    let mut want = BytesMut::new();
    want.put_i32(1);
    string(&mut want, "orders");
    want.put_i32(1);
    want.put_i32(0); // partition_index
    want.put_i16(0); // error_code
    want.put_i32(1); // old_style_offsets
    want.put_i64(17);
    assert_eq!(downgrade(ApiKey::ListOffsets, 0, &resp), want.to_vec());
}

#[test]
fn produce_v0_to_v2_responses_follow_the_schema() {
    let partition = new::produce_response::PartitionProduceResponse::default()
        .with_index(1)
        .with_base_offset(5)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(0);
    let topic = new::produce_response::TopicProduceResponse::default()
        .with_name(new::TopicName(StrBytes::from_static_str("t")))
        .with_partition_responses(vec![partition]);
    let resp = new::ProduceResponse::default()
        .with_responses(vec![topic])
        .with_throttle_time_ms(0);
    for version in 0..3 {
        let mut want = BytesMut::new();
        want.put_i32(1);
        string(&mut want, "t");
        want.put_i32(1);
        want.put_i32(1);
        want.put_i16(0);
        want.put_i64(5);
        if version == 2 {
            want.put_i64(-1); // log_append_time_ms
        }
        if version >= 1 {
            want.put_i32(0); // throttle_time_ms
        }
        assert_eq!(
            downgrade(ApiKey::Produce, version, &resp),
            want.to_vec(),
            "v{version}"
        );
    }
}

#[test]
fn describe_configs_v0_says_is_default() {
    let config = |name: &'static str, source: i8| {
        new::describe_configs_response::DescribeConfigsResourceResult::default()
            .with_name(StrBytes::from_static_str(name))
            .with_value(Some(StrBytes::from_static_str("1")))
            .with_config_source(source)
    };
    let result = new::describe_configs_response::DescribeConfigsResult::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("t"))
        .with_configs(vec![config("a", CONFIG_SOURCE_DEFAULT), config("b", 1)]);
    let resp = new::DescribeConfigsResponse::default().with_results(vec![result]);
    let bytes = downgrade(ApiKey::DescribeConfigs, 0, &resp);
    let back = old::DescribeConfigsResponse::decode(&mut BytesMut::from(&bytes[..]), 0).unwrap();
    let defaults: Vec<bool> = back.results[0]
        .configs
        .iter()
        .map(|c| c.is_default)
        .collect();
    assert_eq!(defaults, vec![true, false]);
}

/// Every bridged API at every old version: default requests come through, and default
/// responses go out.
#[test]
fn every_bridged_version_round_trips() {
    macro_rules! request {
        ($api:expr, $old:ty, $new:ty) => {{
            let api: ApiKey = $api;
            for version in 0..api.valid_versions().min {
                let mut body = BytesMut::new();
                <$old>::default().encode(&mut body, version).unwrap();
                let _: $new = upgrade(api, version, &body);
            }
        }};
    }
    macro_rules! response {
        ($api:expr, $new:ty) => {{
            let api: ApiKey = $api;
            for version in 0..api.valid_versions().min {
                downgrade(api, version, &<$new>::default());
            }
        }};
    }
    request!(ApiKey::Fetch, old::FetchRequest, new::FetchRequest);
    response!(ApiKey::Produce, new::ProduceResponse);
    request!(
        ApiKey::ListOffsets,
        old::ListOffsetsRequest,
        new::ListOffsetsRequest
    );
    response!(ApiKey::ListOffsets, new::ListOffsetsResponse);
    request!(
        ApiKey::CreateTopics,
        old::CreateTopicsRequest,
        new::CreateTopicsRequest
    );
    response!(ApiKey::CreateTopics, new::CreateTopicsResponse);
    request!(
        ApiKey::DeleteTopics,
        old::DeleteTopicsRequest,
        new::DeleteTopicsRequest
    );
    response!(ApiKey::DeleteTopics, new::DeleteTopicsResponse);
    request!(
        ApiKey::OffsetForLeaderEpoch,
        old::OffsetForLeaderEpochRequest,
        new::OffsetForLeaderEpochRequest
    );
    response!(
        ApiKey::OffsetForLeaderEpoch,
        new::OffsetForLeaderEpochResponse
    );
    request!(
        ApiKey::DescribeLogDirs,
        old::DescribeLogDirsRequest,
        new::DescribeLogDirsRequest
    );
    response!(ApiKey::DescribeLogDirs, new::DescribeLogDirsResponse);
    request!(
        ApiKey::DescribeConfigs,
        old::DescribeConfigsRequest,
        new::DescribeConfigsRequest
    );
    response!(ApiKey::DescribeConfigs, new::DescribeConfigsResponse);
    request!(
        ApiKey::OffsetCommit,
        old::OffsetCommitRequest,
        new::OffsetCommitRequest
    );
    response!(ApiKey::OffsetCommit, new::OffsetCommitResponse);
    request!(
        ApiKey::OffsetFetch,
        old::OffsetFetchRequest,
        new::OffsetFetchRequest
    );
    response!(ApiKey::OffsetFetch, new::OffsetFetchResponse);
}
