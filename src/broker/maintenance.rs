//! Each shard's housekeeping of the logs it owns, on a timer: retention (every
//! `log.retention.check.interval.ms`) and `flush.ms`. Runs as one task per shard, one
//! partition at a time, so housekeeping never takes more than its share of the shard.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use crate::broker::shard::Shard;
use crate::runtime;

/// The housekeeping clock: `flush.ms` is honoured to this granularity, and retention
/// runs at the first tick after its interval has passed.
pub const MAINTENANCE_TICK: Duration = Duration::from_millis(250);

/// Runs until the shard ends.
pub async fn maintenance_loop(shard: Rc<Shard>) {
    let retention_every_ms = shard.broker.config.log_retention_check_interval_ms as i64;
    let mut last_retention_ms = crate::util::now_ms();
    let mut last_flush_ms: HashMap<(String, i32), i64> = HashMap::new();
    loop {
        runtime::sleep(MAINTENANCE_TICK.min(Duration::from_millis(retention_every_ms as u64)))
            .await;
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
            let flush_ms = log.config().flush_ms;
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
        last_flush_ms.retain(|(t, p), _| logs.iter().any(|(lt, lp, _)| lt == t && lp == p));
    }
}
