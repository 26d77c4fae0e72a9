//! Bounds on how much one admin request may change, checked before any of it is done.
//!
//! Partitions: without a bound one CreateTopics or CreatePartitions naming 200,000,000
//! partitions made the metadata shard build a placement table of gigabytes and stop
//! serving (issue 16). Kafka's controller refuses such a request as a whole (KAFKA-17870
//! for CreateTopics, KAFKA-19673 for CreatePartitions): every topic of it answers
//! POLICY_VIOLATION with `TOO_MANY_PARTITIONS`, even the ones that alone would fit, and so
//! does corelog, for auto-creation through Metadata too. Counting follows Kafka: a topic
//! with explicit assignments counts one partition per assignment, -1 counts the broker's
//! `num.partitions`, and a count below 1 adds nothing (that topic fails on its own with
//! INVALID_PARTITIONS). Sums are in `u64` and saturate, so no count on the wire can
//! overflow them.
//!
//! Other changes: Kafka's controller writes at most 10,000 records for one request, so
//! a DeleteTopics of more topics, or an AlterConfigs / IncrementalAlterConfigs of more
//! config changes, is refused as a whole with POLICY_VIOLATION and `BATCH_TOO_LARGE`.

use crate::protocol::errors as ec;

/// Kafka's default: a request may create at most 10,000 partitions in total, the most
/// records its controller writes in one metadata batch.
pub const PARTITIONS_PER_REQUEST_MAX_DEFAULT: u32 = 10_000;

/// Kafka's message for the refusal, word for word: clients and scripts match on it.
pub const TOO_MANY_PARTITIONS: &str = "Excessively large number of partitions per request.";

/// The partitions one CreateTopics entry adds, counted as Kafka counts them.
pub fn topic_partitions(num_partitions: i32, assignments: usize, default_partitions: i32) -> u64 {
    if assignments > 0 {
        return assignments as u64;
    }
    let n = if num_partitions == -1 {
        default_partitions
    } else {
        num_partitions
    };
    u64::try_from(n).unwrap_or(0)
}

/// The partitions a CreatePartitions entry adds to a topic that has `current` now.
pub fn growth_partitions(current: usize, count: i32) -> u64 {
    u64::try_from(count)
        .unwrap_or(0)
        .saturating_sub(current as u64)
}

/// Refuses a total over `partitions_per_request_max` with Kafka's error.
pub fn check_total(
    partitions: impl IntoIterator<Item = u64>,
    partitions_per_request_max: u32,
) -> Result<(), (i16, String)> {
    let total = partitions
        .into_iter()
        .fold(0u64, |sum, n| sum.saturating_add(n));
    if total > u64::from(partitions_per_request_max) {
        return Err(too_many());
    }
    Ok(())
}

pub fn too_many() -> (i16, String) {
    (ec::POLICY_VIOLATION, TOO_MANY_PARTITIONS.to_string())
}

/// Kafka's bound on records per controller operation (`MAX_RECORDS_PER_USER_OP`): here
/// the most topics one DeleteTopics deletes and config changes one AlterConfigs or
/// IncrementalAlterConfigs makes.
pub const CHANGES_PER_REQUEST_MAX: usize = 10_000;

/// Kafka's message when an operation would need more records than that.
pub const BATCH_TOO_LARGE: &str = "Unable to perform excessively large batch operation.";

/// Refuses a request that makes more than `CHANGES_PER_REQUEST_MAX` changes.
pub fn check_changes(changes: usize) -> Result<(), (i16, String)> {
    if changes > CHANGES_PER_REQUEST_MAX {
        return Err((ec::POLICY_VIOLATION, BATCH_TOO_LARGE.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_as_kafka_does() {
        assert_eq!(topic_partitions(7, 0, 3), 7);
        assert_eq!(topic_partitions(-1, 0, 3), 3, "-1 takes num.partitions");
        assert_eq!(topic_partitions(7, 2, 3), 2, "assignments win");
        assert_eq!(topic_partitions(-1, 5, 3), 5);
        assert_eq!(topic_partitions(0, 0, 3), 0);
        assert_eq!(topic_partitions(-5, 0, 3), 0);
        assert_eq!(topic_partitions(i32::MIN, 0, 3), 0);
        assert_eq!(growth_partitions(3, 10), 7);
        assert_eq!(growth_partitions(10, 3), 0, "shrinking adds nothing");
        assert_eq!(growth_partitions(0, -1), 0);
    }

    #[test]
    fn the_bound_itself_passes_and_one_more_is_refused() {
        assert!(check_total([5_000, 5_000], 10_000).is_ok());
        assert!(check_total([], 10_000).is_ok());
        let (code, msg) = check_total([5_000, 5_001], 10_000).unwrap_err();
        assert_eq!(code, ec::POLICY_VIOLATION);
        assert_eq!(msg, "Excessively large number of partitions per request.");
        assert!(check_total([200_000_000], 10_000).is_err());
    }

    #[test]
    fn changes_up_to_kafkas_batch_pass() {
        assert!(check_changes(0).is_ok());
        assert!(check_changes(10_000).is_ok());
        let (code, msg) = check_changes(10_001).unwrap_err();
        assert_eq!(code, ec::POLICY_VIOLATION);
        assert_eq!(msg, "Unable to perform excessively large batch operation.");
    }

    #[test]
    fn sums_that_would_overflow_saturate_and_are_refused() {
        let many = std::iter::repeat_n(i32::MAX as u64, 1 << 20);
        assert!(check_total(many, u32::MAX).is_err());
        assert!(check_total([u64::MAX, u64::MAX], u32::MAX).is_err());
        // In i32 these two would wrap to a negative total and pass.
        let wraps = [
            topic_partitions(i32::MAX, 0, 1),
            topic_partitions(i32::MAX, 0, 1),
        ];
        assert!(check_total(wraps, 10_000).is_err());
    }
}
