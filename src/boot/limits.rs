//! Host checks before any shard starts: io_uring must be usable and RLIMIT_MEMLOCK large
//! enough for every shard's registered memory. Errors say exactly what to change.

use crate::runtime::SHARD_LOCKED_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error(
        "io_uring is disabled on this host (kernel.io_uring_disabled={0}); \
         run `sysctl -w kernel.io_uring_disabled=0` as root"
    )]
    IoUringDisabled(String),
    #[error(
        "io_uring is not available: io_uring_setup failed with {0}; corelog needs Linux 5.8+ \
         with io_uring allowed (in a container, allow the io_uring_* syscalls in seccomp)"
    )]
    IoUringUnavailable(std::io::Error),
    #[error(
        "RLIMIT_MEMLOCK is {have_bytes} bytes but {shards} shards need {need_bytes}; \
         raise it (`ulimit -l {need_kib}` in the shell, or LimitMEMLOCK={need_bytes} in the \
         systemd unit) or run fewer shards with --smp"
    )]
    Memlock {
        have_bytes: u64,
        need_bytes: u64,
        need_kib: u64,
        shards: usize,
    },
}

/// Allocations up to this size come from the heap instead of fresh mmaps. Request
/// buffers of a few hundred KiB are allocated and freed at a high rate; with glibc's
/// default (dynamic, from 128 KiB) each one is an mmap and a munmap, and every munmap
/// interrupts the other cores to flush their TLBs.
pub const MALLOC_MMAP_THRESHOLD_BYTES: i32 = 32 << 20;

/// Tunes the allocator for the broker's allocation pattern (see
/// `MALLOC_MMAP_THRESHOLD_BYTES`). Call before any shard starts.
pub fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 2 * MALLOC_MMAP_THRESHOLD_BYTES);
    }
}

/// Checks io_uring, then makes sure RLIMIT_MEMLOCK covers `shards` executors, raising the
/// soft limit up to the hard limit when that is enough.
pub fn check(shards: usize) -> Result<(), LimitError> {
    check_io_uring()?;
    ensure_memlock(shards as u64 * SHARD_LOCKED_BYTES as u64, shards)
}

pub fn check_io_uring() -> Result<(), LimitError> {
    if let Ok(v) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        let v = v.trim();
        if v != "0" {
            return Err(LimitError::IoUringDisabled(v.to_string()));
        }
    }
    // A one-entry ring proves the syscall is allowed (seccomp may forbid it).
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup reads and writes `params` (struct io_uring_params, 120
    // bytes) and returns a file descriptor we close at once.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(LimitError::IoUringUnavailable(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: fd is a descriptor this function owns.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

fn ensure_memlock(need_bytes: u64, shards: usize) -> Result<(), LimitError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
    if lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur >= need_bytes {
        return Ok(());
    }
    // Try the hard limit, then (as root) the exact need.
    for target in [lim.rlim_max, need_bytes.max(lim.rlim_max)] {
        if target >= need_bytes || target == libc::RLIM_INFINITY {
            let new = libc::rlimit {
                rlim_cur: target,
                rlim_max: target.max(lim.rlim_max),
            };
            // SAFETY: setrlimit only reads the struct.
            if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &new) } == 0 {
                tracing::info!(
                    from_bytes = lim.rlim_cur,
                    to_bytes = target,
                    "raised RLIMIT_MEMLOCK"
                );
                return Ok(());
            }
        }
    }
    Err(LimitError::Memlock {
        have_bytes: lim.rlim_cur,
        need_bytes,
        need_kib: need_bytes.div_ceil(1024),
        shards,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn io_uring_is_usable_here() {
        // The test machines run the broker, so they must pass the check it runs.
        super::check_io_uring().unwrap();
    }
}
