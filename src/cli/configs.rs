//! Topic configs for `corelog topic describe|alter`, like kafka-configs.sh:
//! DescribeConfigs (each config with its value and where it comes from) and
//! IncrementalAlterConfigs (SET and DELETE of several keys in one request).

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::client::Client;
use super::topic::{broker_error, TopicError};

/// v1 has the config source (Kafka 1.1+); v4 is the newest corelog serves.
const DESCRIBE_CONFIGS_VERSIONS: (i16, i16) = (1, 4);
/// v0 is Kafka 2.3's; v1 adds flexible encoding only.
const INCREMENTAL_ALTER_VERSIONS: (i16, i16) = (0, 1);
const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
/// Kafka's `ConfigSource` for a value nobody set.
pub const SOURCE_DEFAULT: i8 = 5;

/// One config of a topic as the broker describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    pub name: String,
    /// None for a sensitive or unset value.
    pub value: Option<String>,
    pub source: i8,
    pub read_only: bool,
    pub sensitive: bool,
}

/// Kafka's names for `ConfigSource` values, as kafka-configs.sh prints them.
pub fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        7 => "CLIENT_METRICS_CONFIG",
        8 => "GROUP_CONFIG",
        _ => "UNKNOWN",
    }
}

/// Every config of `topic`, sorted by name.
pub fn describe(client: &mut Client, topic: &str) -> Result<Vec<ConfigEntry>, TopicError> {
    let version = client.version(ApiKey::DescribeConfigs, DESCRIBE_CONFIGS_VERSIONS)?;
    let mut resource = DescribeConfigsResource::default();
    resource.resource_type = RESOURCE_TOPIC;
    resource.resource_name = StrBytes::from_string(topic.to_string());
    resource.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![resource];
    let resp: DescribeConfigsResponse = client.call(ApiKey::DescribeConfigs, version, &req)?;
    let r = resp
        .results
        .first()
        .ok_or_else(|| broker_error(topic, -1, None))?;
    if r.error_code != 0 {
        return Err(broker_error(topic, r.error_code, r.error_message.as_ref()));
    }
    Ok(entries(r))
}

/// The configs `keys` of each of `topics`, in one DescribeConfigs request (for a list of
/// topics, e.g. their retention); a topic the broker reports an error for (deleted
/// meanwhile) is left out.
pub fn describe_keys(
    client: &mut Client,
    topics: &[String],
    keys: &[&str],
) -> Result<BTreeMap<String, Vec<ConfigEntry>>, TopicError> {
    if topics.is_empty() {
        return Ok(BTreeMap::new());
    }
    let version = client.version(ApiKey::DescribeConfigs, DESCRIBE_CONFIGS_VERSIONS)?;
    let mut req = DescribeConfigsRequest::default();
    req.resources = topics
        .iter()
        .map(|t| {
            let mut resource = DescribeConfigsResource::default();
            resource.resource_type = RESOURCE_TOPIC;
            resource.resource_name = StrBytes::from_string(t.clone());
            resource.configuration_keys = Some(
                keys.iter()
                    .map(|k| StrBytes::from_string(k.to_string()))
                    .collect(),
            );
            resource
        })
        .collect();
    let resp: DescribeConfigsResponse = client.call(ApiKey::DescribeConfigs, version, &req)?;
    Ok(resp
        .results
        .iter()
        .filter(|r| r.error_code == 0)
        .map(|r| {
            let mut found = entries(r);
            // Kept to `keys` even if a broker answers with more than it was asked.
            found.retain(|c| keys.contains(&c.name.as_str()));
            (r.resource_name.to_string(), found)
        })
        .collect())
}

fn entries(r: &DescribeConfigsResult) -> Vec<ConfigEntry> {
    let mut out: Vec<ConfigEntry> = r
        .configs
        .iter()
        .map(|c| ConfigEntry {
            name: c.name.to_string(),
            value: c.value.as_ref().map(|v| v.to_string()),
            source: c.config_source,
            read_only: c.read_only,
            sensitive: c.is_sensitive,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Sets and deletes topic overrides in one IncrementalAlterConfigs request; the broker
/// applies all or none. A key may appear once.
pub fn alter(
    client: &mut Client,
    topic: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), TopicError> {
    alter_resource(client, RESOURCE_TOPIC, topic, set, delete)
}

/// As `alter`, for any resource: a topic, or a broker (`RESOURCE_BROKER`, named by its
/// node id; send it to that broker).
pub fn alter_resource(
    client: &mut Client,
    resource_type: i8,
    topic: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<(), TopicError> {
    let mut names: Vec<&str> = set
        .iter()
        .map(|(k, _)| k.as_str())
        .chain(delete.iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(TopicError::Usage(format!(
            "{} is given more than once: set or delete each config once",
            w[0]
        )));
    }
    let version = client.version(ApiKey::IncrementalAlterConfigs, INCREMENTAL_ALTER_VERSIONS)?;
    let op = |name: &str, operation: i8, value: Option<&str>| {
        let mut c = AlterableConfig::default();
        c.name = StrBytes::from_string(name.to_string());
        c.config_operation = operation;
        c.value = value.map(|v| StrBytes::from_string(v.to_string()));
        c
    };
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = resource_type;
    resource.resource_name = StrBytes::from_string(topic.to_string());
    resource.configs = set
        .iter()
        .map(|(k, v)| op(k, OP_SET, Some(v)))
        .chain(delete.iter().map(|k| op(k, OP_DELETE, None)))
        .collect();
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![resource];
    let resp: IncrementalAlterConfigsResponse =
        client.call(ApiKey::IncrementalAlterConfigs, version, &req)?;
    match resp.responses.first() {
        Some(r) if r.error_code != 0 => {
            Err(broker_error(topic, r.error_code, r.error_message.as_ref()))
        }
        Some(_) => Ok(()),
        None => Err(broker_error(topic, -1, None)),
    }
}

/// `key=value` from the command line.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?}: expected KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_needs_a_key_and_keeps_later_equals_signs() {
        assert_eq!(
            parse_key_value("retention.ms=1000"),
            Ok(("retention.ms".to_string(), "1000".to_string()))
        );
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_string(), "b=c".to_string()))
        );
        assert!(parse_key_value("=1").is_err());
        assert!(parse_key_value("retention.ms").is_err());
        assert_eq!(source_name(SOURCE_DEFAULT), "DEFAULT_CONFIG");
    }
}
