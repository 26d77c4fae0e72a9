//! The one place that names the async runtime (glommio): shard executors, sockets,
//! timers and blocking offload. The rest of the broker goes through these names, so a
//! future switch (compio is the active alternative) stays a contained change.
//! (`storage/` uses glommio's `DmaFile` directly: O_DIRECT file I/O is its whole job.)

use std::future::Future;
use std::time::Duration;

pub use glommio::net::{TcpListener, TcpStream};
pub use glommio::sync::{Semaphore, StaticPermit};
pub use glommio::timer::sleep;

/// Bytes of io_uring registered buffer memory per shard. Registered memory counts against
/// RLIMIT_MEMLOCK, so `boot::limits` checks the limit against `shards * SHARD_LOCKED_BYTES`.
pub const SHARD_IO_MEMORY_BYTES: usize = 2 << 20;
/// Locked memory a shard needs: its registered buffers plus its rings (glommio needs at
/// least 512 KiB per executor for the rings).
pub const SHARD_LOCKED_BYTES: usize = SHARD_IO_MEMORY_BYTES + (512 << 10);

/// A running shard thread.
pub type ShardHandle = glommio::ExecutorJoinHandle<()>;

/// Starts shard `id` on its own thread: a glommio executor pinned to CPU `cpu` (or left
/// unpinned when `cpu` is `None`) running `main` to completion.
pub fn spawn_shard<G, F>(id: usize, cpu: Option<usize>, main: G) -> std::io::Result<ShardHandle>
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = ()> + 'static,
{
    let placement = match cpu {
        Some(c) => glommio::Placement::Fixed(c),
        None => glommio::Placement::Unbound,
    };
    glommio::LocalExecutorBuilder::new(placement)
        .name(&format!("shard-{id}"))
        .io_memory(SHARD_IO_MEMORY_BYTES)
        .spawn(main)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// Spawns a task on the current shard; it runs detached.
pub fn spawn_local<F>(fut: F)
where
    F: Future + 'static,
    F::Output: 'static,
{
    glommio::spawn_local(fut).detach();
}

/// Runs blocking work (metadata files written with std::fs, for instance) on the
/// executor's helper thread, so the shard's reactor never blocks.
pub async fn blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    glommio::executor().spawn_blocking(f).await
}

/// Binds the listener on the current shard with SO_REUSEPORT (glommio sets it), so every
/// shard can bind the same address and the kernel spreads connections across them.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| std::io::Error::other(e.to_string()))
}

/// Resolves after `dur`, or never when `dur` is `None`.
pub async fn deadline(dur: Option<Duration>) {
    match dur {
        Some(d) => sleep(d).await,
        None => futures::future::pending::<()>().await,
    }
}

/// Most iovecs handed to one `sendmsg` (Linux's IOV_MAX).
pub const IOVECS_MAX: usize = 1024;

/// One non-blocking gathering send of `bufs` on socket `fd`: the response header and the
/// record `Bytes` leave in one syscall without being copied into one buffer. Returns the
/// bytes sent, or `WouldBlock` when the socket buffer is full (then wait with an ordinary
/// async write, which parks until the socket is writable).
pub fn try_send_vectored(
    fd: std::os::fd::RawFd,
    bufs: &[std::io::IoSlice<'_>],
) -> std::io::Result<usize> {
    let count = bufs.len().min(IOVECS_MAX);
    // SAFETY: msghdr is plain data; every field we do not set is zero.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is ABI-compatible with iovec on Unix (guaranteed by std).
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = count as _;
    // SAFETY: the iovecs point into `bufs`, which outlive the call; the kernel only reads them.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}
