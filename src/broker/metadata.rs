//! The topic table: names, ids, partition counts and where each partition lives.
//!
//! One writer (shard 0, serialised by `Broker::admin_lock`) builds a new `Snapshot` and
//! publishes it; readers on every shard clone the current `Arc<Snapshot>` and never see a
//! half-made change. The table is persisted in `<first log dir>/corelog-topics`:
//!
//! ```text
//! version 2
//! topic <name> <topic id, 32 hex digits> <partition count>
//! partition <name> <partition> <shard> <log dir index>
//! config <name> <key> <value>            a topic config override
//! replicas <name> <partition> <id,id,..>  cluster mode: the partition's replica list
//! broker-config <key> <value>            AlterConfigs on this node's BROKER resource
//! default-broker-config <key> <value>    AlterConfigs on the default BROKER resource
//! ```
//!
//! Values are escaped (`%25` `%0A` `%0D`) so that each entry is one line; version 1
//! files (no configs) are read too.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub const TOPICS_FILE: &str = "corelog-topics";
/// Kafka's limit on topic name length.
pub const TOPIC_NAME_LEN_MAX: usize = 249;

/// Where one partition lives: the shard that owns it and the log dir that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub shard: usize,
    pub dir: usize,
}

/// A partition's replicas as the quorum last published them (cluster mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaSet {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1 while unknown (just restarted, image not yet caught up) or offline.
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

impl ReplicaSet {
    /// As read back from the topics file: the leader is unknown until the quorum says.
    fn unknown(replicas: Vec<i32>) -> ReplicaSet {
        ReplicaSet {
            replicas,
            isr: Vec::new(),
            leader: -1,
            leader_epoch: -1,
            partition_epoch: -1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    pub id: [u8; 16],
    /// Where each partition lives on this broker; in cluster mode every partition has
    /// one, but only those this broker is a replica of (`hosted`) are opened.
    pub partitions: Vec<Placement>,
    /// Topic config overrides, validated (`topic_config`).
    pub configs: BTreeMap<String, String>,
    /// Cluster mode: per partition, its replicas, ISR and leader. Empty for a topic
    /// of a single broker (and for `__consumer_offsets`, which stays each broker's own
    /// until it is replicated): this broker is its only replica and its leader.
    pub replication: Vec<ReplicaSet>,
}

impl TopicMeta {
    /// Whether broker `me` holds a replica of `partition`.
    pub fn hosted(&self, partition: usize, me: i32) -> bool {
        self.replication
            .get(partition)
            .is_none_or(|r| r.replicas.contains(&me))
    }

    /// Whether broker `me` leads `partition` (always, for a single broker's topic).
    pub fn leads(&self, partition: usize, me: i32) -> bool {
        self.replication
            .get(partition)
            .is_none_or(|r| r.leader == me)
    }
}

/// An immutable view of every topic.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub topics: BTreeMap<String, Arc<TopicMeta>>,
    pub by_id: HashMap<[u8; 16], String>,
    /// Dynamic configs of this node's BROKER resource.
    pub broker_configs: BTreeMap<String, String>,
    /// Dynamic configs of the default (cluster-wide) BROKER resource.
    pub default_broker_configs: BTreeMap<String, String>,
}

impl Snapshot {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &[u8; 16]) -> Option<&Arc<TopicMeta>> {
        self.by_id.get(id).and_then(|n| self.topics.get(n))
    }

    pub fn placement(&self, topic: &str, partition: i32) -> Option<Placement> {
        let t = self.topics.get(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|p| t.partitions.get(p).copied())
    }

    /// Where a client request for `topic`-`partition` goes on broker `me`: its
    /// placement when `me` leads it; NOT_LEADER_OR_FOLLOWER when another broker
    /// does (or none, for now); UNKNOWN_TOPIC_OR_PARTITION when it does not exist.
    pub fn route(&self, topic: &str, partition: i32, me: i32) -> Result<Placement, i16> {
        let t = self
            .topics
            .get(topic)
            .ok_or(crate::protocol::errors::UNKNOWN_TOPIC_OR_PARTITION)?;
        let p = usize::try_from(partition)
            .ok()
            .filter(|&p| p < t.partitions.len())
            .ok_or(crate::protocol::errors::UNKNOWN_TOPIC_OR_PARTITION)?;
        if !t.leads(p, me) {
            return Err(crate::protocol::errors::NOT_LEADER_OR_FOLLOWER);
        }
        Ok(t.partitions[p])
    }

    /// Partitions per shard and per log dir, for placing new partitions.
    fn load(&self, shards: usize, dirs: usize) -> (Vec<usize>, Vec<usize>) {
        let mut per_shard = vec![0; shards];
        let mut per_dir = vec![0; dirs];
        for p in self.topics.values().flat_map(|t| t.partitions.iter()) {
            per_shard[p.shard] += 1;
            per_dir[p.dir] += 1;
        }
        (per_shard, per_dir)
    }

    /// Places `count` new partitions: each goes to the shard with the fewest partitions
    /// and the online log dir (`online[d]`) with the fewest partitions (Kafka's rule for
    /// dirs), ties to the lowest index. `None` when no dir is online.
    pub fn place(&self, count: usize, shards: usize, online: &[bool]) -> Option<Vec<Placement>> {
        if !online.iter().any(|&o| o) {
            return None;
        }
        let (mut per_shard, mut per_dir) = self.load(shards, online.len());
        for (d, n) in per_dir.iter_mut().enumerate() {
            if !online[d] {
                *n = usize::MAX;
            }
        }
        let placed = (0..count)
            .map(|_| {
                let shard = argmin(&per_shard);
                let dir = argmin(&per_dir);
                per_shard[shard] += 1;
                per_dir[dir] = per_dir[dir].saturating_add(1);
                Placement { shard, dir }
            })
            .collect();
        Some(placed)
    }

    pub fn with_topic(&self, t: TopicMeta) -> Snapshot {
        let mut s = self.clone();
        s.by_id.insert(t.id, t.name.clone());
        s.topics.insert(t.name.clone(), Arc::new(t));
        s
    }

    pub fn without_topic(&self, name: &str) -> Snapshot {
        let mut s = self.clone();
        if let Some(t) = s.topics.remove(name) {
            s.by_id.remove(&t.id);
        }
        s
    }

    pub fn encode(&self) -> String {
        let mut out = String::from("version 2\n");
        for t in self.topics.values() {
            out += &format!("topic {} {} {}\n", t.name, hex(&t.id), t.partitions.len());
            for (i, p) in t.partitions.iter().enumerate() {
                out += &format!("partition {} {} {} {}\n", t.name, i, p.shard, p.dir);
            }
            for (k, v) in &t.configs {
                out += &format!("config {} {} {}\n", t.name, k, escape(v));
            }
            for (i, r) in t.replication.iter().enumerate() {
                let ids: Vec<String> = r.replicas.iter().map(i32::to_string).collect();
                out += &format!("replicas {} {} {}\n", t.name, i, ids.join(","));
            }
        }
        for (k, v) in &self.broker_configs {
            out += &format!("broker-config {k} {}\n", escape(v));
        }
        for (k, v) in &self.default_broker_configs {
            out += &format!("default-broker-config {k} {}\n", escape(v));
        }
        out
    }

    /// Parses the topics file. A partition whose shard or dir no longer exists (fewer
    /// shards or dirs than when it was placed) moves to `partition % shards`, or fails
    /// if its dir is gone, since its data would be missing.
    pub fn decode(text: &str, shards: usize, dirs: usize) -> Result<Snapshot, String> {
        let mut s = Snapshot::default();
        let mut lines = text.lines();
        if !matches!(lines.next(), Some("version 1" | "version 2")) {
            return Err("unknown version line".into());
        }
        let mut pending: Vec<TopicMeta> = Vec::new();
        for (n, line) in lines.enumerate() {
            let bad = || format!("line {}: cannot parse {line:?}", n + 2);
            if let Some(rest) = line.strip_prefix("config ") {
                let mut f = rest.splitn(3, ' ');
                let (Some(name), Some(k), Some(v)) = (f.next(), f.next(), f.next()) else {
                    return Err(bad());
                };
                let t = pending
                    .iter_mut()
                    .find(|t| t.name == name)
                    .ok_or_else(bad)?;
                t.configs.insert(k.to_string(), unescape(v));
                continue;
            }
            if let Some(rest) = line.strip_prefix("broker-config ") {
                let (k, v) = rest.split_once(' ').ok_or_else(bad)?;
                s.broker_configs.insert(k.to_string(), unescape(v));
                continue;
            }
            if let Some(rest) = line.strip_prefix("default-broker-config ") {
                let (k, v) = rest.split_once(' ').ok_or_else(bad)?;
                s.default_broker_configs.insert(k.to_string(), unescape(v));
                continue;
            }
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["topic", name, id, count] => {
                    let count: usize = count.parse().map_err(|_| bad())?;
                    pending.push(TopicMeta {
                        name: name.to_string(),
                        id: unhex(id).ok_or_else(bad)?,
                        partitions: vec![Placement { shard: 0, dir: 0 }; count],
                        configs: BTreeMap::new(),
                        replication: Vec::new(),
                    });
                }
                ["replicas", name, p, ids] => {
                    let t = pending
                        .iter_mut()
                        .find(|t| t.name == *name)
                        .ok_or_else(bad)?;
                    let p: usize = p.parse().map_err(|_| bad())?;
                    let ids: Vec<i32> = ids
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .map_err(|_| bad())?;
                    if p != t.replication.len() || p >= t.partitions.len() {
                        return Err(bad());
                    }
                    t.replication.push(ReplicaSet::unknown(ids));
                }
                ["partition", name, p, shard, dir] => {
                    let t = pending
                        .iter_mut()
                        .find(|t| t.name == *name)
                        .ok_or_else(bad)?;
                    let p: usize = p.parse().map_err(|_| bad())?;
                    let shard: usize = shard.parse().map_err(|_| bad())?;
                    let dir: usize = dir.parse().map_err(|_| bad())?;
                    if p >= t.partitions.len() {
                        return Err(bad());
                    }
                    if dir >= dirs {
                        return Err(format!(
                            "partition {name}-{p} lives in log dir #{dir}, but only {dirs} \
                             log dirs are configured: restore the missing dir to log.dirs"
                        ));
                    }
                    let shard = if shard < shards { shard } else { p % shards };
                    t.partitions[p] = Placement { shard, dir };
                }
                [] | [""] => {}
                _ => return Err(bad()),
            }
        }
        for t in pending {
            if !t.replication.is_empty() && t.replication.len() != t.partitions.len() {
                return Err(format!(
                    "topic {}: replicas of only some partitions",
                    t.name
                ));
            }
            s = s.with_topic(t);
        }
        Ok(s)
    }
}

/// One line per value: `%`, newline and carriage return are percent-escaped.
fn escape(v: &str) -> String {
    v.replace('%', "%25")
        .replace('\n', "%0A")
        .replace('\r', "%0D")
}

fn unescape(v: &str) -> String {
    v.replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%25", "%")
}

fn argmin(v: &[usize]) -> usize {
    v.iter()
        .enumerate()
        .min_by_key(|(i, n)| (**n, *i))
        .map_or(0, |(i, _)| i)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Kafka's rule: 1-249 characters from [a-zA-Z0-9._-], not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > TOPIC_NAME_LEN_MAX {
        return Err(format!(
            "topic name must be 1 to {TOPIC_NAME_LEN_MAX} characters long"
        ));
    }
    if name == "." || name == ".." {
        return Err("topic name cannot be \".\" or \"..\"".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {c:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// The published snapshot plus the file it is persisted in.
pub struct MetadataStore {
    current: RwLock<Arc<Snapshot>>,
    path: PathBuf,
}

impl MetadataStore {
    /// Loads the topics file at start-up (blocking; called before shards run).
    pub fn open(first_dir: &Path, shards: usize, dirs: usize) -> Result<MetadataStore, String> {
        let path = first_dir.join(TOPICS_FILE);
        let snap = match std::fs::read_to_string(&path) {
            Ok(text) => Snapshot::decode(&text, shards, dirs)
                .map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Snapshot::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(MetadataStore {
            current: RwLock::new(Arc::new(snap)),
            path,
        })
    }

    /// Creates an internal topic at start-up (blocking) if it does not exist, placing
    /// partition p on shard `p % shards`: `__consumer_offsets` spreads group homes over
    /// every shard that way. An existing topic keeps its placement.
    ///
    /// `configs` are the topic's required overrides (`cleanup.policy=compact` for
    /// `__consumer_offsets`, as Kafka creates it); an existing topic missing one of them
    /// gets it, so that a topic made by an older version is never deleted by retention.
    pub fn ensure_topic_blocking(
        &self,
        name: &str,
        partitions: i32,
        shards: usize,
        online: &[bool],
        configs: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let snap = self.snapshot();
        if let Some(existing) = snap.topic(name) {
            let missing = configs.keys().any(|k| !existing.configs.contains_key(k));
            if !missing {
                return Ok(());
            }
            let mut meta = (**existing).clone();
            for (k, v) in configs {
                meta.configs.entry(k.clone()).or_insert_with(|| v.clone());
            }
            return self.store_blocking(snap.with_topic(meta));
        }
        let (_, mut per_dir) = snap.load(shards, online.len());
        for (d, n) in per_dir.iter_mut().enumerate() {
            if !online[d] {
                *n = usize::MAX;
            }
        }
        let placements = (0..partitions.max(1) as usize)
            .map(|p| {
                let dir = argmin(&per_dir);
                per_dir[dir] = per_dir[dir].saturating_add(1);
                Placement {
                    shard: p % shards,
                    dir,
                }
            })
            .collect();
        self.store_blocking(snap.with_topic(TopicMeta {
            name: name.to_string(),
            id: crate::util::random_uuid(),
            partitions: placements,
            configs: configs.clone(),
            replication: Vec::new(),
        }))
    }

    /// Persists and publishes `next` from the main thread (start-up).
    fn store_blocking(&self, next: Snapshot) -> Result<(), String> {
        crate::util::write_file_atomic_blocking(&self.path, next.encode().as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(())
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Persists `next` (off the shard thread) and then publishes it.
    pub async fn publish(&self, next: Snapshot) -> std::io::Result<()> {
        let path = self.path.clone();
        let text = next.encode();
        crate::runtime::blocking(move || {
            crate::util::write_file_atomic_blocking(&path, text.as_bytes())
        })
        .await?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::errors as ec;

    #[test]
    fn placement_balances_shards_and_dirs() {
        let s = Snapshot::default();
        let p = s.place(4, 2, &[true, true]).unwrap();
        assert_eq!(
            p.iter().map(|x| (x.shard, x.dir)).collect::<Vec<_>>(),
            vec![(0, 0), (1, 1), (0, 0), (1, 1)]
        );
        let s = s.with_topic(TopicMeta {
            name: "a".into(),
            id: [1; 16],
            partitions: vec![Placement { shard: 0, dir: 1 }],
            configs: BTreeMap::new(),
            replication: Vec::new(),
        });
        let p = s.place(1, 2, &[true, true]).unwrap();
        assert_eq!(p[0], Placement { shard: 1, dir: 0 });
        let p = s.place(2, 2, &[false, true]).unwrap();
        assert!(p.iter().all(|x| x.dir == 1));
        assert!(s.place(1, 2, &[false, false]).is_none());
    }

    #[test]
    fn encode_decode_round_trip_and_fewer_shards() {
        let s = Snapshot::default().with_topic(TopicMeta {
            name: "weblogs".into(),
            id: [0xab; 16],
            partitions: vec![
                Placement { shard: 0, dir: 0 },
                Placement { shard: 3, dir: 1 },
            ],
            configs: [
                ("retention.ms".to_string(), "1000".to_string()),
                ("odd".to_string(), "a b%\nc".to_string()),
            ]
            .into(),
            replication: Vec::new(),
        });
        let mut s = s;
        s.default_broker_configs
            .insert("log.retention.ms".into(), "5".into());
        let back = Snapshot::decode(&s.encode(), 4, 2).unwrap();
        assert_eq!(back.topic("weblogs"), s.topic("weblogs"));
        assert_eq!(back.topic_by_id(&[0xab; 16]).unwrap().name, "weblogs");
        assert_eq!(back.default_broker_configs, s.default_broker_configs);
        let v1 = "version 1\ntopic t 0123456789abcdef0123456789abcdef 1\npartition t 0 0 0\n";
        assert_eq!(
            Snapshot::decode(v1, 1, 1)
                .unwrap()
                .topic("t")
                .unwrap()
                .partitions
                .len(),
            1
        );
        let fewer = Snapshot::decode(&s.encode(), 2, 2).unwrap();
        assert_eq!(
            fewer.placement("weblogs", 1),
            Some(Placement { shard: 1, dir: 1 })
        );
        assert!(Snapshot::decode(&s.encode(), 4, 1).is_err());
    }

    #[test]
    fn replicas_round_trip_with_leaders_unknown_and_routing() {
        let set = |replicas: Vec<i32>, leader: i32| ReplicaSet {
            isr: replicas.clone(),
            replicas,
            leader,
            leader_epoch: 3,
            partition_epoch: 0,
        };
        let s = Snapshot::default().with_topic(TopicMeta {
            name: "r".into(),
            id: [7; 16],
            partitions: vec![Placement { shard: 0, dir: 0 }; 2],
            configs: BTreeMap::new(),
            replication: vec![set(vec![1, 2, 3], 1), set(vec![2, 3, 4], 2)],
        });
        assert_eq!(s.route("r", 0, 1), Ok(Placement { shard: 0, dir: 0 }));
        assert_eq!(s.route("r", 1, 1), Err(ec::NOT_LEADER_OR_FOLLOWER));
        assert_eq!(s.route("r", 2, 1), Err(ec::UNKNOWN_TOPIC_OR_PARTITION));
        assert_eq!(s.route("x", 0, 1), Err(ec::UNKNOWN_TOPIC_OR_PARTITION));
        let t = s.topic("r").unwrap();
        assert!(t.hosted(0, 1) && !t.hosted(1, 1) && t.hosted(1, 4));
        let back = Snapshot::decode(&s.encode(), 1, 1).unwrap();
        let r = &back.topic("r").unwrap().replication;
        assert_eq!(r[1].replicas, [2, 3, 4]);
        // After a restart nobody leads until the quorum's image says so.
        assert_eq!(r[0].leader, -1);
        assert_eq!(back.route("r", 0, 1), Err(ec::NOT_LEADER_OR_FOLLOWER));
        let partial = "version 2\ntopic t 0123456789abcdef0123456789abcdef 2\n\
                       partition t 0 0 0\npartition t 1 0 0\nreplicas t 0 1,2\n";
        assert!(Snapshot::decode(partial, 1, 1).is_err());
    }

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("web.logs_1-x").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }
}
