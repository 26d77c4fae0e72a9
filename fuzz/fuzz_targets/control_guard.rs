//! The guard in front of the kafka-protocol crate: whatever it accepts, the crate must
//! decode without panicking and within the guard's allocation budget (libFuzzer's
//! -malloc_limit_mb, set by scripts/fuzz.sh, catches a single oversized allocation).
//!
//! Input: api_key (i16 BE), api_version (i16 BE), then the request body.
#![no_main]

use corelog::protocol::guard::check_request_shape;
use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let api_key = i16::from_be_bytes([data[0], data[1]]);
    let version = i16::from_be_bytes([data[2], data[3]]);
    let body = &data[4..];
    // The guard answers unknown keys too (with an error); Produce has its own decoder
    // (target produce_request), which the guard does not know.
    let Ok(api) = ApiKey::try_from(api_key) else {
        let _ = check_request_shape(api_key, version, body);
        return;
    };
    if check_request_shape(api_key, version, body).is_ok() {
        corelog_fuzz::crate_decode(api, version, body);
    }
});
