//! Platform I/O for storage, in one place: the only module that names glommio's
//! `DmaFile`. Every error leaves here as `StorageError::Io` naming the file.
//!
//! `DmaFile` is opened with O_DIRECT: positions and lengths of reads and writes are
//! multiples of [`PAGE_BYTES`], and buffers come from glommio's DMA allocator.
//! Operations with no io_uring equivalent (listing or removing a directory, small index,
//! snapshot and checkpoint files) go through [`blocking`], which runs `std::fs` on
//! glommio's blocking thread pool: the shard thread itself never blocks.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::{DmaFile, OpenOptions};

mod lent;

use super::recorder::{self, Op};
use super::StorageError;

/// O_DIRECT alignment we use for every position and length (also the page we keep in
/// memory for the tail of the active segment).
pub const PAGE_BYTES: u64 = 4096;

pub fn align_down(v: u64) -> u64 {
    v & !(PAGE_BYTES - 1)
}

pub fn align_up(v: u64) -> u64 {
    align_down(v + PAGE_BYTES - 1)
}

/// Runs `f` on glommio's blocking thread pool and awaits its result.
pub async fn blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    glommio::executor().spawn_blocking(f).await
}

/// A segment's `.log` file: an O_DIRECT `DmaFile` and its path for error messages.
/// Cheap to clone; reads may run while the writer task writes.
#[derive(Clone)]
pub struct LogFile {
    file: Rc<DmaFile>,
    path: Rc<PathBuf>,
}

impl LogFile {
    /// Opens `path` for reading and writing, creating it if `create`.
    pub async fn open(path: &Path, create: bool) -> Result<LogFile, StorageError> {
        super::fault::check(path)?;
        prime_iopoll_probe(path.parent().unwrap_or(Path::new("."))).await?;
        let created = create && recorder::covers(path) && !path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .dma_open(path)
            .await
            .map_err(|e| StorageError::io(path, e))?;
        if created {
            recorder::record(path, || Op::Create {
                path: path.to_owned(),
            });
        }
        Ok(LogFile {
            file: Rc::new(file),
            path: Rc::new(path.to_owned()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The same open file, named `path` in later error messages (it was renamed).
    pub fn renamed(self, path: &Path) -> LogFile {
        LogFile {
            file: self.file,
            path: Rc::new(path.to_owned()),
        }
    }

    /// Whether both handles are the same open file (not merely the same path): a
    /// segment the cleaner replaced has a new file under the old name.
    pub fn same_file(&self, other: &LogFile) -> bool {
        Rc::ptr_eq(&self.file, &other.file)
    }

    fn err(&self, e: impl Into<std::io::Error>) -> StorageError {
        StorageError::io(&self.path, e)
    }

    /// Writes `len` bytes at the page-aligned `pos` with one DMA write; `fill` fills the
    /// DMA buffer (so callers copy their data once, straight into it). `len` must be a
    /// multiple of [`PAGE_BYTES`]. A short write is an error.
    pub async fn write_aligned(
        &self,
        pos: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), StorageError> {
        assert_eq!(pos % PAGE_BYTES, 0, "unaligned write position {pos}");
        assert_eq!(len as u64 % PAGE_BYTES, 0, "unaligned write length {len}");
        super::fault::check(&self.path)?;
        #[cfg(test)]
        if faults::take_write_error() {
            return Err(self.err(std::io::Error::from_raw_os_error(libc::EIO)));
        }
        let mut buf = self.file.alloc_dma_buffer(len);
        fill(buf.as_bytes_mut());
        let journaled = recorder::covers(&self.path).then(|| buf.as_bytes().to_vec());
        let written = self
            .file
            .write_at(buf, pos)
            .await
            .map_err(|e| self.err(e))?;
        if written != len {
            return Err(self.err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write: {written} of {len} bytes at {pos}"),
            )));
        }
        if let Some(data) = journaled {
            recorder::record(&self.path, || Op::Write {
                path: self.path.to_path_buf(),
                pos,
                data,
            });
        }
        Ok(())
    }

    /// Reads `[pos, pos + len)` with one aligned DMA read of the covering pages and
    /// returns exactly that range; a range the file does not fully cover is an error
    /// (callers only read below a logical end they know). No copy: the DMA buffer is
    /// lent to the `Bytes` (`lent`), which any shard may send and drop.
    pub async fn read(&self, pos: u64, len: usize) -> Result<Bytes, StorageError> {
        lent::drop_returned();
        super::fault::check(&self.path)?;
        #[cfg(test)]
        faults::count_read();
        let start = align_down(pos);
        let end = align_up(pos + len as u64);
        let result = self
            .file
            .read_at_aligned(start, (end - start) as usize)
            .await
            .map_err(|e| self.err(e))?;
        let skip = (pos - start) as usize;
        if result.len() < skip + len {
            return Err(self.err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("read {len} bytes at {pos}: the file is shorter"),
            )));
        }
        Ok(lent::lend(result, skip, len))
    }

    pub async fn fdatasync(&self) -> Result<(), StorageError> {
        super::fault::check(&self.path)?;
        self.file.fdatasync().await.map_err(|e| self.err(e))?;
        recorder::record(&self.path, || Op::SyncFile {
            path: self.path.to_path_buf(),
        });
        Ok(())
    }

    pub async fn truncate(&self, size: u64) -> Result<(), StorageError> {
        super::fault::check(&self.path)?;
        self.file.truncate(size).await.map_err(|e| self.err(e))?;
        recorder::record(&self.path, || Op::SetLen {
            path: self.path.to_path_buf(),
            size,
        });
        Ok(())
    }

    /// Reserves blocks up to `size` and makes the file that long (zeros past the data),
    /// so appends inside it need no size change.
    pub async fn pre_allocate(&self, size: u64) -> Result<(), StorageError> {
        super::fault::check(&self.path)?;
        self.file
            .pre_allocate(size, false)
            .await
            .map_err(|e| self.err(e))?;
        recorder::record(&self.path, || Op::Allocate {
            path: self.path.to_path_buf(),
            size,
        });
        Ok(())
    }

    pub async fn size(&self) -> Result<u64, StorageError> {
        self.file.file_size().await.map_err(|e| self.err(e))
    }
}

thread_local! {
    /// Devices (st_dev) whose io_uring poll support this thread's glommio has probed.
    static PROBED_DEVICES: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
}

/// glommio 0.9 decides once per thread and device whether O_DIRECT reads may use the
/// io_uring poll ring, by reading the first page of the first `DmaFile` opened there.
/// If that file is empty (a new segment), the read succeeds trivially, glommio wrongly
/// concludes the device supports polling, and every later read fails with EOPNOTSUPP
/// on devices without poll queues (virtio, most VMs). So before the first `DmaFile` on
/// a device, open one with a page of data to make the probe meaningful.
async fn prime_iopoll_probe(dir: &Path) -> Result<(), StorageError> {
    let probe_dir = dir.to_owned();
    let device = blocking(move || {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&probe_dir)
            .map(|m| m.dev())
            .map_err(|e| StorageError::io(&probe_dir, e))
    })
    .await?;
    if PROBED_DEVICES.with(|p| p.borrow().contains(&device)) {
        return Ok(());
    }
    let path = dir.join(".corelog-iopoll-probe");
    let probe_path = path.clone();
    let written = blocking(move || {
        let written = write_new_file_blocking(&probe_path, &[0u8; PAGE_BYTES as usize]);
        if written.is_err() {
            let _ = std::fs::remove_file(&probe_path);
        }
        written
    })
    .await;
    let probe = match written {
        Ok(()) => path.clone(),
        // A full disk must still come up so that its records can be read: probe with a
        // file already on the device that holds a page (a segment of this partition or
        // of another in the same log dir), if there is one.
        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
            let search = dir.to_owned();
            let existing = blocking(move || {
                file_of_a_page_or_more(&search).or_else(|| {
                    let log_dir = search.parent()?;
                    std::fs::read_dir(log_dir)
                        .ok()?
                        .filter_map(Result::ok)
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .find_map(|e| file_of_a_page_or_more(&e.path()))
                })
            })
            .await;
            existing.ok_or_else(|| StorageError::io(&path, e))?
        }
        Err(e) => return Err(StorageError::io(&path, e)),
    };
    let file = DmaFile::open(&probe)
        .await
        .map_err(|e| StorageError::io(&probe, e))?;
    let _ = file.close().await;
    if probe == path {
        remove_file(&path).await?;
    }
    PROBED_DEVICES.with(|p| p.borrow_mut().insert(device));
    Ok(())
}

/// A regular file directly in `dir` at least a page long, if any.
fn file_of_a_page_or_more(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| {
            e.metadata()
                .is_ok_and(|m| m.is_file() && m.len() >= PAGE_BYTES)
        })
        .map(|e| e.path())
}

/// Reads a whole small file (an index); `None` if it does not exist.
pub async fn read_small_file(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    super::fault::check(path)?;
    let path = path.to_owned();
    blocking(move || match std::fs::read(&path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(&path, e)),
    })
    .await
}

/// Replaces a small file (an index) atomically: temp file, fsync, rename.
pub async fn write_small_file(path: &Path, data: Vec<u8>) -> Result<(), StorageError> {
    super::fault::check(path)?;
    let path = path.to_owned();
    blocking(move || {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        write_synced_file_blocking(&tmp, &data, 0o644).map_err(|e| StorageError::io(&tmp, e))?;
        rename_blocking(&tmp, &path).map_err(|e| StorageError::io(&path, e))
    })
    .await
}

/// Writes `data` to `path` so that a crash leaves either the old or the new file: the
/// temporary file `tmp` (created with permission bits `mode`, before the umask), fsync,
/// rename over `path`, fsync of the directory. Blocking: for start-up code and the
/// blocking pool (`util::write_file_atomic_blocking`, the checkpoint files).
pub fn write_file_atomic_blocking(
    path: &Path,
    tmp: &Path,
    data: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    write_synced_file_blocking(tmp, data, mode)?;
    rename_blocking(tmp, path)?;
    sync_dir_blocking(path.parent().unwrap_or(Path::new("."))).map_err(std::io::Error::other)
}

/// Creates or replaces the contents of `path` with `data` and fsyncs it (its directory
/// entry is not synced).
fn write_synced_file_blocking(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let existed = recorder::covers(path) && path.exists();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    record_created_or_emptied(path, existed);
    file.write_all(data)?;
    record_write(path, 0, data);
    file.sync_all()?;
    recorder::record(path, || Op::SyncFile {
        path: path.to_owned(),
    });
    Ok(())
}

/// Creates (or empties) `path` and writes `data`, with no sync at all.
fn write_new_file_blocking(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let existed = recorder::covers(path) && path.exists();
    std::fs::write(path, data)?;
    record_created_or_emptied(path, existed);
    record_write(path, 0, data);
    Ok(())
}

fn record_created_or_emptied(path: &Path, existed: bool) {
    recorder::record(path, || match existed {
        true => Op::SetLen {
            path: path.to_owned(),
            size: 0,
        },
        false => Op::Create {
            path: path.to_owned(),
        },
    });
}

fn record_write(path: &Path, pos: u64, data: &[u8]) {
    recorder::record(path, || Op::Write {
        path: path.to_owned(),
        pos,
        data: data.to_vec(),
    });
}

fn rename_blocking(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    recorder::record(from, || Op::Rename {
        from: from.to_owned(),
        to: to.to_owned(),
    });
    Ok(())
}

/// The file's modification time in ms since the epoch.
pub async fn modified_ms(path: &Path) -> Result<i64, StorageError> {
    let path = path.to_owned();
    blocking(move || {
        let modified = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .map_err(|e| StorageError::io(&path, e))?;
        Ok(modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64))
    })
    .await
}

/// Renames `from` to `to` (same directory; the caller syncs the directory).
pub async fn rename(from: &Path, to: &Path) -> Result<(), StorageError> {
    let (from, to) = (from.to_owned(), to.to_owned());
    blocking(move || rename_blocking(&from, &to).map_err(|e| StorageError::io(&from, e))).await
}

/// Appends `data` to `path` (created if missing), buffered by the page cache; the
/// cleaner writes its `.cleaned` files this way and fsyncs them with [`sync_file`].
pub async fn append_file(path: &Path, data: Vec<u8>) -> Result<(), StorageError> {
    let path = path.to_owned();
    blocking(move || {
        use std::io::Write;
        let append = || -> std::io::Result<()> {
            let existed = !recorder::covers(&path) || path.exists();
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            if !existed {
                record_created_or_emptied(&path, false);
            }
            let pos = file.metadata()?.len();
            file.write_all(&data)?;
            record_write(&path, pos, &data);
            Ok(())
        };
        append().map_err(|e| StorageError::io(&path, e))
    })
    .await
}

/// fsyncs the file at `path`.
pub async fn sync_file(path: &Path) -> Result<(), StorageError> {
    let path = path.to_owned();
    blocking(move || {
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| StorageError::io(&path, e))?;
        recorder::record(&path, || Op::SyncFile { path: path.clone() });
        Ok(())
    })
    .await
}

/// Removes a file; a missing file is fine.
pub async fn remove_file(path: &Path) -> Result<(), StorageError> {
    let path = path.to_owned();
    blocking(move || match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::io(&path, e)),
        Err(_) => Ok(()),
        Ok(()) => {
            recorder::record(&path, || Op::Unlink { path: path.clone() });
            Ok(())
        }
    })
    .await
}

/// Creates `dir` (and missing parents) and fsyncs its parent so the entry is durable.
pub async fn create_dir(dir: &Path) -> Result<(), StorageError> {
    super::fault::check(dir)?;
    let dir = dir.to_owned();
    blocking(move || {
        let missing: Vec<PathBuf> = match recorder::covers(&dir) {
            true => dir
                .ancestors()
                .take_while(|d| !d.exists())
                .map(Path::to_owned)
                .collect(),
            false => Vec::new(),
        };
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        for created in missing.into_iter().rev() {
            recorder::record(&created, || Op::Mkdir {
                path: created.clone(),
            });
        }
        sync_dir_blocking(dir.parent().unwrap_or(Path::new(".")))
    })
    .await
}

/// Fsyncs a directory, making created, renamed or removed entries durable.
pub async fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let dir = dir.to_owned();
    blocking(move || sync_dir_blocking(&dir)).await
}

fn sync_dir_blocking(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))?;
    recorder::record(dir, || Op::SyncDir {
        path: dir.to_owned(),
    });
    Ok(())
}

/// Names of the entries of `dir`.
pub async fn list_dir(dir: &Path) -> Result<Vec<String>, StorageError> {
    super::fault::check(dir)?;
    let dir = dir.to_owned();
    blocking(move || {
        let entries = std::fs::read_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(&dir, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        Ok(names)
    })
    .await
}

/// Removes `dir` and everything in it.
pub async fn remove_dir_all(dir: &Path) -> Result<(), StorageError> {
    let dir = dir.to_owned();
    blocking(move || {
        std::fs::remove_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        recorder::record(&dir, || Op::RemoveTree { path: dir.clone() });
        sync_dir_blocking(dir.parent().unwrap_or(Path::new(".")))
    })
    .await
}

/// Fault injection for tests: make the next DMA write on this thread fail with EIO.
/// Also counts this thread's DMA reads, so tests can prove what recovery did not read.
#[cfg(test)]
pub mod faults {
    use std::cell::Cell;

    thread_local! {
        static FAIL_NEXT_WRITE: Cell<bool> = const { Cell::new(false) };
        static DMA_READS: Cell<u64> = const { Cell::new(0) };
    }

    /// `LogFile::read` calls made on this thread so far.
    pub fn dma_reads() -> u64 {
        DMA_READS.with(|r| r.get())
    }

    pub(super) fn count_read() {
        DMA_READS.with(|r| r.set(r.get() + 1));
    }

    pub fn fail_next_write() {
        FAIL_NEXT_WRITE.with(|f| f.set(true));
    }

    pub(super) fn take_write_error() -> bool {
        FAIL_NEXT_WRITE.with(|f| f.replace(false))
    }
}
