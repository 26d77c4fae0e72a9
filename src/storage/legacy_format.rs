//! Message formats v0 and v1 (Kafka before 0.11), converted to and from the v2 record
//! batches that are the only thing stored.
//!
//! ```text
//!  message set: [ offset:i64 message_size:i32 message ]
//!  message:     crc:u32 magic:i8 attributes:i8 timestamp:i64 (v1 only)
//!               key:i32-length bytes (-1 null) value:i32-length bytes (-1 null)
//! ```
//! crc is CRC-32 (IEEE) over magic..end. attributes bits 0-2 are the codec (a compressed
//! "wrapper" message's value is a whole message set, compressed); bit 3 (v1) is
//! LogAppendTime.
//!
//! Up-conversion (Produce v0-2): every message of the set, unwrapped, becomes a record
//! of one v2 batch, in order, with its key, value and timestamp (v0 has none, so the
//! broker's append time, as Kafka stamps it; likewise a v1 timestamp of -1). The CRC of
//! every message, outer and inner, is checked. The batch keeps the producer's codec.
//!
//! Down-conversion (Fetch v0-3): each record at or past the fetch offset becomes an
//! uncompressed message of the magic the request version reads, with its absolute
//! offset; headers are dropped (neither format has them) and control batches skipped.
//! Work is bounded per request by `DownConvertBudget`.

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::{BatchHeader, BATCH_HEADER_LEN};
use super::records::{codec_of, decompress, parse_records};
use super::StorageError;

/// Bytes before a message: offset and message_size.
const LOG_OVERHEAD_BYTES: usize = 12;
/// crc, magic, attributes, key length and value length.
const MESSAGE_V0_HEADER_BYTES: usize = 4 + 1 + 1 + 4 + 4;
const MESSAGE_V1_HEADER_BYTES: usize = MESSAGE_V0_HEADER_BYTES + 8;
const ATTRIBUTE_CODEC_MASK: u8 = 0x07;
const ATTRIBUTE_LOG_APPEND_TIME: u8 = 0x08;
/// Codecs that message formats v0/v1 define (zstd came with v2 only).
const CODEC_LZ4: u8 = 3;
/// How deep wrapper messages may nest: Kafka allows one level (a wrapper of plain
/// messages); anything deeper is refused rather than followed.
const WRAPPER_DEPTH_MAX: usize = 1;

fn corrupt(why: impl Into<String>) -> StorageError {
    StorageError::Corrupt(why.into())
}

/// One message of a set, borrowed from the set (or its decompressed wrapper value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message<'a> {
    magic: u8,
    attributes: u8,
    /// None for v0 (no timestamp field).
    timestamp: Option<i64>,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    be_u32(b, at) as i32
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// An i32-length byte field at `*pos` of `m`, -1 for null.
fn bytes_field<'a>(m: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, StorageError> {
    let len_end = pos.checked_add(4).filter(|&e| e <= m.len());
    let len_end = len_end.ok_or_else(|| corrupt("message truncated in a length field"))?;
    let len = be_i32(m, *pos);
    *pos = len_end;
    if len == -1 {
        return Ok(None);
    }
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| pos.checked_add(l))
        .filter(|&e| e <= m.len())
        .ok_or_else(|| corrupt(format!("message field length {len} runs past the message")))?;
    let field = &m[*pos..end];
    *pos = end;
    Ok(Some(field))
}

/// Parses one message (after its offset and size), checking its CRC.
fn parse_message(m: &[u8]) -> Result<Message<'_>, StorageError> {
    if m.len() < MESSAGE_V0_HEADER_BYTES {
        return Err(corrupt(format!(
            "message of {} bytes is too short",
            m.len()
        )));
    }
    // The magic sits where a v2 batch has its own, so a batch sent in a message set is
    // named as such rather than as a CRC mismatch.
    let magic = m[4];
    if magic > 1 {
        return Err(StorageError::InvalidRecord(format!(
            "message format v{magic} inside a message set (Produce v0-2 carry v0/v1 only)"
        )));
    }
    let crc = be_u32(m, 0);
    let computed = crc32fast::hash(&m[4..]);
    if crc != computed {
        return Err(corrupt(format!(
            "message CRC {crc:#010x} does not match its content ({computed:#010x})"
        )));
    }
    let attributes = m[5];
    let mut pos = 6;
    let timestamp = match magic {
        0 => None,
        1 if m.len() >= MESSAGE_V1_HEADER_BYTES => {
            pos += 8;
            Some(be_i64(m, 6))
        }
        _ => return Err(corrupt("v1 message too short")),
    };
    let key = bytes_field(m, &mut pos)?;
    let value = bytes_field(m, &mut pos)?;
    if pos != m.len() {
        return Err(corrupt("message size does not match its fields"));
    }
    Ok(Message {
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

/// Walks a message set; a partial message at the end is an error (producers never send
/// one).
fn walk_set(set: &[u8]) -> Result<Vec<Message<'_>>, StorageError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < set.len() {
        if set.len() - pos < LOG_OVERHEAD_BYTES {
            return Err(corrupt("message set ends in a partial entry"));
        }
        let size = be_i32(set, pos + 8);
        let start = pos + LOG_OVERHEAD_BYTES;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| start.checked_add(s))
            .filter(|&e| e <= set.len())
            .ok_or_else(|| corrupt(format!("message size {size} runs past the message set")))?;
        out.push(parse_message(&set[start..end])?);
        pos = end;
    }
    Ok(out)
}

/// One record to write into the v2 batch.
struct Plain<'a> {
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// A produced message set converted to one v2 batch.
#[derive(Debug)]
pub struct UpConverted {
    pub batch: BytesMut,
    pub records: usize,
}

/// Converts the message set of a Produce v0-2 partition to one v2 record batch (offsets
/// from 0, as a producer writes them). `inflated_bytes_max` bounds what all wrappers'
/// values decompress to, together.
pub fn message_set_to_batch(
    set: &[u8],
    now_ms: i64,
    inflated_bytes_max: usize,
) -> Result<UpConverted, StorageError> {
    let outer = walk_set(set)?;
    if outer.is_empty() {
        return Err(StorageError::InvalidRecord("empty message set".into()));
    }
    let mut inflated: Vec<Vec<u8>> = Vec::new();
    let mut codec = 0;
    let mut inflate_left = inflated_bytes_max;
    for m in &outer {
        let c = m.attributes & ATTRIBUTE_CODEC_MASK;
        if c == 0 {
            continue;
        }
        if c > CODEC_LZ4 {
            return Err(StorageError::UnsupportedFormat(format!(
                "compression codec {c} in a message of format v{}",
                m.magic
            )));
        }
        let value = m
            .value
            .ok_or_else(|| corrupt("compressed message with a null value"))?;
        let inner = decompress(c, value, inflate_left)?.into_owned();
        inflate_left -= inner.len();
        inflated.push(inner);
        codec = c;
    }
    let mut plain = Vec::with_capacity(outer.len());
    let mut next_inflated = inflated.iter();
    for m in &outer {
        if m.attributes & ATTRIBUTE_CODEC_MASK == 0 {
            plain.push(to_plain(m, None, now_ms));
            continue;
        }
        let inner_set = next_inflated
            .next()
            .expect("one inflated value per wrapper");
        for inner in walk_set(inner_set)? {
            if inner.attributes & ATTRIBUTE_CODEC_MASK != 0 {
                return Err(StorageError::InvalidRecord(format!(
                    "compressed message nested deeper than {WRAPPER_DEPTH_MAX} level"
                )));
            }
            plain.push(to_plain(&inner, Some(m), now_ms));
        }
    }
    if plain.is_empty() {
        // Kafka's rule too: a compressed wrapper must hold messages.
        return Err(StorageError::InvalidRecord(
            "compressed message set holds no messages".into(),
        ));
    }
    let batch = encode_batch(&plain, codec)?;
    Ok(UpConverted {
        records: plain.len(),
        batch,
    })
}

/// The record's timestamp: its own (v1), the wrapper's when the wrapper says
/// LogAppendTime, and the broker's clock when there is none.
fn to_plain<'a>(m: &Message<'a>, wrapper: Option<&Message<'a>>, now_ms: i64) -> Plain<'a> {
    let wrapper_time = wrapper
        .filter(|w| w.attributes & ATTRIBUTE_LOG_APPEND_TIME != 0)
        .and_then(|w| w.timestamp);
    let timestamp = wrapper_time
        .or(m.timestamp)
        .filter(|&t| t >= 0)
        .unwrap_or(now_ms);
    Plain {
        timestamp,
        key: m.key,
        value: m.value,
    }
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        None => put_varint(out, -1),
        Some(f) => {
            put_varint(out, f.len() as i64);
            out.extend_from_slice(f);
        }
    }
}

/// A v2 batch (CreateTime, no producer id) of `records`, compressed with `codec`.
fn encode_batch(records: &[Plain<'_>], codec: u8) -> Result<BytesMut, StorageError> {
    let base_timestamp = records.iter().map(|r| r.timestamp).min().unwrap_or(-1);
    let max_timestamp = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
    let mut raw = Vec::new();
    let mut body = Vec::new();
    for (delta, r) in records.iter().enumerate() {
        body.clear();
        body.push(0);
        put_varint(&mut body, r.timestamp - base_timestamp);
        put_varint(&mut body, delta as i64);
        put_varint_field(&mut body, r.key);
        put_varint_field(&mut body, r.value);
        put_varint(&mut body, 0);
        put_varint(&mut raw, body.len() as i64);
        raw.extend_from_slice(&body);
    }
    let section = super::records::compress(codec, &raw)?;
    let count = i32::try_from(records.len())
        .map_err(|_| StorageError::InvalidRecord("too many messages".into()))?;
    let mut out = BytesMut::with_capacity(BATCH_HEADER_LEN + section.len());
    out.put_i64(0);
    out.put_i32((BATCH_HEADER_LEN - 12 + section.len()) as i32);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(0);
    out.put_i16(codec as i16);
    out.put_i32(count - 1);
    out.put_i64(base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(-1);
    out.put_i16(-1);
    out.put_i32(-1);
    out.put_i32(count);
    out.put_slice(&section);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// What one Fetch may spend on down-conversion, shared by its partitions: output bytes
/// (each partition also stops at its own limit) and bytes decompressed to get there.
#[derive(Debug, Clone)]
pub struct DownConvertBudget {
    pub output_bytes_left: usize,
    pub inflated_bytes_left: usize,
}

/// A partition's batches converted down.
#[derive(Debug, Default)]
pub struct DownConverted {
    pub message_set: Bytes,
    pub records: usize,
}

/// Converts the v2 batches in `chunks` (as a read returns them: each chunk one batch or
/// several back to back; a partial batch at the end of a chunk is left out) to an
/// uncompressed message set of `magic` (0 or 1), starting at `fetch_offset`. Stops
/// before the message that would take the output past `partition_bytes_max` or the
/// budget, except that the first message always goes out (as Kafka returns the first
/// batch whatever the limit, so a consumer never stalls).
pub fn batches_to_message_set(
    chunks: &[Bytes],
    magic: u8,
    fetch_offset: i64,
    partition_bytes_max: usize,
    budget: &mut DownConvertBudget,
) -> Result<DownConverted, StorageError> {
    let mut out = DownConverter {
        out: BytesMut::new(),
        records: 0,
        magic,
        fetch_offset,
        partition_bytes_max,
        budget,
    };
    'chunks: for chunk in chunks {
        let mut pos = 0;
        while let Some(header) = BatchHeader::parse(&chunk[pos..]) {
            let Some(batch) = chunk.get(pos..pos + header.size()) else {
                break;
            };
            pos += header.size();
            if header.is_control() || header.last_offset() < fetch_offset {
                continue;
            }
            if !out.batch(&header, batch)? {
                break 'chunks;
            }
        }
    }
    Ok(DownConverted {
        message_set: out.out.freeze(),
        records: out.records,
    })
}

/// The output of one partition's down-conversion, filled batch by batch.
struct DownConverter<'a> {
    out: BytesMut,
    records: usize,
    magic: u8,
    fetch_offset: i64,
    partition_bytes_max: usize,
    budget: &'a mut DownConvertBudget,
}

impl DownConverter<'_> {
    /// Appends the batch's records from the fetch offset on; false once a limit is hit.
    fn batch(&mut self, header: &BatchHeader, batch: &[u8]) -> Result<bool, StorageError> {
        if header.size() < BATCH_HEADER_LEN {
            return Err(corrupt("record batch shorter than its header"));
        }
        let section = &batch[BATCH_HEADER_LEN..];
        let inflate_max = self.budget.inflated_bytes_left;
        let raw = match decompress(codec_of(header), section, inflate_max) {
            Ok(raw) => raw,
            // Out of budget after some output: the consumer fetches the rest next time.
            Err(_) if self.records > 0 => return Ok(false),
            Err(e) => return Err(e),
        };
        self.budget.inflated_bytes_left = inflate_max.saturating_sub(raw.len());
        let attributes = if self.magic == 1 && header.is_log_append_time() {
            ATTRIBUTE_LOG_APPEND_TIME
        } else {
            0
        };
        for r in parse_records(&raw, header.records_count)? {
            let offset = header.base_offset + i64::from(r.offset_delta);
            if offset < self.fetch_offset {
                continue;
            }
            let timestamp = if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp + r.timestamp_delta
            };
            let (key, value) = r.key_value()?;
            let size = message_bytes(self.magic, key, value);
            let room = self.partition_bytes_max.min(self.budget.output_bytes_left);
            if self.records > 0 && self.out.len() + size > room {
                return Ok(false);
            }
            put_message(
                &mut self.out,
                offset,
                self.magic,
                attributes,
                timestamp,
                key,
                value,
            );
            self.budget.output_bytes_left = self.budget.output_bytes_left.saturating_sub(size);
            self.records += 1;
        }
        Ok(true)
    }
}

/// A message's bytes in a set, offset and size included.
fn message_bytes(magic: u8, key: Option<&[u8]>, value: Option<&[u8]>) -> usize {
    let header = if magic == 0 {
        MESSAGE_V0_HEADER_BYTES
    } else {
        MESSAGE_V1_HEADER_BYTES
    };
    LOG_OVERHEAD_BYTES + header + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len)
}

fn put_bytes_field(out: &mut BytesMut, field: Option<&[u8]>) {
    match field {
        None => out.put_i32(-1),
        Some(f) => {
            out.put_i32(f.len() as i32);
            out.put_slice(f);
        }
    }
}

/// Appends one uncompressed message (offset and size first).
pub fn put_message(
    out: &mut BytesMut,
    offset: i64,
    magic: u8,
    attributes: u8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let size = message_bytes(magic, key, value) - LOG_OVERHEAD_BYTES;
    out.put_i64(offset);
    out.put_i32(size as i32);
    let crc_at = out.len();
    out.put_u32(0);
    out.put_u8(magic);
    out.put_u8(attributes);
    if magic >= 1 {
        out.put_i64(timestamp);
    }
    put_bytes_field(out, key);
    put_bytes_field(out, value);
    let crc = crc32fast::hash(&out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests;
