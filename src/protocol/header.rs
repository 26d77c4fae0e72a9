//! Request and response headers.
//!
//! Request header v1: api_key i16, api_version i16, correlation_id i32, client_id as a
//! classic nullable string (i16 length). v2 adds a tagged-field section after client_id,
//! but client_id stays a classic string (KIP-482), as kafka-protocol's `RequestHeader`
//! encodes it too. No request in kafka-protocol 0.18 uses header v0 (ControlledShutdown
//! v0 was the last), so v0 is not handled.
//!
//! Response header v0: correlation_id i32. v1 adds an empty tagged-field section.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::ApiKey;

use super::wire::{put_empty_tagged_fields, Reader};
use super::DecodeError;

/// The header in front of every request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaderView {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// Consumes the request header from the front of `body`, leaving the request itself.
///
/// An unknown api key yields `DecodeError::UnknownApiKey` carrying the correlation id:
/// without the api key we cannot tell the header version, so the rest is left unread.
pub fn decode_request_header(body: &mut BytesMut) -> Result<RequestHeaderView, DecodeError> {
    let mut reader = Reader::new(body, false);
    let api_key = reader.i16("request_api_key")?;
    let api_version = reader.i16("request_api_version")?;
    let correlation_id = reader.i32("correlation_id")?;
    let Ok(key) = ApiKey::try_from(api_key) else {
        return Err(DecodeError::UnknownApiKey {
            api_key,
            correlation_id,
        });
    };
    let client_id = reader.nullable_string("client_id")?;
    if key.request_header_version(api_version) >= 2 {
        reader.skip_tagged_fields("request header tagged fields")?;
    }
    Ok(RequestHeaderView {
        api_key,
        api_version,
        correlation_id,
        client_id,
    })
}

/// Whether the response to this request takes response header v1 (flexible).
///
/// Follows each API's flexible versions, with Kafka's one exception: ApiVersions responses
/// always use header v0, even to a v3+ request, so that a client that does not yet know
/// what the broker speaks can always read the answer. Unknown keys get v0.
pub fn response_header_flexible(api_key: i16, api_version: i16) -> bool {
    match ApiKey::try_from(api_key) {
        Ok(ApiKey::ApiVersions) => false,
        Ok(key) => key.response_header_version(api_version) >= 1,
        Err(()) => false,
    }
}

/// Appends a response header: v1 (flexible) carries an empty tagged-field section.
pub fn encode_response_header(out: &mut BytesMut, correlation_id: i32, flexible: bool) {
    out.put_i32(correlation_id);
    if flexible {
        put_empty_tagged_fields(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn crate_request_header(key: ApiKey, version: i16, client_id: Option<&str>) -> BytesMut {
        let mut header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(0x0102_0304)
            .with_client_id(client_id.map(|c| StrBytes::from_string(c.to_owned())));
        let header_version = key.request_header_version(version);
        if header_version >= 2 {
            header = header.with_unknown_tagged_field(7, bytes::Bytes::from_static(b"tag"));
        }
        let mut out = BytesMut::new();
        header.encode(&mut out, header_version).unwrap();
        out
    }

    #[test]
    fn decodes_every_known_api_and_version_like_the_crate() {
        for key in ApiKey::iter() {
            let range = key.valid_versions();
            for version in range.min..=range.max {
                for client_id in [Some("rdkafka"), Some(""), None] {
                    let mut body = crate_request_header(key, version, client_id);
                    body.extend_from_slice(b"BODY");
                    let view = decode_request_header(&mut body).unwrap();
                    assert_eq!(view.api_key, key as i16);
                    assert_eq!(view.api_version, version);
                    assert_eq!(view.correlation_id, 0x0102_0304);
                    assert_eq!(view.client_id.as_deref(), client_id);
                    assert_eq!(&body[..], b"BODY", "{key:?} v{version}");
                }
            }
        }
    }

    #[test]
    fn truncated_headers_are_errors() {
        for (key, version) in [
            (ApiKey::Produce, 3),
            (ApiKey::Produce, 9),
            (ApiKey::Fetch, 12),
        ] {
            let full = crate_request_header(key, version, Some("client"));
            for len in 0..full.len() {
                let mut body = BytesMut::from(&full[..len]);
                assert!(
                    decode_request_header(&mut body).is_err(),
                    "{key:?} v{version} {len}"
                );
            }
        }
    }

    #[test]
    fn unknown_api_key_still_reports_the_correlation_id() {
        let mut body = BytesMut::new();
        body.put_i16(999);
        body.put_i16(0);
        body.put_i32(42);
        assert_eq!(
            decode_request_header(&mut body),
            Err(DecodeError::UnknownApiKey {
                api_key: 999,
                correlation_id: 42
            })
        );
    }

    #[test]
    fn response_headers_match_the_crate() {
        for key in ApiKey::iter() {
            let range = key.valid_versions();
            for version in range.min..=range.max {
                let header_version = key.response_header_version(version);
                let flexible = response_header_flexible(key as i16, version);
                assert_eq!(flexible, header_version == 1, "{key:?} v{version}");
                let mut ours = BytesMut::new();
                encode_response_header(&mut ours, -7, flexible);
                let mut theirs = BytesMut::new();
                let header = ResponseHeader::default().with_correlation_id(-7);
                header.encode(&mut theirs, header_version).unwrap();
                assert_eq!(ours, theirs, "{key:?} v{version}");
            }
        }
    }

    #[test]
    fn api_versions_responses_always_use_header_v0() {
        for version in 0..=4 {
            assert!(!response_header_flexible(
                ApiKey::ApiVersions as i16,
                version
            ));
        }
        assert!(response_header_flexible(ApiKey::Fetch as i16, 12));
        assert!(!response_header_flexible(ApiKey::Fetch as i16, 11));
        assert!(!response_header_flexible(-5, 3));
    }
}
