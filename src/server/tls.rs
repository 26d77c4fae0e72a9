//! TLS on a listener (SSL and SASL_SSL): rustls with the ring provider over glommio's
//! `TcpStream` (futures-rustls). The handshake and every record's encryption run on the
//! shard that accepted the connection, as the rest of the connection does.
//!
//! Certificates are loaded once at start-up into a `rustls::ServerConfig` per TLS
//! listener and shared by every shard (`Arc`, read at each accept); `reload_if_changed`
//! swaps in a new one when the PEM files change, so new connections get the new
//! certificate while open ones keep theirs. The same holds for the certificates this
//! broker shows to the others (`ClientTlsContext`: inter-broker and controller
//! connections) and for the controller listener's server side.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_rustls::server::TlsStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::config::tls::{ClientAuth, Keystore, TlsSettings};
use crate::runtime::TcpStream;
use crate::server::connection::Transport;

mod client;
mod subject;
pub use client::{client_config, connect, server_name, HandshakeError};
pub use subject::subject_dn;

/// How long a client has to finish the TLS handshake before its connection is closed.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS configuration built from a listener's settings, rebuilt when its keystore or
/// truststore files change (`reload_if_changed`). `C` is a rustls `ServerConfig` (a
/// listener, the controller listener) or `ClientConfig` (this broker connecting to the
/// others: inter-broker and controller connections). Each new connection takes
/// `config()`; open connections keep the configuration they were made with.
pub struct Reloading<C> {
    settings: TlsSettings,
    build: fn(&TlsSettings) -> Result<C, String>,
    /// What this configuration is for, in the reload log lines.
    what: &'static str,
    current: Mutex<Loaded<C>>,
}

/// One TLS listener's server configuration, replaceable when its files change.
pub type TlsContext = Reloading<ServerConfig>;
/// This broker's client configuration towards the others, replaceable likewise.
pub type ClientTlsContext = Reloading<rustls::ClientConfig>;

struct Loaded<C> {
    config: Arc<C>,
    /// Modification times of the files the config was built from.
    stamps: Vec<Option<SystemTime>>,
}

/// What the reload thread calls on every watched configuration, whatever its kind.
pub trait Reload: Send + Sync {
    /// Rebuilds the configuration when a keystore or truststore file has changed since
    /// it was loaded. Blocking (reads files): call it off the shards. A file that does
    /// not load keeps the old certificate in service and is logged.
    fn reload_if_changed(&self);
}

impl TlsContext {
    /// Loads the keystore and truststore named by `settings`; the error says which file
    /// and what is wrong with it.
    pub fn load(settings: &TlsSettings) -> Result<TlsContext, String> {
        Reloading::new(settings, server_config, "listener")
    }
}

impl ClientTlsContext {
    /// The client side of `settings` (`client::client_config`); errors as `load`.
    pub fn load_client(settings: &TlsSettings, what: &'static str) -> Result<Self, String> {
        Reloading::new(settings, client_config, what)
    }
}

impl<C> Reloading<C> {
    pub fn new(
        settings: &TlsSettings,
        build: fn(&TlsSettings) -> Result<C, String>,
        what: &'static str,
    ) -> Result<Self, String> {
        let config = Arc::new(build(settings)?);
        let stamps = stamps(settings);
        Ok(Reloading {
            settings: settings.clone(),
            build,
            what,
            current: Mutex::new(Loaded { config, stamps }),
        })
    }

    /// The configuration new connections get.
    pub fn config(&self) -> Arc<C> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    fn files(&self) -> Vec<String> {
        files(&self.settings)
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    }
}

impl<C: Send + Sync> Reload for Reloading<C> {
    fn reload_if_changed(&self) {
        let now = stamps(&self.settings);
        let mut cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if now == cur.stamps {
            return;
        }
        match (self.build)(&self.settings) {
            Ok(c) => {
                cur.config = Arc::new(c);
                cur.stamps = now;
                tracing::info!(
                    "TLS certificates reloaded ({}): {}",
                    self.what,
                    self.files().join(", ")
                );
            }
            Err(e) => {
                cur.stamps = now;
                tracing::warn!(
                    "TLS certificates changed but do not load ({}), keeping the old ones: {e}",
                    self.what
                );
            }
        }
    }
}

fn files(s: &TlsSettings) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Keystore::File(p) = &s.keystore {
        v.push(p.clone());
    }
    v.extend(s.truststore.clone());
    v
}

fn stamps(s: &TlsSettings) -> Vec<Option<SystemTime>> {
    files(s)
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// A TLS connection is written through the stream: every byte is encrypted into TLS
/// records, so there is no gathering send of plaintext chunks.
impl Transport for TlsStream<TcpStream> {
    fn gather_fd(&self) -> Option<RawFd> {
        None
    }
}

/// The handshake, bounded by `TLS_HANDSHAKE_TIMEOUT`. Returns the stream and, when the
/// client showed a certificate, Kafka's principal name for it (`User:<subject DN>`).
pub async fn accept(
    config: Arc<ServerConfig>,
    stream: TcpStream,
) -> Result<(TlsStream<TcpStream>, Option<String>), String> {
    let handshake = futures_rustls::TlsAcceptor::from(config).accept(stream);
    futures::pin_mut!(handshake);
    let timeout = crate::runtime::sleep(TLS_HANDSHAKE_TIMEOUT);
    futures::pin_mut!(timeout);
    let tls = match futures::future::select(handshake, timeout).await {
        futures::future::Either::Left((Ok(s), _)) => s,
        futures::future::Either::Left((Err(e), _)) => {
            return Err(format!("TLS handshake failed: {e}"))
        }
        futures::future::Either::Right(_) => {
            return Err(format!(
                "TLS handshake not finished within {} s",
                TLS_HANDSHAKE_TIMEOUT.as_secs()
            ))
        }
    };
    let principal = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| {
            subject_dn(c)
                .map(|dn| format!("User:{dn}"))
                .unwrap_or_else(|| "User:ANONYMOUS".into())
        });
    Ok((tls, principal))
}

/// Builds the rustls configuration: certificate chain and key, protocol versions,
/// cipher suites, and the client-certificate verifier for `ssl.client.auth`.
pub fn server_config(s: &TlsSettings) -> Result<ServerConfig, String> {
    let (chain, key) = keystore(&s.keystore)?;
    let provider = provider(s)?;
    let versions = versions(s);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl.enabled.protocols / ssl.cipher.suites: {e}"))?;
    let builder = match (s.client_auth, trust_roots(s)?) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some((roots, what))) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| format!("{what}: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("ssl.keystore: the certificate and key do not go together: {e}"))
}

/// The crypto provider with the cipher suites `ssl.cipher.suites` keeps.
fn provider(s: &TlsSettings) -> Result<Arc<rustls::crypto::CryptoProvider>, String> {
    // rustls deprecates ring's provider because ring has no post-quantum key exchange
    // (X25519MLKEM768): connections use classical X25519 / P-256 / P-384. aws-lc-rs has
    // the hybrid group but needs cmake to build here; see README "Security".
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    if !s.cipher_suites.is_empty() {
        provider
            .cipher_suites
            .retain(|cs| s.cipher_suites.iter().any(|n| suite_matches(cs, n)));
        if provider.cipher_suites.is_empty() {
            return Err(format!(
                "ssl.cipher.suites names no suite corelog supports ({}); supported: {}",
                s.cipher_suites.join(","),
                rustls::crypto::ring::DEFAULT_CIPHER_SUITES
                    .iter()
                    .map(suite_name)
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
    }
    Ok(Arc::new(provider))
}

/// `ssl.enabled.protocols` as rustls versions.
fn versions(s: &TlsSettings) -> Vec<&'static SupportedProtocolVersion> {
    s.protocols
        .iter()
        .filter_map(|p| match p.as_str() {
            "TLSv1.2" => Some(&rustls::version::TLS12),
            "TLSv1.3" => Some(&rustls::version::TLS13),
            _ => None,
        })
        .collect()
}

/// The CA certificates of `ssl.truststore.location` or `ssl.truststore.certificates`,
/// with the key that named them (for error messages); None when neither is set.
fn trust_roots(s: &TlsSettings) -> Result<Option<(RootCertStore, String)>, String> {
    let (certs, what) = match (&s.truststore, &s.truststore_inline) {
        (Some(path), _) => (
            read_certs(path)?,
            format!("ssl.truststore.location {}", path.display()),
        ),
        (None, Some(pem)) => {
            let what = "ssl.truststore.certificates".to_string();
            let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{what}: bad PEM: {e}"))?;
            if certs.is_empty() {
                return Err(format!("{what}: no CERTIFICATE block"));
            }
            (certs, what)
        }
        (None, None) => return Ok(None),
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("{what}: not a usable CA certificate: {e}"))?;
    }
    Ok(Some((roots, what)))
}

/// Kafka names suites as Java does (`TLS_AES_128_GCM_SHA256`,
/// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`); rustls writes TLS 1.3 suites `TLS13_...`.
fn suite_name(cs: &rustls::SupportedCipherSuite) -> String {
    format!("{:?}", cs.suite()).replacen("TLS13_", "TLS_", 1)
}

fn suite_matches(cs: &rustls::SupportedCipherSuite, name: &str) -> bool {
    suite_name(cs).eq_ignore_ascii_case(name.trim())
}

type Chain = Vec<CertificateDer<'static>>;

fn keystore(k: &Keystore) -> Result<(Chain, PrivateKeyDer<'static>), String> {
    let (pem, what) = match k {
        Keystore::File(p) => (
            std::fs::read(p).map_err(|e| format!("ssl.keystore.location {}: {e}", p.display()))?,
            format!("ssl.keystore.location {}", p.display()),
        ),
        Keystore::Inline { chain, key } => {
            let mut both = chain.clone().into_bytes();
            both.push(b'\n');
            both.extend_from_slice(key.as_bytes());
            (
                both,
                "ssl.keystore.certificate.chain / ssl.keystore.key".to_string(),
            )
        }
    };
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: bad PEM certificate: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{what}: no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!("{what}: no usable private key (PKCS#8, PKCS#1 or SEC1, unencrypted): {e}")
    })?;
    Ok((chain, key))
}

fn read_certs(path: &Path) -> Result<Chain, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("ssl.truststore.location {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("ssl.truststore.location {}: bad PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "ssl.truststore.location {}: no CERTIFICATE block",
            path.display()
        ));
    }
    Ok(certs)
}
