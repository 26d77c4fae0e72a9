//! FileStreamSink: a member of consumer group `connect-<name>` that appends each
//! record's value (through the value converter) as one line to `file`.
//!
//! Delivery: after each fetch round the lines are written, flushed and fsynced, and only
//! then do the partitions' positions move; the group commits positions (periodically,
//! and on a clean stop before leaving), so a commit never covers a line that is not on
//! disk. A clean stop and restart resumes exactly; after a crash, lines since the last
//! commit are written again (at-least-once, as Kafka's sink).
//!
//! Membership, commits and fetches are the toolbox's (cli/group_member.rs,
//! cli/offsets.rs, cli/consume.rs). `topics.regex` is matched against the cluster's
//! topics each time the sink joins (at start and after a lost connection).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, FetchResponse};

use crate::cli::client::Cluster;
use crate::cli::consume::{fetch_request, FETCH_VERSION};
use crate::cli::group_member::{GroupMember, TopicPositions, FETCH_WAIT_MAX_MS};
use crate::cli::offsets::{committed, list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::cli::records::decode_fetched;
use crate::cli::topic::{broker_error, leaders, TopicError};

use super::config::{ConnectorConfig, SinkTopics};
use super::converters::SinkValue;
use super::task::{classify, describe_client_error, Backoff, SendError, TaskControl};
use super::worker::TaskEnv;

const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

/// A joined member and where it reads.
struct Session {
    cluster: Cluster,
    /// topic → partition → leader node
    leader_of: BTreeMap<String, BTreeMap<i32, i32>>,
    member: GroupMember,
    /// Next offset to fetch per owned partition; only moves past lines already on disk.
    positions: TopicPositions,
}

pub fn run(cfg: &ConnectorConfig, env: &TaskEnv, control: &TaskControl) -> Result<(), String> {
    let path = cfg.file.clone().expect("config checks a sink has a file");
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open {} for appending: {e}", path.display()))?;
    let mut out = BufWriter::new(file);
    let group = format!("connect-{}", cfg.name);
    let mut session: Option<Session> = None;
    let mut backoff = Backoff::default();
    let mut waiting_logged = false;
    let result = loop {
        control.wait_while_paused(|| {
            if let Some(s) = session.as_mut() {
                // Paused, still a member: heartbeats keep the partitions assigned here.
                if let Ok(true) = s.member.tick_topics(&mut s.cluster, &s.positions) {
                    s.positions.clear();
                }
            }
        });
        if control.stopping() {
            break Ok(());
        }
        if session.is_none() {
            match open_session(cfg, env, &group) {
                Ok(s) => {
                    tracing::info!(
                        "{}: member of group {group}, reading {:?} into {}",
                        cfg.name,
                        s.member.owned,
                        path.display()
                    );
                    session = Some(s);
                    backoff.reset();
                    waiting_logged = false;
                }
                Err(SendError::Transient(why)) => {
                    let wait = backoff.step();
                    if !waiting_logged || wait >= super::task::RETRY_BACKOFF_MAX {
                        tracing::warn!(
                            "{}: cannot consume yet: {why}; retrying in {} ms",
                            cfg.name,
                            wait.as_millis()
                        );
                        waiting_logged = true;
                    }
                    control.sleep(wait);
                    continue;
                }
                Err(SendError::Fatal(why)) => break Err(why),
            }
        }
        let s = session.as_mut().expect("opened above");
        match poll(cfg, env, s, &group, &mut out) {
            Ok(()) => backoff.reset(),
            Err(SendError::Transient(why)) => {
                let wait = backoff.step();
                tracing::warn!(
                    "{}: lost the broker: {why}; rejoining group {group} in {} ms (the group's committed offsets say where to resume)",
                    cfg.name,
                    wait.as_millis()
                );
                session = None;
                control.sleep(wait);
            }
            Err(SendError::Fatal(why)) => break Err(why),
        }
    };
    let flushed = flush(&mut out).map_err(|e| format!("writing {}: {e}", path.display()));
    if let Some(mut s) = session {
        // Commit only what reached the file.
        if flushed.is_ok() {
            if let Err(e) = s.member.leave_topics(&mut s.cluster, &s.positions) {
                tracing::warn!("{}: leaving group {group}: {e}", cfg.name);
            }
        }
    }
    result.and(flushed)
}

fn flush(out: &mut BufWriter<File>) -> std::io::Result<()> {
    out.flush()?;
    out.get_ref().sync_data()
}

/// Connects, finds the topics, joins the group and reads where each owned partition
/// starts (the committed offset, else per consumer.auto.offset.reset).
fn open_session(cfg: &ConnectorConfig, env: &TaskEnv, group: &str) -> Result<Session, SendError> {
    let mut cluster = Cluster::connect(&env.bootstrap)
        .map_err(|e| SendError::Transient(describe_client_error(&e)))?;
    let topics = resolve_topics(&mut cluster, &cfg.sink_topics)?;
    let mut leader_of = BTreeMap::new();
    for topic in &topics {
        let leaders = leaders(&mut cluster, topic, false).map_err(|e| match e {
            TopicError::Broker {
                code: UNKNOWN_TOPIC_OR_PARTITION,
                ..
            } => SendError::Transient(format!(
                "topic {topic} does not exist yet (a source or a producer creates it)"
            )),
            e => classify(e),
        })?;
        leader_of.insert(topic.clone(), leaders);
    }
    let member = GroupMember::join_topics(&mut cluster, group, &topics).map_err(classify)?;
    let mut s = Session {
        cluster,
        leader_of,
        member,
        positions: BTreeMap::new(),
    };
    start_positions(env, &mut s, group)?;
    Ok(s)
}

/// The topics a sink reads: `topics` as listed, or those `topics.regex` matches now
/// (none yet: wait for one).
fn resolve_topics(cluster: &mut Cluster, topics: &SinkTopics) -> Result<Vec<String>, SendError> {
    match topics {
        SinkTopics::List(list) => Ok(list.clone()),
        SinkTopics::Regex(r) => {
            let re = regex::Regex::new(&format!("^(?:{r})$"))
                .map_err(|e| SendError::Fatal(format!("topics.regex={r}: {e}")))?;
            let md = cluster
                .metadata(None, false)
                .map_err(|e| SendError::Transient(describe_client_error(&e)))?;
            let mut matched: Vec<String> = md
                .topics
                .iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .filter(|n| re.is_match(n))
                .collect();
            matched.sort();
            if matched.is_empty() {
                return Err(SendError::Transient(format!(
                    "no topic matches topics.regex={r} yet"
                )));
            }
            Ok(matched)
        }
    }
}

fn start_positions(env: &TaskEnv, s: &mut Session, group: &str) -> Result<(), SendError> {
    for (topic, owned) in s.member.owned.clone() {
        if owned.is_empty() {
            continue;
        }
        let found = committed(&mut s.cluster, s.member.coordinator, group, &topic, &owned)
            .map_err(classify)?;
        let rest: Vec<i32> = owned
            .iter()
            .copied()
            .filter(|p| !found.contains_key(p))
            .collect();
        let reset = reset_positions(env, s, &topic, &rest)?;
        let positions = s.positions.entry(topic).or_default();
        positions.extend(found);
        positions.extend(reset);
    }
    Ok(())
}

/// Earliest or latest offsets of `parts` of `topic`, per consumer.auto.offset.reset.
fn reset_positions(
    env: &TaskEnv,
    s: &mut Session,
    topic: &str,
    parts: &[i32],
) -> Result<BTreeMap<i32, i64>, SendError> {
    if parts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ts = if env.clients.from_earliest {
        EARLIEST_TIMESTAMP
    } else {
        LATEST_TIMESTAMP
    };
    let queries: Vec<(i32, i64)> = parts.iter().map(|p| (*p, ts)).collect();
    let leader_of = s.leader_of.get(topic).cloned().unwrap_or_default();
    list_offsets(&mut s.cluster, topic, &leader_of, &queries).map_err(classify)
}

/// One round: heartbeat/commit when due, one Fetch per leader, lines to the file,
/// flushed before the positions move.
fn poll(
    cfg: &ConnectorConfig,
    env: &TaskEnv,
    s: &mut Session,
    group: &str,
    out: &mut BufWriter<File>,
) -> Result<(), SendError> {
    if s.member
        .tick_topics(&mut s.cluster, &s.positions)
        .map_err(classify)?
    {
        s.positions.clear();
        start_positions(env, s, group)?;
    }
    // leader → topic → [(partition, offset)]
    let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<(i32, i64)>>> = BTreeMap::new();
    for (topic, parts) in &s.positions {
        for (p, o) in parts {
            let leader = s
                .leader_of
                .get(topic)
                .and_then(|l| l.get(p))
                .copied()
                .unwrap_or(-1);
            by_leader
                .entry(leader)
                .or_default()
                .entry(topic.clone())
                .or_default()
                .push((*p, *o));
        }
    }
    if by_leader.is_empty() {
        std::thread::sleep(Duration::from_millis(FETCH_WAIT_MAX_MS as u64));
        return Ok(());
    }
    let mut moved = BTreeMap::new();
    for (leader, topics) in by_leader {
        fetch_from(cfg, env, s, leader, &topics, out, &mut moved)?;
    }
    if !moved.is_empty() {
        flush(out).map_err(|e| SendError::Fatal(format!("writing {}: {e}", file_name(cfg))))?;
        for ((topic, p), next) in moved {
            s.positions.entry(topic).or_default().insert(p, next);
        }
    }
    Ok(())
}

fn file_name(cfg: &ConnectorConfig) -> String {
    cfg.file
        .as_ref()
        .map_or_else(String::new, |f| f.display().to_string())
}

/// One Fetch to `leader` for `topics`; writes the lines and notes each partition's
/// next offset in `moved` (applied once the file is flushed).
fn fetch_from(
    cfg: &ConnectorConfig,
    env: &TaskEnv,
    s: &mut Session,
    leader: i32,
    topics: &BTreeMap<String, Vec<(i32, i64)>>,
    out: &mut BufWriter<File>,
    moved: &mut BTreeMap<(String, i32), i64>,
) -> Result<(), SendError> {
    let mut req = None;
    for (topic, parts) in topics {
        let one = fetch_request(topic, parts, FETCH_WAIT_MAX_MS);
        match req.as_mut() {
            None => req = Some(one),
            Some(r) => r.topics.extend(one.topics),
        }
    }
    let Some(req) = req else {
        return Ok(());
    };
    let resp: FetchResponse = s
        .cluster
        .broker(leader)
        .and_then(|c| c.call(ApiKey::Fetch, FETCH_VERSION, &req))
        .map_err(|e| SendError::Transient(describe_client_error(&e)))?;
    if resp.error_code != 0 {
        return Err(classify(broker_error(&cfg.name, resp.error_code, None)));
    }
    for t in &resp.responses {
        let topic = t.topic.0.to_string();
        for pd in &t.partitions {
            let p = pd.partition_index;
            let Some(&offset) = s.positions.get(&topic).and_then(|ps| ps.get(&p)) else {
                continue;
            };
            match pd.error_code {
                0 => {}
                OFFSET_OUT_OF_RANGE => {
                    let reset = reset_positions(env, s, &topic, &[p])?;
                    tracing::warn!(
                        "{}: {topic}-{p} offset {offset} is out of range; resuming at {:?}",
                        cfg.name,
                        reset.get(&p)
                    );
                    s.positions.entry(topic.clone()).or_default().extend(reset);
                    continue;
                }
                5 | 6 | UNKNOWN_TOPIC_OR_PARTITION => {
                    let fresh = leaders(&mut s.cluster, &topic, false).map_err(classify)?;
                    s.leader_of.insert(topic.clone(), fresh);
                    continue;
                }
                code => return Err(classify(broker_error(&format!("{topic}-{p}"), code, None))),
            }
            let Some(records) = pd.records.clone() else {
                continue;
            };
            if let Some(next) = write_records(cfg, out, &topic, p, offset, records)? {
                moved.insert((topic.clone(), p), next);
            }
        }
    }
    Ok(())
}

/// Writes one partition's fetched records as lines; returns the next offset to fetch
/// when it moved.
fn write_records(
    cfg: &ConnectorConfig,
    out: &mut BufWriter<File>,
    topic: &str,
    p: i32,
    offset: i64,
    records: bytes::Bytes,
) -> Result<Option<i64>, SendError> {
    let decoded = decode_fetched(records, offset).map_err(|e| {
        SendError::Fatal(format!("{topic}-{p}: unreadable records at {offset}: {e}"))
    })?;
    let mut next = offset;
    for m in &decoded.messages {
        let line = cfg
            .value_converter
            .bytes_to_sink(m.value.as_ref())
            .map_err(|why| SendError::Fatal(format!("{topic}-{p} offset {}: {why}", m.offset)))?;
        let written = match line {
            SinkValue::Text(t) => out.write_all(t.as_bytes()),
            SinkValue::Bytes(b) => out.write_all(&b),
        };
        written
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| SendError::Fatal(format!("writing {}: {e}", file_name(cfg))))?;
        next = m.offset + 1;
    }
    if let Some(n) = decoded.next_offset {
        next = next.max(n);
    }
    Ok((next > offset).then_some(next))
}
