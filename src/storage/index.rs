//! Kafka's sparse indexes of one segment, kept in memory and written as files.
//!
//! `.index`: 8-byte entries (offset relative to the segment base u32 BE, byte position
//! u32 BE). An entry `(o, p)` says: the batch whose last offset is `o` starts at `p`. A
//! new entry is added when more than `index.interval.bytes` were appended since the last
//! one (Kafka's rule, so the files match what Kafka writes for the same batches).
//!
//! `.timeindex`: 12-byte entries (timestamp i64 BE, relative offset u32 BE), added at the
//! same moments with the largest timestamp seen so far in the segment and the last
//! offset of the batch that carried it, only when that timestamp grew.
//!
//! The entries are a pure function of the segment's batches, so recovery recomputes
//! them while it scans and rewrites a file only when it is missing or differs. Below the
//! recovery point recovery loads them from the files instead ([`OffsetIndex::from_bytes`],
//! [`SegmentIndex::resume`]) after a sanity check, and reads no batch at all.

use super::batch::BatchHeader;

pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;
/// Default of `index.interval.bytes`.
pub const INDEX_INTERVAL_BYTES_DEFAULT: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetIndex {
    base_offset: i64,
    /// (relative offset, position), both strictly increasing.
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    pub fn new(base_offset: i64) -> Self {
        OffsetIndex {
            base_offset,
            entries: Vec::new(),
        }
    }

    pub fn entries(&self) -> &[(u32, u32)] {
        &self.entries
    }

    pub fn append(&mut self, offset: i64, position: u32) {
        let relative = offset - self.base_offset;
        assert!(
            (0..=u32::MAX as i64).contains(&relative),
            "offset {offset} outside segment based at {}",
            self.base_offset
        );
        let relative = relative as u32;
        if let Some(&(last_rel, last_pos)) = self.entries.last() {
            assert!(
                relative > last_rel && position > last_pos,
                "index entry ({relative}, {position}) after ({last_rel}, {last_pos})"
            );
        }
        self.entries.push((relative, position));
    }

    /// The largest entry whose offset is <= `target`, as (absolute offset, position);
    /// `(base_offset, 0)` if there is none. Scanning the log from that position finds the
    /// batch containing `target`.
    pub fn lookup(&self, target: i64) -> (i64, u32) {
        let n = self
            .entries
            .partition_point(|&(rel, _)| self.base_offset + rel as i64 <= target);
        match n {
            0 => (self.base_offset, 0),
            n => {
                let (rel, pos) = self.entries[n - 1];
                (self.base_offset + rel as i64, pos)
            }
        }
    }

    /// Parses a `.index` file; `None` unless it is whole entries, strictly increasing in
    /// offset and position.
    pub fn from_bytes(base_offset: i64, data: &[u8]) -> Option<OffsetIndex> {
        if !data.len().is_multiple_of(OFFSET_INDEX_ENTRY_BYTES) {
            return None;
        }
        let entries: Vec<(u32, u32)> = data
            .chunks_exact(OFFSET_INDEX_ENTRY_BYTES)
            .map(|e| (be_u32(&e[0..4]), be_u32(&e[4..8])))
            .collect();
        let increasing = entries
            .windows(2)
            .all(|w| w[1].0 > w[0].0 && w[1].1 > w[0].1);
        increasing.then_some(OffsetIndex {
            base_offset,
            entries,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * OFFSET_INDEX_ENTRY_BYTES);
        for &(rel, pos) in &self.entries {
            out.extend_from_slice(&rel.to_be_bytes());
            out.extend_from_slice(&pos.to_be_bytes());
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeIndex {
    base_offset: i64,
    /// (timestamp, relative offset), timestamps strictly increasing.
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub fn new(base_offset: i64) -> Self {
        TimeIndex {
            base_offset,
            entries: Vec::new(),
        }
    }

    pub fn entries(&self) -> &[(i64, u32)] {
        &self.entries
    }

    /// Appends unless `timestamp` is not larger than the last entry's.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        if self.entries.last().is_some_and(|&(ts, _)| timestamp <= ts) {
            return;
        }
        let relative = offset - self.base_offset;
        assert!(
            (0..=u32::MAX as i64).contains(&relative),
            "offset {offset} outside segment based at {}",
            self.base_offset
        );
        if let Some(&(_, last_rel)) = self.entries.last() {
            assert!(relative as u32 >= last_rel, "time index offsets went back");
        }
        self.entries.push((timestamp, relative as u32));
    }

    /// Parses a `.timeindex` file; `None` unless it is whole entries with strictly
    /// increasing timestamps and non-decreasing offsets.
    pub fn from_bytes(base_offset: i64, data: &[u8]) -> Option<TimeIndex> {
        if !data.len().is_multiple_of(TIME_INDEX_ENTRY_BYTES) {
            return None;
        }
        let entries: Vec<(i64, u32)> = data
            .chunks_exact(TIME_INDEX_ENTRY_BYTES)
            .map(|e| {
                let ts = i64::from_be_bytes(e[0..8].try_into().expect("8 bytes"));
                (ts, be_u32(&e[8..12]))
            })
            .collect();
        let increasing = entries
            .windows(2)
            .all(|w| w[1].0 > w[0].0 && w[1].1 >= w[0].1);
        increasing.then_some(TimeIndex {
            base_offset,
            entries,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_INDEX_ENTRY_BYTES);
        for &(ts, rel) in &self.entries {
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(&rel.to_be_bytes());
        }
        out
    }
}

/// Both indexes of a segment and the state that decides when to add entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    pub offsets: OffsetIndex,
    pub times: TimeIndex,
    interval_bytes: u32,
    bytes_since_entry: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

impl SegmentIndex {
    /// Heap bytes of both indexes' entries (at capacity, as laid out in memory): for the
    /// memory gauges.
    pub fn heap_bytes(&self) -> usize {
        self.offsets.entries.capacity() * std::mem::size_of::<(u32, u32)>()
            + self.times.entries.capacity() * std::mem::size_of::<(i64, u32)>()
    }

    pub fn new(base_offset: i64, interval_bytes: u32) -> Self {
        SegmentIndex {
            offsets: OffsetIndex::new(base_offset),
            times: TimeIndex::new(base_offset),
            interval_bytes,
            bytes_since_entry: 0,
            max_timestamp: i64::MIN,
            offset_of_max_timestamp: base_offset,
        }
    }

    /// Indexes loaded from a segment's files, cut back to the last offset entry at or
    /// below `target`, and set up to go on indexing from there. Returns the index, the
    /// position of that entry's batch and the entry's (= that batch's last) offset, or
    /// position 0 and `None` when no entry is kept. The caller walks the segment from the
    /// returned position, calling [`Self::on_batch`] for every batch including the one
    /// at that position (which adds no entry): the result equals a rebuild from byte 0.
    ///
    /// Why that holds: right after an offset entry is added, `bytes_since_entry` is 0
    /// before its batch is counted, and the last time entry holds the running maximum
    /// timestamp and its offset (a time entry is skipped only when that maximum did not
    /// grow). Time entries added later carry offsets past the entry's batch, so the time
    /// entries at or below the entry's offset are exactly those that existed then.
    ///
    /// `None` when the files are inconsistent with each other (offset entries but no
    /// time entry).
    pub fn resume(
        mut offsets: OffsetIndex,
        mut times: TimeIndex,
        interval_bytes: u32,
        target: i64,
    ) -> Option<(SegmentIndex, u32, Option<i64>)> {
        let base_offset = offsets.base_offset;
        let kept = offsets
            .entries
            .partition_point(|&(rel, _)| base_offset + rel as i64 <= target);
        offsets.entries.truncate(kept);
        let Some(&(entry_rel, position)) = offsets.entries.last() else {
            return Some((SegmentIndex::new(base_offset, interval_bytes), 0, None));
        };
        let kept_times = times.entries.partition_point(|&(_, rel)| rel <= entry_rel);
        times.entries.truncate(kept_times);
        let &(max_timestamp, max_rel) = times.entries.last()?;
        let index = SegmentIndex {
            offsets,
            times,
            interval_bytes,
            bytes_since_entry: 0,
            max_timestamp,
            offset_of_max_timestamp: base_offset + max_rel as i64,
        };
        Some((index, position, Some(base_offset + entry_rel as i64)))
    }

    /// Records a batch appended to the segment at `position`. Batches come in log order.
    pub fn on_batch(&mut self, header: &BatchHeader, position: u32) {
        // A negative maxTimestamp (-1: no timestamp) is never indexed, as in Kafka, so a
        // segment's largest timestamp is one a record really has.
        if header.max_timestamp >= 0 && header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        if self.bytes_since_entry > self.interval_bytes as u64 {
            self.offsets.append(header.last_offset(), position);
            self.times
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += header.size() as u64;
    }

    /// The largest batch max timestamp in the segment, if any batch was seen.
    pub fn max_timestamp(&self) -> Option<i64> {
        (self.max_timestamp != i64::MIN).then_some(self.max_timestamp)
    }

    /// The last offset of the first batch holding `max_timestamp`.
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }

    /// The time index as written when the segment is finished (roll or close): with a
    /// last entry for the newest maximum (Kafka adds one when a segment becomes
    /// inactive), so that a reopened sealed segment knows its largest timestamp, which
    /// time-based retention and timestamp lookups need, without reading its data.
    pub fn finished_times(&self) -> TimeIndex {
        let mut times = self.times.clone();
        if let Some(max) = self.max_timestamp() {
            times.maybe_append(max, self.offset_of_max_timestamp);
        }
        times
    }

    /// For a sealed segment loaded from its files: takes its whole time index, whose
    /// last entry is the segment's largest timestamp (see `finished_times`).
    pub fn absorb_sealed_times(&mut self, times: TimeIndex) {
        if let Some(&(ts, rel)) = times.entries.last() {
            if ts > self.max_timestamp {
                self.max_timestamp = ts;
                self.offset_of_max_timestamp = times.base_offset + rel as i64;
            }
        }
        self.times = times;
    }

    /// Whether the time index holds a negative timestamp: written before the broker
    /// derived maxTimestamp from the records, when a client's -1 was indexed as is.
    /// Such a segment's time index is rebuilt from its records at start-up.
    pub fn has_unset_timestamps(times: &TimeIndex) -> bool {
        times
            .entries
            .iter()
            .any(|&(ts, _)| ts < 0 && ts != i64::MIN)
    }

    /// The offset to start a search for the first record with a timestamp at or after
    /// `target`: the offset of the newest time entry whose timestamp is below it (every
    /// record up to that offset is older than `target`), or the segment's base.
    pub fn search_start_for(&self, target: i64) -> i64 {
        let n = self.times.entries.partition_point(|&(ts, _)| ts < target);
        match n.checked_sub(1) {
            Some(i) => self.times.base_offset + self.times.entries[i].1 as i64,
            None => self.times.base_offset,
        }
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(base_offset: i64, last_offset_delta: i32, size: usize, max_ts: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: (size - 12) as i32,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta,
            base_timestamp: max_ts,
            max_timestamp: max_ts,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records_count: last_offset_delta + 1,
        }
    }

    #[test]
    fn lookup_finds_largest_entry_at_or_below_target() {
        let mut index = OffsetIndex::new(100);
        assert_eq!(index.lookup(150), (100, 0));
        index.append(109, 4200);
        index.append(119, 8400);
        index.append(129, 12600);
        assert_eq!(index.lookup(100), (100, 0));
        assert_eq!(index.lookup(108), (100, 0));
        assert_eq!(index.lookup(109), (109, 4200));
        assert_eq!(index.lookup(118), (109, 4200));
        assert_eq!(index.lookup(119), (119, 8400));
        assert_eq!(index.lookup(1_000_000), (129, 12600));
        assert_eq!(
            index.to_bytes(),
            [
                0, 0, 0, 9, 0, 0, 0x10, 0x68, 0, 0, 0, 19, 0, 0, 0x20, 0xd0, 0, 0, 0, 29, 0, 0,
                0x31, 0x38
            ]
        );
    }

    #[test]
    #[should_panic(expected = "index entry")]
    fn non_monotonic_entry_is_a_bug() {
        let mut index = OffsetIndex::new(0);
        index.append(10, 100);
        index.append(10, 200);
    }

    #[test]
    fn resuming_from_the_files_at_any_entry_equals_a_full_rebuild() {
        // Batches of varying sizes with timestamps that sometimes go back or repeat.
        let mut batches = Vec::new();
        let mut position = 0u32;
        for i in 0..200i64 {
            let size = 300 + (i as usize * 37) % 900;
            let ts = 1000 + (i * 7) % 50 + i / 3;
            batches.push((header(i * 4, 3, size, ts), position));
            position += size as u32;
        }
        let mut full = SegmentIndex::new(0, 1024);
        for (h, pos) in &batches {
            full.on_batch(h, *pos);
        }
        let entries = full.offsets.entries().len();
        assert!(entries > 20 && full.times.entries().len() < entries);
        let offsets = OffsetIndex::from_bytes(0, &full.offsets.to_bytes()).unwrap();
        let times = TimeIndex::from_bytes(0, &full.times.to_bytes()).unwrap();
        assert_eq!((&offsets, &times), (&full.offsets, &full.times));
        for target in [-1, 0, 5, 100, 101, 402, 555, 799, 10_000] {
            let (mut index, pos, expect) =
                SegmentIndex::resume(offsets.clone(), times.clone(), 1024, target).unwrap();
            let at = batches.partition_point(|(_, p)| *p < pos);
            assert_eq!(batches[at].1, pos, "target {target}");
            assert_eq!(expect.map(|e| e <= target), (pos > 0).then_some(true));
            assert_eq!(expect, (pos > 0).then(|| batches[at].0.last_offset()));
            for (h, p) in &batches[at..] {
                index.on_batch(h, *p);
            }
            assert_eq!(index, full, "target {target}");
        }
        // Malformed files are refused.
        assert!(OffsetIndex::from_bytes(0, &[0; 7]).is_none());
        let mut swapped = full.offsets.to_bytes();
        swapped.rotate_left(OFFSET_INDEX_ENTRY_BYTES);
        assert!(OffsetIndex::from_bytes(0, &swapped).is_none());
        assert!(TimeIndex::from_bytes(0, &[0; 13]).is_none());
    }

    #[test]
    fn entries_follow_the_interval_rule() {
        let mut index = SegmentIndex::new(0, 4096);
        let mut position = 0u32;
        // 10 batches of 1000 bytes, 10 records each, timestamps growing except batch 5.
        for i in 0..10i64 {
            let ts = if i == 5 { 1 } else { 1000 + i };
            let h = header(i * 10, 9, 1000, ts);
            index.on_batch(&h, position);
            position += 1000;
        }
        // More than 4096 bytes accumulated before batches 5 and 10 -> entry at batch 5 only
        // (after 5 batches = 5000 bytes > 4096).
        assert_eq!(index.offsets.entries(), &[(59, 5000)]);
        assert_eq!(index.times.entries(), &[(1004, 49)]);
        assert_eq!(index.max_timestamp(), Some(1009));
        assert_eq!(index.times.to_bytes().len(), TIME_INDEX_ENTRY_BYTES);
    }
}
