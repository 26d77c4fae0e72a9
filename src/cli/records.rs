//! Record batches (message format v2) for the toolbox: building one batch per partition
//! for `corelog produce`, and reading the record bytes of a Fetch response for
//! `corelog consume`. Both go through the kafka-protocol crate's `records` module, which
//! does the varint record layout, CRC32C and every codec (gzip, snappy with xerial
//! framing, lz4 frames, zstd).

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Bytes before a batch's length field ends: baseOffset (8) + batchLength (4).
const BATCH_PREFIX_BYTES: usize = 12;
/// Where the magic byte sits in a batch.
const MAGIC_OFFSET: usize = 16;
const MAGIC_V2: u8 = 2;

/// One record as the tools see it, before it is written or after it is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

pub fn parse_compression(name: &str) -> Option<Compression> {
    Some(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return None,
    })
}

/// Encodes `messages` as one v2 batch (base offset 0, the broker assigns real offsets),
/// without a producer id, as a non-idempotent producer sends it.
pub fn encode_batch(messages: &[Message], compression: Compression) -> anyhow::Result<Bytes> {
    let records: Vec<Record> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The crate keeps records in one batch while offset - sequence is constant;
            // this makes the batch's base sequence -1 (no idempotence).
            sequence: i as i32 - 1,
            timestamp: m.timestamp,
            key: m.key.clone(),
            value: m.value.clone(),
            headers: m
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)?;
    Ok(buf.freeze())
}

/// What one partition's fetched record bytes hold.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Data records at or after the fetch offset, in offset order.
    pub messages: Vec<Message>,
    /// The offset after the last complete batch (control batches included), so the next
    /// fetch moves past batches that held nothing to print.
    pub next_offset: Option<i64>,
}

/// Reads every complete batch of `records`; a batch cut off at the end (the broker may
/// send a partial one when it hits max bytes) is left for the next fetch. Records before
/// `fetch_offset` (a compressed batch is returned whole) and control records are skipped.
pub fn decode_fetched(mut records: Bytes, fetch_offset: i64) -> anyhow::Result<Decoded> {
    let mut out = Decoded::default();
    while records.len() >= BATCH_PREFIX_BYTES {
        let base_offset = i64::from_be_bytes(records[..8].try_into().expect("8 bytes"));
        let batch_len = i32::from_be_bytes(records[8..12].try_into().expect("4 bytes"));
        anyhow::ensure!(batch_len >= 0, "negative batch length {batch_len}");
        let total = BATCH_PREFIX_BYTES + batch_len as usize;
        if records.len() < total {
            break;
        }
        let mut batch = records.split_to(total);
        anyhow::ensure!(
            batch.len() > MAGIC_OFFSET && batch[MAGIC_OFFSET] == MAGIC_V2,
            "batch at offset {base_offset} is not message format v2"
        );
        let last_offset_delta = i32::from_be_bytes(batch[23..27].try_into().expect("4 bytes"));
        let set = RecordBatchDecoder::decode(&mut batch)?;
        for r in set.records {
            if r.control || r.offset < fetch_offset {
                continue;
            }
            out.messages.push(Message {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
        out.next_offset = Some(base_offset + i64::from(last_offset_delta) + 1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: i64, key: Option<&'static str>, value: &'static str) -> Message {
        Message {
            offset: i,
            timestamp: 1_700_000_000_000 + i,
            key: key.map(|k| Bytes::from_static(k.as_bytes())),
            value: Some(Bytes::from_static(value.as_bytes())),
            headers: vec![("h".to_string(), Some(Bytes::from_static(b"1")))],
        }
    }

    #[test]
    fn round_trip_every_codec() {
        let msgs = vec![
            msg(0, Some("k1"), "v1"),
            msg(1, None, "v2"),
            msg(2, Some(""), ""),
        ];
        for c in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let batch = encode_batch(&msgs, parse_compression(c).unwrap()).unwrap();
            // The crate's own decoder reads it as one batch with our records.
            let sets = RecordBatchDecoder::decode_all(&mut batch.clone()).unwrap();
            assert_eq!(sets.len(), 1, "{c}");
            assert_eq!(sets[0].records.len(), 3, "{c}");
            assert_eq!(sets[0].records[0].sequence, -1, "{c}: base sequence");
            let d = decode_fetched(batch, 0).unwrap();
            assert_eq!(d.messages, msgs, "{c}");
            assert_eq!(d.next_offset, Some(3));
        }
    }

    #[test]
    fn crc_and_attributes() {
        let batch = encode_batch(&[msg(0, None, "x")], Compression::Gzip).unwrap();
        let crc = u32::from_be_bytes(batch[17..21].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&batch[21..]));
        assert_eq!(i16::from_be_bytes(batch[21..23].try_into().unwrap()) & 7, 1);
    }

    #[test]
    fn skips_records_before_fetch_offset_and_partial_tail() {
        let msgs = vec![msg(0, None, "a"), msg(1, None, "b"), msg(2, None, "c")];
        let batch = encode_batch(&msgs, Compression::Lz4).unwrap();
        let mut two = BytesMut::from(&batch[..]);
        two.extend_from_slice(&batch[..batch.len() - 5]);
        let d = decode_fetched(two.freeze(), 2).unwrap();
        assert_eq!(d.messages, vec![msgs[2].clone()]);
        assert_eq!(d.next_offset, Some(3));
    }
}
