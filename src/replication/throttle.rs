//! Throttled replication (Kafka's quota configs for reassignment catch-up):
//! `follower.replication.throttled.rate` / `leader.replication.throttled.rate` (bytes/s,
//! dynamic configs of a broker) and the topic configs
//! `follower.replication.throttled.replicas` / `leader.replication.throttled.replicas`
//! (`partition:broker,...` or `*`).
//!
//! Both sides enforce, as in Kafka (its tool sets both to the same rate), each with one
//! token bucket per broker shared by its shards; in-sync replicas are never throttled
//! (Kafka's rule):
//! - the follower: its fetcher limits the bytes it fetches for throttled partitions
//!   (listed for this broker in `follower.replication.throttled.replicas`) to this
//!   broker's `follower.replication.throttled.rate`;
//! - the leader: a replica fetch of a partition listed for this broker in
//!   `leader.replication.throttled.replicas`, from a follower out of the ISR, reads at
//!   most the budget of this broker's `leader.replication.throttled.rate`, and nothing
//!   while it is spent (`Shard::leader_throttle`; answered without records, which the
//!   fetch's long-poll does not wait on).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// Broker configs this module adds (alterable on a broker's own resource).
pub const BROKER_KEYS: [&str; 2] = [FOLLOWER_RATE, LEADER_RATE];
/// Topic configs this module adds.
pub const TOPIC_KEYS: [&str; 2] = [FOLLOWER_REPLICAS, LEADER_REPLICAS];

pub const RATE_DOC: &str =
    "Bytes/s a throttled replica may fetch (follower) or be sent (leader) during a reassignment.";
pub const REPLICAS_DOC: &str =
    "Replicas (partition:broker,... or *) whose catch-up is throttled; in-sync replicas never are.";

/// Checks a throttled-replicas value: empty, `*`, or `partition:broker` pairs.
pub fn validate_replicas(name: &str, value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.is_empty() || v == "*" {
        return Ok(v.to_string());
    }
    let mut items = Vec::new();
    for item in v.split(',').map(str::trim) {
        let ok = item
            .split_once(':')
            .is_some_and(|(p, b)| p.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
        if !ok {
            return Err(format!(
                "Invalid value {value} for configuration {name}: {item:?} is not partition:broker (or give *)"
            ));
        }
        items.push(item);
    }
    Ok(items.join(","))
}

/// Checks a rate: a whole number of bytes per second, at least 0.
pub fn validate_rate(name: &str, value: &str) -> Result<String, String> {
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n.to_string()),
        _ => Err(format!(
            "Invalid value {value} for configuration {name}: Value must be a number of bytes/s, at least 0"
        )),
    }
}

/// Whether `configs` (a topic's) list `partition` on `broker` under `key`.
pub fn listed(configs: &BTreeMap<String, String>, key: &str, partition: i32, broker: i32) -> bool {
    configs.get(key).is_some_and(|v| {
        v == "*"
            || v.split(',')
                .any(|item| item.trim() == format!("{partition}:{broker}"))
    })
}

/// Longest a throttled fetch waits for its budget: a bound on the pause a fetcher
/// takes before sending a request without its throttled partitions.
pub const THROTTLE_PAUSE_MAX: Duration = Duration::from_millis(500);

/// One broker's follower budget: a token bucket of bytes, refilled at the rate, holding
/// at most one second of it. Shared by the shards (a short lock per fetch round).
#[derive(Debug, Default)]
pub struct Bucket {
    state: Mutex<Option<(i64, Instant)>>,
}

impl Bucket {
    /// Whether throttled partitions may be fetched now at `rate` bytes/s.
    pub fn ready(&self, rate: i64) -> bool {
        let mut st = self.state.lock().expect("throttle lock");
        let now = Instant::now();
        let (tokens, at) = st.get_or_insert((rate, now));
        let refill = (now.duration_since(*at).as_secs_f64() * rate as f64) as i64;
        *tokens = (*tokens).saturating_add(refill).min(rate);
        *at = now;
        *tokens > 0
    }

    /// Takes `bytes` fetched for throttled partitions (may go negative: the next
    /// fetches wait until it is paid back).
    pub fn take(&self, bytes: i64) {
        if let Some((tokens, _)) = self.state.lock().expect("throttle lock").as_mut() {
            *tokens -= bytes;
        }
    }
}

/// A leader's budget for one read of a throttled follower's fetch.
pub struct LeaderBudget<'a> {
    bucket: &'a Bucket,
    rate: i64,
}

impl LeaderBudget<'_> {
    /// The most this read may take: at most a second of the rate; `None` while the
    /// budget is spent.
    pub fn read_cap(&self, max_bytes: usize) -> Option<usize> {
        let second = usize::try_from(self.rate.max(1)).unwrap_or(usize::MAX);
        self.bucket.ready(self.rate).then(|| max_bytes.min(second))
    }

    /// Takes what the read returned from the budget.
    pub fn spend(&self, bytes: usize) {
        self.bucket.take(bytes as i64);
        crate::metrics::add(crate::metrics::Counter::LeaderThrottledBytes, bytes as u64);
    }
}

impl crate::broker::shard::Shard {
    /// The leader's replication throttle for `replica`'s fetch of `topic`-`partition`:
    /// this broker has a `leader.replication.throttled.rate`, the topic lists the
    /// partition on this broker in `leader.replication.throttled.replicas`, and the
    /// follower is not in the ISR. `None`: not throttled.
    pub fn leader_throttle(
        &self,
        topic: &str,
        partition: i32,
        replica: i32,
    ) -> Option<LeaderBudget<'_>> {
        let snap = self.broker.metadata.snapshot();
        let rate = snap.broker_configs.get(LEADER_RATE)?.parse::<i64>().ok()?;
        let t = snap.topic(topic)?;
        let in_sync = usize::try_from(partition)
            .ok()
            .and_then(|p| t.replication.get(p))
            .is_some_and(|r| r.isr.contains(&replica));
        let me = self.broker.config.node_id;
        (!in_sync && listed(&t.configs, LEADER_REPLICAS, partition, me)).then_some(LeaderBudget {
            bucket: &self.broker.leader_replication_throttle,
            rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_lists_and_rates_are_validated() {
        assert_eq!(validate_replicas("x", " 0:1, 2:3 ").unwrap(), "0:1,2:3");
        assert_eq!(validate_replicas("x", "*").unwrap(), "*");
        assert_eq!(validate_replicas("x", "").unwrap(), "");
        for bad in ["0", "a:1", "0:1,", "-1:2"] {
            assert!(validate_replicas("x", bad).is_err(), "{bad}");
        }
        assert_eq!(validate_rate("r", "1000").unwrap(), "1000");
        assert!(validate_rate("r", "-1").is_err());
        assert!(validate_rate("r", "fast").is_err());
    }

    #[test]
    fn listed_matches_pairs_and_the_wildcard() {
        let mut c = BTreeMap::new();
        c.insert(FOLLOWER_REPLICAS.to_string(), "0:2,1:3".to_string());
        assert!(listed(&c, FOLLOWER_REPLICAS, 1, 3));
        assert!(!listed(&c, FOLLOWER_REPLICAS, 1, 2));
        assert!(!listed(&c, LEADER_REPLICAS, 0, 2));
        c.insert(LEADER_REPLICAS.to_string(), "*".to_string());
        assert!(listed(&c, LEADER_REPLICAS, 7, 9));
    }

    #[test]
    fn the_bucket_holds_a_second_and_goes_into_debt() {
        let b = Bucket::default();
        assert!(b.ready(1000));
        b.take(5000);
        assert!(!b.ready(1000), "4000 bytes of debt take 4 s to pay back");
    }

    #[test]
    fn a_leader_read_takes_at_most_a_second_of_the_rate_and_none_in_debt() {
        let bucket = Bucket::default();
        let budget = LeaderBudget {
            bucket: &bucket,
            rate: 1000,
        };
        assert_eq!(budget.read_cap(1 << 20), Some(1000));
        assert_eq!(budget.read_cap(10), Some(10));
        budget.spend(1500);
        assert_eq!(budget.read_cap(1 << 20), None, "500 bytes of debt");
    }
}
