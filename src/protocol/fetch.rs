//! FetchResponse encoder, versions 0..=18, that never copies record data.
//!
//! The response body goes out as a list of chunks for a vectored write: the small pieces
//! between record sets are written into one scratch buffer and split off as `Bytes`, and
//! each partition's record data is passed through as the caller's own `Bytes` (a reference
//! count bump, not a copy).
//!
//! ```text
//! FetchResponse => throttle_time_ms:i32(v1+) error_code:i16(v7+) session_id:i32(v7+) [topic]
//!                  TAGS(v12+: 0 = node_endpoints, v16+)
//!   topic       => name (v4-12) | topic_id:uuid (v13+) [partition] TAGS(v12+)
//!     partition => partition_index:i32 error_code:i16 high_watermark:i64
//!                  last_stable_offset:i64(v4+) log_start_offset:i64(v5+)
//!                  [aborted_transactions](v4+) preferred_read_replica:i32(v11+)
//!                  records:nullable bytes TAGS(v12+: 1 = current_leader)
//!   current_leader => leader_id:i32 leader_epoch:i32 TAGS
//!   node_endpoint  => node_id:i32 host:compact string port:i32 rack:compact nullable string TAGS
//! ```
//! Strings, bytes and arrays take their compact forms from v12 (flexible versions).
//! Versions 0-3 carry message sets (formats v0/v1), which the caller converts down.
//!
//! Choices where Kafka leaves room, matching what Kafka writes:
//! - aborted_transactions: (producer id, first offset) of the aborted transactions in
//!   what a READ_COMMITTED fetch returns, so the client drops their records; an empty
//!   array otherwise. (Kafka writes null for READ_UNCOMMITTED fetches; Java, librdkafka
//!   and kafka-python treat null and empty alike.)
//! - records is never null: a partition without data (or with an error) gets a zero-length
//!   records field, like Kafka's `MemoryRecords.EMPTY`.
//! - Tagged fields are written only when they hold something, as Kafka leaves out a
//!   tagged field at its default: current_leader (KIP-951) on partitions that answer
//!   NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH, and node_endpoints (v16+) for those
//!   leaders. diverging_epoch and snapshot_id are never written (followers truncate with
//!   OffsetForLeaderEpoch instead). The common path pays one `Option` test per partition.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

use super::wire::{put_empty_tagged_fields, put_length, put_string, put_uvarint};
use super::EncodeError;

pub const FETCH_VERSION_MIN: i16 = 0;
/// The first version whose records are v2 batches (older ones read message sets).
pub const RECORD_BATCH_VERSION_MIN: i16 = 4;
const THROTTLE_VERSION_MIN: i16 = 1;
pub const FETCH_VERSION_MAX: i16 = 18;
const LOG_START_OFFSET_VERSION_MIN: i16 = 5;
const SESSION_VERSION_MIN: i16 = 7;
const PREFERRED_READ_REPLICA_VERSION_MIN: i16 = 11;
const FLEXIBLE_VERSION_MIN: i16 = 12;
const TOPIC_ID_VERSION_MIN: i16 = 13;
/// KIP-951: current_leader is a partition tagged field from v12 (the first flexible one).
pub const CURRENT_LEADER_VERSION_MIN: i16 = FLEXIBLE_VERSION_MIN;
/// KIP-951: node_endpoints is a response tagged field from v16.
pub const NODE_ENDPOINTS_VERSION_MIN: i16 = 16;
const CURRENT_LEADER_TAG: u32 = 1;
const NODE_ENDPOINTS_TAG: u32 = 0;
/// A current_leader struct: leader id, leader epoch, empty tagged fields.
const CURRENT_LEADER_BYTES: usize = 4 + 4 + 1;

/// Generous upper bounds on the non-record bytes of each level, to size the scratch buffer
/// once (the topic name comes on top).
const RESPONSE_HEADER_BYTES_MAX: usize = 4 + 2 + 4 + 5 + 1;
const TOPIC_HEADER_BYTES_MAX: usize = 2 + 16 + 5 + 1;
const PARTITION_HEADER_BYTES_MAX: usize = 4 + 2 + 8 * 3 + 4 + 4 + 5 + 3 + CURRENT_LEADER_BYTES;

/// Everything a FetchResponse carries that we ever set.
#[derive(Debug, Clone)]
pub struct FetchResponseParts {
    pub throttle_time_ms: i32,
    /// Written from v7 only.
    pub error_code: i16,
    /// Must be 0 before v7.
    pub session_id: i32,
    pub topics: Vec<FetchTopicOut>,
    /// KIP-951: where the leaders named in partitions' `current_leader` listen (v16+;
    /// must be empty before). Empty on the common path.
    pub node_endpoints: Vec<NodeEndpointOut>,
}

/// A broker a client is pointed to (KIP-951's NodeEndpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpointOut {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// KIP-951's LeaderIdAndEpoch: the partition's leader as this broker knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderHint {
    pub leader_id: i32,
    pub leader_epoch: i32,
}

#[derive(Debug, Clone)]
pub struct FetchTopicOut {
    /// Written up to v12.
    pub name: String,
    /// Written from v13.
    pub topic_id: [u8; 16],
    pub partitions: Vec<FetchPartitionOut>,
}

#[derive(Debug, Clone)]
pub struct FetchPartitionOut {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    /// Written from v5.
    pub log_start_offset: i64,
    /// -1 (none); must be -1 before v11.
    pub preferred_read_replica: i32,
    /// KIP-951: written from v12 as a tagged field; `None` leaves it out.
    pub current_leader: Option<LeaderHint>,
    /// (producer id, first offset) of aborted transactions (read_committed fetches).
    pub aborted: Vec<(i64, i64)>,
    /// Record data, concatenated on the wire into one records field; passed through
    /// without a copy.
    pub records: Vec<Bytes>,
}

/// Encodes the response body (NOT the response header) as a list of chunks: small header
/// pieces in freshly built `Bytes`, record data passed through as the caller's `Bytes` (no
/// copy; empty ones are left out). Concatenating the chunks gives exactly the bytes
/// kafka-protocol's `FetchResponse::encode` produces for the same content.
///
/// Returns the number of bytes appended to `out`. On error `out` is left as it was.
pub fn encode_fetch_response(
    version: i16,
    parts: &FetchResponseParts,
    out: &mut Vec<Bytes>,
) -> Result<usize, EncodeError> {
    let chunks_before = out.len();
    let result = encode_body(version, parts, out);
    if result.is_err() {
        out.truncate(chunks_before);
    }
    result
}

fn encode_body(
    version: i16,
    parts: &FetchResponseParts,
    out: &mut Vec<Bytes>,
) -> Result<usize, EncodeError> {
    check_version(version)?;
    if version < SESSION_VERSION_MIN && parts.session_id != 0 {
        return Err(EncodeError::FieldNotInVersion {
            field: "session_id",
            version,
        });
    }
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let mut writer = ChunkWriter::new(out, scratch_bytes_max(parts));
    let scratch = &mut writer.scratch;
    if version >= THROTTLE_VERSION_MIN {
        scratch.put_i32(parts.throttle_time_ms);
    }
    if version >= SESSION_VERSION_MIN {
        scratch.put_i16(parts.error_code);
        scratch.put_i32(parts.session_id);
    }
    put_length(scratch, "responses", parts.topics.len(), flexible)?;
    for topic in &parts.topics {
        encode_topic(&mut writer, version, topic)?;
    }
    if flexible {
        put_node_endpoints(&mut writer.scratch, version, &parts.node_endpoints)?;
    }
    Ok(writer.finish())
}

/// The response's tagged fields: none, or node_endpoints (tag 0) from v16.
fn put_node_endpoints(
    out: &mut BytesMut,
    version: i16,
    endpoints: &[NodeEndpointOut],
) -> Result<(), EncodeError> {
    if endpoints.is_empty() {
        put_empty_tagged_fields(out);
        return Ok(());
    }
    if version < NODE_ENDPOINTS_VERSION_MIN {
        return Err(EncodeError::FieldNotInVersion {
            field: "node_endpoints",
            version,
        });
    }
    let mut field = BytesMut::new();
    put_length(&mut field, "node_endpoints", endpoints.len(), true)?;
    for e in endpoints {
        field.put_i32(e.node_id);
        put_string(&mut field, "host", &e.host, true)?;
        field.put_i32(e.port);
        match &e.rack {
            Some(rack) => put_string(&mut field, "rack", rack, true)?,
            None => put_uvarint(&mut field, 0),
        }
        put_empty_tagged_fields(&mut field);
    }
    put_uvarint(out, 1);
    put_uvarint(out, NODE_ENDPOINTS_TAG);
    // A tagged field's size is a plain varint (no +1 as for compact lengths).
    let size = u32::try_from(field.len()).map_err(|_| EncodeError::TooLong {
        field: "node_endpoints",
        length: field.len(),
        max: u32::MAX as usize,
    })?;
    put_uvarint(out, size);
    out.put_slice(&field);
    Ok(())
}

fn check_version(version: i16) -> Result<(), EncodeError> {
    if (FETCH_VERSION_MIN..=FETCH_VERSION_MAX).contains(&version) {
        return Ok(());
    }
    Err(EncodeError::UnsupportedVersion {
        api_key: ApiKey::Fetch as i16,
        version,
        min: FETCH_VERSION_MIN,
        max: FETCH_VERSION_MAX,
    })
}

fn scratch_bytes_max(parts: &FetchResponseParts) -> usize {
    let topics: usize = parts
        .topics
        .iter()
        .map(|t| {
            TOPIC_HEADER_BYTES_MAX + t.name.len() + PARTITION_HEADER_BYTES_MAX * t.partitions.len()
        })
        .sum();
    RESPONSE_HEADER_BYTES_MAX + topics
}

fn encode_topic(
    writer: &mut ChunkWriter<'_>,
    version: i16,
    topic: &FetchTopicOut,
) -> Result<(), EncodeError> {
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let scratch = &mut writer.scratch;
    if version >= TOPIC_ID_VERSION_MIN {
        scratch.put_slice(&topic.topic_id);
    } else {
        put_string(scratch, "topic", &topic.name, flexible)?;
    }
    put_length(scratch, "partitions", topic.partitions.len(), flexible)?;
    for partition in &topic.partitions {
        encode_partition(writer, version, partition)?;
    }
    if flexible {
        put_empty_tagged_fields(&mut writer.scratch);
    }
    Ok(())
}

fn encode_partition(
    writer: &mut ChunkWriter<'_>,
    version: i16,
    partition: &FetchPartitionOut,
) -> Result<(), EncodeError> {
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let scratch = &mut writer.scratch;
    scratch.put_i32(partition.partition_index);
    scratch.put_i16(partition.error_code);
    scratch.put_i64(partition.high_watermark);
    if version >= RECORD_BATCH_VERSION_MIN {
        scratch.put_i64(partition.last_stable_offset);
    }
    if version >= LOG_START_OFFSET_VERSION_MIN {
        scratch.put_i64(partition.log_start_offset);
    }
    if version >= RECORD_BATCH_VERSION_MIN {
        put_length(
            scratch,
            "aborted_transactions",
            partition.aborted.len(),
            flexible,
        )?;
        for (producer_id, first_offset) in &partition.aborted {
            scratch.put_i64(*producer_id);
            scratch.put_i64(*first_offset);
            if flexible {
                put_empty_tagged_fields(scratch);
            }
        }
    }
    if version >= PREFERRED_READ_REPLICA_VERSION_MIN {
        scratch.put_i32(partition.preferred_read_replica);
    } else if partition.preferred_read_replica != -1 {
        return Err(EncodeError::FieldNotInVersion {
            field: "preferred_read_replica",
            version,
        });
    }
    let records_bytes = partition.records.iter().map(Bytes::len).sum();
    put_length(scratch, "records", records_bytes, flexible)?;
    for chunk in &partition.records {
        writer.pass_through(chunk);
    }
    match partition.current_leader {
        None if flexible => put_empty_tagged_fields(&mut writer.scratch),
        None => {}
        Some(leader) if flexible => {
            let scratch = &mut writer.scratch;
            put_uvarint(scratch, 1);
            put_uvarint(scratch, CURRENT_LEADER_TAG);
            put_uvarint(scratch, CURRENT_LEADER_BYTES as u32);
            scratch.put_i32(leader.leader_id);
            scratch.put_i32(leader.leader_epoch);
            put_empty_tagged_fields(scratch);
        }
        Some(_) => {
            return Err(EncodeError::FieldNotInVersion {
                field: "current_leader",
                version,
            })
        }
    }
    Ok(())
}

/// Collects the response as chunks: `scratch` accumulates small fields, and is split off
/// into its own chunk whenever caller data has to be passed through.
struct ChunkWriter<'a> {
    out: &'a mut Vec<Bytes>,
    scratch: BytesMut,
    written_bytes: usize,
}

impl<'a> ChunkWriter<'a> {
    fn new(out: &'a mut Vec<Bytes>, scratch_bytes: usize) -> Self {
        Self {
            out,
            scratch: BytesMut::with_capacity(scratch_bytes),
            written_bytes: 0,
        }
    }

    fn flush_scratch(&mut self) {
        if !self.scratch.is_empty() {
            let piece = self.scratch.split().freeze();
            self.written_bytes += piece.len();
            self.out.push(piece);
        }
    }

    fn pass_through(&mut self, chunk: &Bytes) {
        if chunk.is_empty() {
            return;
        }
        self.flush_scratch();
        self.written_bytes += chunk.len();
        self.out.push(chunk.clone());
    }

    fn finish(mut self) -> usize {
        self.flush_scratch();
        self.written_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
    };
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    /// The versions the current crate encodes; v0-3 are checked against 0.15.1 below.
    const VERSIONS: std::ops::RangeInclusive<i16> = RECORD_BATCH_VERSION_MIN..=FETCH_VERSION_MAX;

    fn partition(index: i32, records: Vec<Bytes>) -> FetchPartitionOut {
        FetchPartitionOut {
            partition_index: index,
            error_code: 0,
            high_watermark: 1_000 + i64::from(index),
            last_stable_offset: 900,
            log_start_offset: 10,
            preferred_read_replica: -1,
            current_leader: None,
            aborted: if index == 0 {
                vec![(42, 950), (43, 960)]
            } else {
                Vec::new()
            },
            records,
        }
    }

    /// Three topics: chunked records, an empty partition, an error partition, an empty
    /// chunk, no partitions at all; version-gated fields set wherever the version has them.
    fn parts(version: i16) -> FetchResponseParts {
        let big = Bytes::from(vec![7u8; 300]);
        let mut with_replica = partition(2, vec![Bytes::from_static(b"single chunk")]);
        if version >= PREFERRED_READ_REPLICA_VERSION_MIN {
            with_replica.preferred_read_replica = 3;
        }
        let mut failed = partition(9, Vec::new());
        failed.error_code = crate::protocol::errors::NOT_LEADER_OR_FOLLOWER;
        let first = FetchTopicOut {
            name: "orders".to_owned(),
            topic_id: [0xa1; 16],
            partitions: vec![
                partition(
                    0,
                    vec![Bytes::from_static(b"batch-one"), big.slice(10..200)],
                ),
                partition(1, Vec::new()),
                with_replica,
            ],
        };
        let second = FetchTopicOut {
            name: "clicks".repeat(30),
            topic_id: [0xb2; 16],
            partitions: vec![failed, partition(4, vec![Bytes::new(), big])],
        };
        let third = FetchTopicOut {
            name: String::new(),
            topic_id: [0; 16],
            partitions: Vec::new(),
        };
        let on_v7 = version >= SESSION_VERSION_MIN;
        FetchResponseParts {
            throttle_time_ms: 25,
            error_code: 0,
            session_id: if on_v7 { 77 } else { 0 },
            topics: vec![first, second, third],
            node_endpoints: Vec::new(),
        }
    }

    /// `parts` with KIP-951 hints wherever the version carries them: the failed
    /// partition names its leader (v12+), and the response lists two endpoints (v16+),
    /// one without a rack.
    fn hinted(version: i16) -> FetchResponseParts {
        let mut parts = parts(version);
        if version >= FLEXIBLE_VERSION_MIN {
            parts.topics[1].partitions[0].current_leader = Some(LeaderHint {
                leader_id: 2,
                leader_epoch: 7,
            });
        }
        if version >= NODE_ENDPOINTS_VERSION_MIN {
            parts.node_endpoints = vec![
                NodeEndpointOut {
                    node_id: 2,
                    host: "127.0.0.2".into(),
                    port: 9092,
                    rack: Some("rack-b".into()),
                },
                NodeEndpointOut {
                    node_id: 3,
                    host: "broker-three.example".into(),
                    port: 19092,
                    rack: None,
                },
            ];
        }
        parts
    }

    fn crate_partition(p: &FetchPartitionOut) -> PartitionData {
        let records: Vec<u8> = p.records.iter().flat_map(|c| c.iter().copied()).collect();
        let leader = p
            .current_leader
            .map_or_else(LeaderIdAndEpoch::default, |l| {
                LeaderIdAndEpoch::default()
                    .with_leader_id(l.leader_id.into())
                    .with_leader_epoch(l.leader_epoch)
            });
        PartitionData::default()
            .with_current_leader(leader)
            .with_partition_index(p.partition_index)
            .with_error_code(p.error_code)
            .with_high_watermark(p.high_watermark)
            .with_last_stable_offset(p.last_stable_offset)
            .with_log_start_offset(p.log_start_offset)
            .with_preferred_read_replica(p.preferred_read_replica.into())
            .with_aborted_transactions(Some(
                p.aborted
                    .iter()
                    .map(|&(producer_id, first_offset)| {
                        AbortedTransaction::default()
                            .with_producer_id(producer_id.into())
                            .with_first_offset(first_offset)
                    })
                    .collect(),
            ))
            .with_records(Some(Bytes::from(records)))
    }

    fn crate_topic(t: &FetchTopicOut) -> FetchableTopicResponse {
        // kafka-protocol does not re-export `uuid`: get one by decoding a v13 topic entry
        // (topic id, empty compact partition array, no tagged fields).
        let mut entry = BytesMut::from(&t.topic_id[..]);
        entry.put_slice(&[1, 0]);
        FetchableTopicResponse::decode(&mut entry, 13)
            .unwrap()
            .with_topic(TopicName(StrBytes::from_string(t.name.clone())))
            .with_partitions(t.partitions.iter().map(crate_partition).collect())
    }

    fn crate_encoding(version: i16, parts: &FetchResponseParts) -> Vec<u8> {
        let response = FetchResponse::default()
            .with_throttle_time_ms(parts.throttle_time_ms)
            .with_error_code(parts.error_code)
            .with_session_id(parts.session_id)
            .with_responses(parts.topics.iter().map(crate_topic).collect())
            .with_node_endpoints(
                parts
                    .node_endpoints
                    .iter()
                    .map(|e| {
                        NodeEndpoint::default()
                            .with_node_id(e.node_id.into())
                            .with_host(StrBytes::from_string(e.host.clone()))
                            .with_port(e.port)
                            .with_rack(e.rack.clone().map(StrBytes::from_string))
                    })
                    .collect(),
            );
        let mut out = BytesMut::new();
        response.encode(&mut out, version).unwrap();
        out.to_vec()
    }

    fn concat(chunks: &[Bytes]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn matches_the_crate_byte_for_byte_for_every_version() {
        for version in VERSIONS {
            let parts = parts(version);
            let mut chunks = Vec::new();
            let total = encode_fetch_response(version, &parts, &mut chunks).unwrap();
            let ours = concat(&chunks);
            assert_eq!(total, ours.len());
            assert_eq!(ours, crate_encoding(version, &parts), "v{version}");
        }
    }

    #[test]
    fn leader_hints_match_the_crate_byte_for_byte() {
        for version in VERSIONS {
            let parts = hinted(version);
            let mut chunks = Vec::new();
            let total = encode_fetch_response(version, &parts, &mut chunks).unwrap();
            let ours = concat(&chunks);
            assert_eq!(total, ours.len());
            assert_eq!(ours, crate_encoding(version, &parts), "v{version}");
        }
    }

    #[test]
    fn leader_hints_decode_with_the_crate() {
        for version in [12, 15, 16, FETCH_VERSION_MAX] {
            let mut chunks = Vec::new();
            encode_fetch_response(version, &hinted(version), &mut chunks).unwrap();
            let mut wire = BytesMut::from(&concat(&chunks)[..]);
            let decoded = FetchResponse::decode(&mut wire, version).unwrap();
            assert!(wire.is_empty(), "v{version}: bytes left over");
            let failed = &decoded.responses[1].partitions[0];
            assert_eq!(failed.current_leader.leader_id.0, 2, "v{version}");
            assert_eq!(failed.current_leader.leader_epoch, 7, "v{version}");
            // Partitions without a hint decode to the default (-1, -1).
            assert_eq!(
                decoded.responses[0].partitions[0]
                    .current_leader
                    .leader_id
                    .0,
                -1
            );
            let endpoints: Vec<(i32, String, i32, Option<String>)> = decoded
                .node_endpoints
                .iter()
                .map(|e| {
                    (
                        e.node_id.0,
                        e.host.to_string(),
                        e.port,
                        e.rack.as_ref().map(|r| r.to_string()),
                    )
                })
                .collect();
            if version >= NODE_ENDPOINTS_VERSION_MIN {
                assert_eq!(
                    endpoints,
                    vec![
                        (2, "127.0.0.2".into(), 9092, Some("rack-b".into())),
                        (3, "broker-three.example".into(), 19092, None),
                    ]
                );
            } else {
                assert!(endpoints.is_empty(), "v{version}");
            }
        }
    }

    #[test]
    fn leader_hints_are_refused_where_the_version_has_no_field() {
        let mut parts = hinted(11);
        parts.topics[0].partitions[0].current_leader = Some(LeaderHint {
            leader_id: 1,
            leader_epoch: 1,
        });
        let mut chunks = Vec::new();
        let err = encode_fetch_response(11, &parts, &mut chunks).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::FieldNotInVersion {
                field: "current_leader",
                ..
            }
        ));
        let mut parts = hinted(16);
        let err = encode_fetch_response(15, &parts, &mut chunks).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::FieldNotInVersion {
                field: "node_endpoints",
                ..
            }
        ));
        parts.node_endpoints.clear();
        assert!(encode_fetch_response(15, &parts, &mut chunks).is_ok());
    }

    #[test]
    fn top_level_error_code_is_written_from_v7() {
        for version in VERSIONS {
            let mut parts = parts(version);
            parts.error_code = crate::protocol::errors::UNKNOWN_SERVER_ERROR;
            let mut chunks = Vec::new();
            encode_fetch_response(version, &parts, &mut chunks).unwrap();
            assert_eq!(
                concat(&chunks),
                crate_encoding(version, &parts),
                "v{version}"
            );
        }
    }

    #[test]
    fn record_chunks_are_passed_through_without_a_copy() {
        for version in VERSIONS {
            let parts = parts(version);
            let given: Vec<(usize, usize)> = parts
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .flat_map(|p| &p.records)
                .filter(|c| !c.is_empty())
                .map(|c| (c.as_ptr() as usize, c.len()))
                .collect();
            let mut chunks = vec![Bytes::from_static(b"earlier response")];
            encode_fetch_response(version, &parts, &mut chunks).unwrap();
            assert_eq!(&chunks[0][..], b"earlier response");
            let passed: Vec<(usize, usize)> = chunks
                .iter()
                .map(|c| (c.as_ptr() as usize, c.len()))
                .filter(|chunk| given.contains(chunk))
                .collect();
            assert_eq!(passed, given, "v{version}");
            // Header pieces sit between record chunks: 4 record chunks, 5 pieces + 1 earlier.
            assert_eq!(chunks.len(), 1 + given.len() + 4, "v{version}");
        }
    }

    #[test]
    fn rejects_unsupported_versions_and_leaves_out_untouched() {
        for version in [-1, 19] {
            let mut chunks = vec![Bytes::from_static(b"x")];
            let err = encode_fetch_response(version, &parts(4), &mut chunks).unwrap_err();
            assert!(matches!(err, EncodeError::UnsupportedVersion { .. }));
            assert_eq!(chunks.len(), 1);
        }
    }

    #[test]
    fn rejects_fields_the_version_cannot_carry() {
        let mut with_session = parts(4);
        with_session.session_id = 5;
        let mut chunks = Vec::new();
        let err = encode_fetch_response(6, &with_session, &mut chunks).unwrap_err();
        assert_eq!(
            err,
            EncodeError::FieldNotInVersion {
                field: "session_id",
                version: 6
            }
        );

        let mut with_replica = parts(10);
        with_replica.topics[1].partitions[1].preferred_read_replica = 2;
        let err = encode_fetch_response(10, &with_replica, &mut chunks).unwrap_err();
        assert!(matches!(
            err,
            EncodeError::FieldNotInVersion {
                field: "preferred_read_replica",
                ..
            }
        ));
        assert!(
            chunks.is_empty(),
            "a failed encode must not leave partial chunks"
        );
    }

    #[test]
    fn rejects_a_topic_name_longer_than_i16_max() {
        let mut parts = parts(12);
        parts.topics[0].name = "n".repeat(i16::MAX as usize + 1);
        let mut chunks = Vec::new();
        let err = encode_fetch_response(12, &parts, &mut chunks).unwrap_err();
        assert!(matches!(err, EncodeError::TooLong { field: "topic", .. }));
        // From v13 the name is not on the wire at all.
        assert!(encode_fetch_response(13, &parts, &mut chunks).is_ok());
    }

    /// v0-3 against kafka-protocol 0.15.1 (Kafka 3.9's schemas), byte for byte.
    #[test]
    fn legacy_versions_match_kafka_3_9_schemas_byte_for_byte() {
        use kafka_protocol_old::messages as old;
        use kafka_protocol_old::protocol::Encodable as _;
        for version in 0..RECORD_BATCH_VERSION_MIN {
            let mut parts = parts(version);
            parts.topics.truncate(2);
            let mut chunks = Vec::new();
            encode_fetch_response(version, &parts, &mut chunks).unwrap();
            let mut response = old::FetchResponse::default();
            response.throttle_time_ms = parts.throttle_time_ms;
            for t in &parts.topics {
                let mut topic = old::fetch_response::FetchableTopicResponse::default();
                topic.topic = old::TopicName(kafka_protocol_old::protocol::StrBytes::from_string(
                    t.name.clone(),
                ));
                for p in &t.partitions {
                    let mut data = old::fetch_response::PartitionData::default();
                    data.partition_index = p.partition_index;
                    data.error_code = p.error_code;
                    data.high_watermark = p.high_watermark;
                    data.records = Some(Bytes::from(concat(&p.records)));
                    topic.partitions.push(data);
                }
                response.responses.push(topic);
            }
            let mut theirs = BytesMut::new();
            response.encode(&mut theirs, version).unwrap();
            assert_eq!(concat(&chunks), theirs.to_vec(), "v{version}");
        }
    }
}
