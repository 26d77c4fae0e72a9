//! `Waiters`: tasks parked until an offset is reached, and the waits of `PartitionLog`
//! built on them.

use futures::channel::oneshot;

use super::{PartitionLog, StorageError};

/// Why a waiter was woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wake {
    /// The offset it waits for was passed.
    Reached,
    /// Something else changed (close, failure): it re-checks the state.
    Recheck,
    /// Its offset was truncated away: the data it waited for is gone for good.
    Truncated,
}

/// Below this many waiters, registering does not bother pruning abandoned ones.
pub(super) const WAITERS_PRUNE_MIN: usize = 64;

/// Tasks parked until some offset is reached. Each waiter keeps the offset it needs
/// passed, and is woken only once that happens (or on failure and close). A waiter
/// whose future was dropped is pruned when the list has doubled since the last prune,
/// so abandoned long-polls cost amortised O(1) and never accumulate.
#[derive(Default)]
pub(super) struct Waiters {
    list: Vec<(i64, oneshot::Sender<Wake>)>,
    prune_at_len: usize,
}

impl Waiters {
    /// Parks a waiter until an offset greater than `offset` is reached.
    pub(super) fn register(&mut self, offset: i64) -> oneshot::Receiver<Wake> {
        if self.list.len() >= self.prune_at_len.max(WAITERS_PRUNE_MIN) {
            self.list.retain(|(_, tx)| !tx.is_canceled());
            self.prune_at_len = 2 * self.list.len();
        }
        let (tx, rx) = oneshot::channel();
        self.list.push((offset, tx));
        rx
    }

    /// Wakes the waiters whose offset is below `end`.
    pub(super) fn wake_below(&mut self, end: i64) {
        for (_, tx) in self.list.extract_if(.., |(offset, _)| *offset < end) {
            let _ = tx.send(Wake::Reached);
        }
    }

    /// Wakes everyone; each re-checks the state it waits on.
    pub(super) fn wake_all(&mut self) {
        for (_, tx) in self.list.drain(..) {
            let _ = tx.send(Wake::Recheck);
        }
    }

    /// Tells the waiters for offsets at or past `offset` that the log was truncated
    /// there: what they wait for will never be the data they mean.
    pub(super) fn truncate_from(&mut self, offset: i64) {
        for (_, tx) in self.list.extract_if(.., |(waited, _)| *waited >= offset) {
            let _ = tx.send(Wake::Truncated);
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }
}

impl PartitionLog {
    /// Resolves when everything up to and including `offset` is written (acks=1).
    /// `Err(Truncated)` if `offset` is truncated away first (or was never appended).
    pub async fn wait_written(&self, offset: i64) -> Result<(), StorageError> {
        loop {
            let rx = {
                let mut st = self.inner.state.borrow_mut();
                if let Some(failure) = &st.failure {
                    return Err(failure.to_error());
                }
                if st.written_offset > offset {
                    return Ok(());
                }
                st.check_usable(&self.inner.dir)?;
                if offset >= st.log_end_offset {
                    return Err(StorageError::Truncated { offset });
                }
                st.written_waiters.register(offset)
            };
            match rx.await {
                Ok(Wake::Reached) => return Ok(()),
                Ok(Wake::Truncated) => return Err(StorageError::Truncated { offset }),
                _ => {}
            }
        }
    }

    /// Resolves when everything up to and including `offset` is written and
    /// fdatasync'd (acks=all). `Err(Truncated)` as for [`Self::wait_written`].
    pub async fn wait_durable(&self, offset: i64) -> Result<(), StorageError> {
        self.inner.state.borrow_mut().durability_asked = true;
        self.wait_durable_recorded(offset).await
    }

    /// `wait_durable` for the periodic flush, which does not count as a request asking
    /// for durability (see `State::durability_asked`).
    pub(super) async fn wait_durable_recorded(&self, offset: i64) -> Result<(), StorageError> {
        self.wait_durable_unjournaled(offset).await?;
        let dir = &self.inner.dir;
        crate::storage::recorder::record(dir, || crate::storage::recorder::Op::Ack {
            dir: dir.clone(),
            offset,
        });
        Ok(())
    }

    async fn wait_durable_unjournaled(&self, offset: i64) -> Result<(), StorageError> {
        loop {
            let rx = {
                let mut st = self.inner.state.borrow_mut();
                if let Some(failure) = &st.failure {
                    return Err(failure.to_error());
                }
                if st.durable_offset > offset {
                    return Ok(());
                }
                st.check_usable(&self.inner.dir)?;
                if offset >= st.log_end_offset {
                    return Err(StorageError::Truncated { offset });
                }
                st.durable_wanted = st.durable_wanted.max(offset + 1);
                let spawn = self.claim_writer(&mut st);
                let rx = st.durable_waiters.register(offset);
                drop(st);
                if spawn {
                    self.spawn_writer();
                }
                rx
            };
            match rx.await {
                Ok(Wake::Reached) => return Ok(()),
                Ok(Wake::Truncated) => return Err(StorageError::Truncated { offset }),
                _ => {}
            }
        }
    }

    /// Resolves when `high_watermark() > offset` (the consumer-visible one), or the log
    /// fails, closes or is truncated below it. Dropping the future is fine (Fetch
    /// long-poll timeouts): its waiter is pruned.
    pub fn wait_for_data(&self, offset: i64) -> impl std::future::Future<Output = ()> + 'static {
        let log = self.clone();
        async move {
            let _ = log.wait_high_watermark(offset).await;
        }
    }

    /// Resolves when `written_offset() > offset` (a follower's long-poll), or the log
    /// fails, closes or is truncated below it. Dropping the future is fine.
    pub fn wait_for_written(&self, offset: i64) -> impl std::future::Future<Output = ()> + 'static {
        let inner = self.inner.clone();
        async move {
            let rx = {
                let mut st = inner.state.borrow_mut();
                if st.written_offset > offset || st.failure.is_some() || st.closed {
                    return;
                }
                st.written_waiters.register(offset)
            };
            let _ = rx.await;
        }
    }

    /// Resolves when `high_watermark() > offset` (acks=all in a cluster waits for this
    /// after `wait_durable`). `Err` when the log fails or closes first, or `offset` is
    /// truncated away. Dropping the future is fine.
    pub async fn wait_high_watermark(&self, offset: i64) -> Result<(), StorageError> {
        loop {
            let rx = {
                let mut st = self.inner.state.borrow_mut();
                if st.consumer_high_watermark() > offset {
                    return Ok(());
                }
                st.check_usable(&self.inner.dir)?;
                st.data_waiters.register(offset)
            };
            match rx.await {
                Ok(Wake::Reached) => return Ok(()),
                Ok(Wake::Truncated) => return Err(StorageError::Truncated { offset }),
                _ => {}
            }
        }
    }
}
