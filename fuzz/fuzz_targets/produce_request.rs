//! ProduceRequest decode (zero copy) and then every partition's records through the
//! produce path's validation: split, CRC, counts, timestamps, every codec with bounded
//! decompression, and the compacted-topic key check and recompression.
//!
//! Input: one flags byte (bit 0: repair batch CRCs; the rest picks the target codec
//! and timestamp type), api_version (i16 BE), then the request body.
#![no_main]

use bytes::BytesMut;
use corelog::protocol::produce::decode_produce_request;
use corelog_fuzz::{produce_pipeline, repair_crcs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let flags = data[0];
    let version = i16::from_be_bytes([data[1], data[2]]);
    let Ok(request) = decode_produce_request(version, BytesMut::from(&data[3..])) else {
        return;
    };
    for topic in request.topics {
        for partition in topic.partitions {
            let Some(mut records) = partition.records else {
                continue;
            };
            if flags & 1 != 0 {
                repair_crcs(&mut records);
            }
            produce_pipeline(&mut records, flags >> 1);
        }
    }
});
