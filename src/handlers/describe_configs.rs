//! DescribeConfigs: a topic's effective configs with their sources and synonyms, and
//! the broker's (static properties read-only, topic defaults dynamic).
//!
//! A resource named twice in one request is described once; its repeats answer
//! INVALID_REQUEST. Kafka describes every repeat, but each costs about 45 configs of
//! answer, so a 4 MiB request naming one topic 500,000 times would make the broker build
//! a response of gigabytes (a 160 KB one already took 160 MB). Clients never send
//! repeats: the Java admin client keys resources by a map and librdkafka refuses them.

use std::collections::HashSet;
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::metadata::Snapshot;
use crate::broker::Broker;
use crate::protocol::errors as ec;
use crate::replication::throttle;
use crate::security::acl::{Access, Operation};
use crate::topic_config::{self, ConfigType, Source, Synonym, DEFS};

/// Kafka's `ConfigResource.Type` values.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// One described config, before it is put in the crate's types.
#[derive(Debug, Clone)]
pub struct Described {
    pub name: String,
    pub value: Option<String>,
    pub read_only: bool,
    pub source: Source,
    pub synonyms: Vec<Synonym>,
    pub config_type: ConfigType,
    pub doc: &'static str,
}

pub async fn handle(
    shard: Rc<crate::broker::shard::Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DescribeConfigsRequest = decode(ApiKey::DescribeConfigs, version, body)?;
    let broker = &shard.broker;
    let snap = broker.metadata.snapshot();
    let mut resp = DescribeConfigsResponse::default();
    let mut seen: HashSet<(i8, &str)> = HashSet::with_capacity(req.resources.len());
    for r in &req.resources {
        let name = r.resource_name.to_string();
        if !seen.insert((r.resource_type, r.resource_name.as_str())) {
            let mut result = DescribeConfigsResult::default();
            result.resource_type = r.resource_type;
            result.resource_name = r.resource_name.clone();
            result.error_code = ec::INVALID_REQUEST;
            result.error_message = Some(str_bytes(&format!(
                "resource {name} (type {}) is named more than once in this request",
                r.resource_type
            )));
            resp.results.push(result);
            continue;
        }
        let keys: Option<Vec<String>> = r
            .configuration_keys
            .as_ref()
            .map(|ks| ks.iter().map(|k| k.to_string()).collect());
        let described = match r.resource_type {
            RESOURCE_TOPIC if !access.topic(Operation::DescribeConfigs, &name) => Err((
                ec::TOPIC_AUTHORIZATION_FAILED,
                "Authorization failed: DESCRIBE_CONFIGS on the topic is needed.".into(),
            )),
            RESOURCE_BROKER if !access.cluster(Operation::DescribeConfigs) => Err((
                ec::CLUSTER_AUTHORIZATION_FAILED,
                "Authorization failed: DESCRIBE_CONFIGS on the cluster is needed.".into(),
            )),
            RESOURCE_TOPIC => topic_configs(broker, &snap, &name),
            RESOURCE_BROKER => broker_configs(broker, &snap, &name),
            other => Err((
                ec::INVALID_REQUEST,
                format!(
                    "resource type {other} is not supported; describe a TOPIC (2) or BROKER (4)"
                ),
            )),
        };
        let mut result = DescribeConfigsResult::default();
        result.resource_type = r.resource_type;
        result.resource_name = r.resource_name.clone();
        match described {
            Ok(configs) => {
                result.configs = configs
                    .into_iter()
                    .filter(|d| keys.as_ref().is_none_or(|ks| ks.contains(&d.name)))
                    .map(|d| entry(d, req.include_synonyms, req.include_documentation))
                    .collect();
            }
            Err((code, msg)) => {
                result.error_code = code;
                result.error_message = Some(str_bytes(&msg));
            }
        }
        resp.results.push(result);
    }
    respond(ApiKey::DescribeConfigs, version, &resp)
}

/// Every topic config of `name` with its effective value and where it comes from.
pub fn topic_configs(
    broker: &Broker,
    snap: &Snapshot,
    name: &str,
) -> Result<Vec<Described>, (i16, String)> {
    let meta = snap.topic(name).ok_or_else(|| {
        (
            ec::UNKNOWN_TOPIC_OR_PARTITION,
            format!("Topic {name} does not exist."),
        )
    })?;
    let layers = broker.config_layers(snap);
    let mut out: Vec<Described> = DEFS
        .iter()
        .map(|def| {
            let synonyms = layers.topic_synonyms(def, &meta.configs);
            let first = synonyms.first().cloned().expect("a default at least");
            Described {
                name: def.name.to_string(),
                value: Some(first.value),
                read_only: false,
                source: first.source,
                synonyms,
                config_type: def.kind.config_type(),
                doc: def.doc,
            }
        })
        .collect();
    // The replication throttle lists, listed only when set (see README).
    let set = throttle::TOPIC_KEYS
        .iter()
        .filter_map(|k| meta.configs.get(*k).map(|v| (*k, v)));
    out.extend(set.map(|(k, v)| {
        dynamic(
            k,
            v,
            Source::DynamicTopic,
            ConfigType::List,
            throttle::REPLICAS_DOC,
        )
    }));
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A config set dynamically, with itself as its only synonym.
fn dynamic(
    name: &str,
    value: &str,
    source: Source,
    config_type: ConfigType,
    doc: &'static str,
) -> Described {
    Described {
        name: name.to_string(),
        value: Some(value.to_string()),
        read_only: false,
        source,
        synonyms: vec![Synonym {
            name: name.to_string(),
            value: value.to_string(),
            source,
        }],
        config_type,
        doc,
    }
}

/// The broker's configs: its node resource (`name` = node id) lists the topic defaults
/// (alterable) and the static properties (read-only); the default resource (empty name)
/// lists the dynamic cluster-wide defaults that are set.
pub fn broker_configs(
    broker: &Broker,
    snap: &Snapshot,
    name: &str,
) -> Result<Vec<Described>, (i16, String)> {
    let layers = broker.config_layers(snap);
    if name.is_empty() {
        // In a cluster the map is the quorum's, checked by the member that proposed it:
        // a key this version does not know (a newer member's) is left out, not a panic.
        return Ok(snap
            .default_broker_configs
            .iter()
            .filter_map(|(k, v)| topic_config::def_of_broker_key(k).map(|(def, _)| (k, v, def)))
            .map(|(k, v, def)| {
                let synonym = Synonym {
                    name: k.clone(),
                    value: v.clone(),
                    source: Source::DynamicDefaultBroker,
                };
                Described {
                    name: k.clone(),
                    value: Some(v.clone()),
                    read_only: false,
                    source: Source::DynamicDefaultBroker,
                    synonyms: vec![synonym],
                    config_type: def.kind.config_type(),
                    doc: def.doc,
                }
            })
            .collect());
    }
    if name != broker.config.node_id.to_string() {
        return Err((
            ec::INVALID_REQUEST,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                broker.config.node_id
            ),
        ));
    }
    let mut out: Vec<Described> = DEFS
        .iter()
        .map(|def| {
            let key = def.broker_keys[0].name;
            let synonyms = layers.synonyms(def);
            let first = synonyms.first().cloned().expect("a default at least");
            Described {
                name: key.to_string(),
                value: Some(first.value),
                read_only: false,
                source: first.source,
                synonyms,
                config_type: def.kind.config_type(),
                doc: def.doc,
            }
        })
        .collect();
    let rates = throttle::BROKER_KEYS
        .iter()
        .filter_map(|k| snap.broker_configs.get(*k).map(|v| (*k, v)));
    out.extend(rates.map(|(k, v)| {
        dynamic(
            k,
            v,
            Source::DynamicBroker,
            ConfigType::Long,
            throttle::RATE_DOC,
        )
    }));
    for (key, value, set) in broker.config.static_view() {
        let source = if set {
            Source::StaticBroker
        } else {
            Source::Default
        };
        out.push(Described {
            name: key.to_string(),
            value: Some(value.clone()),
            read_only: true,
            source,
            synonyms: vec![Synonym {
                name: key.to_string(),
                value,
                source,
            }],
            config_type: ConfigType::String,
            doc: "",
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn entry(d: Described, synonyms: bool, documentation: bool) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default();
    e.name = str_bytes(&d.name);
    e.value = d.value.as_deref().map(str_bytes);
    e.read_only = d.read_only;
    e.config_source = d.source as i8;
    e.is_sensitive = false;
    e.config_type = d.config_type as i8;
    if documentation && !d.doc.is_empty() {
        e.documentation = Some(str_bytes(d.doc));
    }
    if synonyms {
        e.synonyms = d
            .synonyms
            .iter()
            .map(|s| {
                let mut y = DescribeConfigsSynonym::default();
                y.name = str_bytes(&s.name);
                y.value = Some(str_bytes(&s.value));
                y.source = s.source as i8;
                y
            })
            .collect();
    }
    e
}
