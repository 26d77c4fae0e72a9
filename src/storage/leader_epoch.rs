//! The leader epoch cache of one partition: at which offset each leader epoch began,
//! and its `leader-epoch-checkpoint` file (Kafka's name and format):
//!
//! ```text
//! 0            version
//! 2            entry count
//! 0 0          epoch, start offset of its first batch
//! 3 1200
//! ```
//!
//! OffsetForLeaderEpoch answers from it ("where did epoch e end on this replica?"); a
//! follower or a former leader truncates exactly the divergent suffix with that answer.
//! Epochs and their start offsets only grow; truncating the log's end drops the entries
//! that start past it, and moving the log start shifts the first kept entry up to it.

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;
pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
const CHECKPOINT_VERSION: u32 = 0;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    /// (epoch, start offset), both strictly increasing.
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// Records that `epoch` begins at `start_offset` (a batch of that epoch was appended
    /// there). Returns whether the cache changed: an epoch not above the latest is
    /// already known (or stale) and ignored. A negative epoch (a batch from before leader
    /// epochs) is never recorded.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| epoch <= latest) {
            return false;
        }
        // A later epoch starting at or before an earlier one's start replaces it: that
        // epoch's data was truncated away.
        self.entries.retain(|&(_, start)| start < start_offset);
        self.entries.push((epoch, start_offset));
        true
    }

    /// Records that a replicated batch of `epoch` begins at `start_offset`, as Kafka's
    /// follower does: the leader's batches are the truth, so entries they contradict
    /// (an epoch not below `epoch`, or one starting at or past `start_offset`: an
    /// epoch this replica began as leader but wrote nothing in) give way. Returns
    /// whether the cache changed. A negative epoch is never recorded.
    pub fn assign_replicated(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || self.latest_epoch() == Some(epoch) {
            return false;
        }
        self.entries
            .retain(|&(e, start)| e < epoch && start < start_offset);
        self.entries.push((epoch, start_offset));
        true
    }

    /// The end of `requested` epoch on this replica, with the epoch it resolves to, as
    /// Kafka answers OffsetForLeaderEpoch: the latest epoch ends at the log end offset;
    /// an earlier one at the start of the next higher epoch, with the largest known epoch
    /// at or below it; an epoch above every known one, or an empty cache, is undefined.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        let undefined = (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        if requested == UNDEFINED_EPOCH {
            return undefined;
        }
        match self.latest_epoch() {
            None => return undefined,
            Some(latest) if latest == requested => return (requested, log_end_offset),
            _ => {}
        }
        let Some(&(_, higher_start)) = self.entries.iter().find(|&&(e, _)| e > requested) else {
            return undefined;
        };
        match self.entries.iter().rev().find(|&&(e, _)| e <= requested) {
            Some(&(floor, _)) => (floor, higher_start),
            None => (requested, higher_start),
        }
    }

    /// The log was truncated to end before `end_offset`: epochs starting there or later
    /// are gone. Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(_, start)| start < end_offset);
        self.entries.len() != before
    }

    /// The log now starts at `start_offset`: entries wholly below it go, and the epoch
    /// that covers it is kept, starting there. Returns whether the cache changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let covering = self
            .entries
            .partition_point(|&(_, start)| start <= start_offset);
        if covering == 0 {
            return false;
        }
        let (epoch, start) = self.entries[covering - 1];
        if covering == 1 && start == start_offset {
            return false;
        }
        self.entries.drain(..covering - 1);
        self.entries[0] = (epoch, start_offset);
        true
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{CHECKPOINT_VERSION}\n{}\n", self.entries.len());
        for (epoch, start) in &self.entries {
            out.push_str(&format!("{epoch} {start}\n"));
        }
        out.into_bytes()
    }

    /// Parses a checkpoint file; `None` unless it is whole and well-ordered.
    pub fn decode(data: &[u8]) -> Option<LeaderEpochCache> {
        let text = std::str::from_utf8(data).ok()?;
        let mut lines = text.lines();
        if lines.next()?.trim().parse::<u32>().ok()? != CHECKPOINT_VERSION {
            return None;
        }
        let count: usize = lines.next()?.trim().parse().ok()?;
        let mut cache = LeaderEpochCache::default();
        for _ in 0..count {
            let mut fields = lines.next()?.split_whitespace();
            let epoch: i32 = fields.next()?.parse().ok()?;
            let start: i64 = fields.next()?.parse().ok()?;
            if fields.next().is_some() || !cache.assign(epoch, start) {
                return None;
            }
        }
        if cache.entries.len() != count || lines.any(|l| !l.trim().is_empty()) {
            return None;
        }
        Some(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache {
            entries: entries.to_vec(),
        }
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_increasing() {
        let mut c = LeaderEpochCache::default();
        assert!(c.assign(0, 0));
        assert!(!c.assign(0, 50), "an epoch already known");
        assert!(c.assign(2, 100));
        assert!(!c.assign(1, 150), "a stale epoch");
        assert!(!c.assign(-1, 200));
        assert_eq!(c.entries(), [(0, 0), (2, 100)]);
        // Epoch 5 begins at 100: epoch 2 never kept any data.
        assert!(c.assign(5, 100));
        assert_eq!(c.entries(), [(0, 0), (5, 100)]);
    }

    #[test]
    fn replicated_epochs_replace_the_entries_they_contradict() {
        let mut c = cache(&[(0, 0), (3, 10)]);
        assert!(!c.assign_replicated(3, 12), "the same epoch goes on");
        assert!(c.assign_replicated(4, 12));
        // This replica led epoch 6 without writing; the new leader's data is epoch 5.
        assert!(c.assign(6, 20));
        assert!(c.assign_replicated(5, 20));
        assert_eq!(c.entries(), [(0, 0), (3, 10), (4, 12), (5, 20)]);
        assert!(!c.assign_replicated(-1, 30));
    }

    #[test]
    fn end_offsets_as_kafka_answers_them() {
        let c = cache(&[(1, 10), (3, 40), (4, 70)]);
        assert_eq!(c.end_offset_for(4, 95), (4, 95), "latest: the log end");
        assert_eq!(c.end_offset_for(3, 95), (3, 70));
        assert_eq!(
            c.end_offset_for(2, 95),
            (1, 40),
            "unknown epoch: its floor, ended by the next"
        );
        assert_eq!(c.end_offset_for(0, 95), (0, 10), "below the first epoch");
        assert_eq!(c.end_offset_for(5, 95), (UNDEFINED_EPOCH, UNDEFINED_OFFSET));
        assert_eq!(
            c.end_offset_for(UNDEFINED_EPOCH, 95),
            (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        );
        assert_eq!(
            LeaderEpochCache::default().end_offset_for(0, 95),
            (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        );
    }

    #[test]
    fn truncation_at_either_end() {
        let mut c = cache(&[(1, 10), (3, 40), (4, 70)]);
        assert!(c.truncate_from_end(70));
        assert_eq!(c.entries(), [(1, 10), (3, 40)]);
        assert!(!c.truncate_from_end(71));
        assert!(c.truncate_from_start(55));
        assert_eq!(c.entries(), [(3, 55)]);
        assert!(!c.truncate_from_start(55));
        assert!(
            !c.truncate_from_start(20),
            "below the first entry: nothing to do"
        );
        let mut c = cache(&[(1, 10), (3, 40)]);
        assert!(c.truncate_from_start(40));
        assert_eq!(c.entries(), [(3, 40)]);
    }

    #[test]
    fn checkpoint_round_trips_and_rejects_damage() {
        let c = cache(&[(0, 0), (3, 1200)]);
        let data = c.encode();
        assert_eq!(data, b"0\n2\n0 0\n3 1200\n");
        assert_eq!(LeaderEpochCache::decode(&data), Some(c));
        for bad in [
            &b"1\n1\n0 0\n"[..],
            b"0\n2\n0 0\n",
            b"0\n2\n3 5\n1 9\n",
            b"0\n1\n0 x\n",
            b"0\n1\n0 0 7\n",
            b"",
        ] {
            assert_eq!(LeaderEpochCache::decode(bad), None, "{bad:?}");
        }
    }
}
