//! The zeros written ahead are fdatasynced only on a log some request asked durability
//! of (`State::durability_asked`, `writer::zero`).

use super::*;
use crate::storage::testutil::{plain, run};
use std::time::Duration;

async fn open_log(dir: &Path) -> PartitionLog {
    let config = LogConfig {
        segment_bytes: 64 << 20,
        zero_ahead_bytes: 2 << 20,
        ..LogConfig::default()
    };
    PartitionLog::open(dir, "tail", 0, config, 0, 0)
        .await
        .unwrap()
}

/// Waits until the writer has written more than `bytes` of zeros in all and is idle.
async fn zeroed(log: &PartitionLog, bytes: u64) -> LogStats {
    for _ in 0..10_000 {
        let stats = log.stats();
        if stats.zero_bytes > bytes && !log.inner.state.borrow().writer_running {
            return stats;
        }
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    panic!("zeros never went ahead: {:?}", log.stats());
}

#[test]
fn an_acks1_log_writes_zeros_ahead_without_fdatasync_until_durability_is_asked() {
    run(async {
        let tmp = tempfile::tempdir().unwrap();
        let log = open_log(tmp.path()).await;
        let info = log.append(plain(3, 500)).unwrap();
        log.wait_written(info.last_offset).await.unwrap();
        let stats = zeroed(&log, 0).await;
        assert_eq!(
            (stats.zero_fdatasyncs, stats.fdatasyncs),
            (0, 0),
            "acks=1 alone: zeros ahead, no fdatasync"
        );
        // The periodic checkpoint's flush is not a request asking for durability.
        log.flush().await.unwrap();
        let before = log.stats();
        let info = log.append(plain(200, 4000)).unwrap();
        log.wait_written(info.last_offset).await.unwrap();
        let stats = zeroed(&log, before.zero_bytes).await;
        assert_eq!(stats.zero_fdatasyncs, 0, "a flush does not switch them on");
        // An acks=all request does: from then on each zero chunk is fdatasynced.
        let info = log.append(plain(200, 4000)).unwrap();
        log.wait_durable(info.last_offset).await.unwrap();
        let before = log.stats();
        let info = log.append(plain(200, 4000)).unwrap();
        log.wait_written(info.last_offset).await.unwrap();
        let stats = zeroed(&log, before.zero_bytes).await;
        assert!(
            stats.zero_fdatasyncs > 0,
            "zeros after an acks=all request are fdatasynced: {stats:?}"
        );
        log.close().await.unwrap();
    });
}
