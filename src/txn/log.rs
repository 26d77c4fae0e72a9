//! `__transaction_state` records in Kafka's own formats, so tools reading the topic
//! understand them: key version 0 (the transactional id), value version 0 (producer id,
//! epoch, timeout, state, partitions, last update and start times), big-endian with
//! Kafka strings (int16 length). A null value is a tombstone: the id expired.
//!
//! Batches are built and walked by the `__consumer_offsets` machinery
//! (`groups::offsets::encode_kv_batch`, `decode_kv_records`); only the record layouts
//! are here.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::state::{TxnMetadata, TxnState};
use super::TXN_STATE_TOPIC;
use crate::storage::batch::BatchHeader;
use crate::storage::log::PartitionLog;

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// Kafka's `transaction.state.log.segment.bytes` default (100 MiB).
pub const TXN_STATE_SEGMENT_BYTES: u64 = 104_857_600;

/// Bytes read per step when replaying `__transaction_state` at start-up.
const REPLAY_READ_BYTES_MAX: usize = 1 << 20;

/// The configs `__transaction_state` is created with, as Kafka creates it: compacted
/// (the latest record per id is the state) with 100 MiB segments.
pub fn txn_state_topic_configs() -> BTreeMap<String, String> {
    [
        ("cleanup.policy", "compact".to_string()),
        ("segment.bytes", TXN_STATE_SEGMENT_BYTES.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn put_string(out: &mut BytesMut, s: &str) {
    // Transactional ids and topic names are far below i16::MAX bytes (the request
    // decoders read them with int16 or varint lengths bounded by the frame).
    let len = s.len().min(i16::MAX as usize);
    out.put_i16(len as i16);
    out.put_slice(&s.as_bytes()[..len]);
}

fn get_string(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = usize::try_from(buf.get_i16()).ok()?;
    if buf.remaining() < len {
        return None;
    }
    String::from_utf8(buf.split_to(len).to_vec()).ok()
}

pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + transactional_id.len());
    out.put_i16(KEY_VERSION);
    put_string(&mut out, transactional_id);
    out.freeze()
}

pub fn decode_key(mut key: Bytes) -> Option<String> {
    if key.remaining() < 2 || key.get_i16() != KEY_VERSION {
        return None;
    }
    get_string(&mut key)
}

/// Value v0. Partitions are grouped by topic, as Kafka writes them.
pub fn encode_value(m: &TxnMetadata) -> Bytes {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in &m.partitions {
        by_topic.entry(topic.as_str()).or_default().push(*p);
    }
    let mut out = BytesMut::with_capacity(64 + 32 * by_topic.len());
    out.put_i16(VALUE_VERSION);
    out.put_i64(m.producer_id);
    out.put_i16(m.producer_epoch);
    out.put_i32(m.timeout_ms);
    out.put_i8(m.state.code());
    out.put_i32(by_topic.len() as i32);
    for (topic, partitions) in &by_topic {
        put_string(&mut out, topic);
        out.put_i32(partitions.len() as i32);
        for p in partitions {
            out.put_i32(*p);
        }
    }
    out.put_i64(m.last_update_ms);
    out.put_i64(m.start_ms);
    out.freeze()
}

/// Value v0; `None` for other versions or a value that does not parse.
pub fn decode_value(mut v: Bytes) -> Option<TxnMetadata> {
    if v.remaining() < 2 + 8 + 2 + 4 + 1 + 4 || v.get_i16() != VALUE_VERSION {
        return None;
    }
    let producer_id = v.get_i64();
    let producer_epoch = v.get_i16();
    let timeout_ms = v.get_i32();
    let state = TxnState::from_code(v.get_i8())?;
    let topics = v.get_i32();
    let mut m = TxnMetadata::new(producer_id, timeout_ms, 0);
    m.producer_epoch = producer_epoch;
    m.state = state;
    // A null array (-1) is no partitions; each topic needs at least 6 bytes.
    for _ in 0..topics.max(0).min((v.remaining() / 6) as i32) {
        let topic = get_string(&mut v)?;
        if v.remaining() < 4 {
            return None;
        }
        let count = v.get_i32().max(0) as usize;
        if v.remaining() < count * 4 {
            return None;
        }
        for _ in 0..count {
            m.partitions.insert((topic.clone(), v.get_i32()));
        }
    }
    if v.remaining() < 16 {
        return None;
    }
    m.last_update_ms = v.get_i64();
    m.start_ms = v.get_i64();
    Some(m)
}

/// One durable state: (id, metadata); `None` is a tombstone.
pub type Replayed = (String, Option<TxnMetadata>);

/// The records corelog understands in `batches`, in log order.
pub fn decode_batches(batches: Bytes) -> Result<Vec<Replayed>, String> {
    let kvs = crate::groups::offsets::decode_kv_records(batches)?;
    Ok(kvs
        .into_iter()
        .filter_map(|(k, v)| {
            let id = decode_key(k)?;
            match v {
                None => Some((id, None)),
                Some(v) => decode_value(v).map(|m| (id, Some(m))),
            }
        })
        .collect())
}

/// A record batch holding one id's state, for `PartitionLog::append`.
pub fn encode_batch(transactional_id: &str, m: Option<&TxnMetadata>, now_ms: i64) -> BytesMut {
    let kv = (encode_key(transactional_id), m.map(encode_value));
    crate::groups::offsets::encode_kv_batch(&[kv], now_ms)
}

/// Every record of one `__transaction_state` partition, oldest first: to the high
/// watermark (a broker's own topic at start-up), or with `written_end` to the end of
/// the log (a new leader's load: its log is the truth from its election on, as Kafka's
/// coordinator loads its whole log).
pub async fn read_partition(
    log: &PartitionLog,
    partition: i32,
    written_end: bool,
) -> Result<Vec<Replayed>, String> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = || {
        if written_end {
            log.written_offset()
        } else {
            log.high_watermark()
        }
    };
    while offset < end() {
        let read = if written_end {
            log.read_replica(offset, REPLAY_READ_BYTES_MAX).await
        } else {
            log.read(offset, REPLAY_READ_BYTES_MAX).await
        }
        .map_err(|e| format!("cannot read {TXN_STATE_TOPIC}-{partition}: {e}"))?;
        if read.batches.is_empty() {
            break;
        }
        for batch in read.batches {
            let header = BatchHeader::parse(&batch)
                .ok_or_else(|| format!("{TXN_STATE_TOPIC}-{partition}: bad batch at {offset}"))?;
            offset = header.last_offset() + 1;
            out.extend(
                decode_batches(batch).map_err(|e| format!("{TXN_STATE_TOPIC}-{partition}: {e}"))?,
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TxnMetadata {
        let mut m = TxnMetadata::new(4242, 60_000, 1_700_000_000_000);
        m.producer_epoch = 3;
        m.state = TxnState::Ongoing;
        m.start_ms = 1_699_999_999_000;
        m.partitions.insert(("orders".into(), 2));
        m.partitions.insert(("orders".into(), 0));
        m.partitions.insert(("audit-ü".into(), 7));
        m
    }

    #[test]
    fn key_uses_kafkas_layout() {
        let k = encode_key("tx");
        assert_eq!(&k[..], &[0, 0, 0, 2, b't', b'x']);
        assert_eq!(decode_key(k), Some("tx".to_string()));
        assert_eq!(decode_key(Bytes::from_static(&[0, 1, 0, 0])), None);
    }

    #[test]
    fn value_uses_kafkas_v0_layout_and_round_trips() {
        let m = sample();
        let v = encode_value(&m);
        let mut b = v.clone();
        assert_eq!(b.get_i16(), 0);
        assert_eq!(b.get_i64(), 4242);
        assert_eq!(b.get_i16(), 3);
        assert_eq!(b.get_i32(), 60_000);
        assert_eq!(b.get_i8(), 1);
        assert_eq!(b.get_i32(), 2, "two topics");
        let decoded = decode_value(v).unwrap();
        assert_eq!(decoded.partitions, m.partitions);
        assert_eq!(
            (decoded.producer_id, decoded.producer_epoch, decoded.state),
            (4242, 3, TxnState::Ongoing)
        );
        assert_eq!(
            (decoded.start_ms, decoded.last_update_ms),
            (m.start_ms, m.last_update_ms)
        );
    }

    #[test]
    fn truncated_or_lying_values_are_refused() {
        let v = encode_value(&sample());
        for cut in 0..v.len() {
            assert_eq!(decode_value(v.slice(..cut)), None, "cut at {cut}");
        }
        let mut huge = BytesMut::from(&v[..17]);
        huge.put_i32(i32::MAX);
        assert_eq!(decode_value(huge.freeze()), None);
    }

    #[test]
    fn batches_round_trip_with_tombstones() {
        let mut all = BytesMut::new();
        all.extend_from_slice(&encode_batch("a", Some(&sample()), 5));
        all.extend_from_slice(&encode_batch("a", None, 6));
        let out = decode_batches(all.freeze()).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, "a");
        assert_eq!(out[0].1.as_ref().unwrap().producer_id, 4242);
        assert_eq!(out[1], ("a".to_string(), None));
    }
}
