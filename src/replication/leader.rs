//! The leader's side: followers' progress from their fetches, the high watermark as
//! the smallest log end of the ISR, and ISR changes proposed to the quorum
//! (AlterPartition): a follower that has caught up joins, one that has not been
//! caught up for `replica.lag.time.max.ms` leaves.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Lead, Progress};
use crate::broker::shard::Shard;
use crate::cluster::AdminCall;
use crate::storage::PartitionLog;

/// Kafka's default `replica.lag.time.max.ms`.
pub const REPLICA_LAG_TIME_MAX_MS_DEFAULT: u64 = 30_000;
/// How often a shard looks for followers to drop from or add to an ISR.
const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// How long after a refused or failed ISR change its partition proposes none again
/// (unless the quorum changes the partition meanwhile).
const ALTER_RETRY_PAUSE: Duration = Duration::from_millis(1000);

/// Moves the leader's high watermark to the smallest written end among the ISR (the
/// leader's own included). Followers not yet heard from since this leader epoch
/// count as 0: the high watermark never moves back (`set_replicated_high_watermark`
/// keeps it monotonic), it just waits for them.
///
/// An ISR of this broker alone has nobody else to wait for: the high watermark is the
/// written end and follows every write (`None`), else appends after the ISR shrank to
/// the leader would never become visible nor answer acks=all. When followers join
/// again, `apply_roles` first pins it where consumers already are (`pin_high_watermark`).
///
/// The ISR here is the maximal one (`Lead::maximal_isr`): while an ISR change is in
/// flight its added members count too, so the record a client is told is committed is
/// also on a follower that is about to become electable.
pub(super) fn advance_high_watermark(lead: &Lead, log: &PartitionLog, me: i32) {
    let mut others = lead.maximal_isr().filter(|&r| r != me).peekable();
    if others.peek().is_none() {
        log.set_replicated_high_watermark(None);
        return;
    }
    let mut hw = log.written_offset();
    for r in others {
        hw = hw.min(lead.followers.get(&r).map_or(0, |p| p.fetch_offset));
    }
    // Never below what consumers were shown while this leader was alone in the ISR.
    log.set_replicated_high_watermark(Some(hw.max(log.high_watermark())));
}

/// The ISR of a led partition grows from this broker alone: the high watermark, which
/// followed the written end, stays where consumers already read up to.
pub(super) fn pin_high_watermark(log: &PartitionLog) {
    if log.replicated_high_watermark().is_none() {
        log.set_replicated_high_watermark(Some(log.high_watermark()));
    }
}

impl Shard {
    /// The `/metrics` lag gauges of the partitions this shard leads: per follower, the
    /// written end minus its fetch offset, and the time since it was last caught up (a
    /// follower never heard from in this leadership lags by the whole log).
    pub fn replica_lag(&self) -> crate::metrics::ReplicaLag {
        let me = self.broker.config.node_id;
        let now = Instant::now();
        let mut lag = crate::metrics::ReplicaLag::default();
        let rep = self.replication.borrow();
        for ((topic, partition), lead) in &rep.leading {
            let Ok(log) = self.log_checked(topic, *partition) else {
                continue;
            };
            let written = log.written_offset();
            for r in lead.replicas.iter().filter(|&&r| r != me) {
                let (records, seconds) = match lead.followers.get(r) {
                    Some(p) if p.fetch_offset >= written => (0, 0.0),
                    Some(p) => (
                        written - p.fetch_offset,
                        now.duration_since(p.caught_up_at).as_secs_f64(),
                    ),
                    None => (written - log.log_start_offset(), 0.0),
                };
                lag.max_records = lag.max_records.max(records.max(0) as u64);
                lag.max_seconds = lag.max_seconds.max(seconds);
            }
        }
        lag
    }

    /// A follower fetched `topic`-`partition` from `offset`: everything below is on its
    /// log. Moves the high watermark and, if it is out of the ISR and has caught up,
    /// asks for it to be added.
    pub fn note_follower_fetch(
        self: &Rc<Self>,
        topic: &str,
        partition: i32,
        replica: i32,
        (offset, log_start): (i64, i64),
        log: &PartitionLog,
    ) {
        let me = self.broker.config.node_id;
        let expand = {
            let mut rep = self.replication.borrow_mut();
            let Some(lead) = rep.leading.get_mut(&(topic.to_string(), partition)) else {
                return;
            };
            if !lead.replicas.contains(&replica) {
                return;
            }
            let now = Instant::now();
            let caught_up = offset >= log.written_offset();
            let progress = lead.followers.entry(replica).or_insert(Progress {
                fetch_offset: offset,
                caught_up_at: now,
                log_start_offset: -1,
            });
            progress.fetch_offset = offset;
            if caught_up {
                progress.caught_up_at = now;
            }
            let start_moved = log_start != progress.log_start_offset;
            progress.log_start_offset = log_start;
            if start_moved {
                lead.wake_low_watermark_waiters();
            }
            advance_high_watermark(lead, log, me);
            // Not a fenced broker (KIP-841: the quorum refuses it; a broker fenced for a
            // missed session may still be fetching, and asking again on each of its
            // fetches only loads the quorum).
            let joins =
                !lead.isr.contains(&replica)
                    && !lead.alter_in_flight(now)
                    && offset >= log.high_watermark()
                    && self.broker.cluster.as_ref().is_some_and(|c| {
                        c.image().live_brokers.iter().any(|b| b.node_id == replica)
                    });
            joins.then(|| {
                let mut isr = lead.isr.clone();
                isr.push(replica);
                lead.proposed = Some((isr.clone(), now));
                alter(topic, partition, me, lead, isr)
            })
        };
        if let Some(call) = expand {
            tracing::info!(
                topic,
                partition,
                replica,
                "follower caught up: expanding the ISR"
            );
            crate::runtime::spawn_local(propose(self.clone(), call));
        }
    }
}

fn alter(topic: &str, partition: i32, me: i32, lead: &Lead, isr: Vec<i32>) -> AdminCall {
    AdminCall::AlterPartition {
        topic: topic.to_string(),
        partition,
        leader: me,
        leader_epoch: lead.leader_epoch,
        partition_epoch: lead.partition_epoch,
        isr,
    }
}

/// Sends an ISR change to the quorum; the new ISR arrives through the image
/// (`apply_roles`), which also clears `proposed` (as does `ALTER_PENDING_MAX`). A refused
/// or failed change is retried by the next check once the pending mark is cleared here,
/// `ALTER_RETRY_PAUSE` later.
async fn propose(shard: Rc<Shard>, call: AdminCall) {
    let AdminCall::AlterPartition {
        topic, partition, ..
    } = &call
    else {
        return;
    };
    let key = (topic.clone(), *partition);
    let Some(cluster) = shard.broker.cluster.clone() else {
        return;
    };
    if let Err((code, why)) = cluster.call(call).await {
        tracing::info!(topic = %key.0, partition = key.1, code, "ISR change not applied: {why}");
        // Not at once: the next follower fetch would propose the same change again.
        crate::runtime::sleep(ALTER_RETRY_PAUSE).await;
        if let Some(lead) = shard.replication.borrow_mut().leading.get_mut(&key) {
            lead.proposed = None;
        }
    }
}

/// While this shard leads replicated partitions: drops from each ISR the followers
/// that have not been caught up for `replica.lag.time.max.ms`.
pub(super) async fn maintain_isr(shard: Rc<Shard>) {
    let lag_max = Duration::from_millis(shard.broker.config.replica_lag_time_max_ms);
    let me = shard.broker.config.node_id;
    loop {
        crate::runtime::sleep(ISR_CHECK_INTERVAL).await;
        if shard.broker.cluster.is_none() {
            return;
        }
        let now = Instant::now();
        let calls: Vec<AdminCall> = {
            let mut rep = shard.replication.borrow_mut();
            rep.leading
                .iter_mut()
                .filter(|(_, lead)| !lead.alter_in_flight(now))
                .filter_map(|((topic, partition), lead)| {
                    let lagging: Vec<i32> = lead
                        .isr
                        .iter()
                        .copied()
                        .filter(|&r| r != me)
                        .filter(|r| {
                            // Not heard from since this leadership began: its time
                            // counts from when we first saw it missing.
                            let p = lead.followers.entry(*r).or_insert(Progress {
                                fetch_offset: 0,
                                caught_up_at: now,
                                log_start_offset: -1,
                            });
                            now.duration_since(p.caught_up_at) > lag_max
                        })
                        .collect();
                    if lagging.is_empty() {
                        return None;
                    }
                    tracing::warn!(
                        %topic,
                        partition,
                        ?lagging,
                        "followers behind for replica.lag.time.max.ms: shrinking the ISR"
                    );
                    let isr: Vec<i32> = lead
                        .isr
                        .iter()
                        .copied()
                        .filter(|r| !lagging.contains(r))
                        .collect();
                    lead.proposed = Some((isr.clone(), now));
                    Some(alter(topic, *partition, me, lead, isr))
                })
                .collect()
        };
        for call in calls {
            crate::runtime::spawn_local(propose(shard.clone(), call));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::storage::log::LogConfig;
    use crate::storage::testutil::{plain, run};

    fn lead(isr: &[i32], proposed: Option<&[i32]>, fetched: &[(i32, i64)]) -> Lead {
        let now = Instant::now();
        Lead {
            leader_epoch: 1,
            partition_epoch: 1,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            followers: fetched
                .iter()
                .map(|&(r, fetch_offset)| {
                    let caught_up_at = now;
                    (
                        r,
                        Progress {
                            fetch_offset,
                            caught_up_at,
                            log_start_offset: -1,
                        },
                    )
                })
                .collect::<HashMap<_, _>>(),
            proposed: proposed.map(|isr| (isr.to_vec(), now)),
            low_watermark_waiters: Vec::new(),
        }
    }

    #[test]
    fn the_high_watermark_waits_for_a_follower_while_it_is_being_added() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = PartitionLog::open(tmp.path(), "t", 0, LogConfig::default(), 0, 0)
                .await
                .unwrap();
            for _ in 0..4 {
                log.append(plain(3, 10)).unwrap();
            }
            log.wait_written(11).await.unwrap();
            // Broker 1 leads; 2 has everything, 3 (joining) has offsets below 6.
            let fetched = [(2, 12), (3, 6)];
            log.set_replicated_high_watermark(Some(0));
            advance_high_watermark(&lead(&[1, 2], Some(&[1, 2, 3]), &fetched), &log, 1);
            assert_eq!(log.high_watermark(), 6, "the joining follower counts");
            advance_high_watermark(&lead(&[1, 2], None, &fetched), &log, 1);
            assert_eq!(log.high_watermark(), 12, "committed ISR only");
            log.close().await.unwrap();
        });
    }

    #[test]
    fn the_maximal_isr_is_the_union_of_committed_and_proposed() {
        let l = lead(&[1, 2], Some(&[1, 2, 3]), &[]);
        assert_eq!(l.maximal_isr().collect::<Vec<_>>(), vec![1, 2, 3]);
        let shrinking = lead(&[1, 2, 3], Some(&[1, 3]), &[]);
        assert_eq!(shrinking.maximal_isr().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(!lead(&[1], None, &[]).alter_in_flight(Instant::now()));
        assert!(l.alter_in_flight(Instant::now()));
    }
}
