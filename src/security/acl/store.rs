//! Where the ACLs live and how shards see them.
//!
//! A single broker keeps them in the first log dir (`ACLS_FILE`, JSON, written to a
//! temp file, fsynced, renamed); in a cluster they are records of the metadata quorum
//! (`cluster::state::Command::CreateAcls` / `DeleteAcls`) and `follow` takes each new
//! image's set. Either way the current set is an immutable `Arc<AclIndex>`, replaced
//! whole, with a version number bumped after each replacement.
//!
//! Concurrency: writers (CreateAcls, DeleteAcls, the controller thread) are serialised
//! by `write` and run off the shards (`runtime::blocking`). Readers on a shard call
//! `current`: one atomic load of the version, and only when it moved a read lock to
//! take the new `Arc`, kept per thread in an `Rc` so that requests share it without
//! touching a cross-core reference count.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::{AclBinding, AclIndex, AuthorizerConfig};

/// The file in the first log dir (single broker).
pub const ACLS_FILE: &str = "corelog-acls";
const FILE_VERSION: u32 = 1;

/// Gives each store its own id, so a thread's cached view is never another store's.
static STORE_IDS: AtomicU64 = AtomicU64::new(1);

/// A shard's handle on the current ACLs. The `Rc` is deliberate: requests on one shard
/// clone it without touching the `Arc`'s count, which every shard shares (a cache line
/// bounced between cores on every request otherwise).
#[allow(clippy::redundant_allocation)]
pub type View = Rc<Arc<AclIndex>>;

thread_local! {
    /// (store id, version, view) of the last `current` on this thread.
    static VIEW: RefCell<Option<(u64, u64, View)>> = const { RefCell::new(None) };
}

pub struct AclStore {
    pub config: AuthorizerConfig,
    id: u64,
    /// `None` in a cluster: the quorum holds the ACLs.
    path: Option<PathBuf>,
    current: RwLock<Arc<AclIndex>>,
    version: AtomicU64,
    write: Mutex<()>,
}

#[derive(Serialize, Deserialize)]
struct FileForm {
    version: u32,
    acls: Vec<AclBinding>,
}

impl AclStore {
    /// A single broker's store: reads `dir/ACLS_FILE` (none yet: no ACLs). Blocking:
    /// start-up only.
    pub fn open(dir: &Path, config: AuthorizerConfig) -> Result<AclStore, String> {
        let path = dir.join(ACLS_FILE);
        let acls = match std::fs::read(&path) {
            Ok(bytes) => {
                let form: FileForm = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: not an ACL file: {e}", path.display()))?;
                if form.version != FILE_VERSION {
                    return Err(format!(
                        "{}: version {} is not one this broker reads ({FILE_VERSION})",
                        path.display(),
                        form.version
                    ));
                }
                form.acls
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut store = AclStore::in_cluster(config);
        store.path = Some(path);
        *store.current.get_mut().unwrap_or_else(|e| e.into_inner()) = Arc::new(AclIndex::new(acls));
        Ok(store)
    }

    /// A cluster member's store: empty until `follow` gives it the quorum's ACLs.
    pub fn in_cluster(config: AuthorizerConfig) -> AclStore {
        AclStore {
            config,
            id: STORE_IDS.fetch_add(1, Ordering::Relaxed),
            path: None,
            current: RwLock::default(),
            version: AtomicU64::new(0),
            write: Mutex::new(()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// The current ACLs, through this thread's cached view (see the module comment).
    pub fn current(&self) -> View {
        let version = self.version.load(Ordering::Acquire);
        VIEW.with(|view| {
            let mut view = view.borrow_mut();
            match &*view {
                Some((id, v, idx)) if *id == self.id && *v == version => idx.clone(),
                _ => {
                    let idx = Rc::new(self.snapshot());
                    *view = Some((self.id, version, idx.clone()));
                    idx
                }
            }
        })
    }

    /// The current ACLs, without the per-thread cache (admin APIs, other threads).
    pub fn snapshot(&self) -> Arc<AclIndex> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Single broker: adds `new` (bindings already present change nothing), persists,
    /// then publishes. Blocking.
    pub fn create_blocking(&self, new: &[AclBinding]) -> Result<(), String> {
        self.change_blocking(|acls| acls.extend(new.iter().cloned()))
    }

    /// Single broker: removes exactly `gone`, persists, then publishes. Blocking.
    pub fn delete_blocking(&self, gone: &[AclBinding]) -> Result<(), String> {
        self.change_blocking(|acls| acls.retain(|b| !gone.contains(b)))
    }

    fn change_blocking(&self, change: impl FnOnce(&mut Vec<AclBinding>)) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Err("in a cluster the ACLs change through the metadata quorum".into());
        };
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut acls: Vec<AclBinding> = self.snapshot().bindings().iter().cloned().collect();
        change(&mut acls);
        let form = FileForm {
            version: FILE_VERSION,
            acls,
        };
        let bytes = serde_json::to_vec_pretty(&form).expect("ACLs serialize");
        crate::util::write_file_atomic_mode_blocking(path, &bytes, 0o600)
            .map_err(|e| format!("cannot persist the ACLs to {}: {e}", path.display()))?;
        self.publish(AclIndex::new(form.acls));
        Ok(())
    }

    /// Cluster mode: the quorum's ACLs as the latest image has them (the controller
    /// thread calls this after every image change; an unchanged set costs a compare).
    pub fn follow(&self, acls: &[AclBinding]) {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let same = {
            let cur = self.snapshot();
            cur.len() == acls.len() && acls.iter().all(|b| cur.bindings().contains(b))
        };
        if !same {
            self.publish(AclIndex::new(acls.iter().cloned()));
        }
    }

    fn publish(&self, index: AclIndex) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
        self.version.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::binding;
    use super::super::{Operation, PatternType, Permission, ResourceType};
    use super::*;

    #[test]
    fn persists_and_publishes() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuthorizerConfig {
            enabled: true,
            ..Default::default()
        };
        let store = AclStore::open(dir.path(), config.clone()).unwrap();
        let b = binding(
            ResourceType::Topic,
            "t",
            PatternType::Literal,
            "User:a",
            Operation::Read,
            Permission::Allow,
        );
        let before = store.current();
        store.create_blocking(&[b.clone(), b.clone()]).unwrap();
        assert!(before.is_empty(), "a view once taken never changes");
        assert_eq!(store.current().len(), 1);
        let reopened = AclStore::open(dir.path(), config.clone()).unwrap();
        assert_eq!(reopened.current().len(), 1);
        store.delete_blocking(&[b]).unwrap();
        assert!(store.current().is_empty());
        assert!(AclStore::open(dir.path(), config)
            .unwrap()
            .current()
            .is_empty());
    }
}
