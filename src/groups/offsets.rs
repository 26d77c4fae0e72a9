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

fn put_string(out: &mut BytesMut, s: &str) {
    // Kafka strings are at most i16::MAX bytes; callers check lengths before committing.
    let len = s.len().min(i16::MAX as usize);
    out.put_i16(len as i16);
    out.put_slice(&s.as_bytes()[..len]);
}

fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.put_i16(-1),
    }
}

fn get_nullable_string(buf: &mut Bytes) -> Option<Option<String>> {
    if buf.remaining() >= 2 && buf[..2] == [0xff, 0xff] {
        buf.advance(2);
        return Some(None);
    }
    get_string(buf).map(Some)
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

fn get_bytes(buf: &mut Bytes) -> Option<Bytes> {
    if buf.remaining() < 4 {
        return None;
    }
    let len = usize::try_from(buf.get_i32()).unwrap_or(0);
    (buf.remaining() >= len).then(|| buf.split_to(len))
}

fn get_i32(buf: &mut Bytes) -> Option<i32> {
    (buf.remaining() >= 4).then(|| buf.get_i32())
}

fn get_i64(buf: &mut Bytes) -> Option<i64> {
    (buf.remaining() >= 8).then(|| buf.get_i64())
}

/// The key of a group record: key version, then the group id.
fn encode_group_key(version: i16, group: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + group.len());
    out.put_i16(version);
    put_string(&mut out, group);
    out.freeze()
}

/// GroupMetadata value v3 (not a flexible version: classic encodings throughout).
pub fn encode_classic_metadata(m: &ClassicMetadata) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + 128 * m.members.len());
    out.put_i16(GROUP_METADATA_VALUE_VERSION);
    put_string(&mut out, &m.protocol_type);
    out.put_i32(m.generation);
    put_nullable_string(&mut out, m.protocol.as_deref());
    put_nullable_string(&mut out, m.leader.as_deref());
    out.put_i64(m.state_timestamp_ms);
    out.put_i32(m.members.len() as i32);
    for member in &m.members {
        put_string(&mut out, &member.id);
        put_nullable_string(&mut out, member.instance_id.as_deref());
        put_string(&mut out, &member.client_id);
        put_string(&mut out, &member.client_host);
        out.put_i32(member.rebalance_timeout_ms);
        out.put_i32(member.session_timeout_ms);
        put_bytes(&mut out, &member.subscription);
        put_bytes(&mut out, &member.assignment);
    }
    out.freeze()
}

/// GroupMetadata values v0-3 (v4 is flexible and not read: corelog never writes it).
pub fn decode_classic_metadata(mut v: Bytes) -> Option<ClassicMetadata> {
    if v.remaining() < 2 {
        return None;
    }
    let version = v.get_i16();
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = get_string(&mut v)?;
    let generation = get_i32(&mut v)?;
    let protocol = get_nullable_string(&mut v)?;
    let leader = get_nullable_string(&mut v)?;
    let state_timestamp_ms = if version >= 2 { get_i64(&mut v)? } else { -1 };
    let count = usize::try_from(get_i32(&mut v)?).unwrap_or(0);
    // Each member takes at least 20 bytes: bound the count by what is there.
    if count > v.remaining() / 20 {
        return None;
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let id = get_string(&mut v)?;
        let instance_id = if version >= 3 {
            get_nullable_string(&mut v)?
        } else {
            None
        };
        let client_id = get_string(&mut v)?;
        let client_host = get_string(&mut v)?;
        let rebalance_timeout_ms = if version >= 1 { get_i32(&mut v)? } else { -1 };
        let session_timeout_ms = get_i32(&mut v)?;
        let subscription = get_bytes(&mut v)?;
        let assignment = get_bytes(&mut v)?;
        members.push(ClassicMemberRecord {
            id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(ClassicMetadata {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

/// ConsumerGroupMetadata value v0 (flexible): the epoch, then an empty tagged-field
/// section (the metadata hash Kafka 4.1 may tag there is left out, which reads as 0).
pub fn encode_consumer_epoch(epoch: i32) -> Bytes {
    let mut out = BytesMut::with_capacity(7);
    out.put_i16(CONSUMER_GROUP_METADATA_VALUE_VERSION);
    out.put_i32(epoch);
    out.put_u8(0);
    out.freeze()
}

pub fn decode_consumer_epoch(mut v: Bytes) -> Option<i32> {
    if v.remaining() < 6 || v.get_i16() != CONSUMER_GROUP_METADATA_VALUE_VERSION {
        return None;
    }
    Some(v.get_i32())
}

/// The key of a member record: key version, group id, member id.
fn encode_member_key(version: i16, group: &str, member: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(6 + group.len() + member.len());
    out.put_i16(version);
    put_string(&mut out, group);
    put_string(&mut out, member);
    out.freeze()
}

/// Compact (flexible-version) encodings: unsigned varint lengths plus one, 0 for null.
fn put_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_compact_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        None => out.put_u8(0),
        Some(s) => {
            put_uvarint(out, s.len() as u32 + 1);
            out.put_slice(s.as_bytes());
        }
    }
}

fn get_uvarint(buf: &mut Bytes) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let b = buf.get_u8();
        v |= u32::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn get_compact_string(buf: &mut Bytes) -> Option<Option<String>> {
    let n = get_uvarint(buf)? as usize;
    if n == 0 {
        return Some(None);
    }
    let len = n - 1;
    if buf.remaining() < len {
        return None;
    }
    String::from_utf8(buf.split_to(len).to_vec()).ok().map(Some)
}

/// A compact array's length; `min_entry_bytes` bounds it by what is left.
fn get_compact_len(buf: &mut Bytes, min_entry_bytes: usize) -> Option<usize> {
    let n = (get_uvarint(buf)? as usize).checked_sub(1)?;
    (n <= buf.remaining() / min_entry_bytes.max(1)).then_some(n)
}

/// Skips a tagged-field section (none of these records' tags is needed).
fn skip_tagged(buf: &mut Bytes) -> Option<()> {
    let count = get_uvarint(buf)?;
    for _ in 0..count {
        get_uvarint(buf)?;
        let size = get_uvarint(buf)? as usize;
        if buf.remaining() < size {
            return None;
        }
        buf.advance(size);
    }
    Some(())
}

pub fn encode_member_metadata(m: &MemberMetadata) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    out.put_i16(MEMBER_VALUE_VERSION);
    put_compact_string(&mut out, m.instance_id.as_deref());
    put_compact_string(&mut out, m.rack_id.as_deref());
    put_compact_string(&mut out, Some(&m.client_id));
    put_compact_string(&mut out, Some(&m.client_host));
    put_uvarint(&mut out, m.topic_names.len() as u32 + 1);
    for t in &m.topic_names {
        put_compact_string(&mut out, Some(t));
    }
    put_compact_string(&mut out, m.topic_regex.as_deref());
    out.put_i32(m.rebalance_timeout_ms);
    put_compact_string(&mut out, m.server_assignor.as_deref());
    out.put_u8(0);
    out.freeze()
}

pub fn decode_member_metadata(mut v: Bytes) -> Option<MemberMetadata> {
    if v.remaining() < 2 || v.get_i16() != MEMBER_VALUE_VERSION {
        return None;
    }
    let instance_id = get_compact_string(&mut v)?;
    let rack_id = get_compact_string(&mut v)?;
    let client_id = get_compact_string(&mut v)??;
    let client_host = get_compact_string(&mut v)??;
    let count = get_compact_len(&mut v, 1)?;
    let mut topic_names = Vec::with_capacity(count);
    for _ in 0..count {
        topic_names.push(get_compact_string(&mut v)??);
    }
    let topic_regex = get_compact_string(&mut v)?;
    let rebalance_timeout_ms = get_i32(&mut v)?;
    let server_assignor = get_compact_string(&mut v)?;
    skip_tagged(&mut v)?;
    Some(MemberMetadata {
        instance_id,
        rack_id,
        client_id,
        client_host,
        topic_names,
        topic_regex,
        rebalance_timeout_ms,
        server_assignor,
    })
}

fn put_topic_partitions(out: &mut BytesMut, a: &Assignment) {
    put_uvarint(out, a.len() as u32 + 1);
    for (topic, parts) in a {
        out.put_slice(topic);
        put_uvarint(out, parts.len() as u32 + 1);
        for p in parts {
            out.put_i32(*p);
        }
        out.put_u8(0);
    }
}

fn get_topic_partitions(buf: &mut Bytes) -> Option<Assignment> {
    let topics = get_compact_len(buf, 18)?;
    let mut a = Assignment::new();
    for _ in 0..topics {
        if buf.remaining() < 16 {
            return None;
        }
        let mut id = [0u8; 16];
        buf.copy_to_slice(&mut id);
        let count = get_compact_len(buf, 4)?;
        let parts = a.entry(id).or_default();
        for _ in 0..count {
            parts.insert(get_i32(buf)?);
        }
        skip_tagged(buf)?;
    }
    Some(a)
}

pub fn encode_current_assignment(c: &CurrentAssignment) -> Bytes {
    let mut out = BytesMut::with_capacity(32);
    out.put_i16(MEMBER_VALUE_VERSION);
    out.put_i32(c.epoch);
    out.put_i32(c.previous_epoch);
    out.put_i8(c.state);
    put_topic_partitions(&mut out, &c.assigned);
    put_topic_partitions(&mut out, &c.revoking);
    out.put_u8(0);
    out.freeze()
}

pub fn decode_current_assignment(mut v: Bytes) -> Option<CurrentAssignment> {
    if v.remaining() < 11 || v.get_i16() != MEMBER_VALUE_VERSION {
        return None;
    }
    let epoch = v.get_i32();
    let previous_epoch = v.get_i32();
    let state = v.get_i8();
    let assigned = get_topic_partitions(&mut v)?;
    let revoking = get_topic_partitions(&mut v)?;
    skip_tagged(&mut v)?;
    Some(CurrentAssignment {
        epoch,
        previous_epoch,
        state,
        assigned,
        revoking,
    })
}

/// Key and value of a group record.
pub fn encode_group_record(group: &str, record: &GroupRecord) -> (Bytes, Option<Bytes>) {
    match record {
        GroupRecord::Member(id, m) => (
            encode_member_key(MEMBER_METADATA_KEY_VERSION, group, id),
            m.as_ref().map(encode_member_metadata),
        ),
        GroupRecord::MemberAssignment(id, a) => (
            encode_member_key(CURRENT_ASSIGNMENT_KEY_VERSION, group, id),
            a.as_ref().map(encode_current_assignment),
        ),
        GroupRecord::Classic(m) => (
            encode_group_key(GROUP_METADATA_KEY_VERSION, group),
            m.as_ref().map(encode_classic_metadata),
        ),
        GroupRecord::ConsumerEpoch(e) => (
            encode_group_key(CONSUMER_GROUP_METADATA_KEY_VERSION, group),
            e.map(encode_consumer_epoch),
        ),
    }
}

fn get_string(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 {
        return Some(String::new());
    }
    let len = len as usize;
    if buf.remaining() < len {
        return None;
    }
    String::from_utf8(buf.split_to(len).to_vec()).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(offset: i64) -> Committed {
        Committed {
            offset,
            leader_epoch: 4,
            metadata: "meta-ü".into(),
            commit_timestamp_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn transactional_offsets_carry_the_producer_and_replay_as_offsets() {
        let kvs = vec![
            (encode_key("g", "t", 0), Some(encode_value(&committed(5)))),
            (encode_key("g", "t", 1), Some(encode_value(&committed(6)))),
        ];
        let batch = encode_txn_kv_batch(&kvs, 1_700_000_000_000, (42, 3), 7).freeze();
        let header = crate::storage::batch::BatchHeader::parse(&batch).unwrap();
        assert!(header.is_transactional() && !header.is_control());
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (42, 3, 7)
        );
        assert_eq!(header.last_sequence(), 8);
        let offsets = decode_batches(batch).unwrap();
        assert_eq!(offsets.len(), 2);
        assert_eq!(offsets[1].value, Some(committed(6)));
        // A plain batch stays non-transactional, with no producer.
        let plain = encode_kv_batch(&kvs, 1_700_000_000_000).freeze();
        let header = crate::storage::batch::BatchHeader::parse(&plain).unwrap();
        assert!(!header.is_transactional());
        assert_eq!(header.producer_id, -1);
    }

    #[test]
    fn key_and_value_use_kafkas_layout() {
        let key = encode_key("g", "t", 7);
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
        let value = encode_value(&committed(42));
        assert_eq!(&value[..2], &[0, 3]);
        assert_eq!(&value[2..10], &42i64.to_be_bytes());
        assert_eq!(&value[10..14], &4i32.to_be_bytes());
        assert_eq!(decode_value(value), Some(committed(42)));
        assert_eq!(decode_key(key), Some(("g".into(), "t".into(), 7)));
    }

    #[test]
    fn older_value_versions_decode() {
        let mut v1 = BytesMut::new();
        v1.put_i16(1);
        v1.put_i64(9);
        put_string(&mut v1, "m");
        v1.put_i64(5);
        v1.put_i64(6);
        let c = decode_value(v1.freeze()).unwrap();
        assert_eq!(
            (c.offset, c.leader_epoch, c.commit_timestamp_ms),
            (9, -1, 5)
        );
        assert_eq!(decode_key(Bytes::from_static(&[0, 2, 0, 1, b'g'])), None);
    }

    #[test]
    fn group_metadata_uses_kafkas_v3_layout_and_round_trips() {
        let meta = ClassicMetadata {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp_ms: 1_700_000_000_999,
            members: vec![ClassicMemberRecord {
                id: "m-1".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let (key, value) = encode_group_record("g", &GroupRecord::Classic(Some(meta.clone())));
        assert_eq!(&key[..], &[0, 2, 0, 1, b'g']);
        let value = value.unwrap();
        assert_eq!(&value[..2], &[0, 3]);
        assert_eq!(
            &value[2..12],
            &[0, 8, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r']
        );
        assert_eq!(decode_classic_metadata(value.clone()), Some(meta.clone()));
        // Truncations never decode to something else or panic.
        for n in 0..value.len() {
            assert_eq!(decode_classic_metadata(value.slice(..n)), None, "{n}");
        }
        let empty = ClassicMetadata {
            members: vec![],
            protocol: None,
            leader: None,
            ..meta
        };
        assert_eq!(
            decode_classic_metadata(encode_classic_metadata(&empty)),
            Some(empty)
        );
    }

    #[test]
    fn group_records_replay_in_order_beside_offsets() {
        let kvs = vec![
            encode_group_record("g", &GroupRecord::ConsumerEpoch(Some(12))),
            (encode_key("g", "t", 0), Some(encode_value(&committed(5)))),
            encode_group_record("h", &GroupRecord::Classic(None)),
        ];
        let (k, v) = &kvs[0];
        assert_eq!(&k[..], &[0, 3, 0, 1, b'g']);
        assert_eq!(&v.as_ref().unwrap()[..], &[0, 0, 0, 0, 0, 12, 0]);
        let all = decode_all(encode_kv_batch(&kvs, 1).freeze()).unwrap();
        assert_eq!(
            all,
            vec![
                Replayed::Group("g".into(), GroupRecord::ConsumerEpoch(Some(12))),
                Replayed::Offset(OffsetRecord {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 0,
                    value: Some(committed(5)),
                }),
                Replayed::Group("h".into(), GroupRecord::Classic(None)),
            ]
        );
    }

    #[test]
    fn member_records_round_trip_in_kafkas_flexible_layout() {
        let meta = MemberMetadata {
            instance_id: None,
            rack_id: Some("r".into()),
            client_id: "c".into(),
            client_host: "/h".into(),
            topic_names: vec!["a".into(), "bb".into()],
            topic_regex: None,
            rebalance_timeout_ms: 300_000,
            server_assignor: Some("range".into()),
        };
        let v = encode_member_metadata(&meta);
        // version, null instance, "r", "c", "/h", [a, bb], null regex, timeout, "range", tags
        assert_eq!(&v[..9], &[0, 0, 0, 2, b'r', 2, b'c', 3, b'/']);
        assert_eq!(*v.last().unwrap(), 0);
        assert_eq!(decode_member_metadata(v.clone()), Some(meta));
        for n in 0..v.len() {
            assert_eq!(decode_member_metadata(v.slice(..n)), None, "{n}");
        }
        let a = CurrentAssignment {
            epoch: 5,
            previous_epoch: 4,
            state: 1,
            assigned: Assignment::from([([1; 16], [0, 2].into())]),
            revoking: Assignment::from([([2; 16], [7].into())]),
        };
        let v = encode_current_assignment(&a);
        assert_eq!(&v[..11], &[0, 0, 0, 0, 0, 5, 0, 0, 0, 4, 1]);
        assert_eq!(decode_current_assignment(v.clone()), Some(a.clone()));
        for n in 0..v.len() {
            assert_eq!(decode_current_assignment(v.slice(..n)), None, "{n}");
        }
        let kvs = vec![
            encode_group_record(
                "g",
                &GroupRecord::MemberAssignment("m".into(), Some(a.clone())),
            ),
            encode_group_record("g", &GroupRecord::Member("m".into(), None)),
        ];
        assert_eq!(&kvs[0].0[..], &[0, 8, 0, 1, b'g', 0, 1, b'm']);
        assert_eq!(
            decode_all(encode_kv_batch(&kvs, 1).freeze()).unwrap(),
            vec![
                Replayed::Group(
                    "g".into(),
                    GroupRecord::MemberAssignment("m".into(), Some(a))
                ),
                Replayed::Group("g".into(), GroupRecord::Member("m".into(), None)),
            ]
        );
    }

    #[test]
    fn batches_round_trip_with_tombstones() {
        let records = vec![
            OffsetRecord {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                value: Some(committed(10)),
            },
            OffsetRecord {
                group: "g".into(),
                topic: "t".into(),
                partition: 1,
                value: None,
            },
        ];
        let batch = encode_batch(&records, 1);
        crate::storage::batch::BatchHeader::parse(&batch).expect("a valid v2 batch");
        assert_eq!(decode_batches(batch.freeze()).unwrap(), records);
    }

    /// Fuzz finding (group_records): a stored batch whose record count says 2^31 - 1
    /// (CRC right) made the crate's decoder reserve that many records and abort the
    /// process at start-up. It is now a replay error naming the batch.
    #[test]
    fn a_corrupt_record_count_is_an_error_not_an_allocation() {
        let records = vec![OffsetRecord {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(committed(10)),
        }];
        let mut batch = encode_batch(&records, 1);
        batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        batch[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        let error = decode_all(batch.freeze()).unwrap_err();
        assert!(error.contains("batch at byte 0"), "{error}");
        // A torn tail after whole batches is an error too, as the crate made it.
        let mut torn = encode_batch(&records, 1);
        let whole = torn.len();
        torn.extend_from_slice(&encode_batch(&records, 2)[..30]);
        let error = decode_all(torn.freeze()).unwrap_err();
        assert!(error.contains(&format!("batch at byte {whole}")), "{error}");
    }
}
