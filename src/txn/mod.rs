//! Kafka's transactions: the transaction coordinator (one per transactional id, on the
//! home shard of its `__transaction_state` partition) and its durable state.
//!
//! - `state`: a transaction's metadata and the state machine's transitions, no I/O.
//! - `log`: `__transaction_state` record formats (Kafka's key v0 / value v0) and replay.
//! - `coordinator`: runs InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn
//!   on the home shard, writes each transition durably before it is answered, and aborts
//!   transactions that outlive their timeout.
//! - `markers`: what completing a transaction does to its partitions.
//! - `config`: the `transaction.*` and `transactional.id.*` settings.
//! - `probe`: the coordinator's metrics.
//! - `v2`: transaction version 2 (KIP-890 part 2): implicit partitions, an epoch
//!   bump per transaction.
//! - `verify`: the partitions of ongoing transactions, for the produce path (KIP-890).
//! - `route`: `ensure_in_transaction`, the coordinator of an id reached from any broker.
//! - `loading`: in a cluster, which `__transaction_state` partitions this shard leads
//!   and has loaded (the coordinator of an id is the leader of its partition).
//!
//! Which broker and which shard coordinate an id is decided in one place,
//! `handlers::find_coordinator::txn_coordinator`, which FindCoordinator uses too.

pub mod config;
pub mod coordinator;
pub mod loading;
pub mod log;
pub mod markers;
pub mod probe;
pub mod route;
pub mod state;
pub mod v2;
pub mod verify;

pub const TXN_STATE_TOPIC: &str = "__transaction_state";

/// Java's `String.hashCode` over UTF-16 code units: Kafka places a transactional id with
/// it, so tools that compute the partition of an id agree with the broker.
pub fn java_string_hash(text: &str) -> i32 {
    text.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__transaction_state` partition of `transactional_id`: Kafka's
/// `abs(hashCode(id)) % partitions`, where abs of i32::MIN is 0.
pub fn txn_partition(transactional_id: &str, partitions: i32) -> i32 {
    let h = java_string_hash(transactional_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// Whether `name` is a topic only the broker writes.
pub fn is_internal_topic(name: &str) -> bool {
    name == TXN_STATE_TOPIC || name == crate::groups::offsets::OFFSETS_TOPIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_java() {
        // Values from Java's "...".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("transactional-id-1"), 1_051_133_891);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(txn_partition("polygenelubricants", 50), 0);
    }

    #[test]
    fn partition_in_range() {
        for id in ["", "t", "my-txn", "ü-txn"] {
            assert!((0..50).contains(&txn_partition(id, 50)));
        }
        assert_eq!(txn_partition("a", 50), 97 % 50);
    }
}
