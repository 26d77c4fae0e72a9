//! SaslHandshake (v0-1). Before login, `server::sasl` answers it; here it only builds
//! the response, and answers ILLEGAL_SASL_STATE once a connection is past login or on a
//! listener without SASL, as Kafka does.

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, SaslHandshakeRequest, SaslHandshakeResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::protocol::errors as ec;

pub fn response(
    version: i16,
    error_code: i16,
    mechanisms: &[&str],
) -> Result<Outcome, RequestError> {
    let mut resp = SaslHandshakeResponse::default();
    resp.error_code = error_code;
    resp.mechanisms = mechanisms.iter().map(|m| str_bytes(m)).collect();
    respond(ApiKey::SaslHandshake, version, &resp)
}

/// The mechanism a client asks for.
pub fn mechanism(version: i16, body: BytesMut) -> Result<String, RequestError> {
    let req: SaslHandshakeRequest = decode(ApiKey::SaslHandshake, version, body)?;
    Ok(req.mechanism.to_string())
}

pub fn illegal_state(version: i16, body: BytesMut) -> Result<Outcome, RequestError> {
    mechanism(version, body)?;
    response(version, ec::ILLEGAL_SASL_STATE, &[])
}
