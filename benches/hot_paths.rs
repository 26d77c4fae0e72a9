//! Microbenchmarks of the broker's hot paths, so a change can show its effect:
//! `cargo bench --bench hot_paths` (add `-- <filter>` for one group).
//!
//! `metrics` measures what recording costs on a shard: one stage sample (clock read and
//! histogram add), a counter add, and the merge of two shards' snapshots that a scrape
//! does; `clock` compares `Instant::now()` with CLOCK_MONOTONIC_COARSE.
//!
//! `segment_append` drives a real `PartitionLog` on a glommio executor in a temp dir:
//! append (validate, assign offsets, queue) plus the writer's group-committed O_DIRECT
//! writes, waited for every 16 batches as acks=1 producers would; retention keeps the
//! temp dir small. `acks_all_append` is one acks=all request at a time (append, wait for
//! the fdatasync) into zeroed-ahead versus fallocated space. `paced_acks1_append` is a
//! paced acks=1 producer's append (64 KiB batches with the writer idle between them, so
//! it zeroes ahead), timed in *process CPU* (io-wq workers included) rather than wall
//! time, on a log that never asked durability and on one that did. `segment_read` is a consumer
//! reading a partition from disk, 1 MiB at a time, through the read-ahead.
//!
//! Inputs are real Kafka structures built with the kafka-protocol crate: record batches
//! of 1 KiB records, Produce requests carrying them, Fetch responses returning them.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use corelog::protocol::fetch::{
    encode_fetch_response, FetchPartitionOut, FetchResponseParts, FetchTopicOut,
};
use corelog::protocol::produce::decode_produce_request;
use corelog::storage::batch::split_and_validate;
use corelog::storage::index::OffsetIndex;
use corelog::storage::validate::{record_times, validate_produced, TimestampRules};

const RECORD_BYTES: usize = 1024;

/// One record batch v2 of `records` records of RECORD_BYTES each.
fn batch(records: i32) -> BytesMut {
    batch_of(records, RECORD_BYTES)
}

/// One record batch v2 of `records` records of `record_bytes` each.
fn batch_of(records: i32, record_bytes: usize) -> BytesMut {
    let records: Vec<Record> = (0..records)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence changes: keep it
            // constant so that this is one batch (a plain batch's baseSequence is -1).
            sequence: i - 1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(vec![b'x'; record_bytes])),
            headers: IndexMap::new(),
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options).expect("batch encodes");
    out
}

/// Runs `body` on a fresh partition log (topic "bench", partition 0) in a temp dir, on a
/// glommio executor of its own, and returns what `body` returns (a measured time).
fn on_bench_log<T, Fut>(
    config: corelog::storage::LogConfig,
    body: impl FnOnce(corelog::storage::PartitionLog) -> Fut,
) -> T
where
    Fut: std::future::Future<Output = T>,
{
    let ex = glommio::LocalExecutorBuilder::default()
        .make()
        .expect("a glommio executor (io_uring and locked memory)");
    ex.run(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = corelog::storage::PartitionLog::open(dir.path(), "bench", 0, config, 0, 0)
            .await
            .expect("log opens");
        body(log).await
    })
}

fn batch_validation(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_validation");
    for records in [1, 16, 256] {
        let data = batch(records);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(records), &data, |b, data| {
            b.iter(|| split_and_validate(data, usize::MAX).expect("valid"))
        });
    }
    g.finish();
}

/// The header checks alone (`split_and_validate`: length, magic, CRC, counts) against
/// them plus the log validator (`validate_produced`: every record walked, maxTimestamp
/// checked), on 16 KiB batches of 1 KiB and of 100-byte records.
fn batch_validation_records(c: &mut Criterion) {
    let rules = TimestampRules {
        log_append_time: false,
        now_ms: 1_700_000_000_000,
        before_max_ms: i64::MAX,
        after_max_ms: i64::MAX,
    };
    let mut g = c.benchmark_group("batch_validation_records");
    for (records, record_bytes) in [(16, 1024), (160, 100)] {
        let data = batch_of(records, record_bytes);
        g.throughput(Throughput::Bytes(data.len() as u64));
        let name = format!("{records}x{record_bytes}B");
        g.bench_with_input(BenchmarkId::new("header", &name), &data, |b, data| {
            b.iter(|| split_and_validate(data, usize::MAX).expect("valid"))
        });
        g.bench_with_input(BenchmarkId::new("records", &name), &data, |b, data| {
            b.iter(|| record_times(data, usize::MAX, true).expect("valid"))
        });
        g.bench_with_input(
            BenchmarkId::new("header+records", &name),
            &data,
            |b, data| {
                b.iter_batched_ref(
                    || data.clone(),
                    |data| {
                        let mut batches = split_and_validate(data, usize::MAX).expect("valid");
                        validate_produced(data, &mut batches, &rules, usize::MAX).expect("valid");
                        batches
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    g.finish();
}

fn produce_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("produce_decode");
    let records = batch(16).freeze();
    for partitions in [1, 16] {
        let mut topic = TopicProduceData::default();
        topic.name = TopicName(StrBytes::from_static_str("bench"));
        topic.partition_data = (0..partitions)
            .map(|i| {
                let mut p = PartitionProduceData::default();
                p.index = i;
                p.records = Some(records.clone());
                p
            })
            .collect();
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 30_000;
        req.topic_data = vec![topic];
        for version in [9i16, 12] {
            let mut body = BytesMut::new();
            req.encode(&mut body, version).expect("request encodes");
            g.throughput(Throughput::Bytes(body.len() as u64));
            let id = BenchmarkId::new(format!("v{version}"), partitions);
            // The decoder takes the buffer by value (it splits record slices off it);
            // copying it is setup, not measured.
            g.bench_with_input(id, &body, |b, body| {
                b.iter_batched(
                    || body.clone(),
                    |body| decode_produce_request(version, body).expect("decodes"),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

fn fetch_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("fetch_encode");
    let records = batch(16).freeze();
    for partitions in [1, 16] {
        let parts = FetchResponseParts {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            topics: vec![FetchTopicOut {
                name: "bench".into(),
                topic_id: [7; 16],
                partitions: (0..partitions)
                    .map(|i| FetchPartitionOut {
                        partition_index: i,
                        error_code: 0,
                        high_watermark: 1_000_000,
                        last_stable_offset: 1_000_000,
                        log_start_offset: 0,
                        preferred_read_replica: -1,
                        current_leader: None,
                        aborted: Vec::new(),
                        records: vec![records.clone(), records.clone()],
                    })
                    .collect(),
            }],
            node_endpoints: Vec::new(),
        };
        for version in [11i16, 16] {
            let id = BenchmarkId::new(format!("v{version}"), partitions);
            g.bench_function(id, |b| {
                let mut out = Vec::new();
                b.iter(|| {
                    out.clear();
                    encode_fetch_response(version, &parts, &mut out).expect("encodes")
                })
            });
        }
    }
    g.finish();
}

fn index_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("index_lookup");
    for entries in [1_000u32, 100_000] {
        let mut index = OffsetIndex::new(0);
        for i in 1..=entries {
            index.append(i as i64 * 16, i * 4096);
        }
        let last = entries as i64 * 16;
        g.bench_with_input(BenchmarkId::from_parameter(entries), &index, |b, index| {
            let mut target = 0i64;
            b.iter(|| {
                target = (target + 7919) % last;
                index.lookup(target)
            })
        });
    }
    g.finish();
}

fn metrics_record_and_merge(c: &mut Criterion) {
    use corelog::metrics::{self, Counter, Stage};
    let mut g = c.benchmark_group("metrics");
    metrics::init_shard(true);
    g.bench_function("record_stage", |b| {
        b.iter(|| metrics::record_since(Stage::ProduceAppend, metrics::now()))
    });
    g.bench_function("add_counter", |b| {
        b.iter(|| metrics::add(Counter::AppendedBytes, std::hint::black_box(1024)))
    });
    g.bench_function("record_stage_disabled", |b| {
        metrics::init_shard(false);
        b.iter(|| metrics::record_since(Stage::ProduceAppend, metrics::now()));
        metrics::init_shard(true);
    });
    for v in 1..=100_000u64 {
        metrics::record_us(Stage::ProduceTotal, v % 5_000 + 1);
    }
    let other = metrics::snapshot(1).expect("recording");
    // What a scrape costs per shard pair: copy this shard's registry, merge it with
    // another shard's stage histograms.
    g.bench_function("snapshot_and_merge_2_shards", |b| {
        b.iter(|| {
            let s = metrics::snapshot(0).expect("recording");
            metrics::merge_stages(&[s, other.clone()])
        })
    });
    metrics::init_shard(false);
    g.finish();
}

fn clock(c: &mut Criterion) {
    let mut g = c.benchmark_group("clock");
    g.bench_function("instant_now", |b| b.iter(std::time::Instant::now));
    g.bench_function("monotonic_coarse", |b| {
        b.iter(|| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes the timespec we own.
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
            ts
        })
    });
    g.finish();
}

fn segment_append(c: &mut Criterion) {
    use corelog::storage::LogConfig;
    /// Appends between two waits for the writer, like a connection's in-flight window.
    const WAIT_EVERY: u64 = 16;
    let mut g = c.benchmark_group("segment_append");
    g.sample_size(10);
    for records in [1, 16] {
        let data = batch(records);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(records), &data, |b, data| {
            b.iter_custom(|iters| {
                let data = data.clone();
                let config = LogConfig {
                    segment_bytes: 64 << 20,
                    retention_bytes: 128 << 20,
                    ..LogConfig::default()
                };
                on_bench_log(config, |log| async move {
                    let start = std::time::Instant::now();
                    for i in 0..iters {
                        let info = log.append(data.clone()).expect("append");
                        if (i + 1) % WAIT_EVERY == 0 || i + 1 == iters {
                            log.wait_written(info.last_offset).await.expect("written");
                        }
                        if (i + 1) % 4096 == 0 {
                            log.enforce_retention(0).await.expect("retention");
                        }
                    }
                    let elapsed = start.elapsed();
                    log.close().await.expect("close");
                    elapsed
                })
            })
        });
    }
    g.finish();
}

/// One ACL decision against 10,000 bindings (2,000 users with a literal topic each,
/// 100 prefixes of 6 lengths, a few `*` and DENY bindings): what a Produce or Fetch pays
/// per topic with the authorizer on.
fn acl_authorize(c: &mut Criterion) {
    use corelog::security::acl::index::Request;
    use corelog::security::acl::{
        AclBinding, AclIndex, Operation, PatternType, Permission, ResourceType,
    };
    let bind = |name: String, pattern, principal: String, operation, permission| AclBinding {
        resource_type: ResourceType::Topic,
        name,
        pattern,
        principal,
        host: "*".into(),
        operation,
        permission,
    };
    let mut acls = Vec::new();
    for u in 0..2_000 {
        for op in [
            Operation::Write,
            Operation::Read,
            Operation::Describe,
            Operation::Create,
        ] {
            acls.push(bind(
                format!("topic-{u}"),
                PatternType::Literal,
                format!("User:u{u}"),
                op,
                Permission::Allow,
            ));
        }
    }
    for p in 0..100 {
        let prefix = format!("{}{p}-", "pre".repeat(1 + p % 6));
        acls.push(bind(
            prefix,
            PatternType::Prefixed,
            format!("User:u{p}"),
            Operation::Read,
            Permission::Allow,
        ));
    }
    acls.push(bind(
        "*".into(),
        PatternType::Literal,
        "User:*".into(),
        Operation::Describe,
        Permission::Allow,
    ));
    acls.push(bind(
        "secret".into(),
        PatternType::Prefixed,
        "User:*".into(),
        Operation::All,
        Permission::Deny,
    ));
    while acls.len() < 10_000 {
        let n = acls.len();
        acls.push(bind(
            format!("group-like-{n}"),
            PatternType::Literal,
            "User:x".into(),
            Operation::Alter,
            Permission::Allow,
        ));
    }
    let idx = AclIndex::new(acls);
    let mut g = c.benchmark_group("acl_authorize");
    let cases = [
        ("literal_allowed", "User:u42", Operation::Write, "topic-42"),
        (
            "prefix_allowed",
            "User:u7",
            Operation::Read,
            "prepre7-orders",
        ),
        ("denied", "User:u42", Operation::Write, "topic-43"),
    ];
    for (label, principal, operation, topic) in cases {
        let req = Request {
            principal,
            host: "127.0.0.1",
            operation,
        };
        g.bench_function(label, |b| {
            b.iter(|| {
                idx.authorize(
                    &req,
                    ResourceType::Topic,
                    std::hint::black_box(topic),
                    false,
                )
            })
        });
    }
    g.finish();
}

/// The paced acks=all path, one request at a time: append one 1 KiB-record batch and
/// wait until it is fdatasynced, into space the writer zeroed ahead (the default) and
/// into fallocated, unwritten space (`zero_ahead_bytes: 0`, as before). The zeroing
/// itself runs while the writer is idle between requests, so it is inside the time.
fn acks_all_append(c: &mut Criterion) {
    use corelog::storage::segment::ZERO_AHEAD_BYTES;
    use corelog::storage::LogConfig;
    let mut g = c.benchmark_group("acks_all_append");
    g.sample_size(10);
    let data = batch(1);
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, zero_ahead_bytes) in [("zeroed_ahead", ZERO_AHEAD_BYTES), ("fallocated", 0)] {
        g.bench_with_input(BenchmarkId::from_parameter(name), &data, |b, data| {
            b.iter_custom(|iters| {
                let data = data.clone();
                let config = LogConfig {
                    segment_bytes: 64 << 20,
                    retention_bytes: 128 << 20,
                    zero_ahead_bytes,
                    ..LogConfig::default()
                };
                on_bench_log(config, |log| async move {
                    // Steady state: the first append starts the zeroing of the first
                    // ZERO_AHEAD_BYTES, which a long-running partition has long done.
                    let info = log.append(data.clone()).expect("append");
                    log.wait_durable(info.last_offset).await.expect("durable");
                    glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
                    let start = std::time::Instant::now();
                    for i in 0..iters {
                        let info = log.append(data.clone()).expect("append");
                        log.wait_durable(info.last_offset).await.expect("durable");
                        if (i + 1) % 4096 == 0 {
                            log.enforce_retention(0).await.expect("retention");
                        }
                    }
                    let elapsed = start.elapsed();
                    log.close().await.expect("close");
                    elapsed
                })
            })
        });
    }
    g.finish();
}

/// CPU time of the whole process (every thread, io_uring's io-wq workers included).
fn process_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A paced acks=1 producer's append, in process CPU per append: one 64 KiB batch
/// (60 records of 1 KiB), wait until written, then 2 ms idle, in which the writer zeroes
/// ahead (1 MiB every 16 appends). `acks1_only`: no request ever asked durability, so
/// the zeros are not fdatasynced; `durability_asked`: one acks=all request came first,
/// so each zero chunk is followed by an fdatasync (the behaviour before for every log).
fn paced_acks1_append(c: &mut Criterion) {
    use corelog::storage::LogConfig;
    let mut g = c.benchmark_group("paced_acks1_append");
    g.sample_size(10);
    let data = batch(60);
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, asked) in [("acks1_only", false), ("durability_asked", true)] {
        g.bench_with_input(BenchmarkId::from_parameter(name), &data, |b, data| {
            b.iter_custom(|iters| {
                let data = data.clone();
                let config = LogConfig {
                    segment_bytes: 64 << 20,
                    retention_bytes: 128 << 20,
                    ..LogConfig::default()
                };
                on_bench_log(config, |log| async move {
                    let info = log.append(data.clone()).expect("append");
                    if asked {
                        log.wait_durable(info.last_offset).await.expect("durable");
                    } else {
                        log.wait_written(info.last_offset).await.expect("written");
                    }
                    glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
                    let idle = std::time::Duration::from_millis(2);
                    let start = process_cpu();
                    for i in 0..iters {
                        let info = log.append(data.clone()).expect("append");
                        log.wait_written(info.last_offset).await.expect("written");
                        glommio::timer::sleep(idle).await;
                        if (i + 1) % 1024 == 0 {
                            log.enforce_retention(0).await.expect("retention");
                        }
                    }
                    let used = process_cpu() - start;
                    log.close().await.expect("close");
                    used
                })
            })
        });
    }
    g.finish();
}

/// Per-request cost of client-quota accounting on the produce path (what
/// `server::connection` does per request): with no quota configured, and with a
/// producer_byte_rate quota on the client id (one sensor record); and one sensor
/// recorded from two threads at once (a client whose connections landed on two shards).
fn quota_accounting(c: &mut Criterion) {
    use corelog::quota::entity::{Kind, Name, QuotaChange, QuotaEntity, PRODUCER_BYTE_RATE};
    use corelog::quota::manager::{ConnQuotas, QuotaManager};
    use corelog::quota::store::QuotaStore;
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let manager = Arc::new(QuotaManager::new(
        Default::default(),
        QuotaStore::open(dir.path()).expect("quota store"),
    ));
    let mut g = c.benchmark_group("quota_accounting");
    let mut conn = ConnQuotas::new(None);
    g.bench_function("no_quota", |b| {
        b.iter(|| {
            let active = conn.refresh(&manager, std::hint::black_box("bench-client"));
            std::hint::black_box(active && conn.record(&manager, Kind::Produce, 16_384) > 0)
        })
    });
    let change = QuotaChange {
        entity: QuotaEntity {
            user: None,
            client_id: Some(Name::Named("bench-client".into())),
            ip: None,
        },
        key: PRODUCER_BYTE_RATE.into(),
        // High enough that the bench never crosses it: the cost measured is the record.
        value: Some("1e18".into()),
    };
    manager.store.alter_blocking(&[change]).expect("set quota");
    g.bench_function("producer_byte_rate", |b| {
        b.iter(|| {
            let active = conn.refresh(&manager, std::hint::black_box("bench-client"));
            std::hint::black_box(active && conn.record(&manager, Kind::Produce, 16_384) > 0)
        })
    });
    g.bench_function("producer_byte_rate_2_threads_one_sensor", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let m = manager.clone();
                    s.spawn(move || {
                        let mut conn = ConnQuotas::new(None);
                        for _ in 0..iters {
                            conn.refresh(&m, "bench-client");
                            std::hint::black_box(conn.record(&m, Kind::Produce, 16_384));
                        }
                    });
                }
            });
            // Time per request with both threads recording: total / (2 × iters).
            start.elapsed() / 2
        })
    });
    g.finish();
    drop(dir);
}

/// A consumer reading a partition from disk: sequential reads of 1 MiB (the usual
/// `max.partition.fetch.bytes`) from offset 0 to the end of 32 MiB of 16-record batches,
/// with the cache off. The partition's read-ahead stream serves each read after the
/// second from the chunk read ahead (`storage/log/readahead.rs`).
fn segment_read(c: &mut Criterion) {
    use corelog::storage::LogConfig;
    const LOG_BYTES: usize = 32 << 20;
    const READ_BYTES: usize = 1 << 20;
    let mut g = c.benchmark_group("segment_read");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(LOG_BYTES as u64));
    g.bench_function("sequential_1MiB", |b| {
        b.iter_custom(|iters| {
            let config = LogConfig {
                segment_bytes: 64 << 20,
                cache_bytes_max: 0,
                ..LogConfig::default()
            };
            on_bench_log(config, |log| async move {
                let data = batch(16);
                for i in 0..LOG_BYTES / data.len() {
                    let info = log.append(data.clone()).expect("append");
                    if i % 64 == 63 {
                        log.wait_written(info.last_offset).await.expect("written");
                    }
                }
                log.wait_written(log.log_end_offset() - 1)
                    .await
                    .expect("written");
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let mut offset = 0;
                    while offset < log.high_watermark() {
                        let read = log.read(offset, READ_BYTES).await.expect("read");
                        let last = read.batches.last().expect("a batch");
                        offset = corelog::storage::batch::BatchHeader::parse(last)
                            .expect("a header")
                            .last_offset()
                            + 1;
                    }
                }
                let elapsed = start.elapsed();
                log.close().await.expect("close");
                elapsed
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    segment_read,
    acl_authorize,
    acks_all_append,
    paced_acks1_append,
    segment_append,
    batch_validation,
    batch_validation_records,
    produce_decode,
    fetch_encode,
    index_lookup,
    metrics_record_and_merge,
    clock,
    quota_accounting
);
criterion_main!(benches);
