//! The guard against the crate it protects: valid requests built and encoded by
//! kafka-protocol pass, every truncation fails, random corruption never gets a body past
//! the guard that the crate then decodes differently or with more memory than the guard
//! promised, and hand-made hostile bodies are rejected.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    alter_configs_request, create_partitions_request, delete_records_request,
    describe_configs_request, describe_log_dirs_request, elect_leaders_request,
    incremental_alter_configs_request, offset_for_leader_epoch_request,
};
use kafka_protocol::messages::{BrokerId, GroupId, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::*;

/// Allocations during a successful decode that the guard's bound does not model:
/// `BytesMut` turning its buffer into a shared one on the first split (40 bytes).
const DECODE_BYTES_SLACK: usize = 64;

/// The largest single allocation a failed decode may make besides its arrays: the error,
/// with a captured backtrace when RUST_BACKTRACE is set.
const ERROR_BYTES_SLACK: usize = 64 * 1024;

/// Counts what the current thread allocates while `measure` runs, so a test can hold the
/// crate's decode to the guard's bound. Other threads and other times cost one
/// thread-local read per allocation.
mod meter {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static METERING: Cell<bool> = const { Cell::new(false) };
        static TOTAL_BYTES: Cell<usize> = const { Cell::new(0) };
        static LARGEST_BYTES: Cell<usize> = const { Cell::new(0) };
    }

    fn count(bytes: usize) {
        let _ = METERING.try_with(|on| {
            if on.get() {
                TOTAL_BYTES.set(TOTAL_BYTES.get() + bytes);
                LARGEST_BYTES.set(LARGEST_BYTES.get().max(bytes));
            }
        });
    }

    struct Meter;

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Meter {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(layout.size());
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count(layout.size());
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count(new_size);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static METER: Meter = Meter;

    /// Bytes allocated while `f` ran on this thread
    pub struct Allocated {
        pub total_bytes: usize,
        pub largest_bytes: usize,
    }

    pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Allocated) {
        TOTAL_BYTES.set(0);
        LARGEST_BYTES.set(0);
        METERING.set(true);
        let result = f();
        METERING.set(false);
        let allocated = Allocated {
            total_bytes: TOTAL_BYTES.get(),
            largest_bytes: LARGEST_BYTES.get(),
        };
        (result, allocated)
    }
}

/// The crate's decoder for one API, behind function pointers so tests can loop over APIs.
struct Codec {
    decode: fn(i16, &[u8]) -> Decoded,
    /// Decodes and encodes again, for round trips of valid requests.
    round_trip: fn(i16, &[u8]) -> BytesMut,
}

fn codec_of<T: Decodable + Encodable>() -> Codec {
    Codec {
        decode: decode_as::<T>,
        round_trip: round_trip_as::<T>,
    }
}

/// What the crate made of a body: bytes consumed (or the error), and what it allocated.
struct Decoded {
    consumed: Result<usize, String>,
    allocated: meter::Allocated,
}

fn decode_as<T: Decodable>(version: i16, body: &[u8]) -> Decoded {
    let mut buf = BytesMut::from(body);
    let (result, allocated) = meter::measure(|| T::decode(&mut buf, version));
    let consumed = result
        .map(|_| body.len() - buf.len())
        .map_err(|e| e.to_string());
    Decoded {
        consumed,
        allocated,
    }
}

/// The guard's walk: bytes consumed and the decode bound.
fn walk(api: ApiKey, version: i16, body: &[u8]) -> Result<(usize, usize), DecodeError> {
    let mut rest = body;
    let decode_bytes = walk_body(api as i16, version, &mut rest)?;
    Ok((body.len() - rest.len(), decode_bytes))
}

fn round_trip_as<T: Decodable + Encodable>(version: i16, body: &[u8]) -> BytesMut {
    let msg = T::decode(&mut BytesMut::from(body), version).expect("valid request decodes");
    encode(&msg, version)
}

/// The crate that decodes `api` at `version`: the current one, or kafka-protocol 0.15.1
/// for the versions Kafka 4.0 removed (what `legacy` decodes them with).
fn codec(api: ApiKey, version: i16) -> Codec {
    if version < api.valid_versions().min {
        return old_codec(api);
    }
    match api {
        ApiKey::Metadata => codec_of::<MetadataRequest>(),
        ApiKey::CreateTopics => codec_of::<CreateTopicsRequest>(),
        ApiKey::DeleteTopics => codec_of::<DeleteTopicsRequest>(),
        ApiKey::ListOffsets => codec_of::<ListOffsetsRequest>(),
        ApiKey::Fetch => codec_of::<FetchRequest>(),
        ApiKey::InitProducerId => codec_of::<InitProducerIdRequest>(),
        ApiKey::DescribeCluster => codec_of::<DescribeClusterRequest>(),
        ApiKey::FindCoordinator => codec_of::<FindCoordinatorRequest>(),
        ApiKey::ApiVersions => codec_of::<ApiVersionsRequest>(),
        ApiKey::JoinGroup => codec_of::<JoinGroupRequest>(),
        ApiKey::SyncGroup => codec_of::<SyncGroupRequest>(),
        ApiKey::Heartbeat => codec_of::<HeartbeatRequest>(),
        ApiKey::LeaveGroup => codec_of::<LeaveGroupRequest>(),
        ApiKey::OffsetCommit => codec_of::<OffsetCommitRequest>(),
        ApiKey::OffsetFetch => codec_of::<OffsetFetchRequest>(),
        ApiKey::ListGroups => codec_of::<ListGroupsRequest>(),
        ApiKey::DescribeGroups => codec_of::<DescribeGroupsRequest>(),
        ApiKey::DeleteGroups => codec_of::<DeleteGroupsRequest>(),
        ApiKey::OffsetDelete => codec_of::<OffsetDeleteRequest>(),
        ApiKey::CreatePartitions => codec_of::<CreatePartitionsRequest>(),
        ApiKey::ElectLeaders => codec_of::<ElectLeadersRequest>(),
        ApiKey::DescribeConfigs => codec_of::<DescribeConfigsRequest>(),
        ApiKey::AlterConfigs => codec_of::<AlterConfigsRequest>(),
        ApiKey::IncrementalAlterConfigs => codec_of::<IncrementalAlterConfigsRequest>(),
        ApiKey::DeleteRecords => codec_of::<DeleteRecordsRequest>(),
        ApiKey::OffsetForLeaderEpoch => codec_of::<OffsetForLeaderEpochRequest>(),
        ApiKey::DescribeLogDirs => codec_of::<DescribeLogDirsRequest>(),
        ApiKey::ConsumerGroupHeartbeat => codec_of::<ConsumerGroupHeartbeatRequest>(),
        ApiKey::ConsumerGroupDescribe => codec_of::<ConsumerGroupDescribeRequest>(),
        ApiKey::SaslHandshake => codec_of::<kafka_protocol::messages::SaslHandshakeRequest>(),
        ApiKey::SaslAuthenticate => codec_of::<kafka_protocol::messages::SaslAuthenticateRequest>(),
        ApiKey::AlterUserScramCredentials => {
            codec_of::<kafka_protocol::messages::AlterUserScramCredentialsRequest>()
        }
        ApiKey::DescribeUserScramCredentials => {
            codec_of::<kafka_protocol::messages::DescribeUserScramCredentialsRequest>()
        }
        ApiKey::CreateAcls => codec_of::<kafka_protocol::messages::CreateAclsRequest>(),
        ApiKey::DescribeAcls => codec_of::<kafka_protocol::messages::DescribeAclsRequest>(),
        ApiKey::DeleteAcls => codec_of::<kafka_protocol::messages::DeleteAclsRequest>(),
        ApiKey::DescribeClientQuotas => {
            codec_of::<kafka_protocol::messages::DescribeClientQuotasRequest>()
        }
        ApiKey::AlterClientQuotas => {
            codec_of::<kafka_protocol::messages::AlterClientQuotasRequest>()
        }
        ApiKey::AddPartitionsToTxn => codec_of::<AddPartitionsToTxnRequest>(),
        ApiKey::AddOffsetsToTxn => codec_of::<AddOffsetsToTxnRequest>(),
        ApiKey::EndTxn => codec_of::<EndTxnRequest>(),
        ApiKey::TxnOffsetCommit => codec_of::<TxnOffsetCommitRequest>(),
        ApiKey::WriteTxnMarkers => codec_of::<WriteTxnMarkersRequest>(),
        ApiKey::DescribeTransactions => codec_of::<DescribeTransactionsRequest>(),
        ApiKey::DescribeProducers => codec_of::<DescribeProducersRequest>(),
        ApiKey::ListTransactions => codec_of::<ListTransactionsRequest>(),
        ApiKey::AlterPartitionReassignments => {
            codec_of::<kafka_protocol::messages::AlterPartitionReassignmentsRequest>()
        }
        ApiKey::ListPartitionReassignments => {
            codec_of::<kafka_protocol::messages::ListPartitionReassignmentsRequest>()
        }
        other => panic!("no codec for {other:?}: add it beside its schema"),
    }
}

fn old_codec(api: ApiKey) -> Codec {
    use kafka_protocol_old::messages as old;
    match api {
        ApiKey::CreateTopics => old_codec_of::<old::CreateTopicsRequest>(),
        ApiKey::DeleteTopics => old_codec_of::<old::DeleteTopicsRequest>(),
        ApiKey::ListOffsets => old_codec_of::<old::ListOffsetsRequest>(),
        ApiKey::Fetch => old_codec_of::<old::FetchRequest>(),
        ApiKey::OffsetCommit => old_codec_of::<old::OffsetCommitRequest>(),
        ApiKey::OffsetFetch => old_codec_of::<old::OffsetFetchRequest>(),
        ApiKey::DescribeConfigs => old_codec_of::<old::DescribeConfigsRequest>(),
        ApiKey::OffsetForLeaderEpoch => old_codec_of::<old::OffsetForLeaderEpochRequest>(),
        ApiKey::DescribeLogDirs => old_codec_of::<old::DescribeLogDirsRequest>(),
        other => panic!("no legacy codec for {other:?}"),
    }
}

fn old_codec_of<T>() -> Codec
where
    T: kafka_protocol_old::protocol::Decodable + kafka_protocol_old::protocol::Encodable,
{
    Codec {
        decode: |version, body| {
            let mut buf = BytesMut::from(body);
            let (result, allocated) = meter::measure(|| T::decode(&mut buf, version));
            let consumed = result
                .map(|_| body.len() - buf.len())
                .map_err(|e| e.to_string());
            Decoded {
                consumed,
                allocated,
            }
        },
        round_trip: |version, body| {
            let msg = T::decode(&mut BytesMut::from(body), version).expect("valid request decodes");
            let mut out = BytesMut::new();
            msg.encode(&mut out, version)
                .expect("sample request encodes");
            out
        },
    }
}

/// A body of `api` at the current crate's oldest version, re-encoded at an older
/// `version` by kafka-protocol 0.15.1 (fields the old version lacks are dropped).
fn to_legacy(api: ApiKey, version: i16, body: BytesMut) -> BytesMut {
    use kafka_protocol_old::messages as old;
    use kafka_protocol_old::protocol::{Decodable as _, Encodable as _};
    let bridge = api.valid_versions().min;
    macro_rules! via {
        ($ty:ty) => {
            via!($ty, |_: &mut $ty| ())
        };
        ($ty:ty, $trim:expr) => {{
            let mut msg = <$ty>::decode(&mut body.clone(), bridge).expect("bridge sample decodes");
            // Fields the old version cannot carry (the old crate refuses to drop them).
            $trim(&mut msg);
            let mut out = BytesMut::new();
            msg.encode(&mut out, version)
                .expect("legacy sample encodes");
            out
        }};
    }
    match api {
        ApiKey::CreateTopics => via!(
            old::CreateTopicsRequest,
            |m: &mut old::CreateTopicsRequest| { m.validate_only &= version >= 1 }
        ),
        ApiKey::DeleteTopics => via!(old::DeleteTopicsRequest),
        ApiKey::ListOffsets => via!(old::ListOffsetsRequest),
        ApiKey::Fetch => via!(old::FetchRequest),
        ApiKey::OffsetCommit => via!(old::OffsetCommitRequest),
        ApiKey::OffsetFetch => via!(old::OffsetFetchRequest),
        ApiKey::DescribeConfigs => {
            via!(
                old::DescribeConfigsRequest,
                |m: &mut old::DescribeConfigsRequest| { m.include_synonyms &= version >= 1 }
            )
        }
        ApiKey::OffsetForLeaderEpoch => via!(old::OffsetForLeaderEpochRequest),
        ApiKey::DescribeLogDirs => via!(old::DescribeLogDirsRequest),
        other => panic!("no legacy codec for {other:?}"),
    }
}

fn encode<T: Encodable>(msg: &T, version: i16) -> BytesMut {
    let mut out = BytesMut::new();
    msg.encode(&mut out, version)
        .expect("sample request encodes");
    out
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic(name: &str) -> TopicName {
    TopicName(s(name))
}

fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_0000 + n)
}

/// An unknown tagged field, added only where the version has tagged fields.
fn extra(flexible: bool) -> Option<(i32, Bytes)> {
    flexible.then(|| (23, Bytes::from_static(b"future")))
}

/// Every (api, version) the guard knows, with its valid samples: rich ones, and small
/// minimal ones (empty strings are where a nullability slip shows).
fn all_samples() -> Vec<(ApiKey, i16, Vec<BytesMut>)> {
    APIS.iter()
        .flat_map(|api| {
            (api.versions.min..=api.versions.max).map(|v| {
                let mut bodies = samples(api.key, v);
                bodies.extend(minimal_samples(api.key, v, 3));
                (api.key, v, bodies)
            })
        })
        .collect()
}

/// Checks one body both ways. The crate runs on every body the guard accepts, and on the
/// rejected ones where that cannot abort: the guard walks exactly as the crate decodes,
/// so every count before the spot where it stops has passed its check, and for these
/// reasons the crate must stop at the same spot. (Not for a count that is too long: the
/// crate would go on into entries whose counts nobody checked.)
fn differential(api: ApiKey, version: i16, body: &[u8]) -> Result<(), DecodeError> {
    let verdict = check_request_shape(api as i16, version, body);
    let context = format!("{api:?} v{version} {body:02x?}: guard said {verdict:?}");
    let decode = codec(api, version).decode;
    match &verdict {
        Ok(()) => {
            let (used_bytes, decode_bytes) = walk(api, version, body).expect("accepted body walks");
            let decoded = decode(version, body);
            assert_eq!(decoded.consumed, Ok(used_bytes), "{context}");
            assert!(
                decoded.allocated.total_bytes <= decode_bytes + DECODE_BYTES_SLACK,
                "{context}: decode allocated {} bytes, guard bound {decode_bytes}",
                decoded.allocated.total_bytes,
            );
            return verdict;
        }
        Err(DecodeError::InvalidLength { length, .. }) if *length < 0 => {}
        Err(
            DecodeError::Truncated { .. }
            | DecodeError::UnexpectedNull { .. }
            | DecodeError::InvalidUtf8 { .. }
            | DecodeError::TagNotInVersion { .. },
        ) => {}
        Err(_) => return verdict,
    }
    let decoded = decode(version, body);
    assert!(decoded.consumed.is_err(), "{context}, crate decoded it");
    let bound = DECODE_BYTES_PER_BODY_BYTE_MAX * body.len() + ERROR_BYTES_SLACK;
    assert!(
        decoded.allocated.largest_bytes <= bound,
        "{context}: decode allocated {} bytes at once",
        decoded.allocated.largest_bytes
    );
    verdict
}

#[test]
fn valid_requests_of_every_version_pass_and_walk_exactly_as_the_crate_decodes() {
    for (api, version, bodies) in all_samples() {
        for body in bodies {
            assert_eq!(
                differential(api, version, &body),
                Ok(()),
                "{api:?} v{version}"
            );
            let (used_bytes, _) = walk(api, version, &body).unwrap();
            assert_eq!(used_bytes, body.len(), "{api:?} v{version}");
            assert_eq!(
                (codec(api, version).round_trip)(version, &body),
                body,
                "{api:?} v{version}"
            );
        }
    }
}

#[test]
fn arrays_of_the_smallest_entries_pass() {
    for api in &APIS {
        for version in api.versions.min..=api.versions.max {
            for body in minimal_samples(api.key, version, 100) {
                let verdict = differential(api.key, version, &body);
                assert_eq!(verdict, Ok(()), "{:?} v{version}", api.key);
            }
        }
    }
}

#[test]
fn trailing_bytes_are_left_alone_as_the_crate_leaves_them() {
    for (api, version, bodies) in all_samples() {
        let mut body = bodies[0].clone();
        body.put_slice(&[0xff; 7]);
        assert_eq!(
            differential(api, version, &body),
            Ok(()),
            "{api:?} v{version}"
        );
    }
}

#[test]
fn every_strict_prefix_is_rejected_by_guard_and_crate() {
    for (api, version, bodies) in all_samples() {
        for body in bodies {
            for len in 0..body.len() {
                let prefix = &body[..len];
                // A prefix keeps counts its full body could hold, so the crate is safe here.
                let decoded = (codec(api, version).decode)(version, prefix);
                assert!(decoded.consumed.is_err(), "{api:?} v{version} prefix {len}");
                let verdict = differential(api, version, prefix);
                assert!(verdict.is_err(), "{api:?} v{version} prefix {len} accepted");
            }
        }
    }
}

/// xorshift64: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to three random edits, biased towards what breaks decoders: length prefixes set to
/// extremes, varint continuation bits, cuts and splices.
fn corrupt(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(out.len());
        match rng.below(7) {
            0 if !out.is_empty() => out[at] ^= 1 << rng.below(8),
            1 if !out.is_empty() => out[at] = rng.next() as u8,
            2 if !out.is_empty() => out[at] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)],
            3 => {
                let extreme: [u8; 4] =
                    [[0x7f, 0xff, 0xff, 0xff], [0xff; 4], [0x80; 4]][rng.below(3)];
                let end = (at + 4).min(out.len());
                out[at..end].copy_from_slice(&extreme[..end - at]);
            }
            4 => out.truncate(at),
            5 => {
                let from = rng.below(out.len());
                let len = rng.below(8).min(out.len() - from);
                let piece = out[from..from + len].to_vec();
                out.splice(at..at, piece);
            }
            _ => out.insert(at, rng.next() as u8),
        }
    }
    out
}

#[test]
fn corrupted_requests_the_guard_accepts_decode_identically_within_budget() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut total) = (0, 0);
    for (api, version, bodies) in all_samples() {
        for body in bodies {
            for _ in 0..1000 {
                let corrupted = corrupt(&mut rng, &body);
                total += 1;
                if differential(api, version, &corrupted).is_ok() {
                    accepted += 1;
                }
            }
        }
    }
    // Both outcomes must be exercised, or the test proves nothing.
    assert!(
        accepted > total / 20 && accepted < total - total / 20,
        "{accepted}/{total}"
    );
}

/// Every position of every sample overwritten with each value a length or count prefix
/// finds hardest: null markers, the largest counts, a varint continuation. Deterministic,
/// so a nullability or field-order slip in a schema cannot hide from the random test.
#[test]
fn every_boundary_overwrite_is_judged_like_the_crate() {
    const PATCHES: [&[u8]; 7] = [
        &[0x00],
        &[0x01],
        &[0x7f],
        &[0x80],
        &[0xff, 0xff],
        &[0x7f, 0xff, 0xff, 0xff],
        &[0xff, 0xff, 0xff, 0xff],
    ];
    for (api, version, bodies) in all_samples() {
        for body in bodies {
            for at in 0..body.len() {
                for patch in PATCHES {
                    let mut patched = body.to_vec();
                    let end = (at + patch.len()).min(patched.len());
                    patched[at..end].copy_from_slice(&patch[..end - at]);
                    let _ = differential(api, version, &patched);
                }
            }
        }
    }
}

fn rejects(api: ApiKey, version: i16, body: &[u8]) -> DecodeError {
    check_request_shape(api as i16, version, body).expect_err("hostile body rejected")
}

#[test]
fn classic_array_count_of_i32_max_is_rejected() {
    let mut body = i32::MAX.to_be_bytes().to_vec();
    body.extend_from_slice(&[0; 16]);
    let err = rejects(ApiKey::Metadata, 1, &body);
    assert!(
        matches!(err, DecodeError::ArrayTooLong { field: "topics", count, .. } if count == i32::MAX as usize)
    );
}

#[test]
fn compact_array_count_of_u32_max_is_rejected() {
    let body = [0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0];
    let err = rejects(ApiKey::Metadata, 12, &body);
    assert!(
        matches!(
            err,
            DecodeError::InvalidLength {
                field: "topics",
                ..
            }
        ),
        "{err:?}"
    );
    // The largest count Kafka allows still has to fit.
    let body = [0xff, 0xff, 0xff, 0xff, 0x07, 0, 0, 0];
    let err = rejects(ApiKey::Metadata, 12, &body);
    assert!(
        matches!(
            err,
            DecodeError::ArrayTooLong {
                field: "topics",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn nested_array_counts_are_checked_against_what_remains() {
    // CreateTopics v2: one topic "t", then an assignment whose broker list claims 2^30.
    let mut body = BytesMut::new();
    body.put_i32(1);
    body.put_i16(1);
    body.put_slice(b"t");
    body.put_i32(-1);
    body.put_i16(-1);
    body.put_i32(1); // assignments
    body.put_i32(0); // partition_index
    body.put_i32(1 << 30); // broker_ids
    body.put_slice(&[0; 64]);
    let err = rejects(ApiKey::CreateTopics, 2, &body);
    assert!(
        matches!(
            err,
            DecodeError::ArrayTooLong {
                field: "broker_ids",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn string_longer_than_what_remains_is_rejected() {
    let body = [0x7f, 0xff, b'a', b'b', b'c'];
    let err = rejects(ApiKey::InitProducerId, 0, &body);
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                field: "transactional_id",
                needed_bytes: 32767,
                remaining_bytes: 3
            }
        ),
        "{err:?}"
    );
}

#[test]
fn huge_tagged_field_counts_are_rejected_up_front() {
    // DescribeCluster v0: the boolean, then a tagged-field count of u32::MAX.
    let body = [1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0];
    let err = rejects(ApiKey::DescribeCluster, 0, &body);
    assert!(
        matches!(
            err,
            DecodeError::ArrayTooLong {
                field: "tagged fields",
                ..
            }
        ),
        "{err:?}"
    );
    // Nested: a Metadata v9 topic with 10^6 tagged fields in a small body.
    let body = [2, 0, 0xc0, 0x84, 0x3d, 0, 0, 0, 0];
    let err = rejects(ApiKey::Metadata, 9, &body);
    assert!(
        matches!(
            err,
            DecodeError::ArrayTooLong {
                field: "tagged fields",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn known_tagged_fields_are_walked_in_place_like_the_crate() {
    // Fetch v12 with tag 0 (cluster_id) whose string claims far more than is left.
    let mut body = BytesMut::new();
    body.put_slice(&[0; 4 * 4 + 1 + 4 + 4]); // replica_id .. session_epoch
    body.put_slice(&[1, 1, 1]); // no topics, no forgotten topics, empty rack_id
    body.put_slice(&[1, 0, 4, 0xff, 0xff, 0x03]); // one field: tag 0, size 4, length 65534
    let err = rejects(ApiKey::Fetch, 12, &body);
    assert!(
        matches!(
            err,
            DecodeError::InvalidLength {
                field: "cluster_id",
                ..
            }
        ),
        "{err:?}"
    );
    // Tag 1 (replica_state) only exists from v15; the crate refuses it before that.
    let tagged = body.len() - 6;
    body.truncate(tagged);
    body.put_slice(&[1, 1, 13]);
    body.put_slice(&[0; 12]); // replica_id, replica_epoch
    body.put_u8(0);
    let err = rejects(ApiKey::Fetch, 12, &body);
    assert!(
        matches!(
            err,
            DecodeError::TagNotInVersion {
                tag: 1,
                version: 12,
                ..
            }
        ),
        "{err:?}"
    );
    // v15 has no top-level replica_id, so the same request is four bytes shorter.
    assert_eq!(differential(ApiKey::Fetch, 15, &body[4..]), Ok(()));
}

#[test]
fn bodies_stuffed_with_unknown_tagged_fields_exceed_the_decode_budget() {
    // Metadata v9: 50,000 topics with a null name and one empty unknown tagged field
    // each. Four bytes on the wire become a 72-byte entry plus a map node in memory.
    let topics = 50_000u32;
    let mut body = BytesMut::new();
    super::super::wire::put_uvarint(&mut body, topics + 1);
    for _ in 0..topics {
        body.put_slice(&[0, 1, 9, 0]);
    }
    body.put_slice(&[1, 0, 0, 0]);
    let err = rejects(ApiKey::Metadata, 9, &body);
    assert!(matches!(err, DecodeError::DecodeTooLarge { .. }), "{err:?}");
    // A handful of unknown tags is within the allowance.
    let mut small = BytesMut::new();
    small.put_slice(&[3, 0, 1, 9, 0, 0, 1, 9, 0, 1, 0, 0, 0]);
    assert_eq!(differential(ApiKey::Metadata, 9, &small), Ok(()));
}

#[test]
fn unknown_apis_and_versions_are_refused() {
    assert_eq!(
        check_request_shape(ApiKey::Produce as i16, 9, &[]),
        Err(DecodeError::NoRequestSchema { api_key: 0 })
    );
    let err = rejects(ApiKey::Fetch, 19, &[0; 64]);
    assert!(
        matches!(
            err,
            DecodeError::UnsupportedVersion {
                min: 0,
                max: 18,
                ..
            }
        ),
        "{err:?}"
    );
    let err = rejects(ApiKey::Metadata, 14, &[0; 64]);
    assert!(
        matches!(
            err,
            DecodeError::UnsupportedVersion {
                min: 0,
                max: 13,
                ..
            }
        ),
        "{err:?}"
    );
}

/// Every array entry type, at every version, against the per-byte budget: arrays alone
/// (no unknown tagged fields) must never trip it, or valid requests would be refused.
#[test]
fn arrays_alone_stay_within_the_decode_budget() {
    /// The worst ratio so far, and the array it was found at.
    type Worst = (usize, String);
    fn visit(walk: &Walk, schema: &Struct, worst: &mut Worst) {
        for field in schema
            .fields
            .iter()
            .filter(|f| f.versions.contains(walk.version))
        {
            match field.ty {
                Ty::Array { of, .. } => {
                    let ratio = of.decoded_bytes().div_ceil(walk.encoded_bytes_min(of.ty()));
                    if ratio > worst.0 {
                        *worst = (ratio, format!("{} v{}", field.name, walk.version));
                    }
                    if let Elem::Struct(inner) = of {
                        visit(walk, inner, worst);
                    }
                }
                Ty::Struct(inner) => visit(walk, inner, worst),
                _ => {}
            }
        }
    }
    let mut worst: Worst = (0, String::new());
    for api in &APIS {
        for version in api.versions.min..=api.versions.max {
            let mut empty: &[u8] = &[];
            let walk = Walk {
                reader: Reader::new(&mut empty, api.flexible.contains(version)),
                flexible: api.flexible.contains(version),
                version,
                decode_bytes: 0,
            };
            visit(&walk, api.body, &mut worst);
        }
    }
    assert!(
        worst.0 <= DECODE_BYTES_PER_BODY_BYTE_MAX,
        "worst ratio {worst:?}"
    );
    assert_eq!(
        worst.0, 40,
        "update the figure in DECODE_BYTES_PER_BODY_BYTE_MAX's comment: {worst:?}"
    );
}

mod core_samples;
mod group_samples;
mod minimal;
mod txn_samples;

use core_samples::*;
use group_samples::*;
use minimal::*;
use txn_samples::*;
