//! Replica placement for new partitions, as Kafka assigns them
//! (`kafka-topics --create` without `--replica-assignment`): the active controller
//! chooses, the choice goes into the command, and every node applies the same lists.
//!
//! Brokers are ordered by id; with racks, the order alternates racks (r1, r2, r3, r1,
//! ...) so that consecutive brokers sit in different racks. Partition p's first replica
//! (its preferred leader) is broker `(p + start) % n`; the others follow at a shift
//! that grows by one every n partitions, which spreads followers as well as leaders.
//! With racks, a replica is skipped to a later broker while its rack already holds one
//! of the partition's replicas and some rack does not yet (Kafka's rule), so replicas
//! span min(rf, racks) racks.

use std::collections::{BTreeMap, BTreeSet};

/// A broker as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub node_id: i32,
    pub rack: Option<String>,
}

/// Replica lists for `partitions` new partitions of replication factor `rf`, numbered
/// from `first_partition`. `start` and `shift` are the controller's random draws
/// (any values; they are reduced modulo the broker count).
pub fn assign(
    brokers: &[Candidate],
    first_partition: i32,
    partitions: i32,
    rf: i16,
    start: usize,
    shift: usize,
) -> Result<Vec<Vec<i32>>, String> {
    if rf < 1 {
        return Err(format!(
            "Replication factor must be larger than 0, was {rf}"
        ));
    }
    let n = brokers.len();
    if rf as usize > n {
        return Err(format!(
            "Replication factor: {rf} larger than available brokers: {n}."
        ));
    }
    let racked = brokers.iter().filter(|b| b.rack.is_some()).count();
    if racked != 0 && racked != n {
        return Err(
            "Not all brokers have rack information for replica rack aware assignment".into(),
        );
    }
    let order = if racked == n {
        rack_alternated(brokers)
    } else {
        let mut ids: Vec<i32> = brokers.iter().map(|b| b.node_id).collect();
        ids.sort_unstable();
        ids
    };
    let rack_of: BTreeMap<i32, Option<&str>> = brokers
        .iter()
        .map(|b| (b.node_id, b.rack.as_deref()))
        .collect();
    let racks = rack_of.values().flatten().collect::<BTreeSet<_>>().len();
    let start = start % n;
    let mut shift = shift % n;
    let mut out = Vec::with_capacity(partitions.max(0) as usize);
    for i in 0..partitions.max(0) as usize {
        let p = first_partition as usize + i;
        if p > 0 && p.is_multiple_of(n) {
            shift += 1;
        }
        let first = (p + start) % n;
        let mut replicas = vec![order[first]];
        let mut used_racks: BTreeSet<&str> = rack_of[&order[first]].into_iter().collect();
        let mut k = 0;
        while replicas.len() < rf as usize {
            let candidate = order[follower_index(first, k, shift, n)];
            k += 1;
            if replicas.contains(&candidate) {
                continue;
            }
            let rack = rack_of[&candidate];
            let rack_taken = rack.is_some_and(|r| used_racks.contains(r));
            if rack_taken && used_racks.len() < racks && k < 2 * n * n {
                continue;
            }
            replicas.push(candidate);
            used_racks.extend(rack);
        }
        out.push(replicas);
    }
    Ok(out)
}

/// Kafka's `replicaIndex`: the k-th follower of a partition whose first replica is at
/// `first`, never `first` itself.
fn follower_index(first: usize, k: usize, shift: usize, n: usize) -> usize {
    if n == 1 {
        return first;
    }
    let step = 1 + (shift + k) % (n - 1);
    (first + step) % n
}

/// Broker ids ordered so that consecutive ones are in different racks when possible:
/// the first of each rack (racks by name), then the second of each, and so on.
fn rack_alternated(brokers: &[Candidate]) -> Vec<i32> {
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for b in brokers {
        by_rack
            .entry(b.rack.as_deref().unwrap_or(""))
            .or_default()
            .push(b.node_id);
    }
    for ids in by_rack.values_mut() {
        ids.sort_unstable();
    }
    let deepest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..deepest)
        .flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(ids: &[i32]) -> Vec<Candidate> {
        ids.iter()
            .map(|&node_id| Candidate {
                node_id,
                rack: None,
            })
            .collect()
    }

    fn racked(pairs: &[(i32, &str)]) -> Vec<Candidate> {
        pairs
            .iter()
            .map(|&(node_id, rack)| Candidate {
                node_id,
                rack: Some(rack.into()),
            })
            .collect()
    }

    #[test]
    fn leaders_and_followers_spread_evenly() {
        let brokers = plain(&[3, 1, 2]);
        let a = assign(&brokers, 0, 6, 3, 0, 0).unwrap();
        for replicas in &a {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3, "{a:?}");
        }
        let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
        for r in &a {
            *leaders.entry(r[0]).or_default() += 1;
        }
        assert_eq!(leaders.values().collect::<Vec<_>>(), [&2, &2, &2], "{a:?}");
        assert_eq!(a[0], [1, 2, 3]);
        // The same draws give the same lists: the command is what every node applies.
        assert_eq!(assign(&brokers, 0, 6, 3, 0, 0).unwrap(), a);
    }

    #[test]
    fn replicas_span_racks() {
        let brokers = racked(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
        for start in 0..6 {
            for shift in 0..6 {
                let a = assign(&brokers, 0, 12, 3, start, shift).unwrap();
                for replicas in &a {
                    let racks: BTreeSet<i32> = replicas.iter().map(|id| (id + 1) / 2).collect();
                    assert_eq!(racks.len(), 3, "start {start} shift {shift}: {a:?}");
                }
            }
        }
        // Two racks, three replicas: both racks used, no broker twice.
        let two = racked(&[(1, "a"), (2, "a"), (3, "b")]);
        for replicas in assign(&two, 0, 5, 3, 1, 2).unwrap() {
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3);
        }
    }

    #[test]
    fn impossible_requests_say_why() {
        assert!(assign(&plain(&[1, 2]), 0, 1, 3, 0, 0)
            .unwrap_err()
            .contains("larger than available brokers: 2"));
        assert!(assign(&plain(&[1]), 0, 1, 0, 0, 0).is_err());
        let mixed = vec![
            Candidate {
                node_id: 1,
                rack: Some("a".into()),
            },
            Candidate {
                node_id: 2,
                rack: None,
            },
        ];
        assert!(assign(&mixed, 0, 1, 1, 0, 0).unwrap_err().contains("rack"));
        assert_eq!(
            assign(&plain(&[7]), 0, 3, 1, 5, 9).unwrap(),
            [[7], [7], [7]]
        );
    }
}
