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
//! cli/offsets.rs, cli/consume.rs); one topic per sink (see `resolve_topic`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, FetchResponse};

use crate::cli::client::Cluster;
use crate::cli::consume::{fetch_request, FETCH_VERSION};
use crate::cli::group_member::{GroupMember, FETCH_WAIT_MAX_MS};
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
    topic: String,
    leader_of: BTreeMap<i32, i32>,
    member: GroupMember,
    /// partition → next offset to fetch; only moves past lines already on disk.
    positions: BTreeMap<i32, i64>,
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
                if let Ok(true) = s.member.tick(&mut s.cluster, &s.positions) {
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
                        "{}: member of group {group}, reading {} partitions {:?} into {}",
                        cfg.name,
                        s.topic,
                        s.member.assignment,
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
        match poll(cfg, env, s, &mut out) {
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
            if let Err(e) = s.member.leave(&mut s.cluster, &s.positions) {
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

/// Connects, finds the topic, joins the group and reads where each owned partition
/// starts (the committed offset, else per consumer.auto.offset.reset).
fn open_session(cfg: &ConnectorConfig, env: &TaskEnv, group: &str) -> Result<Session, SendError> {
    let mut cluster = Cluster::connect(&env.bootstrap)
        .map_err(|e| SendError::Transient(describe_client_error(&e)))?;
    let topic = resolve_topic(&mut cluster, &cfg.sink_topics)?;
    let leader_of = leaders(&mut cluster, &topic, false).map_err(|e| match e {
        TopicError::Broker {
            code: UNKNOWN_TOPIC_OR_PARTITION,
            ..
        } => SendError::Transient(format!(
            "topic {topic} does not exist yet (a source or a producer creates it)"
        )),
        e => classify(e),
    })?;
    let member = GroupMember::join(&mut cluster, group, &topic).map_err(classify)?;
    let mut s = Session {
        cluster,
        topic,
        leader_of,
        member,
        positions: BTreeMap::new(),
    };
    start_positions(env, &mut s, group)?;
    Ok(s)
}

/// The one topic a sink reads: `topics` must name one, `topics.regex` must match one.
fn resolve_topic(cluster: &mut Cluster, topics: &SinkTopics) -> Result<String, SendError> {
    match topics {
        SinkTopics::List(list) if list.len() == 1 => Ok(list[0].clone()),
        SinkTopics::List(list) => Err(SendError::Fatal(format!(
            "topics lists {} topics; corelog's FileStreamSink reads one (run one sink per topic)",
            list.len()
        ))),
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
            match matched.len() {
                0 => Err(SendError::Transient(format!(
                    "no topic matches topics.regex={r} yet"
                ))),
                1 => Ok(matched.remove(0)),
                n => Err(SendError::Fatal(format!(
                    "topics.regex={r} matches {n} topics ({}); corelog's FileStreamSink reads one",
                    matched.join(", ")
                ))),
            }
        }
    }
}

fn start_positions(env: &TaskEnv, s: &mut Session, group: &str) -> Result<(), SendError> {
    let owned = s.member.assignment.clone();
    if owned.is_empty() {
        return Ok(());
    }
    let found = committed(
        &mut s.cluster,
        s.member.coordinator,
        group,
        &s.topic,
        &owned,
    )
    .map_err(classify)?;
    let rest: Vec<i32> = owned
        .iter()
        .copied()
        .filter(|p| !found.contains_key(p))
        .collect();
    s.positions.extend(found);
    let reset = reset_positions(env, s, &rest)?;
    s.positions.extend(reset);
    Ok(())
}

/// Earliest or latest offsets of `parts`, per consumer.auto.offset.reset.
fn reset_positions(
    env: &TaskEnv,
    s: &mut Session,
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
    list_offsets(&mut s.cluster, &s.topic, &s.leader_of, &queries).map_err(classify)
}

/// One round: heartbeat/commit when due, one Fetch per leader, lines to the file,
/// flushed before the positions move.
fn poll(
    cfg: &ConnectorConfig,
    env: &TaskEnv,
    s: &mut Session,
    out: &mut BufWriter<File>,
) -> Result<(), SendError> {
    if s.member
        .tick(&mut s.cluster, &s.positions)
        .map_err(classify)?
    {
        s.positions.clear();
        let group = format!("connect-{}", cfg.name);
        start_positions(env, s, &group)?;
    }
    if s.positions.is_empty() {
        std::thread::sleep(Duration::from_millis(FETCH_WAIT_MAX_MS as u64));
        return Ok(());
    }
    let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
    for (p, o) in &s.positions {
        let leader = *s.leader_of.get(p).unwrap_or(&-1);
        by_leader.entry(leader).or_default().push((*p, *o));
    }
    let mut moved = BTreeMap::new();
    for (leader, parts) in by_leader {
        fetch_from(cfg, env, s, leader, &parts, out, &mut moved)?;
    }
    if !moved.is_empty() {
        flush(out).map_err(|e| SendError::Fatal(format!("writing {}: {e}", file_name(cfg))))?;
        s.positions.extend(moved);
    }
    Ok(())
}

fn file_name(cfg: &ConnectorConfig) -> String {
    cfg.file
        .as_ref()
        .map_or_else(String::new, |f| f.display().to_string())
}

/// One Fetch to `leader`; writes the lines and notes each partition's next offset in
/// `moved` (applied once the file is flushed).
fn fetch_from(
    cfg: &ConnectorConfig,
    env: &TaskEnv,
    s: &mut Session,
    leader: i32,
    parts: &[(i32, i64)],
    out: &mut BufWriter<File>,
    moved: &mut BTreeMap<i32, i64>,
) -> Result<(), SendError> {
    let req = fetch_request(&s.topic, parts, FETCH_WAIT_MAX_MS);
    let resp: FetchResponse = s
        .cluster
        .broker(leader)
        .and_then(|c| c.call(ApiKey::Fetch, FETCH_VERSION, &req))
        .map_err(|e| SendError::Transient(describe_client_error(&e)))?;
    if resp.error_code != 0 {
        return Err(classify(broker_error(&s.topic, resp.error_code, None)));
    }
    for pd in resp.responses.iter().flat_map(|t| &t.partitions) {
        let p = pd.partition_index;
        let Some(&offset) = s.positions.get(&p) else {
            continue;
        };
        match pd.error_code {
            0 => {}
            OFFSET_OUT_OF_RANGE => {
                let reset = reset_positions(env, s, &[p])?;
                tracing::warn!(
                    "{}: {}-{p} offset {offset} is out of range; resuming at {:?}",
                    cfg.name,
                    s.topic,
                    reset.get(&p)
                );
                s.positions.extend(reset);
                continue;
            }
            5 | 6 | UNKNOWN_TOPIC_OR_PARTITION => {
                s.leader_of = leaders(&mut s.cluster, &s.topic, false).map_err(classify)?;
                continue;
            }
            code => {
                return Err(classify(broker_error(
                    &format!("{}-{p}", s.topic),
                    code,
                    None,
                )))
            }
        }
        let Some(records) = pd.records.clone() else {
            continue;
        };
        let decoded = decode_fetched(records, offset).map_err(|e| {
            SendError::Fatal(format!(
                "{}-{p}: unreadable records at {offset}: {e}",
                s.topic
            ))
        })?;
        let mut next = offset;
        for m in &decoded.messages {
            let line = cfg
                .value_converter
                .bytes_to_sink(m.value.as_ref())
                .map_err(|why| {
                    SendError::Fatal(format!("{}-{p} offset {}: {why}", s.topic, m.offset))
                })?;
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
        if next > offset {
            moved.insert(p, next);
        }
    }
    Ok(())
}
