//! Server-side partition assignors of the consumer group protocol (KIP-848): `uniform`
//! and `range`, the two Kafka ships. Pure functions from subscriptions and topic
//! metadata to a target assignment; no I/O, no clocks.
//!
//! Topics are named by their id (what ConsumerGroupHeartbeat carries). An assignment is
//! a sorted map from topic id to sorted partitions, so equal assignments compare equal.

use std::collections::{BTreeMap, BTreeSet};

/// A topic id, as the metadata snapshot keeps it.
pub type TopicId = [u8; 16];

/// The partitions one member owns or should own.
pub type Assignment = BTreeMap<TopicId, BTreeSet<i32>>;

/// Kafka's server-side assignor names.
pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";

/// Upper bound on the moves `uniform` makes to even out load (each move lowers the
/// spread, so it ends well before this; the bound keeps a bug from spinning a reactor).
const BALANCE_MOVES_MAX: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    Uniform,
    Range,
}

impl Assignor {
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name {
            UNIFORM => Some(Assignor::Uniform),
            RANGE => Some(Assignor::Range),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => UNIFORM,
            Assignor::Range => RANGE,
        }
    }

    /// The target assignment. `members`: member id to the topic ids it subscribes to;
    /// `topics`: topic id to its partition count; `current`: the previous target, which
    /// `uniform` keeps as far as balance allows (sticky), so fewer partitions move.
    pub fn assign(
        self,
        members: &BTreeMap<String, BTreeSet<TopicId>>,
        topics: &BTreeMap<TopicId, i32>,
        current: &BTreeMap<String, Assignment>,
    ) -> BTreeMap<String, Assignment> {
        match self {
            Assignor::Uniform => uniform(members, topics, current),
            Assignor::Range => range(members, topics),
        }
    }
}

/// Each topic's partitions split into contiguous ranges over the members subscribed to
/// it, in member id order; the first `partitions % members` get one more. Members that
/// subscribe to the same topics get the same partition numbers of each (co-partitioning).
fn range(
    members: &BTreeMap<String, BTreeSet<TopicId>>,
    topics: &BTreeMap<TopicId, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (topic, &count) in topics {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, subs)| subs.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribers.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, m) in subscribers.into_iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            if take == 0 {
                continue;
            }
            let parts = out
                .get_mut(m)
                .expect("every member has an entry")
                .entry(*topic)
                .or_default();
            parts.extend(next..next + take);
            next += take;
        }
    }
    out
}

/// Every subscribed partition to exactly one subscriber, loads as even as the
/// subscriptions allow, keeping current owners where that costs no balance.
fn uniform(
    members: &BTreeMap<String, BTreeSet<TopicId>>,
    topics: &BTreeMap<TopicId, i32>,
    current: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut owned: BTreeMap<String, BTreeSet<(TopicId, i32)>> = members
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    let mut taken: BTreeSet<(TopicId, i32)> = BTreeSet::new();
    // Keep what members had, if they still subscribe and the partition still exists.
    for (m, subs) in members {
        let Some(had) = current.get(m) else { continue };
        for (topic, parts) in had {
            let Some(&count) = topics.get(topic) else {
                continue;
            };
            if !subs.contains(topic) {
                continue;
            }
            for &p in parts.iter().filter(|&&p| p < count) {
                if taken.insert((*topic, p)) {
                    owned.get_mut(m).expect("entry").insert((*topic, p));
                }
            }
        }
    }
    // New partitions go to the least loaded subscriber (ties: member id order).
    for (topic, &count) in topics {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, subs)| subs.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        for p in 0..count.max(0) {
            if taken.contains(&(*topic, p)) {
                continue;
            }
            let m = subscribers
                .iter()
                .min_by_key(|m| owned[**m].len())
                .expect("not empty");
            owned.get_mut(*m).expect("entry").insert((*topic, p));
            taken.insert((*topic, p));
        }
    }
    balance(members, &mut owned);
    owned
        .into_iter()
        .map(|(m, parts)| {
            let mut a = Assignment::new();
            for (t, p) in parts {
                a.entry(t).or_default().insert(p);
            }
            (m, a)
        })
        .collect()
}

/// Moves partitions from a member to one that subscribes to their topic and owns at
/// least two fewer, until no such move exists. Each move lowers the sum of squared
/// loads, so this ends.
fn balance(
    members: &BTreeMap<String, BTreeSet<TopicId>>,
    owned: &mut BTreeMap<String, BTreeSet<(TopicId, i32)>>,
) {
    for _ in 0..BALANCE_MOVES_MAX {
        let mut by_load: Vec<(&String, usize)> = owned.iter().map(|(m, p)| (m, p.len())).collect();
        by_load.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut chosen = None;
        'search: for (from, from_load) in &by_load {
            for (to, to_load) in by_load.iter().rev() {
                if to_load + 2 > *from_load {
                    break;
                }
                let subs = &members[*to];
                if let Some(part) = owned[*from].iter().rev().find(|(t, _)| subs.contains(t)) {
                    chosen = Some(((*from).clone(), (*to).clone(), *part));
                    break 'search;
                }
            }
        }
        let Some((from, to, part)) = chosen else {
            return;
        };
        owned.get_mut(&from).expect("entry").remove(&part);
        owned.get_mut(&to).expect("entry").insert(part);
    }
    tracing::warn!("uniform assignor stopped balancing after {BALANCE_MOVES_MAX} moves");
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: TopicId = [1; 16];
    const B: TopicId = [2; 16];

    fn subs(list: &[(&str, &[TopicId])]) -> BTreeMap<String, BTreeSet<TopicId>> {
        list.iter()
            .map(|(m, t)| (m.to_string(), t.iter().copied().collect()))
            .collect()
    }

    fn parts(a: &BTreeMap<String, Assignment>, m: &str, t: TopicId) -> Vec<i32> {
        a[m].get(&t)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    fn each_once(a: &BTreeMap<String, Assignment>, topics: &BTreeMap<TopicId, i32>) {
        let mut seen = BTreeSet::new();
        for asg in a.values() {
            for (t, ps) in asg {
                for p in ps {
                    assert!(seen.insert((*t, *p)), "{t:?}-{p} twice");
                }
            }
        }
        let total: i32 = topics.values().sum();
        assert_eq!(seen.len(), total as usize);
    }

    #[test]
    fn range_gives_contiguous_ranges_in_member_order() {
        let topics = BTreeMap::from([(A, 5), (B, 2)]);
        let members = subs(&[("m1", &[A, B]), ("m2", &[A, B])]);
        let a = Assignor::Range.assign(&members, &topics, &BTreeMap::new());
        assert_eq!(parts(&a, "m1", A), vec![0, 1, 2]);
        assert_eq!(parts(&a, "m2", A), vec![3, 4]);
        assert_eq!(parts(&a, "m1", B), vec![0]);
        assert_eq!(parts(&a, "m2", B), vec![1]);
        each_once(&a, &topics);
    }

    #[test]
    fn uniform_balances_and_keeps_current_owners() {
        let topics = BTreeMap::from([(A, 4)]);
        let two = subs(&[("m1", &[A]), ("m2", &[A])]);
        let first = Assignor::Uniform.assign(&two, &topics, &BTreeMap::new());
        each_once(&first, &topics);
        assert_eq!(first["m1"][&A].len(), 2);
        let three = subs(&[("m1", &[A]), ("m2", &[A]), ("m3", &[A])]);
        let second = Assignor::Uniform.assign(&three, &topics, &first);
        each_once(&second, &topics);
        let loads: Vec<usize> = second
            .values()
            .map(|a| a.get(&A).map_or(0, |s| s.len()))
            .collect();
        assert_eq!(loads.iter().sum::<usize>(), 4);
        assert!(loads.iter().all(|&l| (1..=2).contains(&l)), "{loads:?}");
        // Sticky: at most one partition moved (to the new member).
        let moved = ["m1", "m2"]
            .iter()
            .map(|m| {
                first[*m][&A]
                    .difference(second[*m].get(&A).unwrap_or(&BTreeSet::new()))
                    .count()
            })
            .sum::<usize>();
        assert_eq!(moved, 1);
    }

    #[test]
    fn uniform_respects_heterogeneous_subscriptions() {
        let topics = BTreeMap::from([(A, 3), (B, 3)]);
        let members = subs(&[("m1", &[A]), ("m2", &[A, B])]);
        let a = Assignor::Uniform.assign(&members, &topics, &BTreeMap::new());
        each_once(&a, &topics);
        assert!(!a["m1"].contains_key(&B));
        assert_eq!(
            a["m1"][&A].len() + a["m2"].get(&A).map_or(0, |s| s.len()),
            3
        );
        assert_eq!(a["m1"][&A].len(), 3);
    }

    #[test]
    fn partitions_of_unknown_or_unsubscribed_topics_are_dropped() {
        let topics = BTreeMap::from([(A, 2)]);
        let current = BTreeMap::from([(
            "m1".to_string(),
            Assignment::from([(A, BTreeSet::from([0, 1, 7])), (B, BTreeSet::from([0]))]),
        )]);
        let members = subs(&[("m1", &[A])]);
        let a = Assignor::Uniform.assign(&members, &topics, &current);
        assert_eq!(parts(&a, "m1", A), vec![0, 1]);
        assert!(!a["m1"].contains_key(&B));
    }

    #[test]
    fn names_round_trip() {
        for a in [Assignor::Uniform, Assignor::Range] {
            assert_eq!(Assignor::from_name(a.name()), Some(a));
        }
        assert_eq!(Assignor::from_name("sticky"), None);
    }
}
