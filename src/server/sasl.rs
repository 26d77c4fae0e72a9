//! The SASL login of a connection on a SASL_PLAINTEXT or SASL_SSL listener, run before
//! the request loop (`connection::serve`) on the connection's own task.
//!
//! Until the login succeeds, only ApiVersions, SaslHandshake and SaslAuthenticate are
//! answered; anything else closes the connection. Bounds: the whole login within
//! `SASL_LOGIN_TIMEOUT`, each frame at most `SASL_FRAME_BYTES_MAX`. A refused login is
//! answered SASL_AUTHENTICATION_FAILED (after the address's failure delay,
//! `security::throttle`), counted, logged, and the connection closed.
//!
//! SaslHandshake v1 wraps tokens in SaslAuthenticate; after a v0 handshake tokens travel
//! as bare length-prefixed frames, as Kafka 0.10 clients send them.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::io::{AsyncReadExt, AsyncWriteExt};

use crate::broker::shard::Shard;
use crate::handlers::{self, api_versions, sasl_authenticate, sasl_handshake, Outcome};
use crate::metrics::{self, Counter};
use crate::protocol::errors as ec;
use crate::protocol::frame::frame_len;
use crate::protocol::header::{decode_request_header, response_header_flexible};
use crate::security::scram::{self, ScramError, ServerExchange};
use crate::security::SaslMechanism;
use crate::server::connection::{encode_frame, ConnInfo, Transport};

/// A client has this long from connecting to a finished login.
pub const SASL_LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame read before login (Kafka's `sasl.server.max.receive.size` default).
pub const SASL_FRAME_BYTES_MAX: usize = 524_288;

const API_SASL_HANDSHAKE: i16 = 17;
const API_API_VERSIONS: i16 = 18;
const API_SASL_AUTHENTICATE: i16 = 36;

/// Whether `api` is one a re-authenticating client sends (SaslHandshake,
/// SaslAuthenticate).
pub fn is_login_api(api: i16) -> bool {
    api == API_SASL_HANDSHAKE || api == API_SASL_AUTHENTICATE
}

/// A finished login.
pub struct Session {
    /// `User:<name>`.
    pub principal: String,
    mechanism: SaslMechanism,
    /// The client logged in with SaslAuthenticate v1+ (KIP-368): it may re-authenticate
    /// on this connection, and its session ends after `connections.max.reauth.ms`.
    reauth_capable: bool,
    /// When the session ends: after it, only re-authentication is served.
    expires_at: Option<Instant>,
}

/// Runs the login; returns the session, or why the connection closes.
pub async fn login<S: Transport>(
    shard: &Shard,
    stream: &mut S,
    info: &ConnInfo,
    mechanisms: &[SaslMechanism],
) -> Result<Session, String> {
    let exchange = Login {
        shard,
        info,
        mechanisms,
        state: State::Start,
        chosen: None,
        reauth_of: None,
    }
    .run(stream);
    futures::pin_mut!(exchange);
    let timeout = crate::runtime::sleep(SASL_LOGIN_TIMEOUT);
    futures::pin_mut!(timeout);
    let result = match futures::future::select(exchange, timeout).await {
        futures::future::Either::Left((r, _)) => r,
        futures::future::Either::Right(_) => Err(format!(
            "no SASL login within {} s",
            SASL_LOGIN_TIMEOUT.as_secs()
        )),
    };
    match &result {
        Ok(_) => metrics::add(Counter::SaslAuthentications, 1),
        Err(_) => metrics::add(Counter::SaslAuthenticationFailures, 1),
    }
    result
}

/// Re-authentication (KIP-368) on a logged-in connection: the request loop hands
/// SaslHandshake and SaslAuthenticate here, and asks `expired` before anything else.
pub struct Reauth {
    session: Session,
    /// The exchange under way, if one is.
    state: State,
}

/// What the request loop does with one SASL request during re-authentication.
pub struct ReauthStep {
    pub outcome: Outcome,
    /// Set: answer, then close the connection (a refused or malformed re-login).
    pub close: Option<String>,
}

impl Reauth {
    /// `None` for a client that cannot re-authenticate (a v0 login).
    pub fn new(session: Session) -> Option<Reauth> {
        session.reauth_capable.then_some(Reauth {
            session,
            state: State::Start,
        })
    }

    /// Why a request other than a re-login must close the connection now, if it must.
    pub fn expired(&self, now: Instant) -> Option<String> {
        let at = self.session.expires_at?;
        (now >= at).then(|| {
            format!(
                "the SASL session of {} expired (connections.max.reauth.ms) and the client did not re-authenticate",
                self.session.principal
            )
        })
    }

    /// One SaslHandshake or SaslAuthenticate request of a re-login.
    pub async fn step(
        &mut self,
        shard: &Shard,
        info: &ConnInfo,
        api: i16,
        version: i16,
        body: BytesMut,
    ) -> Result<ReauthStep, String> {
        let mechanism = self.session.mechanism;
        let mut login = Login {
            shard,
            info,
            mechanisms: std::slice::from_ref(&mechanism),
            state: std::mem::replace(&mut self.state, State::Start),
            chosen: Some(mechanism),
            reauth_of: Some(&self.session),
        };
        let (outcome, next) = login.on_request(api, version, body).await?;
        let state = login.state;
        let close = match next {
            Next::Continue => {
                self.state = state;
                None
            }
            Next::Done(session) => {
                metrics::add(Counter::SaslAuthentications, 1);
                tracing::debug!(principal = %session.principal, "re-authenticated");
                self.session = session;
                None
            }
            Next::Close(why) => {
                metrics::add(Counter::SaslAuthenticationFailures, 1);
                Some(why)
            }
        };
        Ok(ReauthStep { outcome, close })
    }
}

enum State {
    Start,
    /// Handshake done: the mechanism, and whether tokens come inside SaslAuthenticate.
    Chosen(SaslMechanism, bool),
    /// SCRAM: server-first sent, waiting for client-final; whether the user exists
    /// (an unknown one goes on with a decoy credential, see `scram::decoy_credential`).
    ScramFinal(Box<ServerExchange>, bool, bool),
}

/// What one client token leads to.
enum Step {
    Continue(Vec<u8>),
    Done(Vec<u8>, String),
}

/// What follows one request of a login.
enum Next {
    Continue,
    Done(Session),
    /// Answer, then close.
    Close(String),
}

struct Login<'a> {
    shard: &'a Shard,
    info: &'a ConnInfo,
    mechanisms: &'a [SaslMechanism],
    state: State,
    /// The mechanism the handshake chose.
    chosen: Option<SaslMechanism>,
    /// Re-authentication: the session it renews (the principal must stay the same).
    reauth_of: Option<&'a Session>,
}

impl Login<'_> {
    async fn run<S: Transport>(mut self, stream: &mut S) -> Result<Session, String> {
        loop {
            let mut body = read_frame(stream).await?;
            if let State::Chosen(_, false) | State::ScramFinal(_, false, _) = self.state {
                // After a v0 handshake: a bare token, answered with a bare token.
                let (reply, done) = match self.step(Bytes::from(body.to_vec())).await? {
                    Step::Continue(b) => (b, None),
                    Step::Done(b, p) => (b, Some(p)),
                };
                let mut out = BytesMut::with_capacity(4 + reply.len());
                out.extend_from_slice(&(reply.len() as u32).to_be_bytes());
                out.extend_from_slice(&reply);
                write(stream, &out).await?;
                if let Some(principal) = done {
                    return Ok(self.session(principal, false));
                }
                continue;
            }
            let header = decode_request_header(&mut body).map_err(|e| e.to_string())?;
            let flexible = response_header_flexible(header.api_key, header.api_version);
            let (outcome, next) = if header.api_key == API_API_VERSIONS {
                let outcome =
                    api_versions::handle(header.api_version, body).map_err(|e| e.to_string())?;
                (outcome, Next::Continue)
            } else {
                self.on_request(header.api_key, header.api_version, body)
                    .await?
            };
            if let Outcome::Respond(chunks) = outcome {
                write(
                    stream,
                    &encode_frame(header.correlation_id, flexible, &chunks),
                )
                .await?;
            }
            match next {
                Next::Continue => {}
                Next::Done(session) => return Ok(session),
                Next::Close(why) => return Err(why),
            }
        }
    }

    /// The session a finished exchange opens; with `reauth_capable`, it ends after
    /// `connections.max.reauth.ms` (when set).
    fn session(&self, principal: String, reauth_capable: bool) -> Session {
        let reauth_ms = self.shard.broker.config.connections_max_reauth_ms;
        Session {
            principal,
            mechanism: self.chosen.unwrap_or(SaslMechanism::Plain),
            reauth_capable,
            expires_at: (reauth_capable && reauth_ms > 0)
                .then(|| Instant::now() + Duration::from_millis(reauth_ms)),
        }
    }

    /// One SaslHandshake or SaslAuthenticate request: the answer, and what follows. An
    /// error closes the connection without an answer (a malformed request, or an API
    /// other than these).
    async fn on_request(
        &mut self,
        api: i16,
        version: i16,
        body: BytesMut,
    ) -> Result<(Outcome, Next), String> {
        let outcome = |r: Result<Outcome, handlers::RequestError>| r.map_err(|e| e.to_string());
        match api {
            API_SASL_HANDSHAKE => {
                let wanted = sasl_handshake::mechanism(version, body).map_err(|e| e.to_string())?;
                let names: Vec<&str> = self.mechanisms.iter().map(|m| m.name()).collect();
                let chosen = SaslMechanism::parse(&wanted).filter(|m| self.mechanisms.contains(m));
                // Re-authentication must use the handshake that can carry it (v1).
                let wrapped = version >= 1;
                let (code, next) = match (&self.state, chosen) {
                    (State::Start, Some(m)) if wrapped || self.reauth_of.is_none() => {
                        (ec::NONE, Some(m))
                    }
                    (State::Start, None) => (ec::UNSUPPORTED_SASL_MECHANISM, None),
                    _ => (ec::ILLEGAL_SASL_STATE, None),
                };
                let answer = outcome(sasl_handshake::response(version, code, &names))?;
                let Some(m) = next else {
                    let why = format!(
                        "SASL mechanism {wanted:?} refused (this listener enables {})",
                        names.join(", ")
                    );
                    return Ok((answer, Next::Close(why)));
                };
                self.chosen = Some(m);
                self.state = State::Chosen(m, wrapped);
                Ok((answer, Next::Continue))
            }
            API_SASL_AUTHENTICATE => {
                if !matches!(
                    self.state,
                    State::Chosen(_, true) | State::ScramFinal(_, true, _)
                ) {
                    let answer = outcome(sasl_authenticate::illegal_state(version, body))?;
                    return Ok((
                        answer,
                        Next::Close("SaslAuthenticate before SaslHandshake".into()),
                    ));
                }
                let token = sasl_authenticate::token(version, body).map_err(|e| e.to_string())?;
                let refuse = |why: String| -> Result<(Outcome, Next), String> {
                    let msg = format!("Authentication failed: {why}");
                    let answer = outcome(sasl_authenticate::response(
                        version,
                        ec::SASL_AUTHENTICATION_FAILED,
                        Some(&msg),
                        Bytes::new(),
                        0,
                    ))?;
                    Ok((answer, Next::Close(format!("SASL login refused: {why}"))))
                };
                match self.step(token).await {
                    Ok(Step::Continue(b)) => {
                        let answer = outcome(sasl_authenticate::response(
                            version,
                            ec::NONE,
                            None,
                            b.into(),
                            0,
                        ))?;
                        Ok((answer, Next::Continue))
                    }
                    Ok(Step::Done(b, principal)) => {
                        if let Some(old) = self.reauth_of.filter(|s| s.principal != principal) {
                            return refuse(format!(
                                "cannot change principals during re-authentication (from {} to {principal})",
                                old.principal
                            ));
                        }
                        let session = self.session(principal, version >= 1);
                        let lifetime_ms = if session.expires_at.is_some() {
                            self.shard.broker.config.connections_max_reauth_ms as i64
                        } else {
                            0
                        };
                        let answer = outcome(sasl_authenticate::response(
                            version,
                            ec::NONE,
                            None,
                            b.into(),
                            lifetime_ms,
                        ))?;
                        Ok((answer, Next::Done(session)))
                    }
                    Err(why) => refuse(why),
                }
            }
            other => Err(format!(
                "request with API key {other} before SASL authentication"
            )),
        }
    }

    /// Feeds one client token to the mechanism. A refusal is delayed by the address's
    /// failure throttle before it is returned.
    async fn step(&mut self, token: Bytes) -> Result<Step, String> {
        let result = self.advance(token).await;
        if let Err(why) = &result {
            let delay = match self.info.peer {
                Some(p) => self
                    .shard
                    .broker
                    .auth_failures
                    .failed(p.ip(), std::time::Instant::now()),
                None => Duration::ZERO,
            };
            tracing::warn!(peer = ?self.info.peer, delay_ms = delay.as_millis() as u64, "failed SASL login: {why}");
            crate::runtime::sleep(delay).await;
        }
        result
    }

    async fn advance(&mut self, token: Bytes) -> Result<Step, String> {
        let users = &self.shard.broker.users;
        match std::mem::replace(&mut self.state, State::Start) {
            State::Chosen(SaslMechanism::Plain, _) => {
                let (user, password) = parse_plain(&token)?;
                let creds = users.snapshot().get(&user).cloned().unwrap_or_default();
                // PBKDF2 takes milliseconds: off the shard.
                let ok = crate::runtime::blocking(move || {
                    creds.iter().any(|(m, c)| c.verifies(*m, &password))
                })
                .await;
                if !ok {
                    return Err(format!(
                        "invalid username or password (user {user:?}, PLAIN)"
                    ));
                }
                Ok(Step::Done(Vec::new(), format!("User:{user}")))
            }
            State::Chosen(SaslMechanism::Scram(m), wrapped) => {
                let first = scram::parse_client_first(&token).map_err(|e| scram_why(e, m))?;
                let found = users.get(&first.username, m);
                let known = found.is_some();
                let cred = found.unwrap_or_else(|| scram::decoy_credential(m, &first.username));
                let (exchange, server_first) = ServerExchange::start(m, first, cred);
                self.state = State::ScramFinal(Box::new(exchange), wrapped, known);
                Ok(Step::Continue(server_first))
            }
            State::ScramFinal(exchange, _, known) => {
                let user = exchange.username().to_string();
                let fin = exchange.finish(&token).map_err(|e| match e {
                    ScramError::BadCredentials if !known => {
                        format!("invalid username or password (unknown user {user:?})")
                    }
                    ScramError::BadCredentials => {
                        format!("invalid username or password (user {user:?})")
                    }
                    other => other.to_string(),
                })?;
                if !known {
                    return Err(format!(
                        "invalid username or password (unknown user {user:?})"
                    ));
                }
                Ok(Step::Done(fin, format!("User:{user}")))
            }
            State::Start => Err("SASL token before SaslHandshake".into()),
        }
    }
}

fn scram_why(e: ScramError, m: scram::Mechanism) -> String {
    format!("{e} ({})", m.name())
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`; an authzid other than the user is refused.
fn parse_plain(token: &[u8]) -> Result<(String, String), String> {
    let text = std::str::from_utf8(token).map_err(|_| "PLAIN token is not UTF-8".to_string())?;
    let parts: Vec<&str> = text.split('\0').collect();
    let [authzid, user, password] = parts.as_slice() else {
        return Err("PLAIN token is not authzid NUL user NUL password".into());
    };
    if user.is_empty() {
        return Err("PLAIN token has an empty user name".into());
    }
    if !authzid.is_empty() && authzid != user {
        return Err("PLAIN authorization id other than the user is not supported".into());
    }
    Ok((user.to_string(), password.to_string()))
}

async fn read_frame<S: Transport>(stream: &mut S) -> Result<BytesMut, String> {
    let mut prefix = [0u8; 4];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|e| format!("connection ended during SASL login: {e}"))?;
    let len = frame_len(prefix, SASL_FRAME_BYTES_MAX).map_err(|e| {
        format!("frame before SASL login: {e} (limit {SASL_FRAME_BYTES_MAX} bytes)")
    })?;
    let mut body = BytesMut::zeroed(len);
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("SASL frame truncated ({len}-byte frame): {e}"))?;
    Ok(body)
}

async fn write<S: Transport>(stream: &mut S, bytes: &[u8]) -> Result<(), String> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| format!("write during SASL login failed: {e}"))?;
    stream
        .flush()
        .await
        .map_err(|e| format!("write during SASL login failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tokens() {
        assert_eq!(
            parse_plain(b"\0alice\0pw").unwrap(),
            ("alice".to_string(), "pw".to_string())
        );
        assert_eq!(parse_plain(b"alice\0alice\0p\xc3\xa9").unwrap().1, "pé");
        for bad in [
            &b""[..],
            b"alice",
            b"\0\0pw",
            b"bob\0alice\0pw",
            b"\0a\0b\0c",
            b"\0\xff\0x",
        ] {
            assert!(parse_plain(bad).is_err(), "{bad:?}");
        }
    }
}
