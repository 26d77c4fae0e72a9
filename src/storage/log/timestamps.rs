//! Offsets by timestamp (ListOffsets with a timestamp, `offsets_for_times`) and the
//! record with the largest timestamp (ListOffsets -3, KIP-734).
//!
//! Segments know their largest timestamp (`SegmentIndex::max_timestamp`), so the search
//! skips to the first segment that has a record at or after the target; there the time
//! index gives an offset before which every record is older, and batches are read from
//! that point (cache or disk, like a Fetch) until one whose max timestamp reaches the
//! target. That batch is decoded, decompressing if needed, to find the exact record.
//! These are rare admin lookups, so decoding with the kafka-protocol crate is fine.

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::{PartitionLog, StorageError};
use crate::storage::batch::BatchHeader;

/// Bytes read per step of the scan.
const SCAN_READ_BYTES: usize = 1 << 20;

impl PartitionLog {
    /// The first record at or after `target` ms: its offset and timestamp, or `None`
    /// when every record is older (Kafka answers offset -1 then).
    pub async fn offset_for_timestamp(
        &self,
        target: i64,
    ) -> Result<Option<(i64, i64)>, StorageError> {
        let start = {
            let st = self.inner.state.borrow();
            st.check_usable(&self.inner.dir)?;
            let Some(segment) = st
                .segments
                .iter()
                .find(|s| s.index.max_timestamp().is_some_and(|m| m >= target))
            else {
                return Ok(None);
            };
            segment
                .index
                .search_start_for(target)
                .max(st.log_start_offset)
        };
        let mut offset = start;
        loop {
            let read = self.read(offset, SCAN_READ_BYTES).await?;
            if read.batches.is_empty() {
                return Ok(None);
            }
            for batch in read.batches {
                let header = BatchHeader::parse(&batch).ok_or_else(|| {
                    StorageError::Corrupt(format!("unparsable batch at offset {offset}"))
                })?;
                // A negative maxTimestamp is a client's unset one, stored before the
                // broker derived it: only the records know.
                let may_hold = header.max_timestamp >= target || header.max_timestamp < 0;
                if may_hold && !header.is_control() {
                    let found = record_times(&batch, &header)?
                        .into_iter()
                        .find(|&(o, ts)| o >= start && ts >= target);
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                offset = header.last_offset() + 1;
            }
        }
    }

    /// The record with the largest timestamp (the first such, in offset order): its
    /// offset and timestamp, or `None` for an empty log.
    pub async fn offset_of_max_timestamp(&self) -> Result<Option<(i64, i64)>, StorageError> {
        let (max, batch_last_offset) = {
            let st = self.inner.state.borrow();
            st.check_usable(&self.inner.dir)?;
            let mut best: Option<(i64, i64)> = None;
            for s in &st.segments {
                if let Some(m) = s.index.max_timestamp() {
                    if best.is_none_or(|(b, _)| m > b) {
                        best = Some((m, s.index.offset_of_max_timestamp()));
                    }
                }
            }
            match best {
                Some((m, o)) if o >= st.log_start_offset && o < st.written_offset => (m, o),
                _ => return Ok(None),
            }
        };
        let read = self.read(batch_last_offset, 1).await?;
        let Some(batch) = read.batches.first() else {
            return Ok(None);
        };
        let header = BatchHeader::parse(batch)
            .ok_or_else(|| StorageError::Corrupt("unparsable batch".into()))?;
        Ok(record_times(batch, &header)?
            .into_iter()
            .find(|&(_, ts)| ts == max)
            .or(Some((batch_last_offset, max))))
    }
}

/// (offset, timestamp) of every record of a batch. With log append time every record
/// carries the batch's max timestamp.
fn record_times(batch: &Bytes, header: &BatchHeader) -> Result<Vec<(i64, i64)>, StorageError> {
    if header.is_log_append_time() {
        return Ok((header.base_offset..=header.last_offset())
            .map(|o| (o, header.max_timestamp))
            .collect());
    }
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| {
        StorageError::Corrupt(format!(
            "cannot decode the batch at offset {}: {e}",
            header.base_offset
        ))
    })?;
    Ok(set
        .records
        .iter()
        .map(|r| (r.offset, r.timestamp))
        .collect())
}
