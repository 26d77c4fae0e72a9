//! What one shard holds in memory, by structure, for `/metrics`
//! (`corelog_memory_bytes`, `corelog_memory_bound_bytes`, `corelog_memory_entries`):
//! so that a growing RSS can be told apart from bounded structures filling up.
//!
//! The bounds (ARCHITECTURE.md "Memory accounting", HARDWARE.md "Memory"):
//! - batch cache: each partition's share of `SHARD_CACHE_BYTES_MAX`, between
//!   `PARTITION_CACHE_BYTES_MIN` and `PARTITION_CACHE_BYTES_MAX`, and
//!   `INTERNAL_TOPIC_CACHE_BYTES_MAX` for internal topics (`cache_budget`);
//! - pending batches: what producers sent and the writer has not written yet, bounded
//!   per connection by `INFLIGHT_REQUESTS_MAX` requests of `socket.request.max.bytes`;
//! - read-ahead: `READ_AHEAD_STREAMS_MAX` chunks of at most `READ_CHUNK_BYTES_MAX` per
//!   partition;
//! - indexes: 8 + 16 bytes per `index.interval.bytes` of log (no bound but the log's);
//! - producer state: `BATCHES_PER_PRODUCER_MAX` batches per producer id per partition;
//! - groups: members up to `group.max.size`; committed offsets kept for
//!   `offsets.retention.minutes`;
//! - transactional ids: kept for `transactional.id.expiration.ms`;
//! - fetch sessions: `SHARD_SESSION_PARTITIONS_MAX` partitions over the shard's sessions
//!   (estimated at `PARTITION_BYTES_ESTIMATE` each).
//!
//! Group sizes are estimates from the strings and buffers they hold plus the fixed size
//! of each entry; map overhead and the allocator's own are left to the difference
//! between RSS and the sum (`corelog_malloc_*` and `corelog_process_resident_bytes`).

use std::mem::size_of;

use super::fetch_sessions::{PARTITION_BYTES_ESTIMATE, SHARD_SESSION_PARTITIONS_MAX};
use super::shard::Shard;
use crate::groups::group::{Committed, Group};
use crate::groups::member::Member;
use crate::storage::LogMemory;

/// One shard's memory by structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardMemory {
    pub shard: usize,
    pub partitions: usize,
    /// The partition logs' structures, summed.
    pub logs: LogMemory,
    /// Read-ahead bound: `READ_AHEAD_STREAMS_MAX` chunks of `READ_CHUNK_BYTES_MAX` per
    /// partition.
    pub read_ahead_bytes_max: usize,
    pub groups: usize,
    pub group_members: usize,
    pub committed_offsets: usize,
    /// Groups, their members and their committed offsets (estimated).
    pub group_bytes: usize,
    /// Transactional ids this shard coordinates.
    pub transactional_ids: usize,
    /// KIP-227 fetch sessions and their partitions (`broker::fetch_sessions`).
    pub fetch_sessions: usize,
    pub fetch_session_partitions: usize,
}

/// One structure's line in the gauges: (label, bytes, bound in bytes if it has one).
pub type StructureBytes = (&'static str, usize, Option<usize>);

impl ShardMemory {
    /// Bytes per structure, in a fixed order (the `structure` label of
    /// `corelog_memory_bytes`).
    pub fn structures(&self) -> [StructureBytes; 7] {
        let l = &self.logs;
        [
            ("batch_cache", l.cache_bytes, Some(l.cache_bytes_max)),
            ("pending_batches", l.pending_bytes, None),
            (
                "read_ahead",
                l.read_ahead_bytes,
                Some(self.read_ahead_bytes_max),
            ),
            ("indexes", l.index_bytes, None),
            ("producer_state", l.producer_bytes, None),
            ("groups", self.group_bytes, None),
            (
                "fetch_sessions",
                self.fetch_session_partitions * PARTITION_BYTES_ESTIMATE,
                Some(SHARD_SESSION_PARTITIONS_MAX * PARTITION_BYTES_ESTIMATE),
            ),
        ]
    }

    /// The sum of `structures()`: what the broker can account for on this shard.
    pub fn accounted_bytes(&self) -> usize {
        self.structures().iter().map(|s| s.1).sum()
    }

    /// Counts per structure (the `structure` label of `corelog_memory_entries`).
    pub fn entries(&self) -> [(&'static str, usize); 9] {
        [
            ("partitions", self.partitions),
            ("cached_batches", self.logs.cache_batches),
            ("producer_ids", self.logs.producers),
            ("groups", self.groups),
            ("group_members", self.group_members),
            ("committed_offsets", self.committed_offsets),
            ("transactional_ids", self.transactional_ids),
            ("fetch_sessions", self.fetch_sessions),
            ("fetch_session_partitions", self.fetch_session_partitions),
        ]
    }
}

/// Estimated heap bytes of one group: its fixed part, its members and its offsets.
pub fn group_bytes(group: &Group) -> usize {
    let members: usize = group.members.iter().map(member_bytes).sum();
    let offsets: usize = group
        .offsets
        .iter()
        .map(|(k, c)| offset_bytes(&k.0, c))
        .sum();
    let consumer_members = group.consumer.as_ref().map_or(0, |c| c.members.len());
    size_of::<Group>()
        + group.id.len()
        + members
        + offsets
        + consumer_members * CONSUMER_MEMBER_BYTES_ESTIMATE
}

/// A consumer-protocol (KIP-848) member: its entry, ids and assignment, roughly.
const CONSUMER_MEMBER_BYTES_ESTIMATE: usize = 1024;

fn member_bytes(m: &Member) -> usize {
    let protocols: usize = m.protocols.iter().map(|(n, b)| n.len() + b.len()).sum();
    size_of::<Member>()
        + m.id.len()
        + m.instance_id.as_ref().map_or(0, String::len)
        + m.client_id.len()
        + m.client_host.len()
        + protocols
        + m.assignment.len()
}

fn offset_bytes(topic: &str, c: &Committed) -> usize {
    size_of::<((String, i32), Committed)>() + topic.len() + c.metadata.len()
}

impl Shard {
    /// This shard's memory now: walks every partition log and group it owns (for a
    /// scrape, not a hot path).
    pub fn memory(&self) -> ShardMemory {
        let logs = self.owned_logs();
        let mut sum = LogMemory::default();
        for (_, _, log) in &logs {
            sum.add(&log.memory());
        }
        let groups = self.groups.borrow();
        let mut m = ShardMemory {
            shard: self.id,
            partitions: logs.len(),
            logs: sum,
            read_ahead_bytes_max: logs.len()
                * crate::storage::log::READ_AHEAD_STREAMS_MAX
                * crate::storage::segment::READ_CHUNK_BYTES_MAX,
            transactional_ids: self.txn.borrow().iter().count(),
            fetch_sessions: self.fetch_sessions.borrow().len(),
            fetch_session_partitions: self.fetch_sessions.borrow().partitions_total(),
            ..ShardMemory::default()
        };
        for g in groups.groups() {
            m.groups += 1;
            m.group_members += g.members.len() + g.consumer.as_ref().map_or(0, |c| c.members.len());
            m.committed_offsets += g.offsets.len();
            m.group_bytes += group_bytes(g);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounted_bytes_is_the_sum_of_the_structures() {
        let m = ShardMemory {
            logs: LogMemory {
                cache_bytes: 100,
                cache_bytes_max: 1000,
                pending_bytes: 20,
                read_ahead_bytes: 3,
                index_bytes: 4000,
                producer_bytes: 50,
                ..LogMemory::default()
            },
            group_bytes: 7,
            fetch_session_partitions: 2,
            ..ShardMemory::default()
        };
        let sessions = 2 * PARTITION_BYTES_ESTIMATE;
        assert_eq!(m.accounted_bytes(), 100 + 20 + 3 + 4000 + 50 + 7 + sessions);
        assert_eq!(m.structures()[0], ("batch_cache", 100, Some(1000)));
    }
}
