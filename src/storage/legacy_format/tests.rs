//! Message sets written by hand from Kafka 3.9's message format (the layout in the
//! module comment, as `MessageV0`/`MessageV1`/`MessageSet` describe it), converted up and
//! read back with the kafka-protocol crate's v2 decoder, and batches converted down and
//! walked back by the message-set parser (which checks every CRC).

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::*;

const NOW_MS: i64 = 1_765_000_000_000;
const INFLATE_MAX: usize = 1 << 20;

/// One message written field by field, CRC-32 computed independently of `put_message`.
fn message(
    offset: i64,
    magic: u8,
    attributes: u8,
    ts: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut m = vec![magic, attributes];
    if magic == 1 {
        m.extend_from_slice(&ts.to_be_bytes());
    }
    for f in [key, value] {
        match f {
            None => m.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(f) => {
                m.extend_from_slice(&(f.len() as i32).to_be_bytes());
                m.extend_from_slice(f);
            }
        }
    }
    let mut crc = flate2::Crc::new();
    crc.update(&m);
    let mut out = offset.to_be_bytes().to_vec();
    out.extend_from_slice(&((m.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out.extend_from_slice(&m);
    out
}

fn decoded(batch: &[u8]) -> Vec<Record> {
    let mut buf = Bytes::copy_from_slice(batch);
    RecordBatchDecoder::decode(&mut buf).unwrap().records
}

#[test]
fn v0_messages_become_one_batch_stamped_with_the_append_time() {
    let mut set = message(0, 0, 0, 0, Some(b"k1"), Some(b"one"));
    set.extend(message(1, 0, 0, 0, None, Some(b"two")));
    set.extend(message(2, 0, 0, 0, Some(b"k3"), None));
    let up = message_set_to_batch(&set, NOW_MS, INFLATE_MAX).unwrap();
    assert_eq!(up.records, 3);
    let header = crate::storage::batch::check_batch(&up.batch, true).unwrap();
    assert_eq!((header.records_count, header.last_offset_delta), (3, 2));
    assert_eq!(
        (header.base_timestamp, header.max_timestamp),
        (NOW_MS, NOW_MS)
    );
    let records = decoded(&up.batch);
    let kv: Vec<_> = records
        .iter()
        .map(|r| (r.offset, r.key.clone(), r.value.clone()))
        .collect();
    assert_eq!(
        kv,
        vec![
            (
                0,
                Some(Bytes::from_static(b"k1")),
                Some(Bytes::from_static(b"one"))
            ),
            (1, None, Some(Bytes::from_static(b"two"))),
            (2, Some(Bytes::from_static(b"k3")), None),
        ]
    );
    assert!(records.iter().all(|r| r.timestamp == NOW_MS));
}

#[test]
fn v1_gzip_wrapper_keeps_timestamps_keys_and_codec() {
    // Inner offsets are relative (KIP-31); the wrapper's offset is the last one.
    let mut inner = message(0, 1, 0, 1000, Some(b"a"), Some(b"x"));
    inner.extend(message(1, 1, 0, 3000, Some(b"b"), Some(b"y")));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &inner).unwrap();
    let wrapper = message(1, 1, 1, 3000, None, Some(&gz.finish().unwrap()));
    let mut set = message(0, 1, 0, 500, None, Some(b"plain"));
    set.extend(wrapper);
    let up = message_set_to_batch(&set, NOW_MS, INFLATE_MAX).unwrap();
    let header = crate::storage::batch::check_batch(&up.batch, true).unwrap();
    assert_eq!(header.attributes & 7, 1, "gzip kept");
    assert_eq!((header.base_timestamp, header.max_timestamp), (500, 3000));
    let records = decoded(&up.batch);
    let got: Vec<_> = records
        .iter()
        .map(|r| (r.offset, r.timestamp, r.key.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 500, None),
            (1, 1000, Some(Bytes::from_static(b"a"))),
            (2, 3000, Some(Bytes::from_static(b"b")))
        ]
    );
}

#[test]
fn log_append_time_wrapper_stamps_its_messages() {
    let inner = message(0, 1, 0, 1000, None, Some(b"x"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &inner).unwrap();
    let set = message(
        0,
        1,
        1 | ATTRIBUTE_LOG_APPEND_TIME,
        7000,
        None,
        Some(&gz.finish().unwrap()),
    );
    let up = message_set_to_batch(&set, NOW_MS, INFLATE_MAX).unwrap();
    assert_eq!(decoded(&up.batch)[0].timestamp, 7000);
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let mut set = message(0, 0, 0, 0, None, Some(b"value"));
    let last = set.len() - 1;
    set[last] ^= 1;
    let err = message_set_to_batch(&set, NOW_MS, INFLATE_MAX).unwrap_err();
    assert!(
        matches!(err, StorageError::Corrupt(ref m) if m.contains("CRC")),
        "{err}"
    );
    let good = message(0, 0, 0, 0, None, Some(b"value"));
    let err = message_set_to_batch(&good[..good.len() - 2], NOW_MS, INFLATE_MAX).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt(_)), "{err}");
    let err = message_set_to_batch(&[], NOW_MS, INFLATE_MAX).unwrap_err();
    assert!(matches!(err, StorageError::InvalidRecord(_)), "{err}");
    let zstd = message(0, 1, 4, 1, None, Some(b"z"));
    let err = message_set_to_batch(&zstd, NOW_MS, INFLATE_MAX).unwrap_err();
    assert!(matches!(err, StorageError::UnsupportedFormat(_)), "{err}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, b"").unwrap();
    let empty_wrapper = message(0, 1, 1, 1, None, Some(&gz.finish().unwrap()));
    let err = message_set_to_batch(&empty_wrapper, NOW_MS, INFLATE_MAX).unwrap_err();
    assert!(matches!(err, StorageError::InvalidRecord(_)), "{err}");
    // A wrapper that inflates past the bound is refused, not decompressed on.
    let big = vec![b'a'; 4096];
    let inner = message(0, 1, 0, 1, None, Some(&big));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &inner).unwrap();
    let set = message(0, 1, 1, 1, None, Some(&gz.finish().unwrap()));
    assert!(message_set_to_batch(&set, NOW_MS, 1024).is_err());
}

fn v2_batch(
    base_offset: i64,
    values: &[&'static [u8]],
    compression: Compression,
    append_time: bool,
) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: if append_time {
                TimestampType::LogAppend
            } else {
                TimestampType::Creation
            },
            offset: base_offset + i as i64,
            // The encoder starts a new batch whenever offset - sequence changes.
            sequence: i as i32 - 1,
            timestamp: 1000 + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from_static(v)),
            headers: IndexMap::from([(
                kafka_protocol::protocol::StrBytes::from_static_str("h"),
                None,
            )]),
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options).unwrap();
    if append_time {
        // The crate's encoder never sets the LogAppendTime bit; the broker does at append.
        out[22] |= ATTRIBUTE_LOG_APPEND_TIME;
        out[35..43].copy_from_slice(&9000i64.to_be_bytes());
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    out.freeze()
}

fn budget() -> DownConvertBudget {
    DownConvertBudget {
        output_bytes_left: 1 << 20,
        inflated_bytes_left: 1 << 20,
    }
}

/// (offset, timestamp, key, value) of one message read back.
type ReadMessage = (i64, Option<i64>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Every message of a set, CRCs checked.
fn read_set(set: &[u8]) -> Vec<ReadMessage> {
    let mut out = Vec::new();
    let mut pos = 0;
    for m in walk_set(set).unwrap() {
        let offset = i64::from_be_bytes(set[pos..pos + 8].try_into().unwrap());
        let size = i32::from_be_bytes(set[pos + 8..pos + 12].try_into().unwrap()) as usize;
        pos += 12 + size;
        out.push((
            offset,
            m.timestamp,
            m.key.map(<[u8]>::to_vec),
            m.value.map(<[u8]>::to_vec),
        ));
    }
    out
}

#[test]
fn batches_convert_down_to_both_formats_from_the_fetch_offset() {
    let batches = [
        v2_batch(10, &[b"a", b"b"], Compression::None, false),
        v2_batch(12, &[b"c", b"d"], Compression::Gzip, false),
    ];
    for magic in [0u8, 1] {
        let down = batches_to_message_set(&batches, magic, 11, 1 << 20, &mut budget()).unwrap();
        assert_eq!(down.records, 3);
        let got = read_set(&down.message_set);
        let ts = |t: i64| (magic == 1).then_some(t);
        assert_eq!(
            got,
            vec![
                (11, ts(1001), Some(b"k1".to_vec()), Some(b"b".to_vec())),
                (12, ts(1000), Some(b"k0".to_vec()), Some(b"c".to_vec())),
                (13, ts(1001), Some(b"k1".to_vec()), Some(b"d".to_vec())),
            ],
            "magic {magic}"
        );
    }
}

#[test]
fn log_append_time_batches_give_the_batch_time_and_flag() {
    let batches = [v2_batch(0, &[b"a"], Compression::None, true)];
    let down = batches_to_message_set(&batches, 1, 0, 1 << 20, &mut budget()).unwrap();
    let m = walk_set(&down.message_set).unwrap()[0];
    assert_eq!(
        (m.attributes, m.timestamp),
        (ATTRIBUTE_LOG_APPEND_TIME, Some(9000))
    );
}

#[test]
fn several_batches_in_one_chunk_and_a_partial_tail() {
    let mut chunk = BytesMut::new();
    chunk.extend_from_slice(&v2_batch(0, &[b"a", b"b"], Compression::None, false));
    chunk.extend_from_slice(&v2_batch(2, &[b"c"], Compression::Gzip, false));
    let third = v2_batch(3, &[b"d"], Compression::None, false);
    chunk.extend_from_slice(&third[..third.len() - 1]);
    let down = batches_to_message_set(&[chunk.freeze()], 0, 0, 1 << 20, &mut budget()).unwrap();
    let offsets: Vec<i64> = read_set(&down.message_set).iter().map(|m| m.0).collect();
    assert_eq!(offsets, vec![0, 1, 2]);
}

#[test]
fn down_conversion_stops_at_the_limits_but_always_gives_one_message() {
    let batches = [v2_batch(
        0,
        &[b"aaaa", b"bbbb", b"cccc"],
        Compression::Lz4,
        false,
    )];
    let one = message_bytes(1, Some(b"k0"), Some(b"aaaa"));
    let down = batches_to_message_set(&batches, 1, 0, 1, &mut budget()).unwrap();
    assert_eq!(down.records, 1);
    let down = batches_to_message_set(&batches, 1, 0, 2 * one, &mut budget()).unwrap();
    assert_eq!(down.records, 2);
    let mut shared = DownConvertBudget {
        output_bytes_left: one,
        inflated_bytes_left: 1 << 20,
    };
    assert_eq!(
        batches_to_message_set(&batches, 1, 0, 1 << 20, &mut shared)
            .unwrap()
            .records,
        1
    );
    assert_eq!(shared.output_bytes_left, 0);
    let mut starved = DownConvertBudget {
        output_bytes_left: 1 << 20,
        inflated_bytes_left: 4,
    };
    assert!(batches_to_message_set(&batches, 1, 0, 1 << 20, &mut starved).is_err());
}

#[test]
fn up_then_down_gives_back_the_messages() {
    let mut set = Vec::new();
    for i in 0..5i64 {
        set.extend(message(
            i,
            1,
            0,
            100 + i,
            Some(format!("key{i}").as_bytes()),
            Some(b"v"),
        ));
    }
    let up = message_set_to_batch(&set, NOW_MS, INFLATE_MAX).unwrap();
    let down = batches_to_message_set(&[up.batch.freeze()], 1, 0, 1 << 20, &mut budget()).unwrap();
    assert_eq!(&down.message_set[..], &set[..]);
}
