//! Idempotent producer state of one partition: for each producer id, its epoch and the
//! last [`BATCHES_PER_PRODUCER_MAX`] batches it wrote, so a retried batch is recognised
//! and answered with its original offsets instead of being written twice.
//!
//! Rules (Kafka's): a higher epoch resets the producer and must start at sequence 0; a
//! lower epoch is fenced; within an epoch a batch equal to one of the remembered ones is
//! a duplicate, otherwise it must continue right after the last one (sequences wrap
//! from i32::MAX to 0). A producer never seen before may start at any sequence.
//!
//! Transactions: a producer's transactional batch opens its transaction in the
//! partition (the entry remembers the transaction's first offset) until a control batch
//! (COMMIT or ABORT marker) closes it; the smallest open first offset bounds the last
//! stable offset (`first_unstable_offset`). Aborted transactions are kept as
//! (producer, first offset, marker offset) for read_committed fetches
//! (`aborted_overlapping`), until retention passes them (`prune_aborted`).
//!
//! Expiry: a producer with no open transaction whose newest batch timestamp is
//! `producer.id.expiration.ms` old is forgotten (`expire`, Kafka's
//! `removeExpiredProducers`); without it every idempotent producer that ever wrote to a
//! partition would be kept, in memory and in every snapshot, for the partition's life.
//! A producer that comes back after that is a new one to this partition (any sequence
//! is accepted), as in Kafka.
//!
//! The state lives in memory. `PartitionLog` writes it to a snapshot file (see
//! `snapshot`) at each segment roll and at close; recovery loads the newest valid
//! snapshot and replays only the batches after its offset (`record_batch`).

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
    /// The first offset of the producer's open transaction in this partition.
    pub txn_first_offset: Option<i64>,
    /// The newest batch timestamp seen from the producer (Kafka's `lastTimestamp`):
    /// `expire` forgets the producer `producer.id.expiration.ms` after it.
    pub last_timestamp_ms: i64,
}

/// A transaction aborted in this partition: read_committed consumers skip the
/// producer's batches from `first_offset` up to the marker at `last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Kafka's control record types (the key of a control batch's one record).
pub const CONTROL_TYPE_ABORT: i16 = 0;
pub const CONTROL_TYPE_COMMIT: i16 = 1;

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
    /// By marker offset, ascending (markers are recorded in log order).
    aborted: Vec<AbortedTxn>,
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

    /// Heap bytes this state holds, estimated from its sizes (map slots at capacity,
    /// each producer's batch ring, the aborted list): for the memory gauges.
    pub fn heap_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(i64, ProducerEntry)>() + 1;
        let batches: usize = self.producers.values().map(|e| e.batches.capacity()).sum();
        self.producers.capacity() * slot
            + batches * std::mem::size_of::<BatchMeta>()
            + self.aborted.capacity() * std::mem::size_of::<AbortedTxn>()
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

    /// Records an appended data batch (also used by recovery to load the log's
    /// batches). Control batches go through `record_batch` or `record_marker`.
    pub fn record(&mut self, header: &BatchHeader, base_offset: i64) {
        if header.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        apply(entry, header, base_offset);
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(header.max_timestamp);
        if header.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(base_offset);
        }
    }

    /// Records a batch as stored at `base_offset` (`batch` its bytes): a data batch as
    /// `record` does, a control batch as the marker its record says.
    pub fn record_batch(&mut self, header: &BatchHeader, base_offset: i64, batch: &[u8]) {
        if !header.is_control() {
            return self.record(header, base_offset);
        }
        let abort = control_type(header, batch) == Some(CONTROL_TYPE_ABORT);
        self.record_marker(
            header.producer_id,
            header.producer_epoch,
            base_offset,
            abort,
        );
    }

    /// A COMMIT or ABORT marker at `offset` ends the producer's open transaction here.
    /// A marker of a newer epoch (the coordinator fenced the producer) starts that epoch.
    pub fn record_marker(&mut self, producer_id: i64, epoch: i16, offset: i64, abort: bool) {
        if producer_id < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                // A marker carries no producer timestamp: its expiry clock starts now.
                last_timestamp_ms: crate::util::now_ms(),
                ..ProducerEntry::default()
            });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        let first = entry.txn_first_offset.take();
        if let (true, Some(first_offset)) = (abort, first) {
            self.aborted.push(AbortedTxn {
                producer_id,
                first_offset,
                last_offset: offset,
            });
        }
    }

    /// Whether a marker from (producer, epoch) is acceptable: not from a fenced epoch.
    pub fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<(), StorageError> {
        match self.producers.get(&producer_id) {
            Some(entry) if epoch < entry.epoch => Err(StorageError::InvalidProducerEpoch(format!(
                "transaction marker of producer {producer_id} has epoch {epoch}, but epoch {} is current",
                entry.epoch
            ))),
            _ => Ok(()),
        }
    }

    /// The first offset of the oldest open transaction, if any: the last stable offset
    /// is at most this.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers
            .values()
            .filter_map(|e| e.txn_first_offset)
            .min()
    }

    /// Aborted transactions with data in `[from, upto)`, oldest marker first.
    pub fn aborted_overlapping(&self, from: i64, upto: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < upto)
            .copied()
            .collect()
    }

    /// Every aborted transaction still kept, oldest marker first (snapshots).
    pub fn aborted(&self) -> &[AbortedTxn] {
        &self.aborted
    }

    /// Adds aborted transactions loaded from a snapshot (in marker order).
    pub fn extend_aborted(&mut self, aborted: impl IntoIterator<Item = AbortedTxn>) {
        self.aborted.extend(aborted);
    }

    /// Forgets the producers with no open transaction whose newest batch timestamp is
    /// `expiration_ms` or more before `now_ms` (`producer.id.expiration.ms`); returns
    /// their ids.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> Vec<i64> {
        let expired: Vec<i64> = self
            .producers
            .iter()
            .filter(|(_, e)| {
                e.txn_first_offset.is_none()
                    && now_ms.saturating_sub(e.last_timestamp_ms) >= expiration_ms
            })
            .map(|(&id, _)| id)
            .collect();
        for id in &expired {
            self.producers.remove(id);
        }
        if !expired.is_empty() && self.producers.capacity() > 2 * self.producers.len() + 16 {
            // A map only grows: give back the slots of a burst of producers now gone.
            self.producers.shrink_to_fit();
        }
        expired
    }

    /// Forgets `producer_id` (it expired in the other copy of the state).
    pub fn remove(&mut self, producer_id: i64) {
        self.producers.remove(&producer_id);
    }

    /// Forgets aborted transactions wholly below `log_start_offset` (retention deleted
    /// their data).
    pub fn prune_aborted(&mut self, log_start_offset: i64) {
        let below = self
            .aborted
            .partition_point(|a| a.last_offset < log_start_offset);
        self.aborted.drain(..below);
    }
}

/// The type of a control batch's marker (its one record's key: version, type).
pub fn control_type(header: &BatchHeader, batch: &[u8]) -> Option<i16> {
    const RECORDS_AT: usize = 61;
    let records =
        super::records::parse_records(batch.get(RECORDS_AT..)?, header.records_count).ok()?;
    let key = records.first()?.key?;
    (key.len() >= 4).then(|| i16::from_be_bytes([key[2], key[3]]))
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
    fn transactions_open_close_and_aborts_are_kept() {
        let mut state = ProducerState::new();
        let mut t = h(1, 0, 0, 2);
        t.attributes |= 0x10;
        state.record(&t, 10);
        let mut t2 = h(2, 0, 0, 1);
        t2.attributes |= 0x10;
        state.record(&t2, 12);
        state.record(&h(1, 0, 2, 1), 13);
        assert_eq!(state.first_unstable_offset(), Some(10));
        state.record_marker(1, 0, 14, true);
        assert_eq!(state.first_unstable_offset(), Some(12));
        // A fenced epoch's marker is refused; a newer epoch's starts that epoch.
        assert!(state.check_marker(2, 0).is_ok());
        state.record_marker(2, 1, 15, false);
        assert_eq!(state.first_unstable_offset(), None);
        assert!(state.check_marker(2, 0).is_err());
        assert_eq!(state.get(2).unwrap().epoch, 1);
        let aborted = AbortedTxn {
            producer_id: 1,
            first_offset: 10,
            last_offset: 14,
        };
        assert_eq!(state.aborted_overlapping(0, 11), vec![aborted]);
        assert_eq!(state.aborted_overlapping(14, 20), vec![aborted]);
        assert!(state.aborted_overlapping(15, 20).is_empty());
        assert!(state.aborted_overlapping(0, 10).is_empty());
        state.prune_aborted(14);
        assert_eq!(state.aborted().len(), 1);
        state.prune_aborted(15);
        assert!(state.aborted().is_empty());
    }

    #[test]
    fn control_batches_are_read_from_their_record() {
        use kafka_protocol::records::{
            Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let marker = |kind: i16| {
            let record = Record {
                transactional: true,
                control: true,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: 4,
                producer_epoch: 0,
                timestamp_type: TimestampType::Creation,
                offset: 0,
                sequence: -1,
                timestamp: 1,
                key: Some(bytes::Bytes::from(vec![0, 0, 0, kind as u8])),
                value: Some(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
                headers: Default::default(),
            };
            let mut buf = bytes::BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            };
            RecordBatchEncoder::encode(&mut buf, &[record], &options).unwrap();
            buf
        };
        for (kind, aborted) in [(CONTROL_TYPE_ABORT, 1), (CONTROL_TYPE_COMMIT, 0)] {
            let mut state = ProducerState::new();
            let mut t = h(4, 0, 0, 1);
            t.attributes |= 0x10;
            state.record(&t, 0);
            let m = marker(kind);
            let header = BatchHeader::parse(&m).unwrap();
            assert!(header.is_control());
            state.record_batch(&header, 1, &m);
            assert_eq!(state.aborted().len(), aborted);
            assert_eq!(state.first_unstable_offset(), None);
        }
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

    #[test]
    fn idle_producers_expire_but_open_transactions_stay() {
        let day = 86_400_000;
        let mut state = ProducerState::new();
        let at = |pid, ts: i64| {
            let mut b = h(pid, 0, 0, 1);
            b.max_timestamp = ts;
            b
        };
        state.record(&at(1, 1_000), 0);
        state.record(&at(2, 5_000), 1);
        let mut open = at(3, 1_000);
        open.attributes |= 0x10;
        state.record(&open, 2);
        // A batch with an older timestamp does not move the clock back.
        state.record(&at(2, 10), 3);
        assert_eq!(state.get(2).unwrap().last_timestamp_ms, 5_000);
        assert!(state.expire(1_000 + day - 1, day).is_empty());
        assert_eq!(state.expire(1_000 + day, day), vec![1]);
        assert_eq!(state.len(), 2);
        assert_eq!(state.expire(5_000 + day, day), vec![2]);
        // Producer 3 has a transaction open: kept however old.
        assert!(state.expire(i64::MAX, day).is_empty());
        assert!(state.get(3).is_some());
        // A producer that comes back after expiring may start at any sequence.
        assert_eq!(state.check(&h(1, 0, 42, 1), &[]).unwrap(), Check::Append);
        // Once its transaction ends, producer 3 expires too.
        state.record_marker(3, 0, 4, false);
        state.expire(i64::MAX, day);
        assert!(state.is_empty());
    }
}
