//! The message browser: one partition read from an offset or a timestamp, oldest or
//! newest first, with Fetch requests to the partition's leader (no consumer group, no
//! commits). Keys, values and header values go to the page both as text (lossy UTF-8)
//! and hex, so it can show either, or the text pretty-printed as JSON.

use std::collections::BTreeMap;

use kafka_protocol::messages::{ApiKey, FetchResponse};
use serde_json::{json, Value};

use super::api::param;
use super::{ApiError, ApiResult};
use crate::cli::client::Cluster;
use crate::cli::consume::{fetch_request, FETCH_VERSION};
use crate::cli::offsets::{list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use crate::cli::records::{decode_fetched, Message};
use crate::cli::topic::{broker_error, leaders, TopicError};

pub const MESSAGES_PER_PAGE_DEFAULT: usize = 20;
pub const MESSAGES_PER_PAGE_MAX: usize = 500;
/// Fetches one page may take (each up to 1 MiB of the partition) before it shows what
/// it has: bounds the work of a page over a log of tiny or filtered-out records.
const FETCH_ROUNDS_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Order {
    Oldest,
    Newest,
}

pub fn browse(
    cluster: &mut Cluster,
    topic: &str,
    partition: &str,
    query: &[(String, String)],
) -> ApiResult {
    let partition: i32 = partition
        .parse()
        .map_err(|_| ApiError::bad_request(format!("partition {partition:?} is not a number")))?;
    let order = match param::<String>(query, "order")?.as_deref() {
        None | Some("oldest") => Order::Oldest,
        Some("newest") => Order::Newest,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "order={o:?}: use oldest or newest"
            )))
        }
    };
    let limit = param::<usize>(query, "limit")?
        .unwrap_or(MESSAGES_PER_PAGE_DEFAULT)
        .clamp(1, MESSAGES_PER_PAGE_MAX);
    let offset: Option<i64> = param(query, "offset")?;
    let timestamp: Option<i64> = param(query, "timestamp")?;
    let leader_of = leaders(cluster, topic, false)?;
    let leader = *leader_of.get(&partition).ok_or_else(|| {
        ApiError::not_found(format!(
            "{topic} has no partition {partition} (it has {})",
            leader_of.len()
        ))
    })?;
    let one = BTreeMap::from([(partition, leader)]);
    let at = |cluster: &mut Cluster, ts: i64| -> Result<i64, TopicError> {
        Ok(list_offsets(cluster, topic, &one, &[(partition, ts)])?
            .get(&partition)
            .copied()
            .unwrap_or(-1))
    };
    let earliest = at(cluster, EARLIEST_TIMESTAMP)?;
    let latest = at(cluster, LATEST_TIMESTAMP)?;
    let start = match (offset, timestamp) {
        (Some(o), _) => Some(o),
        // ListOffsets by time: the first offset at or after it (-1: none, i.e. the end).
        (None, Some(ts)) => Some(match at(cluster, ts)? {
            -1 => latest,
            o => o,
        }),
        (None, None) => None,
    };
    let (from, to) = window(order, start, earliest, latest, limit)
        .map_err(|why| ApiError::bad_request(format!("{topic}-{partition}: {why}")))?;
    let mut found = read_range(cluster, topic, partition, leader, from, to)?;
    match order {
        Order::Oldest => found.truncate(limit),
        Order::Newest => {
            found.reverse();
            found.truncate(limit);
        }
    }
    Ok(json!({
        "topic": topic, "partition": partition, "earliest": earliest, "latest": latest,
        "order": if order == Order::Oldest { "oldest" } else { "newest" },
        "messages": found.iter().map(render).collect::<Vec<_>>(),
    }))
}

/// The offsets [from, to) to read. Oldest first: from `start` (default the earliest) on.
/// Newest first: `start` (default the last record) and the `limit - 1` before it.
fn window(
    order: Order,
    start: Option<i64>,
    earliest: i64,
    latest: i64,
    limit: usize,
) -> Result<(i64, i64), String> {
    let in_range = |o: i64| {
        if o < earliest || o > latest {
            Err(format!(
                "offset {o} is outside the partition's offsets {earliest}..{latest} \
                 (earliest to latest); pick one in that range"
            ))
        } else {
            Ok(o)
        }
    };
    let limit = limit as i64;
    Ok(match order {
        Order::Oldest => {
            let from = in_range(start.unwrap_or(earliest))?;
            (from, latest)
        }
        Order::Newest => {
            let last = in_range(start.unwrap_or(latest))?.min(latest - 1);
            ((last + 1 - limit).max(earliest), last + 1)
        }
    })
}

/// Data records with offsets in [from, to), in offset order, fetched from the leader.
fn read_range(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    leader: i32,
    from: i64,
    to: i64,
) -> Result<Vec<Message>, TopicError> {
    let mut out = Vec::new();
    let mut pos = from;
    for _ in 0..FETCH_ROUNDS_MAX {
        if pos >= to {
            break;
        }
        let req = fetch_request(topic, &[(partition, pos)], 0);
        let resp: FetchResponse =
            cluster
                .broker(leader)?
                .call(ApiKey::Fetch, FETCH_VERSION, &req)?;
        if resp.error_code != 0 {
            return Err(broker_error(topic, resp.error_code, None));
        }
        let Some(pd) = resp.responses.iter().flat_map(|t| &t.partitions).next() else {
            break;
        };
        if pd.error_code != 0 {
            return Err(broker_error(
                &format!("{topic}-{partition}"),
                pd.error_code,
                None,
            ));
        }
        let Some(records) = pd.records.clone() else {
            break;
        };
        let decoded = decode_fetched(records, pos).map_err(|e| {
            TopicError::Usage(format!(
                "{topic}-{partition}: unreadable records at {pos}: {e}"
            ))
        })?;
        out.extend(decoded.messages.into_iter().filter(|m| m.offset < to));
        match decoded.next_offset {
            Some(next) if next > pos => pos = next,
            _ => break,
        }
    }
    Ok(out)
}

fn bytes_view(b: &Option<bytes::Bytes>) -> Value {
    b.as_ref().map_or(Value::Null, |b| {
        json!({
            "text": String::from_utf8_lossy(b),
            "utf8": std::str::from_utf8(b).is_ok(),
            "hex": hex(b),
        })
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn render(m: &Message) -> Value {
    json!({
        "offset": m.offset, "timestamp": m.timestamp,
        "key": bytes_view(&m.key), "value": bytes_view(&m.value),
        "headers": m.headers.iter().map(|(k, v)| json!({"key": k, "value": bytes_view(v)}))
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_in_both_orders() {
        assert_eq!(window(Order::Oldest, None, 5, 20, 10), Ok((5, 20)));
        assert_eq!(window(Order::Oldest, Some(12), 5, 20, 10), Ok((12, 20)));
        assert_eq!(window(Order::Newest, None, 5, 20, 10), Ok((10, 20)));
        assert_eq!(window(Order::Newest, Some(7), 5, 20, 10), Ok((5, 8)));
        assert_eq!(window(Order::Newest, None, 0, 0, 10), Ok((0, 0)));
        assert!(window(Order::Oldest, Some(21), 5, 20, 10)
            .unwrap_err()
            .starts_with("offset 21 is outside the partition's offsets 5..20"));
        assert!(window(Order::Newest, Some(4), 5, 20, 10).is_err());
    }

    #[test]
    fn bytes_are_text_and_hex() {
        let v = bytes_view(&Some(bytes::Bytes::from_static(b"a\xff")));
        assert_eq!(v["hex"], "61ff");
        assert_eq!(v["utf8"], false);
        assert_eq!(v["text"], "a\u{fffd}");
        assert_eq!(bytes_view(&None), Value::Null);
    }
}
