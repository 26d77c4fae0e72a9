//! `corelog bench disk`: the disk's own fallocated O_DIRECT append bandwidth, the
//! denominator of issue 13's disk-bound row ("≥ 80 % of the disk's fallocated O_DIRECT
//! append bandwidth, measured in the same run").
//!
//! It appends to `--files` files in a directory of the disk with the broker's own write
//! path (`storage::io::LogFile`: `pre_allocate`, one DMA write of `--write-kib` per
//! append, `fdatasync`), all files at once on one glommio executor, for `--seconds`:
//! - `--sync each`: every append is followed by its file's fdatasync, as an acks=all
//!   produce of one large batch is (the broker may share one flush among several);
//! - `--sync end`: appends only, one fdatasync per file at the end (inside the time).
//!
//! Space is reserved ahead of the writer in `ALLOCATE_STEP_BYTES` steps (fallocate: the
//! writes land in unwritten extents, which each fdatasync converts, as a fresh segment's
//! do). The files are deleted at the end. No broker is involved.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::storage::io::LogFile;

/// How far ahead of the writer each file's space is reserved.
pub const ALLOCATE_STEP_BYTES: u64 = 64 << 20;
/// One append's size when --write-kib is not given: the disk-bound row's batch size.
pub const WRITE_KIB_DEFAULT: usize = 1024;
/// Files written at once when --files is not given: the disk-bound row's partitions.
pub const FILES_DEFAULT: usize = 8;
/// Seconds of writing when --seconds is not given.
pub const SECONDS_DEFAULT: u64 = 8;
/// Bounds that keep a mistyped option from filling a disk or locking too much memory.
pub const FILES_MAX: usize = 256;
pub const WRITE_KIB_MAX: usize = 16 << 10;
pub const SECONDS_MAX: u64 = 600;
/// The executor's registered I/O memory; larger writes use ordinary DMA buffers.
const IO_MEMORY_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Sync {
    /// An fdatasync after every append.
    Each,
    /// One fdatasync per file, at the end.
    End,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DiskArgs {
    /// A directory on the disk to measure (the broker's log dir's disk); a scratch
    /// subdirectory is created in it and deleted at the end.
    #[arg(long)]
    pub dir: PathBuf,
    /// Files appended to at once.
    #[arg(long, default_value_t = FILES_DEFAULT)]
    pub files: usize,
    /// KiB per append (a multiple of 4).
    #[arg(long, default_value_t = WRITE_KIB_DEFAULT)]
    pub write_kib: usize,
    /// Seconds of appending.
    #[arg(long, default_value_t = SECONDS_DEFAULT)]
    pub seconds: u64,
    /// When the appends are made durable.
    #[arg(long, value_enum, default_value = "each")]
    pub sync: Sync,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What one measurement found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskResult {
    pub files: usize,
    pub write_bytes: usize,
    pub sync: Sync,
    pub seconds: f64,
    pub writes: u64,
    pub fdatasyncs: u64,
    pub mb_per_sec: f64,
}

impl DiskArgs {
    fn validate(&self) -> Result<(), String> {
        if self.files == 0 || self.files > FILES_MAX {
            return Err(format!("--files must be 1..={FILES_MAX}"));
        }
        if self.write_kib == 0
            || !self.write_kib.is_multiple_of(4)
            || self.write_kib > WRITE_KIB_MAX
        {
            return Err(format!(
                "--write-kib must be a multiple of 4 in 4..={WRITE_KIB_MAX} (O_DIRECT writes whole pages)"
            ));
        }
        if self.seconds == 0 || self.seconds > SECONDS_MAX {
            return Err(format!("--seconds must be 1..={SECONDS_MAX}"));
        }
        Ok(())
    }
}

/// Measures on a glommio executor of its own thread; the scratch directory is removed
/// whatever happens.
pub fn measure(args: &DiskArgs) -> Result<DiskResult, String> {
    args.validate()?;
    let scratch = args
        .dir
        .join(format!(".corelog-bench-disk-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let run_args = args.clone();
    let run_dir = scratch.clone();
    let measured = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("bench-disk")
        .io_memory(IO_MEMORY_BYTES)
        .spawn(move || async move { append_for(&run_args, &run_dir).await })
        .map_err(|e| format!("cannot start an io_uring executor: {e}"))
        .and_then(|h| {
            h.join()
                .map_err(|e| format!("the disk probe failed: {e:?}"))
        });
    let removed = std::fs::remove_dir_all(&scratch);
    let result = measured??;
    removed.map_err(|e| format!("{}: {e}", scratch.display()))?;
    Ok(result)
}

async fn append_for(args: &DiskArgs, dir: &Path) -> Result<DiskResult, String> {
    let write_bytes = args.write_kib << 10;
    let mut files = Vec::with_capacity(args.files);
    for i in 0..args.files {
        let path = dir.join(format!("{i:08}.log"));
        files.push(
            LogFile::open(&path, true)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = files
        .into_iter()
        .map(|file| {
            let sync = args.sync;
            glommio::spawn_local(async move { append_one(file, write_bytes, sync, deadline).await })
        })
        .collect();
    let (mut writes, mut fdatasyncs) = (0, 0);
    for t in tasks {
        let (w, s) = t.await?;
        writes += w;
        fdatasyncs += s;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(DiskResult {
        files: args.files,
        write_bytes,
        sync: args.sync,
        seconds,
        writes,
        fdatasyncs,
        mb_per_sec: (writes * write_bytes as u64) as f64 / seconds / 1e6,
    })
}

/// Appends to one file until `deadline`; returns (writes, fdatasyncs).
async fn append_one(
    file: LogFile,
    write_bytes: usize,
    sync: Sync,
    deadline: Instant,
) -> Result<(u64, u64), String> {
    let err = |e: crate::storage::StorageError| e.to_string();
    let (mut pos, mut allocated, mut writes, mut syncs) = (0u64, 0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        if pos + write_bytes as u64 > allocated {
            allocated += ALLOCATE_STEP_BYTES.max(write_bytes as u64);
            file.pre_allocate(allocated).await.map_err(err)?;
        }
        // Not zeros: a device or a thin volume may treat zero pages specially.
        let tag = (pos / write_bytes as u64) as u8;
        file.write_aligned(pos, write_bytes, |b| b.fill(tag | 1))
            .await
            .map_err(err)?;
        writes += 1;
        pos += write_bytes as u64;
        if sync == Sync::Each {
            file.fdatasync().await.map_err(err)?;
            syncs += 1;
        }
    }
    if sync == Sync::End {
        file.fdatasync().await.map_err(err)?;
        syncs += 1;
    }
    Ok((writes, syncs))
}

pub fn render_text(r: &DiskResult) -> String {
    format!(
        "disk: {:.1} MB/s of O_DIRECT appends into fallocated space ({} files, {} KiB per write, fdatasync {}), {} writes and {} fdatasyncs in {:.1} s\n",
        r.mb_per_sec,
        r.files,
        r.write_bytes >> 10,
        match r.sync {
            Sync::Each => "after each",
            Sync::End => "at the end",
        },
        r.writes,
        r.fdatasyncs,
        r.seconds
    )
}

/// `corelog bench disk`: exit 0 measured, 2 bad options or the directory cannot be used.
pub fn main(args: &DiskArgs) -> std::process::ExitCode {
    match measure(args) {
        Ok(r) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&r).expect("a result always serializes")
                );
            } else {
                print!("{}", render_text(&r));
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("corelog bench disk: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path, sync: Sync) -> DiskArgs {
        DiskArgs {
            dir: dir.to_owned(),
            files: 2,
            write_kib: 64,
            seconds: 1,
            sync,
            json: false,
        }
    }

    #[test]
    fn it_appends_syncs_as_asked_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let each = measure(&args(dir.path(), Sync::Each)).unwrap();
        assert!(each.writes > 0);
        assert_eq!(each.fdatasyncs, each.writes);
        assert_eq!(each.write_bytes, 64 << 10);
        let end = measure(&args(dir.path(), Sync::End)).unwrap();
        assert_eq!(end.fdatasyncs, 2);
        assert!(end.mb_per_sec > 0.0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn bad_options_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            DiskArgs {
                files: 0,
                ..args(dir.path(), Sync::End)
            },
            DiskArgs {
                write_kib: 6,
                ..args(dir.path(), Sync::End)
            },
            DiskArgs {
                seconds: 0,
                ..args(dir.path(), Sync::End)
            },
        ] {
            assert!(measure(&bad).is_err());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
