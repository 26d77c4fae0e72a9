//! `corelog produce TOPIC`: one record per input line, like kafka-console-producer.
//! Lines are read on their own thread, so a batch leaves after `--linger-ms` even while
//! the input is quiet; records collect per partition until `--batch-size` bytes, then
//! every pending batch goes out, one Produce request per leader. Every ack is awaited.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

use super::client::Cluster;
use super::murmur2::partition_for_key;
use super::records::{encode_batch, Message};
use super::topic::{broker_error, leaders, TopicError};

/// Produce v8: record batches v2, per-record errors; not flexible, so any broker since
/// Kafka 2.4 takes it.
pub const PRODUCE_VERSION: i16 = 8;
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Lines read ahead of the sender.
const LINES_QUEUED_MAX: usize = 10_000;
/// Per-record overhead counted towards --batch-size (varints, attributes, deltas).
const RECORD_OVERHEAD_BYTES: usize = 16;
/// Retries of a batch whose leader moved or was not ready.
const SEND_RETRIES_MAX: u32 = 5;
const SEND_RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NETWORK_EXCEPTION,
/// UNKNOWN_LEADER_EPOCH: the batch is sent again (to the new leader) after Metadata.
const RETRIABLE_CODES: [i16; 5] = [5, 6, 7, 13, 75];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Partitioner {
    /// Keyed records by murmur2 of the key; keyless ones sticky, a batch at a time.
    Murmur2,
    /// Every record to the next partition, keys ignored.
    Roundrobin,
}

pub struct ProduceOptions {
    pub topic: String,
    pub key_separator: Option<String>,
    pub headers: Vec<(String, String)>,
    pub acks: i16,
    pub compression: Compression,
    pub linger: Duration,
    pub batch_bytes: usize,
    pub partition: Option<i32>,
    pub partitioner: Partitioner,
}

/// What was written to one partition; offsets are -1 with acks=0 (no answer).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PartitionSummary {
    pub records: u64,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Default)]
pub struct ProduceSummary {
    pub topic: String,
    pub records: u64,
    pub partitions: BTreeMap<i32, PartitionSummary>,
}

/// Records waiting for their batch to fill or linger out.
struct Pending {
    by_partition: BTreeMap<i32, (Vec<Message>, usize)>,
    since: Option<Instant>,
}

impl Pending {
    /// Adds `message` to its partition's batch; returns that batch's size in bytes.
    fn add(&mut self, partition: i32, message: Message) -> usize {
        let size = RECORD_OVERHEAD_BYTES
            + message.key.as_ref().map_or(0, Bytes::len)
            + message.value.as_ref().map_or(0, Bytes::len)
            + message
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len))
                .sum::<usize>();
        let slot = self.by_partition.entry(partition).or_default();
        slot.0.push(message);
        slot.1 += size;
        self.since.get_or_insert_with(Instant::now);
        slot.1
    }
}

/// Picks each record's partition.
struct Router {
    partitions: i32,
    /// The sticky partition of keyless records, or the last round-robin one.
    next: i32,
}

impl Router {
    fn route(&mut self, opts: &ProduceOptions, key: Option<&Bytes>) -> i32 {
        match (opts.partition, opts.partitioner, key) {
            (Some(p), _, _) => p,
            (None, Partitioner::Murmur2, Some(key)) => partition_for_key(key, self.partitions),
            (None, Partitioner::Murmur2, None) => self.next,
            (None, Partitioner::Roundrobin, _) => {
                self.next = (self.next + 1) % self.partitions;
                self.next
            }
        }
    }

    /// Sticky: after a batch leaves, keyless records move on to the next partition.
    fn batch_sent(&mut self, opts: &ProduceOptions) {
        if opts.partitioner == Partitioner::Murmur2 {
            self.next = (self.next + 1) % self.partitions;
        }
    }
}

/// Reads `input` line by line and produces every line; on a broker error returns it after
/// the batches already acknowledged are in the summary.
pub fn run(
    cluster: &mut Cluster,
    opts: &ProduceOptions,
    input: Box<dyn BufRead + Send>,
) -> Result<ProduceSummary, TopicError> {
    let mut leader_of = leaders(cluster, &opts.topic, true)?;
    let mut router = Router {
        partitions: leader_of.len() as i32,
        next: 0,
    };
    if let Some(p) = opts.partition.filter(|p| !leader_of.contains_key(p)) {
        return Err(TopicError::Usage(format!(
            "{}: no partition {p} (the topic has {})",
            opts.topic, router.partitions
        )));
    }
    let lines = spawn_reader(input);
    let mut summary = ProduceSummary {
        topic: opts.topic.clone(),
        ..ProduceSummary::default()
    };
    let mut pending = Pending {
        by_partition: BTreeMap::new(),
        since: None,
    };
    let mut line_no = 0u64;
    loop {
        let wait = pending.since.map_or(Duration::from_secs(3600), |t| {
            (t + opts.linger).saturating_duration_since(Instant::now())
        });
        let parsed = match lines.recv_timeout(wait) {
            Ok(Ok(line)) => {
                line_no += 1;
                parse_line(line, opts, line_no)
            }
            Ok(Err(e)) => Err(TopicError::Usage(format!("reading input: {e}"))),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                flush(cluster, opts, &mut leader_of, &mut pending, &mut summary)?;
                router.batch_sent(opts);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let message = match parsed {
            Ok(m) => m,
            Err(e) => {
                // What came before the bad line is sent, as kafka-console-producer does.
                flush(cluster, opts, &mut leader_of, &mut pending, &mut summary)?;
                return Err(e);
            }
        };
        let partition = router.route(opts, message.key.as_ref());
        if pending.add(partition, message) >= opts.batch_bytes {
            flush(cluster, opts, &mut leader_of, &mut pending, &mut summary)?;
            router.batch_sent(opts);
        }
    }
    flush(cluster, opts, &mut leader_of, &mut pending, &mut summary)?;
    Ok(summary)
}

fn spawn_reader(mut input: Box<dyn BufRead + Send>) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::sync_channel(LINES_QUEUED_MAX);
    std::thread::spawn(move || loop {
        let mut line = Vec::new();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if tx.send(Ok(line)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    });
    rx
}

/// One input line as a record: split into key and value at the first separator when
/// `--key-separator` is given (a line without it is an error naming its number).
fn parse_line(line: Vec<u8>, opts: &ProduceOptions, line_no: u64) -> Result<Message, TopicError> {
    let (key, value) = match &opts.key_separator {
        None => (None, Bytes::from(line)),
        Some(sep) => {
            let sep = sep.as_bytes();
            let at = line
                .windows(sep.len())
                .position(|w| w == sep)
                .ok_or_else(|| {
                    TopicError::Usage(format!(
                        "line {line_no} has no key separator {:?}: with --key-separator every line must be KEY{}VALUE",
                        String::from_utf8_lossy(sep),
                        String::from_utf8_lossy(sep)
                    ))
                })?;
            let line = Bytes::from(line);
            (Some(line.slice(..at)), line.slice(at + sep.len()..))
        }
    };
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Ok(Message {
        offset: 0,
        timestamp,
        key,
        value: Some(value),
        headers: opts
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone()))))
            .collect(),
    })
}

/// Sends every pending batch (see `send_records`).
fn flush(
    cluster: &mut Cluster,
    opts: &ProduceOptions,
    leader_of: &mut BTreeMap<i32, i32>,
    pending: &mut Pending,
    summary: &mut ProduceSummary,
) -> Result<(), TopicError> {
    pending.since = None;
    let by_partition = std::mem::take(&mut pending.by_partition)
        .into_iter()
        .map(|(p, (messages, _))| (p, messages))
        .collect();
    send_records(cluster, opts, leader_of, by_partition, summary)
}

/// Sends one batch per partition of `by_partition`, one request per leader, and waits
/// for the acks; retries batches whose leader moved after refreshing Metadata. Shared
/// with `corelog connect` (connect/file_source.rs), which only moves its file position
/// once this returns Ok.
pub fn send_records(
    cluster: &mut Cluster,
    opts: &ProduceOptions,
    leader_of: &mut BTreeMap<i32, i32>,
    by_partition: BTreeMap<i32, Vec<Message>>,
    summary: &mut ProduceSummary,
) -> Result<(), TopicError> {
    let mut batches: BTreeMap<i32, (Bytes, u64)> = BTreeMap::new();
    for (p, messages) in by_partition {
        let bytes = encode_batch(&messages, opts.compression)
            .map_err(|e| TopicError::Usage(format!("encoding a record batch: {e}")))?;
        batches.insert(p, (bytes, messages.len() as u64));
    }
    let mut attempt = 0;
    while !batches.is_empty() {
        attempt += 1;
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for p in batches.keys() {
            by_leader.entry(leader_of[p]).or_default().push(*p);
        }
        let mut retry = None;
        for (leader, parts) in by_leader {
            for (p, code) in send(cluster, opts, leader, &parts, &mut batches, summary)? {
                if attempt >= SEND_RETRIES_MAX || !RETRIABLE_CODES.contains(&code) {
                    return Err(broker_error(&format!("{}-{p}", opts.topic), code, None));
                }
                retry = Some(code);
            }
        }
        if retry.is_some() {
            std::thread::sleep(SEND_RETRY_BACKOFF);
            *leader_of = leaders(cluster, &opts.topic, false)?;
        }
    }
    Ok(())
}

/// One Produce request to `leader` for `parts`; acknowledged batches leave `batches` and
/// enter the summary. Returns the partitions that failed with a retriable-looking code.
fn send(
    cluster: &mut Cluster,
    opts: &ProduceOptions,
    leader: i32,
    parts: &[i32],
    batches: &mut BTreeMap<i32, (Bytes, u64)>,
    summary: &mut ProduceSummary,
) -> Result<Vec<(i32, i16)>, TopicError> {
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_string(opts.topic.clone()));
    topic.partition_data = parts
        .iter()
        .map(|p| {
            let mut d = PartitionProduceData::default();
            d.index = *p;
            d.records = Some(batches[p].0.clone());
            d
        })
        .collect();
    let mut req = ProduceRequest::default();
    req.acks = opts.acks;
    req.timeout_ms = PRODUCE_TIMEOUT_MS;
    req.topic_data = vec![topic];
    let client = cluster.broker(leader)?;
    if opts.acks == 0 {
        client.send(ApiKey::Produce, PRODUCE_VERSION, &req)?;
        for p in parts {
            let (_, n) = batches.remove(p).expect("partition has a batch");
            note(summary, *p, n, -1);
        }
        return Ok(Vec::new());
    }
    let resp: ProduceResponse = client.call(ApiKey::Produce, PRODUCE_VERSION, &req)?;
    let mut failed = Vec::new();
    for r in resp.responses.iter().flat_map(|t| &t.partition_responses) {
        if r.error_code != 0 {
            if !RETRIABLE_CODES.contains(&r.error_code) {
                let what = format!("{}-{}", opts.topic, r.index);
                return Err(broker_error(&what, r.error_code, r.error_message.as_ref()));
            }
            failed.push((r.index, r.error_code));
            continue;
        }
        if let Some((_, n)) = batches.remove(&r.index) {
            note(summary, r.index, n, r.base_offset);
        }
    }
    Ok(failed)
}

fn note(summary: &mut ProduceSummary, partition: i32, records: u64, base_offset: i64) {
    summary.records += records;
    let s = summary
        .partitions
        .entry(partition)
        .or_insert(PartitionSummary {
            records: 0,
            first_offset: base_offset,
            last_offset: -1,
        });
    s.records += records;
    s.last_offset = if base_offset >= 0 {
        base_offset + records as i64 - 1
    } else {
        -1
    };
}

/// `{"topic":..,"records":N,"partitions":[{"partition":p,"records":n,"first_offset":a,"last_offset":b}]}`
pub fn render_json(s: &ProduceSummary) -> String {
    let parts: Vec<serde_json::Value> = s
        .partitions
        .iter()
        .map(|(p, ps)| {
            serde_json::json!({"partition": p, "records": ps.records,
                "first_offset": ps.first_offset, "last_offset": ps.last_offset})
        })
        .collect();
    serde_json::json!({"topic": s.topic, "records": s.records, "partitions": parts}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(sep: Option<&str>) -> ProduceOptions {
        ProduceOptions {
            topic: "t".into(),
            key_separator: sep.map(str::to_string),
            headers: vec![("a".into(), "b".into())],
            acks: -1,
            compression: Compression::None,
            linger: Duration::ZERO,
            batch_bytes: 1,
            partition: None,
            partitioner: Partitioner::Murmur2,
        }
    }

    #[test]
    fn splits_at_first_separator() {
        let m = parse_line(b"k::v::w".to_vec(), &opts(Some("::")), 1).unwrap();
        assert_eq!(m.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(m.value.as_deref(), Some(&b"v::w"[..]));
        assert_eq!(
            m.headers,
            vec![("a".into(), Some(Bytes::from_static(b"b")))]
        );
        let m = parse_line(b"k:v".to_vec(), &opts(None), 1).unwrap();
        assert_eq!((m.key, m.value.as_deref()), (None, Some(&b"k:v"[..])));
    }

    #[test]
    fn line_without_separator_names_its_number() {
        match parse_line(b"novalue".to_vec(), &opts(Some(":")), 7) {
            Err(TopicError::Usage(m)) => {
                assert!(m.starts_with("line 7 has no key separator"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
}
