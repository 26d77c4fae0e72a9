//! The `ssl.*` keys of a TLS listener, with Kafka's names: PEM keystores (a file with
//! key and chain, or the chain and key inline), a PEM truststore for client
//! certificates, `ssl.client.auth`, `ssl.enabled.protocols`, `ssl.cipher.suites`. A
//! listener's own `listener.name.<name>.ssl.*` wins over the broker-wide `ssl.*`, as in
//! Kafka. Only the settings are read here; `server::tls` loads the files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{invalid, ConfigError};

/// Where the broker's certificate chain and private key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keystore {
    /// `ssl.keystore.location`: one PEM file holding the private key and the chain.
    File(PathBuf),
    /// `ssl.keystore.certificate.chain` and `ssl.keystore.key`: PEM text in the config.
    Inline { chain: String, key: String },
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// A client certificate is asked for and verified when given.
    Requested,
    /// A client without a certificate the truststore vouches for is refused.
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub keystore: Keystore,
    /// `ssl.truststore.location`: PEM CA certificates that sign client certificates
    /// and, between brokers, the other brokers' certificates.
    pub truststore: Option<PathBuf>,
    /// `ssl.truststore.certificates`: the same CA certificates as PEM text in the
    /// config (used when no `ssl.truststore.location` is given).
    pub truststore_inline: Option<String>,
    /// `ssl.endpoint.identification.algorithm`: `https` (Kafka's default) makes a
    /// broker connecting to another check that the certificate names the host it
    /// connects to; empty turns that check off (the chain is still verified).
    pub verify_hostname: bool,
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`: `TLSv1.2`, `TLSv1.3` (Kafka's default: both).
    pub protocols: Vec<String>,
    /// `ssl.cipher.suites`: empty means the TLS stack's defaults.
    pub cipher_suites: Vec<String>,
}

pub const PROTOCOLS_SUPPORTED: [&str; 2] = ["TLSv1.2", "TLSv1.3"];

/// The `ssl.*` keys this module reads (for the unknown-key check).
pub const KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.endpoint.identification.algorithm",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.protocol",
    "ssl.cipher.suites",
];

/// The TLS settings of listener `name` (upper case).
pub fn settings(
    props: &BTreeMap<String, String>,
    listener: &str,
) -> Result<TlsSettings, ConfigError> {
    let scoped = |k: &str| format!("listener.name.{}.{k}", listener.to_ascii_lowercase());
    let get = |k: &str| -> Option<(String, String)> {
        let s = scoped(k);
        props
            .get(&s)
            .map(|v| (s.clone(), v.clone()))
            .or_else(|| props.get(k).map(|v| (k.to_string(), v.clone())))
    };
    for k in ["ssl.keystore.type", "ssl.truststore.type"] {
        if let Some((key, v)) = get(k) {
            if !v.eq_ignore_ascii_case("PEM") {
                return Err(invalid(
                    &key,
                    &v,
                    "corelog reads PEM only; convert a JKS or PKCS12 store with openssl/keytool and set PEM",
                ));
            }
        }
    }
    if let Some((key, v)) = get("ssl.key.password").filter(|(_, v)| !v.is_empty()) {
        return Err(invalid(
            &key,
            &v.replace(|_| true, "*"),
            "encrypted private keys are not supported; give an unencrypted PKCS#8 key (openssl pkcs8 -nocrypt)",
        ));
    }
    let keystore = match (
        get("ssl.keystore.location"),
        get("ssl.keystore.certificate.chain"),
        get("ssl.keystore.key"),
    ) {
        (Some((_, path)), None, None) => Keystore::File(PathBuf::from(path)),
        (None, Some((_, chain)), Some((_, key))) => Keystore::Inline { chain, key },
        (None, None, None) => {
            return Err(invalid(
                "ssl.keystore.location",
                "",
                &format!("listener {listener} uses TLS: give ssl.keystore.location (a PEM with key and chain) or ssl.keystore.certificate.chain and ssl.keystore.key"),
            ))
        }
        _ => {
            return Err(invalid(
                &scoped("ssl.keystore.location"),
                "",
                "give either ssl.keystore.location or both ssl.keystore.certificate.chain and ssl.keystore.key, not a mix",
            ))
        }
    };
    let client_auth = match get("ssl.client.auth") {
        None => ClientAuth::None,
        Some((key, v)) => match v.to_ascii_lowercase().as_str() {
            "none" | "" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            _ => return Err(invalid(&key, &v, "expected required, requested or none")),
        },
    };
    let truststore = get("ssl.truststore.location").map(|(_, p)| PathBuf::from(p));
    let truststore_inline = get("ssl.truststore.certificates").map(|(_, pem)| pem);
    if truststore.is_some() && truststore_inline.is_some() {
        return Err(invalid(
            &scoped("ssl.truststore.certificates"),
            "",
            "give either ssl.truststore.location or ssl.truststore.certificates, not both",
        ));
    }
    let verify_hostname = match get("ssl.endpoint.identification.algorithm") {
        None => true,
        Some((key, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "https" => true,
            "" => false,
            _ => {
                return Err(invalid(
                    &key,
                    &v,
                    "expected https (check the host name) or empty (do not)",
                ))
            }
        },
    };
    if client_auth != ClientAuth::None && truststore.is_none() && truststore_inline.is_none() {
        return Err(invalid(
            &scoped("ssl.client.auth"),
            "",
            "client authentication needs ssl.truststore.location (the PEM CA that signs client certificates)",
        ));
    }
    let protocols = match get("ssl.enabled.protocols") {
        None => PROTOCOLS_SUPPORTED.iter().map(|p| p.to_string()).collect(),
        Some((key, v)) => {
            let list = list(&v);
            for p in &list {
                if !PROTOCOLS_SUPPORTED.contains(&p.as_str()) {
                    return Err(invalid(&key, &v, &format!("{p} is not TLSv1.2 or TLSv1.3")));
                }
            }
            if list.is_empty() {
                return Err(invalid(&key, &v, "enable at least one of TLSv1.2, TLSv1.3"));
            }
            list
        }
    };
    let cipher_suites = get("ssl.cipher.suites").map_or_else(Vec::new, |(_, v)| list(&v));
    Ok(TlsSettings {
        keystore,
        truststore,
        truststore_inline,
        verify_hostname,
        client_auth,
        protocols,
        cipher_suites,
    })
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
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
    fn listener_scoped_keys_win() {
        let s = settings(
            &props(&[
                ("ssl.keystore.location", "/a.pem"),
                ("listener.name.ssl.ssl.keystore.location", "/b.pem"),
                ("ssl.truststore.location", "/ca.pem"),
                ("ssl.client.auth", "required"),
                ("ssl.enabled.protocols", "TLSv1.3"),
            ]),
            "SSL",
        )
        .unwrap();
        assert_eq!(s.keystore, Keystore::File("/b.pem".into()));
        assert_eq!(s.client_auth, ClientAuth::Required);
        assert_eq!(s.protocols, vec!["TLSv1.3".to_string()]);
        let other = settings(&props(&[("ssl.keystore.location", "/a.pem")]), "OTHER").unwrap();
        assert_eq!(other.keystore, Keystore::File("/a.pem".into()));
        assert_eq!(other.protocols.len(), 2);
    }

    #[test]
    fn broker_client_keys() {
        let s = settings(&props(&[("ssl.keystore.location", "/a.pem")]), "SSL").unwrap();
        assert!(s.verify_hostname, "Kafka's default is https");
        let s = settings(
            &props(&[
                ("ssl.keystore.location", "/a.pem"),
                (
                    "listener.name.internal.ssl.endpoint.identification.algorithm",
                    "",
                ),
                ("ssl.truststore.certificates", "-----BEGIN CERTIFICATE-----"),
            ]),
            "INTERNAL",
        )
        .unwrap();
        assert!(!s.verify_hostname);
        assert!(s.truststore_inline.is_some() && s.truststore.is_none());
        for (kv, want) in [
            (
                vec![("ssl.endpoint.identification.algorithm", "ldap")],
                "expected https",
            ),
            (
                vec![
                    ("ssl.truststore.location", "/ca.pem"),
                    ("ssl.truststore.certificates", "x"),
                ],
                "not both",
            ),
        ] {
            let mut kv = kv;
            kv.push(("ssl.keystore.location", "/a.pem"));
            let e = settings(&props(&kv), "SSL").unwrap_err();
            assert!(e.to_string().contains(want), "{kv:?}: {e}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        for (kv, want) in [
            (vec![], "give ssl.keystore.location"),
            (
                vec![
                    ("ssl.keystore.location", "/a"),
                    ("ssl.keystore.type", "JKS"),
                ],
                "PEM only",
            ),
            (
                vec![("ssl.keystore.location", "/a"), ("ssl.key.password", "x")],
                "encrypted",
            ),
            (
                vec![
                    ("ssl.keystore.location", "/a"),
                    ("ssl.client.auth", "required"),
                ],
                "truststore",
            ),
            (
                vec![("ssl.keystore.location", "/a"), ("ssl.client.auth", "yes")],
                "expected required",
            ),
            (
                vec![
                    ("ssl.keystore.location", "/a"),
                    ("ssl.enabled.protocols", "TLSv1"),
                ],
                "TLSv1 is not",
            ),
            (vec![("ssl.keystore.key", "k")], "not a mix"),
        ] {
            let e = settings(&props(&kv), "SSL").unwrap_err();
            assert!(e.to_string().contains(want), "{kv:?}: {e}");
        }
    }
}
