//! A request as it arrives on a connection: size prefix, header, then the body routed
//! as `server::connection` and `handlers::dispatch` route it — Produce to our own
//! decoder, every other API through the guard to the kafka-protocol crate.
#![no_main]

use bytes::BytesMut;
use corelog::protocol::frame::{frame_len, FRAME_PREFIX_BYTES, SOCKET_REQUEST_MAX_BYTES_DEFAULT};
use corelog::protocol::guard::check_request_shape;
use corelog::protocol::header::{decode_request_header, response_header_flexible};
use corelog::protocol::produce::decode_produce_request;
use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((prefix, rest)) = data.split_first_chunk::<FRAME_PREFIX_BYTES>() else {
        return;
    };
    let Ok(len) = frame_len(*prefix, SOCKET_REQUEST_MAX_BYTES_DEFAULT) else {
        return;
    };
    // The connection reads exactly `len` bytes; a shorter input is a truncated frame.
    let Some(frame) = rest.get(..len) else {
        return;
    };
    let mut body = BytesMut::from(frame);
    let Ok(header) = decode_request_header(&mut body) else {
        return;
    };
    let _ = response_header_flexible(header.api_key, header.api_version);
    let Ok(api) = ApiKey::try_from(header.api_key) else {
        return;
    };
    if api == ApiKey::Produce {
        let _ = decode_produce_request(header.api_version, body);
        return;
    }
    if check_request_shape(header.api_key, header.api_version, &body).is_ok() {
        corelog_fuzz::crate_decode(api, header.api_version, &body);
    }
});
