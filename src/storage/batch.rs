//! Kafka record batch v2 (magic 2): header parsing, validation and in-place patching.
//!
//! Layout of the 61-byte header (all big-endian):
//!
//! ```text
//!  0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8
//! 17 crc u32 (CRC32C over bytes 21..end)  | 21 attributes i16 | 23 lastOffsetDelta i32
//! 27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16
//! 53 baseSequence i32  | 57 recordsCount i32 | 61 records...
//! ```
//!
//! A batch occupies `12 + batchLength` bytes. baseOffset and partitionLeaderEpoch lie
//! outside the CRC, so the broker patches them without recomputing it.

use std::ops::Range;

use super::StorageError;

pub const BATCH_HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: baseOffset and batchLength themselves.
pub const LOG_OVERHEAD_LEN: usize = 12;
/// The smallest legal batchLength: a header with no records.
pub const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD_LEN) as i32;

const OFFSET_PARTITION_LEADER_EPOCH: usize = 12;
const OFFSET_MAGIC: usize = 16;
const OFFSET_CRC: usize = 17;
const OFFSET_ATTRIBUTES: usize = 21;
const ATTRIBUTE_TIMESTAMP_TYPE_MASK: i16 = 0x08;
const ATTRIBUTE_TRANSACTIONAL_MASK: i16 = 0x10;
const ATTRIBUTE_CONTROL_MASK: i16 = 0x20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

impl BatchHeader {
    /// Parses the header at the start of `buf`; `None` if fewer than 61 bytes. Does not
    /// validate anything.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < BATCH_HEADER_LEN {
            return None;
        }
        Some(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, OFFSET_PARTITION_LEADER_EPOCH),
            magic: buf[OFFSET_MAGIC] as i8,
            crc: u32::from_be_bytes(buf[OFFSET_CRC..OFFSET_ATTRIBUTES].try_into().unwrap()),
            attributes: be_i16(buf, OFFSET_ATTRIBUTES),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// Total bytes of the batch on disk and on the wire. Only meaningful once
    /// `batch_length >= BATCH_LENGTH_MIN` was checked.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD_LEN + self.batch_length.max(0) as usize
    }

    /// Saturating: the walkers ask this of headers before anything is validated, and a
    /// corrupt baseOffset near i64::MAX must not overflow (recovery then rejects the
    /// batch as out of its segment's range).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }

    /// The sequence number of the last record, wrapping past i32::MAX to 0 like Kafka.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTRIBUTE_TIMESTAMP_TYPE_MASK != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTE_TRANSACTIONAL_MASK != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTE_CONTROL_MASK != 0
    }
}

/// `sequence + increment`, wrapping to 0 after i32::MAX (Kafka's `incrementSequence`).
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// One validated batch of a Produce request: its header and where it lies in the blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidBatch {
    pub header: BatchHeader,
    pub range: Range<usize>,
}

/// Why a batch at some position cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchProblem {
    /// Fewer bytes remain than the header or the declared length needs.
    Incomplete {
        needed: usize,
    },
    /// batchLength below the header size (e.g. the zero padding a crash leaves behind).
    BadLength(i32),
    BadMagic(i8),
    BadCrc {
        stored: u32,
        computed: u32,
    },
    BadCounts {
        records_count: i32,
        last_offset_delta: i32,
    },
}

impl std::fmt::Display for BatchProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchProblem::Incomplete { needed } => write!(f, "truncated batch, {needed} bytes needed"),
            BatchProblem::BadLength(l) => write!(f, "batchLength {l} below {BATCH_LENGTH_MIN}"),
            BatchProblem::BadMagic(m) => write!(f, "magic {m}, only magic 2 is supported"),
            BatchProblem::BadCrc { stored, computed } => {
                write!(f, "crc {stored:#010x} stored, {computed:#010x} computed")
            }
            BatchProblem::BadCounts { records_count, last_offset_delta } => write!(
                f,
                "recordsCount {records_count} and lastOffsetDelta {last_offset_delta} are inconsistent"
            ),
        }
    }
}

/// Checks the batch at the start of `buf` and returns its header. The CRC check is
/// optional because recovery trusts data before the recovery point.
pub fn check_batch(buf: &[u8], verify_crc: bool) -> Result<BatchHeader, BatchProblem> {
    let header = BatchHeader::parse(buf).ok_or(BatchProblem::Incomplete {
        needed: BATCH_HEADER_LEN,
    })?;
    if header.batch_length < BATCH_LENGTH_MIN {
        return Err(BatchProblem::BadLength(header.batch_length));
    }
    if header.magic != 2 {
        return Err(BatchProblem::BadMagic(header.magic));
    }
    let size = header.size();
    if buf.len() < size {
        return Err(BatchProblem::Incomplete { needed: size });
    }
    if header.records_count <= 0
        || header.last_offset_delta < 0
        || header.last_offset_delta < header.records_count - 1
    {
        return Err(BatchProblem::BadCounts {
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    if verify_crc {
        let computed = crc32c::crc32c(&buf[OFFSET_ATTRIBUTES..size]);
        if computed != header.crc {
            return Err(BatchProblem::BadCrc {
                stored: header.crc,
                computed,
            });
        }
    }
    Ok(header)
}

/// Walks a Produce request's `records` blob (one or more concatenated batches) and
/// validates each batch the way Kafka does without decompressing: length, magic 2,
/// CRC32C, record counts, and `max_batch_bytes` (message.max.bytes). All or nothing.
pub fn split_and_validate(
    records: &[u8],
    max_batch_bytes: usize,
) -> Result<Vec<ValidBatch>, StorageError> {
    if records.is_empty() {
        return Err(StorageError::Corrupt(
            "no record batch in the request".into(),
        ));
    }
    let mut batches = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let rest = &records[pos..];
        if rest.len() >= LOG_OVERHEAD_LEN {
            let batch_length = be_i32(rest, 8);
            let size = LOG_OVERHEAD_LEN as i64 + batch_length as i64;
            if batch_length >= BATCH_LENGTH_MIN && size as usize > max_batch_bytes {
                return Err(StorageError::TooLarge {
                    size: size as usize,
                    max: max_batch_bytes,
                });
            }
        }
        let header = check_batch(rest, true).map_err(|problem| match problem {
            BatchProblem::BadMagic(m) => StorageError::UnsupportedFormat(format!(
                "record batch at byte {pos} has magic {m}; only magic 2 is supported"
            )),
            other => StorageError::Corrupt(format!("record batch at byte {pos}: {other}")),
        })?;
        let size = header.size();
        batches.push(ValidBatch {
            header,
            range: pos..pos + size,
        });
        pos += size;
    }
    Ok(batches)
}

/// Sets baseOffset of the batch at the start of `batch` (outside the CRC).
pub fn patch_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Sets partitionLeaderEpoch of the batch at the start of `batch` (outside the CRC).
pub fn patch_leader_epoch(batch: &mut [u8], leader_epoch: i32) {
    batch[OFFSET_PARTITION_LEADER_EPOCH..OFFSET_PARTITION_LEADER_EPOCH + 4]
        .copy_from_slice(&leader_epoch.to_be_bytes());
}

const OFFSET_MAX_TIMESTAMP: usize = 35;

/// Stamps the batch at the start of `batch` with log append time `now_ms` (Kafka's
/// `message.timestamp.type=LogAppendTime`): sets the timestamp-type attribute and
/// maxTimestamp, and recomputes the CRC, which covers both. Returns the new header.
pub fn stamp_log_append_time(batch: &mut [u8], header: &BatchHeader, now_ms: i64) -> BatchHeader {
    let attributes = header.attributes | ATTRIBUTE_TIMESTAMP_TYPE_MASK;
    batch[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    set_max_timestamp(
        batch,
        &BatchHeader {
            attributes,
            ..*header
        },
        now_ms,
    )
}

/// Rewrites the maxTimestamp of the batch at the start of `batch` and recomputes the
/// CRC, which covers it. Returns the new header.
pub fn set_max_timestamp(
    batch: &mut [u8],
    header: &BatchHeader,
    max_timestamp: i64,
) -> BatchHeader {
    let size = header.size();
    batch[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8]
        .copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[OFFSET_ATTRIBUTES..size]);
    batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    BatchHeader {
        max_timestamp,
        crc,
        ..*header
    }
}

/// Iterates the valid batches of a byte slice read from a segment, stopping at the
/// first incomplete or invalid one. Afterwards `valid_len()` is the length of the valid
/// prefix and `stop()` says why the walk ended (`None`: the slice ended exactly on a
/// batch boundary).
///
/// The CRC is checked for batches whose last offset is at or past `verify_crc_from`:
/// recovery trusts what precedes the recovery point; the read path passes
/// [`VERIFY_CRC_NEVER`] since everything in a segment was validated before.
pub struct BatchWalker<'a> {
    buf: &'a [u8],
    pos: usize,
    verify_crc_from: i64,
    stop: Option<BatchProblem>,
}

pub const VERIFY_CRC_NEVER: i64 = i64::MAX;
pub const VERIFY_CRC_ALWAYS: i64 = i64::MIN;

impl<'a> BatchWalker<'a> {
    pub fn new(buf: &'a [u8], verify_crc_from: i64) -> Self {
        BatchWalker {
            buf,
            pos: 0,
            verify_crc_from,
            stop: None,
        }
    }

    pub fn valid_len(&self) -> usize {
        self.pos
    }

    pub fn stop(&self) -> Option<&BatchProblem> {
        self.stop.as_ref()
    }
}

impl Iterator for BatchWalker<'_> {
    /// (position of the batch in the slice, its header)
    type Item = (usize, BatchHeader);

    fn next(&mut self) -> Option<Self::Item> {
        if self.stop.is_some() || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let verify_crc =
            BatchHeader::parse(rest).is_none_or(|h| h.last_offset() >= self.verify_crc_from);
        match check_batch(rest, verify_crc) {
            Ok(header) => {
                let at = self.pos;
                self.pos += header.size();
                Some((at, header))
            }
            Err(problem) => {
                self.stop = Some(problem);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::testutil::{batch, plain};

    const MAX: usize = 1_048_588;

    #[test]
    fn good_batches_validate_and_split() {
        let mut blob = plain(3, 10);
        let first_len = blob.len();
        blob.extend_from_slice(&batch(2, 5, 7, 1, 10));
        let batches = split_and_validate(&blob, MAX).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].range, 0..first_len);
        assert_eq!(batches[0].header.records_count, 3);
        assert_eq!(batches[0].header.last_offset_delta, 2);
        assert_eq!(batches[0].header.producer_id, -1);
        assert_eq!(batches[1].range, first_len..blob.len());
        assert_eq!(batches[1].header.producer_id, 7);
        assert_eq!(batches[1].header.producer_epoch, 1);
        assert_eq!(batches[1].header.base_sequence, 10);
        assert_eq!(batches[1].header.last_sequence(), 11);
        assert_eq!(batches[1].header.magic, 2);
    }

    #[test]
    fn bad_crc_is_corrupt() {
        let mut blob = plain(2, 10);
        let last = blob.len() - 1;
        blob[last] ^= 0xff;
        let err = split_and_validate(&blob, MAX).unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt(ref m) if m.contains("crc")),
            "{err}"
        );
        assert_eq!(err.kafka_error_code(), 2);
    }

    #[test]
    fn wrong_magic_is_unsupported() {
        let mut blob = plain(1, 10);
        blob[OFFSET_MAGIC] = 1;
        let err = split_and_validate(&blob, MAX).unwrap_err();
        assert!(matches!(err, StorageError::UnsupportedFormat(_)), "{err}");
    }

    #[test]
    fn truncated_batch_is_corrupt() {
        let mut blob = plain(2, 10);
        blob.extend_from_slice(&plain(2, 10));
        let cut = blob.len() - 3;
        let err = split_and_validate(&blob[..cut], MAX).unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt(ref m) if m.contains("truncated")),
            "{err}"
        );
        // A tail shorter than the length prefix is corrupt too.
        let first = plain(1, 1);
        let mut blob = first.clone();
        blob.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            split_and_validate(&blob, MAX),
            Err(StorageError::Corrupt(_))
        ));
        assert!(matches!(
            split_and_validate(&[], MAX),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn oversize_batch_is_too_large() {
        let blob = plain(4, 1000);
        let err = split_and_validate(&blob, 1000).unwrap_err();
        match err {
            StorageError::TooLarge { size, max } => {
                assert_eq!(size, blob.len());
                assert_eq!(max, 1000);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn zero_length_batch_is_corrupt() {
        let mut blob = plain(1, 10);
        blob[8..12].copy_from_slice(&0i32.to_be_bytes());
        assert!(matches!(
            split_and_validate(&blob, MAX),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn patching_keeps_crc_valid() {
        let mut blob = plain(2, 10);
        patch_base_offset(&mut blob, 1234);
        patch_leader_epoch(&mut blob, 7);
        let batches = split_and_validate(&blob, MAX).unwrap();
        assert_eq!(batches[0].header.base_offset, 1234);
        assert_eq!(batches[0].header.last_offset(), 1235);
        assert_eq!(batches[0].header.partition_leader_epoch, 7);
    }

    #[test]
    fn walker_stops_at_zero_padding() {
        let mut blob = plain(2, 10);
        blob.extend_from_slice(&plain(1, 10));
        let good = blob.len();
        blob.extend_from_slice(&[0u8; 4096]);
        let mut walker = BatchWalker::new(&blob, VERIFY_CRC_ALWAYS);
        let found: Vec<_> = walker.by_ref().map(|(at, _)| at).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(walker.valid_len(), good);
        assert_eq!(walker.stop(), Some(&BatchProblem::BadLength(0)));

        let mut walker = BatchWalker::new(&blob[..good - 1], VERIFY_CRC_ALWAYS);
        assert_eq!(walker.by_ref().count(), 1);
        assert!(matches!(
            walker.stop(),
            Some(BatchProblem::Incomplete { .. })
        ));
    }

    #[test]
    fn walker_checks_crc_only_from_the_given_offset() {
        let mut blob = plain(2, 10);
        patch_base_offset(&mut blob, 100);
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert_eq!(BatchWalker::new(&blob, 102).count(), 1);
        assert_eq!(BatchWalker::new(&blob, VERIFY_CRC_NEVER).count(), 1);
        let mut walker = BatchWalker::new(&blob, 101);
        assert_eq!(walker.by_ref().count(), 0);
        assert!(matches!(walker.stop(), Some(BatchProblem::BadCrc { .. })));
    }

    #[test]
    fn sequence_wraps_like_kafka() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }
}
