//! The coordinator's metrics (the probe of this subsystem, so counting stays out of the
//! state machine): transactions completed by outcome, timed-out aborts, how long each
//! transaction took from begin to its Complete* record, and the Ongoing gauge read at
//! scrape time. Kafka's brokers expose no such transaction counters (its producers
//! report `txn-commit-time-ns-total` and the like); the names follow ours.

use super::state::{TxnMetadata, TxnState};
use crate::broker::shard::Shard;
use crate::metrics::{self, Counter, Stage};

/// A Prepare* transaction's Complete* record is durable: counts it by outcome and
/// records begin → complete.
pub fn completed(prepare: &TxnMetadata, now_ms: i64) {
    let (counter, stage) = if prepare.state == TxnState::PrepareCommit {
        (Counter::TxnCommitted, Stage::TxnCommit)
    } else {
        (Counter::TxnAborted, Stage::TxnAbort)
    };
    metrics::add(counter, 1);
    if prepare.start_ms >= 0 {
        let ms = now_ms.saturating_sub(prepare.start_ms).max(0) as u64;
        metrics::record_us(stage, ms.saturating_mul(1_000));
    }
}

/// The sweep starts aborting a transaction past its timeout.
pub fn timed_out() {
    metrics::add(Counter::TxnTimedOut, 1);
}

/// Transactions in the Ongoing state on this shard's coordinator.
pub fn ongoing(shard: &Shard) -> u64 {
    let txn = shard.txn.borrow();
    txn.iter()
        .filter(|(_, m)| m.state == TxnState::Ongoing)
        .count() as u64
}
