//! The workload whose journal the power cuts cut: one partition driven as the broker
//! drives it, with everything recovery must cope with — appends of varied sizes across
//! segment rolls (small segment.bytes), idempotent batches (producer snapshots at each
//! roll), acks=all and acks=1 waits and unwaited appends, idle moments in which the
//! writer zeros ahead, checkpoint files, DeleteRecords and one follower-style truncation
//! followed by new data at the same offsets. Finishes with a clean close.

use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::disk::Rng;
use crate::storage::batch::{patch_base_offset, patch_leader_epoch};
use crate::storage::checkpoint::{
    write_checkpoint, Checkpoint, LOG_START_OFFSET_CHECKPOINT_FILE, RECOVERY_POINT_CHECKPOINT_FILE,
};
use crate::storage::log::{LogConfig, PartitionLog};
use crate::storage::recorder::{Mark, Recording};

pub const TOPIC: &str = "t";
/// Values of the records, in bytes: empty to a few pages.
const VALUE_BYTES: [usize; 5] = [0, 10, 100, 700, 2_500];
/// Records per batch, at most.
const BATCH_RECORDS_MAX: u64 = 8;

/// Small segments (several rolls per run), an index entry every KiB, a little
/// zeroed ahead.
pub fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 24 << 10,
        index_interval_bytes: 1 << 10,
        zero_ahead_bytes: 8 << 10,
        ..LogConfig::default()
    }
}

/// A v2 batch whose values name `serial`, so no two batches of a run are alike.
fn batch(serial: u64, count: i32, value_len: usize, producer: Option<(i64, i32)>) -> BytesMut {
    let now = crate::util::now_ms();
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let mut value = format!("{serial}/{i}/").into_bytes();
            value.resize(value_len.max(value.len()), b'a' + (serial % 26) as u8);
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: producer.map_or(-1, |p| p.0),
                producer_epoch: if producer.is_some() { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: producer.map_or(i - 1, |p| p.1 + i),
                timestamp: now + i as i64,
                key: Some(Bytes::from(format!("k{serial}"))),
                value: Some(Bytes::from(value)),
                headers: IndexMap::new(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encodable batch");
    buf
}

struct Run<'a> {
    log: PartitionLog,
    data: &'a Path,
    recording: &'a Recording,
    rng: Rng,
    serial: u64,
    producer: (i64, i32),
    bases: Vec<i64>,
    truncated: bool,
}

/// Runs `steps` random steps (from `seed`) on a new log under `data`, recorded by
/// `recording`, then closes it and writes the checkpoints as a clean shutdown does.
pub async fn run(data: &Path, recording: &Recording, seed: u64, steps: usize) {
    let log = PartitionLog::open(data, TOPIC, 0, config(), 0, 0)
        .await
        .expect("open a new log");
    let mut run = Run {
        log,
        data,
        recording,
        rng: Rng(seed),
        serial: 0,
        producer: (1_000, 0),
        bases: Vec::new(),
        truncated: false,
    };
    for step in 0..steps {
        match run.rng.below(100) {
            0..=64 => run.append().await,
            65..=74 => {
                let flush = run.rng.below(2) == 0;
                run.checkpoint(flush).await
            }
            75..=84 => glommio::timer::sleep(Duration::from_millis(2)).await,
            85..=91 => run.delete_records().await,
            _ if !run.truncated && step > steps / 3 => run.truncate().await,
            _ => run.append().await,
        }
    }
    let recovery_point = run.log.close().await.expect("clean close");
    write_checkpoints(data, recovery_point, run.log.log_start_offset()).await;
}

async fn write_checkpoints(data: &Path, recovery_point: i64, log_start: i64) {
    for (file, offset) in [
        (RECOVERY_POINT_CHECKPOINT_FILE, recovery_point),
        (LOG_START_OFFSET_CHECKPOINT_FILE, log_start),
    ] {
        let entries = Checkpoint::from([((TOPIC.to_string(), 0), offset)]);
        write_checkpoint(&data.join(file), entries)
            .await
            .expect("write a checkpoint");
    }
}

impl Run<'_> {
    async fn append(&mut self) {
        let count = 1 + self.rng.below(BATCH_RECORDS_MAX) as i32;
        let value_len = VALUE_BYTES[self.rng.below(VALUE_BYTES.len() as u64) as usize];
        let idempotent = self.rng.below(2) == 0;
        let producer = idempotent.then_some(self.producer);
        let records = batch(self.serial, count, value_len, producer);
        self.serial += 1;
        let mut stored = records.to_vec();
        let info = self.log.append(records).expect("append");
        if idempotent {
            self.producer.1 += count;
        }
        patch_base_offset(&mut stored, info.base_offset);
        patch_leader_epoch(&mut stored, 0);
        self.bases.push(info.base_offset);
        self.recording.mark(
            self.log.dir(),
            Mark::Appended {
                base_offset: info.base_offset,
                last_offset: info.last_offset,
                bytes: stored,
            },
        );
        match self.rng.below(10) {
            0..=4 => self
                .log
                .wait_durable(info.last_offset)
                .await
                .expect("acks=all"),
            5..=7 => self
                .log
                .wait_written(info.last_offset)
                .await
                .expect("acks=1"),
            _ => {}
        }
    }

    /// The broker's periodic checkpoint: the recovery point (after a flush, or as it
    /// stands) and the log start offset.
    async fn checkpoint(&mut self, flush: bool) {
        let recovery_point = match flush {
            true => self.log.flush().await.expect("flush"),
            false => self.log.recovery_point(),
        };
        write_checkpoints(self.data, recovery_point, self.log.log_start_offset()).await;
    }

    /// DeleteRecords to a random offset below the high watermark.
    async fn delete_records(&mut self) {
        let start = self.log.log_start_offset();
        let high_watermark = self.log.high_watermark();
        if high_watermark <= start {
            return;
        }
        let target = start + self.rng.below((high_watermark - start) as u64) as i64;
        self.recording
            .mark(self.log.dir(), Mark::LogStartMoved { offset: target });
        self.log
            .delete_records_before(target)
            .await
            .expect("delete records");
    }

    /// A follower's truncation to a random batch boundary above the log start; later
    /// appends (by a new producer) write those offsets again.
    async fn truncate(&mut self) {
        let start = self.log.log_start_offset();
        let candidates: Vec<i64> = self.bases.iter().copied().filter(|&b| b > start).collect();
        if candidates.is_empty() {
            return;
        }
        let offset = candidates[self.rng.below(candidates.len() as u64) as usize];
        self.recording
            .mark(self.log.dir(), Mark::TruncatedTo { offset });
        self.log.truncate_to(offset).await.expect("truncate");
        // As the replica fetcher does: the recovery point is now the cut, and a stale,
        // higher one must not make recovery trust data written after the cut.
        self.checkpoint(false).await;
        self.bases.retain(|&b| b < offset);
        self.producer = (self.producer.0 + 1, 0);
        self.truncated = true;
    }
}
