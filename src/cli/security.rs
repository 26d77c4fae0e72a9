//! The toolbox's side of TLS and SASL: Kafka client properties from
//! `--command-config client.properties` (security.protocol, sasl.mechanism,
//! sasl.username / sasl.password or sasl.jaas.config, ssl.ca.location or a PEM
//! ssl.truststore.location, ssl.certificate.location + ssl.key.location or a PEM
//! ssl.keystore.location for mutual TLS). Installed once per process; every
//! `Client::connect` then wraps its socket in TLS and logs in.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::SecurityProtocol;
use crate::security::SaslMechanism;

/// Debian's CA bundle: the trust roots when no ssl.ca.location is given.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

pub struct ClientSecurity {
    pub protocol: SecurityProtocol,
    pub sasl: Option<SaslLogin>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

pub struct SaslLogin {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: String,
}

static CURRENT: OnceLock<ClientSecurity> = OnceLock::new();

/// Reads `path` (a Kafka client properties file) and makes it the process's settings.
pub fn install(path: Option<&Path>) -> Result<(), String> {
    let Some(path) = path else {
        return Ok(());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--command-config {}: {e}", path.display()))?;
    let mut props = std::collections::BTreeMap::new();
    crate::config::parse_properties(&text, &path.display().to_string(), &mut props)
        .map_err(|e| e.to_string())?;
    let s =
        from_properties(&props).map_err(|e| format!("--command-config {}: {e}", path.display()))?;
    let _ = CURRENT.set(s);
    Ok(())
}

pub fn current() -> Option<&'static ClientSecurity> {
    CURRENT.get()
}

pub fn from_properties(
    props: &std::collections::BTreeMap<String, String>,
) -> Result<ClientSecurity, String> {
    let get = |k: &str| props.get(k).map(|v| v.trim().to_string());
    let protocol = match get("security.protocol") {
        None => SecurityProtocol::Plaintext,
        Some(p) => SecurityProtocol::parse(&p).ok_or_else(|| {
            format!("security.protocol={p}: give PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
        })?,
    };
    let sasl = if protocol.sasl() {
        let mech = get("sasl.mechanism")
            .or_else(|| get("sasl.mechanisms"))
            .unwrap_or_else(|| "PLAIN".into());
        let mechanism = SaslMechanism::parse(&mech).ok_or_else(|| {
            format!("sasl.mechanism={mech}: give PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        })?;
        let jaas = get("sasl.jaas.config").unwrap_or_default();
        let username = get("sasl.username").or_else(|| jaas_option(&jaas, "username"));
        let password = get("sasl.password").or_else(|| jaas_option(&jaas, "password"));
        let (Some(username), Some(password)) = (username, password) else {
            return Err("SASL needs sasl.username and sasl.password (or sasl.jaas.config with username=\"...\" password=\"...\")".into());
        };
        Some(SaslLogin {
            mechanism,
            username,
            password,
        })
    } else {
        None
    };
    let tls = if protocol.tls() {
        Some(Arc::new(tls_config(&get)?))
    } else {
        None
    };
    Ok(ClientSecurity {
        protocol,
        sasl,
        tls,
    })
}

/// `key="value"` inside a JAAS line (`... required username="alice" password="pw";`).
fn jaas_option(jaas: &str, key: &str) -> Option<String> {
    let start = jaas.find(&format!("{key}=\""))? + key.len() + 2;
    let len = jaas[start..].find('"')?;
    Some(jaas[start..start + len].to_string())
}

fn tls_config(get: &dyn Fn(&str) -> Option<String>) -> Result<rustls::ClientConfig, String> {
    if get("ssl.endpoint.identification.algorithm")
        .is_some_and(|v| v.is_empty() || v.eq_ignore_ascii_case("none"))
    {
        return Err(
            "ssl.endpoint.identification.algorithm: the tools always verify the broker's host name"
                .into(),
        );
    }
    let ca = get("ssl.ca.location")
        .or_else(|| get("ssl.truststore.location"))
        .unwrap_or_else(|| SYSTEM_CA_BUNDLE.into());
    let pem = std::fs::read(&ca).map_err(|e| format!("CA file {ca}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("CA file {ca}: {e}"))?;
        roots.add(cert).map_err(|e| format!("CA file {ca}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("CA file {ca}: no CERTIFICATE block"));
    }
    #[allow(deprecated)] // ring: see server::tls
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let cert_and_key = match (
        get("ssl.certificate.location"),
        get("ssl.key.location"),
        get("ssl.keystore.location"),
    ) {
        (Some(c), Some(k), _) => Some((read(&c)?, read(&k)?)),
        (None, None, Some(ks)) => {
            let b = read(&ks)?;
            Some((b.clone(), b))
        }
        (None, None, None) => None,
        _ => return Err("give both ssl.certificate.location and ssl.key.location".into()),
    };
    match cert_and_key {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => {
            let chain = CertificateDer::pem_slice_iter(&chain)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            let key =
                PrivateKeyDer::from_pem_slice(&key).map_err(|e| format!("client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate and key: {e}"))
        }
    }
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

/// A tool's connection: plain TCP, or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    /// Wraps `tcp` as the installed settings ask; `host` is what the certificate must name.
    pub fn wrap(tcp: TcpStream, host: &str) -> std::io::Result<Stream> {
        let Some(config) = current().and_then(|s| s.tls.clone()) else {
            return Ok(Stream::Plain(tcp));
        };
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| std::io::Error::other(format!("{host} is not a TLS server name: {e}")))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        // Handshake now, so a certificate problem is reported at connect time.
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(Stream::Tls(Box::new(s)))
    }

    pub fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match self {
            Stream::Plain(s) => s.peer_addr(),
            Stream::Tls(s) => s.sock.peer_addr(),
        }
    }

    pub fn into_plain(self) -> Option<TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::Tls(_) => None,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_as_kafka_clients_write_them() {
        let props = [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"a b\";",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = from_properties(&props).unwrap();
        let login = s.sasl.unwrap();
        assert_eq!(
            (
                login.username.as_str(),
                login.password.as_str(),
                login.mechanism.name()
            ),
            ("alice", "a b", "SCRAM-SHA-512")
        );
        let bad = [("security.protocol", "SASL_SSL")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(from_properties(&bad).is_err());
    }
}
