//! The data path on the partitions a shard owns: appends with their acks, reads for
//! Fetch (and the long-poll waits), ListOffsets.

use futures::future::{join_all, select_all, FutureExt, LocalBoxFuture};

use super::*;

impl Shard {
    /// Appends now (so the log order is the order of calls) and returns a future that
    /// resolves when `acks` is satisfied for every partition.
    pub fn produce_local(
        &self,
        acks: i16,
        items: Vec<ProduceItem>,
    ) -> LocalBoxFuture<'static, Vec<ProduceResult>> {
        let append_started = crate::metrics::now();
        let appended: Vec<_> = items
            .into_iter()
            .map(|item| {
                let log = self
                    .log_checked(&item.topic, item.partition)
                    .map_err(|code| ProduceResult::error(code, None))?;
                let Some(records) = item.records else {
                    return Err(ProduceResult::error(
                        ec::CORRUPT_MESSAGE,
                        Some("no records".into()),
                    ));
                };
                let min_insync = log.min_insync_replicas();
                let replicated = self.replicated_isr(&item.topic, item.partition);
                let isr = replicated.unwrap_or(1);
                if acks == -1 && min_insync as usize > isr {
                    return Err(ProduceResult::error(
                        ec::NOT_ENOUGH_REPLICAS,
                        Some(format!(
                            "min.insync.replicas is {min_insync} but this partition has {isr} in-sync replica(s)"
                        )),
                    ));
                }
                match log.append(records) {
                    Ok(info) => Ok((log, info, replicated.is_some())),
                    Err(e) => Err(storage_error(&item.topic, item.partition, e)),
                }
            })
            .collect();
        crate::metrics::record_since(Stage::ProduceAppend, append_started);
        let queued = append_started.map(|_| std::time::Instant::now());
        async move {
            let waits = appended.into_iter().map(|r| async move {
                let (log, info, replicated) = r?;
                // acks=0 gets no answer, but still waits for its write: that wait is what
                // bounds a connection's queued bytes (INFLIGHT_REQUESTS_MAX requests), as
                // Kafka mutes a connection until its request is appended.
                let waited = match acks {
                    0 | 1 => {
                        let w = log.wait_written(info.last_offset).await;
                        crate::metrics::record_since(Stage::ProduceWrite, queued);
                        w
                    }
                    // acks=all: on this disk, then (replicated) on every ISR member.
                    _ => match wait_durable_timed(&log, info.last_offset, queued).await {
                        Ok(()) if replicated => {
                            let synced = crate::metrics::now();
                            let w = log.wait_high_watermark(info.last_offset).await;
                            crate::metrics::record_since(Stage::ProduceReplicate, synced);
                            w
                        }
                        other => other,
                    },
                };
                waited
                    .map_err(|e| ProduceResult::error(e.kafka_error_code(), Some(e.to_string())))?;
                Ok(ProduceResult {
                    error_code: ec::NONE,
                    error_message: None,
                    base_offset: info.base_offset,
                    log_append_time_ms: info.log_append_time_ms,
                    log_start_offset: info.log_start_offset,
                })
            });
            join_all(waits)
                .await
                .into_iter()
                .map(|r: Result<ProduceResult, ProduceResult>| r.unwrap_or_else(|e| e))
                .collect()
        }
        .boxed_local()
    }

    /// Reads `items` in order within one response's budget, `response_bytes_max`: each
    /// partition reads at most what is left of it, and once some batch has been read a
    /// partition with nothing left is answered without reading (Kafka's rule: only the
    /// first batch of a response may go past the limit). So what a Fetch makes this shard
    /// hold is bounded by the response size, not by the sum of partition limits.
    pub async fn fetch_local(
        self: &Rc<Self>,
        items: Vec<FetchItem>,
        response_bytes_max: usize,
    ) -> Vec<FetchResult> {
        let started = crate::metrics::now();
        let out = self.fetch_local_untimed(items, response_bytes_max).await;
        crate::metrics::record_since(Stage::FetchRead, started);
        out
    }

    async fn fetch_local_untimed(
        self: &Rc<Self>,
        items: Vec<FetchItem>,
        response_bytes_max: usize,
    ) -> Vec<FetchResult> {
        let mut out = Vec::with_capacity(items.len());
        let mut left_bytes = response_bytes_max;
        let mut read_any = false;
        for item in items {
            let log = match self.log_checked(&item.topic, item.partition) {
                Ok(log) => log,
                Err(code) => {
                    out.push(FetchResult::error(code));
                    continue;
                }
            };
            if item.follower_read && !self.serves_follower_reads(&item.topic, item.partition, &log)
            {
                out.push(FetchResult::error(ec::NOT_LEADER_OR_FOLLOWER));
                continue;
            }
            if read_any && left_bytes == 0 {
                out.push(position_only(&log, item.offset));
                continue;
            }
            let max_bytes = item.max_bytes.min(left_bytes);
            let read = match item.replica {
                Some(replica) => {
                    self.note_follower_fetch(
                        &item.topic,
                        item.partition,
                        replica,
                        (item.offset, item.replica_log_start),
                        &log,
                    );
                    match self.leader_throttle(&item.topic, item.partition, replica) {
                        None => log.read_replica(item.offset, max_bytes).await,
                        Some(budget) => match budget.read_cap(max_bytes) {
                            Some(cap) => {
                                let read = log.read_replica(item.offset, cap).await;
                                if let Ok(r) = &read {
                                    budget.spend(r.batches.iter().map(|b| b.len()).sum());
                                }
                                read
                            }
                            None => {
                                out.push(throttled(&log, item.offset));
                                continue;
                            }
                        },
                    }
                }
                None if item.read_committed => log.read_committed(item.offset, max_bytes).await,
                None => log.read(item.offset, max_bytes).await,
            };
            if let Ok(r) = &read {
                let bytes: usize = r.batches.iter().map(|b| b.len()).sum();
                left_bytes = left_bytes.saturating_sub(bytes);
                read_any |= bytes > 0;
            }
            out.push(match read {
                Ok(r) => FetchResult {
                    error_code: ec::NONE,
                    high_watermark: r.high_watermark,
                    log_start_offset: r.log_start_offset,
                    last_stable_offset: r.last_stable_offset,
                    aborted: r
                        .aborted
                        .iter()
                        .map(|a| (a.producer_id, a.first_offset))
                        .collect(),
                    batches: r.batches,
                    throttled: false,
                },
                Err(e) => FetchResult {
                    error_code: e.kafka_error_code(),
                    high_watermark: log.high_watermark(),
                    log_start_offset: log.log_start_offset(),
                    last_stable_offset: log.last_stable_offset(),
                    aborted: Vec::new(),
                    batches: Vec::new(),
                    throttled: false,
                },
            });
        }
        out
    }

    /// Resolves when any listed partition has data past its offset (or is unknown, so
    /// the caller re-fetches and reports the error).
    pub fn wait_for_data_local(&self, items: &[FetchItem]) -> LocalBoxFuture<'static, ()> {
        let mut waits: Vec<LocalBoxFuture<'static, ()>> = Vec::new();
        for item in items {
            match self.log_checked(&item.topic, item.partition) {
                Ok(log) if item.replica.is_some() => {
                    waits.push(log.wait_for_written(item.wait_past).boxed_local())
                }
                Ok(log) => waits.push(log.wait_for_data(item.wait_past).boxed_local()),
                Err(_) => return futures::future::ready(()).boxed_local(),
            }
        }
        if waits.is_empty() {
            return futures::future::pending().boxed_local();
        }
        select_all(waits).map(|_| ()).boxed_local()
    }

    /// Resolves when any listed partition has data past its offset, or after `wait`.
    pub fn wait_for_data_until(
        &self,
        items: &[FetchItem],
        wait: std::time::Duration,
    ) -> LocalBoxFuture<'static, ()> {
        let data = self.wait_for_data_local(items);
        let timer = crate::runtime::sleep(wait).boxed_local();
        futures::future::select(data, timer)
            .map(|_| ())
            .boxed_local()
    }

    /// Answers ListOffsets for partitions this shard owns: earliest (-2, -4), latest
    /// (-1, -5), the record with the largest timestamp (-3), or the first record at or
    /// after a timestamp (offset -1 when there is none, as Kafka answers).
    pub async fn list_offsets_local(&self, items: Vec<OffsetQuery>) -> Vec<OffsetAnswer> {
        let mut out = Vec::with_capacity(items.len());
        for q in items {
            let answer = |offset: i64, timestamp: i64| OffsetAnswer {
                error_code: ec::NONE,
                offset,
                timestamp,
            };
            let log = match self.log_checked(&q.topic, q.partition) {
                Ok(log) => log,
                Err(code) => {
                    out.push(OffsetAnswer {
                        error_code: code,
                        offset: -1,
                        timestamp: -1,
                    });
                    continue;
                }
            };
            let found = match q.timestamp {
                // No tiered storage: earliest local is earliest, latest tiered is latest.
                -2 | -4 => Ok(Some((log.log_start_offset(), -1))),
                -1 | -5 if q.read_committed => Ok(Some((log.last_stable_offset(), -1))),
                -1 | -5 => Ok(Some((log.high_watermark(), -1))),
                -3 => log.offset_of_max_timestamp().await,
                ts if ts >= 0 => log.offset_for_timestamp(ts).await,
                _ => {
                    out.push(OffsetAnswer {
                        error_code: ec::UNSUPPORTED_VERSION,
                        offset: -1,
                        timestamp: -1,
                    });
                    continue;
                }
            };
            out.push(match found {
                Ok(Some((offset, ts))) => answer(offset, ts),
                Ok(None) => answer(-1, -1),
                Err(e) => OffsetAnswer {
                    error_code: e.kafka_error_code(),
                    offset: -1,
                    timestamp: -1,
                },
            });
        }
        out
    }
}

/// `log.wait_durable(offset)`, recording the wait for the write and then for the
/// fdatasync as two stages when `queued` (metrics are recorded) is set. Both waits are
/// registered at once, so the writer knows at once that a sync is wanted: timing does
/// not change when the fdatasync starts.
async fn wait_durable_timed(
    log: &PartitionLog,
    offset: i64,
    queued: Option<std::time::Instant>,
) -> Result<(), StorageError> {
    let Some(queued) = queued else {
        return log.wait_durable(offset).await;
    };
    let durable = log.wait_durable(offset);
    let written = log.wait_written(offset).map(|_| std::time::Instant::now());
    let (durable, written_at) = futures::future::join(durable, written).await;
    if durable.is_ok() {
        crate::metrics::record_us(
            Stage::ProduceWrite,
            crate::metrics::micros(queued, written_at),
        );
        crate::metrics::record_since(Stage::ProduceSync, Some(written_at));
    }
    durable
}

fn storage_error(topic: &str, partition: i32, e: StorageError) -> ProduceResult {
    if let StorageError::Io { .. } = e {
        tracing::error!(%topic, partition, "append failed: {e}");
    }
    ProduceResult::error(e.kafka_error_code(), Some(e.to_string()))
}

/// A Fetch answer for a partition left out of a full response: its offsets, and the
/// error a read would have given for an offset out of range, but no batches.
fn position_only(log: &PartitionLog, offset: i64) -> FetchResult {
    let (start, end) = (log.log_start_offset(), log.high_watermark());
    let error_code = if offset < start || offset > end {
        StorageError::OffsetOutOfRange { offset, start, end }.kafka_error_code()
    } else {
        ec::NONE
    };
    FetchResult {
        error_code,
        high_watermark: end,
        log_start_offset: start,
        last_stable_offset: log.last_stable_offset(),
        aborted: Vec::new(),
        batches: Vec::new(),
        throttled: false,
    }
}

/// A follower's read the leader's replication throttle leaves empty for now: its
/// progress is known, the positions (or the error a read would give) go out, no records.
fn throttled(log: &PartitionLog, offset: i64) -> FetchResult {
    crate::metrics::add(crate::metrics::Counter::LeaderThrottledReads, 1);
    FetchResult {
        throttled: true,
        ..position_only(log, offset)
    }
}
