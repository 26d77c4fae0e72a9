//! The `__consumer_offsets` decoders that replay a group coordinator's log at start-up:
//! whole batches through `decode_all`, and each key and value decoder on its own.
//!
//! Input: one selector byte (bit 0 on the batch path: repair CRCs), then the bytes.
#![no_main]

use bytes::{Bytes, BytesMut};
use corelog::groups::offsets;
use corelog_fuzz::repair_crcs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let bytes = Bytes::copy_from_slice(rest);
    match selector % 8 {
        0 | 1 => {
            let mut batches = BytesMut::from(rest);
            if selector & 1 != 0 {
                repair_crcs(&mut batches);
            }
            let _ = offsets::decode_all(batches.freeze());
        }
        2 => drop(offsets::decode_key(bytes)),
        3 => drop(offsets::decode_value(bytes)),
        4 => drop(offsets::decode_classic_metadata(bytes)),
        5 => drop(offsets::decode_member_metadata(bytes)),
        6 => drop(offsets::decode_current_assignment(bytes)),
        _ => drop(offsets::decode_consumer_epoch(bytes)),
    }
});
