//! Unit tests of the log as a replica: follower appends, truncation, leader epochs and
//! the replication high watermark (`replica`, `truncate`).

use super::*;
use crate::storage::testutil::{batch, plain, run};

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 1024,
        cache_bytes_max: 0,
        ..LogConfig::default()
    }
}

async fn open(dir: &Path, config: LogConfig, recovery_point: i64) -> PartitionLog {
    PartitionLog::open(dir, "orders", 3, config, recovery_point, 0)
        .await
        .unwrap()
}

/// Appends `n` plain batches of 3 records through the leader path, waits until written.
async fn fill(log: &PartitionLog, n: usize, value_len: usize) {
    for i in 0..n {
        log.append(plain(3, value_len + i)).unwrap();
    }
    log.wait_written(log.log_end_offset() - 1).await.unwrap();
}

/// Every batch up to the written end, one read per batch (from the segments when the
/// cache is off).
async fn read_all(log: &PartitionLog) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.written_offset() {
        let result = log.read_replica(offset, 1).await.unwrap();
        assert_eq!(result.batches.len(), 1);
        let header = BatchHeader::parse(&result.batches[0]).unwrap();
        assert_eq!(header.base_offset, offset, "contiguous batches");
        offset = header.last_offset() + 1;
        out.push(result.batches[0].clone());
    }
    out
}

fn concat(batches: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for b in batches {
        out.extend_from_slice(b);
    }
    out.freeze()
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

/// A leader log with epochs 0 (offsets 0..6), 2 (6..12, one idempotent batch of
/// producer 7) and 4 (12..18).
async fn leader(dir: &Path) -> PartitionLog {
    let log = open(dir, config(1 << 20), 0).await;
    fill(&log, 2, 100).await;
    log.set_leader_epoch(2);
    log.append(plain(3, 50)).unwrap();
    log.append(batch(3, 70, 7, 0, 0)).unwrap();
    log.set_leader_epoch(4);
    fill(&log, 2, 90).await;
    log
}

#[test]
fn replicated_append_keeps_batches_byte_for_byte() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let leader = leader(&tmp.path().join("leader")).await;
        let batches = read_all(&leader).await;
        assert_eq!(batches.len(), 6);
        assert_eq!(leader.leader_epochs(), [(0, 0), (2, 6), (4, 12)]);

        let follower = open(&tmp.path().join("follower"), config(1 << 20), 0).await;
        // The follower's own epoch is not written into replicated batches.
        follower.set_leader_epoch(1);
        let info = follower.append_replicated(concat(&batches[..3])).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (0, 8));
        let info = follower.append_replicated(concat(&batches[3..])).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (9, 17));
        follower.wait_written(17).await.unwrap();
        assert_eq!(
            read_all(&follower).await,
            batches,
            "stored as the leader sent them"
        );
        // Its empty epoch 1 gave way to the epochs of the leader's batches.
        assert_eq!(follower.leader_epochs(), [(0, 0), (2, 6), (4, 12)]);
        assert_eq!(follower.latest_epoch(), Some(4));
        assert_eq!(follower.end_offset_for_epoch(2).unwrap(), (2, 12));
        assert_eq!(follower.end_offset_for_epoch(4).unwrap(), (4, 18));

        // The producer state came with the batches: once this replica leads, a retry
        // of producer 7's batch is a duplicate with its original offsets.
        follower.set_leader_epoch(5);
        let retry = follower.append(batch(3, 70, 7, 0, 0)).unwrap();
        assert_eq!((retry.base_offset, retry.last_offset), (9, 11));
        assert_eq!(follower.log_end_offset(), 18);
        let epochs = tmp.path().join("follower/orders-3/leader-epoch-checkpoint");
        follower.close().await.unwrap();
        assert_eq!(
            std::fs::read(epochs).unwrap(),
            b"0\n4\n0 0\n2 6\n4 12\n5 18\n"
        );
        let follower = open(&tmp.path().join("follower"), config(1 << 20), 18).await;
        assert_eq!(read_all(&follower).await, batches);
        follower.close().await.unwrap();
        leader.close().await.unwrap();
    });
}

#[test]
fn replicated_append_refuses_gaps_and_overlaps_and_appends_nothing() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let leader = leader(&tmp.path().join("leader")).await;
        let batches = read_all(&leader).await;
        let follower = open(&tmp.path().join("follower"), config(1 << 20), 0).await;
        follower.append_replicated(concat(&batches[..2])).unwrap();
        let refused = [
            // A gap: the batch at 9 skipped.
            concat(&batches[3..4]),
            // An overlap: the batch at 3 again.
            concat(&batches[1..3]),
            // A good first batch, then a gap.
            concat(&[batches[2].clone(), batches[4].clone()]),
        ];
        for records in refused {
            let error = follower.append_replicated(records).unwrap_err();
            assert!(
                matches!(error, StorageError::NotContiguous { .. }),
                "{error}"
            );
            assert_eq!(follower.log_end_offset(), 6);
        }
        // A damaged batch (CRC) is refused too.
        let mut damaged = BytesMut::from(&batches[2][..]);
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        assert!(matches!(
            follower.append_replicated(damaged.freeze()),
            Err(StorageError::Corrupt(_))
        ));
        follower.wait_written(5).await.unwrap();
        assert_eq!(read_all(&follower).await, batches[..2]);
        follower.append_replicated(concat(&batches[2..])).unwrap();
        follower.wait_written(17).await.unwrap();
        assert_eq!(read_all(&follower).await, batches);
        follower.close().await.unwrap();
        leader.close().await.unwrap();
    });
}

#[test]
fn truncate_mid_active_segment_then_append_and_read() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20), 0).await;
        // Odd sizes, so the cut falls inside a page: the next O_DIRECT append must
        // rewrite the kept part of that page from memory.
        fill(&log, 10, 333).await;
        let before = read_all(&log).await;
        let error = log.truncate_to(16).await.unwrap_err();
        assert!(
            matches!(
                error,
                StorageError::NotBatchBoundary {
                    base_offset: 15,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(
            log.log_end_offset(),
            30,
            "a refused truncation changes nothing"
        );
        log.truncate_to(15).await.unwrap();
        assert_eq!(log.log_end_offset(), 15);
        assert_eq!(log.written_offset(), 15);
        assert_eq!(log.recovery_point(), 15);
        assert_eq!(read_all(&log).await, before[..5]);
        assert!(matches!(
            log.read(16, 1 << 20).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        log.truncate_to(40).await.unwrap();
        assert_eq!(log.log_end_offset(), 15, "past the end: nothing to do");
        fill(&log, 3, 77).await;
        let after = read_all(&log).await;
        assert_eq!(after.len(), 8);
        assert_eq!(after[..5], before[..5]);
        assert_eq!(BatchHeader::parse(&after[5]).unwrap().base_offset, 15);
        log.close().await.unwrap();
        let log = open(tmp.path(), config(1 << 20), 24).await;
        assert_eq!(read_all(&log).await, after);
        log.close().await.unwrap();
    });
}

#[test]
fn truncate_across_segments_survives_close_and_crash() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = || config(1500);
        let log = open(tmp.path(), cfg(), 0).await;
        fill(&log, 30, 200).await;
        let before = read_all(&log).await;
        let segments = files_with(log.dir(), "log").len();
        assert!(segments >= 8, "{segments} segments");
        let snapshots = files_with(log.dir(), "snapshot");
        assert!(snapshots.len() >= 2);
        // Offset 30 starts the 11th batch, in a sealed segment.
        log.truncate_to(30).await.unwrap();
        assert_eq!(log.log_end_offset(), 30);
        let kept = files_with(log.dir(), "log");
        assert!(kept.len() < segments, "later segments deleted");
        for snapshot in files_with(log.dir(), "snapshot") {
            let name = snapshot.file_name().unwrap().to_str().unwrap();
            assert!(
                snapshot::parse_snapshot_file_name(name).unwrap() <= 30,
                "{name}"
            );
        }
        assert_eq!(read_all(&log).await, before[..10]);

        // A crash right after the truncation (the broker's recovery point is stale).
        drop(log);
        let log = open(tmp.path(), cfg(), 90).await;
        assert_eq!(log.log_end_offset(), 30);
        assert_eq!(read_all(&log).await, before[..10]);
        fill(&log, 5, 150).await;
        let expected = read_all(&log).await;
        assert_eq!(expected[..10], before[..10]);
        assert_eq!(expected.len(), 15);

        // Close and reopen, then a crash without close.
        log.close().await.unwrap();
        let log = open(tmp.path(), cfg(), 45).await;
        assert_eq!(read_all(&log).await, expected);
        drop(log);
        let log = open(tmp.path(), cfg(), 0).await;
        assert_eq!(read_all(&log).await, expected);
        log.close().await.unwrap();
    });
}

#[test]
fn truncation_keeps_producer_state_to_the_cut() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(2000), 0).await;
        for i in 0..12 {
            log.append(batch(3, 300, 7, 0, 3 * i)).unwrap();
        }
        log.wait_written(35).await.unwrap();
        // Keep sequences 0..24 (8 batches); 24..36 are gone.
        log.truncate_to(24).await.unwrap();
        let retry = log.append(batch(3, 300, 7, 0, 21)).unwrap();
        assert_eq!(retry.base_offset, 21, "a kept batch is a duplicate");
        assert!(matches!(
            log.append(batch(3, 300, 7, 0, 27)),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        let next = log.append(batch(3, 300, 7, 0, 24)).unwrap();
        assert_eq!(next.base_offset, 24, "the sequence goes on from the cut");
        log.wait_written(26).await.unwrap();
        drop(log);
        let log = open(tmp.path(), config(2000), 0).await;
        let retry = log.append(batch(3, 300, 7, 0, 24)).unwrap();
        assert_eq!(retry.base_offset, 24);
        log.close().await.unwrap();
    });
}

#[test]
fn truncation_drops_the_epochs_past_the_cut() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20), 0).await;
        fill(&log, 2, 100).await;
        log.set_leader_epoch(3);
        fill(&log, 2, 100).await;
        log.set_leader_epoch(5);
        fill(&log, 2, 100).await;
        assert_eq!(log.leader_epochs(), [(0, 0), (3, 6), (5, 12)]);
        log.truncate_to(9).await.unwrap();
        assert_eq!(log.leader_epochs(), [(0, 0), (3, 6)]);
        assert_eq!(log.latest_epoch(), Some(3));
        assert_eq!(log.end_offset_for_epoch(3).unwrap(), (3, 9));
        assert_eq!(log.end_offset_for_epoch(5).unwrap(), (-1, -1));
        let file = log.dir().join("leader-epoch-checkpoint");
        assert_eq!(std::fs::read(&file).unwrap(), b"0\n2\n0 0\n3 6\n");
        // Cutting exactly at an epoch's start drops it.
        log.truncate_to(6).await.unwrap();
        assert_eq!(log.leader_epochs(), [(0, 0)]);
        assert_eq!(log.end_offset_for_epoch(0).unwrap(), (0, 6));
        assert_eq!(std::fs::read(&file).unwrap(), b"0\n1\n0 0\n");
        drop(log);
        let log = open(tmp.path(), config(1 << 20), 0).await;
        assert_eq!(log.leader_epochs(), [(0, 0)]);
        assert_eq!(log.log_end_offset(), 6);
        log.close().await.unwrap();
    });
}

#[test]
fn consumers_stop_at_the_replicated_high_watermark() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20), 0).await;
        log.set_replicated_high_watermark(Some(0));
        fill(&log, 4, 100).await;
        assert_eq!((log.high_watermark(), log.written_offset()), (0, 12));
        let consumer = log.read(0, 1 << 20).await.unwrap();
        assert!(consumer.batches.is_empty());
        assert_eq!(consumer.high_watermark, 0);
        let replica = log.read_replica(0, 1 << 20).await.unwrap();
        assert_eq!(replica.batches.len(), 4);
        assert_eq!(replica.high_watermark, 0);

        let woken = Rc::new(std::cell::Cell::new(0));
        let (log2, woken2) = (log.clone(), woken.clone());
        let waiting = glommio::spawn_local(async move {
            let result = log2.wait_high_watermark(4).await;
            woken2.set(woken2.get() + 1);
            result
        });
        let (data, woken3) = (log.wait_for_data(4), woken.clone());
        let data = glommio::spawn_local(async move {
            data.await;
            woken3.set(woken3.get() + 1);
        });
        crate::runtime::sleep(Duration::from_millis(5)).await;
        log.set_replicated_high_watermark(Some(3));
        assert_eq!(log.read(0, 1 << 20).await.unwrap().batches.len(), 1);
        crate::runtime::sleep(Duration::from_millis(5)).await;
        assert_eq!(woken.get(), 0, "the HW is not past 4 yet");
        log.set_replicated_high_watermark(Some(6));
        waiting.await.unwrap();
        data.await;
        assert_eq!(woken.get(), 2);
        let consumer = log.read(0, 1 << 20).await.unwrap();
        assert_eq!(consumer.batches.len(), 2);
        assert_eq!(consumer.high_watermark, 6);
        // Set lower, it stays; past the log end it is clamped.
        log.set_replicated_high_watermark(Some(4));
        assert_eq!(log.high_watermark(), 6);
        log.set_replicated_high_watermark(Some(100));
        assert_eq!(log.high_watermark(), 12);
        // A truncation pulls it down; a waiter past the cut learns its data is gone.
        let log2 = log.clone();
        let lost = glommio::spawn_local(async move { log2.wait_high_watermark(20).await });
        crate::runtime::sleep(Duration::from_millis(5)).await;
        log.truncate_to(9).await.unwrap();
        assert_eq!(log.high_watermark(), 9);
        assert!(matches!(
            lost.await,
            Err(StorageError::Truncated { offset: 20 })
        ));
        log.set_replicated_high_watermark(None);
        assert_eq!(log.high_watermark(), 9);
        log.close().await.unwrap();
    });
}

#[test]
fn truncating_batches_still_being_written() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20), 0).await;
        fill(&log, 2, 100).await;
        // Queued, not written yet: the truncation waits for the writer, then cuts.
        log.append(plain(3, 10)).unwrap();
        log.append(plain(3, 10)).unwrap();
        assert_eq!(log.written_offset(), 6);
        let truncation = glommio::spawn_local({
            let log = log.clone();
            async move { log.truncate_to(9).await }
        });
        crate::runtime::sleep(Duration::from_millis(1)).await;
        let refused = log.append(plain(1, 10));
        truncation.await.unwrap();
        if log.log_end_offset() != 9 || refused.is_ok() {
            // The truncation had finished before the append: it went in after it.
            assert_eq!(refused.unwrap().base_offset, 9);
            log.truncate_to(9).await.unwrap();
        } else {
            assert!(matches!(refused, Err(StorageError::Truncated { .. })));
        }
        assert_eq!(log.log_end_offset(), 9);
        assert_eq!(log.written_offset(), 9);
        // Waiting for offsets that were cut is an error, at once.
        assert!(matches!(
            log.wait_written(9).await,
            Err(StorageError::Truncated { offset: 9 })
        ));
        assert!(matches!(
            log.wait_durable(11).await,
            Err(StorageError::Truncated { offset: 11 })
        ));
        log.wait_durable(8).await.unwrap();
        log.close().await.unwrap();
        let log = open(tmp.path(), config(1 << 20), 0).await;
        assert_eq!(log.log_end_offset(), 9);
        log.close().await.unwrap();
    });
}

use std::time::Duration;

#[test]
fn restart_at_drops_the_log_and_continues_at_the_leaders_start() {
    run(async {
        // The leader: 30 batches of 3 records, the first 60 offsets deleted.
        let leader_dir = tempfile::tempdir().unwrap();
        let leader = open(leader_dir.path(), config(1500), 0).await;
        fill(&leader, 30, 200).await;
        assert_eq!(leader.delete_records_before(60).await.unwrap(), 60);
        let wanted = read_all(&leader).await;
        assert_eq!(wanted.len(), 10);

        // A follower that stopped at offset 9, with an epoch and a producer snapshot.
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1500), 0).await;
        log.set_leader_epoch(1);
        fill(&log, 3, 100).await;
        log.append(batch(3, 70, 7, 0, 0)).unwrap();
        log.wait_written(11).await.unwrap();
        assert_eq!(log.latest_epoch(), Some(1));
        log.set_replicated_high_watermark(Some(12));

        // Not past the end: refused, nothing changed.
        assert!(matches!(
            log.restart_at(12).await,
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert_eq!(log.log_end_offset(), 12);

        log.restart_at(60).await.unwrap();
        assert_eq!(log.log_start_offset(), 60);
        assert_eq!(log.log_end_offset(), 60);
        assert_eq!(log.written_offset(), 60);
        assert_eq!(log.high_watermark(), 60);
        assert_eq!(log.latest_epoch(), None);
        assert!(read_all(&log).await.is_empty());
        let names = |ext: &str| -> Vec<String> {
            files_with(tmp.path().join("orders-3").as_path(), ext)
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names("log"), vec!["00000000000000000060.log".to_string()]);
        assert!(names("snapshot").is_empty());

        // The leader's batches continue the log, epochs and all.
        log.append_replicated(concat(&wanted)).unwrap();
        log.wait_written(89).await.unwrap();
        assert_eq!(read_all(&log).await, wanted);
        assert_eq!(log.latest_epoch(), leader.latest_epoch());

        // A crash with stale checkpoints (recovery point and log start 0) keeps it.
        drop(log);
        let log = open(tmp.path(), config(1500), 0).await;
        assert_eq!(log.log_start_offset(), 60);
        assert_eq!(read_all(&log).await, wanted);
        log.close().await.unwrap();
        leader.close().await.unwrap();
    });
}

#[test]
fn a_follower_writes_no_zeros_ahead_until_it_leads() {
    run(async {
        let source = tempfile::tempdir().unwrap();
        let leader = leader(source.path()).await;
        let batches = read_all(&leader).await;
        let tmp = tempfile::tempdir().unwrap();
        let log = open(tmp.path(), config(1 << 20), 0).await;
        log.set_follower(true);
        for b in &batches {
            log.append_replicated(b.clone()).unwrap();
        }
        log.wait_written(log.log_end_offset() - 1).await.unwrap();
        // Idle long enough for a leader's writer to zero ahead (it does at once).
        crate::runtime::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(log.stats().zero_bytes, 0, "{:?}", log.stats());
        assert_eq!(read_all(&log).await, batches);
        // Leading now: its next append is followed by zeros ahead of the data.
        log.set_follower(false);
        log.append(plain(3, 40)).unwrap();
        for _ in 0..500 {
            if log.stats().zero_bytes > 0 {
                log.close().await.unwrap();
                return;
            }
            crate::runtime::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!(
            "a follower turned leader never zeroed ahead: {:?}",
            log.stats()
        );
    });
}
