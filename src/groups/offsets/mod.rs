//! Committed offsets in `__consumer_offsets`, in Kafka's own record formats so that
//! tools reading the topic understand them: key version 1 (group, topic, partition),
//! value version 3 (offset, leader epoch, metadata, commit timestamp), big-endian with
//! Kafka strings (int16 length). A null value is a tombstone: the offset is deleted.
//!
//! Group records share the topic: a classic group's GroupMetadata (key version 2, value
//! version 3, what Kafka 2.3+ writes) and a consumer-protocol group's
//! ConsumerGroupMetadata (key version 3, flexible value version 0: the group epoch).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::assignor::Assignment;
use super::coordinator::Committed;
use crate::storage::batch::{BatchWalker, VERIFY_CRC_ALWAYS};
use crate::storage::records;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka's `offsets.topic.segment.bytes` default (100 MiB).
pub const OFFSETS_TOPIC_SEGMENT_BYTES: u64 = 104_857_600;

/// The configs `__consumer_offsets` is created with, as Kafka creates it: compacted (the
/// latest record per key is what matters; retention must never delete commits) with
/// 100 MiB segments.
pub fn offsets_topic_configs() -> std::collections::BTreeMap<String, String> {
    [
        ("cleanup.policy", "compact".to_string()),
        ("segment.bytes", OFFSETS_TOPIC_SEGMENT_BYTES.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Key schema versions: 0 and 1 are offset commits, 2 is group metadata, 3 a consumer
/// group's metadata (KIP-848; 4-8 are its other records, which corelog does not write).
const OFFSET_KEY_VERSION: i16 = 1;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;
const CONSUMER_GROUP_METADATA_KEY_VERSION: i16 = 3;
const CONSUMER_GROUP_METADATA_VALUE_VERSION: i16 = 0;
const MEMBER_METADATA_KEY_VERSION: i16 = 5;
const CURRENT_ASSIGNMENT_KEY_VERSION: i16 = 8;
/// Value version 0 of both member records (flexible).
const MEMBER_VALUE_VERSION: i16 = 0;

/// ConsumerGroupMemberMetadata value v0: what a consumer-protocol member subscribed with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub topic_names: Vec<String>,
    pub topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// ConsumerGroupCurrentMemberAssignment value v0: a member's epochs and partitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    pub epoch: i32,
    pub previous_epoch: i32,
    /// Kafka's MemberState: 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
    pub state: i8,
    pub assigned: Assignment,
    pub revoking: Assignment,
}

/// A classic group's member as GroupMetadata value v3 holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMemberRecord {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// GroupMetadata value v3: a classic group at a state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMetadata {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// When the group entered its current state (wall clock ms).
    pub state_timestamp_ms: i64,
    pub members: Vec<ClassicMemberRecord>,
}

/// A group record: `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    Classic(Option<ClassicMetadata>),
    /// A consumer-protocol group's epoch.
    ConsumerEpoch(Option<i32>),
    /// A consumer-protocol member's subscription (by member id).
    Member(String, Option<MemberMetadata>),
    /// A consumer-protocol member's current assignment (by member id).
    MemberAssignment(String, Option<CurrentAssignment>),
}

/// Anything corelog reads back from `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    Offset(OffsetRecord),
    Group(String, GroupRecord),
}

/// One record of `__consumer_offsets` that corelog understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRecord {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    /// None: tombstone.
    pub value: Option<Committed>,
}

pub fn encode_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut out = BytesMut::with_capacity(10 + group.len() + topic.len());
    out.put_i16(OFFSET_KEY_VERSION);
    put_string(&mut out, group);
    put_string(&mut out, topic);
    out.put_i32(partition);
    out.freeze()
}

pub fn encode_value(c: &Committed) -> Bytes {
    let mut out = BytesMut::with_capacity(26 + c.metadata.len());
    out.put_i16(OFFSET_VALUE_VERSION);
    out.put_i64(c.offset);
    out.put_i32(c.leader_epoch);
    put_string(&mut out, &c.metadata);
    out.put_i64(c.commit_timestamp_ms);
    out.freeze()
}

/// (group, topic, partition) of an offset-commit key; None for other record kinds.
pub fn decode_key(mut key: Bytes) -> Option<(String, String, i32)> {
    if key.remaining() < 2 {
        return None;
    }
    match key.get_i16() {
        0 | 1 => {
            let group = get_string(&mut key)?;
            let topic = get_string(&mut key)?;
            (key.remaining() >= 4).then(|| (group, topic, key.get_i32()))
        }
        _ => None,
    }
}

/// Every value version Kafka has written (0-3).
pub fn decode_value(mut v: Bytes) -> Option<Committed> {
    if v.remaining() < 10 {
        return None;
    }
    let version = v.get_i16();
    let offset = v.get_i64();
    let leader_epoch = if version >= 3 {
        (v.remaining() >= 4).then(|| v.get_i32())?
    } else {
        -1
    };
    let metadata = get_string(&mut v)?;
    let commit_timestamp_ms = (v.remaining() >= 8).then(|| v.get_i64())?;
    Some(Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

/// An uncompressed record batch (magic 2) of offset records, ready for
/// `PartitionLog::append`.
pub fn encode_batch(records: &[OffsetRecord], timestamp_ms: i64) -> BytesMut {
    let kvs: Vec<(Bytes, Option<Bytes>)> = records
        .iter()
        .map(|r| {
            (
                encode_key(&r.group, &r.topic, r.partition),
                r.value.as_ref().map(encode_value),
            )
        })
        .collect();
    encode_kv_batch(&kvs, timestamp_ms)
}

/// An uncompressed record batch of (key, value) records; a `None` value is a tombstone.
pub fn encode_kv_batch(kvs: &[(Bytes, Option<Bytes>)], timestamp_ms: i64) -> BytesMut {
    encode_batch_as(kvs, timestamp_ms, None)
}

/// A transactional batch of (producer id, epoch) starting at `base_sequence`: the
/// offsets a TxnOffsetCommit holds until the transaction's marker (Kafka writes them
/// so too).
pub fn encode_txn_kv_batch(
    kvs: &[(Bytes, Option<Bytes>)],
    timestamp_ms: i64,
    producer: (i64, i16),
    base_sequence: i32,
) -> BytesMut {
    encode_batch_as(
        kvs,
        timestamp_ms,
        Some((producer.0, producer.1, base_sequence)),
    )
}

fn encode_batch_as(
    kvs: &[(Bytes, Option<Bytes>)],
    timestamp_ms: i64,
    txn: Option<(i64, i16, i32)>,
) -> BytesMut {
    let records: Vec<Record> = kvs
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: txn.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: txn.map_or(-1, |t| t.0),
            producer_epoch: txn.map_or(-1, |t| t.1),
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: txn.map_or(i as i32 - 1, |t| t.2.wrapping_add(i as i32)),
            timestamp: timestamp_ms,
            key: Some(key.clone()),
            value: value.clone(),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)
        .expect("uncompressed batches always encode");
    buf
}

/// The offset records in `batch` (whole batches as read from the log). Records that are
/// not offset commits (group metadata) are skipped.
pub fn decode_batches(batches: Bytes) -> Result<Vec<OffsetRecord>, String> {
    Ok(decode_all(batches)?
        .into_iter()
        .filter_map(|r| match r {
            Replayed::Offset(o) => Some(o),
            Replayed::Group(..) => None,
        })
        .collect())
}

/// What one `__consumer_offsets` batch may inflate to when it is replayed: the produce
/// path's bound for the topic's `message.max.bytes` (Kafka's default; the coordinator's
/// own batches are far smaller).
const REPLAY_INFLATED_BYTES_MAX: usize = 64 * crate::config::MESSAGE_MAX_BYTES_DEFAULT;

/// Every record of `batches` corelog understands, in log order. Record kinds it does not
/// write (the other KIP-848 records, transaction markers) are skipped.
///
/// The batches are walked with the storage layer's own parsers (CRC, counts checked
/// against the bytes, bounded decompression), not the kafka-protocol crate's decoder:
/// that one reserves memory by a batch's record count, so one corrupt count on disk made
/// start-up abort on a multi-GiB allocation (found by the `group_records` fuzz target).
pub fn decode_all(batches: Bytes) -> Result<Vec<Replayed>, String> {
    Ok(decode_kv_records(batches)?
        .into_iter()
        .filter_map(|(key, value)| replay_record(key, value))
        .collect())
}

/// The (key, value) of every keyed record in `batches` (whole batches as read from the
/// log), in log order, control batches skipped. Shared by the internal topics' replays
/// (`__consumer_offsets` here, `__transaction_state` in `txn::log`).
pub fn decode_kv_records(batches: Bytes) -> Result<Vec<(Bytes, Option<Bytes>)>, String> {
    let mut out = Vec::new();
    let mut walker = BatchWalker::new(&batches, VERIFY_CRC_ALWAYS);
    for (at, header) in walker.by_ref() {
        if header.is_control() {
            continue;
        }
        let batch = &batches[at..at + header.size()];
        let raw = records::records_section(batch, REPLAY_INFLATED_BYTES_MAX)
            .map_err(|e| format!("batch at byte {at}: {e}"))?;
        let views = records::parse_records(&raw, header.records_count)
            .map_err(|e| format!("batch at byte {at}: {e}"))?;
        for record in views {
            let Some(key) = record.key else { continue };
            let value = record.value.map(Bytes::copy_from_slice);
            out.push((Bytes::copy_from_slice(key), value));
        }
    }
    if let Some(problem) = walker.stop() {
        return Err(format!("batch at byte {}: {problem}", walker.valid_len()));
    }
    Ok(out)
}

/// One record of `__consumer_offsets`, if it is a kind corelog writes and decodes.
fn replay_record(key: Bytes, value: Option<Bytes>) -> Option<Replayed> {
    if let Some((group, topic, partition)) = decode_key(key.clone()) {
        return Some(Replayed::Offset(OffsetRecord {
            group,
            topic,
            partition,
            value: value.and_then(decode_value),
        }));
    }
    let mut k = key;
    if k.remaining() < 2 {
        return None;
    }
    let version = k.get_i16();
    let group = get_string(&mut k)?;
    let rec = match version {
        GROUP_METADATA_KEY_VERSION => match value {
            None => GroupRecord::Classic(None),
            Some(v) => GroupRecord::Classic(Some(decode_classic_metadata(v)?)),
        },
        MEMBER_METADATA_KEY_VERSION | CURRENT_ASSIGNMENT_KEY_VERSION => {
            let member = get_string(&mut k)?;
            match (version, value) {
                (MEMBER_METADATA_KEY_VERSION, None) => GroupRecord::Member(member, None),
                (MEMBER_METADATA_KEY_VERSION, Some(v)) => {
                    GroupRecord::Member(member, Some(decode_member_metadata(v)?))
                }
                (_, None) => GroupRecord::MemberAssignment(member, None),
                (_, Some(v)) => {
                    GroupRecord::MemberAssignment(member, Some(decode_current_assignment(v)?))
                }
            }
        }
        CONSUMER_GROUP_METADATA_KEY_VERSION => match value {
            None => GroupRecord::ConsumerEpoch(None),
            Some(v) => GroupRecord::ConsumerEpoch(Some(decode_consumer_epoch(v)?)),
        },
        _ => return None,
    };
    Some(Replayed::Group(group, rec))
}

mod group_records;
mod wire;

pub use group_records::*;
use wire::*;

#[cfg(test)]
mod tests;
