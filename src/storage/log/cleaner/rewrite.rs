//! One group of sealed segments rewritten into a cleaned segment, and the crash-safe
//! swap that puts it in their place (the steps are in the parent module's doc).

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::WRITE_BUFFER_BYTES;
use super::{faults, min_opt, Cleaned, OffsetMap, Plan, SegmentReader, Source, Throttle};
use crate::storage::batch::BatchHeader;
use crate::storage::index::SegmentIndex;
use crate::storage::io::{self, LogFile};
use crate::storage::log::{PartitionLog, StorageError};
use crate::storage::records::{self, Filtered};
use crate::storage::segment::{file_name, Segment};

pub(super) struct GroupJob<'a> {
    pub(super) plan: &'a Plan,
    pub(super) map: &'a OffsetMap,
    pub(super) now_ms: i64,
}

/// The cleaned form of one batch: what to write, and the delete horizon it carries if
/// it keeps a tombstone.
fn clean_batch(
    job: &GroupJob<'_>,
    header: &BatchHeader,
    data: &Bytes,
    removed: &mut u64,
) -> Result<(Option<Bytes>, Option<i64>), StorageError> {
    if header.is_control() {
        return Ok((Some(data.clone()), None));
    }
    if job.plan.is_aborted(header) {
        *removed += header.records_count.max(0) as u64;
        return Ok((None, None));
    }
    let parsed = records::records_section(data, job.plan.inflated_max).and_then(|raw| {
        let views = records::parse_records(&raw, header.records_count)?;
        let has_horizon = records::has_delete_horizon(header);
        let mut keep = Vec::with_capacity(views.len());
        let mut tombstones = false;
        for r in &views {
            let offset = header.base_offset + r.offset_delta as i64;
            let latest = r.key.is_some_and(|key| {
                job.map
                    .latest
                    .get(key)
                    .is_none_or(|&latest| offset >= latest)
            });
            let expired = has_horizon && header.base_timestamp <= job.now_ms;
            let kept = latest && !(r.is_tombstone && expired);
            tombstones |= kept && r.is_tombstone;
            keep.push(kept);
        }
        *removed += keep.iter().filter(|k| !**k).count() as u64;
        let set_horizon = (tombstones && !has_horizon)
            .then(|| job.now_ms.saturating_add(job.plan.delete_retention_ms));
        let horizon = tombstones.then(|| set_horizon.unwrap_or(header.base_timestamp));
        let filtered = records::filter_batch(data, &views, &keep, set_horizon)?;
        Ok((filtered, horizon))
    });
    match parsed {
        Ok((Filtered::Unchanged, horizon)) => Ok((Some(data.clone()), horizon)),
        Ok((Filtered::Empty, _)) => Ok((None, None)),
        Ok((Filtered::Rebuilt(out), horizon)) => Ok((Some(Bytes::from(out)), horizon)),
        Err(error) => {
            // A batch the cleaner cannot read (e.g. it inflates past the bound) is kept
            // whole rather than failing the log: it was accepted once.
            tracing::warn!(offset = header.base_offset, %error, "cleaner keeps a batch it cannot read");
            Ok((Some(data.clone()), None))
        }
    }
}

/// The files one group is written to.
struct CleanedFiles {
    log: PathBuf,
    index: PathBuf,
    time_index: PathBuf,
}

impl CleanedFiles {
    fn new(dir: &Path, base: i64) -> CleanedFiles {
        let named = |ext: &str| dir.join(format!("{}.cleaned", file_name(base, ext)));
        CleanedFiles {
            log: named("log"),
            index: named("index"),
            time_index: named("timeindex"),
        }
    }

    async fn remove(&self) -> Result<(), StorageError> {
        for path in [&self.log, &self.index, &self.time_index] {
            io::remove_file(path).await?;
        }
        Ok(())
    }
}

/// The new segment of one group, written and fsynced, not yet swapped in.
struct Written {
    /// Some batch was rewritten or dropped.
    changed: bool,
    size: u64,
    index: SegmentIndex,
    horizon_due: Option<i64>,
}

impl PartitionLog {
    /// Rewrites one group into a cleaned segment and swaps it in. `Ok(None)`: the log
    /// changed under the cleaner (retention, DeleteRecords); the pass is abandoned.
    pub(super) async fn clean_group(
        &self,
        job: &GroupJob<'_>,
        group: Vec<Source>,
        throttle: &mut Throttle,
        cleaned: &mut Cleaned,
    ) -> Result<Option<Option<i64>>, StorageError> {
        let base = group[0].base;
        let files = CleanedFiles::new(&self.inner.dir, base);
        files.remove().await?;
        let written = write_group(job, &group, &files, throttle, cleaned).await?;
        if !written.changed && group.len() == 1 {
            // The same bytes again (an already clean segment): nothing to swap.
            files.remove().await?;
            return Ok(Some(written.horizon_due));
        }
        cleaned.segments_in += group.len();
        cleaned.cleaned_bytes += group.iter().map(|s| s.size).sum::<u64>();
        cleaned.segments_out += 1;
        cleaned.written_bytes += written.size;
        let file = LogFile::open(&files.log, false).await?;
        let file = file.renamed(&self.inner.dir.join(file_name(base, "log")));
        let segment_bytes = self.config().segment_bytes;
        let next_offset = group.last().expect("a group has segments").next_offset;
        let mut new = Segment::sealed(
            file,
            base,
            written.size,
            written.index,
            next_offset,
            segment_bytes,
        );
        // Time retention's floor stays the originals' last append, not the rewrite.
        if let Some(last) = group.iter().filter_map(|s| s.last_write_ms).max() {
            new.learn_last_write_ms(last);
        }
        if !self.swap_in_memory(&group, new) {
            files.remove().await?;
            return Ok(None);
        }
        let result = self.swap_on_disk(&group, &files).await;
        self.inner.state.borrow_mut().cleaner.swapping = false;
        result?;
        Ok(Some(written.horizon_due))
    }

    /// Step 2 of the swap: replaces the group's segments by `new` if they are still
    /// the log's, and drops cached batches of the rewritten range.
    fn swap_in_memory(&self, group: &[Source], new: Segment) -> bool {
        let mut st = self.inner.state.borrow_mut();
        if st.failure.is_some() || st.closed || st.cleaner.swapping || st.truncating.is_some() {
            return false;
        }
        let Some(at) = st
            .segments
            .iter()
            .position(|s| s.base_offset == group[0].base)
        else {
            return false;
        };
        let sealed = st.segments.len() - 1;
        let same = at + group.len() <= sealed
            && st.segments[at..at + group.len()]
                .iter()
                .zip(group)
                .all(|(s, g)| s.base_offset == g.base && s.size() == g.size);
        if !same {
            return false;
        }
        st.segments.splice(at..at + group.len(), [new]);
        crate::storage::log::readahead::forget_gone_files(&mut st);
        let end = group.last().expect("a group has segments").next_offset;
        st.cache.drop_below(end);
        st.cleaner.swapping = true;
        true
    }

    /// Steps 3 and 4 of the swap (see the module comment).
    async fn swap_on_disk(
        &self,
        group: &[Source],
        files: &CleanedFiles,
    ) -> Result<(), StorageError> {
        let dir = &self.inner.dir;
        let base = group[0].base;
        let swap = |ext: &str| dir.join(format!("{}.swap", file_name(base, ext)));
        for (from, ext) in [
            (&files.index, "index"),
            (&files.time_index, "timeindex"),
            (&files.log, "log"),
        ] {
            io::rename(from, &swap(ext)).await?;
        }
        io::sync_dir(dir).await?;
        faults::maybe_crash(faults::Step::Committed)?;
        for source in group {
            for ext in ["log", "index", "timeindex"] {
                let path = dir.join(file_name(source.base, ext));
                let deleted = dir.join(format!("{}.deleted", file_name(source.base, ext)));
                match io::rename(&path, &deleted).await {
                    Err(StorageError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    other => other?,
                }
            }
            faults::maybe_crash(faults::Step::OldRenamed)?;
        }
        for ext in ["index", "timeindex", "log"] {
            io::rename(&swap(ext), &dir.join(file_name(base, ext))).await?;
        }
        io::sync_dir(dir).await?;
        faults::maybe_crash(faults::Step::Swapped)?;
        for source in group {
            for ext in ["log", "index", "timeindex"] {
                io::remove_file(&dir.join(format!("{}.deleted", file_name(source.base, ext))))
                    .await?;
            }
        }
        Ok(())
    }
}

/// Step 1 of the swap: writes the group's kept batches and its index files.
async fn write_group(
    job: &GroupJob<'_>,
    group: &[Source],
    files: &CleanedFiles,
    throttle: &mut Throttle,
    cleaned: &mut Cleaned,
) -> Result<Written, StorageError> {
    let mut index = SegmentIndex::new(group[0].base, job.plan.index_interval_bytes);
    let mut size = 0u64;
    let mut horizon_due = None;
    let mut changed = false;
    let mut buffer: Vec<u8> = Vec::with_capacity(WRITE_BUFFER_BYTES);
    for source in group {
        let mut reader = SegmentReader::new(source);
        while let Some(batches) = reader.next_chunk().await? {
            let mut read = 0u64;
            let mut written = 0u64;
            for (header, data) in &batches {
                read += data.len() as u64;
                let (out, horizon) = clean_batch(job, header, data, &mut cleaned.records_removed)?;
                changed |= out.as_ref() != Some(data);
                horizon_due = min_opt(horizon_due, horizon);
                let Some(out) = out else { continue };
                let out_header = BatchHeader::parse(&out).expect("a whole batch");
                index.on_batch(&out_header, size as u32);
                size += out.len() as u64;
                buffer.extend_from_slice(&out);
            }
            if buffer.len() >= WRITE_BUFFER_BYTES {
                written += buffer.len() as u64;
                io::append_file(&files.log, std::mem::take(&mut buffer)).await?;
            }
            cleaned.read_bytes += read;
            throttle.account(read + written).await;
        }
    }
    io::append_file(&files.log, buffer).await?;
    io::sync_file(&files.log).await?;
    faults::maybe_crash(faults::Step::Written)?;
    io::append_file(&files.index, index.offsets.to_bytes()).await?;
    io::sync_file(&files.index).await?;
    io::append_file(&files.time_index, index.finished_times().to_bytes()).await?;
    io::sync_file(&files.time_index).await?;
    Ok(Written {
        changed,
        size,
        index,
        horizon_due,
    })
}
