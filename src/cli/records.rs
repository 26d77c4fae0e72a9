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

/// Fixed fields of a v2 batch header that `corelog bench` patches in a pre-built batch
/// (all after the CRC field except the length, so every patch ends with [`seal`]).
const BATCH_LENGTH_AT: usize = 8;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const FIRST_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const RECORD_COUNT_AT: usize = 57;
/// Where the records (or the compressed records) of a batch start.
pub const BATCH_HEADER_BYTES: usize = 61;

/// Where each record of an uncompressed batch ends and where its value starts, so a
/// pre-built batch can be cut to its first k records and values can be stamped in place.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchLayout {
    pub record_ends: Vec<usize>,
    pub value_starts: Vec<usize>,
}

/// Walks the records of an uncompressed v2 `batch`.
pub fn layout(batch: &[u8]) -> anyhow::Result<BatchLayout> {
    anyhow::ensure!(batch.len() >= BATCH_HEADER_BYTES, "batch too short");
    anyhow::ensure!(
        i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]) & 7 == 0,
        "compressed batch has no record layout"
    );
    let count = i32::from_be_bytes(batch[RECORD_COUNT_AT..][..4].try_into().expect("4"));
    let mut out = BatchLayout {
        record_ends: Vec::with_capacity(count.max(0) as usize),
        value_starts: Vec::with_capacity(count.max(0) as usize),
    };
    let mut at = BATCH_HEADER_BYTES;
    for _ in 0..count {
        let (len, n) = varint(&batch[at..])?;
        let body = at + n;
        let end = body + usize::try_from(len)?;
        anyhow::ensure!(end <= batch.len(), "record runs past the batch");
        let mut p = body + 1; // attributes
        p += varint(&batch[p..end])?.1; // timestamp delta
        p += varint(&batch[p..end])?.1; // offset delta
        let (key_len, n) = varint(&batch[p..end])?;
        p += n + usize::try_from(key_len.max(0))?;
        let (_, n) = varint(&batch[p..end])?;
        out.value_starts.push(p + n);
        out.record_ends.push(end);
        at = end;
    }
    Ok(out)
}

/// A zigzag varint (Kafka's varint/varlong) and the bytes it took.
fn varint(b: &[u8]) -> anyhow::Result<(i64, usize)> {
    let mut raw = 0u64;
    for (i, byte) in b.iter().take(10).enumerate() {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((((raw >> 1) as i64) ^ -((raw & 1) as i64), i + 1));
        }
    }
    anyhow::bail!("bad varint")
}

/// Cuts an uncompressed `batch` (whose `layout` is given) to its first `records`
/// records: patches length, last offset delta and count. Returns the new length.
pub fn truncate_records(batch: &mut [u8], layout: &BatchLayout, records: usize) -> usize {
    assert!(records >= 1 && records <= layout.record_ends.len());
    let end = layout.record_ends[records - 1];
    let length = (end - BATCH_PREFIX_BYTES) as i32;
    batch[BATCH_LENGTH_AT..][..4].copy_from_slice(&length.to_be_bytes());
    batch[LAST_OFFSET_DELTA_AT..][..4].copy_from_slice(&(records as i32 - 1).to_be_bytes());
    batch[RECORD_COUNT_AT..][..4].copy_from_slice(&(records as i32).to_be_bytes());
    end
}

/// Sets a batch's first and max timestamps (its records keep timestamp delta 0).
pub fn set_timestamps(batch: &mut [u8], first_ms: i64, max_ms: i64) {
    batch[FIRST_TIMESTAMP_AT..][..8].copy_from_slice(&first_ms.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..][..8].copy_from_slice(&max_ms.to_be_bytes());
}

/// Recomputes the CRC32C of a batch after a patch (attributes to the end).
pub fn seal(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..][..4].copy_from_slice(&crc.to_be_bytes());
}

/// Header facts of one fetched batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchHead {
    pub base_offset: i64,
    pub last_offset: i64,
    pub records: i32,
    pub compressed: bool,
}

/// The complete batches of fetched `records` (a cut-off tail is left out), each with its
/// header facts and bytes; nothing is decoded.
pub fn batches(mut records: &[u8]) -> Vec<(BatchHead, &[u8])> {
    let mut out = Vec::new();
    while records.len() >= BATCH_HEADER_BYTES {
        let len = i32::from_be_bytes(records[BATCH_LENGTH_AT..][..4].try_into().expect("4"));
        let total = BATCH_PREFIX_BYTES + len.max(0) as usize;
        if len < 0 || records.len() < total || total < BATCH_HEADER_BYTES {
            break;
        }
        let (batch, rest) = records.split_at(total);
        let base_offset = i64::from_be_bytes(batch[..8].try_into().expect("8"));
        let delta = i32::from_be_bytes(batch[LAST_OFFSET_DELTA_AT..][..4].try_into().expect("4"));
        out.push((
            BatchHead {
                base_offset,
                last_offset: base_offset + i64::from(delta),
                records: i32::from_be_bytes(batch[RECORD_COUNT_AT..][..4].try_into().expect("4")),
                compressed: i16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]])
                    & 7
                    != 0,
            },
            batch,
        ));
        records = rest;
    }
    out
}

/// Calls `f(offset, value)` for every record of one batch: uncompressed batches are
/// walked in place, compressed ones decoded with the crate.
pub fn for_each_value(batch: &[u8], mut f: impl FnMut(i64, &[u8])) -> anyhow::Result<()> {
    let heads = batches(batch);
    let Some((head, _)) = heads.first() else {
        anyhow::bail!("not a whole batch");
    };
    if head.compressed {
        let set = RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(batch))?;
        for r in set.records {
            if let Some(v) = r.value {
                f(r.offset, &v);
            }
        }
        return Ok(());
    }
    let l = layout(batch)?;
    for (i, (start, end)) in l.value_starts.iter().zip(&l.record_ends).enumerate() {
        // The value runs to the headers count; bench records carry no headers (one byte).
        f(head.base_offset + i as i64, &batch[*start..end - 1]);
    }
    Ok(())
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
    fn layout_truncate_and_values() {
        let msgs: Vec<Message> = (0..3)
            .map(|i| Message {
                offset: i,
                timestamp: 5,
                key: None,
                value: Some(Bytes::from(vec![b'a' + i as u8; 20 + i as usize])),
                headers: vec![],
            })
            .collect();
        let batch = encode_batch(&msgs, Compression::None).unwrap();
        let l = layout(&batch).unwrap();
        assert_eq!(l.record_ends.len(), 3);
        assert_eq!(*l.record_ends.last().unwrap(), batch.len());
        let mut b = batch.to_vec();
        b[l.value_starts[1]] = b'Z';
        let n = truncate_records(&mut b, &l, 2);
        set_timestamps(&mut b[..n], 1000, 1001);
        seal(&mut b[..n]);
        let d = decode_fetched(Bytes::copy_from_slice(&b[..n]), 0).unwrap();
        assert_eq!(d.messages.len(), 2);
        assert_eq!(d.messages[0].timestamp, 1000);
        assert_eq!(d.messages[1].value.as_deref().unwrap()[0], b'Z');
        let mut seen = Vec::new();
        for_each_value(&b[..n], |o, v| seen.push((o, v.len()))).unwrap();
        assert_eq!(seen, vec![(0, 20), (1, 21)]);
        let heads = batches(&b[..n]);
        assert_eq!(heads[0].0.records, 2);
        assert_eq!(heads[0].0.last_offset, 1);
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
