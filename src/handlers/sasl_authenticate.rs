//! SaslAuthenticate (v0-2): one SASL token each way. `server::sasl` runs the exchange,
//! before login and when a logged-in client re-authenticates (KIP-368); here the
//! response is built, and a listener without SASL gets ILLEGAL_SASL_STATE.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::protocol::errors as ec;

pub fn response(
    version: i16,
    error_code: i16,
    error_message: Option<&str>,
    auth_bytes: Bytes,
    session_lifetime_ms: i64,
) -> Result<Outcome, RequestError> {
    let mut resp = SaslAuthenticateResponse::default();
    resp.error_code = error_code;
    // v1+ only (the field is not in v0's schema).
    if version >= 1 {
        resp.session_lifetime_ms = session_lifetime_ms;
    }
    resp.error_message = error_message.map(str_bytes);
    resp.auth_bytes = auth_bytes;
    respond(ApiKey::SaslAuthenticate, version, &resp)
}

/// The client's token.
pub fn token(version: i16, body: BytesMut) -> Result<Bytes, RequestError> {
    let req: SaslAuthenticateRequest = decode(ApiKey::SaslAuthenticate, version, body)?;
    Ok(req.auth_bytes)
}

pub fn illegal_state(version: i16, body: BytesMut) -> Result<Outcome, RequestError> {
    token(version, body)?;
    response(
        version,
        ec::ILLEGAL_SASL_STATE,
        Some("SASL authentication is not expected on this connection now"),
        Bytes::new(),
        0,
    )
}
