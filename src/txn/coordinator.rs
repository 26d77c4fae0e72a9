//! The transaction coordinator of one shard: the transactional ids whose
//! `__transaction_state` partition this shard owns (`handlers::find_coordinator::
//! txn_coordinator`). Requests for an id are forwarded here by their handlers.
//!
//! Every transition is written to `__transaction_state` and made durable before it is
//! installed in memory and answered, so a restart replays exactly what clients were
//! told. EndTxn writes Prepare*, then the markers (`markers::write`), then Complete*,
//! and answers once Prepare* is durable and the markers were tried: a marker that could
//! not be written leaves the id in Prepare*, and the sweep (`tick_loop`) retries it.
//!
//! Concurrency: the map sits in a `RefCell` on the shard and is never borrowed across
//! an `.await`. An id with a write in flight is marked busy (`Busy`, released on drop);
//! other requests for it answer CONCURRENT_TRANSACTIONS, which clients retry.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::log as txn_log;
use super::state::{self, EndStep, InitStep, TxnMetadata, TxnState};
use super::verify::OpenPartitions;
use super::TXN_STATE_TOPIC;
use crate::broker::shard::Shard;
use crate::handlers::find_coordinator::txn_coordinator;
use crate::protocol::errors as ec;

/// InitProducerId may abort the previous epoch's transaction, then bump: at most this
/// many steps before the client is told to retry.
const INIT_ROUNDS_MAX: usize = 3;

#[derive(Debug, Default)]
pub struct TxnCoordinator {
    txns: HashMap<String, TxnMetadata>,
    busy: HashSet<String>,
    /// In a cluster: the led partitions of the replicated `__transaction_state` this
    /// shard owns, and whether each is loaded (`txn::loading`).
    pub ownership: crate::groups::ownership::Ownership,
}

impl TxnCoordinator {
    pub fn get(&self, id: &str) -> Option<&TxnMetadata> {
        self.txns.get(id)
    }

    /// Every id coordinated here, with its metadata (for the describe/list tools).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &TxnMetadata)> {
        self.txns.iter()
    }

    /// Forgets the ids `of` selects (their partition is no longer led here) and
    /// withdraws their transactions from the produce path; how many were forgotten.
    pub fn unload(&mut self, open: &OpenPartitions, of: impl Fn(&str) -> bool) -> usize {
        let gone: Vec<String> = self.txns.keys().filter(|id| of(id)).cloned().collect();
        for id in &gone {
            if let Some(m) = self.txns.remove(id) {
                open.withdraw(m.producer_id);
            }
        }
        gone.len()
    }

    /// Sets (or, with `None`, forgets) an id's metadata once it is durable, and
    /// publishes its ongoing transaction's partitions to the produce path.
    pub(super) fn install(&mut self, open: &OpenPartitions, id: &str, m: Option<TxnMetadata>) {
        let old = match m {
            Some(m) => {
                if m.state == TxnState::Ongoing {
                    open.publish(
                        m.producer_id,
                        m.producer_epoch,
                        m.partitions.iter().cloned().collect(),
                    );
                } else {
                    open.withdraw(m.producer_id);
                }
                self.txns.insert(id.to_string(), m)
            }
            None => self.txns.remove(id),
        };
        // A new producer id for the id: the old one's transaction is gone.
        if let Some(old) = old.filter(|o| {
            self.txns
                .get(id)
                .is_none_or(|n| n.producer_id != o.producer_id)
        }) {
            open.withdraw(old.producer_id);
        }
    }
}

/// Marks an id busy for as long as it lives.
pub(super) struct Busy {
    shard: Rc<Shard>,
    id: String,
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.shard.txn.borrow_mut().busy.remove(&self.id);
    }
}

/// Marks `id` busy, after checking this shard coordinates it now (in a cluster: leads
/// and has loaded its partition).
pub(super) fn lock(shard: &Rc<Shard>, id: &str) -> Result<Busy, i16> {
    super::loading::check(shard, id)?;
    if !shard.txn.borrow_mut().busy.insert(id.to_string()) {
        return Err(ec::CONCURRENT_TRANSACTIONS);
    }
    Ok(Busy {
        shard: shard.clone(),
        id: id.to_string(),
    })
}

pub(super) fn current(shard: &Shard, id: &str) -> Option<TxnMetadata> {
    shard.txn.borrow().get(id).cloned()
}

/// Appends an id's record to its `__transaction_state` partition (on this shard) and
/// waits until it is on disk. `None` writes a tombstone.
async fn persist(shard: &Rc<Shard>, id: &str, m: Option<&TxnMetadata>) -> Result<(), i16> {
    let home = txn_coordinator(shard, id)?;
    if home.shard != shard.id {
        return Err(ec::NOT_COORDINATOR);
    }
    let Some(log) = shard.partition_log(TXN_STATE_TOPIC, home.partition) else {
        tracing::error!(
            transactional_id = %id,
            partition = home.partition,
            "{TXN_STATE_TOPIC} partition is not open on its owner shard"
        );
        return Err(ec::COORDINATOR_NOT_AVAILABLE);
    };
    let failed = |e: crate::storage::StorageError| {
        tracing::error!(transactional_id = %id, "writing transaction state failed: {e}");
        ec::COORDINATOR_NOT_AVAILABLE
    };
    // A coordinator that lost its partition must not append to what is now a follower's
    // log.
    super::loading::check(shard, id)?;
    let batch = txn_log::encode_batch(id, m, crate::util::now_ms());
    let appended = log.append(batch).map_err(failed)?;
    let mut waited = log.wait_durable(appended.last_offset).await;
    // Replicated: a transition counts once the ISR has it, as an acks=all produce, so a
    // new coordinator's load sees every state a client was told of.
    if waited.is_ok()
        && shard
            .replicated_isr(TXN_STATE_TOPIC, home.partition)
            .is_some()
    {
        waited = log.wait_high_watermark(appended.last_offset).await;
    }
    waited.map_err(|e| match e {
        crate::storage::StorageError::Truncated { .. } => ec::NOT_COORDINATOR,
        e => failed(e),
    })
}

/// Makes `m` durable, then installs it.
pub(super) async fn write(shard: &Rc<Shard>, id: &str, m: TxnMetadata) -> Result<TxnMetadata, i16> {
    persist(shard, id, Some(&m)).await?;
    shard
        .txn
        .borrow_mut()
        .install(&shard.broker.txn_partitions, id, Some(m.clone()));
    Ok(m)
}

/// InitProducerId with a transactional id: (producer id, epoch), or the error code.
/// `requested` is the (id, epoch) a v3+ client already has, or (-1, -1).
pub async fn init_producer_id(
    shard: &Rc<Shard>,
    id: &str,
    timeout_ms: i32,
    requested: (i64, i16),
) -> Result<(i64, i16), i16> {
    let _busy = lock(shard, id)?;
    for _ in 0..INIT_ROUNDS_MAX {
        let now = crate::util::now_ms();
        let cur = current(shard, id);
        match state::init(cur.as_ref(), requested, timeout_ms, now)? {
            InitStep::Current(pid, epoch) => return Ok((pid, epoch)),
            InitStep::Write(m) => {
                let m = write(shard, id, m).await?;
                return Ok((m.producer_id, m.producer_epoch));
            }
            InitStep::NeedProducerId => {
                let pid = crate::broker::producer_ids::next_producer_id(&shard.broker).await?;
                let m = state::init_with_new_id(cur.as_ref(), pid, timeout_ms, now);
                let m = write(shard, id, m).await?;
                tracing::debug!(transactional_id = %id, producer_id = pid, "new producer id");
                return Ok((m.producer_id, m.producer_epoch));
            }
            InitStep::AbortFirst(prepare) => {
                tracing::info!(
                    transactional_id = %id,
                    "aborting the previous producer's open transaction"
                );
                let prepare = write(shard, id, prepare).await?;
                // Markers that cannot all be written now (a partition between leaders)
                // are the sweep's to finish; the client retries meanwhile.
                if let Err(code) = complete(shard, id, &prepare).await {
                    tracing::info!(transactional_id = %id, code, "the previous transaction's abort is pending");
                    return Err(ec::CONCURRENT_TRANSACTIONS);
                }
            }
        }
    }
    Err(ec::CONCURRENT_TRANSACTIONS)
}

/// AddPartitionsToTxn / AddOffsetsToTxn: adds partitions to the open transaction (and
/// opens it).
pub async fn add_partitions(
    shard: &Rc<Shard>,
    id: &str,
    producer: (i64, i16),
    partitions: Vec<(String, i32)>,
) -> Result<(), i16> {
    let _busy = lock(shard, id)?;
    let now = crate::util::now_ms();
    let cur = current(shard, id);
    if let Some(m) = state::add_partitions(cur.as_ref(), producer.0, producer.1, &partitions, now)?
    {
        write(shard, id, m).await?;
    }
    Ok(())
}

/// Whether `partition` is in the open transaction of (id, producer): AddPartitionsToTxn
/// v4+ with verify_only, and the produce path's check (KIP-890 part 1).
pub fn verify(
    shard: &Shard,
    id: &str,
    producer: (i64, i16),
    partition: &(String, i32),
) -> Result<(), i16> {
    super::loading::check(shard, id)?;
    let txn = shard.txn.borrow();
    let m = state::check_producer(txn.get(id), producer.0, producer.1)?;
    if m.state == TxnState::Ongoing && m.partitions.contains(partition) {
        Ok(())
    } else {
        Err(ec::INVALID_TXN_STATE)
    }
}

/// EndTxn: commits or aborts the open transaction.
pub async fn end_txn(
    shard: &Rc<Shard>,
    id: &str,
    producer: (i64, i16),
    commit: bool,
) -> Result<(), i16> {
    let _busy = lock(shard, id)?;
    let now = crate::util::now_ms();
    let cur = current(shard, id);
    match state::end(cur.as_ref(), producer.0, producer.1, commit, now)? {
        EndStep::AlreadyDone => Ok(()),
        EndStep::Prepare(prepare) => {
            let prepare = write(shard, id, prepare).await?;
            // The outcome is decided once Prepare* is durable; a marker that fails now
            // is retried by the sweep.
            if let Err(code) = complete(shard, id, &prepare).await {
                tracing::warn!(transactional_id = %id, code, "transaction markers pending");
            }
            Ok(())
        }
    }
}

/// Writes the markers of a Prepare* transaction, then its Complete* state.
pub(super) async fn complete(
    shard: &Rc<Shard>,
    id: &str,
    prepare: &TxnMetadata,
) -> Result<(), i16> {
    super::markers::write(shard, id, prepare).await?;
    let now_ms = crate::util::now_ms();
    write(shard, id, state::complete(prepare, now_ms)).await?;
    super::probe::completed(prepare, now_ms);
    Ok(())
}

/// Rebuilds the ids of this shard's `__transaction_state` partitions (start-up).
/// Transactions found in Prepare* are completed by the first sweep.
pub async fn replay(shard: &Rc<Shard>) -> Result<usize, String> {
    let snap = shard.broker.metadata.snapshot();
    // A replicated topic's partitions load when this broker leads them
    // (`loading::follow_leadership`).
    let Some(topic) = snap
        .topic(TXN_STATE_TOPIC)
        .filter(|t| t.replication.is_empty())
    else {
        return Ok(0);
    };
    let mut replayed = 0;
    for (p, placement) in topic.partitions.iter().enumerate() {
        if placement.shard != shard.id {
            continue;
        }
        let Some(log) = shard.partition_log(TXN_STATE_TOPIC, p as i32) else {
            continue;
        };
        let records = txn_log::read_partition(&log, p as i32, false).await?;
        let mut txn = shard.txn.borrow_mut();
        for (id, m) in records {
            replayed += 1;
            txn.install(&shard.broker.txn_partitions, &id, m);
        }
    }
    Ok(replayed)
}

/// For the life of the shard: completes Prepare* transactions (left by a restart or a
/// failed marker) and aborts timed-out ones every
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`; forgets ids idle past
/// `transactional.id.expiration.ms` every
/// `transaction.remove.expired.transaction.cleanup.interval.ms`.
pub async fn tick_loop(shard: Rc<Shard>) {
    let config = shard.broker.config.txn.clone();
    let sweep_every = Duration::from_millis(config.abort_check_interval_ms);
    let expire_every = Duration::from_millis(config.expire_check_interval_ms);
    let mut next_expire = Instant::now() + expire_every;
    loop {
        sweep(&shard).await;
        if Instant::now() >= next_expire {
            next_expire = Instant::now() + expire_every;
            expire(&shard, config.id_expiration_ms).await;
        }
        crate::runtime::sleep(sweep_every).await;
    }
}

/// Ids whose metadata passes `f`, not busy.
fn ids_where(shard: &Shard, f: impl Fn(&TxnMetadata) -> bool) -> Vec<String> {
    let txn = shard.txn.borrow();
    txn.txns
        .iter()
        .filter(|(id, m)| !txn.busy.contains(*id) && f(m))
        .map(|(id, _)| id.clone())
        .collect()
}

/// Completes Prepare* transactions and aborts timed-out ones (also right after a
/// partition is loaded, for what a previous coordinator left in flight).
pub(super) async fn sweep(shard: &Rc<Shard>) {
    let now = crate::util::now_ms();
    let due = ids_where(shard, |m| {
        matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
            || state::timed_out(m, now)
    });
    for id in due {
        let Ok(_busy) = lock(shard, &id) else {
            continue;
        };
        let Some(m) = current(shard, &id) else {
            continue;
        };
        let result = match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => complete(shard, &id, &m).await,
            TxnState::Ongoing if state::timed_out(&m, now) => {
                tracing::info!(
                    transactional_id = %id,
                    producer_id = m.producer_id,
                    timeout_ms = m.timeout_ms,
                    "aborting a transaction past its timeout"
                );
                super::probe::timed_out();
                match state::fence_and_abort(&m, now) {
                    Ok(prepare) => match write(shard, &id, prepare).await {
                        Ok(prepare) => complete(shard, &id, &prepare).await,
                        Err(code) => Err(code),
                    },
                    Err(code) => Err(code),
                }
            }
            _ => Ok(()),
        };
        if let Err(code) = result {
            tracing::warn!(transactional_id = %id, code, "completing a transaction failed; retrying at the next sweep");
        }
    }
}

async fn expire(shard: &Rc<Shard>, expiration_ms: i64) {
    let now = crate::util::now_ms();
    let expired = ids_where(shard, |m| state::expired(m, now, expiration_ms));
    for id in expired {
        let Ok(_busy) = lock(shard, &id) else {
            continue;
        };
        match persist(shard, &id, None).await {
            Ok(()) => {
                shard
                    .txn
                    .borrow_mut()
                    .install(&shard.broker.txn_partitions, &id, None);
                tracing::info!(transactional_id = %id, "expired an idle transactional id");
            }
            Err(code) => tracing::warn!(transactional_id = %id, code, "expiring failed"),
        }
    }
}
