//! The small files recovery trusts at start-up: the per-dir offset checkpoints
//! (recovery point, log start, cleaner), a partition's leader-epoch checkpoint, and its
//! producer-state snapshots. Each that parses must encode back to what it parsed.
//!
//! Input: one selector byte (for snapshots, bit 2: repair the CRC), then the file.
#![no_main]

use std::path::Path;

use corelog::storage::checkpoint;
use corelog::storage::leader_epoch::LeaderEpochCache;
use corelog::storage::snapshot;
use libfuzzer_sys::fuzz_target;

/// Where a producer snapshot keeps its CRC, and where the bytes it covers start.
const SNAPSHOT_CRC_AT: usize = 6;
const SNAPSHOT_CRC_FROM: usize = 10;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let _ = checkpoint::parse(Path::new("recovery-point-offset-checkpoint"), text);
        }
        1 => {
            if let Some(cache) = LeaderEpochCache::decode(rest) {
                let again = LeaderEpochCache::decode(&cache.encode()).expect("re-encoded cache parses");
                assert_eq!(again.entries(), cache.entries());
            }
        }
        _ => {
            let mut file = rest.to_vec();
            if selector & 4 != 0 && file.len() >= SNAPSHOT_CRC_FROM {
                // Past the CRC to the entries behind it (see `snapshot`'s format).
                let crc = crc32c::crc32c(&file[SNAPSHOT_CRC_FROM..]);
                file[SNAPSHOT_CRC_AT..SNAPSHOT_CRC_FROM].copy_from_slice(&crc.to_be_bytes());
            }
            if let Ok((offset, producers)) = snapshot::decode(&file) {
                let encoded = snapshot::encode(offset, &producers);
                let (again, _) = snapshot::decode(&encoded).expect("re-encoded snapshot parses");
                assert_eq!(again, offset);
            }
        }
    }
});
