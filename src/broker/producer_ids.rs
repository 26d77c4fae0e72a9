//! Producer id allocation for InitProducerId. Ids are handed out from blocks reserved in
//! `<first log dir>/corelog-producer-ids`, so a restart never reuses an id: the file holds
//! the first id of the next unreserved block and is written before a block is used.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const PRODUCER_IDS_FILE: &str = "corelog-producer-ids";
/// Ids reserved per write of the file.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

struct Range {
    next: i64,
    reserved_end: i64,
}

pub struct ProducerIds {
    range: Mutex<Range>,
    path: PathBuf,
}

impl ProducerIds {
    /// Reads the reservation file at start-up (blocking; before shards run).
    pub fn open(first_dir: &Path) -> std::io::Result<ProducerIds> {
        let path = first_dir.join(PRODUCER_IDS_FILE);
        let next = match std::fs::read_to_string(&path) {
            Ok(t) => t.trim().parse::<i64>().map_err(|_| {
                std::io::Error::other(format!(
                    "{}: expected a number, found {t:?}",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIds {
            range: Mutex::new(Range {
                next,
                reserved_end: next,
            }),
            path,
        })
    }

    /// The next id of a block the quorum gave this broker (cluster mode), if any is left.
    pub fn take_from_block(&self) -> Option<i64> {
        let mut r = self.range.lock().unwrap_or_else(|e| e.into_inner());
        (r.next < r.reserved_end).then(|| {
            r.next += 1;
            r.next - 1
        })
    }

    /// Takes a block the quorum allocated (cluster mode: the file is not used).
    pub fn add_block(&self, start: i64) {
        let mut r = self.range.lock().unwrap_or_else(|e| e.into_inner());
        r.next = start;
        r.reserved_end = start + PRODUCER_ID_BLOCK;
    }

    /// Allocates one producer id, reserving a new block on disk when the current one is
    /// used up. Blocking (it may write the file): call through `runtime::blocking`.
    pub fn allocate_blocking(&self) -> std::io::Result<i64> {
        let mut r = self.range.lock().unwrap_or_else(|e| e.into_inner());
        if r.next >= r.reserved_end {
            let end = r.next + PRODUCER_ID_BLOCK;
            crate::util::write_file_atomic_blocking(&self.path, end.to_string().as_bytes())?;
            r.reserved_end = end;
        }
        let id = r.next;
        r.next += 1;
        Ok(id)
    }
}

/// One new producer id for InitProducerId: from a block the quorum gave this broker
/// (cluster mode), else from the blocks reserved on disk. Err is the Kafka error code.
pub async fn next_producer_id(broker: &std::sync::Arc<super::Broker>) -> Result<i64, i16> {
    use crate::protocol::errors as ec;
    if let Some(cluster) = broker.cluster.clone() {
        if let Some(id) = broker.producer_ids.take_from_block() {
            return Ok(id);
        }
        return match cluster.allocate_producer_ids().await {
            Ok(start) => {
                broker.producer_ids.add_block(start);
                Ok(broker.producer_ids.take_from_block().unwrap_or(start))
            }
            Err((code, why)) => {
                tracing::warn!("no producer id block from the quorum: {why}");
                Err(if code == ec::REQUEST_TIMED_OUT {
                    ec::COORDINATOR_NOT_AVAILABLE
                } else {
                    code
                })
            }
        };
    }
    let b = broker.clone();
    crate::runtime::blocking(move || b.producer_ids.allocate_blocking())
        .await
        .map_err(|e| {
            tracing::error!("cannot reserve producer ids: {e}");
            ec::KAFKA_STORAGE_ERROR
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_repeat_across_restarts() {
        let t = tempfile::tempdir().unwrap();
        let a = ProducerIds::open(t.path()).unwrap();
        assert_eq!(a.allocate_blocking().unwrap(), 0);
        assert_eq!(a.allocate_blocking().unwrap(), 1);
        drop(a);
        let b = ProducerIds::open(t.path()).unwrap();
        assert_eq!(b.allocate_blocking().unwrap(), PRODUCER_ID_BLOCK);
    }
}
