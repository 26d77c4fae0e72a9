//! Consumer groups in the console: the list, and one group's state, members with their
//! assignments, and committed offset, log end and lag per partition — the toolbox's
//! `group list` / `group describe` with the members' assignments added, and
//! `group reset-offsets` (dry run first).

use serde_json::{json, Value};

use super::{ApiError, ApiResult};
use crate::cli::client::Cluster;
use crate::cli::group;
use crate::cli::reset_offsets::{self as reset, Target, TopicSpec};

pub fn list(cluster: &mut Cluster) -> ApiResult {
    let groups = group::list(cluster.any())?;
    let rows: Vec<Value> = groups
        .iter()
        .map(|g| json!({"group": g.group, "state": g.state, "protocol_type": g.protocol_type}))
        .collect();
    Ok(json!({ "groups": rows }))
}

pub fn describe(cluster: &mut Cluster, name: &str) -> ApiResult {
    let d = group::describe(cluster.any(), name)?;
    // Kafka answers DescribeGroups for a group it never saw with state Dead rather than
    // an error; with nothing committed either, there is no such group to show.
    if d.state == "Dead" && d.members.is_empty() && d.offsets.is_empty() {
        return Err(ApiError::not_found(format!(
            "no consumer group {name:?}: the groups page lists the existing ones"
        )));
    }
    let assigned = group::assignments(cluster.any(), name)?;
    let mut by_member = assigned.members;
    let members: Vec<Value> = d
        .members
        .iter()
        .map(|(id, client_id, host)| {
            let mut topics = by_member.remove(id).unwrap_or_default();
            // Sorted, so the page reads the same whichever order the assignor listed.
            topics.sort();
            topics.iter_mut().for_each(|(_, ps)| ps.sort_unstable());
            json!({
                "member_id": id, "client_id": client_id, "host": host,
                "assignment": topics.iter()
                    .map(|(t, ps)| json!({"topic": t, "partitions": ps}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let offsets: Vec<Value> = d
        .offsets
        .iter()
        .map(|(t, p, committed, end, lag)| {
            json!({"topic": t, "partition": p, "committed": committed, "log_end": end, "lag": lag})
        })
        .collect();
    Ok(json!({
        "group": d.group, "state": d.state, "protocol": assigned.protocol,
        "total_lag": d.offsets.iter().map(|o| o.4.max(0)).sum::<i64>(),
        "members": members, "offsets": offsets,
    }))
}

/// `{"topic": "T" or "T:P,P", "to": "earliest"|"latest"|"offset"|"datetime"|"shift-by",
/// "value": N, "execute": bool}`: the toolbox's reset-offsets, a dry run unless
/// `execute` (the page always shows the dry run first). Refused (409) while the group
/// has members, as Kafka refuses it.
pub fn reset_offsets(cluster: &mut Cluster, name: &str, body: Option<&Value>) -> ApiResult {
    let obj = body
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request("send a JSON object as the request body"))?;
    let spec: TopicSpec = obj
        .get("topic")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("topic: give TOPIC or TOPIC:P,P"))?
        .parse()
        .map_err(ApiError::bad_request)?;
    let value = || {
        obj.get("value")
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()))
            .ok_or_else(|| ApiError::bad_request("value: this target needs a whole number"))
    };
    let target = match obj.get("to").and_then(Value::as_str) {
        Some("earliest") => Target::Earliest,
        Some("latest") => Target::Latest,
        Some("offset") => Target::Offset(value()?),
        Some("datetime") => Target::Datetime(value()?),
        Some("shift-by") => Target::ShiftBy(value()?),
        _ => {
            return Err(ApiError::bad_request(
                "to: use earliest, latest, offset, datetime or shift-by",
            ))
        }
    };
    let execute = obj.get("execute").and_then(Value::as_bool).unwrap_or(false);
    let rows = reset::run(cluster, name, &[spec], target, execute)?;
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| json!({"topic": r.topic, "partition": r.partition, "current": r.current, "new": r.new}))
        .collect();
    Ok(json!({ "group": name, "executed": execute, "partitions": rows }))
}
