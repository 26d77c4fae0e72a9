//! Group records in `__consumer_offsets`: a classic group's GroupMetadata, a consumer
//! group's epoch, and the consumer protocol's member and current-assignment records,
//! each in the key and value versions Kafka writes.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::wire::*;
use super::*;

/// The key of a group record: key version, then the group id.
pub(super) fn encode_group_key(version: i16, group: &str) -> Bytes {
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
pub(super) fn encode_member_key(version: i16, group: &str, member: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(6 + group.len() + member.len());
    out.put_i16(version);
    put_string(&mut out, group);
    put_string(&mut out, member);
    out.freeze()
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

pub(super) fn put_topic_partitions(out: &mut BytesMut, a: &Assignment) {
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

pub(super) fn get_topic_partitions(buf: &mut Bytes) -> Option<Assignment> {
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
