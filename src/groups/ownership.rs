//! Which `__consumer_offsets` partitions a shard coordinates, and so which groups it
//! may serve.
//!
//! A single broker (or a cluster member whose offsets topic predates replication and
//! has no replica lists) coordinates every partition it owns, replayed at start-up. In
//! a cluster with a replicated offsets topic, a group's coordinator is the leader of
//! its partition, as in Kafka: when this broker becomes leader, the owning shard loads
//! the partition (replays it to the written end, answering
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile); when it stops leading, the shard forgets
//! the partition's groups and answers NOT_COORDINATOR, so clients look the
//! coordinator up again.
//!
//! ```text
//!   (not led) ──leader here──▶ Loading{epoch} ──replayed──▶ Loaded{epoch}
//!       ▲                          │                             │
//!       └───── leader elsewhere, or a new leader epoch (reload) ─┘
//! ```

use std::collections::HashMap;

use crate::protocol::errors as ec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    Loading,
    Loaded,
}

/// The led partitions of a shard's replicated offsets topic, with the leader epoch
/// each was loaded for.
#[derive(Debug, Default)]
pub struct Ownership {
    partitions: HashMap<i32, (i32, Load)>,
}

/// What a change of leadership asks of the shard.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handover {
    /// (partition, leader epoch) to load.
    pub load: Vec<(i32, i32)>,
    /// Partitions whose groups must be forgotten (no longer led, or led at a new
    /// epoch and about to be loaded again).
    pub unload: Vec<i32>,
}

impl Ownership {
    /// Whether a group of `partition` may be served now.
    pub fn check(&self, partition: i32) -> Result<(), i16> {
        match self.partitions.get(&partition) {
            Some((_, Load::Loaded)) => Ok(()),
            Some((_, Load::Loading)) => Err(ec::COORDINATOR_LOAD_IN_PROGRESS),
            None => Err(ec::NOT_COORDINATOR),
        }
    }

    /// The leader epoch `partition` is led (and loaded or loading) at.
    pub fn epoch(&self, partition: i32) -> Option<i32> {
        self.partitions.get(&partition).map(|(epoch, _)| *epoch)
    }

    /// Whether the load of `partition` at `epoch` is still wanted.
    pub fn is_loading(&self, partition: i32, epoch: i32) -> bool {
        self.partitions.get(&partition) == Some(&(epoch, Load::Loading))
    }

    /// Takes the led partitions (partition → leader epoch) as the topic table now has
    /// them; returns what to load and what to unload.
    pub fn follow(&mut self, led: &HashMap<i32, i32>) -> Handover {
        let mut handover = Handover::default();
        self.partitions.retain(|p, (epoch, _)| {
            let keep = led.get(p) == Some(epoch);
            if !keep {
                handover.unload.push(*p);
            }
            keep
        });
        for (&p, &epoch) in led {
            if let std::collections::hash_map::Entry::Vacant(e) = self.partitions.entry(p) {
                e.insert((epoch, Load::Loading));
                handover.load.push((p, epoch));
            }
        }
        handover.unload.sort_unstable();
        handover.load.sort_unstable();
        handover
    }

    /// The load of `partition` at `epoch` finished; false when it was not wanted any
    /// more (leadership moved on meanwhile).
    pub fn finish_load(&mut self, partition: i32, epoch: i32) -> bool {
        match self.partitions.get_mut(&partition) {
            Some(entry) if *entry == (epoch, Load::Loading) => {
                entry.1 = Load::Loaded;
                true
            }
            _ => false,
        }
    }

    /// A failed load gives the partition up, so the next leadership change (or the
    /// next `follow` with it led) tries again.
    pub fn abandon(&mut self, partition: i32, epoch: i32) {
        if self.is_loading(partition, epoch) {
            self.partitions.remove(&partition);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn led(pairs: &[(i32, i32)]) -> HashMap<i32, i32> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn partitions_load_serve_and_move_away() {
        let mut o = Ownership::default();
        assert_eq!(o.check(3), Err(ec::NOT_COORDINATOR));
        let h = o.follow(&led(&[(3, 1), (5, 2)]));
        assert_eq!(h.load, vec![(3, 1), (5, 2)]);
        assert!(h.unload.is_empty());
        assert_eq!(o.check(3), Err(ec::COORDINATOR_LOAD_IN_PROGRESS));
        assert!(o.finish_load(3, 1));
        assert_eq!(o.check(3), Ok(()));
        // The same leadership again changes nothing.
        assert_eq!(o.follow(&led(&[(3, 1), (5, 2)])), Handover::default());
        // 5 moves elsewhere while loading: its load finishes unwanted.
        let h = o.follow(&led(&[(3, 1)]));
        assert_eq!(h.unload, vec![5]);
        assert!(!o.finish_load(5, 2));
        assert_eq!(o.check(5), Err(ec::NOT_COORDINATOR));
    }

    #[test]
    fn a_new_leader_epoch_reloads() {
        let mut o = Ownership::default();
        o.follow(&led(&[(0, 4)]));
        assert!(o.finish_load(0, 4));
        let h = o.follow(&led(&[(0, 6)]));
        assert_eq!(h.unload, vec![0]);
        assert_eq!(h.load, vec![(0, 6)]);
        assert!(!o.finish_load(0, 4), "the old epoch's load is stale");
        assert!(o.is_loading(0, 6));
        o.abandon(0, 6);
        assert_eq!(o.check(0), Err(ec::NOT_COORDINATOR));
    }
}
