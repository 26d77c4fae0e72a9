//! AlterClientQuotas (v0-1): sets and removes client quotas (kafka-configs --alter
//! --entity-type users/clients --add-config producer_byte_rate=...). Needs ALTER_CONFIGS
//! on the cluster, as in Kafka. Stored before the answer: the first log dir's file on a
//! single broker, the metadata quorum in a cluster (`quota::store`).
//!
//! Each entry is checked alone (entity types user / client-id, each at most once; keys
//! producer_byte_rate, consumer_byte_rate, request_percentage, controller_mutation_rate;
//! or an ip entity alone with connection_creation_rate (KIP-612); positive values); valid entries are applied together, `validate_only` applies nothing.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::alter_client_quotas_request::EntryData as RequestEntry;
use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::cluster::AdminCall;
use crate::protocol::errors as ec;
use crate::quota::entity::{
    canonical_value, Name, QuotaChange, QuotaEntity, CONNECTION_CREATION_RATE, ENTITY_CLIENT_ID,
    ENTITY_IP, ENTITY_USER,
};
use crate::security::acl::{Access, Operation};

/// Most entries one request may change: each is a record in the file or the quorum.
pub const QUOTA_ENTRIES_PER_REQUEST_MAX: usize = 10_000;

const IMAGE_WAIT_ROUND: std::time::Duration = std::time::Duration::from_millis(10);
const IMAGE_WAIT_ROUNDS: usize = 100;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: AlterClientQuotasRequest = decode(ApiKey::AlterClientQuotas, version, body)?;
    let refuse_all = if !access.cluster(Operation::AlterConfigs) {
        Some((
            ec::CLUSTER_AUTHORIZATION_FAILED,
            "Authorization failed: altering client quotas needs ALTER_CONFIGS on the cluster."
                .to_string(),
        ))
    } else if req.entries.len() > QUOTA_ENTRIES_PER_REQUEST_MAX {
        Some((
            ec::INVALID_REQUEST,
            format!("at most {QUOTA_ENTRIES_PER_REQUEST_MAX} entries per request"),
        ))
    } else {
        None
    };
    let mut outcomes: Vec<Result<Vec<QuotaChange>, (i16, String)>> = req
        .entries
        .iter()
        .map(|e| match &refuse_all {
            Some(r) => Err(r.clone()),
            None => changes(e).map_err(|why| (ec::INVALID_REQUEST, why)),
        })
        .collect();
    let valid: Vec<QuotaChange> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    if !valid.is_empty() && !req.validate_only {
        if let Err(e) = store(&shard, valid).await {
            for o in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *o = Err(e.clone());
            }
        }
    }
    let mut resp = AlterClientQuotasResponse::default();
    resp.entries = req
        .entries
        .iter()
        .zip(outcomes)
        .map(|(e, o)| {
            let mut out = EntryData::default();
            out.entity = e
                .entity
                .iter()
                .map(|p| {
                    let mut d = EntityData::default();
                    d.entity_type = p.entity_type.clone();
                    d.entity_name = p.entity_name.clone();
                    d
                })
                .collect();
            if let Err((code, why)) = o {
                out.error_code = code;
                out.error_message = Some(str_bytes(&why));
            }
            out
        })
        .collect();
    respond(ApiKey::AlterClientQuotas, version, &resp)
}

/// One entry's changes, or why it is refused (Kafka's INVALID_REQUEST cases).
fn changes(e: &RequestEntry) -> Result<Vec<QuotaChange>, String> {
    let mut entity = QuotaEntity {
        user: None,
        client_id: None,
        ip: None,
    };
    for part in &e.entity {
        let slot = match part.entity_type.as_str() {
            ENTITY_USER => &mut entity.user,
            ENTITY_CLIENT_ID => &mut entity.client_id,
            ENTITY_IP => &mut entity.ip,
            other => {
                return Err(format!(
                    "Unhandled client quota entity type: {other} (corelog knows {ENTITY_USER}, {ENTITY_CLIENT_ID} and {ENTITY_IP})"
                ))
            }
        };
        if slot.is_some() {
            return Err(format!(
                "Duplicate entity type {}",
                part.entity_type.as_str()
            ));
        }
        *slot = Some(Name::from_wire(part.entity_name.as_deref()));
    }
    if entity.user.is_none() && entity.client_id.is_none() && entity.ip.is_none() {
        return Err("Invalid empty client quota entity".into());
    }
    let ip = entity.ip.is_some();
    if ip && (entity.user.is_some() || entity.client_id.is_some()) {
        return Err("Invalid quota entity combination: ip goes alone".into());
    }
    if let Some(Name::Named(addr)) = &entity.ip {
        if addr.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("{addr} is not a valid IP address"));
        }
    }
    let mut keys = std::collections::HashSet::new();
    e.ops
        .iter()
        .map(|op| {
            let key = op.key.as_str();
            if !keys.insert(key) {
                return Err(format!("Duplicate quota key {key} in one entry"));
            }
            // As Kafka: ip entities have connection_creation_rate only, and only they do.
            if ip != (key == CONNECTION_CREATION_RATE) {
                return Err(if ip {
                    format!("{key} is not a quota of ip entities (they have {CONNECTION_CREATION_RATE})")
                } else {
                    format!("{CONNECTION_CREATION_RATE} is a quota of ip entities only")
                });
            }
            let value = if op.remove {
                canonical_value(key, 1.0)?;
                None
            } else {
                Some(canonical_value(key, op.value)?)
            };
            Ok(QuotaChange {
                entity: entity.clone(),
                key: key.to_string(),
                value,
            })
        })
        .collect()
}

/// Stores `changes`: the file (off the shard) on a single broker; the quorum in a
/// cluster, answered once this broker's image has them.
async fn store(shard: &Rc<Shard>, changes: Vec<QuotaChange>) -> Result<(), (i16, String)> {
    let broker = shard.broker.clone();
    let Some(cluster) = &broker.cluster else {
        return crate::runtime::blocking(move || broker.quotas.store.alter_blocking(&changes))
            .await
            .map_err(|why| {
                tracing::error!("{why}");
                (ec::UNKNOWN_SERVER_ERROR, why)
            });
    };
    cluster
        .call(AdminCall::AlterClientQuotas {
            changes: changes.clone(),
        })
        .await?;
    for _ in 0..IMAGE_WAIT_ROUNDS {
        let image = cluster.image();
        if crate::quota::entity::holds(&image.client_quotas, &changes) {
            broker.quotas.store.follow(&image.client_quotas);
            return Ok(());
        }
        crate::runtime::sleep(IMAGE_WAIT_ROUND).await;
    }
    Err((
        ec::REQUEST_TIMED_OUT,
        "the quota change is committed but not yet in this broker's image".into(),
    ))
}
