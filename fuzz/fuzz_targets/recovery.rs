//! Recovery of a partition from the files a crash or a bad disk may leave: the real
//! `PartitionLog::open` (segment scan, index load or rebuild, producer replay) on a
//! segment, offset index and time index made from the input, then a read of every
//! batch it kept and a clean close. What it keeps must be whole, valid batches.
//!
//! Input: flags (bit 0: repair batch CRCs; bit 1: recovery point at 0, so every batch
//! is re-validated, else trusted up to i64::MAX), offset-index length (u16 BE),
//! time-index length (u16 BE), the two indexes, then the segment's bytes.
#![no_main]

use std::path::PathBuf;

use corelog::storage::batch::{check_batch, BatchHeader};
use corelog::storage::log::{LogConfig, PartitionLog};
use corelog_fuzz::repair_crcs;
use libfuzzer_sys::fuzz_target;

/// Bytes one read asks for; reads continue until the log end.
const READ_BYTES_MAX: usize = 1 << 20;
/// Reads per input at most (each returns at least one batch).
const READS_MAX: usize = 10_000;

thread_local! {
    /// One executor for the whole run: making one per input would cost an io_uring
    /// set-up each time.
    static EXECUTOR: glommio::LocalExecutor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .make()
        .expect("a glommio executor (io_uring, RLIMIT_MEMLOCK)");
}

/// The scratch log dir, emptied before each input: under `CORELOG_FUZZ_SCRATCH`
/// (scripts/fuzz.sh makes one on a disk that takes O_DIRECT, and removes it), else
/// under the system temp dir.
fn scratch_dir() -> PathBuf {
    let root = std::env::var_os("CORELOG_FUZZ_SCRATCH").map_or_else(std::env::temp_dir, PathBuf::from);
    root.join(format!("corelog-fuzz-recovery-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let flags = data[0];
    let index_len = u16::from_be_bytes([data[1], data[2]]) as usize;
    let time_len = u16::from_be_bytes([data[3], data[4]]) as usize;
    let rest = &data[5..];
    let index_len = index_len.min(rest.len());
    let (index, rest) = rest.split_at(index_len);
    let time_len = time_len.min(rest.len());
    let (time_index, segment) = rest.split_at(time_len);
    let mut segment = segment.to_vec();
    if flags & 1 != 0 {
        repair_crcs(&mut segment);
    }
    let recovery_point = if flags & 2 != 0 { 0 } else { i64::MAX };

    let log_dir = scratch_dir();
    let _ = std::fs::remove_dir_all(&log_dir);
    let part = log_dir.join("t-0");
    std::fs::create_dir_all(&part).expect("scratch dir");
    let name = "00000000000000000000";
    std::fs::write(part.join(format!("{name}.log")), &segment).expect("write segment");
    if !index.is_empty() {
        std::fs::write(part.join(format!("{name}.index")), index).expect("write index");
    }
    if !time_index.is_empty() {
        std::fs::write(part.join(format!("{name}.timeindex")), time_index).expect("write time index");
    }

    EXECUTOR.with(|executor| {
        executor.run(async {
            let Ok(log) = PartitionLog::open(&log_dir, "t", 0, LogConfig::default(), recovery_point, 0).await
            else {
                return;
            };
            let end = log.log_end_offset();
            let mut offset = 0;
            let mut reads = 0;
            while offset < end && reads < READS_MAX {
                reads += 1;
                let Ok(read) = log.read(offset, READ_BYTES_MAX).await else {
                    break;
                };
                let Some(last) = read.batches.last() else {
                    break;
                };
                for batch in &read.batches {
                    // Recovery keeps whole batches; with a recovery point at 0 it
                    // checked every CRC too.
                    let verify = recovery_point == 0;
                    check_batch(batch, verify).expect("recovery keeps only valid batches");
                }
                let header = BatchHeader::parse(last).expect("a whole batch");
                assert!(header.last_offset() >= offset, "reads move forward");
                offset = header.last_offset() + 1;
            }
            let _ = log.close().await;
        })
    });
});
