use super::faults::{crash_at, Step};
use super::*;
use crate::storage::batch::BatchHeader;
use crate::storage::log::LogConfig;
use crate::storage::testutil::run;
use bytes::BytesMut;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use std::path::Path;

type Entry = (Option<String>, Option<String>);

fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1500,
        index_interval_bytes: 256,
        cache_bytes_max: 1 << 20,
        cleanup_compact: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.01,
        delete_retention_ms: 1000,
        ..LogConfig::default()
    }
}

fn keyed(entries: &[Entry], compression: Compression) -> BytesMut {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: k.as_ref().map(|k| Bytes::from(k.clone())),
            value: v.as_ref().map(|v| Bytes::from(v.clone())),
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

fn entry(key: &str, value: Option<String>) -> Entry {
    (Some(key.to_string()), value)
}

/// Appends `rounds` updates of keys k0..k9 (batches of 1-3 records, every codec),
/// k3 and k7 only deleted in the last quarter; returns (offset, key, value) of
/// every record appended.
async fn fill(log: &PartitionLog, rounds: usize) -> Vec<(i64, String, Option<String>)> {
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut appended = Vec::new();
    for round in 0..rounds {
        let n = 1 + round % 3;
        let entries: Vec<Entry> = (0..n)
            .map(|j| {
                let key = format!("k{}", (round * 3 + j) % 10);
                let tombstone = round >= rounds * 3 / 4 && (key == "k3" || key == "k7");
                let value = (!tombstone).then(|| format!("v{round}-{j}-{}", "p".repeat(40)));
                entry(&key, value)
            })
            .collect();
        let info = log
            .append(keyed(&entries, codecs[round % codecs.len()]))
            .unwrap();
        for (i, (k, v)) in entries.into_iter().enumerate() {
            appended.push((info.base_offset + i as i64, k.unwrap(), v));
        }
    }
    log.wait_written(log.log_end_offset() - 1).await.unwrap();
    appended
}

async fn read_records(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let result = log.read(offset, 1 << 20).await.unwrap();
        assert!(!result.batches.is_empty());
        for data in result.batches {
            let header = BatchHeader::parse(&data).unwrap();
            crate::storage::batch::check_batch(&data, true).unwrap();
            let set = RecordBatchDecoder::decode(&mut data.clone()).unwrap();
            for r in set.records {
                let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                let value = r.value.map(|v| String::from_utf8(v.to_vec()).unwrap());
                out.push((r.offset, key, value));
            }
            offset = header.last_offset() + 1;
        }
    }
    out
}

fn latest(records: &[(i64, String, Option<String>)]) -> HashMap<String, Option<String>> {
    records
        .iter()
        .map(|(_, k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The survivors are a subset of what was appended at the same offsets, in offset
/// order, and give the same latest value per key.
fn assert_compacted_view(
    appended: &[(i64, String, Option<String>)],
    survivors: &[(i64, String, Option<String>)],
) {
    let by_offset: HashMap<i64, _> = appended.iter().map(|r| (r.0, r)).collect();
    for pair in survivors.windows(2) {
        assert!(pair[0].0 < pair[1].0, "offsets only grow");
    }
    for s in survivors {
        assert_eq!(by_offset.get(&s.0), Some(&s), "survivor keeps its offset");
    }
    let mut expected = latest(appended);
    let mut got = latest(survivors);
    // Removed tombstones leave no trace; a kept one reads as None.
    expected.retain(|_, v| v.is_some());
    got.retain(|_, v| v.is_some());
    assert_eq!(got, expected);
}

fn sealed_keys(log: &PartitionLog) -> i64 {
    let st = log.inner.state.borrow();
    st.segments.last().unwrap().base_offset
}

async fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, "compacted", 0, config, 0, 0)
        .await
        .unwrap()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted"))
        .collect()
}

#[test]
fn cleaning_keeps_exactly_the_last_value_per_key_at_its_offset() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), compact_config()).await;
        let appended = fill(&log, 120).await;
        let segments_before = log.inner.state.borrow().segments.len();
        assert!(segments_before > 10, "{segments_before} segments");
        let now = crate::util::now_ms();
        let cleaned = log
            .clean(now, &CleanLimits::default())
            .await
            .unwrap()
            .unwrap();
        assert!(cleaned.records_removed > 100, "{cleaned:?}");
        assert_eq!(cleaned.cleaned_to, sealed_keys(&log));
        assert_eq!(cleaned.dirty_from, 0);
        let sealed_records = appended.iter().filter(|r| r.0 < cleaned.cleaned_to).count();
        assert_eq!(cleaned.mapped_records, sealed_records as u64, "{cleaned:?}");
        let survivors = read_records(&log).await;
        assert_compacted_view(&appended, &survivors);
        // Below the active segment each key appears once.
        let active_base = sealed_keys(&log);
        let mut seen = std::collections::HashSet::new();
        for (offset, key, _) in survivors.iter().filter(|r| r.0 < active_base) {
            assert!(seen.insert(key.clone()), "{key} twice, again at {offset}");
        }
        // Nothing new: no pass is due.
        assert_eq!(log.clean(now, &CleanLimits::default()).await.unwrap(), None);
        assert!(leftovers(log.dir()).is_empty());
        // The next pass groups the small cleaned segments into fewer.
        let mut appended = appended;
        appended.extend(fill(&log, 30).await);
        let before = log.inner.state.borrow().segments.len();
        let cleaned = log
            .clean(now, &CleanLimits::default())
            .await
            .unwrap()
            .unwrap();
        assert!(cleaned.segments_out < cleaned.segments_in, "{cleaned:?}");
        assert!(log.inner.state.borrow().segments.len() < before);
        let survivors = read_records(&log).await;
        assert_compacted_view(&appended, &survivors);
        // A pass over an already clean, fully grouped log rewrites nothing.
        let later = now + compact_config().delete_retention_ms + 30_000;
        for _ in 0..3 {
            log.set_cleaner_checkpoint(log.cleaner_checkpoint());
            log.clean(later, &CleanLimits::default())
                .await
                .unwrap()
                .unwrap();
        }
        let files = |dir: &Path| -> Vec<(String, u64)> {
            let mut v: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().unwrap().len(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        // The tombstones' horizon passed too: they are gone.
        let survivors = read_records(&log).await;
        assert_compacted_view(&appended, &survivors);
        let active_base = sealed_keys(&log);
        assert!(survivors
            .iter()
            .filter(|r| r.0 < active_base)
            .all(|r| r.2.is_some()));
        let before = files(log.dir());
        let checkpoint = log.cleaner_checkpoint();
        log.set_cleaner_checkpoint(checkpoint);
        let idle = log
            .clean(later, &CleanLimits::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((idle.segments_in, idle.written_bytes), (0, 0), "{idle:?}");
        // It resumed from the checkpoint: nothing below it went into the offset map.
        assert_eq!((idle.dirty_from, idle.cleaned_to), (checkpoint, checkpoint));
        assert_eq!(idle.mapped_records, 0, "{idle:?}");
        assert_eq!(files(log.dir()), before);
        assert_eq!(read_records(&log).await, survivors);

        // A restart reads the same cleaned log (full scan and trusted open), and the
        // full scan finds the cleaner's offset indexes right (it rewrites stale ones).
        let leo = log.close().await.unwrap();
        let indexes = |dir: &Path| -> Vec<(String, Vec<u8>)> {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "index"))
                .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
                .collect();
            files.sort();
            files
        };
        let written_indexes = indexes(log.dir());
        assert!(written_indexes.iter().any(|(_, bytes)| !bytes.is_empty()));
        for recovery_point in [0, leo] {
            let log = PartitionLog::open(
                tmp.path(),
                "compacted",
                0,
                compact_config(),
                recovery_point,
                0,
            )
            .await
            .unwrap();
            assert_eq!(read_records(&log).await, survivors);
            assert_eq!(log.log_end_offset(), leo);
            log.close().await.unwrap();
            assert_eq!(indexes(log.dir()), written_indexes);
        }
    });
}

#[test]
fn tombstones_go_after_the_delete_horizon_and_not_before() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), compact_config()).await;
        let mut appended = fill(&log, 60).await;
        // Later updates of other keys, so that the tombstones are in sealed segments.
        for i in 0..40 {
            let entries = [entry(&format!("z{}", i % 4), Some("z".repeat(100)))];
            let info = log.append(keyed(&entries, Compression::None)).unwrap();
            appended.push((
                info.base_offset,
                format!("z{}", i % 4),
                Some("z".repeat(100)),
            ));
        }
        log.wait_written(log.log_end_offset() - 1).await.unwrap();
        let now = crate::util::now_ms();
        log.clean(now, &CleanLimits::default())
            .await
            .unwrap()
            .unwrap();
        let first = read_records(&log).await;
        let tombstones =
            |rs: &[(i64, String, Option<String>)]| rs.iter().filter(|r| r.2.is_none()).count();
        let expected_tombstones = latest(&appended).values().filter(|v| v.is_none()).count();
        assert!(expected_tombstones > 0);
        assert_eq!(
            tombstones(&first),
            expected_tombstones,
            "kept until the horizon"
        );
        assert_compacted_view(&appended, &first);
        // Before the horizon (1 s) nothing is due; after it the tombstones go.
        assert_eq!(
            log.clean(now + 500, &CleanLimits::default()).await.unwrap(),
            None
        );
        log.clean(now + 1001, &CleanLimits::default())
            .await
            .unwrap()
            .unwrap();
        let second = read_records(&log).await;
        assert_eq!(tombstones(&second), 0);
        assert_compacted_view(&appended, &second);
        assert_eq!(second.len(), first.len() - expected_tombstones);
        log.close().await.unwrap();
    });
}

#[test]
fn a_crash_at_any_swap_step_recovers_a_whole_log() {
    for step in [
        Step::Written,
        Step::Committed,
        Step::OldRenamed,
        Step::Swapped,
    ] {
        run(async move {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), compact_config()).await;
            let appended = fill(&log, 120).await;
            let leo = log.log_end_offset();
            crash_at(Some(step));
            let now = crate::util::now_ms();
            assert!(
                log.clean(now, &CleanLimits::default()).await.is_err(),
                "{step:?}"
            );
            crash_at(None);
            drop(log);
            let log = open(tmp.path(), compact_config()).await;
            assert!(
                leftovers(log.dir()).is_empty(),
                "{step:?}: {:?}",
                leftovers(log.dir())
            );
            assert_eq!(log.log_end_offset(), leo);
            let survivors = read_records(&log).await;
            assert_compacted_view(&appended, &survivors);
            if step == Step::Written {
                assert_eq!(survivors.len(), appended.len(), "not committed: untouched");
            } else {
                assert!(survivors.len() < appended.len(), "{step:?}: committed");
            }
            // The cleaner carries on from there.
            log.clean(now, &CleanLimits::default()).await.unwrap();
            assert_compacted_view(&appended, &read_records(&log).await);
            log.close().await.unwrap();
        });
    }
}

#[test]
fn compaction_lags_decide_what_is_cleanable_and_when() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let config = LogConfig {
            min_compaction_lag_ms: 3_600_000,
            ..compact_config()
        };
        let log = open(tmp.path(), config.clone()).await;
        fill(&log, 60).await;
        // The records are stamped 1_700_000_000_000: an hour later they are still
        // too young to compact, a day later they are not.
        let written = 1_700_000_000_000;
        let limits = CleanLimits::default();
        assert_eq!(log.clean(written + 1_000, &limits).await.unwrap(), None);
        assert!(log
            .clean(written + 86_400_000, &limits)
            .await
            .unwrap()
            .is_some());

        // A dirty ratio that is never reached: only max.compaction.lag.ms cleans.
        let lazy = LogConfig {
            min_cleanable_dirty_ratio: 1.0,
            max_compaction_lag_ms: 3_600_000,
            ..compact_config()
        };
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), lazy).await;
        fill(&log, 60).await;
        log.clean(written + 1_000, &limits).await.unwrap().unwrap();
        fill(&log, 30).await;
        assert_eq!(log.clean(written + 1_000, &limits).await.unwrap(), None);
        assert!(log
            .clean(written + 7_200_000, &limits)
            .await
            .unwrap()
            .is_some());
        log.close().await.unwrap();
    });
}

#[test]
fn readers_holding_an_old_segment_keep_reading() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), compact_config()).await;
        fill(&log, 120).await;
        let (file, size) = {
            let st = log.inner.state.borrow();
            (st.segments[0].file().clone(), st.segments[0].size())
        };
        let before = file.read(0, size as usize).await.unwrap();
        log.clean(crate::util::now_ms(), &CleanLimits::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(file.read(0, size as usize).await.unwrap(), before);
        log.close().await.unwrap();
    });
}

#[test]
fn io_rate_bound_slows_the_pass() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), compact_config()).await;
        fill(&log, 120).await;
        let size = log.size_bytes();
        let limits = CleanLimits {
            io_bytes_per_second: size * 4,
            ..CleanLimits::default()
        };
        let start = Instant::now();
        let cleaned = log
            .clean(crate::util::now_ms(), &limits)
            .await
            .unwrap()
            .unwrap();
        let floor = (cleaned.read_bytes + cleaned.written_bytes) as f64 / (size * 4) as f64;
        assert!(start.elapsed().as_secs_f64() >= floor * 0.9, "{cleaned:?}");
        log.close().await.unwrap();
    });
}

#[test]
fn compacted_topics_refuse_keyless_records_and_topics_recompress() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), compact_config()).await;
        let keyless = keyed(
            &[entry("a", Some("1".into())), (None, Some("x".into()))],
            Compression::Lz4,
        );
        assert_eq!(log.append(keyless).unwrap_err().kafka_error_code(), 87);
        assert_eq!(log.log_end_offset(), 0);
        log.close().await.unwrap();

        for codec in 0..=4u8 {
            let dir = tempfile::tempdir().unwrap();
            let config = LogConfig {
                compression_codec: Some(codec),
                ..LogConfig::default()
            };
            let log = open(dir.path(), config).await;
            let entries: Vec<Entry> = (0..20)
                .map(|i| entry(&format!("k{i}"), Some(format!("value {i}"))))
                .collect();
            log.append(keyed(&entries, Compression::Gzip)).unwrap();
            log.wait_written(19).await.unwrap();
            let batch = log.read(0, 1 << 20).await.unwrap().batches.remove(0);
            let header = BatchHeader::parse(&batch).unwrap();
            assert_eq!(records::codec_of(&header), codec);
            let got: Vec<Entry> = RecordBatchDecoder::decode(&mut batch.clone())
                .unwrap()
                .records
                .into_iter()
                .map(|r| {
                    let s = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                    (s(r.key), s(r.value))
                })
                .collect();
            assert_eq!(got, entries);
            log.close().await.unwrap();
        }
    });
}
