//! Transaction version 2 (KIP-890 part 2), what Kafka 4 clients use once ApiVersions
//! finalizes the `transaction.version` feature at level 2 (KIP-1022):
//!
//! - **Implicit partitions.** A transactional Produce v12+ (or TxnOffsetCommit v5+) to a
//!   partition not yet in the transaction adds it on the coordinator before the batch
//!   is appended; no AddPartitionsToTxn / AddOffsetsToTxn round trip. Older versions are
//!   only verified (KIP-890 part 1, `verify`).
//! - **An epoch per transaction.** EndTxn v5 bumps the producer epoch on every commit and
//!   abort: Prepare* is written with epoch + 1, the markers carry it, and the response
//!   gives the producer its new (id, epoch). A write the producer sent in the finished
//!   transaction that arrives late carries the old epoch and is fenced
//!   (INVALID_PRODUCER_EPOCH) instead of opening a transaction nobody will end.
//! - When the bump would exhaust the epoch, the transaction still completes with the
//!   last epoch and the id gets a new producer id at epoch 0, returned by EndTxn.
//!
//! Gap: whether an id's last transaction was a v2 one is not written to
//! `__transaction_state` (Kafka's value v1 tagged fields); the previous epoch, which
//! lets a retried EndTxn v5 be recognised, lives in memory and a restart forgets it.

use std::rc::Rc;

use super::coordinator::{complete, current, lock, write};
use super::state::{self, TxnMetadata, TxnState, PRODUCER_EPOCH_MAX};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;

/// The feature name clients look for in ApiVersions (KIP-890 / KIP-1022).
pub const FEATURE_NAME: &str = "transaction.version";
/// Levels this broker supports: 0 (no transactions' v2), 1 (KIP-890 part 1's checks),
/// 2 (implicit partitions, epoch bump per transaction).
pub const FEATURE_LEVEL_MIN: i16 = 0;
pub const FEATURE_LEVEL_MAX: i16 = 2;
/// The first Produce version of a transaction-v2 producer (Kafka's
/// `LAST_STABLE_VERSION_BEFORE_TRANSACTION_V2` + 1).
pub const PRODUCE_SINCE: i16 = 12;
/// The first EndTxn version that bumps the epoch and answers the new one.
pub const END_TXN_SINCE: i16 = 5;
/// The first TxnOffsetCommit version that adds the offsets partition itself.
pub const TXN_OFFSET_COMMIT_SINCE: i16 = 5;

/// Whether ApiVersions finalizes `transaction.version` = 2 (set at start-up). Every
/// broker does: a Produce v12 adds its partition on the coordinator wherever that is
/// (`txn::route::ensure_in_transaction`, from `handlers::produce::add_deferred`).
static FINALIZED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set once at start-up (`serve::run`).
pub fn finalize(v2: bool) {
    FINALIZED.store(v2, std::sync::atomic::Ordering::Relaxed);
}

/// The finalized `transaction.version` level ApiVersions answers.
pub fn finalized_level() -> i16 {
    if FINALIZED.load(std::sync::atomic::Ordering::Relaxed) {
        FEATURE_LEVEL_MAX
    } else {
        FEATURE_LEVEL_MIN
    }
}

/// What EndTxn v5 must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// Write this Prepare* record (epoch bumped), then the markers, then Complete*.
    Prepare(TxnMetadata),
    /// Abort with nothing in the transaction: write this CompleteAbort (epoch bumped),
    /// no markers. A v2 producer cannot know whether its sends added anything.
    AbortEmpty(TxnMetadata),
    /// A retry of an EndTxn already done: answer with this (id, epoch).
    Done(i64, i16),
}

/// The producer's next epoch and the previous one remembered, for a Prepare* or
/// CompleteAbort record of `m` (current epoch `epoch`).
fn bumped(m: &TxnMetadata, epoch: i16, now_ms: i64) -> TxnMetadata {
    let mut next = m.clone();
    next.last_producer_id = m.producer_id;
    next.last_producer_epoch = epoch;
    next.producer_epoch = epoch.saturating_add(1).min(PRODUCER_EPOCH_MAX);
    next.last_update_ms = now_ms;
    next
}

/// EndTxn v5 against the id's metadata.
pub fn end(
    current: Option<&TxnMetadata>,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndStep, i16> {
    let m = current.ok_or(ec::INVALID_PRODUCER_ID_MAPPING)?;
    // A retry after the bump: the request carries the epoch the bump replaced.
    let retry = m.last_producer_id == producer_id
        && m.last_producer_epoch == epoch
        && m.producer_epoch != epoch;
    if retry {
        return match (m.state, commit) {
            // Also the abort of a transaction the coordinator aborted on its timeout
            // (which bumped the epoch). An Empty state means a new instance bumped it
            // with InitProducerId: this is a zombie, fenced below.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok(EndStep::Done(m.producer_id, m.producer_epoch))
            }
            (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => {
                Err(ec::CONCURRENT_TRANSACTIONS)
            }
            _ => Err(ec::PRODUCER_FENCED),
        };
    }
    let m = state::check_producer(current, producer_id, epoch)?;
    match m.state {
        TxnState::Ongoing => {
            let mut next = bumped(m, epoch, now_ms);
            next.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            Ok(EndStep::Prepare(next))
        }
        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort if !commit => {
            let mut next = bumped(m, epoch, now_ms);
            next.state = TxnState::CompleteAbort;
            next.partitions.clear();
            next.start_ms = -1;
            Ok(EndStep::AbortEmpty(next))
        }
        TxnState::PrepareCommit | TxnState::PrepareAbort => Err(ec::CONCURRENT_TRANSACTIONS),
        _ => Err(ec::INVALID_TXN_STATE),
    }
}

/// EndTxn v5: commits or aborts with the epoch bumped; the producer's (id, epoch) for
/// its next transaction.
pub async fn end_txn(
    shard: &Rc<Shard>,
    id: &str,
    producer: (i64, i16),
    commit: bool,
) -> Result<(i64, i16), i16> {
    let _busy = lock(shard, id)?;
    let now_ms = crate::util::now_ms();
    let cur = current(shard, id);
    let done = match end(cur.as_ref(), producer.0, producer.1, commit, now_ms)? {
        EndStep::Done(pid, epoch) => return Ok((pid, epoch)),
        EndStep::AbortEmpty(m) => write(shard, id, m).await?,
        EndStep::Prepare(prepare) => {
            let prepare = write(shard, id, prepare).await?;
            // Decided once Prepare* is durable; failed markers are the sweep's to retry,
            // and the producer already owns the bumped epoch.
            if let Err(code) = complete(shard, id, &prepare).await {
                tracing::warn!(transactional_id = %id, code, "transaction markers pending");
            }
            prepare
        }
    };
    if done.producer_epoch < PRODUCER_EPOCH_MAX {
        return Ok((done.producer_id, done.producer_epoch));
    }
    // Epoch exhausted: the next transaction runs under a new producer id. While markers
    // are still pending the id stays as it is; the client retries.
    let Some(m) = current(shard, id)
        .filter(|m| m.state != TxnState::PrepareCommit && m.state != TxnState::PrepareAbort)
    else {
        return Err(ec::CONCURRENT_TRANSACTIONS);
    };
    let pid = crate::broker::producer_ids::next_producer_id(&shard.broker).await?;
    let next = state::init_with_new_id(Some(&m), pid, m.timeout_ms, crate::util::now_ms());
    let next = write(shard, id, next).await?;
    Ok((next.producer_id, next.producer_epoch))
}

/// A coordinator's answer as a produce partition's error code.
pub fn produce_code(code: i16) -> i16 {
    match code {
        ec::CONCURRENT_TRANSACTIONS
        | ec::COORDINATOR_NOT_AVAILABLE
        | ec::NOT_COORDINATOR
        | ec::COORDINATOR_LOAD_IN_PROGRESS => ec::NOT_ENOUGH_REPLICAS,
        ec::PRODUCER_FENCED => ec::INVALID_PRODUCER_EPOCH,
        other => other,
    }
}

/// Keeps one producer's Produce requests in order on this shard while one of them
/// waits for the coordinator to add partitions: Produce appends are queued before
/// `handlers::produce::start` returns, and a request that must first add a partition
/// cannot do that, so it and every later request of the producer on this shard (one
/// connection, normally) queue behind a gate and append in arrival order.
pub struct Gate {
    producer_id: i64,
    ticket: u64,
    opened: Option<futures::channel::oneshot::Sender<()>>,
}

/// A request's turn: resolves once every earlier gated request of its producer on this
/// shard has queued its appends.
pub type Turn = futures::future::Shared<futures::channel::oneshot::Receiver<()>>;

thread_local! {
    /// producer id → (ticket, the turn of the request after the last gated one).
    static GATES: std::cell::RefCell<std::collections::HashMap<i64, (u64, Turn)>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
    static NEXT_TICKET: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether a request of `producer_id` must queue behind an earlier one.
pub fn gated(producer_id: i64) -> bool {
    GATES.with(|g| g.borrow().contains_key(&producer_id))
}

/// Queues a request of `producer_id`: the turn to wait for (None: go now) and the
/// gate to drop once its appends are queued.
pub fn enter(producer_id: i64) -> (Option<Turn>, Gate) {
    use futures::FutureExt;
    let (tx, rx) = futures::channel::oneshot::channel();
    let ticket = NEXT_TICKET.with(|t| {
        t.set(t.get() + 1);
        t.get()
    });
    let prev = GATES.with(|g| g.borrow_mut().insert(producer_id, (ticket, rx.shared())));
    let gate = Gate {
        producer_id,
        ticket,
        opened: Some(tx),
    };
    (prev.map(|(_, turn)| turn), gate)
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(tx) = self.opened.take() {
            let _ = tx.send(());
        }
        GATES.with(|g| {
            let mut g = g.borrow_mut();
            if g.get(&self.producer_id)
                .is_some_and(|(t, _)| *t == self.ticket)
            {
                g.remove(&self.producer_id);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ongoing(pid: i64, epoch: i16) -> TxnMetadata {
        let mut m = TxnMetadata::new(pid, 60_000, 1);
        m.producer_epoch = epoch;
        state::add_partitions(Some(&m), pid, epoch, &[("t".to_string(), 0)], 5)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn commit_bumps_the_epoch_and_markers_carry_it() {
        let m = ongoing(7, 3);
        let EndStep::Prepare(p) = end(Some(&m), 7, 3, true, 9).unwrap() else {
            panic!("expected prepare")
        };
        assert_eq!((p.state, p.producer_epoch), (TxnState::PrepareCommit, 4));
        assert_eq!((p.last_producer_id, p.last_producer_epoch), (7, 3));
        assert_eq!(p.partitions.len(), 1);
        // While the markers are written, a retry waits.
        assert_eq!(
            end(Some(&p), 7, 3, true, 9),
            Err(ec::CONCURRENT_TRANSACTIONS)
        );
        let done = state::complete(&p, 10);
        // A retry of the finished EndTxn gets the new epoch; the other outcome is fenced.
        assert_eq!(end(Some(&done), 7, 3, true, 11), Ok(EndStep::Done(7, 4)));
        assert_eq!(end(Some(&done), 7, 3, false, 11), Err(ec::PRODUCER_FENCED));
        // The old epoch cannot add partitions any more; the new one opens a transaction.
        let parts = [("t".to_string(), 0)];
        assert_eq!(
            state::add_partitions(Some(&done), 7, 3, &parts, 12),
            Err(ec::PRODUCER_FENCED)
        );
        let next = state::add_partitions(Some(&done), 7, 4, &parts, 12)
            .unwrap()
            .unwrap();
        assert_eq!((next.state, next.producer_epoch), (TxnState::Ongoing, 4));
    }

    #[test]
    fn abort_without_partitions_still_bumps() {
        let mut m = TxnMetadata::new(7, 60_000, 1);
        m.producer_epoch = 2;
        let EndStep::AbortEmpty(a) = end(Some(&m), 7, 2, false, 9).unwrap() else {
            panic!("expected an empty abort")
        };
        assert_eq!((a.state, a.producer_epoch), (TxnState::CompleteAbort, 3));
        assert_eq!(end(Some(&m), 7, 2, true, 9), Err(ec::INVALID_TXN_STATE));
        assert_eq!(end(Some(&a), 7, 2, false, 10), Ok(EndStep::Done(7, 3)));
    }

    #[test]
    fn a_zombie_of_the_previous_epoch_is_fenced_after_init() {
        let m = ongoing(7, 3);
        let EndStep::Prepare(p) = end(Some(&m), 7, 3, true, 9).unwrap() else {
            panic!("expected prepare")
        };
        let done = state::complete(&p, 10);
        // A new instance: InitProducerId bumps 4 → 5, Empty.
        let state::InitStep::Write(fresh) = state::init(Some(&done), (-1, -1), 60_000, 11).unwrap()
        else {
            panic!("expected a bump")
        };
        assert_eq!(end(Some(&fresh), 7, 4, false, 12), Err(ec::PRODUCER_FENCED));
        assert_eq!(end(Some(&fresh), 7, 3, false, 12), Err(ec::PRODUCER_FENCED));
    }

    #[test]
    fn stale_and_foreign_producers_are_refused() {
        let m = ongoing(7, 3);
        assert_eq!(end(Some(&m), 7, 2, true, 9), Err(ec::PRODUCER_FENCED));
        assert_eq!(
            end(Some(&m), 8, 3, true, 9),
            Err(ec::INVALID_PRODUCER_ID_MAPPING)
        );
        assert_eq!(
            end(None, 7, 3, true, 9),
            Err(ec::INVALID_PRODUCER_ID_MAPPING)
        );
    }

    #[test]
    fn the_last_epoch_is_not_passed() {
        let m = ongoing(7, PRODUCER_EPOCH_MAX);
        let EndStep::Prepare(p) = end(Some(&m), 7, PRODUCER_EPOCH_MAX, false, 9).unwrap() else {
            panic!("expected prepare")
        };
        assert_eq!(p.producer_epoch, PRODUCER_EPOCH_MAX);
    }

    #[test]
    fn gates_keep_a_producers_requests_in_order() {
        use futures::FutureExt;
        assert!(!gated(42));
        let (first_turn, first) = enter(42);
        assert!(first_turn.is_none());
        let (second_turn, second) = enter(42);
        let mut second_turn = second_turn.expect("queued behind the first");
        assert!(gated(42));
        assert!((&mut second_turn).now_or_never().is_none());
        drop(first);
        assert!(second_turn.now_or_never().is_some());
        // The last gate out leaves the producer ungated.
        assert!(gated(42));
        drop(second);
        assert!(!gated(42));
    }

    #[test]
    fn coordinator_codes_become_retriable_produce_codes() {
        assert_eq!(
            produce_code(ec::CONCURRENT_TRANSACTIONS),
            ec::NOT_ENOUGH_REPLICAS
        );
        assert_eq!(
            produce_code(ec::PRODUCER_FENCED),
            ec::INVALID_PRODUCER_EPOCH
        );
        assert_eq!(produce_code(ec::INVALID_TXN_STATE), ec::INVALID_TXN_STATE);
    }
}
