//! The console's changes to the cluster: create a topic, change its configs, add
//! partitions, delete records, delete it. The page asks for confirmation before it sends any of them;
//! here each is one toolbox call, validated by the broker (which refuses bad configs).

use serde_json::{json, Value};

use super::{ApiError, ApiResult};
use crate::cli::client::Cluster;
use crate::cli::{configs, topic};

fn body_object(body: Option<&Value>) -> Result<&serde_json::Map<String, Value>, ApiError> {
    body.and_then(Value::as_object)
        .ok_or_else(|| ApiError::bad_request("send a JSON object as the request body"))
}

/// A string-valued map such as `{"retention.ms": "60000"}`; numbers are accepted too.
fn string_pairs(v: Option<&Value>, what: &str) -> Result<Vec<(String, String)>, ApiError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request(format!("{what} must be an object of key: value")))?;
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            _ => Err(ApiError::bad_request(format!(
                "{what}.{k} must be a string"
            ))),
        })
        .collect()
}

fn int_field(
    obj: &serde_json::Map<String, Value>,
    name: &str,
    default: i64,
) -> Result<i64, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| ApiError::bad_request(format!("{name} must be a whole number"))),
    }
}

/// `{"name", "partitions" (default 1), "replication_factor" (default -1: the broker's
/// default.replication.factor), "configs": {k: v}}`
pub fn create_topic(cluster: &mut Cluster, body: Option<&Value>) -> ApiResult {
    let obj = body_object(body)?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name: the topic needs a name"))?;
    let partitions = i32::try_from(int_field(obj, "partitions", 1)?)
        .map_err(|_| ApiError::bad_request("partitions is out of range"))?;
    let replication = i16::try_from(int_field(obj, "replication_factor", -1)?)
        .map_err(|_| ApiError::bad_request("replication_factor is out of range"))?;
    let configs = string_pairs(obj.get("configs"), "configs")?;
    topic::create(cluster.any(), name, partitions, replication, &configs)?;
    Ok(json!({ "created": name }))
}

/// `{"set": {k: v}, "delete": [k]}` in one IncrementalAlterConfigs (all or nothing).
pub fn alter_configs(cluster: &mut Cluster, name: &str, body: Option<&Value>) -> ApiResult {
    let obj = body_object(body)?;
    let set = string_pairs(obj.get("set"), "set")?;
    let delete: Vec<String> = match obj.get("delete") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ks)) => ks
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::bad_request("delete must list config names"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::bad_request("delete must list config names")),
    };
    if set.is_empty() && delete.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to change: give set or delete",
        ));
    }
    configs::alter(cluster.any(), name, &set, &delete)?;
    Ok(json!({ "topic": name, "set": set.len(), "deleted": delete.len() }))
}

/// `{"count": N}`: the new total number of partitions (it can only grow).
pub fn add_partitions(cluster: &mut Cluster, name: &str, body: Option<&Value>) -> ApiResult {
    let obj = body_object(body)?;
    let count = i32::try_from(int_field(obj, "count", -1)?)
        .ok()
        .filter(|c| *c > 0)
        .ok_or_else(|| ApiError::bad_request("count: give the new total number of partitions"))?;
    topic::add_partitions(cluster.any(), name, count)?;
    Ok(json!({ "topic": name, "partitions": count }))
}

pub fn delete_topic(cluster: &mut Cluster, name: &str) -> ApiResult {
    topic::delete(cluster.any(), name)?;
    Ok(json!({ "deleted": name }))
}

/// `{"offset": N}`: deletes the partition's records before N (-1: all up to the high
/// watermark); answers the new low watermark.
pub fn delete_records(
    cluster: &mut Cluster,
    name: &str,
    partition: &str,
    body: Option<&Value>,
) -> ApiResult {
    let partition: i32 = partition
        .parse()
        .map_err(|_| ApiError::bad_request(format!("partition {partition:?} is not a number")))?;
    let obj = body_object(body)?;
    let offset = obj
        .get("offset")
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.trim().parse().ok()))
        .ok_or_else(|| ApiError::bad_request("offset: delete the records before which offset?"))?;
    let low = topic::delete_records(cluster, name, partition, offset)?;
    Ok(json!({ "topic": name, "partition": partition, "low_watermark": low }))
}
