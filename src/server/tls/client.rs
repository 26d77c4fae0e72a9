//! The client side of TLS between brokers: a broker connecting to another broker's
//! inter-broker listener (replica fetchers, transaction markers, AddPartitionsToTxn)
//! or to a voter's controller listener. Kafka's broker-side client keys: the CA
//! certificates of `ssl.truststore.location` / `ssl.truststore.certificates`, the
//! broker's own keystore shown as its client certificate when the other side asks
//! (`ssl.client.auth`), and `ssl.endpoint.identification.algorithm` (`https`: the
//! certificate must name the host connected to; empty: the chain alone is checked).

use std::sync::Arc;

use futures::{AsyncRead, AsyncWrite};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::{keystore, provider, trust_roots, versions, TLS_HANDSHAKE_TIMEOUT};
use crate::config::tls::TlsSettings;

/// Builds the client configuration of a TLS listener's settings. Without a truststore
/// the system's CA bundle is trusted (Kafka falls back to the JVM's).
pub fn client_config(s: &TlsSettings) -> Result<ClientConfig, String> {
    let provider = provider(s)?;
    let roots = match trust_roots(s)? {
        Some((roots, _)) => roots,
        None => system_roots()?,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(s))
        .map_err(|e| format!("ssl.enabled.protocols / ssl.cipher.suites: {e}"))?;
    let builder = if s.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("ssl.truststore: {e}"))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHostName(inner)))
    };
    // The broker's own certificate, shown only when the other broker asks for one
    // (mutual TLS); it must allow clientAuth in its extended key usage then.
    let (chain, key) = keystore(&s.keystore)?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("ssl.keystore: the certificate and key do not go together: {e}"))
}

fn system_roots() -> Result<rustls::RootCertStore, String> {
    let path = crate::cli::security::SYSTEM_CA_BUNDLE;
    let pem = std::fs::read(path).map_err(|e| {
        format!("no ssl.truststore.location or ssl.truststore.certificates, and the system CA bundle {path}: {e}")
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        let _ = roots.add(cert);
    }
    Ok(roots)
}

/// The name a certificate must carry for `host` (a DNS name or an IP address, IPv6 with
/// or without brackets).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string())
        .map_err(|e| format!("{host} is not a TLS server name: {e}"))
}

/// Why a handshake failed, and whether TLS itself refused it (a certificate, protocol
/// or cipher problem: a configuration to fix) rather than the connection being lost
/// (the other broker stopping, say).
#[derive(Debug)]
pub struct HandshakeError {
    pub why: String,
    pub refused: bool,
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

/// The TLS handshake over `stream` to `host`, bounded by `TLS_HANDSHAKE_TIMEOUT`.
pub async fn connect<IO: AsyncRead + AsyncWrite + Unpin>(
    config: Arc<ClientConfig>,
    host: &str,
    stream: IO,
) -> Result<futures_rustls::client::TlsStream<IO>, HandshakeError> {
    let name = server_name(host).map_err(|why| HandshakeError { why, refused: true })?;
    let handshake = futures_rustls::TlsConnector::from(config).connect(name, stream);
    futures::pin_mut!(handshake);
    let timeout = crate::runtime::sleep(TLS_HANDSHAKE_TIMEOUT);
    futures::pin_mut!(timeout);
    match futures::future::select(handshake, timeout).await {
        futures::future::Either::Left((Ok(s), _)) => Ok(s),
        // rustls' own errors come as InvalidData; a reset or an EOF is the connection.
        futures::future::Either::Left((Err(e), _)) => Err(HandshakeError {
            refused: e.kind() == std::io::ErrorKind::InvalidData,
            why: format!("TLS handshake failed: {e}"),
        }),
        futures::future::Either::Right(_) => Err(HandshakeError {
            refused: false,
            why: format!(
                "TLS handshake not finished within {} s",
                TLS_HANDSHAKE_TIMEOUT.as_secs()
            ),
        }),
    }
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain, validity and signatures
/// are checked as always; only a certificate that names another host is let through.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_of_hosts() {
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("broker-1.example"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name("not a host").is_err());
    }
}
