//! A transaction's metadata and the coordinator's state machine, without I/O: each
//! function checks a request against the current metadata and returns the metadata to
//! write (the caller makes it durable, then installs it) or the Kafka error to answer.
//!
//! ```text
//!   Empty ──AddPartitions──▶ Ongoing ──EndTxn(commit)──▶ PrepareCommit ──▶ CompleteCommit
//!     ▲                         │  └──EndTxn(abort) / timeout / new InitProducerId──┐
//!     │                         │                                                   ▼
//!     └──InitProducerId── Complete*  ◀──────────────────────────── PrepareAbort ──▶ CompleteAbort
//! ```
//!
//! Complete* states accept a new transaction (AddPartitions) or InitProducerId (epoch
//! bump) like Empty. Prepare* states wait for the markers: every request but a retried
//! EndTxn answers CONCURRENT_TRANSACTIONS until they are written.

use std::collections::BTreeSet;

use crate::protocol::errors as ec;

/// Kafka's TransactionState codes, as `__transaction_state` stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    /// Expired: the id is forgotten (its record is a tombstone).
    Dead,
}

impl TxnState {
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
        }
    }

    /// Code 7 (PrepareEpochFence) is never written by Kafka; it reads as unknown.
    pub fn from_code(code: i8) -> Option<TxnState> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
        }
    }

    fn is_complete_or_empty(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// Every state, for ListTransactions' state filters.
pub const ALL_STATES: [TxnState; 7] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
];

/// The epoch past which a producer id is retired and a new one handed out (Kafka keeps
/// the last value free for fencing).
pub const PRODUCER_EPOCH_MAX: i16 = i16::MAX - 1;

/// One transactional id's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The (id, epoch) handed out before the current one, so a producer whose
    /// InitProducerId answer was lost can retry with what it had (KIP-360). Memory only.
    pub last_producer_id: i64,
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// (topic, partition), sorted: what markers go to.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current transaction started (-1 with none).
    pub start_ms: i64,
    pub last_update_ms: i64,
}

impl TxnMetadata {
    pub fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            producer_epoch: 0,
            last_producer_id: -1,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }
}

/// What InitProducerId must do for an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Write this metadata and answer with its id and epoch.
    Write(TxnMetadata),
    /// A new producer id is needed first (a new id, or the epoch is exhausted); then
    /// call `init_with_new_id`.
    NeedProducerId,
    /// The previous epoch's transaction is open: abort it first (write this
    /// PrepareAbort, with the epoch bumped to fence the old producer), then retry.
    AbortFirst(TxnMetadata),
    /// The producer's retry of a bump it already got: answer with the current values.
    Current(i64, i16),
}

/// The request's (producer id, epoch) from InitProducerId v3+, or (-1, -1).
pub fn init(
    current: Option<&TxnMetadata>,
    requested: (i64, i16),
    timeout_ms: i32,
    now_ms: i64,
) -> Result<InitStep, i16> {
    let Some(m) = current else {
        return Ok(InitStep::NeedProducerId);
    };
    match m.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::Dead => {
            return Err(ec::CONCURRENT_TRANSACTIONS)
        }
        _ => {}
    }
    if requested.0 >= 0 {
        if (requested.0, requested.1) == (m.last_producer_id, m.last_producer_epoch) {
            return Ok(InitStep::Current(m.producer_id, m.producer_epoch));
        }
        if requested.0 != m.producer_id || requested.1 != m.producer_epoch {
            return Err(ec::PRODUCER_FENCED);
        }
    }
    if m.state == TxnState::Ongoing {
        return Ok(InitStep::AbortFirst(fence_and_abort(m, now_ms)?));
    }
    if m.producer_epoch >= PRODUCER_EPOCH_MAX {
        return Ok(InitStep::NeedProducerId);
    }
    let mut next = m.clone();
    next.last_producer_id = m.producer_id;
    next.last_producer_epoch = m.producer_epoch;
    next.producer_epoch = m.producer_epoch + 1;
    next.timeout_ms = timeout_ms;
    next.state = TxnState::Empty;
    next.partitions.clear();
    next.start_ms = -1;
    next.last_update_ms = now_ms;
    Ok(InitStep::Write(next))
}

/// After `InitStep::NeedProducerId`: the id's metadata with `producer_id`, epoch 0.
pub fn init_with_new_id(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    timeout_ms: i32,
    now_ms: i64,
) -> TxnMetadata {
    let mut next = TxnMetadata::new(producer_id, timeout_ms, now_ms);
    if let Some(m) = current {
        next.last_producer_id = m.producer_id;
        next.last_producer_epoch = m.producer_epoch;
    }
    next
}

/// PrepareAbort of an open transaction with the epoch bumped, so the producer that
/// opened it is fenced (InitProducerId of a new instance, or the timeout).
pub fn fence_and_abort(m: &TxnMetadata, now_ms: i64) -> Result<TxnMetadata, i16> {
    if m.state != TxnState::Ongoing {
        return Err(ec::INVALID_TXN_STATE);
    }
    let mut next = m.clone();
    if m.producer_epoch < PRODUCER_EPOCH_MAX {
        next.last_producer_id = m.producer_id;
        next.last_producer_epoch = m.producer_epoch;
        next.producer_epoch = m.producer_epoch + 1;
    }
    next.state = TxnState::PrepareAbort;
    next.last_update_ms = now_ms;
    Ok(next)
}

/// Checks a request's producer id and epoch against the id's metadata.
pub fn check_producer(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    epoch: i16,
) -> Result<&TxnMetadata, i16> {
    let m = current.ok_or(ec::INVALID_PRODUCER_ID_MAPPING)?;
    if m.producer_id != producer_id {
        return Err(ec::INVALID_PRODUCER_ID_MAPPING);
    }
    if m.producer_epoch != epoch {
        return Err(ec::PRODUCER_FENCED);
    }
    Ok(m)
}

/// AddPartitionsToTxn / AddOffsetsToTxn: `None` when every partition is already in the
/// open transaction (nothing to write).
pub fn add_partitions(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
    now_ms: i64,
) -> Result<Option<TxnMetadata>, i16> {
    let m = check_producer(current, producer_id, epoch)?;
    match m.state {
        TxnState::PrepareCommit | TxnState::PrepareAbort => {
            return Err(ec::CONCURRENT_TRANSACTIONS)
        }
        TxnState::Dead => return Err(ec::INVALID_PRODUCER_ID_MAPPING),
        _ => {}
    }
    let ongoing = m.state == TxnState::Ongoing;
    if ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
        return Ok(None);
    }
    let mut next = m.clone();
    if !ongoing {
        next.partitions.clear();
        next.start_ms = now_ms;
    }
    next.state = TxnState::Ongoing;
    next.partitions.extend(partitions.iter().cloned());
    next.last_update_ms = now_ms;
    Ok(Some(next))
}

/// What EndTxn must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// Write this Prepare* record, then the markers, then `complete`.
    Prepare(TxnMetadata),
    /// A retry of an EndTxn already completed: answer success.
    AlreadyDone,
}

pub fn end(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndStep, i16> {
    let m = check_producer(current, producer_id, epoch)?;
    match (m.state, commit) {
        (TxnState::Ongoing, _) => {
            let mut next = m.clone();
            next.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            next.last_update_ms = now_ms;
            Ok(EndStep::Prepare(next))
        }
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
            Ok(EndStep::AlreadyDone)
        }
        (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => Err(ec::CONCURRENT_TRANSACTIONS),
        _ => Err(ec::INVALID_TXN_STATE),
    }
}

/// The Complete* state after a Prepare* one's markers are written.
pub fn complete(m: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    let mut next = m.clone();
    next.state = match m.state {
        TxnState::PrepareCommit => TxnState::CompleteCommit,
        _ => TxnState::CompleteAbort,
    };
    next.partitions.clear();
    next.start_ms = -1;
    next.last_update_ms = now_ms;
    next
}

/// Whether an open transaction has outlived its timeout.
pub fn timed_out(m: &TxnMetadata, now_ms: i64) -> bool {
    m.state == TxnState::Ongoing && m.start_ms >= 0 && now_ms > m.start_ms + i64::from(m.timeout_ms)
}

/// Whether an idle id has outlived `transactional.id.expiration.ms`.
pub fn expired(m: &TxnMetadata, now_ms: i64, expiration_ms: i64) -> bool {
    m.state.is_complete_or_empty() && now_ms > m.last_update_ms.saturating_add(expiration_ms)
}

/// Kafka's answer for clients that predate PRODUCER_FENCED (KIP-588): they know
/// INVALID_PRODUCER_EPOCH. `first_version_knowing` is the API's first version with it.
pub fn fenced_for_version(code: i16, version: i16, first_version_knowing: i16) -> i16 {
    if code == ec::PRODUCER_FENCED && version < first_version_knowing {
        ec::INVALID_PRODUCER_EPOCH
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(list: &[(&str, i32)]) -> Vec<(String, i32)> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    fn empty(pid: i64, epoch: i16) -> TxnMetadata {
        let mut m = TxnMetadata::new(pid, 60_000, 1);
        m.producer_epoch = epoch;
        m
    }

    #[test]
    fn new_id_needs_a_producer_id() {
        assert_eq!(init(None, (-1, -1), 1000, 5), Ok(InitStep::NeedProducerId));
        let m = init_with_new_id(None, 7, 1000, 5);
        assert_eq!(
            (m.producer_id, m.producer_epoch, m.state),
            (7, 0, TxnState::Empty)
        );
    }

    #[test]
    fn init_bumps_the_epoch_and_fences_the_old_one() {
        let m = empty(7, 3);
        let InitStep::Write(next) = init(Some(&m), (-1, -1), 2000, 9).unwrap() else {
            panic!("expected a write")
        };
        assert_eq!((next.producer_id, next.producer_epoch), (7, 4));
        assert_eq!(next.timeout_ms, 2000);
        assert_eq!(check_producer(Some(&next), 7, 3), Err(ec::PRODUCER_FENCED));
        assert_eq!(
            check_producer(Some(&next), 8, 4),
            Err(ec::INVALID_PRODUCER_ID_MAPPING)
        );
        // KIP-360: the producer retries with the (id, epoch) it had.
        assert_eq!(
            init(Some(&next), (7, 3), 2000, 10),
            Ok(InitStep::Current(7, 4))
        );
        assert!(matches!(
            init(Some(&next), (7, 4), 2000, 10),
            Ok(InitStep::Write(_))
        ));
        assert_eq!(
            init(Some(&next), (7, 1), 2000, 10),
            Err(ec::PRODUCER_FENCED)
        );
    }

    #[test]
    fn exhausted_epoch_needs_a_new_id() {
        let m = empty(7, PRODUCER_EPOCH_MAX);
        assert_eq!(
            init(Some(&m), (-1, -1), 1000, 5),
            Ok(InitStep::NeedProducerId)
        );
        let next = init_with_new_id(Some(&m), 8, 1000, 5);
        assert_eq!((next.producer_id, next.last_producer_id), (8, 7));
    }

    #[test]
    fn open_transaction_is_aborted_before_init() {
        let m = empty(7, 0);
        let ongoing = add_partitions(Some(&m), 7, 0, &parts(&[("t", 0)]), 5)
            .unwrap()
            .unwrap();
        let InitStep::AbortFirst(abort) = init(Some(&ongoing), (-1, -1), 1000, 6).unwrap() else {
            panic!("expected an abort")
        };
        assert_eq!(
            (abort.state, abort.producer_epoch),
            (TxnState::PrepareAbort, 1)
        );
        assert_eq!(abort.partitions.len(), 1);
        assert_eq!(
            init(Some(&abort), (-1, -1), 1000, 6),
            Err(ec::CONCURRENT_TRANSACTIONS)
        );
        let done = complete(&abort, 7);
        assert_eq!(done.state, TxnState::CompleteAbort);
        assert!(done.partitions.is_empty());
        let InitStep::Write(next) = init(Some(&done), (-1, -1), 1000, 8).unwrap() else {
            panic!("expected a write")
        };
        assert_eq!(next.producer_epoch, 2);
    }

    #[test]
    fn add_partitions_opens_and_extends() {
        let m = empty(7, 0);
        let p = parts(&[("a", 0), ("b", 1)]);
        let o = add_partitions(Some(&m), 7, 0, &p, 5).unwrap().unwrap();
        assert_eq!(
            (o.state, o.start_ms, o.partitions.len()),
            (TxnState::Ongoing, 5, 2)
        );
        assert_eq!(add_partitions(Some(&o), 7, 0, &p[..1], 6), Ok(None));
        let o2 = add_partitions(Some(&o), 7, 0, &parts(&[("c", 0)]), 6)
            .unwrap()
            .unwrap();
        assert_eq!((o2.partitions.len(), o2.start_ms), (3, 5));
        assert_eq!(
            add_partitions(Some(&o2), 7, 1, &p, 6),
            Err(ec::PRODUCER_FENCED)
        );
        assert_eq!(
            add_partitions(None, 7, 0, &p, 6),
            Err(ec::INVALID_PRODUCER_ID_MAPPING)
        );
    }

    #[test]
    fn end_commit_and_abort() {
        let m = empty(7, 0);
        assert_eq!(end(Some(&m), 7, 0, true, 5), Err(ec::INVALID_TXN_STATE));
        let o = add_partitions(Some(&m), 7, 0, &parts(&[("a", 0)]), 5)
            .unwrap()
            .unwrap();
        let EndStep::Prepare(p) = end(Some(&o), 7, 0, true, 6).unwrap() else {
            panic!("expected prepare")
        };
        assert_eq!(p.state, TxnState::PrepareCommit);
        assert_eq!(
            end(Some(&p), 7, 0, true, 6),
            Err(ec::CONCURRENT_TRANSACTIONS)
        );
        let add = add_partitions(Some(&p), 7, 0, &parts(&[("a", 0)]), 6);
        assert_eq!(add, Err(ec::CONCURRENT_TRANSACTIONS));
        let c = complete(&p, 7);
        assert_eq!(c.state, TxnState::CompleteCommit);
        assert_eq!(end(Some(&c), 7, 0, true, 8), Ok(EndStep::AlreadyDone));
        assert_eq!(end(Some(&c), 7, 0, false, 8), Err(ec::INVALID_TXN_STATE));
        let EndStep::Prepare(a) = end(Some(&o), 7, 0, false, 6).unwrap() else {
            panic!("expected prepare")
        };
        assert_eq!(complete(&a, 7).state, TxnState::CompleteAbort);
    }

    #[test]
    fn timeouts_and_expiry() {
        let m = empty(7, 0);
        let o = add_partitions(Some(&m), 7, 0, &parts(&[("a", 0)]), 1000)
            .unwrap()
            .unwrap();
        assert!(!timed_out(&o, 61_000));
        assert!(timed_out(&o, 61_001));
        let fenced = fence_and_abort(&o, 61_001).unwrap();
        assert_eq!(
            (fenced.producer_epoch, fenced.state),
            (1, TxnState::PrepareAbort)
        );
        assert!(!expired(&o, i64::MAX, 10));
        assert!(expired(&m, 12, 10));
        assert!(!expired(&m, 11, 10));
    }

    #[test]
    fn old_clients_hear_invalid_producer_epoch() {
        assert_eq!(
            fenced_for_version(ec::PRODUCER_FENCED, 1, 2),
            ec::INVALID_PRODUCER_EPOCH
        );
        assert_eq!(
            fenced_for_version(ec::PRODUCER_FENCED, 2, 2),
            ec::PRODUCER_FENCED
        );
        assert_eq!(fenced_for_version(ec::NONE, 0, 2), ec::NONE);
    }

    #[test]
    fn state_codes_round_trip() {
        for code in 0..=6 {
            assert_eq!(TxnState::from_code(code).unwrap().code(), code);
        }
        assert_eq!(TxnState::from_code(7), None);
    }
}
