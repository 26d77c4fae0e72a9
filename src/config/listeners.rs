//! `listeners`, `advertised.listeners` and `listener.security.protocol.map`: the client
//! listeners a broker serves, each with a name, a security protocol and the address it
//! advertises. The CONTROLLER listener of a quorum member (named in
//! `controller.listener.names`) is split off here; its security (PLAINTEXT or SSL) is
//! read by `config::controller_listener`.

use std::collections::BTreeMap;

use super::{invalid, ConfigError, Listener};
use crate::security::SaslMechanism;

/// Kafka's security protocols, as `listener.security.protocol.map` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(s: &str) -> Option<SecurityProtocol> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections on this protocol are encrypted with TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients must log in with SASL before anything but ApiVersions.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// One client listener: `NAME://host:port` in `listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientListener {
    /// The listener name as given (`PLAINTEXT`, `SSL`, `CLIENT`, ...), upper case.
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: Listener,
    /// What clients connected through this listener are told to connect to.
    pub advertised: Listener,
    /// The TLS settings, for SSL and SASL_SSL listeners.
    pub tls: Option<super::tls::TlsSettings>,
    /// `sasl.enabled.mechanisms` of a SASL listener (empty for the others).
    pub sasl_mechanisms: Vec<SaslMechanism>,
}

/// corelog's default `sasl.enabled.mechanisms`: the SCRAM ones. PLAIN sends the password
/// itself, so an operator enables it by name (Kafka's default, GSSAPI, is not served).
pub const SASL_MECHANISMS_DEFAULT: &str = "SCRAM-SHA-256,SCRAM-SHA-512";

/// `listener.name.<l>.sasl.enabled.mechanisms`, else `sasl.enabled.mechanisms`.
pub(super) fn sasl_mechanisms(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<Vec<SaslMechanism>, ConfigError> {
    let scoped = format!(
        "listener.name.{}.sasl.enabled.mechanisms",
        listener.to_ascii_lowercase()
    );
    let (key, v) = match props.get(&scoped) {
        Some(v) => (scoped.as_str(), v.as_str()),
        None => (
            "sasl.enabled.mechanisms",
            props
                .get("sasl.enabled.mechanisms")
                .map_or(SASL_MECHANISMS_DEFAULT, String::as_str),
        ),
    };
    let mut out = Vec::new();
    for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let m = SaslMechanism::parse(name).ok_or_else(|| {
            invalid(
                key,
                v,
                &format!("{name} is not served; corelog has PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
            )
        })?;
        if !out.contains(&m) {
            out.push(m);
        }
    }
    if out.is_empty() {
        return Err(invalid(
            key,
            v,
            &format!("listener {listener} uses SASL: enable at least one mechanism"),
        ));
    }
    Ok(out)
}

/// The parsed `listeners` and `advertised.listeners`: the client listeners (at least
/// one) and the controller listener, if any.
pub(super) struct Listeners {
    pub client: Vec<ClientListener>,
    pub controller: Option<Listener>,
}

/// Reads the listener keys; `listeners` absent means `PLAINTEXT://:<default port>`.
pub(super) fn parse(
    props: &BTreeMap<String, String>,
    default: &Listener,
) -> Result<Listeners, ConfigError> {
    let get = |k: &str| props.get(k).map(String::as_str);
    let controller_names: Vec<String> = get("controller.listener.names")
        .unwrap_or("")
        .split(',')
        .map(|n| n.trim().to_ascii_uppercase())
        .filter(|n| !n.is_empty())
        .collect();
    let map = protocol_map(get("listener.security.protocol.map"))?;
    let given = match get("listeners") {
        Some(v) => entries("listeners", v)?,
        None => vec![("PLAINTEXT".to_string(), default.clone())],
    };
    let mut client = Vec::new();
    let mut controller = None;
    for (name, bind) in given {
        if controller_names.contains(&name) {
            controller = Some(bind);
            continue;
        }
        if client.iter().any(|l: &ClientListener| l.name == name) {
            return Err(invalid(
                "listeners",
                get("listeners").unwrap_or(""),
                &format!("listener name {name} is used twice; each listener needs its own name"),
            ));
        }
        if client
            .iter()
            .any(|l: &ClientListener| l.bind.port == bind.port && bind.port != 0)
        {
            return Err(invalid(
                "listeners",
                get("listeners").unwrap_or(""),
                &format!("port {} is given to two listeners", bind.port),
            ));
        }
        let protocol = match map.get(&name) {
            Some(p) => *p,
            None => SecurityProtocol::parse(&name).ok_or_else(|| {
                invalid(
                    "listener.security.protocol.map",
                    get("listener.security.protocol.map").unwrap_or(""),
                    &format!("listener {name} has no security protocol; add {name}:PLAINTEXT (or SSL, SASL_PLAINTEXT, SASL_SSL)"),
                )
            })?,
        };
        let advertised = default_advertised(&bind);
        client.push(ClientListener {
            name,
            protocol,
            bind,
            advertised,
            tls: None,
            sasl_mechanisms: Vec::new(),
        });
    }
    if client.is_empty() {
        return Err(invalid(
            "listeners",
            get("listeners").unwrap_or(""),
            "no client listener: give at least one besides the controller listener",
        ));
    }
    if let Some(v) = get("advertised.listeners") {
        for (name, adv) in entries("advertised.listeners", v)? {
            if controller_names.contains(&name) {
                continue;
            }
            let Some(l) = client.iter_mut().find(|l| l.name == name) else {
                return Err(invalid(
                    "advertised.listeners",
                    v,
                    &format!("{name} is not one of the listeners"),
                ));
            };
            l.advertised = adv;
        }
    }
    Ok(Listeners { client, controller })
}

/// `NAME:PROTOCOL,...`, names upper case.
pub(super) fn protocol_map(
    v: Option<&str>,
) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let key = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for item in v
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (name, proto) = item
            .split_once(':')
            .ok_or_else(|| invalid(key, v.unwrap_or(""), "expected NAME:PROTOCOL entries"))?;
        let proto = SecurityProtocol::parse(proto.trim()).ok_or_else(|| {
            invalid(
                key,
                v.unwrap_or(""),
                &format!("{proto} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
            )
        })?;
        map.insert(name.trim().to_ascii_uppercase(), proto);
    }
    Ok(map)
}

/// `NAME://host:port,...` as (upper-case name, address).
fn entries(key: &str, v: &str) -> Result<Vec<(String, Listener)>, ConfigError> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| parse_entry(key, v, item))
        .collect()
}

fn parse_entry(key: &str, v: &str, item: &str) -> Result<(String, Listener), ConfigError> {
    let (name, rest) = item
        .split_once("://")
        .ok_or_else(|| invalid(key, v, "expected NAME://host:port"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| invalid(key, v, "expected host:port after ://"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(key, v, "port must be a number from 0 to 65535"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((name.trim().to_ascii_uppercase(), Listener { host, port }))
}

/// With no advertised.listeners, Kafka advertises the listener, and for a wildcard host
/// the machine's name; `localhost` is what a local client can always reach.
pub(super) fn default_advertised(l: &Listener) -> Listener {
    let host = if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
        "localhost".to_string()
    } else {
        l.host.clone()
    };
    Listener { host, port: l.port }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn default() -> Listener {
        Listener {
            host: String::new(),
            port: 9092,
        }
    }

    #[test]
    fn several_listeners_with_a_protocol_map() {
        let l = parse(
            &props(&[
                (
                    "listeners",
                    "PLAINTEXT://127.0.0.1:9092,SSL://:9093,INTERNAL://h:9094,CONTROLLER://:9095",
                ),
                (
                    "listener.security.protocol.map",
                    "INTERNAL:SASL_SSL,CONTROLLER:PLAINTEXT",
                ),
                ("controller.listener.names", "CONTROLLER"),
                ("advertised.listeners", "SSL://broker.example:19093"),
            ]),
            &default(),
        )
        .unwrap();
        let got: Vec<_> = l
            .client
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.protocol,
                    c.advertised.host.as_str(),
                    c.advertised.port,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("PLAINTEXT", SecurityProtocol::Plaintext, "127.0.0.1", 9092),
                ("SSL", SecurityProtocol::Ssl, "broker.example", 19093),
                ("INTERNAL", SecurityProtocol::SaslSsl, "h", 9094),
            ]
        );
        assert_eq!(l.controller.unwrap().port, 9095);
    }

    #[test]
    fn refuses_unmapped_names_and_duplicates() {
        for (listeners, map, want) in [
            ("CLIENT://:9092", "", "has no security protocol"),
            ("SSL://:9092,SSL://:9093", "", "used twice"),
            ("PLAINTEXT://:9092,SSL://:9092", "", "two listeners"),
            ("SSL://:9093", "SSL:TLS", "is not PLAINTEXT"),
        ] {
            let e = parse(
                &props(&[
                    ("listeners", listeners),
                    ("listener.security.protocol.map", map),
                ]),
                &default(),
            )
            .err()
            .unwrap();
            assert!(e.to_string().contains(want), "{listeners}: {e}");
        }
        let e = parse(
            &props(&[
                ("listeners", "SSL://:9093"),
                ("advertised.listeners", "PLAINTEXT://h:1"),
            ]),
            &default(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("not one of the listeners"), "{e}");
    }
}
