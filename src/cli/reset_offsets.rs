//! `corelog group reset-offsets G --topic T[:P,P] --to-...`, as kafka-consumer-groups.sh
//! does it: a dry run by default (the plan as a table or JSON), `--execute` commits it.
//! Only an inactive group (no members) is reset, and every target is clamped into
//! [earliest, latest] of its partition, as Kafka does.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId, OffsetCommitRequest,
    OffsetCommitResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::Cluster;
use super::group_member::find_coordinator;
use super::offsets::{committed, list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use super::topic::{broker_error, leaders, TopicError};

const DESCRIBE_GROUPS_VERSION: i16 = 5;
const OFFSET_COMMIT_VERSION: i16 = 7;
const UNSUPPORTED_VERSION: i16 = 35;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Earliest,
    Latest,
    Offset(i64),
    /// Milliseconds since the epoch: the first offset at or after it.
    Datetime(i64),
    ShiftBy(i64),
}

/// `T` (every partition) or `T:P,P`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub topic: String,
    pub partitions: Option<Vec<i32>>,
}

impl std::str::FromStr for TopicSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<TopicSpec, String> {
        let Some((topic, parts)) = s.split_once(':') else {
            return Ok(TopicSpec {
                topic: s.to_string(),
                partitions: None,
            });
        };
        let partitions = parts
            .split(',')
            .map(|p| p.trim().parse::<i32>().ok().filter(|p| *p >= 0))
            .collect::<Option<Vec<i32>>>()
            .ok_or_else(|| format!("{s:?}: expected TOPIC or TOPIC:P,P with partition numbers"))?;
        Ok(TopicSpec {
            topic: topic.to_string(),
            partitions: Some(partitions),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResetRow {
    pub topic: String,
    pub partition: i32,
    pub current: Option<i64>,
    pub new: i64,
}

/// Plans the reset (and with `execute` commits it); refuses while the group has members.
pub fn run(
    cluster: &mut Cluster,
    group: &str,
    specs: &[TopicSpec],
    target: Target,
    execute: bool,
) -> Result<Vec<ResetRow>, TopicError> {
    let coordinator = find_coordinator(cluster, group)?;
    ensure_inactive(cluster, coordinator, group)?;
    let mut rows = Vec::new();
    for spec in specs {
        let leader_of = leaders(cluster, &spec.topic, false)?;
        let parts: Vec<i32> = match &spec.partitions {
            Some(ps) => ps.clone(),
            None => leader_of.keys().copied().collect(),
        };
        if let Some(p) = parts.iter().find(|p| !leader_of.contains_key(p)) {
            return Err(broker_error(&format!("{}-{p}", spec.topic), 3, None));
        }
        let current = committed(cluster, coordinator, group, &spec.topic, &parts)?;
        let at = |ts: i64| parts.iter().map(|p| (*p, ts)).collect::<Vec<_>>();
        let earliest = list_offsets(cluster, &spec.topic, &leader_of, &at(EARLIEST_TIMESTAMP))?;
        let latest = list_offsets(cluster, &spec.topic, &leader_of, &at(LATEST_TIMESTAMP))?;
        let by_time = match target {
            Target::Datetime(ms) => list_offsets(cluster, &spec.topic, &leader_of, &at(ms))
                .map_err(|e| explain_timestamp_lookup(e, &spec.topic))?,
            _ => BTreeMap::new(),
        };
        for p in parts {
            let (lo, hi) = (earliest[&p], latest[&p]);
            let cur = current.get(&p).copied();
            let wanted = match target {
                Target::Earliest => lo,
                Target::Latest => hi,
                Target::Offset(n) => n,
                // No record at or after the time: the log end, as Kafka does.
                Target::Datetime(_) => Some(by_time[&p]).filter(|o| *o >= 0).unwrap_or(hi),
                Target::ShiftBy(n) => cur.ok_or_else(|| {
                    TopicError::Refused(format!(
                        "{group}: no committed offset for {}-{p} to shift; use --to-offset, --to-earliest or --to-latest",
                        spec.topic
                    ))
                })? + n,
            };
            rows.push(ResetRow {
                topic: spec.topic.clone(),
                partition: p,
                current: cur,
                new: wanted.clamp(lo, hi.max(lo)),
            });
        }
    }
    if execute {
        commit(cluster, coordinator, group, &rows)?;
    }
    Ok(rows)
}

fn explain_timestamp_lookup(e: TopicError, topic: &str) -> TopicError {
    match e {
        TopicError::Broker { code, .. } if code == UNSUPPORTED_VERSION => TopicError::Broker {
            topic: topic.to_string(),
            code,
            code_name: "UnsupportedVersion".to_string(),
            detail: ": the broker cannot look offsets up by timestamp (ListOffsets with a time); \
                     use --to-offset, --to-earliest or --to-latest"
                .to_string(),
        },
        e => e,
    }
}

/// Kafka resets only an inactive group: running consumers would overwrite the reset.
fn ensure_inactive(cluster: &mut Cluster, coordinator: i32, group: &str) -> Result<(), TopicError> {
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![GroupId(StrBytes::from_string(group.to_string()))];
    let resp: DescribeGroupsResponse =
        cluster
            .broker(coordinator)?
            .call(ApiKey::DescribeGroups, DESCRIBE_GROUPS_VERSION, &req)?;
    let g = resp
        .groups
        .first()
        .ok_or_else(|| broker_error(group, -1, None))?;
    if g.error_code != 0 {
        return Err(broker_error(group, g.error_code, g.error_message.as_ref()));
    }
    if !g.members.is_empty() {
        return Err(TopicError::Refused(format!(
            "{group}: the group has {} active member(s) (state {}); offsets can only be reset while it is inactive: stop its consumers first",
            g.members.len(),
            g.group_state.as_str()
        )));
    }
    Ok(())
}

/// A commit from outside the group (generation -1, no member id), as the admin tools do.
fn commit(
    cluster: &mut Cluster,
    coordinator: i32,
    group: &str,
    rows: &[ResetRow],
) -> Result<(), TopicError> {
    let mut by_topic: BTreeMap<&str, Vec<&ResetRow>> = BTreeMap::new();
    for r in rows {
        by_topic.entry(&r.topic).or_default().push(r);
    }
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.to_string()));
    req.generation_id_or_member_epoch = -1;
    req.topics = by_topic
        .into_iter()
        .map(|(topic, rs)| {
            let mut t = OffsetCommitRequestTopic::default();
            t.name = TopicName(StrBytes::from_string(topic.to_string()));
            t.partitions = rs
                .iter()
                .map(|r| {
                    let mut p = OffsetCommitRequestPartition::default();
                    p.partition_index = r.partition;
                    p.committed_offset = r.new;
                    p.committed_leader_epoch = -1;
                    p.committed_metadata = Some(StrBytes::from_static_str(""));
                    p
                })
                .collect();
            t
        })
        .collect();
    let resp: OffsetCommitResponse =
        cluster
            .broker(coordinator)?
            .call(ApiKey::OffsetCommit, OFFSET_COMMIT_VERSION, &req)?;
    for t in &resp.topics {
        if let Some(p) = t.partitions.iter().find(|p| p.error_code != 0) {
            let what = format!("{group} {}-{}", t.name.0.as_str(), p.partition_index);
            return Err(broker_error(&what, p.error_code, None));
        }
    }
    Ok(())
}

/// `2026-11-22T10:00:00[.sss][Z|+hh:mm|-hh:mm]` to milliseconds since the epoch; without
/// a zone the local time zone applies, as in kafka-consumer-groups.sh.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?}: expected YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm]");
    let (date, time) = s.split_once('T').ok_or_else(bad)?;
    let (time, zone_s): (&str, Option<i64>) = if let Some(t) = time.strip_suffix('Z') {
        (t, Some(0))
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (t, z) = time.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (h, m) = z[1..].split_once(':').ok_or_else(bad)?;
        let (h, m): (i64, i64) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        (t, Some(sign * (h * 3600 + m * 60)))
    } else {
        (time, None)
    };
    let (time, millis) = match time.split_once('.') {
        Some((t, ms)) if ms.len() == 3 => (t, ms.parse::<i64>().map_err(|_| bad())?),
        Some(_) => return Err(bad()),
        None => (time, 0),
    };
    let nums = |part: &str, sep: char| -> Result<Vec<i32>, String> {
        part.split(sep)
            .map(|n| n.parse::<i32>().map_err(|_| bad()))
            .collect()
    };
    let (d, t) = (nums(date, '-')?, nums(time, ':')?);
    if d.len() != 3 || t.len() != 3 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[2]) {
        return Err(bad());
    }
    // SAFETY: tm is plain data, fully initialised by zeroed() and the fields below.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = d[0] - 1900;
    tm.tm_mon = d[1] - 1;
    tm.tm_mday = d[2];
    tm.tm_hour = t[0];
    tm.tm_min = t[1];
    tm.tm_sec = t[2];
    let secs = match zone_s {
        // SAFETY: timegm reads and normalises the tm we own.
        Some(offset) => (unsafe { libc::timegm(&mut tm) }) - offset,
        None => {
            tm.tm_isdst = -1;
            // SAFETY: as above; mktime applies the local time zone.
            unsafe { libc::mktime(&mut tm) }
        }
    };
    Ok(secs * 1000 + millis)
}

/// `TOPIC  PARTITION  CURRENT-OFFSET  NEW-OFFSET` (tab-separated; `-` for no commit).
pub fn render_text(rows: &[ResetRow]) -> String {
    let mut out = "TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET\n".to_string();
    for r in rows {
        let cur = r.current.map_or_else(|| "-".to_string(), |c| c.to_string());
        out += &format!("{}\t{}\t{cur}\t{}\n", r.topic, r.partition, r.new);
    }
    out
}

pub fn render_json(group: &str, rows: &[ResetRow], executed: bool) -> String {
    let offsets: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({"topic": r.topic, "partition": r.partition,
                "current_offset": r.current, "new_offset": r.new})
        })
        .collect();
    serde_json::json!({"group": group, "executed": executed, "offsets": offsets}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(
            parse_datetime("2026-11-22T10:00:00Z"),
            Ok(1_795_341_600_000)
        );
        assert_eq!(
            parse_datetime("2026-11-22T12:00:00.250+02:00"),
            Ok(1_795_341_600_250)
        );
        assert_eq!(
            parse_datetime("2026-11-22T08:30:00-01:30"),
            Ok(1_795_341_600_000)
        );
        assert!(parse_datetime("2026-11-22 10:00:00").is_err());
        assert!(parse_datetime("2026-13-22T10:00:00Z").is_err());
    }

    #[test]
    fn topic_specs() {
        assert_eq!(
            "t".parse::<TopicSpec>(),
            Ok(TopicSpec {
                topic: "t".into(),
                partitions: None
            })
        );
        assert_eq!(
            "t:0,2".parse::<TopicSpec>(),
            Ok(TopicSpec {
                topic: "t".into(),
                partitions: Some(vec![0, 2])
            })
        );
        assert!("t:x".parse::<TopicSpec>().is_err());
    }

    #[test]
    fn table() {
        let rows = vec![
            ResetRow {
                topic: "t".into(),
                partition: 0,
                current: Some(3),
                new: 0,
            },
            ResetRow {
                topic: "t".into(),
                partition: 1,
                current: None,
                new: 5,
            },
        ];
        assert_eq!(
            render_text(&rows),
            "TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET\nt\t0\t3\t0\nt\t1\t-\t5\n"
        );
    }
}
