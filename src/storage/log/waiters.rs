//! `Waiters`: tasks parked until an offset is reached.

use futures::channel::oneshot;

/// Below this many waiters, registering does not bother pruning abandoned ones.
pub(super) const WAITERS_PRUNE_MIN: usize = 64;

/// Tasks parked until some offset is reached. Each waiter keeps the offset it needs
/// passed, and is woken only once that happens (or on failure and close). A waiter
/// whose future was dropped is pruned when the list has doubled since the last prune,
/// so abandoned long-polls cost amortised O(1) and never accumulate.
#[derive(Default)]
pub(super) struct Waiters {
    list: Vec<(i64, oneshot::Sender<()>)>,
    prune_at_len: usize,
}

impl Waiters {
    /// Parks a waiter until an offset greater than `offset` is reached.
    pub(super) fn register(&mut self, offset: i64) -> oneshot::Receiver<()> {
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
            let _ = tx.send(());
        }
    }

    /// Wakes everyone; each re-checks the state it waits on.
    pub(super) fn wake_all(&mut self) {
        for (_, tx) in self.list.drain(..) {
            let _ = tx.send(());
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }
}
