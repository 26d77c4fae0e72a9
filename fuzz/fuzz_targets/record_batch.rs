//! Record batches (a Produce partition's `records`, or a segment's bytes) through the
//! produce path's validation and the cleaner's walk, filter and rebuild; and the raw
//! decompressors of every codec, bounded.
//!
//! Input: one flags byte (bit 0: repair batch CRCs; bit 1: feed the rest to a raw
//! decompressor; the rest picks codec and options), then the bytes.
#![no_main]

use bytes::BytesMut;
use corelog::storage::records;
use corelog_fuzz::{produce_pipeline, repair_crcs, MESSAGE_MAX_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    if flags & 2 != 0 {
        let codec = (flags >> 2) % 6;
        let max = records::inflated_bytes_max(MESSAGE_MAX_BYTES);
        if let Ok(raw) = records::decompress(codec, rest, max) {
            assert!(raw.len() <= max, "{} bytes inflated past {max}", raw.len());
        }
        return;
    }
    let mut batch = BytesMut::from(rest);
    if flags & 1 != 0 {
        repair_crcs(&mut batch);
    }
    produce_pipeline(&mut batch, flags >> 2);
});
