//! Committed offsets in `__consumer_offsets`, in Kafka's own record formats so that
//! tools reading the topic understand them: key version 1 (group, topic, partition),
//! value version 3 (offset, leader epoch, metadata, commit timestamp), big-endian with
//! Kafka strings (int16 length). A null value is a tombstone: the offset is deleted.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::coordinator::Committed;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Key schema versions: 0 and 1 are offset commits, 2 is group metadata.
const OFFSET_KEY_VERSION: i16 = 1;
const OFFSET_VALUE_VERSION: i16 = 3;

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
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: timestamp_ms,
            key: Some(encode_key(&r.group, &r.topic, r.partition)),
            value: r.value.as_ref().map(encode_value),
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
pub fn decode_batches(mut batches: Bytes) -> Result<Vec<OffsetRecord>, String> {
    let sets = RecordBatchDecoder::decode_all(&mut batches).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for record in sets.into_iter().flat_map(|s| s.records) {
        if record.control {
            continue;
        }
        let Some((group, topic, partition)) = record.key.and_then(decode_key) else {
            continue;
        };
        out.push(OffsetRecord {
            group,
            topic,
            partition,
            value: record.value.and_then(decode_value),
        });
    }
    Ok(out)
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
}
