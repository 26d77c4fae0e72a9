//! Each shard's housekeeping of the logs it owns, on a timer: retention (every
//! `log.retention.check.interval.ms`), `flush.ms`, idle idempotent producers (every
//! `producer.id.expiration.check.interval.ms`), and the log cleaner (every
//! `log.cleaner.backoff.ms` when `log.cleaner.enable`). Runs as one task per shard, one
//! partition at a time, so housekeeping never takes more than its share of the shard;
//! the cleaner also yields between chunks and keeps to
//! `log.cleaner.io.max.bytes.per.second`.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use crate::broker::shard::Shard;
use crate::runtime;
use crate::storage::log::{CleanLimits, Cleaned};

/// The housekeeping clock: `flush.ms` is honoured to this granularity, and retention
/// runs at the first tick after its interval has passed.
pub const MAINTENANCE_TICK: Duration = Duration::from_millis(250);

/// Runs until the shard ends.
pub async fn maintenance_loop(shard: Rc<Shard>) {
    let retention_every_ms = shard.broker.config.log_retention_check_interval_ms as i64;
    let mut last_retention_ms = crate::util::now_ms();
    let config = &shard.broker.config;
    let cleaner_every_ms = config.log_cleaner_backoff_ms as i64;
    let mut last_clean_ms = crate::util::now_ms();
    let mut last_flush_ms: HashMap<(String, i32), i64> = HashMap::new();
    let expire_every_ms = config.txn.producer_id_expiration_check_interval_ms as i64;
    let mut last_expire_ms = crate::util::now_ms();
    loop {
        let tick = MAINTENANCE_TICK
            .min(Duration::from_millis(retention_every_ms as u64))
            .min(Duration::from_millis(cleaner_every_ms as u64));
        runtime::sleep(tick).await;
        shard.fail_offline_dirs();
        let now = crate::util::now_ms();
        let logs: Vec<_> = shard
            .owned_logs()
            .into_iter()
            .filter(|(_, _, log)| !log.is_failed())
            .collect();
        if now - last_retention_ms >= retention_every_ms {
            last_retention_ms = now;
            for (topic, partition, log) in &logs {
                if let Err(e) = log.enforce_retention(now).await {
                    tracing::error!(%topic, partition, "retention failed: {e}");
                }
            }
        }
        for (topic, partition, log) in &logs {
            let flush_ms = log.flush_ms();
            if flush_ms == i64::MAX {
                continue;
            }
            let key = (topic.clone(), *partition);
            let last = *last_flush_ms.entry(key.clone()).or_insert(now);
            if now - last >= flush_ms {
                last_flush_ms.insert(key, now);
                if let Err(e) = log.flush().await {
                    tracing::error!(%topic, partition, "flush.ms flush failed: {e}");
                }
            }
        }
        if now - last_expire_ms >= expire_every_ms {
            last_expire_ms = now;
            expire_producers(&logs, now, config.txn.producer_id_expiration_ms);
        }
        if config.log_cleaner_enable && crate::util::now_ms() - last_clean_ms >= cleaner_every_ms {
            clean_logs(&shard).await;
            last_clean_ms = crate::util::now_ms();
        }
        if !last_flush_ms.is_empty() {
            // Forget partitions this shard no longer owns (a set: one pass per tick).
            let owned: HashSet<(&str, i32)> =
                logs.iter().map(|(t, p, _)| (t.as_str(), *p)).collect();
            last_flush_ms.retain(|(t, p), _| owned.contains(&(t.as_str(), *p)));
        }
    }
}

/// `producer.id.expiration.ms` on each of `logs` (no I/O: the state is in memory).
fn expire_producers(logs: &[(String, i32, crate::storage::PartitionLog)], now: i64, after_ms: i64) {
    for (topic, partition, log) in logs {
        let expired = log.expire_producers(now, after_ms);
        if expired > 0 {
            tracing::debug!(%topic, partition, expired, "idle producer ids forgotten");
        }
    }
}

/// One cleaner pass over the shard's compacted logs, one at a time; each log that was
/// cleaned gets its `cleaner-offset-checkpoint` entry rewritten.
async fn clean_logs(shard: &Rc<Shard>) {
    let config = &shard.broker.config;
    let limits = CleanLimits {
        io_bytes_per_second: config.log_cleaner_io_max_bytes_per_second,
        map_bytes_max: config.log_cleaner_dedupe_buffer_size as usize,
        ..CleanLimits::default()
    };
    for (topic, partition, dir, log) in shard.owned_logs_with_dirs() {
        let cleaned = match log.clean(crate::util::now_ms(), &limits).await {
            Ok(Some(cleaned)) => cleaned,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(%topic, partition, "log cleaning failed: {e}");
                continue;
            }
        };
        log_pass(&topic, partition, &cleaned);
        let broker = shard.broker.clone();
        let offset = Some(cleaned.cleaned_to);
        let written = runtime::blocking(move || {
            broker.write_cleaner_offset_blocking(dir, &topic, partition, offset)
        })
        .await;
        if let Err(e) = written {
            tracing::error!("cannot write the cleaner offset checkpoint: {e}");
        }
    }
}

/// Every pass is logged, also one that rewrote nothing: the range it read (`dirty_from`,
/// `mapped_records`) is how an operator, and the e2e suite, sees that a restarted
/// cleaner resumed from its checkpoint instead of re-reading the log from the start.
/// A pass is due only on new dirty data or a passed delete horizon, so this is not
/// one line per tick.
fn log_pass(topic: &str, partition: i32, cleaned: &Cleaned) {
    let message = if cleaned.segments_in == 0 {
        "cleaner pass rewrote nothing"
    } else {
        "cleaned log"
    };
    tracing::info!(
        topic,
        partition,
        dirty_from = cleaned.dirty_from,
        cleaned_to = cleaned.cleaned_to,
        mapped_records = cleaned.mapped_records,
        cleaned_bytes = cleaned.cleaned_bytes,
        read_bytes = cleaned.read_bytes,
        written_bytes = cleaned.written_bytes,
        segments_in = cleaned.segments_in,
        segments_out = cleaned.segments_out,
        records_removed = cleaned.records_removed,
        elapsed_ms = cleaned.elapsed_ms,
        "{message}"
    );
}
