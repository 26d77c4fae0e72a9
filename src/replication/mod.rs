//! Replication between brokers (issue 10, phase 3), per shard: the shard that owns a
//! partition's replica either leads it (tracks its followers' fetch offsets, moves the
//! high watermark to what the whole ISR has, asks the quorum to shrink or expand the
//! ISR) or follows it (a fetcher task per leader broker fetches with Kafka's Fetch as a
//! replica, after truncating any divergent suffix found with OffsetForLeaderEpoch, and
//! appends what it gets with the leader's offsets through the same writer).
//!
//! Roles come from the topic table (`TopicMeta::replication`), which the metadata
//! shard keeps in line with the quorum; after each change every shard runs
//! `apply_roles`. A topic without replication info (a single broker's) has none of this.

pub mod client;
pub use client::{install_login, install_tls};
mod fetcher;
mod leader;
mod low_watermark;
pub mod refusals;
pub mod selector;
pub mod throttle;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::broker::shard::Shard;

pub use leader::REPLICA_LAG_TIME_MAX_MS_DEFAULT;

type Key = (String, i32);

/// A partition this shard follows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Follow {
    leader: i32,
    leader_epoch: i32,
    /// OffsetForLeaderEpoch has been asked and the log cut where it diverged.
    truncated: bool,
}

/// A partition this shard leads, in a cluster.
#[derive(Debug)]
struct Lead {
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// Each follower's last fetch offset and when it last was caught up (fetched at
    /// or past the log end as it was then).
    followers: HashMap<i32, Progress>,
    /// The ISR change in flight, if one is: the ISR it proposes and when it was sent.
    /// No second one until the image answers it (the partition's epoch moves), the
    /// quorum refuses it, or `ALTER_PENDING_MAX` passes (`alter_in_flight`). While it is
    /// set the high watermark waits for its members too (Kafka's "maximal ISR",
    /// KIP-841): a follower being added gets every record acknowledged while it joins,
    /// and one being removed is still counted until it is out.
    proposed: Option<(Vec<i32>, std::time::Instant)>,
    /// DeleteRecords requests waiting for the followers' log start offsets
    /// (`Shard::wait_low_watermark`): woken when one moves, and when the partition
    /// changes (dropped here, they end the wait: leadership moved).
    low_watermark_waiters: Vec<futures::channel::oneshot::Sender<()>>,
}

/// How long an ISR change may go unanswered before its partition proposes again: a
/// proposal can hang while the quorum elects a new controller.
const ALTER_PENDING_MAX: std::time::Duration = std::time::Duration::from_secs(5);

impl Lead {
    /// An ISR change was sent less than `ALTER_PENDING_MAX` ago and is not answered.
    fn alter_in_flight(&self, now: std::time::Instant) -> bool {
        self.proposed
            .as_ref()
            .is_some_and(|(_, sent)| now.saturating_duration_since(*sent) < ALTER_PENDING_MAX)
    }

    /// The committed ISR and the one in flight together. A proposal unanswered past
    /// `ALTER_PENDING_MAX` no longer counts, so a lost one cannot hold the high
    /// watermark back for good.
    fn maximal_isr(&self) -> impl Iterator<Item = i32> + '_ {
        let in_flight = self.alter_in_flight(std::time::Instant::now());
        let proposed = self
            .proposed
            .iter()
            .filter(move |_| in_flight)
            .flat_map(|(isr, _)| isr);
        self.isr
            .iter()
            .chain(proposed.filter(|r| !self.isr.contains(r)))
            .copied()
    }
}

#[derive(Debug, Clone, Copy)]
struct Progress {
    fetch_offset: i64,
    caught_up_at: std::time::Instant,
    /// The follower's log start offset from its last fetch (-1: not reported).
    log_start_offset: i64,
}

impl Lead {
    /// Wakes the DeleteRecords requests waiting on this partition; each re-checks.
    fn wake_low_watermark_waiters(&mut self) {
        for tx in self.low_watermark_waiters.drain(..) {
            let _ = tx.send(());
        }
    }
}

/// One shard's replication state.
#[derive(Default)]
pub struct ShardReplication {
    following: HashMap<Key, Follow>,
    /// Leader broker ids a fetcher task runs for on this shard.
    fetchers: HashSet<i32>,
    leading: HashMap<Key, Lead>,
    /// The ISR maintenance loop runs (started with the first led partition).
    maintenance: bool,
}

impl Shard {
    /// Takes up each owned replica's role as the topic table has it: sets the leader
    /// epoch of led partitions, starts fetchers for followed ones, drops the rest.
    pub fn apply_roles(self: &Rc<Self>) {
        let snap = self.broker.metadata.snapshot();
        let me = self.broker.config.node_id;
        let mut spawn_fetchers = Vec::new();
        let mut start_maintenance = false;
        {
            let mut rep = self.replication.borrow_mut();
            let mut seen: HashSet<Key> = HashSet::new();
            for (topic, partition, log) in self.owned_logs() {
                let Some(set) = snap
                    .topic(&topic)
                    .and_then(|t| t.replication.get(partition as usize))
                else {
                    continue;
                };
                let key = (topic, partition);
                if !set.replicas.contains(&me) {
                    // Reassigned away: neither led nor followed; the metadata shard
                    // deletes the copy next.
                    continue;
                }
                seen.insert(key.clone());
                log.set_follower(set.leader != me && set.leader >= 0);
                if set.leader == me {
                    rep.following.remove(&key);
                    if log.leader_epoch() != set.leader_epoch {
                        log.set_leader_epoch(set.leader_epoch);
                    }
                    let was_alone = rep
                        .leading
                        .get(&key)
                        .is_some_and(|l| l.isr.iter().all(|&r| r == me));
                    if was_alone && set.isr.iter().any(|&r| r != me) {
                        leader::pin_high_watermark(&log);
                    }
                    let lead = rep.leading.entry(key).or_insert_with(|| Lead {
                        leader_epoch: set.leader_epoch,
                        partition_epoch: set.partition_epoch,
                        replicas: set.replicas.clone(),
                        isr: set.isr.clone(),
                        followers: HashMap::new(),
                        proposed: None,
                        low_watermark_waiters: Vec::new(),
                    });
                    if lead.leader_epoch != set.leader_epoch {
                        lead.followers.clear();
                    } else {
                        // The ISR of a partition led on: shrunk (a lagging follower
                        // dropped here, or a fenced broker by the controller) or grown.
                        count_isr_change(lead.isr.len(), set.isr.len());
                    }
                    // A pending ISR change is answered when this partition changed in
                    // the quorum (its partition or leader epoch moved), or by `propose`
                    // on a refusal; not by every image change: with many partitions
                    // expanding at once, each applied change cleared every other mark
                    // and their leaders proposed again on the next follower fetch
                    // (hundreds of duplicate proposals that slowed the quorum).
                    if lead.partition_epoch != set.partition_epoch
                        || lead.leader_epoch != set.leader_epoch
                    {
                        lead.proposed = None;
                    }
                    lead.leader_epoch = set.leader_epoch;
                    lead.partition_epoch = set.partition_epoch;
                    lead.replicas = set.replicas.clone();
                    lead.isr = set.isr.clone();
                    // Replicas may have come or gone (a fenced broker no longer counts).
                    lead.wake_low_watermark_waiters();
                    // A leader that is the whole ISR (RF=1, or every follower dropped)
                    // gets the written end as its high watermark there (`None`).
                    leader::advance_high_watermark(lead, &log, me);
                    start_maintenance |= !rep.maintenance;
                } else if set.leader >= 0 {
                    rep.leading.remove(&key);
                    let follow = Follow {
                        leader: set.leader,
                        leader_epoch: set.leader_epoch,
                        truncated: false,
                    };
                    let same = rep.following.get(&key).is_some_and(|f| {
                        f.leader == follow.leader && f.leader_epoch == follow.leader_epoch
                    });
                    if !same {
                        rep.following.insert(key, follow);
                    }
                    if rep.fetchers.insert(set.leader) {
                        spawn_fetchers.push(set.leader);
                    }
                } else {
                    rep.leading.remove(&key);
                    rep.following.remove(&key);
                }
            }
            rep.leading.retain(|k, _| seen.contains(k));
            rep.following.retain(|k, _| seen.contains(k));
            if start_maintenance {
                rep.maintenance = true;
            }
        }
        // Spawned with no borrow held: glommio runs a spawned task at once.
        for leader in spawn_fetchers {
            crate::runtime::spawn_local(fetcher::run(self.clone(), leader));
        }
        if start_maintenance {
            crate::runtime::spawn_local(leader::maintain_isr(self.clone()));
        }
        // Group coordination follows the leadership of `__consumer_offsets`.
        crate::groups::follow_leadership(self);
        // Transaction coordination follows the leadership of `__transaction_state`.
        crate::txn::loading::follow_leadership(self);
    }

    /// Whether this shard follows `topic`-`partition` and has had the leader's high
    /// watermark since: only then may it serve consumers (KIP-392), since a follower
    /// without it would let them read past what the ISR has.
    pub fn serves_follower_reads(
        &self,
        topic: &str,
        partition: i32,
        log: &crate::storage::PartitionLog,
    ) -> bool {
        self.replication
            .borrow()
            .following
            .contains_key(&(topic.to_string(), partition))
            && log.replicated_high_watermark().is_some()
    }

    /// Whether this shard leads `topic`-`partition` as a cluster replica, and its ISR
    /// size: acks=all then waits for the high watermark, and `min.insync.replicas` is
    /// checked against the ISR. `None` for a single broker's partition.
    pub fn replicated_isr(&self, topic: &str, partition: i32) -> Option<usize> {
        self.replication
            .borrow()
            .leading
            .get(&(topic.to_string(), partition))
            .map(|l| l.isr.len())
    }
}

/// Counts an ISR change of a led partition (Kafka's IsrShrinksPerSec /
/// IsrExpandsPerSec).
fn count_isr_change(before: usize, after: usize) {
    use crate::metrics::{add, Counter};
    match after.cmp(&before) {
        std::cmp::Ordering::Less => add(Counter::IsrShrinks, 1),
        std::cmp::Ordering::Greater => add(Counter::IsrExpands, 1),
        std::cmp::Ordering::Equal => {}
    }
}

/// Has every shard take up its roles after the topic table changed.
pub fn apply_roles_everywhere(broker: &crate::broker::Broker) {
    for shard in 0..broker.shard_count {
        broker.send(
            shard,
            crate::broker::router::ShardMsg::Run(Box::new(|s: Rc<Shard>| {
                Box::pin(async move { s.apply_roles() })
            })),
        );
    }
}
