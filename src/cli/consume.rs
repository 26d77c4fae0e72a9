//! `corelog consume TOPIC`: prints records as they arrive, like kafka-console-consumer.
//! Without `--group` it reads all partitions (or `--partition`) from latest, from the
//! beginning, or from `--offset`; with `--group` it is a group member (group_member.rs)
//! that starts at the committed offsets. One Fetch per leader per round, each waiting at
//! most `FETCH_WAIT_MAX_MS` so signals, timeouts and heartbeats are noticed promptly.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::client::Cluster;
use super::group_member::{GroupMember, FETCH_WAIT_MAX_MS};
use super::offsets::{list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use super::records::{decode_fetched, Message};
use super::topic::{broker_error, leaders, TopicError};

/// Fetch v11: topic names (not ids), not flexible, record batches v2.
pub const FETCH_VERSION: i16 = 11;
const FETCH_BYTES_MAX: i32 = 50 << 20;
const PARTITION_FETCH_BYTES_MAX: i32 = 1 << 20;
const OFFSET_OUT_OF_RANGE: i16 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
    Offset(i64),
}

impl std::str::FromStr for Start {
    type Err = String;
    fn from_str(s: &str) -> Result<Start, String> {
        match s {
            "earliest" | "beginning" => Ok(Start::Earliest),
            "latest" | "end" => Ok(Start::Latest),
            n => n
                .parse::<i64>()
                .ok()
                .filter(|o| *o >= 0)
                .map(Start::Offset)
                .ok_or_else(|| format!("{n:?} is not an offset, earliest or latest")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The value only.
    Value,
    /// Key, separator, value.
    Kv,
    /// One JSON object per record.
    Json,
}

pub struct ConsumeOptions {
    pub topic: String,
    pub start: Start,
    pub partition: Option<i32>,
    pub group: Option<String>,
    pub max_messages: Option<u64>,
    pub timeout: Option<Duration>,
    pub format: Format,
    pub key_separator: String,
}

/// Where the loop stands.
struct State {
    leader_of: BTreeMap<i32, i32>,
    /// partition → next offset to fetch (and, with a group, to commit)
    positions: BTreeMap<i32, i64>,
    printed: u64,
    last_data: Instant,
}

/// Consumes until `--max-messages`, `--timeout-ms` without data, or SIGINT/SIGTERM.
pub fn run(cluster: &mut Cluster, opts: &ConsumeOptions) -> Result<u64, TopicError> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| TopicError::Usage(format!("cannot handle signals: {e}")))?;
    }
    let leader_of = leaders(cluster, &opts.topic, false)?;
    if let Some(p) = opts.partition {
        if !leader_of.contains_key(&p) {
            return Err(TopicError::Usage(format!(
                "{}: no partition {p} (the topic has {})",
                opts.topic,
                leader_of.len()
            )));
        }
    }
    let mut state = State {
        leader_of,
        positions: BTreeMap::new(),
        printed: 0,
        last_data: Instant::now(),
    };
    let mut member = match &opts.group {
        Some(g) => Some(GroupMember::join(cluster, g, &opts.topic)?),
        None => None,
    };
    start_positions(cluster, opts, &mut state, member.as_ref())?;
    // --timeout-ms counts from when records can flow, not from before the group join.
    state.last_data = Instant::now();
    let result = consume_loop(cluster, opts, &mut state, &mut member, &stop);
    if let Some(m) = member {
        // Commit what was printed and leave even when the loop failed.
        let left = m.leave(cluster, &state.positions);
        result?;
        left?;
    } else {
        result?;
    }
    Ok(state.printed)
}

fn consume_loop(
    cluster: &mut Cluster,
    opts: &ConsumeOptions,
    state: &mut State,
    member: &mut Option<GroupMember>,
    stop: &AtomicBool,
) -> Result<(), TopicError> {
    let mut out = std::io::stdout().lock();
    let wait_ms = opts.timeout.map_or(FETCH_WAIT_MAX_MS, |t| {
        (t.as_millis() as i32).clamp(1, FETCH_WAIT_MAX_MS)
    });
    loop {
        if stop.load(Ordering::Relaxed) || done(opts, state) {
            return Ok(());
        }
        if let Some(m) = member.as_mut() {
            if m.tick(cluster, &state.positions)? {
                state.positions.clear();
                start_positions(cluster, opts, state, Some(m))?;
                state.last_data = Instant::now();
            }
        }
        if state.positions.is_empty() {
            std::thread::sleep(Duration::from_millis(wait_ms as u64));
            continue;
        }
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for (p, o) in &state.positions {
            by_leader
                .entry(state.leader_of[p])
                .or_default()
                .push((*p, *o));
        }
        for (leader, parts) in by_leader {
            if fetch_from(cluster, opts, state, leader, &parts, wait_ms, &mut out)? {
                return Ok(());
            }
        }
    }
}

fn done(opts: &ConsumeOptions, state: &State) -> bool {
    opts.max_messages.is_some_and(|n| state.printed >= n)
        || opts.timeout.is_some_and(|t| state.last_data.elapsed() >= t)
}

/// Where each owned partition starts: the committed offset (with a group), else the
/// `--from-beginning` / `--offset` choice.
fn start_positions(
    cluster: &mut Cluster,
    opts: &ConsumeOptions,
    state: &mut State,
    member: Option<&GroupMember>,
) -> Result<(), TopicError> {
    let owned: Vec<i32> = match (member, opts.partition) {
        (Some(m), _) => m.assignment.clone(),
        (None, Some(p)) => vec![p],
        (None, None) => state.leader_of.keys().copied().collect(),
    };
    let committed = match (member, &opts.group) {
        (Some(m), Some(g)) if !owned.is_empty() => {
            super::offsets::committed(cluster, m.coordinator, g, &opts.topic, &owned)?
        }
        _ => BTreeMap::new(),
    };
    let rest: Vec<i32> = owned
        .iter()
        .copied()
        .filter(|p| !committed.contains_key(p))
        .collect();
    state.positions.extend(committed);
    let resolved = resolve(cluster, opts, state, &rest, opts.start)?;
    state.positions.extend(resolved);
    Ok(())
}

/// Offsets for `parts` per `start`; an explicit offset is clamped into the log, as
/// OFFSET_OUT_OF_RANGE would send it anyway.
fn resolve(
    cluster: &mut Cluster,
    opts: &ConsumeOptions,
    state: &State,
    parts: &[i32],
    start: Start,
) -> Result<BTreeMap<i32, i64>, TopicError> {
    let ts = match start {
        Start::Earliest => EARLIEST_TIMESTAMP,
        Start::Latest | Start::Offset(_) => LATEST_TIMESTAMP,
    };
    let queries: Vec<(i32, i64)> = parts.iter().map(|p| (*p, ts)).collect();
    let found = list_offsets(cluster, &opts.topic, &state.leader_of, &queries)?;
    let Start::Offset(n) = start else {
        return Ok(found);
    };
    let queries: Vec<(i32, i64)> = parts.iter().map(|p| (*p, EARLIEST_TIMESTAMP)).collect();
    let earliest = list_offsets(cluster, &opts.topic, &state.leader_of, &queries)?;
    Ok(found
        .into_iter()
        .map(|(p, latest)| (p, n.clamp(earliest.get(&p).copied().unwrap_or(0), latest)))
        .collect())
}

/// One Fetch to `leader`; prints what came. Returns true once the loop should end.
fn fetch_from(
    cluster: &mut Cluster,
    opts: &ConsumeOptions,
    state: &mut State,
    leader: i32,
    parts: &[(i32, i64)],
    wait_ms: i32,
    out: &mut impl Write,
) -> Result<bool, TopicError> {
    let req = fetch_request(&opts.topic, parts, wait_ms);
    let resp: FetchResponse = cluster
        .broker(leader)?
        .call(ApiKey::Fetch, FETCH_VERSION, &req)?;
    if resp.error_code != 0 {
        return Err(broker_error(&opts.topic, resp.error_code, None));
    }
    for pd in resp.responses.iter().flat_map(|t| &t.partitions) {
        let p = pd.partition_index;
        let Some(&offset) = state.positions.get(&p) else {
            continue;
        };
        match pd.error_code {
            0 => {}
            OFFSET_OUT_OF_RANGE => {
                // Per the start flag; an explicit offset is clamped into the log.
                let start = match opts.start {
                    Start::Offset(_) => Start::Offset(offset),
                    s => s,
                };
                let reset = resolve(cluster, opts, state, &[p], start)?;
                state.positions.extend(reset);
                continue;
            }
            5 | 6 => {
                state.leader_of = leaders(cluster, &opts.topic, false)?;
                continue;
            }
            code => return Err(broker_error(&format!("{}-{p}", opts.topic), code, None)),
        }
        let Some(records) = pd.records.clone() else {
            continue;
        };
        let decoded = decode_fetched(records, offset).map_err(|e| {
            TopicError::Usage(format!(
                "{}-{p}: unreadable records at {offset}: {e}",
                opts.topic
            ))
        })?;
        for m in &decoded.messages {
            if print(out, opts, p, m).is_err() {
                // stdout closed (e.g. `| head`): stop quietly, as a pipe reader expects.
                return Ok(true);
            }
            state.printed += 1;
            state.last_data = Instant::now();
            state.positions.insert(p, m.offset + 1);
            if done(opts, state) {
                let _ = out.flush();
                return Ok(true);
            }
        }
        if let Some(next) = decoded.next_offset {
            let pos = state.positions.get_mut(&p).expect("owned partition");
            *pos = (*pos).max(next);
        }
    }
    Ok(out.flush().is_err())
}

/// A Fetch outside any fetch session for `parts` (partition, offset) of `topic`.
pub fn fetch_request(topic: &str, parts: &[(i32, i64)], wait_ms: i32) -> FetchRequest {
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = parts
        .iter()
        .map(|(p, o)| {
            let mut fp = FetchPartition::default();
            fp.partition = *p;
            fp.fetch_offset = *o;
            fp.current_leader_epoch = -1;
            fp.log_start_offset = -1;
            fp.partition_max_bytes = PARTITION_FETCH_BYTES_MAX;
            fp
        })
        .collect();
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = wait_ms;
    req.min_bytes = 1;
    req.max_bytes = FETCH_BYTES_MAX;
    req.session_epoch = -1;
    req.topics = vec![t];
    req
}

fn print(
    out: &mut impl Write,
    opts: &ConsumeOptions,
    partition: i32,
    m: &Message,
) -> std::io::Result<()> {
    let null = b"null";
    let value = m.value.as_deref().unwrap_or(null);
    match opts.format {
        Format::Value => {
            out.write_all(value)?;
            out.write_all(b"\n")
        }
        Format::Kv => {
            out.write_all(m.key.as_deref().unwrap_or(null))?;
            out.write_all(opts.key_separator.as_bytes())?;
            out.write_all(value)?;
            out.write_all(b"\n")
        }
        Format::Json => {
            writeln!(out, "{}", render_json(&opts.topic, partition, m))
        }
    }
}

/// `{"topic","partition","offset","timestamp","key","value","headers":{..}}`; keys and
/// values as UTF-8 text (invalid bytes replaced), null when absent.
pub fn render_json(topic: &str, partition: i32, m: &Message) -> String {
    let text = |b: &Option<bytes::Bytes>| {
        b.as_ref().map_or(serde_json::Value::Null, |b| {
            String::from_utf8_lossy(b).into()
        })
    };
    let headers: serde_json::Map<String, serde_json::Value> = m
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), text(v)))
        .collect();
    serde_json::json!({
        "topic": topic, "partition": partition, "offset": m.offset, "timestamp": m.timestamp,
        "key": text(&m.key), "value": text(&m.value), "headers": headers,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn start_parses() {
        assert_eq!("earliest".parse::<Start>(), Ok(Start::Earliest));
        assert_eq!("latest".parse::<Start>(), Ok(Start::Latest));
        assert_eq!("42".parse::<Start>(), Ok(Start::Offset(42)));
        assert!("-1".parse::<Start>().is_err());
    }

    #[test]
    fn json_escapes_and_nulls() {
        let m = Message {
            offset: 3,
            timestamp: 7,
            key: None,
            value: Some(Bytes::from_static(b"a\"b\n")),
            headers: vec![("h".into(), None)],
        };
        assert_eq!(
            render_json("t", 1, &m),
            r#"{"headers":{"h":null},"key":null,"offset":3,"partition":1,"timestamp":7,"topic":"t","value":"a\"b\n"}"#
        );
    }
}
