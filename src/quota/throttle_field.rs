//! Writing a throttle time into an encoded response, so that every handler keeps
//! answering with 0 and the connection fills in what the quotas decided.
//!
//! Where `throttle_time_ms` sits, from Kafka's schemas: first in the body of most
//! responses (from the version that added it); after the error code in OffsetDelete;
//! last in Produce (before the tagged fields of v9+, which are re-encoded through the
//! crate). ApiVersions and the SASL APIs are never throttled.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ProduceResponse;
use kafka_protocol::protocol::{Decodable, Encodable};

/// (api key, first version with a leading throttle_time_ms).
const LEADING: &[(i16, i16)] = &[
    (1, 1),  // Fetch
    (2, 2),  // ListOffsets
    (3, 3),  // Metadata
    (8, 3),  // OffsetCommit
    (9, 3),  // OffsetFetch
    (10, 1), // FindCoordinator
    (11, 2), // JoinGroup
    (12, 1), // Heartbeat
    (13, 1), // LeaveGroup
    (14, 1), // SyncGroup
    (15, 1), // DescribeGroups
    (16, 1), // ListGroups
    (19, 2), // CreateTopics
    (20, 1), // DeleteTopics
    (21, 0), // DeleteRecords
    (22, 0), // InitProducerId
    (23, 2), // OffsetForLeaderEpoch
    (24, 0), // AddPartitionsToTxn
    (25, 0), // AddOffsetsToTxn
    (26, 0), // EndTxn
    (28, 0), // TxnOffsetCommit
    (29, 0), // DescribeAcls
    (30, 0), // CreateAcls
    (31, 0), // DeleteAcls
    (32, 0), // DescribeConfigs
    (33, 0), // AlterConfigs
    (35, 0), // DescribeLogDirs
    (37, 0), // CreatePartitions
    (42, 0), // DeleteGroups
    (43, 0), // ElectLeaders
    (44, 0), // IncrementalAlterConfigs
    (45, 0), // AlterPartitionReassignments
    (46, 0), // ListPartitionReassignments
    (48, 0), // DescribeClientQuotas
    (49, 0), // AlterClientQuotas
    (50, 0), // DescribeUserScramCredentials
    (51, 0), // AlterUserScramCredentials
    (60, 0), // DescribeCluster
    (61, 0), // DescribeProducers
    (65, 0), // DescribeTransactions
    (66, 0), // ListTransactions
    (68, 0), // ConsumerGroupHeartbeat
    (69, 0), // ConsumerGroupDescribe
];
const OFFSET_DELETE: i16 = 47;
const PRODUCE: i16 = 0;
/// Produce's first flexible version: tagged fields follow throttle_time_ms.
const PRODUCE_FLEXIBLE: i16 = 9;

/// Whether a request of this API is exempt from quotas (Kafka exempts ApiVersions and
/// the login; an unknown API has no field to write into anyway).
pub fn exempt(api_key: i16) -> bool {
    matches!(api_key, 17 | 18 | 36) // SaslHandshake, ApiVersions, SaslAuthenticate
}

/// Writes `ms` into the response body `chunks` of `api_key` v`version`; false when the
/// response has no such field (or is not what the schema says).
pub fn write(api_key: i16, version: i16, chunks: &mut [Bytes], ms: i32) -> bool {
    let at = if api_key == OFFSET_DELETE {
        Some(2)
    } else if LEADING
        .iter()
        .any(|&(k, min)| k == api_key && version >= min)
    {
        Some(0)
    } else {
        None
    };
    if let Some(at) = at {
        let Some(first) = chunks.first_mut() else {
            return false;
        };
        if first.len() < at + 4 {
            return false;
        }
        let mut b = BytesMut::from(&first[..]);
        b[at..at + 4].copy_from_slice(&ms.to_be_bytes());
        *first = b.freeze();
        return true;
    }
    if api_key != PRODUCE || version < 1 {
        return false;
    }
    let body: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let patched = if version < PRODUCE_FLEXIBLE {
        let mut b = BytesMut::from(&body[..]);
        let n = b.len();
        if n < 4 {
            return false;
        }
        b[n - 4..].copy_from_slice(&ms.to_be_bytes());
        b
    } else {
        let mut buf = Bytes::from(body);
        let Ok(mut resp) = ProduceResponse::decode(&mut buf, version) else {
            return false;
        };
        resp.throttle_time_ms = ms;
        let mut out = BytesMut::new();
        if resp.encode(&mut out, version).is_err() {
            return false;
        }
        out
    };
    chunks.iter_mut().for_each(|c| *c = Bytes::new());
    if let Some(first) = chunks.first_mut() {
        *first = patched.freeze();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;

    const MS: i32 = 0x0102_0304;

    /// Encodes `msg` with throttle_time_ms = 0, patches it, and compares with the crate's
    /// own encoding of MS.
    fn check<T: Encodable + Default + Clone>(api: i16, version: i16, msg: T, set: impl Fn(&mut T)) {
        let mut zero = BytesMut::new();
        msg.encode(&mut zero, version).unwrap();
        let mut want = msg.clone();
        set(&mut want);
        let mut want_bytes = BytesMut::new();
        want.encode(&mut want_bytes, version).unwrap();
        let mut chunks = vec![zero.freeze()];
        assert!(write(api, version, &mut chunks, MS), "api {api} v{version}");
        let got: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(got, want_bytes.to_vec(), "api {api} v{version}");
    }

    #[test]
    fn matches_the_crate_encoding() {
        for v in [3, 8, 9, 12] {
            let mut r = ProduceResponse::default();
            r.responses = vec![Default::default()];
            check(0, v, r, |r| r.throttle_time_ms = MS);
        }
        for v in [3, 12] {
            check(3, v, MetadataResponse::default(), |r| {
                r.throttle_time_ms = MS
            });
        }
        for v in [2, 8] {
            check(2, v, ListOffsetsResponse::default(), |r| {
                r.throttle_time_ms = MS
            });
        }
        check(10, 4, FindCoordinatorResponse::default(), |r| {
            r.throttle_time_ms = MS
        });
        check(47, 0, OffsetDeleteResponse::default(), |r| {
            r.throttle_time_ms = MS
        });
        check(48, 1, DescribeClientQuotasResponse::default(), |r| {
            r.throttle_time_ms = MS
        });
        check(12, 4, HeartbeatResponse::default(), |r| {
            r.throttle_time_ms = MS
        });
        check(8, 8, OffsetCommitResponse::default(), |r| {
            r.throttle_time_ms = MS
        });
        check(32, 4, DescribeConfigsResponse::default(), |r| {
            r.throttle_time_ms = MS
        });
        check(68, 0, ConsumerGroupHeartbeatResponse::default(), |r| {
            r.throttle_time_ms = MS
        });
    }

    #[test]
    fn no_field_no_write() {
        let mut chunks = vec![Bytes::from_static(&[0, 0, 0, 0])];
        assert!(!write(18, 3, &mut chunks, MS));
        assert!(!write(3, 2, &mut chunks, MS));
        assert!(!write(3, 5, &mut [Bytes::from_static(&[0])], MS));
    }
}
