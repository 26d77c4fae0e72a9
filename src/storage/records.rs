//! The records inside a v2 record batch: walking them (keys, tombstones, deltas),
//! bounded decompression, rebuilding a batch from some of its records (the cleaner),
//! and recompressing a produced batch to the topic's `compression.type`.
//!
//! ```text
//!  batch:  | 61-byte header | records (raw, or one compressed blob of them) |
//!  record: varint length | attributes i8 | timestampDelta varlong | offsetDelta varint
//!          | keyLength varint | key | valueLength varint | value | headers...
//! ```
//!
//! Nothing here allocates in proportion to a count or length read from input without
//! checking it against bytes actually present: decompression stops at
//! `inflated_bytes_max`, and a batch is walked by this module (which checks every
//! length) before the kafka-protocol crate's decoder, which reserves by the declared
//! counts, ever sees it.

use std::borrow::Cow;
use std::io::Read;

use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::Compressor;
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::{BatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD_LEN};
use super::StorageError;

/// Attribute bit of a batch whose baseTimestamp holds the delete horizon (KIP-534).
pub const ATTRIBUTE_DELETE_HORIZON: i16 = 0x40;
const ATTRIBUTE_CODEC_MASK: i16 = 0x07;
/// How far a compressed batch may inflate relative to `message.max.bytes`.
pub const INFLATE_RATIO_MAX: usize = 64;
/// A fixed ceiling on one batch's inflated records, whatever `message.max.bytes` says.
pub const INFLATED_BYTES_CAP: usize = 256 << 20;

/// The decompression bound for a topic with this `message.max.bytes`.
pub fn inflated_bytes_max(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(INFLATE_RATIO_MAX)
        .min(INFLATED_BYTES_CAP)
}

pub fn codec_of(header: &BatchHeader) -> u8 {
    (header.attributes & ATTRIBUTE_CODEC_MASK) as u8
}

pub fn has_delete_horizon(header: &BatchHeader) -> bool {
    header.attributes & ATTRIBUTE_DELETE_HORIZON != 0
}

/// One record, borrowed from the (decompressed) records bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The whole record, length prefix included.
    pub bytes: &'a [u8],
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    /// `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    pub is_tombstone: bool,
    /// From keyLength to the end: copied as is when the record is rewritten.
    rest: &'a [u8],
    attributes: u8,
}

/// A record's key and value, borrowed (None: null).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

impl<'a> RecordView<'a> {
    /// The record's key and value.
    pub fn key_value(&self) -> Result<KeyValue<'a>, StorageError> {
        let mut at = 0;
        let key = read_field(self.rest, &mut at)?;
        let value = read_field(self.rest, &mut at)?;
        Ok((key, value))
    }
}

fn corrupt(why: impl Into<String>) -> StorageError {
    StorageError::Corrupt(why.into())
}

/// Reads a zigzag varint of at most `max_bytes` bytes.
fn read_varint(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Result<i64, StorageError> {
    let mut raw: u64 = 0;
    for i in 0..max_bytes {
        let byte = *buf.get(*pos).ok_or_else(|| corrupt("record truncated"))?;
        *pos += 1;
        raw |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err(corrupt("varint too long"))
}

fn read_i32_varint(buf: &[u8], pos: &mut usize) -> Result<i32, StorageError> {
    let v = read_varint(buf, pos, 5)?;
    i32::try_from(v).map_err(|_| corrupt("varint out of range"))
}

fn write_varint(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// A length-prefixed byte field (-1: null) inside a record body.
fn read_field<'a>(body: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, StorageError> {
    let len = read_i32_varint(body, pos)?;
    if len < -1 {
        return Err(corrupt(format!("negative field length {len}")));
    }
    if len == -1 {
        return Ok(None);
    }
    let end = pos
        .checked_add(len as usize)
        .filter(|&end| end <= body.len())
        .ok_or_else(|| corrupt("record field runs past the record"))?;
    let field = &body[*pos..end];
    *pos = end;
    Ok(Some(field))
}

fn parse_record(bytes: &[u8]) -> Result<(RecordView<'_>, usize), StorageError> {
    let mut pos = 0;
    let len = read_i32_varint(bytes, &mut pos)?;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| pos.checked_add(l))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| corrupt(format!("record length {len} does not fit the batch")))?;
    let body = &bytes[pos..end];
    let mut at = 0;
    let attributes = *body.first().ok_or_else(|| corrupt("empty record"))?;
    at += 1;
    let timestamp_delta = read_varint(body, &mut at, 10)?;
    let offset_delta = read_i32_varint(body, &mut at)?;
    let rest_at = at;
    let key = read_field(body, &mut at)?;
    let value = read_field(body, &mut at)?;
    let headers = read_i32_varint(body, &mut at)?;
    if headers < 0 {
        return Err(corrupt(format!("negative header count {headers}")));
    }
    for _ in 0..headers {
        let name = read_field(body, &mut at)?;
        if name.is_none() {
            return Err(corrupt("null header key"));
        }
        read_field(body, &mut at)?;
    }
    if at != body.len() {
        return Err(corrupt("record length does not match its fields"));
    }
    Ok((
        RecordView {
            bytes: &bytes[..end],
            timestamp_delta,
            offset_delta,
            key,
            value,
            is_tombstone: value.is_none(),
            rest: &body[rest_at..],
            attributes,
        },
        end,
    ))
}

/// Walks `count` records in `data` (the records section, decompressed), checking every
/// length; the whole section must be consumed.
pub fn parse_records(data: &[u8], count: i32) -> Result<Vec<RecordView<'_>>, StorageError> {
    let mut out = Vec::new();
    let mut pos = 0;
    for _ in 0..count.max(0) {
        let (record, len) = parse_record(&data[pos..])?;
        pos += len;
        out.push(record);
    }
    if pos != data.len() {
        return Err(corrupt(format!(
            "{} bytes after the batch's {count} records",
            data.len() - pos
        )));
    }
    Ok(out)
}

fn read_bounded(mut reader: impl Read, max: usize, codec: &str) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    (&mut reader)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(format!("{codec} records do not decompress: {e}")))?;
    if out.len() > max {
        return Err(inflated_too_far(max));
    }
    Ok(out)
}

fn inflated_too_far(max: usize) -> StorageError {
    corrupt(format!(
        "compressed records inflate past {max} bytes; refusing to decompress further"
    ))
}

const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

fn snappy_block(block: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), StorageError> {
    let bad = |e: snap::Error| corrupt(format!("snappy records do not decompress: {e}"));
    let len = snap::raw::decompress_len(block).map_err(bad)?;
    if out.len() + len > max {
        return Err(inflated_too_far(max));
    }
    let at = out.len();
    out.resize(at + len, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[at..])
        .map_err(bad)?;
    Ok(())
}

/// Snappy as Kafka clients write it: xerial framing (Java, the crate) or a raw block.
fn snappy_bounded(data: &[u8], max: usize) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    if data.len() < XERIAL_HEADER_LEN || &data[..8] != XERIAL_MAGIC {
        snappy_block(data, &mut out, max)?;
        return Ok(out);
    }
    let mut pos = XERIAL_HEADER_LEN;
    while pos < data.len() {
        let len_bytes = data
            .get(pos..pos + 4)
            .ok_or_else(|| corrupt("snappy block length truncated"))?;
        let len = u32::from_be_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        pos += 4;
        let block = data
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| corrupt("snappy block truncated"))?;
        snappy_block(block, &mut out, max)?;
        pos += len;
    }
    Ok(out)
}

/// The records section of a batch with codec `codec`, decompressed, at most `max` bytes
/// (borrowed, not copied, when it is not compressed).
pub fn decompress(codec: u8, data: &[u8], max: usize) -> Result<Cow<'_, [u8]>, StorageError> {
    decompress_owned(codec, data, max).map(|owned| owned.map_or(Cow::Borrowed(data), Cow::Owned))
}

/// `None` for an uncompressed section.
fn decompress_owned(codec: u8, data: &[u8], max: usize) -> Result<Option<Vec<u8>>, StorageError> {
    Ok(Some(match codec {
        0 => return Ok(None),
        1 => read_bounded(flate2::read::GzDecoder::new(data), max, "gzip")?,
        2 => snappy_bounded(data, max)?,
        3 => {
            let decoder = lz4::Decoder::new(data)
                .map_err(|e| corrupt(format!("lz4 records do not decompress: {e}")))?;
            read_bounded(decoder, max, "lz4")?
        }
        4 => {
            let decoder = zstd::stream::read::Decoder::new(data)
                .map_err(|e| corrupt(format!("zstd records do not decompress: {e}")))?;
            read_bounded(decoder, max, "zstd")?
        }
        other => return Err(corrupt(format!("unknown compression codec {other}"))),
    }))
}

fn crate_codec(codec: u8) -> Compression {
    match codec {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Compresses a records section with the crate's codecs (Kafka-compatible framing).
pub fn compress(codec: u8, raw: &[u8]) -> Result<Vec<u8>, StorageError> {
    let mut out = BytesMut::new();
    let fill = |buf: &mut BytesMut| -> anyhow::Result<()> {
        buf.extend_from_slice(raw);
        Ok(())
    };
    let result = match codec {
        0 => return Ok(raw.to_vec()),
        1 => kafka_protocol::compression::Gzip::compress(&mut out, fill),
        2 => kafka_protocol::compression::Snappy::compress(&mut out, fill),
        3 => kafka_protocol::compression::Lz4::compress(&mut out, fill),
        4 => kafka_protocol::compression::Zstd::compress(&mut out, fill),
        other => return Err(corrupt(format!("unknown compression codec {other}"))),
    };
    result.map_err(|e| corrupt(format!("cannot compress records: {e}")))?;
    Ok(out.to_vec())
}

/// The records section of `batch` (a whole, validated batch), decompressed.
pub fn records_section(batch: &[u8], max: usize) -> Result<Cow<'_, [u8]>, StorageError> {
    let header = BatchHeader::parse(batch).ok_or_else(|| corrupt("short batch"))?;
    decompress(
        codec_of(&header),
        &batch[BATCH_HEADER_LEN..header.size()],
        max,
    )
}

/// Kafka's rule for compacted topics: every record has a key. Control batches are
/// exempt. Returns INVALID_RECORD for the first keyless record.
pub fn check_keys_present(batch: &[u8], max: usize) -> Result<(), StorageError> {
    let header = BatchHeader::parse(batch).ok_or_else(|| corrupt("short batch"))?;
    if header.is_control() {
        return Ok(());
    }
    let raw = records_section(batch, max)?;
    let records = parse_records(&raw, header.records_count)?;
    if let Some(r) = records.iter().find(|r| r.key.is_none()) {
        return Err(StorageError::InvalidRecord(format!(
            "Compacted topic cannot accept message without key in topic partition (record at offset delta {})",
            r.offset_delta
        )));
    }
    Ok(())
}

/// The same records (offsets, producer fields, timestamps, headers) re-encoded with
/// codec `target` by the crate's encoder. The batch must be validated and walkable.
pub fn recompress(batch: &[u8], target: u8, max: usize) -> Result<Vec<u8>, StorageError> {
    let header = BatchHeader::parse(batch).ok_or_else(|| corrupt("short batch"))?;
    let raw = records_section(batch, max)?;
    // Our walk checks every length and count before the crate reserves by them, and
    // every delta against its base: the crate adds them unchecked.
    for r in parse_records(&raw, header.records_count)? {
        let fits = header
            .base_timestamp
            .checked_add(r.timestamp_delta)
            .is_some()
            && header
                .base_offset
                .checked_add(r.offset_delta as i64)
                .is_some();
        if !fits {
            return Err(corrupt(format!(
                "record at offset delta {} overflows the batch's base timestamp or offset",
                r.offset_delta
            )));
        }
    }
    let plain = rebuild(batch, header.attributes & !ATTRIBUTE_CODEC_MASK, None, &raw)?;
    let mut input = Bytes::from(plain);
    let set = RecordBatchDecoder::decode(&mut input)
        .map_err(|e| corrupt(format!("batch does not decode: {e}")))?;
    let mut records = set.records;
    for r in &mut records {
        // The encoder derives baseSequence from offset - sequence, which must be
        // constant across the batch, also for a non-idempotent producer's -1.
        r.sequence = header
            .base_sequence
            .wrapping_add((r.offset - header.base_offset) as i32);
    }
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: crate_codec(target),
    };
    RecordBatchEncoder::encode(&mut out, &records, &options)
        .map_err(|e| corrupt(format!("batch does not re-encode: {e}")))?;
    let encoded = BatchHeader::parse(&out).ok_or_else(|| corrupt("re-encoding failed"))?;
    if encoded.size() != out.len()
        || encoded.last_offset_delta != header.last_offset_delta
        || encoded.records_count != header.records_count
    {
        return Err(corrupt(
            "batch with offset gaps or mixed records cannot be recompressed",
        ));
    }
    let mut out = out.to_vec();
    // Keep what the encoder does not carry: the timestamp type bit and the leader epoch.
    let kept_bits = header.attributes & 0x08;
    if kept_bits != 0 {
        let attributes = encoded.attributes | kept_bits;
        out[21..23].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    out[12..16].copy_from_slice(&header.partition_leader_epoch.to_be_bytes());
    Ok(out)
}

/// A batch built from `original`'s header with `attributes`, an optional new
/// baseTimestamp, and `records` (the records section, raw, `records_count` of them
/// counted by the caller); compressed with the codec in `attributes`.
fn rebuild(
    original: &[u8],
    attributes: i16,
    base_timestamp: Option<i64>,
    raw_records: &[u8],
) -> Result<Vec<u8>, StorageError> {
    let header = BatchHeader::parse(original).ok_or_else(|| corrupt("short batch"))?;
    let payload = compress((attributes & ATTRIBUTE_CODEC_MASK) as u8, raw_records)?;
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + payload.len());
    out.extend_from_slice(&original[..BATCH_HEADER_LEN]);
    out.extend_from_slice(&payload);
    let batch_length = (out.len() - LOG_OVERHEAD_LEN) as i32;
    out[8..12].copy_from_slice(&batch_length.to_be_bytes());
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    let base_timestamp = base_timestamp.unwrap_or(header.base_timestamp);
    out[27..35].copy_from_slice(&base_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// What the cleaner keeps of one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Every record stays and nothing changes: copy the batch bytes.
    Unchanged,
    /// No record stays.
    Empty,
    /// The rebuilt batch (same baseOffset, lastOffsetDelta, producer fields).
    Rebuilt(Vec<u8>),
}

/// Rebuilds `batch` keeping the records `keep` says yes to, given their index. With
/// `set_horizon`, marks the batch with delete horizon `horizon_ms` (baseTimestamp,
/// KIP-534) and rebases every record's timestampDelta on it, so record timestamps read
/// by consumers do not change. lastOffsetDelta, baseOffset and the producer fields stay,
/// so offsets are never rewritten and idempotent-producer state is unaffected.
pub fn filter_batch(
    batch: &[u8],
    records: &[RecordView<'_>],
    keep: &[bool],
    set_horizon: Option<i64>,
) -> Result<Filtered, StorageError> {
    let header = BatchHeader::parse(batch).ok_or_else(|| corrupt("short batch"))?;
    let kept = keep.iter().filter(|k| **k).count();
    if kept == 0 {
        return Ok(Filtered::Empty);
    }
    if kept == records.len() && set_horizon.is_none() {
        return Ok(Filtered::Unchanged);
    }
    let mut raw = Vec::new();
    for (record, _) in records.iter().zip(keep).filter(|(_, k)| **k) {
        match set_horizon {
            None => raw.extend_from_slice(record.bytes),
            Some(horizon) => {
                let timestamp = header.base_timestamp.saturating_add(record.timestamp_delta);
                let mut body = vec![record.attributes];
                write_varint(&mut body, timestamp.saturating_sub(horizon));
                write_varint(&mut body, record.offset_delta as i64);
                body.extend_from_slice(record.rest);
                write_varint(&mut raw, body.len() as i64);
                raw.extend_from_slice(&body);
            }
        }
    }
    let mut attributes = header.attributes;
    if set_horizon.is_some() {
        attributes |= ATTRIBUTE_DELETE_HORIZON;
    }
    let mut out = rebuild(batch, attributes, set_horizon, &raw)?;
    out[57..61].copy_from_slice(&(kept as i32).to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(Filtered::Rebuilt(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::check_batch;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{Record, TimestampType};

    fn record(offset: i64, key: Option<&str>, value: Option<&str>) -> Record {
        let mut headers = IndexMap::new();
        headers.insert(
            StrBytes::from_static_str("h"),
            Some(Bytes::from_static(b"v")),
        );
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 9,
            producer_epoch: 2,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: 40 + offset as i32,
            timestamp: 1_700_000_000_000 + offset * 10,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            headers,
        }
    }

    pub(crate) fn encode(records: &[Record], codec: u8) -> Vec<u8> {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: crate_codec(codec),
        };
        RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
        buf.to_vec()
    }

    fn sample() -> Vec<Record> {
        (0..50)
            .map(|i| {
                let value = format!("value-{i}-{}", "x".repeat(i as usize * 3));
                record(i, Some(&format!("k{}", i % 7)), Some(&value))
            })
            .collect()
    }

    fn decoded(batch: &[u8]) -> Vec<Record> {
        RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(batch))
            .unwrap()
            .records
    }

    #[test]
    fn recompression_round_trips_every_codec_pair() {
        let records = sample();
        for from in 0..=4u8 {
            let original = encode(&records, from);
            for to in 0..=4u8 {
                let out = recompress(&original, to, 1 << 20).unwrap();
                let header = check_batch(&out, true).unwrap();
                assert_eq!(codec_of(&header), to, "{from} -> {to}");
                let before = BatchHeader::parse(&original).unwrap();
                assert_eq!(header.producer_id, 9);
                assert_eq!(header.producer_epoch, 2);
                assert_eq!(header.base_sequence, before.base_sequence);
                assert_eq!(header.last_offset_delta, 49);
                assert_eq!(header.max_timestamp, before.max_timestamp);
                assert_eq!(decoded(&out), records, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn non_idempotent_batches_stay_one_batch() {
        let mut records = sample();
        for r in &mut records {
            r.producer_id = -1;
            r.producer_epoch = -1;
            r.sequence = -1;
        }
        let original = encode(&records[..1], 0);
        let mut fixed = records.clone();
        for (i, r) in fixed.iter_mut().enumerate() {
            r.sequence = i as i32 - 1;
        }
        let original_all = encode(&fixed, 0);
        assert!(check_batch(&original, true).is_ok());
        let out = recompress(&original_all, 4, 1 << 20).unwrap();
        let header = check_batch(&out, true).unwrap();
        assert_eq!(header.size(), out.len());
        assert_eq!((header.records_count, header.base_sequence), (50, -1));
    }

    #[test]
    fn decompression_is_bounded() {
        let big: Vec<Record> = (0..200)
            .map(|i| record(i, Some("k"), Some(&"z".repeat(10_000))))
            .collect();
        for codec in 1..=4u8 {
            let batch = encode(&big, codec);
            assert!(batch.len() < 100_000, "codec {codec}: {}", batch.len());
            let error = records_section(&batch, 100_000).unwrap_err();
            assert!(error.to_string().contains("inflate past"), "{error}");
            assert_eq!(error.kafka_error_code(), 2);
            assert!(records_section(&batch, 4 << 20).is_ok());
        }
        assert!(decompress(4, b"not zstd at all", 1000).is_err());
        assert!(decompress(2, &[0xff, 0xff, 0xff, 0xff, 0x0f], 1000).is_err());
    }

    #[test]
    fn keyless_records_are_found_in_every_codec() {
        let mut records = sample();
        for codec in 0..=4u8 {
            assert!(check_keys_present(&encode(&records, codec), 1 << 20).is_ok());
        }
        records[17].key = None;
        for codec in 0..=4u8 {
            let error = check_keys_present(&encode(&records, codec), 1 << 20).unwrap_err();
            assert_eq!(error.kafka_error_code(), 87);
        }
    }

    #[test]
    fn filtering_keeps_offsets_and_rebases_timestamps_on_the_horizon() {
        let mut records = sample();
        records[3].value = None;
        for codec in 0..=4u8 {
            let batch = encode(&records, codec);
            let raw = records_section(&batch, 1 << 20).unwrap();
            let header = BatchHeader::parse(&batch).unwrap();
            let views = parse_records(&raw, header.records_count).unwrap();
            assert!(views[3].is_tombstone && !views[4].is_tombstone);
            let keep: Vec<bool> = (0..50).map(|i| i % 7 == 3 || i >= 45).collect();
            let horizon = 1_800_000_000_000;
            let Filtered::Rebuilt(out) =
                filter_batch(&batch, &views, &keep, Some(horizon)).unwrap()
            else {
                panic!("expected a rebuilt batch");
            };
            let new = check_batch(&out, true).unwrap();
            assert_eq!(new.base_timestamp, horizon);
            assert!(has_delete_horizon(&new));
            assert_eq!(codec_of(&new), codec);
            assert_eq!(new.last_offset_delta, 49);
            assert_eq!(new.base_sequence, header.base_sequence);
            let expected: Vec<Record> = records
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(r, _)| r.clone())
                .collect();
            let got = decoded(&out);
            assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                assert_eq!((g.offset, g.timestamp), (e.offset, e.timestamp));
                assert_eq!(
                    (&g.key, &g.value, &g.headers),
                    (&e.key, &e.value, &e.headers)
                );
            }
            assert_eq!(
                filter_batch(&batch, &views, &[true; 50], None).unwrap(),
                Filtered::Unchanged
            );
            assert_eq!(
                filter_batch(&batch, &views, &[false; 50], None).unwrap(),
                Filtered::Empty
            );
        }
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        let batch = encode(&sample(), 0);
        let header = BatchHeader::parse(&batch).unwrap();
        let raw = &batch[BATCH_HEADER_LEN..];
        for cut in [0, 1, 5, raw.len() / 2, raw.len() - 1] {
            assert!(parse_records(&raw[..cut], header.records_count).is_err());
        }
        let mut bad = raw.to_vec();
        bad[0] = 0x7f;
        assert!(parse_records(&bad, header.records_count).is_err());
        assert!(parse_records(raw, header.records_count + 1).is_err());
        assert!(parse_records(raw, header.records_count - 1).is_err());
    }
}
