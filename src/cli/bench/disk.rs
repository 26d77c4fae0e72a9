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
//! do). With `--prewritten` each step is first written with zeros and made durable
//! (untimed), so the appends overwrite written blocks and an fdatasync has no extent to
//! convert, as the broker's appends do behind its zeros ahead. The files are deleted at
//! the end. No broker is involved.
//!
//! Each append is timed from the start of its write to the end of its fdatasync (`--sync
//! each`) or of its write (`--sync end`): the device's own latency for a durable append,
//! the floor under a broker's acks=all latency on that disk. `--rate` paces each file's
//! appends (per second; 0 = back to back), so the floor can be read at a broker row's
//! request rate rather than at saturation.

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
/// Bound on --rate, appends per second per file.
pub const RATE_MAX: u64 = 1_000_000;
/// One zero write of a `--prewritten` step.
const ZERO_WRITE_BYTES: usize = 1 << 20;

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
    /// Appends per second per file, evenly spaced (0: back to back).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Write zeros over the reserved space first (untimed), so appends overwrite
    /// written blocks as the broker's do.
    #[arg(long)]
    pub prewritten: bool,
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
    /// Appends per second per file asked (0: back to back).
    #[serde(default)]
    pub rate: u64,
    #[serde(default)]
    pub prewritten: bool,
    /// Each append's time, write start to durable (or written, with `--sync end`).
    #[serde(default)]
    pub append_us: Percentiles,
}

/// Append latency percentiles, microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    fn of(h: &hdrhistogram::Histogram<u64>) -> Percentiles {
        Percentiles {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
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
        if self.rate > RATE_MAX {
            return Err(format!("--rate must be 0..={RATE_MAX} appends per second"));
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
    let plan = Plan {
        write_bytes,
        sync: args.sync,
        interval: (args.rate > 0).then(|| Duration::from_secs(1) / args.rate as u32),
        prewritten: args.prewritten,
        deadline,
    };
    let tasks: Vec<_> = files
        .into_iter()
        .map(|file| glommio::spawn_local(async move { append_one(file, plan).await }))
        .collect();
    let (mut writes, mut fdatasyncs, mut latency) = (0, 0, super::stats::new_hist());
    for t in tasks {
        let done = t.await?;
        writes += done.writes;
        fdatasyncs += done.syncs;
        latency
            .add(&done.latency)
            .map_err(|e| format!("latency histogram: {e}"))?;
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
        rate: args.rate,
        prewritten: args.prewritten,
        append_us: Percentiles::of(&latency),
    })
}

/// How each file is appended to.
#[derive(Clone, Copy)]
struct Plan {
    write_bytes: usize,
    sync: Sync,
    /// Between two appends' starts (`--rate`), none back to back.
    interval: Option<Duration>,
    prewritten: bool,
    deadline: Instant,
}

/// One file's appends.
struct Appended {
    writes: u64,
    syncs: u64,
    latency: hdrhistogram::Histogram<u64>,
}

/// Appends to one file until the plan's deadline.
async fn append_one(file: LogFile, plan: Plan) -> Result<Appended, String> {
    let err = |e: crate::storage::StorageError| e.to_string();
    let write_bytes = plan.write_bytes as u64;
    let (mut pos, mut allocated) = (0u64, 0u64);
    let mut done = Appended {
        writes: 0,
        syncs: 0,
        latency: super::stats::new_hist(),
    };
    let mut next = Instant::now();
    while Instant::now() < plan.deadline {
        if pos + write_bytes > allocated {
            let from = allocated;
            allocated += ALLOCATE_STEP_BYTES.max(write_bytes);
            file.pre_allocate(allocated).await.map_err(err)?;
            if plan.prewritten {
                zero(&file, from, allocated).await.map_err(err)?;
            }
        }
        if let Some(interval) = plan.interval {
            let now = Instant::now();
            if next > now {
                glommio::timer::sleep(next - now).await;
            }
            // A late append does not make up for lost time: the pace stays even.
            next = next.max(now) + interval;
        }
        let started = Instant::now();
        // Not zeros: a device or a thin volume may treat zero pages specially.
        let tag = (pos / write_bytes) as u8;
        file.write_aligned(pos, plan.write_bytes, |b| b.fill(tag | 1))
            .await
            .map_err(err)?;
        done.writes += 1;
        pos += write_bytes;
        if plan.sync == Sync::Each {
            file.fdatasync().await.map_err(err)?;
            done.syncs += 1;
        }
        let us = started.elapsed().as_micros().max(1) as u64;
        done.latency.saturating_record(us);
    }
    if plan.sync == Sync::End {
        file.fdatasync().await.map_err(err)?;
        done.syncs += 1;
    }
    Ok(done)
}

/// Writes zeros over `from..to` and makes them durable (`--prewritten`).
async fn zero(file: &LogFile, from: u64, to: u64) -> Result<(), crate::storage::StorageError> {
    let mut pos = from;
    while pos < to {
        let len = ZERO_WRITE_BYTES.min((to - pos) as usize);
        file.write_aligned(pos, len, |b| b.fill(0)).await?;
        pos += len as u64;
    }
    file.fdatasync().await
}

pub fn render_text(r: &DiskResult) -> String {
    let l = &r.append_us;
    format!(
        "disk: {:.1} MB/s of O_DIRECT appends into {} space ({} files, {} KiB per write, {}, fdatasync {}), {} writes and {} fdatasyncs in {:.1} s\n\
         disk: each append {}: p50 {} us, p99 {} us, p99.9 {} us, max {} us\n",
        r.mb_per_sec,
        if r.prewritten { "written (zeroed)" } else { "fallocated" },
        r.files,
        r.write_bytes >> 10,
        if r.rate > 0 {
            format!("{} per second per file", r.rate)
        } else {
            "back to back".to_string()
        },
        match r.sync {
            Sync::Each => "after each",
            Sync::End => "at the end",
        },
        r.writes,
        r.fdatasyncs,
        r.seconds,
        match r.sync {
            Sync::Each => "write + fdatasync",
            Sync::End => "write",
        },
        l.p50,
        l.p99,
        l.p999,
        l.max
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
            rate: 0,
            prewritten: false,
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
    fn paced_appends_into_written_space_are_timed_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let paced = measure(&DiskArgs {
            files: 1,
            write_kib: 4,
            rate: 50,
            prewritten: true,
            ..args(dir.path(), Sync::Each)
        })
        .unwrap();
        // 50 per second for one second: the pace holds the count (a slow disk may
        // fall behind it, never ahead).
        assert!((1..=51).contains(&paced.writes), "{}", paced.writes);
        assert_eq!(paced.fdatasyncs, paced.writes);
        let l = &paced.append_us;
        assert!(l.p50 >= 1 && l.p50 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max);
        assert!(render_text(&paced).contains("written (zeroed) space"));
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
            DiskArgs {
                rate: RATE_MAX + 1,
                ..args(dir.path(), Sync::End)
            },
        ] {
            assert!(measure(&bad).is_err());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
