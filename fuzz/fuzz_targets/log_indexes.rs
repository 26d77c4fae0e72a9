//! A segment's `.index` and `.timeindex` as recovery reads them: parse both, resume
//! the segment index from them at an offset, and look offsets and times up.
//!
//! Input: target offset (i64 BE), offset-index length (u16 BE), the offset index, then
//! the time index.
#![no_main]

use corelog::storage::index::{OffsetIndex, SegmentIndex, TimeIndex};
use libfuzzer_sys::fuzz_target;

/// The base offset of the segment the files belong to.
const BASE_OFFSET: i64 = 1_000;
/// `index.interval.bytes` default.
const INDEX_INTERVAL_BYTES: u32 = 4096;

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let target = i64::from_be_bytes(data[0..8].try_into().expect("8 bytes"));
    let split = (u16::from_be_bytes([data[8], data[9]]) as usize).min(data.len() - 10);
    let (index_bytes, time_bytes) = data[10..].split_at(split);
    let offsets = OffsetIndex::from_bytes(BASE_OFFSET, index_bytes);
    let times = TimeIndex::from_bytes(BASE_OFFSET, time_bytes);
    if let Some(offsets) = &offsets {
        let (offset, _) = offsets.lookup(target);
        assert!(offset >= BASE_OFFSET);
        assert_eq!(OffsetIndex::from_bytes(BASE_OFFSET, &offsets.to_bytes()).as_ref(), Some(offsets));
    }
    if let (Some(offsets), Some(times)) = (offsets, times) {
        if let Some((index, _, _)) = SegmentIndex::resume(offsets, times, INDEX_INTERVAL_BYTES, target) {
            let _ = index.search_start_for(target);
            let _ = index.max_timestamp();
        }
    }
});
