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

use std::time::Duration;

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

/// Runs the login; returns the principal (`User:<name>`), or why the connection closes.
pub async fn login<S: Transport>(
    shard: &Shard,
    stream: &mut S,
    info: &ConnInfo,
    mechanisms: &[SaslMechanism],
) -> Result<String, String> {
    let exchange = Login {
        shard,
        info,
        mechanisms,
        state: State::Start,
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

struct Login<'a> {
    shard: &'a Shard,
    info: &'a ConnInfo,
    mechanisms: &'a [SaslMechanism],
    state: State,
}

impl Login<'_> {
    async fn run<S: Transport>(mut self, stream: &mut S) -> Result<String, String> {
        loop {
            let mut body = read_frame(stream).await?;
            if let State::Chosen(_, false) | State::ScramFinal(_, false, _) = self.state {
                // After a v0 handshake: a bare token, answered with a bare token.
                let (reply, done) = match self.step(Bytes::from(body.to_vec())).await {
                    Ok(Step::Continue(b)) => (b, None),
                    Ok(Step::Done(b, p)) => (b, Some(p)),
                    Err(why) => return Err(why),
                };
                let mut out = BytesMut::with_capacity(4 + reply.len());
                out.extend_from_slice(&(reply.len() as u32).to_be_bytes());
                out.extend_from_slice(&reply);
                write(stream, &out).await?;
                if let Some(p) = done {
                    return Ok(p);
                }
                continue;
            }
            let header = decode_request_header(&mut body).map_err(|e| e.to_string())?;
            let (api, version) = (header.api_key, header.api_version);
            let flexible = response_header_flexible(api, version);
            let answer =
                |outcome: Result<Outcome, handlers::RequestError>| -> Result<BytesMut, String> {
                    match outcome.map_err(|e| e.to_string())? {
                        Outcome::Respond(chunks) => {
                            Ok(encode_frame(header.correlation_id, flexible, &chunks))
                        }
                        Outcome::NoResponse => Ok(BytesMut::new()),
                    }
                };
            match api {
                API_API_VERSIONS => {
                    write(stream, &answer(api_versions::handle(version, body))?).await?;
                }
                API_SASL_HANDSHAKE => {
                    let wanted =
                        sasl_handshake::mechanism(version, body).map_err(|e| e.to_string())?;
                    let names: Vec<&str> = self.mechanisms.iter().map(|m| m.name()).collect();
                    let chosen =
                        SaslMechanism::parse(&wanted).filter(|m| self.mechanisms.contains(m));
                    let (code, next) = match (&self.state, chosen) {
                        (State::Start, Some(m)) => (ec::NONE, Some(m)),
                        (State::Start, None) => (ec::UNSUPPORTED_SASL_MECHANISM, None),
                        _ => (ec::ILLEGAL_SASL_STATE, None),
                    };
                    write(
                        stream,
                        &answer(sasl_handshake::response(version, code, &names))?,
                    )
                    .await?;
                    let Some(m) = next else {
                        return Err(format!(
                            "SASL mechanism {wanted:?} refused (this listener enables {})",
                            names.join(", ")
                        ));
                    };
                    self.state = State::Chosen(m, version >= 1);
                }
                API_SASL_AUTHENTICATE => {
                    if !matches!(
                        self.state,
                        State::Chosen(_, true) | State::ScramFinal(_, true, _)
                    ) {
                        let out = answer(sasl_authenticate::illegal_state(version, body))?;
                        write(stream, &out).await?;
                        return Err("SaslAuthenticate before SaslHandshake".into());
                    }
                    let token =
                        sasl_authenticate::token(version, body).map_err(|e| e.to_string())?;
                    match self.step(token).await {
                        Ok(Step::Continue(b)) => {
                            let out =
                                sasl_authenticate::response(version, ec::NONE, None, b.into());
                            write(stream, &answer(out)?).await?;
                        }
                        Ok(Step::Done(b, principal)) => {
                            let out =
                                sasl_authenticate::response(version, ec::NONE, None, b.into());
                            write(stream, &answer(out)?).await?;
                            return Ok(principal);
                        }
                        Err(why) => {
                            let msg = format!("Authentication failed: {why}");
                            let out = sasl_authenticate::response(
                                version,
                                ec::SASL_AUTHENTICATION_FAILED,
                                Some(&msg),
                                Bytes::new(),
                            );
                            write(stream, &answer(out)?).await?;
                            return Err(format!("SASL login refused: {why}"));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "request with API key {other} before SASL authentication"
                    ))
                }
            }
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
