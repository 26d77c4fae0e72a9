//! Storage: Kafka's on-disk log layout, written with O_DIRECT through glommio.
//!
//! Codemap:
//! - `batch`: record batch v2 header, validation (CRC32C, lengths, magic), offset patching.
//! - `io`: the only module that names glommio's `DmaFile`; blocking `std::fs` helpers that
//!   run on glommio's blocking thread pool so the shard thread never blocks.
//! - `index`: Kafka's sparse `.index` and `.timeindex`, kept in memory, written as files.
//! - `segment`: one `.log` file with its indexes; aligned appends with an in-memory tail page.
//! - `log`: `PartitionLog`, the per-partition handle: append, group-committed writer, read.
//! - `cache`: recent batches as `Bytes`, so tailing consumers are served without a copy.
//! - `producer_state`: idempotent producer sequence checks.
//! - `snapshot`: producer state snapshot files (`<offset>.snapshot`), so recovery replays
//!   only the log after the newest one.
//! - `recovery`: open-time recovery: trusts segments below the recovery point (indexes
//!   loaded from their files, no read), scans the rest, truncates torn tails.
//! - `checkpoint`: Kafka's checkpoint file format (recovery points, log start offsets,
//!   the cleaner's `cleaner-offset-checkpoint`).
//! - `records`: the records inside a batch: walking keys and tombstones, bounded
//!   decompression, rebuilding a batch from some of its records (the cleaner),
//!   recompression to a topic's `compression.type`.

pub mod batch;
pub mod cache;
pub mod checkpoint;
pub mod fault;
pub mod index;
pub mod io;
pub mod leader_epoch;
pub mod legacy_format;
pub mod log;
#[cfg(test)]
mod powercut;
pub mod producer_state;
pub mod recorder;
pub mod records;
pub mod recovery;
pub mod segment;
pub mod snapshot;
pub mod validate;

pub use log::{AppendInfo, LogConfig, LogMemory, LogStats, PartitionLog, ReadResult};

use std::path::Path;

/// The storage layer's one error type; mapped to a Kafka error code once, at the edge,
/// by [`StorageError::kafka_error_code`].
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    #[error("record batch of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("offset {offset} is out of range [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    #[error("unsupported message format: {0}")]
    UnsupportedFormat(String),
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A follower append whose first batch does not start at the log end offset, or
    /// whose batches are not contiguous (`PartitionLog::append_replicated`).
    #[error(
        "replicated batch at offset {got} does not follow the log, which expects offset {expected}"
    )]
    NotContiguous { expected: i64, got: i64 },
    /// `PartitionLog::truncate_to` asked to cut inside a batch.
    #[error("offset {offset} is inside the batch [{base_offset}, {last_offset}]: truncation cuts only at batch boundaries")]
    NotBatchBoundary {
        offset: i64,
        base_offset: i64,
        last_offset: i64,
    },
    /// The offsets waited for, or being appended, were truncated away (the replica
    /// lost its leadership and is following another leader).
    #[error("offsets from {offset} were truncated from the log; retry on the current leader")]
    Truncated { offset: i64 },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl StorageError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            StorageError::Corrupt(_) => 2,
            StorageError::TooLarge { .. } => 10,
            StorageError::OffsetOutOfRange { .. } => 1,
            StorageError::OutOfOrderSequence(_) => 45,
            StorageError::InvalidProducerEpoch(_) => 47,
            StorageError::UnsupportedFormat(_) => 43,
            StorageError::InvalidTimestamp(_) => 32,
            StorageError::InvalidRecord(_) => 87,
            // OFFSET_OUT_OF_RANGE: the fetcher's position does not match this log.
            StorageError::NotContiguous { .. } | StorageError::NotBatchBoundary { .. } => 1,
            // NOT_LEADER_OR_FOLLOWER: what Kafka answers a produce whose data the
            // leader lost with its leadership.
            StorageError::Truncated { .. } => 6,
            StorageError::Io { .. } => 56,
        }
    }

    pub(crate) fn io(path: &Path, source: impl Into<std::io::Error>) -> StorageError {
        StorageError::Io {
            path: path.display().to_string(),
            source: source.into(),
        }
    }
}

/// Shared helpers for the unit tests of this module tree.
#[cfg(test)]
pub(crate) mod testutil {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// Runs `fut` on a fresh glommio executor, as every shard does.
    pub fn run<F, T>(fut: F) -> T
    where
        F: std::future::Future<Output = T> + 'static,
        T: Send + 'static,
    {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .make()
            .unwrap()
            .run(fut)
    }

    /// A real Kafka v2 record batch of `count` records (values `value_len` bytes long),
    /// encoded by the `kafka-protocol` crate. `producer_id` -1 means non-idempotent.
    pub fn batch(
        count: i32,
        value_len: usize,
        producer_id: i64,
        epoch: i16,
        base_seq: i32,
    ) -> BytesMut {
        encoded(
            count,
            value_len,
            producer_id,
            epoch,
            base_seq,
            Compression::None,
        )
    }

    /// A plain batch of `count` records compressed with `compression`.
    pub fn compressed(count: i32, compression: Compression) -> BytesMut {
        encoded(count, 10, -1, -1, -1, compression)
    }

    fn encoded(
        count: i32,
        value_len: usize,
        producer_id: i64,
        epoch: i16,
        base_seq: i32,
        compression: Compression,
    ) -> BytesMut {
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch: if producer_id < 0 { -1 } else { epoch },
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder starts a new batch whenever offset - sequence changes, and
                // derives baseSequence from the first record: -1 for plain batches.
                sequence: if producer_id < 0 { i - 1 } else { base_seq + i },
                timestamp: 1_700_000_000_000 + i as i64,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(vec![b'a' + (i % 26) as u8; value_len])),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf
    }

    /// A batch header of an idempotent producer's batch, for producer-state tests.
    pub fn header(
        pid: i64,
        epoch: i16,
        seq: i32,
        count: i32,
    ) -> crate::storage::batch::BatchHeader {
        crate::storage::batch::BatchHeader {
            base_offset: 0,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    /// A plain (non-idempotent) batch.
    pub fn plain(count: i32, value_len: usize) -> BytesMut {
        batch(count, value_len, -1, -1, -1)
    }
}
