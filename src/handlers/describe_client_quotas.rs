//! DescribeClientQuotas (v0-1): the quotas of the entities a filter selects, as
//! kafka-configs --describe --entity-type users/clients asks. Needs DESCRIBE_CONFIGS on
//! the cluster (CLUSTER_AUTHORIZATION_FAILED otherwise), as in Kafka.
//!
//! Filter semantics (KIP-546): each component names an entity type and matches one
//! name (0), the default entity (1) or any entity of that type (2); `strict` keeps only
//! entities with no other entity type. Corelog's "any" includes the default entity.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{ApiKey, DescribeClientQuotasRequest, DescribeClientQuotasResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::quota::entity::{
    Name, QuotaEntity, QuotaRecord, ENTITY_CLIENT_ID, ENTITY_IP, ENTITY_USER,
};
use crate::security::acl::{Access, Operation};

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

pub fn handle(
    shard: &Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DescribeClientQuotasRequest = decode(ApiKey::DescribeClientQuotas, version, body)?;
    let mut resp = DescribeClientQuotasResponse::default();
    if !access.cluster(Operation::DescribeConfigs) {
        resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = Some(str_bytes(
            "Authorization failed: describing client quotas needs DESCRIBE_CONFIGS on the cluster.",
        ));
        return respond(ApiKey::DescribeClientQuotas, version, &resp);
    }
    if let Err(why) = check_filter(&req.components) {
        resp.error_code = ec::INVALID_REQUEST;
        resp.error_message = Some(str_bytes(&why));
        return respond(ApiKey::DescribeClientQuotas, version, &resp);
    }
    let current = shard.broker.quotas.store.snapshot();
    let entries = current
        .records
        .iter()
        .filter(|r| selected(&r.entity, &req.components, req.strict))
        .map(entry)
        .collect();
    resp.entries = Some(entries);
    respond(ApiKey::DescribeClientQuotas, version, &resp)
}

fn check_filter(components: &[ComponentData]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for c in components {
        let t = c.entity_type.as_str();
        if t != ENTITY_USER && t != ENTITY_CLIENT_ID && t != ENTITY_IP {
            return Err(format!(
                "Custom entity type '{t}' not supported (corelog knows {ENTITY_USER}, {ENTITY_CLIENT_ID} and {ENTITY_IP})."
            ));
        }
        if !seen.insert(t) {
            return Err(format!("Duplicate {t} filter component entity type."));
        }
        match c.match_type {
            MATCH_EXACT if c._match.is_none() => {
                return Err(format!("No entity name given to match for {t}."));
            }
            MATCH_EXACT | MATCH_DEFAULT | MATCH_ANY => {}
            other => return Err(format!("Unknown match type {other} for {t}.")),
        }
    }
    Ok(())
}

/// Whether `entity` passes every component (and, `strict`, has no other part).
fn selected(entity: &QuotaEntity, components: &[ComponentData], strict: bool) -> bool {
    let part = |t: &str| match t {
        ENTITY_USER => entity.user.as_ref(),
        ENTITY_IP => entity.ip.as_ref(),
        _ => entity.client_id.as_ref(),
    };
    let all_match = components.iter().all(|c| {
        let Some(name) = part(c.entity_type.as_str()) else {
            return false;
        };
        match c.match_type {
            MATCH_EXACT => *name == Name::from_wire(c._match.as_deref()),
            MATCH_DEFAULT => *name == Name::Default,
            _ => true,
        }
    });
    let parts = usize::from(entity.user.is_some())
        + usize::from(entity.client_id.is_some())
        + usize::from(entity.ip.is_some());
    all_match && (!strict || parts == components.len())
}

fn entry(r: &QuotaRecord) -> EntryData {
    let mut e = EntryData::default();
    let mut part = |t: &str, n: &Name| {
        let mut d = EntityData::default();
        d.entity_type = str_bytes(t);
        d.entity_name = n.to_wire().map(str_bytes);
        e.entity.push(d);
    };
    if let Some(u) = &r.entity.user {
        part(ENTITY_USER, u);
    }
    if let Some(c) = &r.entity.client_id {
        part(ENTITY_CLIENT_ID, c);
    }
    if let Some(ip) = &r.entity.ip {
        part(ENTITY_IP, ip);
    }
    e.values = r
        .values
        .iter()
        .filter_map(|(k, v)| {
            let mut d = ValueData::default();
            d.key = str_bytes(k);
            d.value = v.parse().ok()?;
            Some(d)
        })
        .collect();
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(t: &str, match_type: i8, name: Option<&str>) -> ComponentData {
        let mut c = ComponentData::default();
        c.entity_type = str_bytes(t);
        c.match_type = match_type;
        c._match = name.map(str_bytes);
        c
    }

    #[test]
    fn filters_follow_kip_546() {
        let alice_app = QuotaEntity {
            user: Some(Name::Named("alice".into())),
            client_id: Some(Name::Named("app".into())),
            ip: None,
        };
        let default_user = QuotaEntity {
            user: Some(Name::Default),
            client_id: None,
            ip: None,
        };
        let users_any = [component(ENTITY_USER, MATCH_ANY, None)];
        assert!(selected(&alice_app, &users_any, false));
        assert!(!selected(&alice_app, &users_any, true));
        assert!(selected(&default_user, &users_any, true));
        let alice = [component(ENTITY_USER, MATCH_EXACT, Some("alice"))];
        assert!(selected(&alice_app, &alice, false));
        assert!(!selected(&default_user, &alice, false));
        let default = [component(ENTITY_USER, MATCH_DEFAULT, None)];
        assert!(selected(&default_user, &default, true));
        assert!(check_filter(&[component("ip", MATCH_ANY, None)]).is_ok());
        assert!(check_filter(&[component("host", MATCH_ANY, None)]).is_err());
        assert!(check_filter(&[
            component(ENTITY_USER, MATCH_ANY, None),
            component(ENTITY_USER, MATCH_ANY, None)
        ])
        .is_err());
    }
}
