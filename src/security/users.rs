//! The SCRAM users a broker knows: name → mechanism → `Credential`, persisted in the
//! first log dir (`CREDENTIALS_FILE`, JSON, mode 0600, written to a temp file, fsynced,
//! renamed) and published as an immutable `Arc` snapshot that logins read.
//!
//! Concurrency: any shard may change users (AlterUserScramCredentials); changes are
//! serialised by `write`, persisted before they are published, and run through
//! `runtime::blocking` so no shard waits on the disk. Readers take the current `Arc`.
//!
//! In a cluster the users are records of the metadata quorum
//! (`cluster::state::Command::AlterScramCredentials`): the store then follows the
//! image (`follow`) and the file is read only for the users `storage format
//! --add-scram` put there, which this member proposes to the quorum once
//! (`formatted`, see ARCHITECTURE.md "Security", users in the quorum).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::scram::{Credential, Mechanism};

/// The file in the first log dir (the metadata dir of a single broker).
pub const CREDENTIALS_FILE: &str = "corelog-scram-credentials";
const FILE_VERSION: u32 = 1;

pub type Users = BTreeMap<String, BTreeMap<Mechanism, Credential>>;

/// One change, as AlterUserScramCredentials carries them.
#[derive(Debug, Clone)]
pub enum Change {
    Upsert {
        name: String,
        mechanism: Mechanism,
        credential: Credential,
    },
    Delete {
        name: String,
        mechanism: Mechanism,
    },
}

pub struct UserStore {
    path: PathBuf,
    current: RwLock<Arc<Users>>,
    write: Mutex<()>,
    /// Cluster mode: the file's users, to be proposed to the quorum once; `None` for a
    /// single broker, whose file is the store.
    formatted: Option<Arc<Users>>,
    /// Cluster mode: a bootstrap proposal is under way (one at a time).
    pub bootstrapping: std::sync::atomic::AtomicBool,
}

#[derive(Serialize, Deserialize)]
struct FileForm {
    version: u32,
    users: Vec<CredentialRecord>,
}

/// One user's credential for one mechanism, as stored: in the file and in the metadata
/// quorum's records. Salted keys only, base64; never a password.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CredentialRecord {
    pub name: String,
    pub mechanism: String,
    pub iterations: u32,
    pub salt: String,
    pub stored_key: String,
    pub server_key: String,
}

impl UserStore {
    /// Reads `dir/CREDENTIALS_FILE` (none yet: no users). Blocking: start-up only.
    pub fn open(dir: &Path) -> Result<UserStore, String> {
        let path = dir.join(CREDENTIALS_FILE);
        let users = match std::fs::read(&path) {
            Ok(bytes) => decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Users::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(UserStore {
            path,
            current: RwLock::new(Arc::new(users)),
            write: Mutex::new(()),
            formatted: None,
            bootstrapping: Default::default(),
        })
    }

    /// A cluster member's store: no users until `follow` gives it the quorum's; the
    /// file's (from `storage format --add-scram`, or a member's users from before it
    /// joined a quorum) are kept aside for the one-time bootstrap. Blocking: start-up.
    pub fn open_in_cluster(dir: &Path) -> Result<UserStore, String> {
        let mut store = UserStore::open(dir)?;
        let file = std::mem::take(&mut *store.current.get_mut().unwrap_or_else(|e| e.into_inner()));
        store.formatted = Some(file);
        Ok(store)
    }

    /// Cluster mode: the users this member's file holds (see `open_in_cluster`).
    pub fn formatted(&self) -> Option<Arc<Users>> {
        self.formatted.clone()
    }

    /// Cluster mode: the quorum's users as the latest image has them (called after
    /// every image change; an unchanged set costs a compare).
    pub fn follow(&self, users: &Arc<Users>) {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if **cur != **users {
            *cur = users.clone();
        }
    }

    pub fn snapshot(&self) -> Arc<Users> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn get(&self, name: &str, m: Mechanism) -> Option<Credential> {
        self.snapshot().get(name)?.get(&m).cloned()
    }

    /// Applies `changes` in order, persists, then publishes. A delete of a credential
    /// that does not exist is `Err(name)` in its slot and changes nothing. Blocking.
    pub fn apply_blocking(&self, changes: &[Change]) -> Result<Vec<Result<(), String>>, String> {
        if self.formatted.is_some() {
            return Err("in a cluster the users change through the metadata quorum".into());
        }
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut users = (*self.snapshot()).clone();
        let outcomes = apply(&mut users, changes);
        crate::util::write_file_atomic_mode_blocking(&self.path, &encode(&users), 0o600).map_err(
            |e| {
                format!(
                    "cannot persist SCRAM credentials to {}: {e}",
                    self.path.display()
                )
            },
        )?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(users);
        Ok(outcomes)
    }
}

/// Applies `changes` to `users`; one outcome per change.
pub fn apply(users: &mut Users, changes: &[Change]) -> Vec<Result<(), String>> {
    changes
        .iter()
        .map(|c| match c {
            Change::Upsert {
                name,
                mechanism,
                credential,
            } => {
                users
                    .entry(name.clone())
                    .or_default()
                    .insert(*mechanism, credential.clone());
                Ok(())
            }
            Change::Delete { name, mechanism } => {
                let Some(mechs) = users.get_mut(name) else {
                    return Err(name.clone());
                };
                if mechs.remove(mechanism).is_none() {
                    return Err(name.clone());
                }
                if mechs.is_empty() {
                    users.remove(name);
                }
                Ok(())
            }
        })
        .collect()
}

impl CredentialRecord {
    pub fn new(name: &str, m: Mechanism, c: &Credential) -> CredentialRecord {
        CredentialRecord {
            name: name.to_string(),
            mechanism: m.name().to_string(),
            iterations: c.iterations,
            salt: B64.encode(&c.salt),
            stored_key: B64.encode(&c.stored_key),
            server_key: B64.encode(&c.server_key),
        }
    }

    /// The mechanism and credential, or what is wrong with the record.
    pub fn decode(&self) -> Result<(Mechanism, Credential), String> {
        let m = Mechanism::from_name(&self.mechanism)
            .ok_or_else(|| format!("user {}: unknown mechanism {}", self.name, self.mechanism))?;
        let b = |what: &str, v: &str| {
            B64.decode(v)
                .map_err(|_| format!("user {}: {what} is not base64", self.name))
        };
        Ok((
            m,
            Credential {
                salt: b("salt", &self.salt)?,
                iterations: self.iterations,
                stored_key: b("stored_key", &self.stored_key)?,
                server_key: b("server_key", &self.server_key)?,
            },
        ))
    }
}

/// Every credential of `users` as records, by name then mechanism.
pub fn records(users: &Users) -> Vec<CredentialRecord> {
    users
        .iter()
        .flat_map(|(name, mechs)| {
            mechs
                .iter()
                .map(move |(m, c)| CredentialRecord::new(name, *m, c))
        })
        .collect()
}

/// Users from records; a record that does not decode is an error naming it.
pub fn from_records<'a>(
    records: impl IntoIterator<Item = &'a CredentialRecord>,
) -> Result<Users, String> {
    let mut users = Users::new();
    for r in records {
        let (m, c) = r.decode()?;
        users.entry(r.name.clone()).or_default().insert(m, c);
    }
    Ok(users)
}

pub fn encode(users: &Users) -> Vec<u8> {
    let users = records(users);
    let mut out = serde_json::to_vec_pretty(&FileForm {
        version: FILE_VERSION,
        users,
    })
    .expect("plain data serialises");
    out.push(b'\n');
    out
}

pub fn decode(bytes: &[u8]) -> Result<Users, String> {
    let f: FileForm =
        serde_json::from_slice(bytes).map_err(|e| format!("not a credentials file: {e}"))?;
    if f.version != FILE_VERSION {
        return Err(format!("version {} is not {FILE_VERSION}", f.version));
    }
    from_records(&f.users)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::ITERATIONS_MIN;

    #[test]
    fn persists_and_reopens_without_clear_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let store = UserStore::open(dir.path()).unwrap();
        assert!(store.snapshot().is_empty());
        let cred = Credential::from_password(Mechanism::Sha512, "hunter2", ITERATIONS_MIN);
        let out = store
            .apply_blocking(&[
                Change::Upsert {
                    name: "alice".into(),
                    mechanism: Mechanism::Sha512,
                    credential: cred.clone(),
                },
                Change::Delete {
                    name: "bob".into(),
                    mechanism: Mechanism::Sha256,
                },
            ])
            .unwrap();
        assert_eq!(out, vec![Ok(()), Err("bob".to_string())]);
        let text = std::fs::read_to_string(dir.path().join(CREDENTIALS_FILE)).unwrap();
        assert!(!text.contains("hunter2"));
        let again = UserStore::open(dir.path()).unwrap();
        assert_eq!(again.get("alice", Mechanism::Sha512), Some(cred));
        assert!(again.get("alice", Mechanism::Sha256).is_none());
        again
            .apply_blocking(&[Change::Delete {
                name: "alice".into(),
                mechanism: Mechanism::Sha512,
            }])
            .unwrap();
        assert!(UserStore::open(dir.path()).unwrap().snapshot().is_empty());
    }

    #[test]
    fn a_damaged_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CREDENTIALS_FILE), b"{").unwrap();
        let e = UserStore::open(dir.path()).err().unwrap();
        assert!(e.contains(CREDENTIALS_FILE), "{e}");
    }
}
