//! SASL settings beyond each listener's mechanisms: which listener the brokers of a
//! cluster use among themselves and how they log in there (Kafka's
//! `inter.broker.listener.name` / `security.inter.broker.protocol`,
//! `sasl.mechanism.inter.broker.protocol`, and the broker's own credentials in
//! `listener.name.<l>.<mechanism>.sasl.jaas.config`), and re-authentication
//! (`connections.max.reauth.ms`, KIP-368).

use std::collections::BTreeMap;

use super::listeners::ClientListener;
use super::{invalid, parse_num, ConfigError};
use crate::security::SaslMechanism;

pub const KEYS: &[&str] = &[
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.jaas.config",
    REAUTH_KEY,
];

pub const REAUTH_KEY: &str = "connections.max.reauth.ms";

/// How this broker connects to the others (replica fetchers): through the listener
/// `listener` (an index into `BrokerConfig::listeners`), logging in as `login` when that
/// listener is a SASL one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterBroker {
    pub listener: usize,
    pub login: Option<BrokerLogin>,
}

/// The broker's own SASL identity towards the other brokers.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerLogin {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BrokerLogin {
    /// Never the password: configs end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Whether `k` is one of this module's keys, the listener- and mechanism-scoped JAAS
/// key included (`listener.name.<l>.<mechanism>.sasl.jaas.config`).
pub fn known_key(k: &str) -> bool {
    KEYS.contains(&k) || (k.starts_with("listener.name.") && k.ends_with(".sasl.jaas.config"))
}

/// `connections.max.reauth.ms`: 0 (Kafka's default) means sessions never expire.
pub fn reauth_ms(props: &BTreeMap<String, String>) -> Result<u64, ConfigError> {
    match props.get(REAUTH_KEY) {
        None => Ok(0),
        Some(v) => Ok(parse_num(REAUTH_KEY, v, 0, i64::MAX)? as u64),
    }
}

/// The inter-broker listener and login. Without either key: the first listener (what
/// members registered before these keys were read). Only a cluster member needs a
/// login; a single broker has no one to connect to.
pub fn inter_broker(
    props: &BTreeMap<String, String>,
    listeners: &[ClientListener],
    cluster: bool,
) -> Result<InterBroker, ConfigError> {
    let by_name = props.get("inter.broker.listener.name");
    let by_protocol = props.get("security.inter.broker.protocol");
    let (key, name) =
        match (by_name, by_protocol) {
            (Some(_), Some(_)) => return Err(invalid(
                "inter.broker.listener.name",
                by_name.map_or("", String::as_str),
                "give only one of inter.broker.listener.name and security.inter.broker.protocol",
            )),
            (Some(n), None) => ("inter.broker.listener.name", n.trim()),
            (None, Some(p)) => ("security.inter.broker.protocol", p.trim()),
            (None, None) => return Ok(InterBroker::default()),
        };
    let Some(listener) = listeners
        .iter()
        .position(|l| l.name.eq_ignore_ascii_case(name))
    else {
        let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        return Err(invalid(
            key,
            name,
            &format!(
                "no such listener in `listeners` (it has {})",
                names.join(", ")
            ),
        ));
    };
    let l = &listeners[listener];
    if !cluster {
        return Ok(InterBroker {
            listener,
            login: None,
        });
    }
    let login = if l.protocol.sasl() {
        Some(broker_login(props, l)?)
    } else {
        None
    };
    Ok(InterBroker { listener, login })
}

fn broker_login(
    props: &BTreeMap<String, String>,
    l: &ClientListener,
) -> Result<BrokerLogin, ConfigError> {
    let mech_key = "sasl.mechanism.inter.broker.protocol";
    let Some(m) = props.get(mech_key) else {
        return Err(invalid(
            mech_key,
            "",
            &format!("the inter-broker listener {} is a SASL one: set this key (Kafka's default, GSSAPI, is not served)", l.name),
        ));
    };
    let mechanism = SaslMechanism::parse(m.trim())
        .ok_or_else(|| invalid(mech_key, m, "give PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"))?;
    if !l.sasl_mechanisms.contains(&mechanism) {
        return Err(invalid(
            mech_key,
            m,
            &format!(
                "listener {} does not enable it (sasl.enabled.mechanisms)",
                l.name
            ),
        ));
    }
    let scoped = format!(
        "listener.name.{}.{}.sasl.jaas.config",
        l.name.to_ascii_lowercase(),
        mechanism.name().to_ascii_lowercase()
    );
    let (key, jaas) = match props.get(&scoped) {
        Some(v) => (scoped.as_str(), v),
        None => match props.get("sasl.jaas.config") {
            Some(v) => ("sasl.jaas.config", v),
            None => {
                return Err(invalid(
                    &scoped,
                    "",
                    "the broker's own inter-broker credentials are missing: set it to `<LoginModule> required username=\"...\" password=\"...\";`",
                ))
            }
        },
    };
    let module = match mechanism {
        SaslMechanism::Plain => "PlainLoginModule",
        SaslMechanism::Scram(_) => "ScramLoginModule",
    };
    if !jaas.contains(module) {
        return Err(invalid(
            key,
            "(hidden)",
            &format!("{} needs the {module}", mechanism.name()),
        ));
    }
    let (Some(username), Some(password)) =
        (jaas_option(jaas, "username"), jaas_option(jaas, "password"))
    else {
        return Err(invalid(
            key,
            "(hidden)",
            "expected username=\"...\" and password=\"...\"",
        ));
    };
    Ok(BrokerLogin {
        mechanism,
        username,
        password,
    })
}

/// `key="value"` inside a JAAS line (`... required username="alice" password="pw";`);
/// the key must start a word, so `username` is not found inside `user_username`.
pub fn jaas_option(jaas: &str, key: &str) -> Option<String> {
    let needle = format!("{key}=\"");
    let mut from = 0;
    while let Some(at) = jaas[from..].find(&needle) {
        let start = from + at;
        let word_start = start == 0 || jaas.as_bytes()[start - 1].is_ascii_whitespace();
        let value_start = start + needle.len();
        if word_start {
            let len = jaas[value_start..].find('"')?;
            return Some(jaas[value_start..value_start + len].to_string());
        }
        from = value_start;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    fn load(extra: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let mut props: BTreeMap<String, String> = [
            ("listeners", "PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093"),
            ("controller.listener.names", "CONTROLLER"),
            ("process.roles", "broker,controller"),
            ("node.id", "1"),
            ("controller.quorum.voters", "1@127.0.0.1:9093"),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512,PLAIN"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            props.insert(k.to_string(), v.to_string());
        }
        BrokerConfig::from_properties(&props)
    }

    const JAAS: &str = "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config";

    #[test]
    fn the_listener_and_the_login_from_kafkas_keys() {
        let c = load(&[
            ("inter.broker.listener.name", "SASL_PLAINTEXT"),
            ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"),
            (JAAS, "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"s3cret\";"),
        ])
        .unwrap();
        assert_eq!(c.inter_broker.listener, 1);
        let login = c.inter_broker.login.clone().unwrap();
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("broker", "s3cret")
        );
        assert!(!format!("{:?}", c.inter_broker).contains("s3cret"));
        // security.inter.broker.protocol names the listener of that name.
        let c = load(&[("security.inter.broker.protocol", "PLAINTEXT")]).unwrap();
        assert_eq!(c.inter_broker, InterBroker::default());
        assert_eq!(load(&[]).unwrap().inter_broker, InterBroker::default());
    }

    #[test]
    fn what_is_missing_or_wrong_is_a_start_up_error() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("inter.broker.listener.name", "NOPE")], "no such listener"),
            (
                &[("inter.broker.listener.name", "SASL_PLAINTEXT"), ("security.inter.broker.protocol", "PLAINTEXT")],
                "only one",
            ),
            (&[("inter.broker.listener.name", "SASL_PLAINTEXT")], "GSSAPI"),
            (
                &[("inter.broker.listener.name", "SASL_PLAINTEXT"), ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-256")],
                "does not enable it",
            ),
            (
                &[("inter.broker.listener.name", "SASL_PLAINTEXT"), ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512")],
                "credentials are missing",
            ),
            (
                &[
                    ("inter.broker.listener.name", "SASL_PLAINTEXT"),
                    ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512"),
                    (JAAS, "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"b\" password=\"p\";"),
                ],
                "needs the ScramLoginModule",
            ),
        ];
        for (extra, want) in cases {
            let e = load(extra).expect_err("refused").to_string();
            assert!(e.contains(want), "{extra:?}: {e}");
        }
    }

    #[test]
    fn jaas_options_are_whole_words() {
        let j =
            "PlainLoginModule required user_username=\"x\" username=\"admin\" password=\"a b\";";
        assert_eq!(jaas_option(j, "username").as_deref(), Some("admin"));
        assert_eq!(jaas_option(j, "password").as_deref(), Some("a b"));
        assert_eq!(jaas_option(j, "missing"), None);
    }
}
