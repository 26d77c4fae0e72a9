//! The Raft log of the metadata quorum, on disk in `<first log dir>/__cluster_metadata-0/`
//! (Kafka's directory name for the KRaft log).
//!
//! ```text
//!  log      [len u32][crc32c u32][JSON entry] ... appended, fsynced before the ack
//!  vote     JSON Vote, replaced atomically (temp file, fsync, rename)
//!  purged   JSON LogId of the last entry removed by a snapshot, replaced atomically
//! ```
//!
//! Metadata is small, so every entry is also kept in memory; truncation and purging
//! rewrite the log file atomically. A torn or corrupt tail (a crash mid-append) is cut at
//! the first bad frame when the log is opened: those entries were never acknowledged.
//! Runs on the controller thread only; its blocking file I/O never touches a shard.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::Write;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote,
};

use super::TypeConfig;

/// One frame's header: length and CRC32C of the JSON that follows.
const FRAME_HEADER_BYTES: usize = 8;
/// Bound on one entry's JSON; a larger length field is a corrupt tail.
const ENTRY_BYTES_MAX: usize = 64 << 20;

type Error = StorageError<u64>;

fn any(e: impl std::fmt::Display) -> AnyError {
    AnyError::error(e.to_string())
}

/// The entries in memory, shared with the readers openraft's replication tasks hold.
type Entries = Arc<Mutex<BTreeMap<u64, Entry<TypeConfig>>>>;

pub struct LogStore {
    dir: PathBuf,
    entries: Entries,
    vote: Option<Vote<u64>>,
    purged: Option<LogId<u64>>,
    file: std::fs::File,
}

impl LogStore {
    /// Opens (creating) the log in `dir`, cutting a torn tail.
    pub fn open(dir: &Path) -> std::io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("log");
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let (entries, valid) = decode_frames(&data);
        if valid < data.len() {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = data.len() - valid,
                "cutting a torn tail off the metadata log"
            );
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        file.set_len(valid as u64)?;
        file.sync_all()?;
        let vote = read_json(&dir.join("vote"))?;
        let purged = read_json(&dir.join("purged"))?;
        Ok(LogStore {
            dir: dir.to_owned(),
            entries: Arc::new(Mutex::new(
                entries.into_iter().map(|e| (e.log_id.index, e)).collect(),
            )),
            vote,
            purged,
            file,
        })
    }

    /// Rewrites the log file from memory (after a truncate or purge).
    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut data = Vec::new();
        for entry in self.entries.lock().expect("log lock").values() {
            encode_frame(entry, &mut data)?;
        }
        let path = self.dir.join("log");
        crate::util::write_file_atomic_blocking(&path, &data)?;
        self.file = std::fs::OpenOptions::new().append(true).open(&path)?;
        Ok(())
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(d) => serde_json::from_slice(&d)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn encode_frame(entry: &Entry<TypeConfig>, out: &mut Vec<u8>) -> std::io::Result<()> {
    let json = serde_json::to_vec(entry)?;
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&json).to_be_bytes());
    out.extend_from_slice(&json);
    Ok(())
}

/// The whole frames of `data` and the length of that valid prefix.
fn decode_frames(data: &[u8]) -> (Vec<Entry<TypeConfig>>, usize) {
    let mut entries = Vec::new();
    let mut pos = 0;
    while data.len() - pos >= FRAME_HEADER_BYTES {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().expect("4 bytes"));
        let start = pos + FRAME_HEADER_BYTES;
        if len > ENTRY_BYTES_MAX || data.len() - start < len {
            break;
        }
        let json = &data[start..start + len];
        if crc32c::crc32c(json) != crc {
            break;
        }
        match serde_json::from_slice(json) {
            Ok(entry) => entries.push(entry),
            Err(_) => break,
        }
        pos = start + len;
    }
    (entries, pos)
}

/// Reads come from memory: a reader shares the store's entries.
pub struct LogReader {
    entries: Entries,
}

fn read_range(entries: &Entries, range: impl RangeBounds<u64>) -> Vec<Entry<TypeConfig>> {
    let entries = entries.lock().expect("log lock");
    entries.range(range).map(|(_, e)| e.clone()).collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, Error> {
        Ok(read_range(&self.entries, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, Error> {
        Ok(read_range(&self.entries, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, Error> {
        let last = self
            .entries
            .lock()
            .expect("log lock")
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(self.purged);
        Ok(LogState {
            last_purged_log_id: self.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            entries: Arc::clone(&self.entries),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), Error> {
        let json = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(any(e)))?;
        crate::util::write_file_atomic_blocking(&self.dir.join("vote"), &json)
            .map_err(|e| StorageIOError::write_vote(any(e)))?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, Error> {
        Ok(self.vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), Error>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut data = Vec::new();
        let mut added = Vec::new();
        for entry in entries {
            encode_frame(&entry, &mut data).map_err(|e| StorageIOError::write_logs(any(e)))?;
            added.push(entry);
        }
        let result = self
            .file
            .write_all(&data)
            .and_then(|()| self.file.sync_data());
        // Entries become readable only once durable: a failed write leaves memory as the
        // file is (openraft stops the node on a storage error).
        let error = match &result {
            Ok(()) => {
                let mut entries = self.entries.lock().expect("log lock");
                for entry in added {
                    entries.insert(entry.log_id.index, entry);
                }
                None
            }
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "metadata log append failed");
                Some(StorageIOError::write_logs(any(e)).into())
            }
        };
        callback.log_io_completed(result);
        error.map_or(Ok(()), Err)
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), Error> {
        self.entries
            .lock()
            .expect("log lock")
            .split_off(&log_id.index);
        self.rewrite()
            .map_err(|e| StorageIOError::write_logs(any(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), Error> {
        let json = serde_json::to_vec(&log_id).map_err(|e| StorageIOError::write_logs(any(e)))?;
        crate::util::write_file_atomic_blocking(&self.dir.join("purged"), &json)
            .map_err(|e| StorageIOError::write_logs(any(e)))?;
        self.purged = Some(log_id);
        {
            let mut entries = self.entries.lock().expect("log lock");
            *entries = entries.split_off(&(log_id.index + 1));
        }
        self.rewrite()
            .map_err(|e| StorageIOError::write_logs(any(e)).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::Command;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Command::FenceBroker {
                node_id: index as i32,
                incarnation: "i".into(),
                at_ms: 0,
            }),
        }
    }

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_cut() {
        let mut data = Vec::new();
        for i in 1..=3 {
            encode_frame(&entry(i), &mut data).unwrap();
        }
        let whole = data.len();
        let (entries, valid) = decode_frames(&data);
        assert_eq!((entries.len(), valid), (3, whole));
        encode_frame(&entry(4), &mut data).unwrap();
        for cut in [whole + 3, data.len() - 1] {
            let (entries, valid) = decode_frames(&data[..cut]);
            assert_eq!((entries.len(), valid), (3, whole), "cut at {cut}");
        }
        let mut flipped = data.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        assert_eq!(decode_frames(&flipped).1, whole);
    }

    #[test]
    fn reopen_keeps_entries_vote_and_purge() {
        let tmp = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut store = LogStore::open(tmp.path()).unwrap();
            let mut data = Vec::new();
            for i in 1..=5 {
                encode_frame(&entry(i), &mut data).unwrap();
            }
            store.file.write_all(&data).unwrap();
            drop(store);
            let mut store = LogStore::open(tmp.path()).unwrap();
            assert_eq!(store.try_get_log_entries(0..).await.unwrap().len(), 5);
            store.save_vote(&Vote::new(3, 2)).await.unwrap();
            store.truncate(entry(5).log_id).await.unwrap();
            store.purge(entry(2).log_id).await.unwrap();
            drop(store);
            let mut store = LogStore::open(tmp.path()).unwrap();
            let indexes: Vec<u64> = store
                .try_get_log_entries(0..)
                .await
                .unwrap()
                .iter()
                .map(|e| e.log_id.index)
                .collect();
            assert_eq!(indexes, [3, 4]);
            assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
            let state = store.get_log_state().await.unwrap();
            assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(2));
            assert_eq!(state.last_log_id.map(|l| l.index), Some(4));
        });
    }
}
