//! Unit tests of `PartitionLog`: appends, reads, recovery, retention, failures.

use super::waiters::WAITERS_PRUNE_MIN;
use super::*;
use crate::storage::testutil::{batch, plain, run};
use std::time::Duration;

fn config(segment_bytes: u64, cache_bytes_max: usize) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 1024,
        cache_bytes_max,
        ..LogConfig::default()
    }
}

async fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, "orders", 3, config, 0, 0)
        .await
        .unwrap()
}

/// What a batch looks like in the log once appended at `base_offset`.
fn patched(mut data: BytesMut, base_offset: i64) -> Bytes {
    patch_base_offset(&mut data, base_offset);
    patch_leader_epoch(&mut data, 0);
    data.freeze()
}

/// Appends `n` plain batches of 3 records, returns them as stored.
async fn fill(log: &PartitionLog, n: usize, value_len: usize) -> Vec<Bytes> {
    let mut stored = Vec::new();
    for i in 0..n {
        let data = plain(3, value_len + i);
        let info = log.append(data.clone()).unwrap();
        assert_eq!(info.last_offset, info.base_offset + 2);
        stored.push(patched(data, info.base_offset));
    }
    log.wait_written(log.log_end_offset() - 1).await.unwrap();
    stored
}

async fn read_all(log: &PartitionLog) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let result = log.read(offset, 1).await.unwrap();
        assert_eq!(result.batches.len(), 1);
        let header = BatchHeader::parse(&result.batches[0]).unwrap();
        assert!(header.base_offset <= offset && offset <= header.last_offset());
        offset = header.last_offset() + 1;
        out.push(result.batches[0].clone());
    }
    out
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn files_with(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// Appends `n` batches of 3 records of producer 7 (epoch 0) from sequence `seq`,
/// waits until written; returns them as stored.
async fn fill_idempotent(log: &PartitionLog, n: usize, seq: i32) -> Vec<Bytes> {
    let mut stored = Vec::new();
    for i in 0..n {
        let data = batch(3, 300, 7, 0, seq + 3 * i as i32);
        let info = log.append(data.clone()).unwrap();
        stored.push(patched(data, info.base_offset));
    }
    log.wait_written(log.log_end_offset() - 1).await.unwrap();
    stored
}

/// The producer state after `next_seq`: the last batch is a duplicate with its
/// original offsets, a gap is refused, the next sequence is accepted (and appended).
async fn assert_producer_continues(log: &PartitionLog, next_seq: i32, last_base: i64) {
    let retry = log.append(batch(3, 300, 7, 0, next_seq - 3)).unwrap();
    assert_eq!(retry.base_offset, last_base, "duplicate detected");
    assert!(matches!(
        log.append(batch(1, 10, 7, 0, next_seq + 1)),
        Err(StorageError::OutOfOrderSequence(_))
    ));
    let leo = log.log_end_offset();
    let next = log.append(batch(1, 10, 7, 0, next_seq)).unwrap();
    assert_eq!(next.base_offset, leo);
    log.wait_written(leo).await.unwrap();
}

async fn open_at(dir: &Path, config: LogConfig, recovery_point: i64) -> PartitionLog {
    PartitionLog::open(dir, "orders", 3, config, recovery_point, 0)
        .await
        .unwrap()
}

#[test]
fn clean_reopen_reads_no_segment_data_and_keeps_producer_state() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(3000, 0)).await;
        let stored = fill_idempotent(&log, 30, 0).await;
        let leo = log.close().await.unwrap();
        let segments = log_files(log.dir()).len();
        assert!(segments >= 8, "{segments} segments");
        let indexes_on_disk: Vec<Vec<u8>> = files_with(log.dir(), "index")
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();

        let reads = io::faults::dma_reads();
        let log = open_at(tmp.path(), config(3000, 0), leo).await;
        let open_reads = io::faults::dma_reads() - reads;
        // The active segment's end from its last index entry, and its tail page.
        assert!(open_reads <= 2, "a clean open made {open_reads} DMA reads");
        assert_eq!(log.log_end_offset(), leo);
        assert_eq!(log.recovery_point(), leo);
        // Loaded indexes equal rebuilt ones, the active one down to its state.
        let loaded: Vec<SegmentIndexParts> = index_parts(&log);
        let active_loaded = log.inner.state.borrow().active().index.clone();
        log.close().await.unwrap();
        let rebuilt = open_at(tmp.path(), config(3000, 0), 0).await;
        assert_eq!(index_parts(&rebuilt), loaded);
        assert_eq!(rebuilt.inner.state.borrow().active().index, active_loaded);
        rebuilt.close().await.unwrap();
        let indexes_after: Vec<Vec<u8>> = files_with(log.dir(), "index")
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        assert_eq!(indexes_after, indexes_on_disk);

        let log = open_at(tmp.path(), config(3000, 0), leo).await;
        assert_eq!(read_all(&log).await, stored);
        assert_producer_continues(&log, 90, leo - 3).await;
        // An older batch among the last five is still a duplicate too.
        let retry = log.append(batch(3, 300, 7, 0, 81)).unwrap();
        assert_eq!(retry.base_offset, leo - 9);
        log.close().await.unwrap();
    });
}

type SegmentIndexParts = (i64, Vec<(u32, u32)>, Vec<(i64, u32)>);

fn index_parts(log: &PartitionLog) -> Vec<SegmentIndexParts> {
    let st = log.inner.state.borrow();
    st.segments
        .iter()
        .map(|s| {
            (
                s.base_offset,
                s.index.offsets.entries().to_vec(),
                s.index.times.entries().to_vec(),
            )
        })
        .collect()
}

#[test]
fn crash_with_a_mid_log_recovery_point_scans_only_after_it() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(3000, 0)).await;
        let mut stored = fill_idempotent(&log, 12, 0).await;
        let recovery_point = log.flush().await.unwrap();
        assert_eq!(recovery_point, log.log_end_offset());
        assert_eq!(log.recovery_point(), recovery_point);
        stored.extend(fill_idempotent(&log, 12, 36).await);
        assert!(log.recovery_point() >= recovery_point, "rolls move it on");
        let leo = log.log_end_offset();
        let logs = log_files(log.dir());
        drop(log);
        let bases: Vec<i64> = logs
            .iter()
            .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
            .collect();
        let trusted = bases
            .iter()
            .skip(1)
            .filter(|&&b| b <= recovery_point)
            .count();
        assert!(trusted >= 2 && trusted + 2 <= logs.len(), "{bases:?}");

        // A zero batchLength in a trusted segment: a scan would cut it there.
        let victim = &logs[1];
        let original = std::fs::read(victim).unwrap();
        let mut damaged = original.clone();
        damaged[8..12].copy_from_slice(&[0; 4]);
        std::fs::write(victim, &damaged).unwrap();
        // A torn last write: half a batch after the active segment's data.
        let active = logs.last().unwrap();
        let mut data = std::fs::read(active).unwrap();
        let mut end = 0;
        while let Some(h) = BatchHeader::parse(&data[end..]).filter(|h| h.batch_length > 0) {
            end += h.size();
        }
        let mut torn = batch(3, 300, 7, 0, 72);
        patch_base_offset(&mut torn, leo);
        data[end..end + torn.len() / 2].copy_from_slice(&torn[..torn.len() / 2]);
        std::fs::write(active, &data).unwrap();

        let reads = io::faults::dma_reads();
        let log = open_at(tmp.path(), config(3000, 0), recovery_point).await;
        let open_reads = io::faults::dma_reads() - reads;
        assert!(
            open_reads >= (logs.len() - trusted) as u64,
            "{open_reads} reads for {} segments past the recovery point",
            logs.len() - trusted
        );
        assert_eq!(log.log_end_offset(), leo);
        assert_eq!(
            std::fs::read(victim).unwrap(),
            damaged,
            "trusted: not scanned"
        );
        assert_eq!(std::fs::metadata(active).unwrap().len(), end as u64);
        std::fs::write(victim, &original).unwrap();
        assert_eq!(read_all(&log).await, stored);
        assert_producer_continues(&log, 72, leo - 3).await;
        log.close().await.unwrap();
    });
}

#[test]
fn corrupt_or_stale_snapshots_fall_back_and_state_stays_right() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(3000, 0)).await;
        let stored = fill_idempotent(&log, 20, 0).await;
        let leo = log.close().await.unwrap();
        let snapshots = files_with(log.dir(), "snapshot");
        assert_eq!(snapshots.len(), 2);
        assert_eq!(
            snapshots[1],
            log.dir().join(snapshot::snapshot_file_name(leo))
        );

        // The newest is corrupt: the older one plus a replay of the rest.
        let mut data = std::fs::read(&snapshots[1]).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        std::fs::write(&snapshots[1], &data).unwrap();
        let log = open_at(tmp.path(), config(3000, 0), leo).await;
        assert_eq!(read_all(&log).await, stored);
        let retry = log.append(batch(3, 300, 7, 0, 57)).unwrap();
        assert_eq!(retry.base_offset, leo - 3);
        log.close().await.unwrap();

        // Both corrupt (a bad version, a bad crc): a full header scan.
        for path in files_with(log.dir(), "snapshot") {
            let mut data = std::fs::read(&path).unwrap();
            data[5] = 9;
            std::fs::write(&path, &data).unwrap();
        }
        std::fs::write(
            tmp.path()
                .join("orders-3")
                .join(snapshot::snapshot_file_name(3)),
            b"junk",
        )
        .unwrap();
        let log = open_at(tmp.path(), config(3000, 0), leo).await;
        assert_producer_continues(&log, 60, leo - 3).await;
        let leo = log.close().await.unwrap();
        assert_eq!(files_with(log.dir(), "snapshot").len(), 2, "retention");

        // The log lost its last batch behind the snapshot's back: the snapshot at the
        // old end is past the log end, so it is deleted and an older one is replayed.
        let active = log_files(log.dir()).pop().unwrap();
        let data = std::fs::read(&active).unwrap();
        let mut end = 0;
        let mut last_size = 0;
        while let Some(h) = BatchHeader::parse(&data[end..]) {
            last_size = h.size();
            end += last_size;
        }
        std::fs::write(&active, &data[..end - last_size]).unwrap();
        let log = open_at(tmp.path(), config(3000, 0), leo - 1).await;
        assert_eq!(log.log_end_offset(), leo - 1);
        assert!(!log.dir().join(snapshot::snapshot_file_name(leo)).exists());
        // Sequence 60 (the lost batch) is expected again, not a duplicate.
        let again = log.append(batch(1, 10, 7, 0, 60)).unwrap();
        assert_eq!(again.base_offset, leo - 1);
        let before = log.append(batch(3, 300, 7, 0, 57)).unwrap();
        assert_eq!(before.base_offset, leo - 4, "duplicate detected");
        let next = log.append(batch(1, 10, 7, 0, 61)).unwrap();
        assert_eq!(next.base_offset, leo);
        log.wait_written(leo).await.unwrap();
        log.close().await.unwrap();
    });
}

#[test]
fn missing_index_of_a_trusted_segment_is_rebuilt_from_that_segment_alone() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(3000, 0)).await;
        let stored = fill_idempotent(&log, 30, 0).await;
        let leo = log.close().await.unwrap();
        let reads = io::faults::dma_reads();
        open_at(tmp.path(), config(3000, 0), leo)
            .await
            .close()
            .await
            .unwrap();
        let clean_reads = io::faults::dma_reads() - reads;

        let logs = log_files(log.dir());
        let index = logs[2].with_extension("index");
        let original = std::fs::read(&index).unwrap();
        std::fs::remove_file(&index).unwrap();
        std::fs::write(logs[4].with_extension("timeindex"), [1u8; 5]).unwrap();
        let reads = io::faults::dma_reads();
        let log = open_at(tmp.path(), config(3000, 0), leo).await;
        let open_reads = io::faults::dma_reads() - reads;
        assert_eq!(open_reads, clean_reads + 2, "one read per damaged segment");
        assert_eq!(std::fs::read(&index).unwrap(), original);
        assert_eq!(
            std::fs::metadata(logs[4].with_extension("timeindex"))
                .unwrap()
                .len()
                % 12,
            0
        );
        assert_eq!(read_all(&log).await, stored);
        assert_producer_continues(&log, 90, leo - 3).await;
        log.close().await.unwrap();
    });
}

/// Open-time benchmark (not run by default):
/// `CORELOG_BENCH_SEGMENTS=8 cargo test --release --lib bench_open -- --ignored --nocapture`.
/// Writes `CORELOG_BENCH_SEGMENTS` segments of 256 MiB of 1 KiB batches, then times
/// open() after a clean close, and after a crash with the recovery point at the base
/// of the last segment.
#[test]
#[ignore]
fn bench_open() {
    run(async {
        let segments: u64 = std::env::var("CORELOG_BENCH_SEGMENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(8);
        let tmp = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 256 << 20,
            cache_bytes_max: 0,
            ..LogConfig::default()
        };
        let reopen = |recovery_point: i64| {
            PartitionLog::open(tmp.path(), "bench", 0, config.clone(), recovery_point, 0)
        };
        let template = plain(1, 950);
        let batch_bytes = template.len() as u64;
        let total = segments * (256 << 20) - (4 << 20);
        let started = std::time::Instant::now();
        let log = reopen(0).await.unwrap();
        let mut written = 0u64;
        while written < total {
            let mut last = 0;
            for _ in 0..4096 {
                last = log
                    .append(BytesMut::from(&template[..]))
                    .unwrap()
                    .last_offset;
                written += batch_bytes;
            }
            log.wait_written(last).await.unwrap();
        }
        let leo = log.close().await.unwrap();
        eprintln!(
            "bench_open: wrote {} MiB, {} batches of {} bytes, {} segments in {:?}",
            written >> 20,
            leo,
            batch_bytes,
            log_files(log.dir()).len(),
            started.elapsed()
        );
        let started = std::time::Instant::now();
        let log = reopen(leo).await.unwrap();
        eprintln!("bench_open: clean open took {:?}", started.elapsed());
        assert_eq!(log.log_end_offset(), leo);
        let mut last = 0;
        for _ in 0..2048 {
            last = log
                .append(BytesMut::from(&template[..]))
                .unwrap()
                .last_offset;
        }
        log.wait_written(last).await.unwrap();
        let files = log_files(log.dir());
        let last_base: i64 = files
            .last()
            .unwrap()
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        drop(log);
        let started = std::time::Instant::now();
        let log = reopen(last_base).await.unwrap();
        eprintln!(
            "bench_open: open after a crash, recovery point at the last segment's base {last_base}, took {:?}",
            started.elapsed()
        );
        assert_eq!(log.log_end_offset(), last + 1);
        log.close().await.unwrap();
    });
}

#[test]
fn append_read_round_trip_across_rolls_from_disk_and_cache() {
    run(async {
        for cache_bytes_max in [0, 1 << 20] {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path(), config(3000, cache_bytes_max)).await;
            let stored = fill(&log, 20, 300).await;
            assert_eq!(log.log_end_offset(), 60);
            assert_eq!(log.high_watermark(), 60);
            assert!(log_files(log.dir()).len() >= 5, "segments rolled");
            assert_eq!(read_all(&log).await, stored);
            // All at once, and bounded by max_bytes (but at least one batch).
            let all = log.read(0, usize::MAX).await.unwrap();
            assert_eq!(all.batches, stored[..all.batches.len()]);
            assert_eq!(all.high_watermark, 60);
            assert_eq!(
                log.read(4, 0).await.unwrap().batches,
                vec![stored[1].clone()]
            );
            // Mid-batch offset returns the whole batch containing it.
            for offset in [31, 32] {
                let got = log.read(offset, 1).await.unwrap();
                assert_eq!(got.batches, vec![stored[10].clone()]);
            }
            assert!(log.read(60, 100).await.unwrap().batches.is_empty());
            assert!(matches!(
                log.read(61, 100).await,
                Err(StorageError::OffsetOutOfRange {
                    offset: 61,
                    start: 0,
                    end: 60
                })
            ));
            assert_eq!(log.close().await.unwrap(), 60);
        }
    });
}

#[test]
fn durable_wait_and_reopen_keep_identical_bytes() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20, 0)).await;
        let stored = fill(&log, 10, 500).await;
        let info = log.append(plain(2, 10)).unwrap();
        log.wait_durable(info.last_offset).await.unwrap();
        assert_eq!(log.high_watermark(), info.last_offset + 1);
        let before = read_all(&log).await;
        assert_eq!(before[..10], stored[..]);
        let leo = log.close().await.unwrap();
        let size = std::fs::metadata(&log_files(log.dir())[0]).unwrap().len();
        let expected: usize = before.iter().map(|b| b.len()).sum();
        assert_eq!(
            size as usize, expected,
            "close truncates to the logical size"
        );
        assert!(
            log.append(plain(1, 1)).is_err(),
            "closed logs refuse appends"
        );

        let log = open(tmp.path(), config(1 << 20, 0)).await;
        assert_eq!(log.log_end_offset(), leo);
        assert_eq!(log.high_watermark(), leo);
        assert_eq!(read_all(&log).await, before);
        // Appends continue after the recovered tail page.
        let more = fill(&log, 3, 100).await;
        let after = read_all(&log).await;
        assert_eq!(after[..before.len()], before[..]);
        assert_eq!(after[before.len()..], more[..]);
        log.close().await.unwrap();
    });
}

#[test]
fn torn_tail_is_truncated_to_the_last_good_batch() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20, 0)).await;
        let stored = fill(&log, 5, 200).await;
        log.close().await.unwrap();
        let path = log_files(log.dir())[0].clone();
        let good_len = std::fs::metadata(&path).unwrap().len();
        for garbage in [vec![0u8; 10_000], plain(4, 50)[..100].to_vec(), {
            let mut bad_crc = plain(2, 50).to_vec();
            let last = bad_crc.len() - 1;
            bad_crc[last] ^= 1;
            bad_crc
        }] {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            file.write_all(&garbage).unwrap();
            drop(file);
            let log = open(tmp.path(), config(1 << 20, 0)).await;
            assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
            assert_eq!(log.log_end_offset(), 15);
            assert_eq!(read_all(&log).await, stored);
            log.close().await.unwrap();
        }
    });
}

#[test]
fn crash_without_close_recovers_acknowledged_writes() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20, 0)).await;
        let stored = fill(&log, 7, 333).await;
        let path = log_files(log.dir())[0].clone();
        // No close: the file is still preallocated and zero-padded past the data.
        assert!(std::fs::metadata(&path).unwrap().len() > 7 * 333);
        drop(log);
        let log = open(tmp.path(), config(1 << 20, 0)).await;
        assert_eq!(log.log_end_offset(), 21);
        assert_eq!(read_all(&log).await, stored);
        log.close().await.unwrap();
    });
}

/// Waits until the writer has written zeros `ahead` bytes past the data.
async fn wait_zeroed_ahead(log: &PartitionLog, ahead: u64) {
    for _ in 0..10_000 {
        if log.stats().zero_bytes >= ahead {
            return;
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    panic!("zeros never went ahead: {:?}", log.stats());
}

#[test]
fn zeros_written_ahead_are_not_data_after_a_crash_or_a_torn_write() {
    use crate::storage::segment::{zero_ahead_for, ZERO_AHEAD_BYTES};
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 30, 0)).await;
        let stored = fill(&log, 5, 200).await;
        let data_len: u64 = stored.iter().map(|b| b.len() as u64).sum();
        let zeros = zero_ahead_for(data_len, ZERO_AHEAD_BYTES);
        wait_zeroed_ahead(&log, zeros).await;
        let path = log_files(log.dir())[0].clone();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[..data_len as usize], stored.concat()[..]);
        let ahead = (data_len + zeros) as usize;
        assert!(bytes[data_len as usize..ahead].iter().all(|&b| b == 0));
        // Crash (no close), then a torn append: half a batch written over the zeros.
        drop(log);
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.seek(SeekFrom::Start(data_len)).unwrap();
            file.write_all(&plain(4, 300)[..150]).unwrap();
        }
        let log = open(tmp.path(), config(1 << 30, 0)).await;
        assert_eq!(log.log_end_offset(), 15);
        assert_eq!(read_all(&log).await, stored);
        // Appends go on from the true end, over the torn bytes.
        let more = fill(&log, 2, 100).await;
        assert_eq!(log.log_end_offset(), 21);
        log.close().await.unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            data_len + more.iter().map(|b| b.len() as u64).sum::<u64>(),
            "close truncates the zeros away"
        );
        let log = open(tmp.path(), config(1 << 30, 0)).await;
        assert_eq!(read_all(&log).await, [stored, more].concat());
        log.close().await.unwrap();
    });
}

#[test]
fn missing_or_wrong_index_is_rebuilt() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(8000, 0)).await;
        let stored = fill(&log, 30, 400).await;
        log.close().await.unwrap();
        let logs = log_files(log.dir());
        assert!(logs.len() >= 3);
        let first_index = logs[0].with_extension("index");
        let original = std::fs::read(&first_index).unwrap();
        assert!(!original.is_empty(), "the test needs index entries");
        std::fs::remove_file(&first_index).unwrap();
        std::fs::remove_file(logs[1].with_extension("timeindex")).unwrap();
        std::fs::write(logs[2].with_extension("index"), [0xff; 16]).unwrap();

        let log = open(tmp.path(), config(8000, 0)).await;
        assert_eq!(std::fs::read(&first_index).unwrap(), original);
        assert!(logs[1].with_extension("timeindex").exists());
        assert_ne!(
            std::fs::read(logs[2].with_extension("index")).unwrap(),
            [0xff; 16]
        );
        assert_eq!(read_all(&log).await, stored);
        log.close().await.unwrap();
    });
}

#[test]
fn idempotent_producer_duplicates_gaps_and_restart() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20, 1 << 20)).await;
        log.append(plain(2, 10)).unwrap();
        let first = log.append(batch(3, 10, 42, 0, 0)).unwrap();
        assert_eq!((first.base_offset, first.last_offset), (2, 4));
        let second = log.append(batch(2, 10, 42, 0, 3)).unwrap();
        assert_eq!(second.base_offset, 5);
        // A retry of the first batch: original offsets, nothing written.
        let retry = log.append(batch(3, 10, 42, 0, 0)).unwrap();
        assert_eq!((retry.base_offset, retry.last_offset), (2, 4));
        assert_eq!(log.log_end_offset(), 7);
        assert!(matches!(
            log.append(batch(1, 10, 42, 0, 9)),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        assert!(matches!(
            log.append(batch(1, 10, 42, -1, 0)),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
        log.wait_written(6).await.unwrap();
        assert_eq!(read_all(&log).await.len(), 3);
        log.close().await.unwrap();

        let log = open(tmp.path(), config(1 << 20, 1 << 20)).await;
        let retry = log.append(batch(2, 10, 42, 0, 3)).unwrap();
        assert_eq!((retry.base_offset, retry.last_offset), (5, 6));
        assert!(matches!(
            log.append(batch(1, 10, 42, 0, 6)),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        let next = log.append(batch(1, 10, 42, 0, 5)).unwrap();
        assert_eq!(next.base_offset, 7);
        log.close().await.unwrap();
    });
}

#[test]
fn wait_for_data_wakes_on_append_and_drops_cleanly() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20, 1 << 20)).await;
        // Abandoned long-polls are pruned as the list grows.
        for _ in 0..200 {
            let wait = log.wait_for_data(0);
            let timeout = glommio::timer::sleep(Duration::from_millis(1));
            futures::pin_mut!(wait, timeout);
            futures::future::select(wait, timeout).await;
        }
        let woken = std::rc::Rc::new(std::cell::Cell::new(false));
        let waiter = glommio::spawn_local({
            let (wait, woken) = (log.wait_for_data(0), woken.clone());
            async move {
                wait.await;
                woken.set(true);
            }
        });
        glommio::timer::sleep(Duration::from_millis(5)).await;
        assert!(
            !woken.get(),
            "the waiter returned before any data was written"
        );
        let parked = log.inner.state.borrow().data_waiters.len();
        assert!(parked >= 1, "the waiter did not park");
        assert!(parked <= 2 * WAITERS_PRUNE_MIN, "{parked} waiters parked");
        log.append(plain(1, 10)).unwrap();
        // A lost wake-up must fail the test, not hang it; the bound is far above
        // one local write even on a loaded machine.
        let timeout = glommio::timer::sleep(Duration::from_secs(10));
        futures::pin_mut!(waiter, timeout);
        let woke = matches!(
            futures::future::select(waiter, timeout).await,
            futures::future::Either::Left(_)
        );
        assert!(woke && woken.get(), "append did not wake the parked waiter");
        assert_eq!(log.high_watermark(), 1);
        log.wait_for_data(0).await;
        log.close().await.unwrap();
    });
}

#[test]
fn rejects_bad_input_without_side_effects() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20, 0)).await;
        let mut corrupt = plain(2, 10);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert_eq!(log.append(corrupt).unwrap_err().kafka_error_code(), 2);
        let mut too_large = LogConfig::default().max_message_bytes;
        too_large += 1;
        assert!(matches!(
            log.append(plain(1, too_large)),
            Err(StorageError::TooLarge { .. })
        ));
        assert_eq!(log.log_end_offset(), 0);
        log.delete().await.unwrap();
        assert!(!tmp.path().join("orders-3").exists());
    });
}

#[test]
fn appends_during_a_write_are_grouped_and_acks_all_share_fdatasyncs() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 30, 1 << 20)).await;
        let mut last_offset = 0;
        let mut bytes = 0;
        for _ in 0..100 {
            let data = plain(2, 100);
            bytes += data.len() as u64;
            last_offset = log.append(data).unwrap().last_offset;
        }
        log.wait_written(last_offset).await.unwrap();
        let stats = log.stats();
        assert!(stats.writes <= 3, "100 appends in one go took {stats:?}");
        assert_eq!(stats.write_bytes, bytes);
        assert_eq!(stats.fdatasyncs, 0, "acks=1 needs no fdatasync");
        assert_eq!(stats.rolls, 0);

        let mut waiters = Vec::new();
        for _ in 0..20 {
            let info = log.append(plain(1, 10)).unwrap();
            let log = log.clone();
            waiters.push(glommio::spawn_local(async move {
                log.wait_durable(info.last_offset).await
            }));
        }
        for waiter in waiters {
            waiter.await.unwrap();
        }
        let stats = log.stats();
        assert!(
            (1..=3).contains(&stats.fdatasyncs),
            "20 acks=all waiters took {stats:?}"
        );
        log.close().await.unwrap();
    });
}

#[test]
fn io_error_takes_the_log_offline() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20, 1 << 20)).await;
        fill(&log, 2, 10).await;
        crate::storage::io::faults::fail_next_write();
        let info = log.append(plain(1, 10)).unwrap();
        let error = log.wait_written(info.last_offset).await.unwrap_err();
        assert_eq!(error.kafka_error_code(), 56);
        assert!(
            error.to_string().contains("00000000000000000000.log"),
            "{error}"
        );
        assert_eq!(log.append(plain(1, 10)).unwrap_err().kafka_error_code(), 56);
        assert_eq!(log.read(0, 100).await.unwrap_err().kafka_error_code(), 56);
        assert_eq!(
            log.wait_durable(0).await.unwrap_err().kafka_error_code(),
            56
        );
        log.wait_for_data(100).await;
        assert!(log.close().await.is_err());
    });
}

#[test]
fn batches_larger_than_a_read_chunk_are_read_whole() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20, 0)).await;
        let mut stored = fill(&log, 1, 10).await;
        let big = plain(1, 300_000);
        let info = log.append(big.clone()).unwrap();
        stored.push(patched(big, info.base_offset));
        stored.extend(fill(&log, 2, 10).await);
        assert_eq!(read_all(&log).await, stored);
        assert_eq!(
            log.read(3, 1).await.unwrap().batches,
            vec![stored[1].clone()]
        );
        log.close().await.unwrap();
    });
}

#[test]
fn corruption_in_a_middle_segment_drops_it_from_there_unless_trusted() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(3000, 0)).await;
        let stored = fill(&log, 20, 300).await;
        let leo = log.close().await.unwrap();
        let logs = log_files(log.dir());
        assert!(logs.len() >= 4);
        // Flip the last byte of the second batch of segment 1 (inside the CRC).
        let mut data = std::fs::read(&logs[1]).unwrap();
        let first = BatchHeader::parse(&data).unwrap();
        let second = BatchHeader::parse(&data[first.size()..]).unwrap();
        let at = first.size() + second.size() - 1;
        data[at] ^= 0x55;
        std::fs::write(&logs[1], &data).unwrap();

        // Recovery point at the end: the data is trusted, the CRC is not checked.
        let config_ = config(3000, 0);
        let log = PartitionLog::open(tmp.path(), "orders", 3, config_.clone(), leo, 0)
            .await
            .unwrap();
        assert_eq!(log.log_end_offset(), leo);
        log.close().await.unwrap();

        // From recovery point 0 the bad batch is found: segment 1 keeps one batch,
        // later segments are deleted.
        let log = open(tmp.path(), config_).await;
        assert_eq!(log.log_end_offset(), second.base_offset);
        assert_eq!(log_files(log.dir()), logs[..2]);
        let kept = read_all(&log).await;
        assert_eq!(kept[..], stored[..kept.len()]);
        assert_eq!(
            std::fs::metadata(&logs[1]).unwrap().len(),
            first.size() as u64
        );
        log.close().await.unwrap();
    });
}

#[test]
fn padding_after_a_middle_segment_loses_nothing() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(3000, 0)).await;
        let stored = fill(&log, 20, 300).await;
        let leo = log.close().await.unwrap();
        let logs = log_files(log.dir());
        let len = std::fs::metadata(&logs[1]).unwrap().len();
        {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&logs[1])
                .unwrap();
            file.write_all(&[0u8; 5000]).unwrap();
        }
        let log = open(tmp.path(), config(3000, 0)).await;
        assert_eq!(log.log_end_offset(), leo);
        assert_eq!(log_files(log.dir()), logs);
        assert_eq!(std::fs::metadata(&logs[1]).unwrap().len(), len);
        assert_eq!(read_all(&log).await, stored);
        log.close().await.unwrap();
    });
}

#[test]
fn tailing_consumer_sees_every_batch_once_and_never_past_the_hw() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        // A small cache and segments: the consumer hits the cache, the disk and rolls.
        let log = open(tmp.path(), config(20_000, 2_000)).await;
        let consumer = {
            let log = log.clone();
            glommio::spawn_local(async move {
                let mut next = 0i64;
                let mut seen = Vec::new();
                while next < 600 {
                    log.wait_for_data(next).await;
                    let result = log.read(next, 3_000).await.unwrap();
                    assert!(!result.batches.is_empty());
                    for data in result.batches {
                        let header = BatchHeader::parse(&data).unwrap();
                        assert!(header.base_offset <= next && next <= header.last_offset());
                        assert!(header.last_offset() < result.high_watermark);
                        next = header.last_offset() + 1;
                        seen.push(data);
                    }
                }
                seen
            })
        };
        let mut stored = Vec::new();
        for i in 0..200 {
            let data = plain(3, 50 + i % 7);
            let info = log.append(data.clone()).unwrap();
            stored.push(patched(data, info.base_offset));
            if i % 10 == 0 {
                glommio::yield_if_needed().await;
                glommio::timer::sleep(Duration::from_micros(200)).await;
            }
        }
        assert_eq!(consumer.await, stored);
        assert!(log.stats().rolls > 0);
        log.close().await.unwrap();
    });
}

/// `plain(count, 100)` as Sarama 1.22 sends it: maxTimestamp -1 (CRC valid), records at
/// 1_700_000_000_000 + i.
fn unset_max(count: i32) -> BytesMut {
    let mut data = plain(count, 100);
    let header = BatchHeader::parse(&data).unwrap();
    crate::storage::batch::set_max_timestamp(&mut data, &header, -1);
    data
}

const RECORDS_MS: i64 = 1_700_000_000_000;

#[test]
fn unset_max_timestamps_are_derived_and_retention_counts_from_the_append() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let retention_ms = 60_000;
        let cfg = LogConfig {
            retention_ms,
            ..config(1024, 0)
        };
        let log = open(tmp.path(), cfg.clone()).await;
        for _ in 0..8 {
            log.append(unset_max(3)).unwrap();
        }
        log.wait_written(23).await.unwrap();
        let stored = read_all(&log).await;
        for batch in &stored {
            assert_eq!(
                BatchHeader::parse(batch).unwrap().max_timestamp,
                RECORDS_MS + 2
            );
        }
        assert_eq!(
            log.offset_for_timestamp(RECORDS_MS + 1).await.unwrap(),
            Some((1, RECORDS_MS + 1))
        );
        // The records are years older than retention.ms, but were appended just now.
        let now = crate::util::now_ms();
        assert_eq!(
            log.enforce_retention(now).await.unwrap().deleted_segments,
            0
        );
        log.close().await.unwrap();

        // Reopened, the segments' last append is their files' modification time.
        let log = open_at(tmp.path(), cfg, 24).await;
        assert_eq!(
            log.enforce_retention(now + 1_000)
                .await
                .unwrap()
                .deleted_segments,
            0
        );
        assert_eq!(read_all(&log).await, stored);
        let later = crate::util::now_ms() + retention_ms + 1_000;
        let retained = log.enforce_retention(later).await.unwrap();
        assert!(retained.deleted_segments > 1, "{retained:?}");
        assert_eq!(log.log_start_offset(), 24);
        log.close().await.unwrap();
    });
}

/// Rewrites every batch of the segment file at `path` with maxTimestamp -1, as a
/// broker that trusted Sarama's header stored them.
fn unset_on_disk(path: &Path) {
    let mut data = std::fs::read(path).unwrap();
    let positions: Vec<(usize, BatchHeader)> =
        crate::storage::batch::BatchWalker::new(&data, crate::storage::batch::VERIFY_CRC_ALWAYS)
            .collect();
    for (at, header) in positions {
        let end = at + header.size();
        crate::storage::batch::set_max_timestamp(&mut data[at..end], &header, -1);
    }
    std::fs::write(path, data).unwrap();
}

#[test]
fn segments_stored_with_unset_timestamps_get_their_time_index_rebuilt() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1024, 0)).await;
        fill(&log, 8, 100).await;
        log.close().await.unwrap();
        let logs = log_files(log.dir());
        assert!(logs.len() > 2);
        for path in &logs {
            unset_on_disk(path);
            // What the old broker indexed: the client's -1 as the segment's newest time.
            let time_index = path.with_extension("timeindex");
            let mut entry = (-1i64).to_be_bytes().to_vec();
            entry.extend_from_slice(&0u32.to_be_bytes());
            std::fs::write(&time_index, entry).unwrap();
        }
        let log = open_at(tmp.path(), config(1024, 0), 24).await;
        for path in &logs {
            let bytes = std::fs::read(path.with_extension("timeindex")).unwrap();
            let times = crate::storage::index::TimeIndex::from_bytes(0, &bytes).unwrap();
            assert!(
                times.entries().iter().all(|&(ts, _)| ts >= RECORDS_MS),
                "{path:?}: {:?}",
                times.entries()
            );
        }
        // Every batch holds records at RECORDS_MS + 0..=2; offset 3 starts the second.
        assert_eq!(
            log.offset_for_timestamp(RECORDS_MS + 1).await.unwrap(),
            Some((1, RECORDS_MS + 1))
        );
        assert_eq!(
            log.offset_of_max_timestamp().await.unwrap(),
            Some((2, RECORDS_MS + 2))
        );
        log.close().await.unwrap();
    });
}

#[test]
fn leader_epochs_are_learned_from_appends_kept_across_restarts_and_trimmed() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1024, 0)).await;
        fill(&log, 2, 100).await;
        assert_eq!(log.leader_epochs(), [(0, 0)]);
        log.set_leader_epoch(3);
        assert_eq!(log.config().leader_epoch, 3);
        // A topic config change does not touch the leader epoch.
        log.set_config(config(1024, 0)).unwrap();
        assert_eq!(log.leader_epoch(), 3);
        fill(&log, 2, 100).await;
        assert_eq!(log.leader_epochs(), [(0, 0), (3, 6)]);
        assert_eq!(log.end_offset_for_epoch(0).unwrap(), (0, 6));
        assert_eq!(log.end_offset_for_epoch(2).unwrap(), (0, 6));
        assert_eq!(log.end_offset_for_epoch(3).unwrap(), (3, 12));
        assert_eq!(log.end_offset_for_epoch(4).unwrap(), (-1, -1));
        log.close().await.unwrap();
        let file = tmp.path().join("orders-3").join("leader-epoch-checkpoint");
        assert_eq!(std::fs::read(&file).unwrap(), b"0\n2\n0 0\n3 6\n");

        // A crash without the file: recovery re-learns the epochs of what it scans.
        std::fs::remove_file(&file).unwrap();
        let log = open_at(tmp.path(), config(1024, 0), 0).await;
        assert_eq!(log.leader_epochs(), [(0, 0), (3, 6)]);
        assert_eq!(std::fs::read(&file).unwrap(), b"0\n2\n0 0\n3 6\n");
        // The log start moving past epoch 0 leaves epoch 3 starting there.
        log.delete_records_before(8).await.unwrap();
        assert_eq!(log.leader_epochs(), [(3, 8)]);
        log.close().await.unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"0\n1\n3 8\n");
    });
}
