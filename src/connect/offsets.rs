//! The standalone worker's source offsets (`offset.storage.file.filename`): for each
//! source connector and source partition (the file), the position after the last line
//! the broker acknowledged.
//!
//! Kafka writes this file as a serialized Java HashMap; corelog writes JSON (one object,
//! key `["<connector>",{"filename":"<path>"}]` → `{"position":N}`, Kafka's own key and
//! value shapes), so the file is readable but not interchangeable with Kafka's.
//! Writes go to a temporary file that is fsynced and renamed over the old one: a crash
//! leaves either the previous or the new positions, never a torn file.
//!
//! Concurrency: one store per worker behind a Mutex; tasks set and flush, each flush
//! writes every connector's positions.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct OffsetStore {
    path: PathBuf,
    /// Kafka-shaped key (JSON text) → position in bytes.
    positions: Mutex<BTreeMap<String, u64>>,
}

/// `["<connector>",{"filename":"<path>"}]`
pub fn source_key(connector: &str, file: &Path) -> String {
    serde_json::json!([connector, {"filename": file.display().to_string()}]).to_string()
}

impl OffsetStore {
    /// Loads `path` (absent: no positions yet).
    pub fn open(path: &Path) -> Result<OffsetStore, String> {
        let positions = match std::fs::read(path) {
            Ok(bytes) => parse(&bytes).map_err(|why| {
                format!(
                    "offset file {}: {why} (move it away to start every source from the beginning)",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read offset file {}: {e}", path.display())),
        };
        Ok(OffsetStore {
            path: path.to_path_buf(),
            positions: Mutex::new(positions),
        })
    }

    pub fn get(&self, key: &str) -> Option<u64> {
        self.lock().get(key).copied()
    }

    /// Records a position (in memory until the next `flush`).
    pub fn set(&self, key: &str, position: u64) {
        self.lock().insert(key.to_string(), position);
    }

    /// Writes every position to the offset file, durably.
    pub fn flush(&self) -> std::io::Result<()> {
        let positions = self.lock();
        let mut doc = serde_json::Map::new();
        for (k, p) in positions.iter() {
            doc.insert(k.clone(), serde_json::json!({ "position": p }));
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(serde_json::Value::Object(doc).to_string().as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        // A task that panicked while holding the lock left a consistent map (inserts
        // are single operations), so the positions are still good.
        self.positions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn parse(bytes: &[u8]) -> Result<BTreeMap<String, u64>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let obj = doc.as_object().ok_or("not a JSON object")?;
    obj.iter()
        .map(|(k, v)| {
            v.get("position")
                .and_then(serde_json::Value::as_u64)
                .map(|p| (k.clone(), p))
                .ok_or_else(|| format!("{k}: no position"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("connect.offsets");
        let store = OffsetStore::open(&path).unwrap();
        let key = source_key("local-file-source", Path::new("/x/test.txt"));
        assert_eq!(key, r#"["local-file-source",{"filename":"/x/test.txt"}]"#);
        assert_eq!(store.get(&key), None);
        store.set(&key, 42);
        store.flush().unwrap();
        let again = OffsetStore::open(&path).unwrap();
        assert_eq!(again.get(&key), Some(42));
        std::fs::write(&path, b"garbage").unwrap();
        let err = OffsetStore::open(&path).err().unwrap();
        assert!(err.contains("move it away"), "{err}");
    }
}
