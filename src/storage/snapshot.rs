//! Producer state snapshots: `<20-digit offset>.snapshot` in the partition dir (Kafka's
//! file name, our own format). A snapshot at offset `o` holds the idempotent producer
//! state after every batch below `o`, so recovery loads it and replays only the batch
//! headers from `o` on instead of the whole log.
//!
//! Written by `PartitionLog` at each segment roll (at the new segment's base offset,
//! after the finished segment was fdatasync'd) and at close (at the log end offset):
//! temp file, fsync, rename. Only the [`SNAPSHOTS_KEPT`] newest files are kept. A
//! snapshot is only an accelerator: one that is missing, corrupt, or past the log end
//! after a crash is skipped (with a warning) for an older one or a full header scan.
//!
//! Format, all integers big-endian:
//!
//! ```text
//!  0 magic "CLPS" | 4 version u16 (= 3) | 6 crc u32: CRC32C of bytes 10..end
//! 10 offset i64 (must match the file name) | 18 producer count u32
//! 22 per producer, by increasing id:
//!      producer id i64 | epoch i16 | open transaction's first offset i64 (-1: none; v2)
//!      | newest batch timestamp ms i64 (v3) | batch count u8 (<= 5)
//!      per batch, oldest first: first seq i32 | last seq i32 | base offset i64 | last offset i64
//!    (v2) aborted transaction count u32, then per transaction, oldest marker first:
//!      producer id i64 | first offset i64 | marker offset i64
//! ```
//!
//! Versions 1 (no transactions) and 2 (no timestamps) are still read; their producers'
//! expiry clocks (`producer.id.expiration.ms`) start at the load.

use std::collections::VecDeque;
use std::path::Path;

use tracing::warn;

use super::io;
use super::producer_state::{
    AbortedTxn, BatchMeta, ProducerEntry, ProducerState, BATCHES_PER_PRODUCER_MAX,
};
use super::segment::file_name;
use super::StorageError;

pub const SNAPSHOT_MAGIC: &[u8; 4] = b"CLPS";
pub const SNAPSHOT_VERSION: u16 = 3;
/// The version before producer timestamps, still read.
const SNAPSHOT_VERSION_NO_TIMESTAMP: u16 = 2;
/// The version before transactions, still read.
const SNAPSHOT_VERSION_NO_TXN: u16 = 1;
/// Snapshot files kept per partition; older ones are deleted after each write.
pub const SNAPSHOTS_KEPT: usize = 2;

const HEADER_BYTES: usize = 22;
const CRC_FROM: usize = 10;
const PRODUCER_BYTES_V1: usize = 11;
const PRODUCER_BYTES_V2: usize = 19;
const PRODUCER_BYTES: usize = 27;
const BATCH_BYTES: usize = 24;
const ABORTED_BYTES: usize = 24;

pub fn snapshot_file_name(offset: i64) -> String {
    file_name(offset, "snapshot")
}

/// Parses `00000000000000001234.snapshot` into 1234.
pub fn parse_snapshot_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".snapshot")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Offsets of the snapshot files among `names`, ascending.
pub fn snapshot_offsets(names: &[String]) -> Vec<i64> {
    let mut offsets: Vec<i64> = names
        .iter()
        .filter_map(|n| parse_snapshot_file_name(n))
        .collect();
    offsets.sort_unstable();
    offsets
}

pub fn encode(offset: i64, producers: &ProducerState) -> Vec<u8> {
    let mut ids: Vec<(i64, &ProducerEntry)> = producers.iter().collect();
    ids.sort_unstable_by_key(|&(id, _)| id);
    let mut out = Vec::with_capacity(
        HEADER_BYTES + ids.len() * (PRODUCER_BYTES + BATCHES_PER_PRODUCER_MAX * BATCH_BYTES),
    );
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&offset.to_be_bytes());
    let count = u32::try_from(ids.len()).expect("fewer than 2^32 producers");
    out.extend_from_slice(&count.to_be_bytes());
    for (id, entry) in ids {
        assert!(entry.batches.len() <= BATCHES_PER_PRODUCER_MAX);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&entry.epoch.to_be_bytes());
        out.extend_from_slice(&entry.txn_first_offset.unwrap_or(-1).to_be_bytes());
        out.extend_from_slice(&entry.last_timestamp_ms.to_be_bytes());
        out.push(entry.batches.len() as u8);
        for b in &entry.batches {
            out.extend_from_slice(&b.first_seq.to_be_bytes());
            out.extend_from_slice(&b.last_seq.to_be_bytes());
            out.extend_from_slice(&b.base_offset.to_be_bytes());
            out.extend_from_slice(&b.last_offset.to_be_bytes());
        }
    }
    let aborted = producers.aborted();
    let count = u32::try_from(aborted.len()).expect("fewer than 2^32 aborted transactions");
    out.extend_from_slice(&count.to_be_bytes());
    for a in aborted {
        out.extend_from_slice(&a.producer_id.to_be_bytes());
        out.extend_from_slice(&a.first_offset.to_be_bytes());
        out.extend_from_slice(&a.last_offset.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out[CRC_FROM..]);
    out[6..CRC_FROM].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a snapshot into (offset, state); the error says what is wrong.
pub fn decode(data: &[u8]) -> Result<(i64, ProducerState), String> {
    if data.len() < HEADER_BYTES {
        return Err(format!("{} bytes, shorter than the header", data.len()));
    }
    if &data[0..4] != SNAPSHOT_MAGIC {
        return Err("not a corelog producer snapshot (bad magic)".into());
    }
    let mut r = Reader { data, at: 4 };
    let version = r.u16();
    let producer_bytes = match version {
        SNAPSHOT_VERSION => PRODUCER_BYTES,
        SNAPSHOT_VERSION_NO_TIMESTAMP => PRODUCER_BYTES_V2,
        SNAPSHOT_VERSION_NO_TXN => PRODUCER_BYTES_V1,
        _ => {
            return Err(format!(
                "version {version}, only {SNAPSHOT_VERSION_NO_TXN} to {SNAPSHOT_VERSION} are known"
            ))
        }
    };
    let with_txn = version >= SNAPSHOT_VERSION_NO_TIMESTAMP;
    let with_timestamp = version >= SNAPSHOT_VERSION;
    let loaded_ms = crate::util::now_ms();
    let stored = r.u32();
    let computed = crc32c::crc32c(&data[CRC_FROM..]);
    if stored != computed {
        return Err(format!(
            "crc {stored:#010x} stored, {computed:#010x} computed"
        ));
    }
    let offset = r.i64();
    let count = r.u32() as usize;
    let mut producers = ProducerState::new();
    for _ in 0..count {
        if r.left() < producer_bytes {
            return Err("truncated producer entry".into());
        }
        let id = r.i64();
        let epoch = r.u16() as i16;
        let txn_first_offset = if with_txn {
            Some(r.i64()).filter(|&o| o >= 0)
        } else {
            None
        };
        let last_timestamp_ms = if with_timestamp { r.i64() } else { loaded_ms };
        let batches = r.u8() as usize;
        if batches > BATCHES_PER_PRODUCER_MAX || r.left() < batches * BATCH_BYTES {
            return Err(format!("producer {id}: bad batch count {batches}"));
        }
        let mut entry = ProducerEntry {
            epoch,
            batches: VecDeque::with_capacity(batches),
            txn_first_offset,
            last_timestamp_ms,
        };
        for _ in 0..batches {
            entry.batches.push_back(BatchMeta {
                first_seq: r.u32() as i32,
                last_seq: r.u32() as i32,
                base_offset: r.i64(),
                last_offset: r.i64(),
            });
        }
        producers.insert(id, entry);
    }
    if with_txn {
        if r.left() < 4 {
            return Err("truncated aborted transaction count".into());
        }
        let aborted = r.u32() as usize;
        if r.left() != aborted.saturating_mul(ABORTED_BYTES) {
            return Err(format!(
                "aborted transaction count {aborted} does not fit the file"
            ));
        }
        producers.extend_aborted((0..aborted).map(|_| AbortedTxn {
            producer_id: r.i64(),
            first_offset: r.i64(),
            last_offset: r.i64(),
        }));
    }
    if r.left() != 0 {
        return Err(format!("{} bytes after the last producer", r.left()));
    }
    Ok((offset, producers))
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.at
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        let bytes = self.data[self.at..self.at + N].try_into().expect("N bytes");
        self.at += N;
        bytes
    }

    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take())
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }

    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take())
    }
}

/// Writes `encoded` (from [`encode`]) as the snapshot at `offset` (temp file, fsync,
/// rename) and deletes all but the [`SNAPSHOTS_KEPT`] newest snapshots. The caller
/// makes the directory entries durable (the next segment's creation or close does).
pub async fn write(dir: &Path, offset: i64, encoded: Vec<u8>) -> Result<(), StorageError> {
    io::write_small_file(&dir.join(snapshot_file_name(offset)), encoded).await?;
    let offsets = snapshot_offsets(&io::list_dir(dir).await?);
    let old = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
    for &stale in &offsets[..old] {
        io::remove_file(&dir.join(snapshot_file_name(stale))).await?;
    }
    Ok(())
}

/// The newest valid snapshot among `offsets` (ascending) at or below `max_offset`;
/// corrupt ones are skipped with a warning.
pub async fn load_newest(
    dir: &Path,
    offsets: &[i64],
    max_offset: i64,
) -> Result<Option<(i64, ProducerState)>, StorageError> {
    for &offset in offsets.iter().rev().filter(|&&o| o <= max_offset) {
        let path = dir.join(snapshot_file_name(offset));
        let Some(data) = io::read_small_file(&path).await? else {
            continue;
        };
        match decode(&data) {
            Ok((stored, producers)) if stored == offset => return Ok(Some((offset, producers))),
            Ok((stored, _)) => warn!(
                path = %path.display(),
                stored_offset = stored,
                "producer snapshot holds another offset than its name; ignoring it"
            ),
            Err(reason) => warn!(
                path = %path.display(),
                %reason,
                "corrupt producer snapshot ignored; using an older one or the log"
            ),
        }
    }
    Ok(None)
}

/// Deletes the snapshots above `log_end_offset` (after recovery truncated the log, they
/// describe batches that are gone) and makes that durable.
pub async fn remove_above(
    dir: &Path,
    offsets: &[i64],
    log_end_offset: i64,
) -> Result<(), StorageError> {
    let above: Vec<i64> = offsets
        .iter()
        .copied()
        .filter(|&o| o > log_end_offset)
        .collect();
    if above.is_empty() {
        return Ok(());
    }
    for offset in above {
        let path = dir.join(snapshot_file_name(offset));
        warn!(path = %path.display(), log_end_offset, "deleting producer snapshot past the log end");
        io::remove_file(&path).await?;
    }
    io::sync_dir(dir).await
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::storage::testutil::header;

    fn state() -> ProducerState {
        let mut state = ProducerState::new();
        let mut offset = 0;
        for i in 0..8 {
            state.record(&header(7, 2, i * 3, 3), offset);
            offset += 3;
        }
        state.record(&header(-1, -1, -1, 1), offset);
        state.record(&header(i64::MAX, i16::MAX, i32::MAX, 1), offset + 1);
        let mut txn = header(9, 0, 0, 2);
        txn.attributes |= 0x10;
        state.record(&txn, offset + 2);
        let mut aborted = header(8, 0, 0, 1);
        aborted.attributes |= 0x10;
        state.record(&aborted, offset + 4);
        state.record_marker(8, 0, offset + 5, true);
        state
    }

    #[test]
    fn round_trip_and_names() {
        let state = state();
        let encoded = encode(1234, &state);
        assert_eq!(
            encoded.len(),
            HEADER_BYTES + 4 * PRODUCER_BYTES + 8 * BATCH_BYTES + 4 + ABORTED_BYTES
        );
        let decoded = decode(&encoded).unwrap().1;
        assert_eq!(decoded.first_unstable_offset(), Some(26));
        assert_eq!(decoded.aborted().len(), 1);
        assert_eq!(decode(&encoded).unwrap(), (1234, state));
        assert_eq!(decode(&encode(0, &ProducerState::new())).unwrap().0, 0);
        assert_eq!(snapshot_file_name(1234), "00000000000000001234.snapshot");
        assert_eq!(
            parse_snapshot_file_name("00000000000000001234.snapshot"),
            Some(1234)
        );
        assert_eq!(parse_snapshot_file_name("00000000000000001234.log"), None);
    }

    #[test]
    fn any_damage_is_detected() {
        let encoded = encode(99, &state());
        for at in 0..encoded.len() {
            let mut bad = encoded.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "flipped byte {at}");
        }
        for len in 0..encoded.len() {
            assert!(decode(&encoded[..len]).is_err(), "cut at {len}");
        }
        let mut version = encoded.clone();
        version[5] = 4;
        assert!(decode(&version).unwrap_err().contains("version 4"));
    }

    #[test]
    fn version_1_files_still_load() {
        let mut v1 = Vec::new();
        v1.extend_from_slice(SNAPSHOT_MAGIC);
        v1.extend_from_slice(&1u16.to_be_bytes());
        v1.extend_from_slice(&[0; 4]);
        v1.extend_from_slice(&50i64.to_be_bytes());
        v1.extend_from_slice(&1u32.to_be_bytes());
        v1.extend_from_slice(&7i64.to_be_bytes());
        v1.extend_from_slice(&3i16.to_be_bytes());
        v1.push(0);
        let crc = crc32c::crc32c(&v1[CRC_FROM..]);
        v1[6..CRC_FROM].copy_from_slice(&crc.to_be_bytes());
        let (offset, state) = decode(&v1).unwrap();
        assert_eq!((offset, state.get(7).unwrap().epoch), (50, 3));
        assert_eq!(state.first_unstable_offset(), None);
    }

    #[test]
    fn version_2_files_load_with_the_expiry_clock_starting_now() {
        let mut v2 = Vec::new();
        v2.extend_from_slice(SNAPSHOT_MAGIC);
        v2.extend_from_slice(&2u16.to_be_bytes());
        v2.extend_from_slice(&[0; 4]);
        v2.extend_from_slice(&50i64.to_be_bytes());
        v2.extend_from_slice(&1u32.to_be_bytes());
        v2.extend_from_slice(&7i64.to_be_bytes());
        v2.extend_from_slice(&3i16.to_be_bytes());
        v2.extend_from_slice(&(-1i64).to_be_bytes());
        v2.push(1);
        for v in [0i32, 4] {
            v2.extend_from_slice(&v.to_be_bytes());
        }
        for v in [40i64, 44] {
            v2.extend_from_slice(&v.to_be_bytes());
        }
        v2.extend_from_slice(&0u32.to_be_bytes());
        let crc = crc32c::crc32c(&v2[CRC_FROM..]);
        v2[6..CRC_FROM].copy_from_slice(&crc.to_be_bytes());
        let before = crate::util::now_ms();
        let (offset, state) = decode(&v2).unwrap();
        let entry = state.get(7).unwrap();
        assert_eq!((offset, entry.epoch, entry.batches.len()), (50, 3, 1));
        assert!(entry.last_timestamp_ms >= before);
        assert!(entry.last_timestamp_ms <= crate::util::now_ms());
    }

    #[test]
    fn timestamps_survive_the_round_trip() {
        let mut state = ProducerState::new();
        let mut b = header(5, 0, 0, 1);
        b.max_timestamp = 1_700_000_000_123;
        state.record(&b, 0);
        let decoded = decode(&encode(1, &state)).unwrap().1;
        assert_eq!(decoded.get(5).unwrap().last_timestamp_ms, 1_700_000_000_123);
    }
}
