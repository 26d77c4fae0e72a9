//! Consumer groups in the console: the list, and one group's state, members with their
//! assignments, and committed offset, log end and lag per partition — the toolbox's
//! `group list` / `group describe` with the members' assignments added.

use serde_json::{json, Value};

use super::{ApiError, ApiResult};
use crate::cli::client::Cluster;
use crate::cli::group;

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
    let mut assigned = group::assignments(cluster.any(), name)?;
    let members: Vec<Value> = d
        .members
        .iter()
        .map(|(id, client_id, host)| {
            let topics = assigned.remove(id).unwrap_or_default();
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
        "group": d.group, "state": d.state,
        "total_lag": d.offsets.iter().map(|o| o.4.max(0)).sum::<i64>(),
        "members": members, "offsets": offsets,
    }))
}
