//! The log validator for produced batches: the header fields the broker checks against
//! the records, or recomputes from them, rather than trusts.
//!
//! Kafka's validator recomputes a batch's maxTimestamp from its records and rewrites the
//! header (CRC included) before the append. Some clients get it wrong: Sarama 1.22 sends
//! maxTimestamp -1 while its records carry real times, and a broker that trusts the
//! header sees a segment whose newest record is from 1970, which time retention deletes
//! at its next check. What [`validate_produced`] checks, batch by batch:
//!
//! ```text
//!  field                      rule (error)
//!  attributes: control bit    clients do not write control batches (INVALID_RECORD)
//!  attributes: codec          0..=4 (CORRUPT_MESSAGE)
//!  lastOffsetDelta            recordsCount - 1 (INVALID_RECORD)
//!  baseSequence               >= 0 when producerId is set (INVALID_RECORD)
//!  records                    walked when uncompressed: length prefixes, offset deltas
//!                             0, 1, 2, ..., exactly recordsCount records filling the
//!                             batch (CORRUPT_MESSAGE / INVALID_RECORD)
//!  maxTimestamp (CreateTime)  the records' largest timestamp; rewritten when it differs
//!  record timestamps          message.timestamp.before/after.max.ms (INVALID_TIMESTAMP)
//! ```
//!
//! Cost: an uncompressed batch is walked in place (three varints a record, nothing
//! copied or allocated; `cargo bench --bench hot_paths -- batch_validation_records`).
//! A compressed batch is decompressed (bounded by `records::inflated_bytes_max`) only
//! when its header is implausible — maxTimestamp -1 or below baseTimestamp — so the
//! common case stays free of decompression. A compressed batch with a plausible but
//! wrong maxTimestamp is kept as sent (Kafka would correct it); time retention cannot
//! delete it early anyway, since it also counts from the segment's last append
//! (`log::retention`).

use bytes::BytesMut;

use super::batch::{set_max_timestamp, ValidBatch};
use super::records;
use super::StorageError;

/// A record or batch timestamp that means "none" (Kafka's `RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;
/// The largest codec id Kafka defines (zstd).
const CODEC_ID_MAX: u8 = 4;

/// What the topic asks of produced batches' timestamps.
#[derive(Debug, Clone, Copy)]
pub struct TimestampRules {
    /// The broker stamps LogAppendTime itself: client timestamps are neither bounded
    /// nor derived.
    pub log_append_time: bool,
    pub now_ms: i64,
    /// `message.timestamp.before.max.ms`.
    pub before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub after_max_ms: i64,
}

impl TimestampRules {
    fn check(&self, timestamp: i64) -> Result<(), StorageError> {
        // Kafka does not bound records without a timestamp.
        if self.log_append_time || timestamp == NO_TIMESTAMP {
            return Ok(());
        }
        let earliest = self.now_ms.saturating_sub(self.before_max_ms);
        let latest = self.now_ms.saturating_add(self.after_max_ms);
        if timestamp < earliest || timestamp > latest {
            return Err(StorageError::InvalidTimestamp(format!(
                "Timestamp {timestamp} of a record batch is out of range. The timestamp should be within [{earliest}, {latest}]"
            )));
        }
        Ok(())
    }
}

/// The timestamps of a batch's records, found by walking them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordTimes {
    /// The largest record timestamp, [`NO_TIMESTAMP`] when no record has one.
    pub max: i64,
    /// The smallest record timestamp other than [`NO_TIMESTAMP`], if any.
    pub min: Option<i64>,
}

/// Checks every batch of one Produce partition entry (validated by
/// `batch::split_and_validate`) and corrects maxTimestamp in place where the records
/// disagree with it; `batches`' headers follow. All or nothing: on an error the caller
/// appends none of them. `max_inflated_bytes` bounds decompression.
pub fn validate_produced(
    records: &mut BytesMut,
    batches: &mut [ValidBatch],
    rules: &TimestampRules,
    max_inflated_bytes: usize,
) -> Result<(), StorageError> {
    for batch in batches.iter_mut() {
        let bytes = &mut records[batch.range.clone()];
        let header = &batch.header;
        check_header_fields(header)?;
        let compressed = records::codec_of(header) != 0;
        let implausible =
            header.max_timestamp == NO_TIMESTAMP || header.max_timestamp < header.base_timestamp;
        if compressed && (rules.log_append_time || !implausible) {
            rules.check(header.base_timestamp)?;
            rules.check(header.max_timestamp)?;
            continue;
        }
        let times = record_times(bytes, max_inflated_bytes, true)?;
        if let Some(min) = times.min {
            rules.check(min)?;
        }
        rules.check(times.max)?;
        if !rules.log_append_time && times.max != header.max_timestamp {
            batch.header = set_max_timestamp(bytes, header, times.max);
        }
    }
    Ok(())
}

/// The header rules that need no record: see the module comment.
fn check_header_fields(header: &super::batch::BatchHeader) -> Result<(), StorageError> {
    if header.is_control() {
        return Err(StorageError::InvalidRecord(
            "Clients are not allowed to write control records".into(),
        ));
    }
    let codec = records::codec_of(header);
    if codec > CODEC_ID_MAX {
        return Err(StorageError::Corrupt(format!(
            "unknown compression codec {codec} in the batch attributes"
        )));
    }
    if header.last_offset_delta != header.records_count - 1 {
        return Err(StorageError::InvalidRecord(format!(
            "Inconsistent batch offset range (lastOffsetDelta {}) and count of records ({})",
            header.last_offset_delta, header.records_count
        )));
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(StorageError::InvalidRecord(format!(
            "Invalid sequence number {} in record batch with producerId {}",
            header.base_sequence, header.producer_id
        )));
    }
    Ok(())
}

/// Walks the records of a whole, validated batch (decompressing if it is compressed,
/// up to `max_inflated_bytes`) and returns their timestamps. The records' length
/// prefixes must fill the section exactly; with `consecutive_offsets` (a produced
/// batch, not one the cleaner has thinned) each record's offset delta must be its index.
pub fn record_times(
    batch: &[u8],
    max_inflated_bytes: usize,
    consecutive_offsets: bool,
) -> Result<RecordTimes, StorageError> {
    let header = super::batch::BatchHeader::parse(batch)
        .ok_or_else(|| StorageError::Corrupt("batch shorter than its header".into()))?;
    let section = records::records_section(batch, max_inflated_bytes)?;
    let mut times = RecordTimes {
        max: NO_TIMESTAMP,
        min: None,
    };
    let mut pos = 0;
    for index in 0..header.records_count {
        let record = walk_record(&section[pos..]).ok_or_else(|| {
            StorageError::Corrupt(format!(
                "record {index} of the batch is malformed or runs past the batch"
            ))
        })?;
        if consecutive_offsets && record.offset_delta != index {
            return Err(StorageError::InvalidRecord(format!(
                "record {index} of the batch has offset delta {}; offsets must be consecutive from 0",
                record.offset_delta
            )));
        }
        pos += record.len;
        let timestamp = header.base_timestamp.wrapping_add(record.timestamp_delta);
        times.max = times.max.max(timestamp);
        if timestamp != NO_TIMESTAMP {
            times.min = Some(times.min.map_or(timestamp, |m| m.min(timestamp)));
        }
    }
    if pos != section.len() {
        return Err(StorageError::Corrupt(format!(
            "{} bytes after the batch's {} records",
            section.len() - pos,
            header.records_count
        )));
    }
    Ok(times)
}

/// What the walk needs of one record.
struct RecordStep {
    timestamp_delta: i64,
    offset_delta: i32,
    /// Bytes of the record, length prefix included.
    len: usize,
}

/// Reads the record at the start of `bytes` as far as its offset delta and steps over
/// the rest by its length prefix; `None` when that prefix or those fields do not fit.
/// Key, value and headers are not parsed: the CRC already vouches for the bytes, and
/// the length chain must still fill the batch exactly with `recordsCount` records.
/// Lean on purpose (no `Result` per varint): it runs for every produced record.
fn walk_record(bytes: &[u8]) -> Option<RecordStep> {
    let mut pos = 0;
    let body_len = usize::try_from(varint(bytes, &mut pos, 5)?).ok()?;
    let end = pos
        .checked_add(body_len)
        .filter(|&end| end <= bytes.len())?;
    let body = &bytes[pos..end];
    let mut at = 1; // attributes
    let timestamp_delta = varint(body, &mut at, 10)?;
    let offset_delta = i32::try_from(varint(body, &mut at, 5)?).ok()?;
    // keyLength, valueLength and the header count follow: at least three bytes.
    if at + 3 > body.len() {
        return None;
    }
    Some(RecordStep {
        timestamp_delta,
        offset_delta,
        len: end,
    })
}

/// A zigzag varint of at most `max_bytes` bytes at `*pos`.
#[inline]
fn varint(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for i in 0..max_bytes {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        raw |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::{split_and_validate, BatchHeader};
    use crate::storage::testutil::{compressed, plain};
    use kafka_protocol::records::Compression;

    const MAX: usize = 1 << 20;
    const NOW: i64 = 1_700_000_000_500;

    fn rules() -> TimestampRules {
        TimestampRules {
            log_append_time: false,
            now_ms: NOW,
            before_max_ms: i64::MAX,
            after_max_ms: i64::MAX,
        }
    }

    fn validate(
        blob: &mut BytesMut,
        rules: &TimestampRules,
    ) -> Result<Vec<BatchHeader>, StorageError> {
        let mut batches = split_and_validate(blob, MAX)?;
        validate_produced(blob, &mut batches, rules, MAX)?;
        // Whatever was rewritten still passes the CRC check, and the headers agree.
        let again = split_and_validate(blob, MAX).expect("still valid");
        let headers: Vec<BatchHeader> = batches.iter().map(|b| b.header).collect();
        assert_eq!(headers, again.iter().map(|b| b.header).collect::<Vec<_>>());
        Ok(headers)
    }

    /// Sets maxTimestamp to `ts` and fixes the CRC, as a client that gets it wrong does.
    fn with_max(mut blob: BytesMut, ts: i64) -> BytesMut {
        let header = BatchHeader::parse(&blob).unwrap();
        set_max_timestamp(&mut blob, &header, ts);
        blob
    }

    #[test]
    fn unset_or_wrong_max_timestamp_is_derived_from_the_records() {
        // testutil records are at 1_700_000_000_000 + i.
        for wrong in [NO_TIMESTAMP, 5, 1_700_000_000_001, i64::MAX] {
            let mut blob = with_max(plain(3, 10), wrong);
            let headers = validate(&mut blob, &rules()).unwrap();
            assert_eq!(
                headers[0].max_timestamp, 1_700_000_000_002,
                "header had {wrong}"
            );
        }
        let mut right = plain(3, 10);
        let before = right.clone();
        validate(&mut right, &rules()).unwrap();
        assert_eq!(right, before, "a right header is left alone");
    }

    #[test]
    fn compressed_batches_are_derived_only_when_the_header_is_implausible() {
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut blob = with_max(compressed(3, codec), NO_TIMESTAMP);
            let headers = validate(&mut blob, &rules()).unwrap();
            assert_eq!(
                headers[0].max_timestamp, 1_700_000_000_002,
                "codec {codec:?}"
            );
            let mut below_base = with_max(compressed(3, codec), 1_699_999_999_999);
            let headers = validate(&mut below_base, &rules()).unwrap();
            assert_eq!(
                headers[0].max_timestamp, 1_700_000_000_002,
                "codec {codec:?}"
            );
            // Plausible: trusted without decompressing.
            let mut plausible = with_max(compressed(3, codec), 1_700_000_000_001);
            let headers = validate(&mut plausible, &rules()).unwrap();
            assert_eq!(
                headers[0].max_timestamp, 1_700_000_000_001,
                "codec {codec:?}"
            );
        }
    }

    #[test]
    fn log_append_time_topics_leave_timestamps_to_the_broker() {
        let mut blob = with_max(plain(2, 10), NO_TIMESTAMP);
        let rules = TimestampRules {
            log_append_time: true,
            before_max_ms: 0,
            after_max_ms: 0,
            ..rules()
        };
        let headers = validate(&mut blob, &rules).unwrap();
        assert_eq!(headers[0].max_timestamp, NO_TIMESTAMP);
    }

    #[test]
    fn every_record_is_bounded_not_only_the_header() {
        // Header claims a max inside the window; the records reach past it.
        let mut blob = with_max(plain(3, 10), 1_700_000_000_000);
        let rules = TimestampRules {
            now_ms: 1_700_000_000_000,
            before_max_ms: 10,
            after_max_ms: 1,
            ..rules()
        };
        let err = validate(&mut blob, &rules).unwrap_err();
        assert!(matches!(err, StorageError::InvalidTimestamp(_)), "{err}");
    }

    #[test]
    fn header_fields_kafka_recomputes_are_checked() {
        let mut control = plain(1, 10);
        let header = BatchHeader::parse(&control).unwrap();
        control[21..23].copy_from_slice(&(header.attributes | 0x20).to_be_bytes());
        let mut control = with_max(control, header.max_timestamp);
        assert!(matches!(
            validate(&mut control, &rules()),
            Err(StorageError::InvalidRecord(_))
        ));

        let mut codec = plain(1, 10);
        codec[21..23].copy_from_slice(&6i16.to_be_bytes());
        let mut codec = with_max(codec, header.max_timestamp);
        assert!(matches!(
            validate(&mut codec, &rules()),
            Err(StorageError::Corrupt(_))
        ));

        // lastOffsetDelta 3 for 3 records passes the header check but not Kafka's rule.
        let mut gap = plain(3, 10);
        gap[23..27].copy_from_slice(&3i32.to_be_bytes());
        let mut gap = with_max(gap, 1_700_000_000_002);
        assert!(matches!(
            validate(&mut gap, &rules()),
            Err(StorageError::InvalidRecord(_))
        ));

        let mut no_seq = crate::storage::testutil::batch(2, 10, 7, 0, 0);
        no_seq[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        let mut no_seq = with_max(no_seq, 1_700_000_000_001);
        assert!(matches!(
            validate(&mut no_seq, &rules()),
            Err(StorageError::InvalidRecord(_))
        ));
    }

    #[test]
    fn records_that_disagree_with_the_count_are_corrupt() {
        // recordsCount 2 over three records: one record's bytes are left over.
        let mut extra = plain(3, 10);
        extra[57..61].copy_from_slice(&2i32.to_be_bytes());
        extra[23..27].copy_from_slice(&1i32.to_be_bytes());
        let mut extra = with_max(extra, 1_700_000_000_002);
        assert!(matches!(
            validate(&mut extra, &rules()),
            Err(StorageError::Corrupt(_))
        ));
        // recordsCount 4 over three records: the walk runs out of bytes.
        let mut short = plain(3, 10);
        short[57..61].copy_from_slice(&4i32.to_be_bytes());
        short[23..27].copy_from_slice(&3i32.to_be_bytes());
        let mut short = with_max(short, 1_700_000_000_002);
        assert!(matches!(
            validate(&mut short, &rules()),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn records_without_timestamps_keep_no_timestamp() {
        let mut one = plain(1, 10);
        one[27..35].copy_from_slice(&NO_TIMESTAMP.to_be_bytes());
        let mut one = with_max(one, NO_TIMESTAMP);
        let headers = validate(&mut one, &rules()).unwrap();
        assert_eq!(headers[0].max_timestamp, NO_TIMESTAMP);
    }
}
