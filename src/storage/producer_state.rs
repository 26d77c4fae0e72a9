//! Idempotent producer state of one partition: for each producer id, its epoch and the
//! last [`BATCHES_PER_PRODUCER_MAX`] batches it wrote, so a retried batch is recognised
//! and answered with its original offsets instead of being written twice.
//!
//! Rules (Kafka's): a higher epoch resets the producer and must start at sequence 0; a
//! lower epoch is fenced; within an epoch a batch equal to one of the remembered ones is
//! a duplicate, otherwise it must continue right after the last one (sequences wrap
//! from i32::MAX to 0). A producer never seen before may start at any sequence.
//!
//! The state lives in memory. `PartitionLog` writes it to a snapshot file (see
//! `snapshot`) at each segment roll and at close; recovery loads the newest valid
//! snapshot and replays only the batch headers after its offset.

use std::collections::{HashMap, VecDeque};

use super::batch::{increment_sequence, BatchHeader};
use super::StorageError;

/// Kafka remembers the last 5 batches per producer (max.in.flight.requests with
/// idempotence).
pub const BATCHES_PER_PRODUCER_MAX: usize = 5;

/// A batch written by an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first.
    pub batches: VecDeque<BatchMeta>,
}

impl ProducerEntry {
    fn push(&mut self, meta: BatchMeta) {
        if self.batches.len() == BATCHES_PER_PRODUCER_MAX {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
    }
}

/// What to do with a batch after the sequence check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Append it (and then [`ProducerState::record`] it).
    Append,
    /// Already in the log at these offsets: answer with them, append nothing.
    Duplicate(BatchMeta),
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Every producer, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(&id, entry)| (id, entry))
    }

    /// Sets a producer's entry, as loaded from a snapshot. At most
    /// [`BATCHES_PER_PRODUCER_MAX`] batches are kept (the newest).
    pub fn insert(&mut self, producer_id: i64, mut entry: ProducerEntry) {
        while entry.batches.len() > BATCHES_PER_PRODUCER_MAX {
            entry.batches.pop_front();
        }
        self.producers.insert(producer_id, entry);
    }

    /// Checks `header` against the state, treating `pending` (batches of the same
    /// request already accepted but not yet recorded) as recorded. Non-idempotent
    /// batches (producerId < 0) always pass.
    pub fn check(
        &self,
        header: &BatchHeader,
        pending: &[(BatchHeader, i64)],
    ) -> Result<Check, StorageError> {
        if header.producer_id < 0 {
            return Ok(Check::Append);
        }
        let mut entry = match self.producers.get(&header.producer_id) {
            Some(entry) => entry.clone(),
            None if pending.is_empty() => return Ok(Check::Append),
            None => ProducerEntry::default(),
        };
        let mut known = self.producers.contains_key(&header.producer_id);
        for (earlier, base_offset) in pending {
            if earlier.producer_id == header.producer_id {
                apply(&mut entry, earlier, *base_offset);
                known = true;
            }
        }
        if !known {
            return Ok(Check::Append);
        }
        check_entry(&entry, header)
    }

    /// Records an appended batch (also used by recovery to load the log's batches).
    pub fn record(&mut self, header: &BatchHeader, base_offset: i64) {
        if header.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        apply(entry, header, base_offset);
    }
}

fn apply(entry: &mut ProducerEntry, header: &BatchHeader, base_offset: i64) {
    if header.producer_epoch != entry.epoch {
        entry.epoch = header.producer_epoch;
        entry.batches.clear();
    }
    entry.push(BatchMeta {
        first_seq: header.base_sequence,
        last_seq: header.last_sequence(),
        base_offset,
        last_offset: base_offset + header.last_offset_delta as i64,
    });
}

fn check_entry(entry: &ProducerEntry, header: &BatchHeader) -> Result<Check, StorageError> {
    let (pid, epoch, seq) = (
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
    );
    if epoch < entry.epoch {
        return Err(StorageError::InvalidProducerEpoch(format!(
            "producer {pid} sent epoch {epoch}, but epoch {} is current",
            entry.epoch
        )));
    }
    if epoch > entry.epoch {
        if seq != 0 {
            return Err(StorageError::OutOfOrderSequence(format!(
                "producer {pid} started epoch {epoch} at sequence {seq}, expected 0"
            )));
        }
        return Ok(Check::Append);
    }
    let last_seq = header.last_sequence();
    if let Some(dup) = entry
        .batches
        .iter()
        .find(|b| b.first_seq == seq && b.last_seq == last_seq)
    {
        return Ok(Check::Duplicate(*dup));
    }
    let Some(last) = entry.batches.back() else {
        return Ok(Check::Append);
    };
    let expected = increment_sequence(last.last_seq, 1);
    if seq != expected {
        return Err(StorageError::OutOfOrderSequence(format!(
            "producer {pid} epoch {epoch} sent sequence {seq}, expected {expected}"
        )));
    }
    Ok(Check::Append)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::storage::testutil::header as h;

    #[test]
    fn sequences_duplicates_and_epochs() {
        let mut state = ProducerState::new();
        let b0 = h(1, 0, 0, 3);
        assert_eq!(state.check(&b0, &[]).unwrap(), Check::Append);
        state.record(&b0, 10);
        let b1 = h(1, 0, 3, 2);
        assert_eq!(state.check(&b1, &[]).unwrap(), Check::Append);
        state.record(&b1, 13);
        assert_eq!(
            state.check(&b0, &[]).unwrap(),
            Check::Duplicate(BatchMeta {
                first_seq: 0,
                last_seq: 2,
                base_offset: 10,
                last_offset: 12
            })
        );
        assert!(matches!(
            state.check(&h(1, 0, 6, 1), &[]),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        // Fenced epoch, and a new epoch must start at 0.
        state.record(&h(1, 2, 0, 1), 15);
        assert!(matches!(
            state.check(&h(1, 1, 1, 1), &[]),
            Err(StorageError::InvalidProducerEpoch(_))
        ));
        assert!(matches!(
            state.check(&h(1, 3, 5, 1), &[]),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        assert_eq!(state.check(&h(1, 3, 0, 1), &[]).unwrap(), Check::Append);
        // Unknown producers and non-idempotent batches pass.
        assert_eq!(state.check(&h(9, 4, 77, 1), &[]).unwrap(), Check::Append);
        assert_eq!(state.check(&h(-1, -1, -1, 1), &[]).unwrap(), Check::Append);
    }

    #[test]
    fn pending_batches_of_the_same_request_count() {
        let state = ProducerState::new();
        let first = h(5, 0, 0, 2);
        assert_eq!(
            state.check(&h(5, 0, 2, 1), &[(first, 0)]).unwrap(),
            Check::Append
        );
        assert!(matches!(
            state.check(&h(5, 0, 3, 1), &[(first, 0)]),
            Err(StorageError::OutOfOrderSequence(_))
        ));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut state = ProducerState::new();
        let mut seq = i32::MAX - 2;
        for i in 0..7 {
            let b = h(2, 0, seq, 1);
            assert_eq!(state.check(&b, &[]).unwrap(), Check::Append, "batch {i}");
            state.record(&b, i);
            seq = increment_sequence(seq, 1);
        }
        assert_eq!(
            state.get(2).unwrap().batches.len(),
            BATCHES_PER_PRODUCER_MAX
        );
        // The oldest two fell out: a retry of them is now out of order.
        assert!(matches!(
            state.check(&h(2, 0, i32::MAX - 2, 1), &[]),
            Err(StorageError::OutOfOrderSequence(_))
        ));
        assert!(matches!(
            state.check(&h(2, 0, 3, 1), &[]).unwrap(),
            Check::Duplicate(BatchMeta { base_offset: 6, .. })
        ));
        assert_eq!(seq, 4);
    }
}
