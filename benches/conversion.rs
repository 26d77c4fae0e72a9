//! What message-format conversion costs (`cargo bench --bench conversion`): Produce v0-2
//! message sets up to v2 batches, and v2 batches down to message sets for Fetch v0-3,
//! uncompressed and gzip, 100-byte and 1 KiB values. Criterion reports throughput in
//! bytes of message set per second; seconds per GB is its inverse (1e9 / bytes per s).
//!
//! Inputs are built with the broker's own writer of messages (`put_message`, checked
//! byte for byte against hand-written messages in the unit tests) and the kafka-protocol
//! crate's batch encoder.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use corelog::storage::legacy_format::{
    batches_to_message_set, message_set_to_batch, put_message, DownConvertBudget,
};

/// About what one Produce partition or one Fetch partition carries.
const SET_BYTES: usize = 1 << 20;
const NOW_MS: i64 = 1_765_000_000_000;
/// Limits no input here reaches (decompression bounds are inclusive, so not usize::MAX).
const UNBOUNDED: usize = 1 << 30;

/// A message set of format v1 holding about SET_BYTES of `value_bytes` values, plain or
/// wrapped in one gzip message.
fn message_set(value_bytes: usize, gzip: bool) -> Vec<u8> {
    let mut plain = BytesMut::new();
    let mut i = 0;
    while plain.len() < SET_BYTES {
        let value = format!("{i:08}").repeat(value_bytes / 8);
        put_message(
            &mut plain,
            i,
            1,
            0,
            NOW_MS + i,
            Some(b"key"),
            Some(value.as_bytes()),
        );
        i += 1;
    }
    if !gzip {
        return plain.to_vec();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let mut wrapper = BytesMut::new();
    put_message(
        &mut wrapper,
        i - 1,
        1,
        1,
        NOW_MS + i,
        None,
        Some(&gz.finish().unwrap()),
    );
    wrapper.to_vec()
}

/// One v2 batch of about SET_BYTES of `value_bytes` values.
fn batch(value_bytes: usize, compression: Compression) -> Bytes {
    let records: Vec<Record> = (0..(SET_BYTES / (value_bytes + 20)) as i64)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32 - 1,
            timestamp: NOW_MS + i,
            key: Some(Bytes::from_static(b"key")),
            value: Some(Bytes::from(format!("{i:08}").repeat(value_bytes / 8))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options).unwrap();
    out.freeze()
}

fn up(c: &mut Criterion) {
    let mut group = c.benchmark_group("up_convert");
    for (value_bytes, gzip) in [(100, false), (1024, false), (100, true), (1024, true)] {
        let set = message_set(value_bytes, gzip);
        let name = format!("v1_{value_bytes}B_{}", if gzip { "gzip" } else { "plain" });
        // Throughput in uncompressed message-set bytes, so plain and gzip compare.
        let raw_bytes = if gzip {
            message_set(value_bytes, false).len()
        } else {
            set.len()
        };
        group.throughput(Throughput::Bytes(raw_bytes as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &set, |b, set| {
            b.iter(|| message_set_to_batch(set, NOW_MS, UNBOUNDED).unwrap())
        });
    }
    group.finish();
}

fn down(c: &mut Criterion) {
    let mut group = c.benchmark_group("down_convert");
    for (value_bytes, compression, codec) in [
        (100, Compression::None, "plain"),
        (1024, Compression::None, "plain"),
        (100, Compression::Gzip, "gzip"),
        (1024, Compression::Gzip, "gzip"),
    ] {
        let batches = vec![batch(value_bytes, compression)];
        let out_bytes = batches_to_message_set(&batches, 1, 0, UNBOUNDED, &mut budget())
            .unwrap()
            .message_set
            .len();
        group.throughput(Throughput::Bytes(out_bytes as u64));
        let name = format!("to_v1_{value_bytes}B_{codec}");
        group.bench_with_input(BenchmarkId::from_parameter(name), &batches, |b, batches| {
            b.iter(|| batches_to_message_set(batches, 1, 0, UNBOUNDED, &mut budget()).unwrap())
        });
    }
    group.finish();
}

fn budget() -> DownConvertBudget {
    DownConvertBudget {
        output_bytes_left: UNBOUNDED,
        inflated_bytes_left: UNBOUNDED,
    }
}

criterion_group!(benches, up, down);
criterion_main!(benches);
