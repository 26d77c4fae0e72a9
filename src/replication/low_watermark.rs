//! The leader's side of DeleteRecords in a cluster (Kafka's DelayedDeleteRecords): the
//! partition's low watermark is the smallest log start offset among the leader and
//! every follower on a live broker, and DeleteRecords is answered once it has reached
//! the offset the leader moved its own log start to, or at the request's timeout with
//! REQUEST_TIMED_OUT. Followers learn the leader's log start from their fetch answers
//! (a long-poll is answered as soon as it moves: `handlers::fetch::reads::log_start_moved`)
//! and report theirs on the next fetch (`note_follower_fetch`), which wakes the waits
//! here.

use std::rc::Rc;
use std::time::Instant;

use futures::channel::oneshot;
use futures::future::{select, FutureExt};

use super::Lead;
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::storage::PartitionLog;

/// Kafka's `lowWatermarkIfLeader`: the smallest log start offset among the leader's
/// log and the replicas on live brokers (one not heard from in this leadership counts
/// as -1, so it is waited for). A replica on a fenced broker does not count: it will
/// follow the leader's log start when it returns, before it can rejoin the ISR.
fn low_watermark(lead: &Lead, log: &PartitionLog, me: i32, live: impl Fn(i32) -> bool) -> i64 {
    lead.replicas
        .iter()
        .filter(|&&r| r != me && live(r))
        .map(|r| lead.followers.get(r).map_or(-1, |p| p.log_start_offset))
        .fold(log.log_start_offset(), i64::min)
}

/// How a DeleteRecords wait ended without every replica at the offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowWatermarkMissed {
    pub error_code: i16,
    /// The low watermark when it ended (-1 once leadership moved).
    pub low_watermark: i64,
}

impl Shard {
    /// Waits until every live replica of `topic`-`partition` has its log start offset
    /// at `required` or past it, and answers the low watermark then. A partition this
    /// shard does not lead as a cluster replica (a single broker's) answers its own log
    /// start at once. Past `deadline`: REQUEST_TIMED_OUT; leadership lost meanwhile:
    /// NOT_LEADER_OR_FOLLOWER.
    pub async fn wait_low_watermark(
        self: &Rc<Self>,
        topic: &str,
        partition: i32,
        log: &PartitionLog,
        required: i64,
        deadline: Instant,
    ) -> Result<i64, LowWatermarkMissed> {
        let key = (topic.to_string(), partition);
        let me = self.broker.config.node_id;
        let mut first = true;
        loop {
            let rx = {
                let mut rep = self.replication.borrow_mut();
                let Some(lead) = rep.leading.get_mut(&key) else {
                    if first {
                        return Ok(log.log_start_offset());
                    }
                    return Err(LowWatermarkMissed {
                        error_code: ec::NOT_LEADER_OR_FOLLOWER,
                        low_watermark: -1,
                    });
                };
                let image = self.broker.cluster.as_ref().map(|c| c.image());
                let live = |id: i32| {
                    image
                        .as_ref()
                        .is_some_and(|i| i.live_brokers.iter().any(|b| b.node_id == id))
                };
                let low = low_watermark(lead, log, me, live);
                if low >= required {
                    return Ok(low);
                }
                if Instant::now() >= deadline {
                    return Err(LowWatermarkMissed {
                        error_code: ec::REQUEST_TIMED_OUT,
                        low_watermark: low,
                    });
                }
                lead.low_watermark_waiters.retain(|tx| !tx.is_canceled());
                let (tx, rx) = oneshot::channel();
                lead.low_watermark_waiters.push(tx);
                rx
            };
            first = false;
            let timer = crate::runtime::sleep(deadline.saturating_duration_since(Instant::now()));
            // Woken (a follower's log start moved, the partition changed), dropped (the
            // partition is no longer led here) or timed out: each re-checks above.
            let _ = select(rx, timer.boxed_local()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::replication::Progress;
    use crate::storage::log::LogConfig;
    use crate::storage::testutil::{plain, run};

    fn lead(starts: &[(i32, i64)]) -> Lead {
        let now = Instant::now();
        Lead {
            leader_epoch: 1,
            partition_epoch: 1,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            followers: starts
                .iter()
                .map(|&(r, log_start_offset)| {
                    let p = Progress {
                        fetch_offset: 10,
                        caught_up_at: now,
                        log_start_offset,
                    };
                    (r, p)
                })
                .collect::<HashMap<_, _>>(),
            proposed: None,
            low_watermark_waiters: Vec::new(),
        }
    }

    #[test]
    fn the_low_watermark_is_the_smallest_log_start_of_the_live_replicas() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = PartitionLog::open(tmp.path(), "t", 0, LogConfig::default(), 0, 0)
                .await
                .unwrap();
            for _ in 0..4 {
                log.append(plain(3, 10)).unwrap();
            }
            log.wait_written(11).await.unwrap();
            log.delete_records_before(6).await.unwrap();
            let all = |_: i32| true;
            assert_eq!(low_watermark(&lead(&[(2, 6), (3, 6)]), &log, 1, all), 6);
            assert_eq!(low_watermark(&lead(&[(2, 6), (3, 0)]), &log, 1, all), 0);
            assert_eq!(
                low_watermark(&lead(&[(2, 9)]), &log, 1, all),
                -1,
                "3 never reported"
            );
            let not_3 = |id: i32| id != 3;
            assert_eq!(
                low_watermark(&lead(&[(2, 9)]), &log, 1, not_3),
                6,
                "the leader's"
            );
            log.close().await.unwrap();
        });
    }
}
