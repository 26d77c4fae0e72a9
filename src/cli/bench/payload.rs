//! Payloads built once before the clock starts: a pool of record values (incompressible
//! random bytes or log-like text), cut into non-overlapping slots so a batch never
//! repeats a value (compression ratios stay honest), and per-partition Produce request
//! templates whose only per-send changes are the correlation id, the batch timestamps,
//! the record count (a `--rate` batch may be short), the e2e stamps and the CRC.

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

use crate::cli::client::encode_frame;
use crate::cli::produce::PRODUCE_VERSION;
use crate::cli::records::{self, encode_batch, BatchLayout, Message};

/// Size of the value pool (or 64 values when they are larger).
const POOL_BYTES: usize = 16 << 20;
const POOL_VALUES_MIN: usize = 64;
/// e2e stamp at the start of each value: run id (8 bytes) + intended send time (8 bytes,
/// ns since the run's epoch on the process's monotonic clock).
pub const STAMP_BYTES: usize = 16;
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Where the correlation id sits in a request frame: size (4), api key (2), version (2).
const CORRELATION_ID_AT: usize = 8;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PayloadKind {
    /// Incompressible bytes.
    Random,
    /// Log-like lines (timestamps, levels, classes, paths, status codes).
    Text,
}

/// xorshift64*: fast, seedable, good enough for filler bytes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// The value pool: `values` slots of `size` bytes each.
pub struct Pool {
    bytes: Bytes,
    size: usize,
    values: usize,
}

impl Pool {
    pub fn new(kind: PayloadKind, size: usize, seed: u64) -> Pool {
        let values = (POOL_BYTES / size.max(1)).max(POOL_VALUES_MIN);
        let mut rng = Rng::new(seed);
        let mut buf = Vec::with_capacity(values * size);
        match kind {
            PayloadKind::Random => {
                while buf.len() < values * size {
                    buf.extend_from_slice(&rng.next_u64().to_le_bytes());
                }
            }
            PayloadKind::Text => {
                while buf.len() < values * size {
                    buf.extend_from_slice(log_line(&mut rng).as_bytes());
                }
            }
        }
        buf.truncate(values * size);
        Pool {
            bytes: Bytes::from(buf),
            size,
            values,
        }
    }

    /// Value `i` (wrapping around the pool).
    pub fn value(&self, i: usize) -> Bytes {
        let at = (i % self.values) * self.size;
        self.bytes.slice(at..at + self.size)
    }
}

fn log_line(rng: &mut Rng) -> String {
    const LEVELS: [&str; 4] = ["INFO ", "INFO ", "WARN ", "DEBUG"];
    const CLASSES: [&str; 5] = [
        "c.e.orders.OrderService",
        "c.e.http.RequestLogger",
        "c.e.billing.InvoiceJob",
        "c.e.auth.TokenCache",
        "c.e.search.QueryPlanner",
    ];
    const PATHS: [&str; 5] = [
        "/api/v1/orders",
        "/api/v1/users",
        "/static/app.js",
        "/api/v2/search",
        "/healthz",
    ];
    const METHODS: [&str; 3] = ["GET", "GET", "POST"];
    const STATUS: [&str; 4] = ["200", "200", "404", "500"];
    let r = rng.next_u64();
    format!(
        "2026-11-22T{:02}:{:02}:{:02}.{:03}Z {} [worker-{}] {} - {} {}/{} {} {}ms\n",
        r % 24,
        (r >> 8) % 60,
        (r >> 16) % 60,
        (r >> 24) % 1000,
        rng.pick(&LEVELS),
        (r >> 34) % 16,
        rng.pick(&CLASSES),
        rng.pick(&METHODS),
        rng.pick(&PATHS),
        (r >> 40) % 100_000,
        rng.pick(&STATUS),
        (r >> 50) % 500,
    )
}

/// A Produce request for one partition, encoded once, patched per send.
pub struct Template {
    pub frame: Vec<u8>,
    /// Where the record batch starts in `frame` (it is the frame's last field).
    batch_at: usize,
    /// Record layout of an uncompressed batch; None when compressed.
    layout: Option<BatchLayout>,
    pub records_max: usize,
    /// Records in the batch now in `frame`.
    encoded_records: usize,
    topic: String,
    partition: i32,
    acks: i16,
    compression: Compression,
}

impl Template {
    pub fn new(
        topic: &str,
        partition: i32,
        acks: i16,
        compression: Compression,
        pool: &Pool,
        first_value: usize,
        records: usize,
    ) -> anyhow::Result<Template> {
        let values: Vec<Bytes> = (0..records).map(|i| pool.value(first_value + i)).collect();
        let batch = batch_of(&values, compression)?;
        let layout = match compression {
            Compression::None => Some(records::layout(&batch)?),
            _ => None,
        };
        let mut t = Template {
            frame: Vec::new(),
            batch_at: 0,
            layout,
            records_max: records,
            encoded_records: records,
            topic: topic.to_string(),
            partition,
            acks,
            compression,
        };
        t.set_batch(batch)?;
        Ok(t)
    }

    fn set_batch(&mut self, batch: Bytes) -> anyhow::Result<()> {
        let len = batch.len();
        let mut data = PartitionProduceData::default();
        data.index = self.partition;
        data.records = Some(batch);
        let mut topic = TopicProduceData::default();
        topic.name = TopicName(StrBytes::from_string(self.topic.clone()));
        topic.partition_data = vec![data];
        let mut req = ProduceRequest::default();
        req.acks = self.acks;
        req.timeout_ms = PRODUCE_TIMEOUT_MS;
        req.topic_data = vec![topic];
        let frame = encode_frame(ApiKey::Produce, PRODUCE_VERSION, 0, &req)
            .map_err(|e| anyhow::anyhow!(e))?;
        self.batch_at = frame.len() - len;
        self.frame = frame.to_vec();
        Ok(())
    }

    /// Prepares the frame for a send of `records` records (at most `records_max`):
    /// correlation id, timestamps, e2e stamps (`stamp(i)` gives record i's 16 bytes),
    /// count, CRC. A compressed batch whose records change is encoded again from
    /// `values`. Returns the bytes to write.
    pub fn prepare(
        &mut self,
        correlation_id: i32,
        records: usize,
        timestamp_ms: i64,
        stamp: Option<&dyn Fn(usize) -> [u8; STAMP_BYTES]>,
        values: &dyn Fn(usize) -> Bytes,
    ) -> anyhow::Result<&[u8]> {
        let end = match (
            &self.layout,
            stamp.is_some() || records != self.encoded_records,
        ) {
            (Some(layout), _) => {
                let batch = &mut self.frame[self.batch_at..];
                if let Some(stamp) = stamp {
                    for (i, at) in layout.value_starts[..records].iter().enumerate() {
                        batch[*at..*at + STAMP_BYTES].copy_from_slice(&stamp(i));
                    }
                }
                self.batch_at + records::truncate_records(batch, layout, records)
            }
            (None, true) => {
                let vals: Vec<Bytes> = (0..records)
                    .map(|i| match stamp {
                        Some(s) => {
                            let mut v = values(i).to_vec();
                            v[..STAMP_BYTES].copy_from_slice(&s(i));
                            Bytes::from(v)
                        }
                        None => values(i),
                    })
                    .collect();
                let batch = batch_of(&vals, self.compression)?;
                self.set_batch(batch)?;
                self.encoded_records = records;
                self.frame.len()
            }
            (None, false) => self.frame.len(),
        };
        let batch_len = (end - self.batch_at) as i32;
        self.frame[self.batch_at - 4..self.batch_at].copy_from_slice(&batch_len.to_be_bytes());
        self.frame[..4].copy_from_slice(&(end as i32 - 4).to_be_bytes());
        self.frame[CORRELATION_ID_AT..][..4].copy_from_slice(&correlation_id.to_be_bytes());
        let batch = &mut self.frame[self.batch_at..end];
        records::set_timestamps(batch, timestamp_ms, timestamp_ms);
        records::seal(batch);
        Ok(&self.frame[..end])
    }
}

fn batch_of(values: &[Bytes], compression: Compression) -> anyhow::Result<Bytes> {
    let messages: Vec<Message> = values
        .iter()
        .map(|v| Message {
            offset: 0,
            timestamp: 0,
            key: None,
            value: Some(v.clone()),
            headers: vec![],
        })
        .collect();
    encode_batch(&messages, compression)
}

/// The e2e stamp of one record.
pub fn stamp(run_id: u64, intended_ns: u64) -> [u8; STAMP_BYTES] {
    let mut s = [0u8; STAMP_BYTES];
    s[..8].copy_from_slice(&run_id.to_be_bytes());
    s[8..].copy_from_slice(&intended_ns.to_be_bytes());
    s
}

/// The intended send time in a value stamped by this run, if it is one.
pub fn read_stamp(run_id: u64, value: &[u8]) -> Option<u64> {
    (value.len() >= STAMP_BYTES && value[..8] == run_id.to_be_bytes())
        .then(|| u64::from_be_bytes(value[8..16].try_into().expect("8 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::records::decode_fetched;

    fn frame_batch(t: &Template, frame: &[u8]) -> Bytes {
        Bytes::copy_from_slice(&frame[t.batch_at..])
    }

    #[test]
    fn template_patches_count_stamps_and_crc_for_every_codec() {
        let pool = Pool::new(PayloadKind::Text, 100, 7);
        for c in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let codec = records::parse_compression(c).unwrap();
            let mut t = Template::new("t", 3, -1, codec, &pool, 0, 8).unwrap();
            let values = |i: usize| pool.value(i);
            let st = |i: usize| stamp(42, 1000 + i as u64);
            let frame = t.prepare(9, 5, 1234, Some(&st), &values).unwrap().to_vec();
            assert_eq!(
                i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
                frame.len() - 4
            );
            assert_eq!(
                i32::from_be_bytes(frame[8..12].try_into().unwrap()),
                9,
                "{c}"
            );
            let batch = frame_batch(&t, &frame);
            assert_eq!(
                crc32c::crc32c(&batch[21..]),
                u32::from_be_bytes(batch[17..21].try_into().unwrap())
            );
            let d = decode_fetched(batch, 0).unwrap();
            assert_eq!(d.messages.len(), 5, "{c}");
            assert_eq!(d.messages[0].timestamp, 1234);
            for (i, m) in d.messages.iter().enumerate() {
                let v = m.value.as_ref().unwrap();
                assert_eq!(read_stamp(42, v), Some(1000 + i as u64), "{c}");
                assert_eq!(v[STAMP_BYTES..], pool.value(i)[STAMP_BYTES..], "{c}");
            }
            assert_eq!(read_stamp(43, &d.messages[0].value.clone().unwrap()), None);
        }
    }

    #[test]
    fn pool_slots_do_not_repeat_within_the_pool() {
        let pool = Pool::new(PayloadKind::Random, 1024, 1);
        assert_ne!(pool.value(0), pool.value(1));
        assert_eq!(pool.value(0), pool.value(pool.values));
    }
}
