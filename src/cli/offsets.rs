//! Offsets the tools look up: ListOffsets at each partition's leader (earliest, latest,
//! or the first offset at or after a timestamp), and a group's committed offsets.

use std::collections::BTreeMap;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, GroupId, ListOffsetsRequest, ListOffsetsResponse, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::Cluster;
use super::topic::{broker_error, TopicError};

/// ListOffsets v5: timestamps, leader epochs; not flexible.
const LIST_OFFSETS_VERSION: i16 = 5;
const OFFSET_FETCH_VERSION: i16 = 7;
/// ListOffsets timestamps with a special meaning.
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const LATEST_TIMESTAMP: i64 = -1;

/// For each `(partition, timestamp)`, the offset the leader answers (-1: no record at or
/// after that timestamp). A partition's error code fails the whole lookup.
pub fn list_offsets(
    cluster: &mut Cluster,
    topic: &str,
    leader_of: &BTreeMap<i32, i32>,
    queries: &[(i32, i64)],
) -> Result<BTreeMap<i32, i64>, TopicError> {
    let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
    for (p, ts) in queries {
        let leader = leader_of
            .get(p)
            .ok_or_else(|| broker_error(&format!("{topic}-{p}"), 3, None))?;
        by_leader.entry(*leader).or_default().push((*p, *ts));
    }
    let mut out = BTreeMap::new();
    for (leader, parts) in by_leader {
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.partitions = parts
            .iter()
            .map(|(p, ts)| {
                let mut lp = ListOffsetsPartition::default();
                lp.partition_index = *p;
                lp.timestamp = *ts;
                lp.current_leader_epoch = -1;
                lp
            })
            .collect();
        let mut req = ListOffsetsRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![t];
        let resp: ListOffsetsResponse =
            cluster
                .broker(leader)?
                .call(ApiKey::ListOffsets, LIST_OFFSETS_VERSION, &req)?;
        for p in resp.topics.iter().flat_map(|t| &t.partitions) {
            if p.error_code != 0 {
                let what = format!("{topic}-{}", p.partition_index);
                return Err(broker_error(&what, p.error_code, None));
            }
            out.insert(p.partition_index, p.offset);
        }
    }
    Ok(out)
}

/// The offsets `group` committed for `partitions` of `topic` (absent: none committed),
/// asked of the group's coordinator `coordinator`.
pub fn committed(
    cluster: &mut Cluster,
    coordinator: i32,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>, TopicError> {
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_indexes = partitions.to_vec();
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.to_string()));
    req.topics = Some(vec![t]);
    let resp: OffsetFetchResponse =
        cluster
            .broker(coordinator)?
            .call(ApiKey::OffsetFetch, OFFSET_FETCH_VERSION, &req)?;
    if resp.error_code != 0 {
        return Err(broker_error(group, resp.error_code, None));
    }
    let mut out = BTreeMap::new();
    for p in resp.topics.iter().flat_map(|t| &t.partitions) {
        if p.error_code != 0 {
            return Err(broker_error(group, p.error_code, None));
        }
        if p.committed_offset >= 0 {
            out.insert(p.partition_index, p.committed_offset);
        }
    }
    Ok(out)
}
