//! Transaction markers: the coordinator's COMMIT or ABORT appended to a partition as a
//! control batch (Kafka's layout: attributes transactional + control, one record whose
//! key is (version 0, type) and whose value is (version 0, coordinator epoch)). The
//! marker ends the producer's open transaction in the partition's producer state,
//! which moves the last stable offset, and an ABORT is remembered for read_committed
//! fetches.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::{AppendInfo, PartitionLog, PendingBatch, StorageError};
use crate::storage::batch::{patch_base_offset, patch_leader_epoch, split_and_validate};
use crate::storage::producer_state::{CONTROL_TYPE_ABORT, CONTROL_TYPE_COMMIT};

/// Version 0 of the control record key and of the marker value.
const CONTROL_RECORD_VERSION: i16 = 0;

/// The control batch of one marker, offsets and leader epoch still to be patched.
pub fn encode_marker(
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> BytesMut {
    let kind = if commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&CONTROL_RECORD_VERSION.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &[record], &options)
        .expect("an uncompressed control batch always encodes");
    buf
}

impl PartitionLog {
    /// (producer id, epoch, last sequence, open transaction's first offset or -1) of
    /// every producer the partition remembers, by id (DescribeProducers).
    pub fn producers(&self) -> Vec<(i64, i16, i32, i64)> {
        let st = self.inner.state.borrow();
        let mut out: Vec<(i64, i16, i32, i64)> = st
            .producers
            .iter()
            .map(|(id, e)| {
                let last_seq = e.batches.back().map_or(-1, |b| b.last_seq);
                (id, e.epoch, last_seq, e.txn_first_offset.unwrap_or(-1))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The base sequence a batch of (producer, epoch) must carry to be appended next:
    /// 0 for a producer or epoch the partition has not seen, else one past its last.
    /// For a coordinator writing on a producer's behalf (transactional offsets in
    /// `__consumer_offsets`); read and append on the same shard with no await between.
    pub fn next_sequence(&self, producer_id: i64, epoch: i16) -> i32 {
        let st = self.inner.state.borrow();
        let last = st
            .producers
            .iter()
            .find(|(id, _)| *id == producer_id)
            .filter(|(_, e)| e.epoch == epoch)
            .and_then(|(_, e)| e.batches.back().map(|b| b.last_seq));
        last.map_or(0, |last| if last == i32::MAX { 0 } else { last + 1 })
    }

    /// Appends the COMMIT (or ABORT) marker of `producer_id`'s transaction, as the
    /// coordinator asks (WriteTxnMarkers). A marker of an epoch older than the one the
    /// partition has seen is refused (INVALID_PRODUCER_EPOCH). Synchronous like
    /// `append`: the marker is queued for the writer; wait for it with `wait_durable`.
    pub fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<AppendInfo, StorageError> {
        let mut records = encode_marker(
            producer_id,
            epoch,
            commit,
            coordinator_epoch,
            crate::util::now_ms(),
        );
        let batch = split_and_validate(&records, usize::MAX)?
            .pop()
            .expect("one control batch");
        let mut st = self.inner.state.borrow_mut();
        st.check_usable(&self.inner.dir)?;
        if st.truncating.is_some() {
            return Err(StorageError::Truncated {
                offset: st.log_end_offset,
            });
        }
        st.producers.check_marker(producer_id, epoch)?;
        let base_offset = st.log_end_offset;
        let leader_epoch = st.leader_epoch;
        patch_base_offset(&mut records, base_offset);
        patch_leader_epoch(&mut records, leader_epoch);
        let write_epochs =
            st.epochs.assign(leader_epoch, base_offset) && Self::note_epochs_changed(&mut st);
        let mut header = batch.header;
        header.base_offset = base_offset;
        header.partition_leader_epoch = leader_epoch;
        st.producers
            .record_marker(producer_id, epoch, base_offset, !commit);
        st.log_end_offset = base_offset + 1;
        st.pending.push_back(PendingBatch {
            header,
            data: records.freeze(),
        });
        let info = AppendInfo {
            base_offset,
            last_offset: base_offset,
            log_append_time_ms: -1,
            log_start_offset: st.log_start_offset,
        };
        let spawn_writer = self.claim_writer(&mut st);
        drop(st);
        if spawn_writer {
            self.spawn_writer();
        }
        if write_epochs {
            self.spawn_epoch_writer();
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::super::{LogConfig, PartitionLog};
    use crate::storage::producer_state::AbortedTxn;
    use crate::storage::testutil::run;
    use crate::storage::StorageError;

    /// A transactional batch of `count` records from (pid, epoch) at `seq`.
    fn txn_batch(pid: i64, epoch: i16, seq: i32, count: i32) -> BytesMut {
        keyed_batch(pid, epoch, seq, &vec![("k", "v"); count as usize])
    }

    /// A batch of (key, value) records; transactional when `pid` >= 0.
    fn keyed_batch(pid: i64, epoch: i16, seq: i32, kvs: &[(&str, &str)]) -> BytesMut {
        let records: Vec<Record> = kvs
            .iter()
            .zip(0..)
            .map(|(&(k, v), i)| Record {
                transactional: pid >= 0,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                sequence: if pid >= 0 { seq + i } else { -1 },
                timestamp: crate::util::now_ms(),
                key: Some(Bytes::copy_from_slice(k.as_bytes())),
                value: Some(Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf
    }

    async fn open(dir: &std::path::Path) -> PartitionLog {
        let config = LogConfig {
            segment_bytes: 1 << 20,
            ..LogConfig::default()
        };
        PartitionLog::open(dir, "t", 0, config, 0, 0).await.unwrap()
    }

    #[test]
    fn markers_move_the_last_stable_offset_and_aborts_survive_a_reopen() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let log = open(tmp.path()).await;
            let first = log.append(txn_batch(5, 0, 0, 2)).unwrap();
            log.wait_durable(first.last_offset).await.unwrap();
            assert_eq!((log.high_watermark(), log.last_stable_offset()), (2, 0));
            assert!(log
                .read_committed(0, 1 << 20)
                .await
                .unwrap()
                .batches
                .is_empty());
            assert_eq!(log.read(0, 1 << 20).await.unwrap().batches.len(), 1);
            let abort = log.append_marker(5, 0, false, 0).unwrap();
            assert_eq!(abort.base_offset, 2);
            log.wait_durable(abort.last_offset).await.unwrap();
            assert_eq!(log.last_stable_offset(), 3);
            let read = log.read_committed(0, 1 << 20).await.unwrap();
            assert_eq!(read.batches.len(), 2);
            let aborted = AbortedTxn {
                producer_id: 5,
                first_offset: 0,
                last_offset: 2,
            };
            assert_eq!(read.aborted, vec![aborted]);
            // A fencing marker (newer epoch) commits; the old epoch's marker is refused.
            let second = log.append(txn_batch(5, 0, 2, 1)).unwrap();
            assert_eq!(log.last_stable_offset(), 3.min(second.base_offset));
            log.append_marker(5, 1, true, 0).unwrap();
            assert!(matches!(
                log.append_marker(5, 0, true, 0),
                Err(StorageError::InvalidProducerEpoch(_))
            ));
            // An open transaction of another producer, kept across a reopen.
            let open_txn = log.append(txn_batch(6, 0, 0, 1)).unwrap();
            log.wait_durable(open_txn.last_offset).await.unwrap();
            assert_eq!(log.last_stable_offset(), open_txn.base_offset);
            log.close().await.unwrap();
            let log = open(tmp.path()).await;
            assert_eq!(log.last_stable_offset(), open_txn.base_offset);
            let read = log.read_committed(0, 1 << 20).await.unwrap();
            assert_eq!(read.aborted, vec![aborted]);
            log.close().await.unwrap();
        });
    }

    #[test]
    fn compaction_drops_aborted_records_and_stops_at_the_last_stable_offset() {
        run(async {
            let tmp = tempfile::tempdir().unwrap();
            let config = LogConfig {
                segment_bytes: 1500,
                index_interval_bytes: 256,
                cleanup_compact: true,
                cleanup_delete: false,
                min_cleanable_dirty_ratio: 0.01,
                ..LogConfig::default()
            };
            let log = PartitionLog::open(tmp.path(), "t", 0, config, 0, 0)
                .await
                .unwrap();
            let filler = "f".repeat(60);
            let fill = |from: usize| {
                (from..from + 25)
                    .map(|i| log.append(keyed_batch(-1, -1, -1, &[(&format!("z{i}"), &filler)])))
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap()
            };
            log.append(keyed_batch(-1, -1, -1, &[("k", "committed")]))
                .unwrap();
            log.append(keyed_batch(5, 0, 0, &[("k", "aborted")]))
                .unwrap();
            log.append_marker(5, 0, false, 0).unwrap();
            fill(0);
            let open_txn = log.append(keyed_batch(6, 0, 0, &[("k", "open")])).unwrap();
            fill(100);
            log.wait_written(log.log_end_offset() - 1).await.unwrap();
            assert_eq!(log.last_stable_offset(), open_txn.base_offset);
            let limits = crate::storage::log::CleanLimits::default();
            assert!(log
                .clean(crate::util::now_ms(), &limits)
                .await
                .unwrap()
                .is_some());
            let mut values = Vec::new();
            let mut offset = log.log_start_offset();
            while offset < log.high_watermark() {
                let read = log.read(offset, 1 << 20).await.unwrap();
                for data in read.batches {
                    let header = crate::storage::batch::BatchHeader::parse(&data).unwrap();
                    offset = header.last_offset() + 1;
                    if header.is_control() {
                        continue;
                    }
                    let raw = crate::storage::records::records_section(&data, 1 << 20).unwrap();
                    for r in
                        crate::storage::records::parse_records(&raw, header.records_count).unwrap()
                    {
                        if r.key == Some(b"k".as_slice()) {
                            values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
                        }
                    }
                }
            }
            // The aborted value was dropped rather than kept as the latest; the open
            // transaction's record is past the last stable offset, left alone.
            assert_eq!(values, ["committed", "open"]);
            log.close().await.unwrap();
        });
    }
}
