//! AlterConfigs (the legacy, whole-set form) and IncrementalAlterConfigs (SET, DELETE,
//! APPEND, SUBTRACT per key). Both are applied on the metadata shard
//! (`Shard::alter_configs`): persisted, published and in effect on every partition
//! before the answer. A request of more than `CHANGES_PER_REQUEST_MAX` changes in all is
//! refused as a whole, as Kafka's controller refuses it.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::admin::{AdminResult, Alteration, ConfigOp, ConfigResource};
use crate::broker::request_limits;
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

/// IncrementalAlterConfigs operation codes.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub async fn handle_legacy(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: AlterConfigsRequest = decode(ApiKey::AlterConfigs, version, body)?;
    let requests = req
        .resources
        .iter()
        .map(|r| {
            let ops = r
                .configs
                .iter()
                .map(|c| match &c.value {
                    Some(v) => ConfigOp::Set(c.name.to_string(), v.to_string()),
                    None => ConfigOp::Delete(c.name.to_string()),
                })
                .collect();
            (r.resource_type, r.resource_name.clone(), Ok(ops))
        })
        .collect();
    let results = run(&shard, requests, true, req.validate_only, &access).await;
    let mut resp = AlterConfigsResponse::default();
    for (resource_type, resource_name, result) in results {
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = resource_type;
        r.resource_name = resource_name;
        // Kafka answers a null message on success (the crate's default is "").
        r.error_message = None;
        if let Err((code, msg)) = result {
            r.error_code = code;
            r.error_message = Some(str_bytes(&msg));
        }
        resp.responses.push(r);
    }
    respond(ApiKey::AlterConfigs, version, &resp)
}

pub async fn handle_incremental(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: IncrementalAlterConfigsRequest =
        decode(ApiKey::IncrementalAlterConfigs, version, body)?;
    let requests = req
        .resources
        .iter()
        .map(|r| {
            let ops: Result<Vec<ConfigOp>, (i16, String)> = r
                .configs
                .iter()
                .map(|c| {
                    let name = c.name.to_string();
                    let value = c.value.as_ref().map(|v| v.to_string());
                    match (c.config_operation, value) {
                        (OP_DELETE, _) => Ok(ConfigOp::Delete(name)),
                        (OP_SET, Some(v)) => Ok(ConfigOp::Set(name, v)),
                        (OP_APPEND, Some(v)) => Ok(ConfigOp::Append(name, v)),
                        (OP_SUBTRACT, Some(v)) => Ok(ConfigOp::Subtract(name, v)),
                        (OP_SET | OP_APPEND | OP_SUBTRACT, None) => Err((
                            ec::INVALID_REQUEST,
                            format!("Null value not supported for: {name}"),
                        )),
                        (op, _) => Err((
                            ec::INVALID_REQUEST,
                            format!("Unknown config operation {op} for {name}"),
                        )),
                    }
                })
                .collect();
            (r.resource_type, r.resource_name.clone(), ops)
        })
        .collect();
    let results = run(&shard, requests, false, req.validate_only, &access).await;
    let mut resp = IncrementalAlterConfigsResponse::default();
    for (resource_type, resource_name, result) in results {
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        r.resource_type = resource_type;
        r.resource_name = resource_name;
        // Kafka answers a null message on success (the crate's default is "").
        r.error_message = None;
        if let Err((code, msg)) = result {
            r.error_code = code;
            r.error_message = Some(str_bytes(&msg));
        }
        resp.responses.push(r);
    }
    respond(ApiKey::IncrementalAlterConfigs, version, &resp)
}

type Requested = (i8, StrBytes, Result<Vec<ConfigOp>, (i16, String)>);

/// Checks each resource, sends the valid ones to the metadata shard in one batch and
/// returns every resource's result in request order.
async fn run(
    shard: &Rc<Shard>,
    requests: Vec<Requested>,
    replace: bool,
    validate_only: bool,
    access: &Access,
) -> Vec<(i8, StrBytes, AdminResult)> {
    let node_id = shard.broker.config.node_id.to_string();
    let mut checked = Vec::with_capacity(requests.len());
    let mut alterations = Vec::new();
    for (resource_type, name, ops) in requests {
        let resource = match resource_type {
            RESOURCE_TOPIC if !access.topic(Operation::AlterConfigs, &name) => Err((
                ec::TOPIC_AUTHORIZATION_FAILED,
                "Authorization failed: ALTER_CONFIGS on the topic is needed.".into(),
            )),
            RESOURCE_BROKER if !access.cluster(Operation::AlterConfigs) => Err((
                ec::CLUSTER_AUTHORIZATION_FAILED,
                "Authorization failed: ALTER_CONFIGS on the cluster is needed.".into(),
            )),
            RESOURCE_TOPIC => Ok(ConfigResource::Topic(name.to_string())),
            RESOURCE_BROKER if name.is_empty() => Ok(ConfigResource::Broker { default: true }),
            RESOURCE_BROKER if *name == *node_id => Ok(ConfigResource::Broker { default: false }),
            RESOURCE_BROKER => Err((
                ec::INVALID_REQUEST,
                format!(
                    "Unexpected broker id, expected {node_id} or empty string, but received {name}"
                ),
            )),
            other => Err((
                ec::INVALID_REQUEST,
                format!("resource type {other} cannot be altered; alter a TOPIC (2) or BROKER (4)"),
            )),
        };
        match resource.and_then(|resource| ops.map(|ops| (resource, ops))) {
            Ok((resource, ops)) => {
                checked.push((resource_type, name, None));
                alterations.push(Alteration {
                    resource,
                    replace,
                    ops,
                });
            }
            Err(e) => checked.push((resource_type, name, Some(Err(e)))),
        }
    }
    let changes: usize = alterations.iter().map(|a| a.ops.len()).sum();
    let mut applied = match request_limits::check_changes(changes) {
        Ok(()) => shard.alter_configs(alterations, validate_only).await,
        Err(e) => vec![Err(e); alterations.len()],
    }
    .into_iter();
    checked
        .into_iter()
        .map(|(t, n, early)| {
            let result = early.unwrap_or_else(|| {
                applied
                    .next()
                    .unwrap_or(Err((ec::UNKNOWN_SERVER_ERROR, "no result".into())))
            });
            (t, n, result)
        })
        .collect()
}
