//! A Kafka client connection from this broker to another (a shard's replica fetcher, a
//! transaction coordinator's WriteTxnMarkers and AddPartitionsToTxn calls): one request
//! at a time, on the shard's own reactor (glommio), requests and responses encoded with
//! the kafka-protocol crate as the CLI client does.
//!
//! When the inter-broker listener is an SSL or SASL_SSL one, `connect` first does the
//! TLS handshake (`install_tls`, rustls over the same glommio stream, verifying the
//! other broker's certificate against the listener's truststore).
//! When the inter-broker listener is a SASL one, `connect` logs in with the broker's
//! own credentials (`install_login`, from `listener.name.<l>.<mechanism>.sasl.jaas.config`)
//! before it returns, so every caller gets an authenticated connection, and logs in
//! again before the session the other broker granted runs out (KIP-368).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use kafka_protocol::messages::{
    ApiKey, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::runtime::TcpStream;

/// The largest response a follower accepts: a Fetch response is bounded by the
/// request's max_bytes (`fetcher::FETCH_BYTES_MAX`) plus headers.
const RESPONSE_BYTES_MAX: usize = 64 << 20;

/// The address live broker `node` registered for the inter-broker listener
/// (`inter.broker.listener.name`), or None when it is not live.
pub fn broker_addr(shard: &crate::broker::shard::Shard, node: i32) -> Option<String> {
    let cluster = shard.broker.cluster.as_ref()?;
    let config = &shard.broker.config;
    let listener = &config.listeners[config.inter_broker.listener].name;
    let image = cluster.image();
    image
        .live_brokers
        .iter()
        .find(|b| b.node_id == node)
        .map(|b| {
            let (host, port) = b.addr_on(listener);
            format!("{host}:{port}")
        })
}

/// SaslHandshake v1 (tokens inside SaslAuthenticate); SaslAuthenticate v1 (the session
/// lifetime in the answer).
const SASL_HANDSHAKE_VERSION: i16 = 1;
const SASL_AUTHENTICATE_VERSION: i16 = 1;
/// A login (handshake and every token) within this.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Re-authenticate when this share of the granted session lifetime has passed, as the
/// Java client does (it picks 85-95%), leaving time for the exchange itself.
const REAUTH_AT_PERCENT: u32 = 85;

/// The broker's own login towards the others; set once at start-up by `serve`.
static BROKER_LOGIN: OnceLock<crate::config::sasl::BrokerLogin> = OnceLock::new();

/// Makes every `Connection::connect` of this process log in as `login`.
pub fn install_login(login: crate::config::sasl::BrokerLogin) {
    let _ = BROKER_LOGIN.set(login);
}

/// The broker's TLS client configuration towards the others; set once by `serve` when
/// the inter-broker listener is SSL or SASL_SSL. Each connect takes its current
/// configuration, so a changed keystore or truststore file is used by the next one.
static BROKER_TLS: OnceLock<Arc<crate::server::tls::ClientTlsContext>> = OnceLock::new();

/// Makes every `Connection::connect` of this process speak TLS with `config`.
pub fn install_tls(config: Arc<crate::server::tls::ClientTlsContext>) {
    let _ = BROKER_TLS.set(config);
}

/// A plain or TLS stream: the connection only reads and writes through it.
trait Io: futures::AsyncRead + futures::AsyncWrite + Unpin {}
impl<T: futures::AsyncRead + futures::AsyncWrite + Unpin> Io for T {}

pub struct Connection {
    stream: Box<dyn Io>,
    pub addr: String,
    correlation_id: i32,
    /// When to log in again (the other broker's session lifetime, KIP-368).
    reauth_at: Option<Instant>,
}

/// Why a connect failed, whether it was actively refused (nothing listens), and
/// whether it is a configuration problem the operator must see (a refused login or TLS
/// handshake: retrying will not help).
#[derive(Debug)]
pub struct ConnectFailure {
    pub refused: bool,
    pub misconfigured: bool,
    pub why: String,
}

/// For callers that only report why (`?` in functions returning `Result<_, String>`).
impl From<ConnectFailure> for String {
    fn from(f: ConnectFailure) -> String {
        f.why
    }
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

impl Connection {
    /// Connects and, with an inter-broker login installed, logs in.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Connection, ConnectFailure> {
        let connect = TcpStream::connect(addr).map(|r| {
            r.map_err(|e| {
                let e = std::io::Error::from(e);
                ConnectFailure {
                    refused: e.kind() == std::io::ErrorKind::ConnectionRefused,
                    misconfigured: false,
                    why: e.to_string(),
                }
            })
        });
        let fut = std::pin::pin!(connect);
        let timer = std::pin::pin!(crate::runtime::sleep(timeout));
        let stream = match futures::future::select(fut, timer).await {
            futures::future::Either::Left((r, _)) => r?,
            futures::future::Either::Right(_) => {
                return Err(ConnectFailure {
                    refused: false,
                    misconfigured: false,
                    why: format!("no answer within {timeout:?}"),
                })
            }
        };
        let _ = stream.set_nodelay(true);
        let stream: Box<dyn Io> = match BROKER_TLS.get() {
            None => Box::new(stream),
            Some(tls) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let tls = crate::server::tls::connect(tls.config(), host, stream)
                    .await
                    .map_err(|e| ConnectFailure {
                        refused: false,
                        // A connection lost mid-handshake (the other broker stopping)
                        // is no configuration problem.
                        misconfigured: e.refused,
                        why: if e.refused {
                            format!("{e} (check ssl.truststore.* and ssl.endpoint.identification.algorithm of the inter-broker listener, and that its certificate allows clientAuth if the other broker asks for one)")
                        } else {
                            e.why
                        },
                    })?;
                Box::new(tls)
            }
        };
        let mut conn = Connection {
            stream,
            addr: addr.to_string(),
            correlation_id: 0,
            reauth_at: None,
        };
        conn.login().await.map_err(|why| ConnectFailure {
            refused: false,
            misconfigured: true,
            why,
        })?;
        Ok(conn)
    }

    /// SaslHandshake, then SaslAuthenticate with the mechanism's tokens; remembers when
    /// to do it again. Nothing without an installed login.
    async fn login(&mut self) -> Result<(), String> {
        use crate::security::scram::ClientExchange;
        use crate::security::SaslMechanism;
        let Some(login) = BROKER_LOGIN.get() else {
            return Ok(());
        };
        let refused = |why: String| format!("SASL login as {:?} refused: {why}", login.username);
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_static_str(login.mechanism.name());
        let resp: SaslHandshakeResponse = self
            .exchange(
                ApiKey::SaslHandshake,
                SASL_HANDSHAKE_VERSION,
                &hs,
                LOGIN_TIMEOUT,
            )
            .await?;
        if resp.error_code != 0 {
            let offered: Vec<String> = resp.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(refused(format!(
                "the other broker does not enable {} (it offers {offered:?})",
                login.mechanism.name()
            )));
        }
        let lifetime_ms = match login.mechanism {
            SaslMechanism::Plain => {
                let token = format!("\0{}\0{}", login.username, login.password);
                self.authenticate(token.into_bytes())
                    .await
                    .map_err(refused)?
                    .1
            }
            SaslMechanism::Scram(m) => {
                let (mut ex, first) = ClientExchange::new(m, &login.username, &login.password);
                let (server_first, _) = self.authenticate(first).await.map_err(refused)?;
                let fin = ex
                    .client_final(&server_first)
                    .map_err(|e| refused(e.to_string()))?;
                let (server_final, lifetime_ms) = self.authenticate(fin).await.map_err(refused)?;
                if !ex.verify_server(&server_final) {
                    return Err(refused(
                        "the other broker's SCRAM signature is wrong".into(),
                    ));
                }
                lifetime_ms
            }
        };
        self.reauth_at = (lifetime_ms > 0).then(|| {
            Instant::now()
                + Duration::from_millis(lifetime_ms as u64 * REAUTH_AT_PERCENT as u64 / 100)
        });
        Ok(())
    }

    /// One SaslAuthenticate: the server's token and the session lifetime it granted.
    async fn authenticate(&mut self, token: Vec<u8>) -> Result<(Vec<u8>, i64), String> {
        let mut req = SaslAuthenticateRequest::default();
        req.auth_bytes = bytes::Bytes::from(token);
        let resp: SaslAuthenticateResponse = self
            .exchange(
                ApiKey::SaslAuthenticate,
                SASL_AUTHENTICATE_VERSION,
                &req,
                LOGIN_TIMEOUT,
            )
            .await?;
        if resp.error_code != 0 {
            return Err(format!(
                "error {}: {}",
                resp.error_code,
                resp.error_message.as_deref().unwrap_or("")
            ));
        }
        Ok((resp.auth_bytes.to_vec(), resp.session_lifetime_ms))
    }

    /// Sends `request` and reads its response, all within `timeout`; first logs in
    /// again if the session is about to run out.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, String> {
        if self.reauth_at.is_some_and(|at| Instant::now() >= at) {
            self.login().await?;
        }
        self.exchange(api, version, request, timeout).await
    }

    async fn exchange<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, String> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let want = self.correlation_id;
        let frame = crate::cli::client::encode_frame(api, version, want, request)?;
        let exchange = async {
            self.stream
                .write_all(&frame)
                .await
                .map_err(|e| e.to_string())?;
            let mut prefix = [0u8; 4];
            self.stream
                .read_exact(&mut prefix)
                .await
                .map_err(|e| e.to_string())?;
            let size = i32::from_be_bytes(prefix);
            if size < 0 || size as usize > RESPONSE_BYTES_MAX {
                return Err(format!("response size {size}"));
            }
            let mut body = BytesMut::zeroed(size as usize);
            self.stream
                .read_exact(&mut body)
                .await
                .map_err(|e| e.to_string())?;
            Ok(body)
        };
        let mut body = within(timeout, exchange).await?;
        let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
            .map_err(|e| e.to_string())?;
        if header.correlation_id != want {
            return Err(format!(
                "correlation id {} for request {want}",
                header.correlation_id
            ));
        }
        let resp = Resp::decode(&mut body, version).map_err(|e| e.to_string())?;
        if body.has_remaining() {
            return Err(format!("{} bytes after the response", body.remaining()));
        }
        Ok(resp)
    }
}

async fn within<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let fut = std::pin::pin!(fut);
    let timer = std::pin::pin!(crate::runtime::sleep(timeout));
    match futures::future::select(fut, timer).await {
        futures::future::Either::Left((r, _)) => r,
        futures::future::Either::Right(_) => Err(format!("no answer within {timeout:?}")),
    }
}
