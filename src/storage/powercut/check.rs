//! The checker: opens one crash state with the real recovery (the broker's checkpoint
//! readers, then `PartitionLog::open`, which reads segments, indexes, producer
//! snapshots and the leader-epoch file) and compares what it reads with the history
//! the journal prefix holds.

use std::collections::BTreeMap;
use std::path::Path;

use crate::storage::batch::BatchHeader;
use crate::storage::checkpoint::{
    read_checkpoint, LOG_START_OFFSET_CHECKPOINT_FILE, RECOVERY_POINT_CHECKPOINT_FILE,
};
use crate::storage::log::{LogConfig, PartitionLog};
use crate::storage::recorder::{Mark, Op};

/// Bytes asked for per read while checking.
const CHECK_READ_BYTES: usize = 1 << 20;

/// What the log was told and answered, up to a point of the journal.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Every batch ever appended at each base offset (a truncation lets an offset be
    /// written again).
    versions: BTreeMap<i64, Vec<Vec<u8>>>,
    /// The batches of the log now: base offset -> (last offset, bytes).
    current: BTreeMap<i64, (i64, Vec<u8>)>,
    /// Offsets below this were answered durable (acks=all) and not truncated since.
    acked_end: i64,
    /// The log start offset the log was asked to move to.
    log_start: i64,
}

impl History {
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Ack { offset, .. } => self.acked_end = self.acked_end.max(offset + 1),
            Op::Mark { mark, .. } => match mark {
                Mark::Appended {
                    base_offset,
                    last_offset,
                    bytes,
                } => {
                    self.versions
                        .entry(*base_offset)
                        .or_default()
                        .push(bytes.clone());
                    self.current
                        .insert(*base_offset, (*last_offset, bytes.clone()));
                }
                Mark::TruncatedTo { offset } => {
                    self.current.retain(|base, _| base < offset);
                    self.acked_end = self.acked_end.min(*offset);
                }
                Mark::LogStartMoved { offset } => self.log_start = self.log_start.max(*offset),
            },
            _ => {}
        }
    }

    /// Offsets answered durable so far (for reports).
    pub fn acked_end(&self) -> i64 {
        self.acked_end
    }

    /// The batches a crash must keep: acked, not truncated, not below the log start.
    fn required(&self) -> impl Iterator<Item = (i64, &(i64, Vec<u8>))> {
        self.current
            .iter()
            .map(|(base, batch)| (*base, batch))
            .filter(|(_, (last, _))| *last >= self.log_start && *last < self.acked_end)
    }
}

/// A batch as read back.
struct ReadBatch {
    base: i64,
    last: i64,
    bytes: Vec<u8>,
}

/// Recovers the log under `data` (a crash state's log dir) and checks it against
/// `history`; `Err` says what is wrong.
pub async fn check(
    data: &Path,
    topic: &str,
    config: &LogConfig,
    history: &History,
) -> Result<(), String> {
    let key = (topic.to_string(), 0);
    let rp_file = data.join(RECOVERY_POINT_CHECKPOINT_FILE);
    let ls_file = data.join(LOG_START_OFFSET_CHECKPOINT_FILE);
    let recovery_point = read_checkpoint(&rp_file)
        .await
        .map_err(|e| format!("reading the recovery-point checkpoint: {e}"))?;
    let log_start = read_checkpoint(&ls_file)
        .await
        .map_err(|e| format!("reading the log-start checkpoint: {e}"))?;
    let log = PartitionLog::open(
        data,
        topic,
        0,
        config.clone(),
        recovery_point.get(&key).copied().unwrap_or(0),
        log_start.get(&key).copied().unwrap_or(0),
    )
    .await
    .map_err(|e| format!("recovery failed: {e}"))?;
    let read = read_all(&log).await;
    let sequences = read
        .as_ref()
        .map_or(Ok(()), |read| check_sequences(&log, read));
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    log.close()
        .await
        .map_err(|e| format!("closing the recovered log: {e}"))?;
    verify(history, start, end, &read?)?;
    sequences
}

/// The producer state recovery rebuilt (snapshot plus replay) agrees with the log: for
/// each idempotent producer, the next sequence it accepts follows its last batch read.
/// A stale or too-new snapshot would make a retry be duplicated or refused.
fn check_sequences(log: &PartitionLog, read: &[ReadBatch]) -> Result<(), String> {
    let mut last: BTreeMap<i64, (i16, i32)> = BTreeMap::new();
    for batch in read {
        let header = BatchHeader::parse(&batch.bytes).expect("parsed before");
        if header.producer_id >= 0 {
            let next = header.base_sequence + header.last_offset_delta + 1;
            last.insert(header.producer_id, (header.producer_epoch, next));
        }
    }
    for (producer_id, (epoch, next)) in last {
        let recovered = log.next_sequence(producer_id, epoch);
        if recovered != next {
            return Err(format!(
                "producer {producer_id}: the log's last batch says next sequence {next}, \
                 the recovered producer state {recovered}"
            ));
        }
    }
    Ok(())
}

async fn read_all(log: &PartitionLog) -> Result<Vec<ReadBatch>, String> {
    let mut batches = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let result = log
            .read(offset, CHECK_READ_BYTES)
            .await
            .map_err(|e| format!("reading offset {offset} (log end {end}): {e}"))?;
        if result.batches.is_empty() {
            return Err(format!(
                "read at {offset} returned nothing below the log end {end}"
            ));
        }
        for bytes in result.batches {
            let header = BatchHeader::parse(&bytes)
                .ok_or_else(|| format!("unparseable batch read at {offset}"))?;
            offset = header.last_offset() + 1;
            batches.push(ReadBatch {
                base: header.base_offset,
                last: header.last_offset(),
                bytes: bytes.to_vec(),
            });
        }
    }
    Ok(batches)
}

fn verify(history: &History, start: i64, end: i64, read: &[ReadBatch]) -> Result<(), String> {
    let mut expected_base = None;
    for batch in read {
        let written = history.versions.get(&batch.base);
        if !written.is_some_and(|v| v.contains(&batch.bytes)) {
            return Err(format!(
                "read a batch at {}..={} ({} bytes) that was never written there",
                batch.base,
                batch.last,
                batch.bytes.len()
            ));
        }
        match expected_base {
            None if batch.base > start || batch.last < start => {
                return Err(format!(
                    "log start {start} but the first batch read is {}..={}",
                    batch.base, batch.last
                ))
            }
            Some(next) if batch.base != next => {
                return Err(format!("gap: expected offset {next}, read {}", batch.base))
            }
            _ => {}
        }
        expected_base = Some(batch.last + 1);
    }
    let read_end = expected_base.unwrap_or(start);
    if read_end != end {
        return Err(format!(
            "log end {end} but the batches read end at {read_end}"
        ));
    }
    let found: BTreeMap<i64, &[u8]> = read.iter().map(|b| (b.base, &b.bytes[..])).collect();
    for (base, (last, bytes)) in history.required() {
        match found.get(&base) {
            Some(read) if read == bytes => {}
            Some(_) => {
                return Err(format!(
                    "acked batch {base}..={last} reads back with other bytes"
                ))
            }
            None => {
                return Err(format!(
                    "acked batch {base}..={last} is lost (log {start}..{end}, acked below {})",
                    history.acked_end
                ))
            }
        }
    }
    Ok(())
}
