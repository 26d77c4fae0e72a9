//! The security of the CONTROLLER listener (the quorum's Raft RPC between members):
//! its protocol comes from `listener.security.protocol.map` as for any listener
//! (`CONTROLLER:SSL`), its TLS settings from `listener.name.controller.ssl.*` or
//! `ssl.*`. SSL is served, with mutual TLS when `ssl.client.auth=required`, so only
//! holders of a certificate from the cluster's CA can vote or forward commands.
//!
//! SASL_PLAINTEXT and SASL_SSL are served with PLAIN (Kafka's
//! `sasl.mechanism.controller.protocol`, whose default GSSAPI corelog does not serve):
//! the listener's JAAS config (`listener.name.<controller>.plain.sasl.jaas.config`,
//! else `sasl.jaas.config`) holds this member's own `username` / `password` and the
//! accepted logins as `user_<name>="<password>"`, as Kafka's PlainLoginModule does.
//! SCRAM is refused there, as Kafka refuses it: SCRAM credentials live in the metadata
//! the controllers serve, so a controller could not check a login before it has the
//! metadata that login is needed to fetch.

use std::collections::BTreeMap;

use super::listeners::{protocol_map, SecurityProtocol};
use super::tls::TlsSettings;
use super::{invalid, ConfigError};

pub const MECHANISM_KEY: &str = "sasl.mechanism.controller.protocol";

/// The controller listener's PLAIN login: this member's own credentials towards the
/// other voters, and the logins it accepts from them.
#[derive(Clone, PartialEq, Eq)]
pub struct ControllerSasl {
    pub username: String,
    pub password: String,
    /// `user_<name>="<password>"` of the JAAS config: name to password.
    pub users: BTreeMap<String, String>,
}

impl std::fmt::Debug for ControllerSasl {
    /// Never a password: configs end up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerSasl")
            .field("username", &self.username)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The controller listener's security: TLS settings when it is SSL / SASL_SSL, the
/// PLAIN login when it is SASL_PLAINTEXT / SASL_SSL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControllerSecurity {
    pub tls: Option<TlsSettings>,
    pub sasl: Option<ControllerSasl>,
}

/// The controller listener's TLS settings, None when it is PLAINTEXT (or absent).
pub fn tls(props: &BTreeMap<String, String>) -> Result<Option<TlsSettings>, ConfigError> {
    Ok(security(props)?.tls)
}

/// The controller listener's security from its protocol (see the module comment).
pub fn security(props: &BTreeMap<String, String>) -> Result<ControllerSecurity, ConfigError> {
    let Some(name) = props
        .get("controller.listener.names")
        .and_then(|v| v.split(',').map(str::trim).find(|n| !n.is_empty()))
        .map(str::to_ascii_uppercase)
    else {
        return Ok(ControllerSecurity::default());
    };
    let map = protocol_map(
        props
            .get("listener.security.protocol.map")
            .map(String::as_str),
    )?;
    let protocol = map
        .get(&name)
        .copied()
        .or_else(|| SecurityProtocol::parse(&name))
        .unwrap_or(SecurityProtocol::Plaintext);
    let sasl = if protocol.sasl() {
        Some(sasl(props, &name)?)
    } else {
        None
    };
    let tls = if protocol.tls() {
        Some(super::tls::settings(props, &name)?)
    } else {
        None
    };
    Ok(ControllerSecurity { tls, sasl })
}

fn sasl(props: &BTreeMap<String, String>, listener: &str) -> Result<ControllerSasl, ConfigError> {
    // Kafka's default is GSSAPI, which corelog does not serve: the key must be given.
    let mechanism = props.get(MECHANISM_KEY).map_or("GSSAPI", |m| m.trim());
    match mechanism.to_ascii_uppercase().as_str() {
        "PLAIN" => {}
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
            return Err(invalid(
                MECHANISM_KEY,
                mechanism,
                "SCRAM is not allowed on the controller listener (as in Kafka): SCRAM credentials live in the metadata the controllers serve, so a controller cannot check a login before it has them. Use PLAIN (over SASL_SSL on an untrusted network)",
            ))
        }
        _ => {
            return Err(invalid(
                MECHANISM_KEY,
                mechanism,
                &format!("the controller listener {listener} is a SASL one and corelog serves PLAIN there (Kafka's default, GSSAPI, is not served): set {MECHANISM_KEY}=PLAIN"),
            ))
        }
    }
    let scoped = format!(
        "listener.name.{}.plain.sasl.jaas.config",
        listener.to_ascii_lowercase()
    );
    let (key, jaas) = match props.get(&scoped) {
        Some(v) => (scoped.as_str(), v),
        None => match props.get("sasl.jaas.config") {
            Some(v) => ("sasl.jaas.config", v),
            None => return Err(invalid(
                &scoped,
                "",
                "the controller listener's PLAIN logins are missing: set it to `org.apache.kafka.common.security.plain.PlainLoginModule required username=\"...\" password=\"...\" user_<name>=\"<password>\";`",
            )),
        },
    };
    if !jaas.contains("PlainLoginModule") {
        return Err(invalid(key, "(hidden)", "PLAIN needs the PlainLoginModule"));
    }
    let (Some(username), Some(password)) = (
        super::sasl::jaas_option(jaas, "username"),
        super::sasl::jaas_option(jaas, "password"),
    ) else {
        return Err(invalid(
            key,
            "(hidden)",
            "expected this member's own username=\"...\" and password=\"...\"",
        ));
    };
    let users = jaas_users(jaas);
    if users.is_empty() {
        return Err(invalid(
            key,
            "(hidden)",
            "no user_<name>=\"<password>\" entry: the controller listener would accept no one",
        ));
    }
    Ok(ControllerSasl {
        username,
        password,
        users,
    })
}

/// Every `user_<name>="<password>"` of a JAAS line.
fn jaas_users(jaas: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = jaas;
    while let Some(at) = rest.find("user_") {
        let word_start = at == 0 || rest.as_bytes()[at - 1].is_ascii_whitespace();
        let after = &rest[at + "user_".len()..];
        rest = after;
        let Some(eq) = after.find("=\"") else { break };
        let name = &after[..eq];
        if !word_start || name.is_empty() || name.contains(char::is_whitespace) {
            continue;
        }
        let value = &after[eq + 2..];
        let Some(end) = value.find('"') else { break };
        out.insert(name.to_string(), value[..end].to_string());
        rest = &value[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn protocol_of_the_controller_listener() {
        assert_eq!(tls(&props(&[])).unwrap(), None);
        let names = ("controller.listener.names", "CONTROLLER");
        assert_eq!(tls(&props(&[names])).unwrap(), None, "PLAINTEXT by default");
        let s = tls(&props(&[
            names,
            (
                "listener.security.protocol.map",
                "CONTROLLER:SSL,PLAINTEXT:PLAINTEXT",
            ),
            ("listener.name.controller.ssl.keystore.location", "/c.pem"),
            ("ssl.truststore.location", "/ca.pem"),
            ("ssl.client.auth", "required"),
        ]))
        .unwrap()
        .expect("SSL");
        assert_eq!(
            s.keystore,
            crate::config::tls::Keystore::File("/c.pem".into())
        );
        let e = tls(&props(&[
            names,
            ("listener.security.protocol.map", "CONTROLLER:SASL_SSL"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains(MECHANISM_KEY), "{e}");
        let e = tls(&props(&[
            names,
            ("listener.security.protocol.map", "CONTROLLER:SSL"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("keystore"), "{e}");
    }

    const JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"s3cret\" user_admin=\"s3cret\" user_other=\"x y\";";

    #[test]
    fn sasl_on_the_controller_listener() {
        let base = [
            ("controller.listener.names", "CONTROLLER"),
            (
                "listener.security.protocol.map",
                "CONTROLLER:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut kv = base.to_vec();
            kv.extend_from_slice(extra);
            security(&props(&kv))
        };
        let e = with(&[]).unwrap_err().to_string();
        assert!(e.contains("GSSAPI") && e.contains("=PLAIN"), "{e}");
        let e = with(&[(MECHANISM_KEY, "SCRAM-SHA-512")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("SCRAM is not allowed"), "{e}");
        let e = with(&[(MECHANISM_KEY, "PLAIN")]).unwrap_err().to_string();
        assert!(
            e.contains("listener.name.controller.plain.sasl.jaas.config"),
            "{e}"
        );
        let s = with(&[
            (MECHANISM_KEY, "PLAIN"),
            ("listener.name.controller.plain.sasl.jaas.config", JAAS),
        ])
        .unwrap();
        assert_eq!(s.tls, None);
        let sasl = s.sasl.expect("SASL");
        assert_eq!(
            (sasl.username.as_str(), sasl.password.as_str()),
            ("admin", "s3cret")
        );
        assert_eq!(sasl.users.get("admin").map(String::as_str), Some("s3cret"));
        assert_eq!(sasl.users.get("other").map(String::as_str), Some("x y"));
        assert_eq!(sasl.users.len(), 2);
        assert!(!format!("{sasl:?}").contains("s3cret"));
        let e = with(&[
            (MECHANISM_KEY, "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"a\" password=\"b\";",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("no user_"), "{e}");
    }
}
