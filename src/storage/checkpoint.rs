//! Kafka's offset checkpoint files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`) at the root of each log dir:
//!
//! ```text
//! 0                 <- version
//! 2                 <- number of entries
//! orders 0 1234     <- topic partition offset
//! orders 1 99
//! ```
//!
//! The `*_blocking` functions use `std::fs`; they are for start-up and shutdown only, or
//! for the async wrappers below, which run them on glommio's blocking thread pool so a
//! periodic checkpoint never blocks a shard.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::StorageError;

pub const RECOVERY_POINT_CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT_FILE: &str = "log-start-offset-checkpoint";
/// Kafka's cleaner checkpoint: per partition, the offset below which it is cleaned.
pub const CLEANER_OFFSET_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
const CHECKPOINT_VERSION: u32 = 0;
/// A checkpoint lists every partition of a log dir; bound what we accept from disk.
const CHECKPOINT_ENTRIES_MAX: usize = 1_000_000;

/// (topic, partition) -> offset.
pub type Checkpoint = BTreeMap<(String, i32), i64>;

fn corrupt(path: &Path, what: String) -> StorageError {
    StorageError::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed checkpoint file: {what}"),
        ),
    )
}

/// Reads a checkpoint file; a missing file is an empty checkpoint.
pub fn read_checkpoint_blocking(path: &Path) -> Result<Checkpoint, StorageError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Checkpoint::new()),
        Err(e) => return Err(StorageError::io(path, e)),
    };
    parse(path, &text)
}

/// Parses the text of a checkpoint file (`path` names it in errors). Public for the
/// fuzz target `checkpoint_files`.
pub fn parse(path: &Path, text: &str) -> Result<Checkpoint, StorageError> {
    let mut lines = text.lines();
    let version = lines.next().unwrap_or("").trim();
    if version != CHECKPOINT_VERSION.to_string() {
        return Err(corrupt(path, format!("unsupported version {version:?}")));
    }
    let count_line = lines.next().unwrap_or("").trim();
    let count: usize = count_line
        .parse()
        .map_err(|_| corrupt(path, format!("bad entry count {count_line:?}")))?;
    if count > CHECKPOINT_ENTRIES_MAX {
        return Err(corrupt(path, format!("{count} entries is too many")));
    }
    let mut entries = Checkpoint::new();
    for line in lines.by_ref().take(count) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let parsed = match fields.as_slice() {
            [topic, partition, offset] => partition
                .parse::<i32>()
                .ok()
                .zip(offset.parse::<i64>().ok())
                .map(|(p, o)| ((topic.to_string(), p), o)),
            _ => None,
        };
        let (key, offset) = parsed.ok_or_else(|| corrupt(path, format!("bad line {line:?}")))?;
        entries.insert(key, offset);
    }
    if entries.len() != count {
        return Err(corrupt(
            path,
            format!("{count} entries announced, {} found", entries.len()),
        ));
    }
    Ok(entries)
}

/// Writes `<path>.tmp`, fsyncs it, renames it over `path` and fsyncs the directory, so a
/// crash leaves either the old or the new checkpoint.
pub fn write_checkpoint_blocking(path: &Path, entries: &Checkpoint) -> Result<(), StorageError> {
    let mut text = format!("{CHECKPOINT_VERSION}\n{}\n", entries.len());
    for ((topic, partition), offset) in entries {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    super::io::write_file_atomic_blocking(path, &tmp_path(path), text.as_bytes(), 0o644)
        .map_err(|e| StorageError::io(path, e))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// [`read_checkpoint_blocking`] on glommio's blocking thread pool.
pub async fn read_checkpoint(path: &Path) -> Result<Checkpoint, StorageError> {
    let path = path.to_owned();
    super::io::blocking(move || read_checkpoint_blocking(&path)).await
}

/// [`write_checkpoint_blocking`] on glommio's blocking thread pool.
pub async fn write_checkpoint(path: &Path, entries: Checkpoint) -> Result<(), StorageError> {
    let path = path.to_owned();
    super::io::blocking(move || write_checkpoint_blocking(&path, &entries)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECOVERY_POINT_CHECKPOINT_FILE);
        assert!(read_checkpoint_blocking(&path).unwrap().is_empty());
        let mut entries = Checkpoint::new();
        entries.insert(("orders".into(), 0), 1234);
        entries.insert(("orders".into(), 1), 0);
        entries.insert(("a.b_c-d".into(), 17), i64::MAX);
        write_checkpoint_blocking(&path, &entries).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "0\n3\na.b_c-d 17 9223372036854775807\norders 0 1234\norders 1 0\n"
        );
        assert_eq!(read_checkpoint_blocking(&path).unwrap(), entries);
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn async_round_trip_on_executor() {
        crate::storage::testutil::run(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(LOG_START_OFFSET_CHECKPOINT_FILE);
            let mut entries = Checkpoint::new();
            entries.insert(("t".into(), 3), 42);
            write_checkpoint(&path, entries.clone()).await.unwrap();
            assert_eq!(read_checkpoint(&path).await.unwrap(), entries);
        });
    }

    #[test]
    fn malformed_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        for bad in [
            "1\n0\n",
            "0\n2\nt 0 1\n",
            "0\n1\nt x 1\n",
            "0\n1\nt 0\n",
            "",
        ] {
            fs::write(&path, bad).unwrap();
            assert!(
                matches!(
                    read_checkpoint_blocking(&path),
                    Err(StorageError::Io { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }
}
