//! DMA read buffers handed out as `Bytes` without a copy (issue 13: reads at disk speed).
//!
//! A fetch reads batches from disk on the partition's shard and sends them from the
//! connection's shard, so the bytes must be `Send`. glommio's `ReadResult` is not: it
//! holds an `Rc` of its I/O source, whose count only the thread that read may touch.
//! Copying out of it cost a sixth of the broker's CPU in a disk-bound consume (perf,
//! `__memmove_avx_unaligned_erms` 16 % beside the kernel's socket copy at 21 %).
//!
//! [`Lent`] makes the buffer shareable without that copy:
//! - its bytes are read through a raw pointer and length taken at creation, never
//!   through the `ReadResult`, so any thread may read them (the buffer is never written
//!   after the read completes, and lives until the `ReadResult` is dropped);
//! - when the last `Bytes` over it is dropped on its home thread, the `ReadResult` is
//!   dropped there as usual;
//! - dropped anywhere else, the `ReadResult` is moved, untouched, into its home
//!   thread's return queue, and the home thread drops it at its next disk read
//!   ([`drop_returned`]). So the `Rc` count is only ever changed on its own thread.
//!
//! Returned buffers wait for the home thread's next read: at most what was in flight to
//! other shards when reads stopped (a few read-ahead chunks). Buffers whose home thread
//! has ended are leaked rather than dropped on a foreign thread (only at shutdown).

use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use glommio::io::ReadResult;

/// A `ReadResult` on its way back to its home thread.
struct Returned(
    #[expect(dead_code, reason = "held only to be dropped on its home thread")] ReadResult,
);

// SAFETY: a `Returned` is only moved between threads, never used: its `ReadResult` is
// dropped on its home thread (`drop_returned`) or leaked (`Home::drop`).
unsafe impl Send for Returned {}

/// A thread's queue of buffers dropped elsewhere.
struct Home {
    returns: Mutex<Vec<Returned>>,
}

impl Drop for Home {
    fn drop(&mut self) {
        // The last reference can go on any thread, after the home thread ended: never
        // drop a `ReadResult` there.
        let returns = std::mem::take(self.returns.get_mut().unwrap_or_else(|p| p.into_inner()));
        returns.into_iter().for_each(std::mem::forget);
    }
}

thread_local! {
    static HOME: Arc<Home> = Arc::new(Home { returns: Mutex::new(Vec::new()) });
}

/// A DMA read buffer lent to `Bytes` (see the module comment).
struct Lent {
    result: ManuallyDrop<ReadResult>,
    ptr: *const u8,
    len: usize,
    /// The queue of the thread that read (the one `result` belongs to).
    home: Arc<Home>,
}

// SAFETY: the only shared access is `as_ref`, which reads the buffer through `ptr`
// (immutable after the read, alive as long as `result`); `result` itself is dropped
// only on its home thread (see `Drop`).
unsafe impl Send for Lent {}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` lies inside `result`'s buffer, which neither moves
        // nor changes while `result` is alive (it is a heap DMA buffer).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        // SAFETY: `result` is taken exactly once, here.
        let result = unsafe { ManuallyDrop::take(&mut self.result) };
        // On a thread whose locals are being destroyed, `try_with` fails: queue it.
        let at_home = HOME
            .try_with(|h| Arc::ptr_eq(h, &self.home))
            .unwrap_or(false);
        if at_home {
            drop(result);
        } else {
            let mut returns = self.home.returns.lock().unwrap_or_else(|p| p.into_inner());
            returns.push(Returned(result));
        }
    }
}

/// `result[skip..skip + len]` as `Bytes`, without copying. Panics if the range is not
/// inside `result` (callers check its length first).
pub(super) fn lend(result: ReadResult, skip: usize, len: usize) -> Bytes {
    let slice = &result[skip..skip + len];
    let ptr = slice.as_ptr();
    Bytes::from_owner(Lent {
        result: ManuallyDrop::new(result),
        ptr,
        len,
        home: HOME.with(Arc::clone),
    })
}

/// Drops the buffers this thread lent that were released on other threads. Called
/// before each disk read, so they never outnumber the reads in flight elsewhere.
pub(super) fn drop_returned() {
    let returned = HOME.with(|h| {
        let mut returns = h.returns.lock().unwrap_or_else(|p| p.into_inner());
        (!returns.is_empty()).then(|| std::mem::take(&mut *returns))
    });
    drop(returned);
}

/// Buffers released on other threads that this thread has not dropped yet.
#[cfg(test)]
pub(super) fn returned_waiting() -> usize {
    HOME.with(|h| h.returns.lock().unwrap().len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::io::{LogFile, PAGE_BYTES};

    fn on_executor<F: std::future::Future<Output = ()> + 'static>(f: F) {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .make()
            .unwrap()
            .run(f);
    }

    /// A file of two pages, byte i = i % 251; and an unaligned read of its middle.
    async fn read_middle(dir: &std::path::Path) -> Bytes {
        let file = LogFile::open(&dir.join("00000000000000000000.log"), true)
            .await
            .unwrap();
        let len = 2 * PAGE_BYTES as usize;
        file.write_aligned(0, len, |b| {
            b.iter_mut()
                .enumerate()
                .for_each(|(i, x)| *x = (i % 251) as u8)
        })
        .await
        .unwrap();
        file.read(100, 5000).await.unwrap()
    }

    fn expected() -> Vec<u8> {
        (100..5100).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_buffer_released_on_another_thread_is_dropped_at_home() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        on_executor(async move {
            let bytes = read_middle(&path).await;
            assert_eq!(bytes.as_ref(), expected().as_slice());
            let tail = bytes.slice(4000..);
            // Read and released on another thread, as a fetch's connection shard does.
            let elsewhere =
                std::thread::spawn(move || bytes.iter().map(|&b| b as u64).sum::<u64>());
            let sum = elsewhere.join().unwrap();
            assert_eq!(sum, expected().iter().map(|&b| b as u64).sum::<u64>());
            // `tail` still holds the buffer: nothing came back yet.
            assert_eq!(returned_waiting(), 0);
            std::thread::spawn(move || drop(tail)).join().unwrap();
            assert_eq!(returned_waiting(), 1);
            drop_returned();
            assert_eq!(returned_waiting(), 0);
        });
    }

    #[test]
    fn a_buffer_released_at_home_is_dropped_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        on_executor(async move {
            let bytes = read_middle(&path).await;
            let copy = bytes.clone();
            drop(bytes);
            assert_eq!(copy.as_ref(), expected().as_slice());
            drop(copy);
            assert_eq!(returned_waiting(), 0);
        });
    }
}
