//! Where the client quotas live and how connections see them.
//!
//! A single broker keeps them in the first log dir (`QUOTAS_FILE`, JSON, written to a
//! temp file, fsynced, renamed); in a cluster they are records of the metadata quorum
//! (`cluster::state::Command::AlterClientQuotas`) and `follow` takes each new image's
//! set, so every member enforces the same quotas. Either way the current set is an
//! immutable `Arc<Current>` replaced whole, with a version bumped after each
//! replacement; a connection compares the version (one atomic load) per request and
//! re-resolves its quotas only when it moved.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::entity::{apply_changes, QuotaChange, QuotaIndex, QuotaRecord};

/// The file in the first log dir (single broker).
pub const QUOTAS_FILE: &str = "corelog-client-quotas";
const FILE_VERSION: u32 = 1;

/// The records (for DescribeClientQuotas) and their index (for enforcement).
#[derive(Debug, Default)]
pub struct Current {
    pub records: Vec<QuotaRecord>,
    pub index: QuotaIndex,
}

#[derive(Default)]
pub struct QuotaStore {
    /// `None` in a cluster: the quorum holds the quotas.
    path: Option<PathBuf>,
    current: RwLock<Arc<Current>>,
    version: AtomicU64,
    write: Mutex<()>,
}

#[derive(Serialize, Deserialize)]
struct FileForm {
    version: u32,
    quotas: Vec<QuotaRecord>,
}

impl QuotaStore {
    /// A single broker's store: reads `dir/QUOTAS_FILE` (none yet: no quotas).
    /// Blocking: start-up only.
    pub fn open(dir: &Path) -> Result<QuotaStore, String> {
        let path = dir.join(QUOTAS_FILE);
        let records = match std::fs::read(&path) {
            Ok(bytes) => {
                let form: FileForm = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: not a client quota file: {e}", path.display()))?;
                if form.version != FILE_VERSION {
                    return Err(format!(
                        "{}: version {} is not one this broker reads ({FILE_VERSION})",
                        path.display(),
                        form.version
                    ));
                }
                form.quotas
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let store = QuotaStore {
            path: Some(path),
            ..Default::default()
        };
        store.publish(records);
        Ok(store)
    }

    pub fn snapshot(&self) -> Arc<Current> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bumped after every change; connections re-resolve when it moves.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Single broker: applies `changes`, persists, then publishes. Blocking.
    pub fn alter_blocking(&self, changes: &[QuotaChange]) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Err("in a cluster the quotas change through the metadata quorum".into());
        };
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut records = self.snapshot().records.clone();
        apply_changes(&mut records, changes);
        let form = FileForm {
            version: FILE_VERSION,
            quotas: records,
        };
        let bytes = serde_json::to_vec_pretty(&form).expect("quotas serialize");
        crate::util::write_file_atomic_blocking(path, &bytes).map_err(|e| {
            format!(
                "cannot persist the client quotas to {}: {e}",
                path.display()
            )
        })?;
        self.publish(form.quotas);
        Ok(())
    }

    /// Cluster mode: the quorum's quotas as the latest image has them (called after
    /// every image change; an unchanged set costs a compare).
    pub fn follow(&self, records: &[QuotaRecord]) {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if self.snapshot().records != records {
            self.publish(records.to_vec());
        }
    }

    fn publish(&self, records: Vec<QuotaRecord>) {
        let index = QuotaIndex::new(&records);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Current { records, index });
        self.version.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::super::entity::{Name, QuotaEntity, PRODUCER_BYTE_RATE};
    use super::*;

    #[test]
    fn persists_and_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuotaStore::open(dir.path()).unwrap();
        let v0 = store.version();
        let change = QuotaChange {
            entity: QuotaEntity {
                user: None,
                client_id: Some(Name::Named("app".into())),
                ip: None,
            },
            key: PRODUCER_BYTE_RATE.into(),
            value: Some("1024".into()),
        };
        store.alter_blocking(std::slice::from_ref(&change)).unwrap();
        assert!(store.version() > v0);
        let reopened = QuotaStore::open(dir.path()).unwrap();
        assert_eq!(reopened.snapshot().records, store.snapshot().records);
        assert_eq!(reopened.snapshot().records.len(), 1);
        let remove = QuotaChange {
            value: None,
            ..change
        };
        store.alter_blocking(&[remove]).unwrap();
        assert!(QuotaStore::open(dir.path())
            .unwrap()
            .snapshot()
            .records
            .is_empty());
    }
}
