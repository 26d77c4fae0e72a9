//! Zero-copy ProduceRequest decode, versions 0..=13.
//!
//! Each partition's records come out as a `BytesMut` split off the request buffer: the
//! same allocation, no copy, and still mutable, because storage patches each batch's
//! baseOffset and partitionLeaderEpoch in place before writing it.
//!
//! ```text
//! ProduceRequest  => transactional_id(v3+) acks:i16 timeout_ms:i32 [topic] TAGS(v9+)
//!   topic         => name (v3-12) | topic_id:uuid (v13+)  [partition] TAGS(v9+)
//!     partition   => index:i32 records:nullable bytes     TAGS(v9+)
//! ```
//! Strings, bytes and arrays take their compact forms from v9 (flexible versions).
//! Versions 0-2 carry message sets (formats v0/v1) instead of record batches; they are
//! sliced out the same way and converted by `storage::legacy_format`.
//!
//! Memory: no vector is sized from a count that the remaining bytes cannot hold, so what a
//! request makes us allocate is bounded by its size. The bound is loose: a minimal topic
//! entry is 3 wire bytes and 64 decoded bytes, so a hostile request can cost about 21x
//! its size; the connection layer's limit on request bytes in flight has to allow for it.

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;

use super::wire::Reader;
use super::DecodeError;

pub const PRODUCE_VERSION_MIN: i16 = 0;
/// First version with a transactional_id and record batches (message format v2) only.
pub const RECORD_BATCH_VERSION_MIN: i16 = 3;
pub const PRODUCE_VERSION_MAX: i16 = 13;
/// First version with compact encodings and tagged fields.
const FLEXIBLE_VERSION_MIN: i16 = 9;
/// First version that names topics by id instead of by name.
const TOPIC_ID_VERSION_MIN: i16 = 13;

/// A decoded ProduceRequest whose record data still lives in the request buffer.
#[derive(Debug)]
pub struct ProduceRequestView {
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<TopicProduceView>,
}

#[derive(Debug)]
pub struct TopicProduceView {
    /// Empty from v13, which names the topic by `topic_id` only.
    pub name: String,
    /// All zero before v13.
    pub topic_id: [u8; 16],
    pub partitions: Vec<PartitionProduceView>,
}

#[derive(Debug)]
pub struct PartitionProduceView {
    pub index: i32,
    /// A view of the request buffer (zero copy); None if the client sent null.
    pub records: Option<BytesMut>,
}

/// Decodes a ProduceRequest body (the bytes after the request header). Tagged fields are
/// skipped; bytes after the request, if any, are ignored as Kafka does.
pub fn decode_produce_request(
    version: i16,
    mut body: BytesMut,
) -> Result<ProduceRequestView, DecodeError> {
    if !(PRODUCE_VERSION_MIN..=PRODUCE_VERSION_MAX).contains(&version) {
        return Err(DecodeError::UnsupportedVersion {
            api_key: ApiKey::Produce as i16,
            version,
            min: PRODUCE_VERSION_MIN,
            max: PRODUCE_VERSION_MAX,
        });
    }
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let mut reader = Reader::new(&mut body, flexible);
    let transactional_id = if version >= RECORD_BATCH_VERSION_MIN {
        reader.nullable_string("transactional_id")?
    } else {
        None
    };
    let acks = reader.i16("acks")?;
    let timeout_ms = reader.i32("timeout_ms")?;
    let topics = decode_topics(&mut reader, version)?;
    if flexible {
        reader.skip_tagged_fields("ProduceRequest tagged fields")?;
    }
    Ok(ProduceRequestView {
        transactional_id,
        acks,
        timeout_ms,
        topics,
    })
}

fn decode_topics(
    reader: &mut Reader<'_>,
    version: i16,
) -> Result<Vec<TopicProduceView>, DecodeError> {
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let by_id = version >= TOPIC_ID_VERSION_MIN;
    // The smallest topic entry: an empty name or a topic id, an empty partition array,
    // and (flexible) an empty tagged-field section.
    let entry_bytes_min = match (flexible, by_id) {
        (false, _) => 2 + 4,
        (true, false) => 1 + 1 + 1,
        (true, true) => 16 + 1 + 1,
    };
    let count = reader.array_len("topic_data", entry_bytes_min)?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        let (name, topic_id) = if by_id {
            (String::new(), reader.uuid("topic_id")?)
        } else {
            (reader.string("topic name")?, [0; 16])
        };
        let partitions = decode_partitions(reader, flexible)?;
        if flexible {
            reader.skip_tagged_fields("topic_data tagged fields")?;
        }
        topics.push(TopicProduceView {
            name,
            topic_id,
            partitions,
        });
    }
    Ok(topics)
}

fn decode_partitions(
    reader: &mut Reader<'_>,
    flexible: bool,
) -> Result<Vec<PartitionProduceView>, DecodeError> {
    // index, a null records field, and (flexible) an empty tagged-field section.
    let entry_bytes_min = if flexible { 4 + 1 + 1 } else { 4 + 4 };
    let count = reader.array_len("partition_data", entry_bytes_min)?;
    let mut partitions = Vec::with_capacity(count);
    for _ in 0..count {
        let index = reader.i32("partition index")?;
        let records = reader.nullable_bytes("records")?;
        if flexible {
            reader.skip_tagged_fields("partition_data tagged fields")?;
        }
        partitions.push(PartitionProduceView { index, records });
    }
    Ok(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, Bytes};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// The versions the current crate encodes; v0-2 are checked against 0.15.1 below.
    const VERSIONS: std::ops::RangeInclusive<i16> = RECORD_BATCH_VERSION_MIN..=PRODUCE_VERSION_MAX;

    fn record_batch(value: &'static [u8]) -> Bytes {
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from_static(b"key")),
            value: Some(Bytes::from_static(value)),
            headers: IndexMap::new(),
        };
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(&mut out, [&record, &record], &options).unwrap();
        out.freeze()
    }

    fn partition(index: i32, records: Option<Bytes>, flexible: bool) -> PartitionProduceData {
        let partition = PartitionProduceData::default()
            .with_index(index)
            .with_records(records);
        if flexible {
            partition.with_unknown_tagged_field(3, Bytes::from_static(b"p-tag"))
        } else {
            partition
        }
    }

    /// A topic named as the version allows: by name before v13, by id from v13.
    fn topic(name: &str, id: [u8; 16], version: i16) -> TopicProduceData {
        let mut topic = if version >= TOPIC_ID_VERSION_MIN {
            // kafka-protocol does not re-export `uuid`: get one by decoding a v13 topic
            // entry (topic id, empty compact partition array, no tagged fields).
            let mut entry = BytesMut::from(&id[..]);
            entry.put_slice(&[1, 0]);
            TopicProduceData::decode(&mut entry, 13).unwrap()
        } else {
            TopicProduceData::default().with_name(TopicName(StrBytes::from_string(name.to_owned())))
        };
        if version >= FLEXIBLE_VERSION_MIN {
            topic = topic.with_unknown_tagged_field(0, Bytes::from_static(b"t"));
        }
        topic
    }

    /// Two topics of two partitions: a real batch, a null, arbitrary bytes, empty bytes.
    fn crate_request(version: i16, transactional_id: Option<&str>) -> ProduceRequest {
        let flexible = version >= FLEXIBLE_VERSION_MIN;
        let first = topic("orders", [0xa1; 16], version).with_partition_data(vec![
            partition(0, Some(record_batch(b"first value")), flexible),
            partition(1, None, flexible),
        ]);
        let second = topic("clicks", [0xb2; 16], version).with_partition_data(vec![
            partition(
                5,
                Some(Bytes::from_static(b"\x00\x01not a batch")),
                flexible,
            ),
            partition(7, Some(Bytes::new()), flexible),
        ]);
        let request = ProduceRequest::default()
            .with_transactional_id(
                transactional_id.map(|t| TransactionalId(StrBytes::from_string(t.to_owned()))),
            )
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![first, second]);
        if flexible {
            request.with_unknown_tagged_field(9, Bytes::from_static(b"request tag"))
        } else {
            request
        }
    }

    fn encode(request: &ProduceRequest, version: i16) -> BytesMut {
        let mut out = BytesMut::new();
        request.encode(&mut out, version).unwrap();
        out
    }

    fn assert_same(ours: &ProduceRequestView, theirs: &ProduceRequest, version: i16) {
        let theirs_txn = theirs.transactional_id.as_ref().map(|t| t.0.as_str());
        assert_eq!(ours.transactional_id.as_deref(), theirs_txn, "v{version}");
        assert_eq!(ours.acks, theirs.acks);
        assert_eq!(ours.timeout_ms, theirs.timeout_ms);
        assert_eq!(ours.topics.len(), theirs.topic_data.len());
        for (our_topic, their_topic) in ours.topics.iter().zip(&theirs.topic_data) {
            assert_eq!(our_topic.name, their_topic.name.0.as_str(), "v{version}");
            assert_eq!(&our_topic.topic_id, their_topic.topic_id.as_bytes());
            assert_eq!(our_topic.partitions.len(), their_topic.partition_data.len());
            let pairs = our_topic.partitions.iter().zip(&their_topic.partition_data);
            for (our_part, their_part) in pairs {
                assert_eq!(our_part.index, their_part.index);
                let our_records = our_part.records.as_ref().map(|r| &r[..]);
                let their_records = their_part.records.as_ref().map(|r| &r[..]);
                assert_eq!(our_records, their_records, "v{version}");
            }
        }
    }

    #[test]
    fn matches_the_crate_for_every_version() {
        for version in VERSIONS {
            for transactional_id in [Some("txn-1"), Some(""), None] {
                let request = crate_request(version, transactional_id);
                let wire = encode(&request, version);
                let theirs = ProduceRequest::decode(&mut wire.clone().freeze(), version).unwrap();
                assert_eq!(theirs, request, "the crate round-trips v{version}");
                let ours = decode_produce_request(version, wire).unwrap();
                assert_same(&ours, &theirs, version);
            }
        }
    }

    #[test]
    fn record_data_is_a_view_of_the_request_buffer() {
        for version in VERSIONS {
            let wire = encode(&crate_request(version, None), version);
            let buffer = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
            let mut ours = decode_produce_request(version, wire).unwrap();
            let records = ours.topics[0].partitions[0].records.as_mut().unwrap();
            assert!(buffer.contains(&(records.as_ptr() as usize)), "v{version}");
            assert!(buffer.contains(&(records.as_ptr() as usize + records.len() - 1)));
            assert_eq!(&records[..], &record_batch(b"first value")[..]);
            // Storage patches baseOffset (the first 8 bytes) in place.
            records[..8].copy_from_slice(&42i64.to_be_bytes());
            assert_eq!(&records[..8], &42i64.to_be_bytes());
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for version in VERSIONS {
            for transactional_id in [Some("txn"), None] {
                let wire = encode(&crate_request(version, transactional_id), version);
                for len in 0..wire.len() {
                    let prefix = BytesMut::from(&wire[..len]);
                    assert!(
                        decode_produce_request(version, prefix).is_err(),
                        "v{version}: a {len}-byte prefix of {} decoded",
                        wire.len()
                    );
                }
            }
        }
    }

    fn request_prefix(flexible: bool) -> BytesMut {
        let mut body = BytesMut::new();
        if flexible {
            body.put_u8(0); // null transactional_id
        } else {
            body.put_i16(-1);
        }
        body.put_i16(1);
        body.put_i32(1_000);
        body
    }

    #[test]
    fn huge_topic_count_is_rejected_before_allocating() {
        let mut classic = request_prefix(false);
        classic.put_i32(i32::MAX);
        classic.put_slice(&[0; 10]);
        let err = decode_produce_request(3, classic).unwrap_err();
        assert!(
            matches!(err, DecodeError::ArrayTooLong { count, .. } if count == i32::MAX as usize)
        );

        let mut flexible = request_prefix(true);
        flexible.put_slice(&[0xff, 0xff, 0xff, 0x7f]); // 2^28 - 1, so 2^28 - 2 entries
        flexible.put_slice(&[0; 10]);
        let err = decode_produce_request(9, flexible).unwrap_err();
        assert!(matches!(err, DecodeError::ArrayTooLong { count, .. } if count == (1 << 28) - 2));

        let mut beyond_i32 = request_prefix(true);
        beyond_i32.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // u32::MAX
        beyond_i32.put_slice(&[0; 10]);
        let err = decode_produce_request(9, beyond_i32).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidLength { .. }));
    }

    #[test]
    fn huge_partition_count_and_record_length_are_rejected() {
        let mut body = request_prefix(false);
        body.put_i32(1);
        body.put_i16(1);
        body.put_u8(b't');
        body.put_i32(1_000_000_000);
        body.put_slice(&[0; 16]);
        let err = decode_produce_request(8, body).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::ArrayTooLong {
                field: "partition_data",
                ..
            }
        ));

        let mut body = request_prefix(false);
        body.put_i32(1);
        body.put_i16(1);
        body.put_u8(b't');
        body.put_i32(1);
        body.put_i32(0);
        body.put_i32(i32::MAX);
        body.put_slice(&[0; 16]);
        let err = decode_produce_request(8, body).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Truncated {
                field: "records",
                ..
            }
        ));
    }

    #[test]
    fn huge_tagged_field_count_is_an_error() {
        let mut body = request_prefix(true);
        body.put_u8(1); // no topics
        body.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        body.put_slice(&[0; 64]);
        assert!(decode_produce_request(9, body).is_err());
    }

    #[test]
    fn malformed_lengths_and_varints_are_errors() {
        let mut body = request_prefix(false);
        body.put_i32(-2);
        let err = decode_produce_request(3, body).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidLength { length: -2, .. }));

        let mut body = request_prefix(false);
        body.put_i32(-1);
        let err = decode_produce_request(3, body).unwrap_err();
        assert_eq!(
            err,
            DecodeError::UnexpectedNull {
                field: "topic_data"
            }
        );

        let mut body = request_prefix(true);
        body.put_slice(&[0x80, 0x80, 0x80, 0x80, 0x10]);
        let err = decode_produce_request(9, body).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidVarint { .. }));

        let mut body = BytesMut::new();
        body.put_i16(2);
        body.put_slice(&[0xff, 0xfe]);
        let err = decode_produce_request(3, body).unwrap_err();
        assert_eq!(
            err,
            DecodeError::InvalidUtf8 {
                field: "transactional_id"
            }
        );
    }

    #[test]
    fn versions_outside_0_to_13_are_unsupported() {
        for version in [-1, 14, i16::MAX] {
            let body = encode(&crate_request(3, None), 3);
            let err = decode_produce_request(version, body).unwrap_err();
            assert!(
                matches!(err, DecodeError::UnsupportedVersion { version: v, .. } if v == version)
            );
        }
    }

    /// Random corruption of valid requests never panics, and whatever we accept the crate
    /// accepts with the same content. (The other direction cannot be run: on a corrupt
    /// array count kafka-protocol 0.18 calls `Vec::with_capacity(count)` and aborts the
    /// process trying to allocate tens of gigabytes, which is why we bound counts first; the
    /// next test runs it where the counts are left intact.)
    #[test]
    fn corrupted_requests_never_panic_and_agree_with_the_crate() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for version in VERSIONS {
            let wire = encode(&crate_request(version, Some("txn")), version);
            for _ in 0..2_000 {
                let mut body = wire.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() % body.len() as u64) as usize;
                    body[at] = next() as u8;
                }
                let keep = body.len() - (next() % 3) as usize;
                body.truncate(keep);
                let mut copy = body.clone().freeze();
                if let Ok(ours) = decode_produce_request(version, body) {
                    match ProduceRequest::decode(&mut copy, version) {
                        Ok(theirs) => assert_same(&ours, &theirs, version),
                        Err(e) => panic!("v{version}: we accept what the crate rejects ({e})"),
                    }
                }
            }
        }
    }

    /// The direction the random test cannot run: what the crate accepts, we accept.
    /// Corrupting only the bytes inside a `records` field leaves the request well formed
    /// (batch validation belongs to storage, per partition), so both must accept it with
    /// the same content; a decoder that rejected every corrupted body fails here.
    #[test]
    fn corrupted_record_bytes_are_accepted_like_the_crate_does() {
        let batch = record_batch(b"first value");
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for version in VERSIONS {
            let wire = encode(&crate_request(version, Some("txn")), version);
            let start = wire
                .windows(batch.len())
                .position(|w| w == &batch[..])
                .expect("the record batch is in the request");
            for _ in 0..500 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let mut body = wire.clone();
                body[start + (state % batch.len() as u64) as usize] ^=
                    1 + (state >> 32) as u8 % 255;
                let mut copy = body.clone().freeze();
                let theirs = ProduceRequest::decode(&mut copy, version).unwrap();
                let ours = decode_produce_request(version, body).unwrap_or_else(|e| {
                    panic!("v{version}: we reject what the crate accepts: {e}")
                });
                assert_same(&ours, &theirs, version);
            }
        }
    }

    /// v0-2, which the current crate no longer has, against kafka-protocol 0.15.1 (Kafka
    /// 3.9's schemas): no transactional_id, records are message sets.
    #[test]
    fn legacy_versions_match_kafka_3_9_schemas() {
        use kafka_protocol_old::messages as old;
        use kafka_protocol_old::protocol::Encodable as _;
        let name = |n: &str| {
            old::TopicName(kafka_protocol_old::protocol::StrBytes::from_string(
                n.into(),
            ))
        };
        for version in 0..RECORD_BATCH_VERSION_MIN {
            let mut p0 = old::produce_request::PartitionProduceData::default();
            p0.index = 3;
            p0.records = Some(Bytes::from_static(b"\0\0\0\0\0\0\0\0message set"));
            let mut p1 = old::produce_request::PartitionProduceData::default();
            p1.index = 4;
            p1.records = None;
            let mut topic = old::produce_request::TopicProduceData::default();
            topic.name = name("orders");
            topic.partition_data = vec![p0, p1];
            let mut request = old::ProduceRequest::default();
            request.acks = 1;
            request.timeout_ms = 1500;
            request.topic_data = vec![topic];
            let mut body = BytesMut::new();
            request.encode(&mut body, version).unwrap();
            let ours = decode_produce_request(version, body).unwrap();
            assert_eq!(
                (ours.transactional_id, ours.acks, ours.timeout_ms),
                (None, 1, 1500)
            );
            assert_eq!(ours.topics.len(), 1);
            assert_eq!(ours.topics[0].name, "orders");
            let parts = &ours.topics[0].partitions;
            assert_eq!((parts[0].index, parts[1].index), (3, 4));
            assert_eq!(
                parts[0].records.as_deref(),
                Some(&b"\0\0\0\0\0\0\0\0message set"[..])
            );
            assert!(parts[1].records.is_none());
        }
    }
}
