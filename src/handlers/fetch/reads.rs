//! The reads of a Fetch: one round over the partitions' owner shards, and the
//! long-poll that waits on them (`read_until` runs on an owner shard).

use super::*;

/// Partitions grouped by owner shard, each with its index in `wanted`.
fn by_owner(wanted: &[Wanted]) -> HashMap<usize, Vec<(usize, FetchItem)>> {
    let mut groups: HashMap<usize, Vec<(usize, FetchItem)>> = HashMap::new();
    for (i, w) in wanted.iter().enumerate() {
        if let Ok(owner) = w.owner {
            groups.entry(owner).or_default().push((i, w.item.clone()));
        }
    }
    groups
}

async fn fetch_round(
    shard: &Rc<Shard>,
    wanted: &[Wanted],
    response_bytes_max: usize,
) -> Vec<FetchResult> {
    let mut results: Vec<FetchResult> = wanted
        .iter()
        .map(|w| FetchResult::error(w.owner.err().unwrap_or(ec::NONE)))
        .collect();
    let reads = by_owner(wanted).into_iter().map(|(owner, group)| {
        let (idx, items): (Vec<usize>, Vec<FetchItem>) = group.into_iter().unzip();
        read_on(shard.clone(), owner, items, response_bytes_max, None).map(move |r| (idx, r))
    });
    for (idx, rs) in join_all(reads).await {
        idx.into_iter().zip(rs).for_each(|(i, r)| results[i] = r);
    }
    results
}

/// Sends each owner a waiting read. When the first answers, the other owners' waits are
/// dropped (and end) and those owners get an immediate read instead, so data that
/// arrived there meanwhile goes out in the same response. Results come by index in
/// `wanted`.
async fn wait_round(
    shard: &Rc<Shard>,
    wanted: &[Wanted],
    response_bytes_max: usize,
    wait: Duration,
) -> Vec<(usize, FetchResult)> {
    let groups: Vec<(usize, Vec<usize>, Vec<FetchItem>)> = by_owner(wanted)
        .into_iter()
        .map(|(owner, group)| {
            let (idx, items) = group.into_iter().unzip();
            (owner, idx, items)
        })
        .collect();
    if groups.is_empty() {
        crate::runtime::sleep(wait).await;
        return Vec::new();
    }
    let waits: Vec<LocalBoxFuture<'static, Vec<FetchResult>>> = groups
        .iter()
        .map(|(owner, _, items)| {
            read_on(
                shard.clone(),
                *owner,
                items.clone(),
                response_bytes_max,
                Some(wait),
            )
            .boxed_local()
        })
        .collect();
    let (first, woken, rest) = select_all(waits).await;
    drop(rest);
    let others =
        groups
            .iter()
            .enumerate()
            .filter(|(g, _)| *g != woken)
            .map(|(_, (owner, idx, items))| {
                let idx = idx.clone();
                read_on(
                    shard.clone(),
                    *owner,
                    items.clone(),
                    response_bytes_max,
                    None,
                )
                .map(move |r| (idx, r))
            });
    let mut out: Vec<(usize, FetchResult)> = groups[woken].1.iter().copied().zip(first).collect();
    for (idx, rs) in join_all(others).await {
        out.extend(idx.into_iter().zip(rs));
    }
    out
}

/// The shard owning every partition of the request, when there is exactly one and no
/// partition is answered without a read (an error, or KIP-392's pointer to a follower).
pub(super) fn sole_owner(wanted: &[Wanted]) -> Option<usize> {
    let first = *wanted.first()?.owner.as_ref().ok()?;
    wanted
        .iter()
        .all(|w| w.owner == Ok(first) && w.preferred < 0)
        .then_some(first)
}

/// Runs [`read_until`] on `owner`: in place when that is this shard, else as one
/// `ShardMsg::FetchUntil` (one hop there and one back for the whole long-poll).
pub(super) async fn read_until_on(
    shard: &Rc<Shard>,
    owner: usize,
    items: Vec<FetchItem>,
    (response_bytes_max, min_bytes, wait): (usize, usize, Duration),
) -> Vec<FetchResult> {
    if owner == shard.id {
        return read_until(shard.clone(), items, response_bytes_max, min_bytes, wait).await;
    }
    let count = items.len();
    let (reply, rx) = oneshot::channel();
    shard.broker.send(
        owner,
        ShardMsg::FetchUntil {
            items,
            response_bytes_max,
            min_bytes,
            wait,
            reply,
        },
    );
    rx.await
        .unwrap_or_else(|_| vec![FetchResult::error(ec::NOT_LEADER_OR_FOLLOWER); count])
}

/// A long-poll on the shard that owns every one of `items`: reads them; while the
/// reads hold fewer than `min_bytes` and none failed, waits (until `wait` has passed)
/// for data past what was seen, and reads again.
pub async fn read_until(
    shard: Rc<Shard>,
    mut items: Vec<FetchItem>,
    response_bytes_max: usize,
    min_bytes: usize,
    wait: Duration,
) -> Vec<FetchResult> {
    let started = Instant::now();
    let mut results = shard.fetch_local(items.clone(), response_bytes_max).await;
    let starts = log_starts(&results);
    let mut wait_started = None;
    loop {
        let bytes: usize = results.iter().map(FetchResult::bytes).sum();
        let errors = results.iter().any(|r| r.error_code != ec::NONE);
        let elapsed = started.elapsed();
        let moved = log_start_moved(items.iter(), &starts, &results);
        if bytes >= min_bytes || errors || moved || elapsed >= wait {
            break;
        }
        for (item, r) in items.iter_mut().zip(&results) {
            item.wait_past = wait_past(item, r);
        }
        if wait_started.is_none() {
            wait_started = metrics::now();
        }
        shard.wait_for_data_until(&items, wait - elapsed).await;
        results = shard.fetch_local(items.clone(), response_bytes_max).await;
    }
    metrics::record_since(Stage::FetchWait, wait_started);
    results
}

/// What a long-poll waits past after a read that held too little: the fetch offset, or
/// the high watermark already seen; for a follower's read the leader's replication
/// throttle left empty, nothing of this partition (its data is there but may not be
/// sent yet, so waiting for it would return at once, again and again; Kafka's delayed
/// fetch does not count throttled partitions either).
fn wait_past(item: &FetchItem, r: &FetchResult) -> i64 {
    if r.throttled {
        return i64::MAX;
    }
    item.offset.max(r.high_watermark)
}

/// Each partition's log start offset as a request's first read saw it.
fn log_starts(results: &[FetchResult]) -> Vec<i64> {
    results.iter().map(|r| r.log_start_offset).collect()
}

/// Whether the log start offset of a partition a follower fetches moved up since the
/// request's first read (DeleteRecords on this leader): the follower's long-poll is
/// answered then, without records, so that it moves its own log start from the answer
/// and reports it on its next fetch, which is what the leader's DeleteRecords waits for
/// (`Shard::wait_low_watermark`). Only a move during the wait counts, so a follower
/// whose log start cannot follow (yet) is never answered in a loop.
fn log_start_moved<'a>(
    items: impl Iterator<Item = &'a FetchItem>,
    starts: &[i64],
    results: &[FetchResult],
) -> bool {
    items
        .zip(starts)
        .zip(results)
        .any(|((item, &start), r)| item.replica.is_some() && r.log_start_offset > start)
}

/// Sends what `read` produces, unless the receiver is dropped first (the connection
/// went away): then `read`, and any wait in it, is dropped.
pub async fn reply_unless_cancelled(
    read: impl std::future::Future<Output = Vec<FetchResult>>,
    mut reply: oneshot::Sender<Vec<FetchResult>>,
) {
    let cancelled = reply.cancellation();
    futures::pin_mut!(cancelled);
    futures::pin_mut!(read);
    if let futures::future::Either::Left((results, _)) =
        futures::future::select(read, cancelled).await
    {
        let _ = reply.send(results);
    }
}

/// Reads `items` on their owner shard, in place when that is this shard.
async fn read_on(
    shard: Rc<Shard>,
    owner: usize,
    items: Vec<FetchItem>,
    response_bytes_max: usize,
    wait: Option<Duration>,
) -> Vec<FetchResult> {
    if owner == shard.id {
        if let Some(wait) = wait {
            shard.wait_for_data_until(&items, wait).await;
        }
        return shard.fetch_local(items, response_bytes_max).await;
    }
    let count = items.len();
    let (reply, rx) = oneshot::channel();
    shard.broker.send(
        owner,
        ShardMsg::Fetch {
            items,
            response_bytes_max,
            wait,
            reply,
        },
    );
    rx.await
        .unwrap_or_else(|_| vec![FetchResult::error(ec::NOT_LEADER_OR_FOLLOWER); count])
}

/// Applies the response-wide `max_bytes`: whole batches in request order until the limit,
/// except that the first batch found is always returned (Kafka's rule, so a consumer is
/// never stuck behind a batch larger than its limit).
pub(super) fn trim_to(results: &mut [FetchResult], max_bytes: usize) {
    let mut used = 0usize;
    let mut first = true;
    for r in results.iter_mut() {
        let mut keep = 0;
        for b in &r.batches {
            if !first && used + b.len() > max_bytes {
                break;
            }
            used += b.len();
            first = false;
            keep += 1;
        }
        r.batches.truncate(keep);
    }
}

/// Reads `wanted` spread over several owner shards, one round and then long-poll rounds
/// until `min_bytes` are there, an error, a moved log start or `max_wait` since
/// `started`. A consumer pointed to a follower (KIP-392) gets no records, at once.
pub(super) async fn read_across(
    shard: &Rc<Shard>,
    wanted: &mut [Wanted],
    response_bytes_max: usize,
    (started, min_bytes, max_wait): (Instant, usize, Duration),
) -> Vec<FetchResult> {
    let mut results = fetch_round(shard, wanted, response_bytes_max).await;
    let redirected = drop_redirected(wanted, &mut results);
    let starts = log_starts(&results);
    let mut wait_started = None;
    loop {
        let bytes: usize = results.iter().map(FetchResult::bytes).sum();
        let errors = redirected || results.iter().any(|r| r.error_code != ec::NONE);
        let elapsed = started.elapsed();
        let moved = log_start_moved(wanted.iter().map(|w| &w.item), &starts, &results);
        if bytes >= min_bytes || errors || moved || elapsed >= max_wait {
            break;
        }
        // Park on the owners; the first to see new data (or the deadline) answers.
        for (w, r) in wanted.iter_mut().zip(&results) {
            w.item.wait_past = wait_past(&w.item, r);
        }
        if wait_started.is_none() {
            wait_started = metrics::now();
        }
        for (i, r) in wait_round(shard, wanted, response_bytes_max, max_wait - elapsed).await {
            results[i] = r;
        }
    }
    metrics::record_since(Stage::FetchWait, wait_started);
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn res(sizes: &[usize]) -> FetchResult {
        FetchResult {
            error_code: 0,
            high_watermark: 0,
            log_start_offset: 0,
            last_stable_offset: 0,
            aborted: Vec::new(),
            batches: sizes.iter().map(|n| Bytes::from(vec![0u8; *n])).collect(),
            throttled: false,
        }
    }

    fn wanted(owner: Result<usize, i16>, preferred: i32) -> Wanted {
        Wanted {
            topic: 0,
            item: FetchItem {
                topic: "t".into(),
                partition: 0,
                offset: 0,
                max_bytes: 1,
                wait_past: 0,
                replica: None,
                read_committed: false,
                follower_read: false,
                replica_log_start: -1,
            },
            owner,
            preferred,
        }
    }

    #[test]
    fn one_hop_only_when_one_shard_owns_every_partition_and_all_are_read() {
        assert_eq!(sole_owner(&[wanted(Ok(1), -1), wanted(Ok(1), -1)]), Some(1));
        assert_eq!(sole_owner(&[wanted(Ok(0), -1)]), Some(0));
        assert_eq!(sole_owner(&[wanted(Ok(1), -1), wanted(Ok(0), -1)]), None);
        assert_eq!(sole_owner(&[wanted(Ok(1), -1), wanted(Err(3), -1)]), None);
        assert_eq!(sole_owner(&[wanted(Err(3), -1)]), None);
        assert_eq!(sole_owner(&[wanted(Ok(1), 2)]), None, "KIP-392 redirect");
        assert_eq!(sole_owner(&[]), None);
    }

    #[test]
    fn trim_keeps_first_batch_and_stops_at_limit() {
        let mut r = vec![res(&[]), res(&[100, 10]), res(&[5])];
        trim_to(&mut r, 50);
        assert_eq!(r[1].batches.len(), 1);
        assert_eq!(r[2].batches.len(), 0);
        let mut r = vec![res(&[10, 10]), res(&[10])];
        trim_to(&mut r, 25);
        assert_eq!((r[0].batches.len(), r[1].batches.len()), (2, 0));
    }
}
