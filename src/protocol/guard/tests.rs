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

/// Valid requests of every API at `version`, with several topics and partitions and the
/// version's optional fields set, encoded by the crate.
fn samples(api: ApiKey, version: i16) -> Vec<BytesMut> {
    let bridge = api.valid_versions().min;
    if version < bridge {
        let bodies = samples(api, bridge);
        return bodies
            .into_iter()
            .map(|b| to_legacy(api, version, b))
            .collect();
    }
    match api {
        ApiKey::Metadata => metadata_samples(version),
        ApiKey::CreateTopics => create_topics_samples(version),
        ApiKey::DeleteTopics => delete_topics_samples(version),
        ApiKey::ListOffsets => list_offsets_samples(version),
        ApiKey::Fetch => fetch_samples(version),
        ApiKey::InitProducerId => init_producer_id_samples(version),
        ApiKey::DescribeCluster => describe_cluster_samples(version),
        ApiKey::FindCoordinator => find_coordinator_samples(version),
        ApiKey::ApiVersions => api_versions_samples(version),
        ApiKey::JoinGroup => join_group_samples(version),
        ApiKey::SyncGroup => sync_group_samples(version),
        ApiKey::Heartbeat => heartbeat_samples(version),
        ApiKey::LeaveGroup => leave_group_samples(version),
        ApiKey::OffsetCommit => offset_commit_samples(version),
        ApiKey::OffsetFetch => offset_fetch_samples(version),
        ApiKey::ListGroups => list_groups_samples(version),
        ApiKey::DescribeGroups => describe_groups_samples(version),
        ApiKey::DeleteGroups => delete_groups_samples(version),
        ApiKey::OffsetDelete => offset_delete_samples(version),
        ApiKey::CreatePartitions => create_partitions_samples(version),
        ApiKey::ElectLeaders => elect_leaders_samples(version),
        ApiKey::DescribeConfigs => describe_configs_samples(version),
        ApiKey::AlterConfigs => alter_configs_samples(version),
        ApiKey::IncrementalAlterConfigs => incremental_alter_configs_samples(version),
        ApiKey::DeleteRecords => delete_records_samples(version),
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch_samples(version),
        ApiKey::DescribeLogDirs => describe_log_dirs_samples(version),
        ApiKey::ConsumerGroupHeartbeat => consumer_group_heartbeat_samples(version),
        ApiKey::ConsumerGroupDescribe => consumer_group_describe_samples(version),
        ApiKey::SaslHandshake
        | ApiKey::SaslAuthenticate
        | ApiKey::AlterUserScramCredentials
        | ApiKey::DescribeUserScramCredentials => security_samples(api, version),
        ApiKey::CreateAcls | ApiKey::DescribeAcls | ApiKey::DeleteAcls => acl_samples(api, version),
        ApiKey::DescribeClientQuotas | ApiKey::AlterClientQuotas => {
            super::quotas::samples(api, version)
        }
        ApiKey::AddPartitionsToTxn => add_partitions_to_txn_samples(version),
        ApiKey::AddOffsetsToTxn => add_offsets_to_txn_samples(version),
        ApiKey::EndTxn => end_txn_samples(version),
        ApiKey::TxnOffsetCommit => txn_offset_commit_samples(version),
        ApiKey::WriteTxnMarkers => write_txn_markers_samples(version),
        ApiKey::DescribeTransactions => describe_transactions_samples(version),
        ApiKey::DescribeProducers => describe_producers_samples(version),
        ApiKey::ListTransactions => list_transactions_samples(version),
        ApiKey::AlterPartitionReassignments | ApiKey::ListPartitionReassignments => {
            reassignment_samples(api, version)
        }
        other => panic!("no samples for {other:?}: add them beside its schema"),
    }
}

fn security_samples(api: ApiKey, v: i16) -> Vec<BytesMut> {
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use kafka_protocol::messages::*;
    match api {
        ApiKey::SaslHandshake => vec![
            encode(
                &SaslHandshakeRequest::default().with_mechanism(s("SCRAM-SHA-512")),
                v,
            ),
            encode(&SaslHandshakeRequest::default(), v),
        ],
        ApiKey::SaslAuthenticate => {
            let mut full = SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from_static(b"n,,n=user,r=abc"));
            if let Some((tag, value)) = extra(v >= 2) {
                full = full.with_unknown_tagged_field(tag, value);
            }
            vec![
                encode(&full, v),
                encode(&SaslAuthenticateRequest::default(), v),
            ]
        }
        ApiKey::AlterUserScramCredentials => {
            let full = AlterUserScramCredentialsRequest::default()
                .with_deletions(vec![ScramCredentialDeletion::default()
                    .with_name(s("bob"))
                    .with_mechanism(1)])
                .with_upsertions(vec![ScramCredentialUpsertion::default()
                    .with_name(s("alice"))
                    .with_mechanism(2)
                    .with_iterations(8192)
                    .with_salt(Bytes::from_static(b"salt"))
                    .with_salted_password(Bytes::from_static(&[7; 64]))])
                .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
            vec![
                encode(&full, v),
                encode(&AlterUserScramCredentialsRequest::default(), v),
            ]
        }
        _ => vec![
            encode(
                &DescribeUserScramCredentialsRequest::default()
                    .with_users(Some(vec![UserName::default().with_name(s("alice"))])),
                v,
            ),
            encode(
                &DescribeUserScramCredentialsRequest::default().with_users(None),
                v,
            ),
        ],
    }
}

fn acl_samples(api: ApiKey, v: i16) -> Vec<BytesMut> {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::*;
    let flexible = v >= 2;
    match api {
        ApiKey::CreateAcls => {
            let creation = AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(s("payments"))
                .with_resource_pattern_type(3)
                .with_principal(s("User:alice"))
                .with_host(s("*"))
                .with_operation(4)
                .with_permission_type(3);
            let mut full =
                CreateAclsRequest::default().with_creations(vec![creation.clone(), creation]);
            if let Some((tag, value)) = extra(flexible) {
                full = full.with_unknown_tagged_field(tag, value);
            }
            vec![encode(&full, v), encode(&CreateAclsRequest::default(), v)]
        }
        ApiKey::DescribeAcls => {
            let mut full = DescribeAclsRequest::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(s("pay")))
                .with_pattern_type_filter(2)
                .with_principal_filter(Some(s("User:alice")))
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1);
            if let Some((tag, value)) = extra(flexible) {
                full = full.with_unknown_tagged_field(tag, value);
            }
            vec![encode(&full, v), encode(&DescribeAclsRequest::default(), v)]
        }
        _ => {
            let filter = DeleteAclsFilter::default()
                .with_resource_type_filter(1)
                .with_resource_name_filter(None)
                .with_pattern_type_filter(1)
                .with_principal_filter(Some(s("User:bob")))
                .with_host_filter(Some(s("*")))
                .with_operation(8)
                .with_permission_type(2);
            let full = DeleteAclsRequest::default().with_filters(vec![filter.clone(), filter]);
            vec![encode(&full, v), encode(&DeleteAclsRequest::default(), v)]
        }
    }
}

fn metadata_samples(v: i16) -> Vec<BytesMut> {
    let flexible = v >= 9;
    let mut topics: Vec<MetadataRequestTopic> = ["orders", "payments", "ü-topic"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut t = MetadataRequestTopic::default().with_name(Some(topic(name)));
            if v >= 10 {
                t.topic_id = id(i as u128);
            }
            if let Some((tag, value)) = extra(flexible && i == 1) {
                t = t.with_unknown_tagged_field(tag, value);
            }
            t
        })
        .collect();
    if v >= 10 {
        topics.push(MetadataRequestTopic::default().with_topic_id(id(9)));
    }
    let mut full = MetadataRequest::default().with_topics(Some(topics));
    if v >= 4 {
        full.allow_auto_topic_creation = false;
    }
    if (8..=10).contains(&v) {
        full.include_cluster_authorized_operations = true;
    }
    if v >= 8 {
        full.include_topic_authorized_operations = true;
    }
    if let Some((tag, value)) = extra(flexible) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    let mut out = vec![
        encode(&full, v),
        encode(&MetadataRequest::default().with_topics(Some(vec![])), v),
    ];
    if v >= 1 {
        out.push(encode(&MetadataRequest::default().with_topics(None), v));
    }
    out
}

fn create_topics_samples(v: i16) -> Vec<BytesMut> {
    let flexible = v >= 5;
    let configs = vec![
        CreatableTopicConfig::default()
            .with_name(s("cleanup.policy"))
            .with_value(Some(s("compact"))),
        CreatableTopicConfig::default().with_name(s("retention.ms")),
    ];
    let assignments = (0..3)
        .map(|p| {
            let mut a = CreatableReplicaAssignment::default()
                .with_partition_index(p)
                .with_broker_ids((0..3).map(|b| BrokerId((p + b) % 3 + 1)).collect());
            if let Some((tag, value)) = extra(flexible && p == 2) {
                a = a.with_unknown_tagged_field(tag, value);
            }
            a
        })
        .collect();
    let mut by_count = CreatableTopic::default()
        .with_name(topic("orders"))
        .with_num_partitions(6)
        .with_replication_factor(3)
        .with_configs(configs);
    if let Some((tag, value)) = extra(flexible) {
        by_count = by_count.with_unknown_tagged_field(tag, value);
    }
    let by_assignment = CreatableTopic::default()
        .with_name(topic("payments"))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(assignments);
    let full = CreateTopicsRequest::default()
        .with_topics(vec![by_count, by_assignment])
        .with_timeout_ms(30_000)
        .with_validate_only(true);
    vec![encode(&full, v), encode(&CreateTopicsRequest::default(), v)]
}

fn delete_topics_samples(v: i16) -> Vec<BytesMut> {
    let full = if v >= 6 {
        DeleteTopicsRequest::default().with_topics(vec![
            DeleteTopicState::default().with_name(Some(topic("orders"))),
            DeleteTopicState::default().with_topic_id(id(1)),
            DeleteTopicState::default()
                .with_topic_id(id(2))
                .with_unknown_tagged_field(23, Bytes::from_static(b"x")),
        ])
    } else {
        DeleteTopicsRequest::default().with_topic_names(vec![
            topic("orders"),
            topic(""),
            topic("payments"),
        ])
    };
    let mut full = full.with_timeout_ms(15_000);
    if let Some((tag, value)) = extra(v >= 4) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&DeleteTopicsRequest::default(), v)]
}

fn list_offsets_samples(v: i16) -> Vec<BytesMut> {
    let flexible = v >= 6;
    let partition = |index: i32, timestamp: i64| {
        let mut p = ListOffsetsPartition::default()
            .with_partition_index(index)
            .with_timestamp(timestamp);
        if v >= 4 {
            p.current_leader_epoch = 7;
        }
        if let Some((tag, value)) = extra(flexible && index == 1) {
            p = p.with_unknown_tagged_field(tag, value);
        }
        p
    };
    let topics = vec![
        ListOffsetsTopic::default()
            .with_name(topic("orders"))
            .with_partitions(vec![
                partition(0, -1),
                partition(1, -2),
                partition(2, 1_700_000_000_000),
            ]),
        ListOffsetsTopic::default().with_name(topic("empty")),
    ];
    let mut full = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(topics);
    if v >= 2 {
        full.isolation_level = 1;
    }
    if v >= 10 {
        full.timeout_ms = 5_000;
    }
    vec![encode(&full, v), encode(&ListOffsetsRequest::default(), v)]
}

fn fetch_samples(v: i16) -> Vec<BytesMut> {
    let partition = |index: i32| {
        let mut p = FetchPartition::default()
            .with_partition(index)
            .with_fetch_offset(1000 * i64::from(index))
            .with_partition_max_bytes(1 << 20);
        if v >= 9 {
            p.current_leader_epoch = 4;
        }
        if v >= 12 {
            p.last_fetched_epoch = 3;
        }
        if v >= 5 {
            p.log_start_offset = 10;
        }
        if v >= 17 && index == 1 {
            p.replica_directory_id = id(7);
        }
        if v >= 18 && index == 2 {
            p.high_watermark = 99;
        }
        if let Some((tag, value)) = extra(v >= 12 && index == 0) {
            p = p.with_unknown_tagged_field(tag, value);
        }
        p
    };
    let fetch_topic = |n: u128, name: &str, partitions: Vec<FetchPartition>| {
        let t = FetchTopic::default().with_partitions(partitions);
        if v >= 13 {
            t.with_topic_id(id(n))
        } else {
            t.with_topic(topic(name))
        }
    };
    let mut full = FetchRequest::default()
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_isolation_level(1)
        .with_topics(vec![
            fetch_topic(1, "orders", (0..3).map(partition).collect()),
            fetch_topic(2, "payments", vec![partition(5)]),
            fetch_topic(3, "idle", vec![]),
        ]);
    if v <= 14 {
        full.replica_id = BrokerId(-1);
    }
    if v >= 7 {
        full.session_id = 42;
        full.session_epoch = 3;
        let forgotten = ForgottenTopic::default().with_partitions(vec![1, 2, 3]);
        let forgotten = if v >= 13 {
            forgotten.with_topic_id(id(4))
        } else {
            forgotten.with_topic(topic("old"))
        };
        full.forgotten_topics_data = vec![forgotten];
    }
    if v >= 11 {
        full.rack_id = s("rack-a");
    }
    if v >= 12 {
        full = full
            .with_cluster_id(Some(s("corelog-cluster")))
            .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    }
    if v >= 15 {
        full.replica_state = ReplicaState::default()
            .with_replica_id(BrokerId(3))
            .with_replica_epoch(7);
    }
    vec![encode(&full, v), encode(&FetchRequest::default(), v)]
}

fn init_producer_id_samples(v: i16) -> Vec<BytesMut> {
    let mut full = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s("tx-1"))))
        .with_transaction_timeout_ms(60_000);
    if v >= 3 {
        full.producer_id = ProducerId(1234);
        full.producer_epoch = 5;
    }
    if let Some((tag, value)) = extra(v >= 2) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    let idempotent = InitProducerIdRequest::default().with_transaction_timeout_ms(-1);
    vec![encode(&full, v), encode(&idempotent, v)]
}

fn describe_cluster_samples(v: i16) -> Vec<BytesMut> {
    let mut full = DescribeClusterRequest::default()
        .with_include_cluster_authorized_operations(true)
        .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    if v >= 1 {
        full.endpoint_type = 2;
    }
    if v >= 2 {
        full.include_fenced_brokers = true;
    }
    vec![
        encode(&full, v),
        encode(&DescribeClusterRequest::default(), v),
    ]
}

fn find_coordinator_samples(v: i16) -> Vec<BytesMut> {
    let mut full = FindCoordinatorRequest::default();
    if v <= 3 {
        full.key = s("group-ü");
    }
    if v >= 1 {
        full.key_type = 1;
    }
    if v >= 4 {
        full.coordinator_keys = vec![s("g1"), s(""), s("a-much-longer-group-name")];
    }
    if v >= 3 {
        full = full.with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    }
    vec![
        encode(&full, v),
        encode(&FindCoordinatorRequest::default(), v),
    ]
}

fn api_versions_samples(v: i16) -> Vec<BytesMut> {
    let mut full = ApiVersionsRequest::default();
    if v >= 3 {
        full = full
            .with_client_software_name(s("corelog-tests"))
            .with_client_software_version(s("0.1.0"))
            .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    }
    vec![encode(&full, v), encode(&ApiVersionsRequest::default(), v)]
}

fn group(name: &str) -> GroupId {
    GroupId(s(name))
}

fn join_group_samples(v: i16) -> Vec<BytesMut> {
    let flexible = v >= 6;
    let protocols = ["range", "roundrobin", "cooperative-sticky"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut p = JoinGroupRequestProtocol::default()
                .with_name(s(name))
                .with_metadata(Bytes::from(vec![i as u8; 3 * i]));
            if let Some((tag, value)) = extra(flexible && i == 1) {
                p = p.with_unknown_tagged_field(tag, value);
            }
            p
        })
        .collect();
    let mut full = JoinGroupRequest::default()
        .with_group_id(group("consumers-ü"))
        .with_session_timeout_ms(45_000)
        .with_member_id(s("rdkafka-0123"))
        .with_protocol_type(s("consumer"))
        .with_protocols(protocols);
    if v >= 1 {
        full.rebalance_timeout_ms = 300_000;
    }
    if v >= 5 {
        full.group_instance_id = Some(s("instance-1"));
    }
    if v >= 8 {
        full.reason = Some(s("rejoin"));
    }
    if let Some((tag, value)) = extra(flexible) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&JoinGroupRequest::default(), v)]
}

fn sync_group_samples(v: i16) -> Vec<BytesMut> {
    let flexible = v >= 4;
    let assignments = (0..3)
        .map(|i| {
            let mut a = SyncGroupRequestAssignment::default()
                .with_member_id(s(&format!("member-{i}")))
                .with_assignment(Bytes::from(vec![7; 5 * i]));
            if let Some((tag, value)) = extra(flexible && i == 2) {
                a = a.with_unknown_tagged_field(tag, value);
            }
            a
        })
        .collect();
    let mut full = SyncGroupRequest::default()
        .with_group_id(group("g"))
        .with_generation_id(3)
        .with_member_id(s("member-0"))
        .with_assignments(assignments);
    if v >= 3 {
        full.group_instance_id = Some(s("instance-1"));
    }
    if v >= 5 {
        full.protocol_type = Some(s("consumer"));
        full.protocol_name = Some(s("range"));
    }
    if let Some((tag, value)) = extra(flexible) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&SyncGroupRequest::default(), v)]
}

fn heartbeat_samples(v: i16) -> Vec<BytesMut> {
    let mut full = HeartbeatRequest::default()
        .with_group_id(group("g"))
        .with_generation_id(7)
        .with_member_id(s("member-0"));
    if v >= 3 {
        full.group_instance_id = Some(s("instance-1"));
    }
    if let Some((tag, value)) = extra(v >= 4) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&HeartbeatRequest::default(), v)]
}

fn leave_group_samples(v: i16) -> Vec<BytesMut> {
    let mut full = LeaveGroupRequest::default().with_group_id(group("g"));
    if v <= 2 {
        full.member_id = s("member-0");
    } else {
        full.members = (0..3)
            .map(|i| {
                let mut m = MemberIdentity::default().with_member_id(s(&format!("m-{i}")));
                if i == 1 {
                    m.group_instance_id = Some(s("instance-1"));
                }
                if v >= 5 && i == 2 {
                    m.reason = Some(s("closing"));
                }
                if let Some((tag, value)) = extra(v >= 4 && i == 0) {
                    m = m.with_unknown_tagged_field(tag, value);
                }
                m
            })
            .collect();
    }
    if let Some((tag, value)) = extra(v >= 4) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&LeaveGroupRequest::default(), v)]
}

fn offset_commit_samples(v: i16) -> Vec<BytesMut> {
    let flexible = v >= 8;
    let partition = |index: i32| {
        let mut p = OffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(1000 + i64::from(index));
        if v >= 6 {
            p.committed_leader_epoch = 2;
        }
        if index == 1 {
            p.committed_metadata = Some(s("meta"));
        }
        if let Some((tag, value)) = extra(flexible && index == 2) {
            p = p.with_unknown_tagged_field(tag, value);
        }
        p
    };
    let topics = vec![
        OffsetCommitRequestTopic::default()
            .with_name(topic("orders"))
            .with_partitions((0..3).map(partition).collect()),
        OffsetCommitRequestTopic::default().with_name(topic("empty")),
    ];
    let mut full = OffsetCommitRequest::default()
        .with_group_id(group("g"))
        .with_generation_id_or_member_epoch(4)
        .with_member_id(s("member-0"))
        .with_topics(topics);
    if v >= 7 {
        full.group_instance_id = Some(s("instance-1"));
    }
    if v <= 4 {
        full.retention_time_ms = 86_400_000;
    }
    if let Some((tag, value)) = extra(flexible) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&OffsetCommitRequest::default(), v)]
}

fn offset_fetch_samples(v: i16) -> Vec<BytesMut> {
    let flexible = v >= 6;
    let mut full = OffsetFetchRequest::default();
    let mut all = OffsetFetchRequest::default();
    if v <= 7 {
        full.group_id = group("g");
        full.topics = Some(
            ["orders", "payments"]
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let mut t = OffsetFetchRequestTopic::default()
                        .with_name(topic(name))
                        .with_partition_indexes((0..=i as i32).collect());
                    if let Some((tag, value)) = extra(flexible && i == 1) {
                        t = t.with_unknown_tagged_field(tag, value);
                    }
                    t
                })
                .collect(),
        );
        all.group_id = group("g2");
        if v >= 2 {
            all.topics = None;
        }
    } else {
        let mut g1 = OffsetFetchRequestGroup::default()
            .with_group_id(group("g1"))
            .with_topics(Some(vec![
                OffsetFetchRequestTopics::default()
                    .with_name(topic("orders"))
                    .with_partition_indexes(vec![0, 1, 2])
                    .with_unknown_tagged_field(23, Bytes::from_static(b"x")),
                OffsetFetchRequestTopics::default().with_name(topic("empty")),
            ]));
        if v >= 9 {
            g1.member_id = Some(s("member-0"));
            g1.member_epoch = 5;
        }
        let g2 = OffsetFetchRequestGroup::default()
            .with_group_id(group("g2"))
            .with_topics(None);
        full.groups = vec![g1, g2];
        all.groups = vec![OffsetFetchRequestGroup::default().with_topics(Some(vec![]))];
    }
    if v >= 7 {
        full.require_stable = true;
    }
    if let Some((tag, value)) = extra(flexible) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&all, v)]
}

fn list_groups_samples(v: i16) -> Vec<BytesMut> {
    let mut full = ListGroupsRequest::default();
    if v >= 4 {
        full.states_filter = vec![s("Stable"), s("Empty")];
    }
    if v >= 5 {
        full.types_filter = vec![s("classic")];
    }
    if let Some((tag, value)) = extra(v >= 3) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&ListGroupsRequest::default(), v)]
}

fn describe_groups_samples(v: i16) -> Vec<BytesMut> {
    let mut full =
        DescribeGroupsRequest::default().with_groups(vec![group("g1"), group(""), group("ü")]);
    if v >= 3 {
        full.include_authorized_operations = true;
    }
    if let Some((tag, value)) = extra(v >= 5) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![
        encode(&full, v),
        encode(&DescribeGroupsRequest::default(), v),
    ]
}

fn delete_groups_samples(v: i16) -> Vec<BytesMut> {
    let mut full = DeleteGroupsRequest::default().with_groups_names(vec![group("g1"), group("")]);
    if let Some((tag, value)) = extra(v >= 2) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&DeleteGroupsRequest::default(), v)]
}

fn consumer_group_heartbeat_samples(v: i16) -> Vec<BytesMut> {
    let mut join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("g"))
        .with_member_id(s("m-0"))
        .with_member_epoch(0)
        .with_instance_id(Some(s("instance-1")))
        .with_rack_id(Some(s("rack-a")))
        .with_rebalance_timeout_ms(300_000)
        .with_subscribed_topic_names(Some(vec![topic("orders"), topic("ü")]))
        .with_server_assignor(Some(s("uniform")))
        .with_topic_partitions(Some(vec![]))
        .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    if v >= 1 {
        join.subscribed_topic_regex = Some(s("orders-.*"));
    }
    let owned = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(group("g"))
        .with_member_id(s("m-0"))
        .with_member_epoch(7)
        .with_topic_partitions(Some(vec![
            TopicPartitions::default()
                .with_topic_id(id(1))
                .with_partitions(vec![0, 3, 5]),
            TopicPartitions::default()
                .with_topic_id(id(2))
                .with_unknown_tagged_field(23, Bytes::from_static(b"x")),
        ]));
    vec![
        encode(&join, v),
        encode(&owned, v),
        encode(&ConsumerGroupHeartbeatRequest::default(), v),
    ]
}

fn consumer_group_describe_samples(v: i16) -> Vec<BytesMut> {
    let full = ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![group("g1"), group(""), group("ü")])
        .with_include_authorized_operations(true)
        .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    vec![
        encode(&full, v),
        encode(&ConsumerGroupDescribeRequest::default(), v),
    ]
}

fn offset_delete_samples(v: i16) -> Vec<BytesMut> {
    let partitions = |ids: &[i32]| {
        ids.iter()
            .map(|&i| OffsetDeleteRequestPartition::default().with_partition_index(i))
            .collect::<Vec<_>>()
    };
    let full = OffsetDeleteRequest::default()
        .with_group_id(group("g1"))
        .with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(topic("t1"))
                .with_partitions(partitions(&[0, 1, 7])),
            OffsetDeleteRequestTopic::default().with_name(topic("empty")),
            OffsetDeleteRequestTopic::default()
                .with_name(topic("t2"))
                .with_partitions(partitions(&[-1])),
        ]);
    vec![encode(&full, v), encode(&OffsetDeleteRequest::default(), v)]
}

fn create_partitions_samples(v: i16) -> Vec<BytesMut> {
    use create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
    let assignment = |ids: &[i32]| {
        CreatePartitionsAssignment::default()
            .with_broker_ids(ids.iter().map(|&i| BrokerId(i)).collect())
    };
    let mut full = CreatePartitionsRequest::default()
        .with_topics(vec![
            CreatePartitionsTopic::default()
                .with_name(topic("t1"))
                .with_count(11)
                .with_assignments(Some(vec![assignment(&[0]), assignment(&[0, 1])])),
            CreatePartitionsTopic::default()
                .with_name(topic("t2"))
                .with_count(3)
                .with_assignments(None),
        ])
        .with_timeout_ms(30_000)
        .with_validate_only(true);
    if let Some((tag, value)) = extra(v >= 2) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![
        encode(&full, v),
        encode(&CreatePartitionsRequest::default(), v),
    ]
}

fn describe_configs_samples(v: i16) -> Vec<BytesMut> {
    use describe_configs_request::DescribeConfigsResource;
    let mut full = DescribeConfigsRequest::default()
        .with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t1"))
                .with_configuration_keys(Some(vec![s("retention.ms"), s("")])),
            DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("0"))
                .with_configuration_keys(None),
        ])
        .with_include_synonyms(true)
        .with_include_documentation(v >= 3);
    if let Some((tag, value)) = extra(v >= 4) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![
        encode(&full, v),
        encode(&DescribeConfigsRequest::default(), v),
    ]
}

fn alter_configs_samples(v: i16) -> Vec<BytesMut> {
    use alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut full = AlterConfigsRequest::default()
        .with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t1"))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_value(Some(s("1000"))),
                    AlterableConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_value(None),
                ]),
            AlterConfigsResource::default().with_resource_type(4),
        ])
        .with_validate_only(true);
    if let Some((tag, value)) = extra(v >= 2) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&AlterConfigsRequest::default(), v)]
}

fn incremental_alter_configs_samples(v: i16) -> Vec<BytesMut> {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut full = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t1"))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(s("retention.ms"))
                        .with_config_operation(0)
                        .with_value(Some(s("1000"))),
                    AlterableConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_config_operation(1)
                        .with_value(None),
                ]),
            AlterConfigsResource::default().with_resource_type(4),
        ])
        .with_validate_only(false);
    if let Some((tag, value)) = extra(v >= 1) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![
        encode(&full, v),
        encode(&IncrementalAlterConfigsRequest::default(), v),
    ]
}

fn delete_records_samples(v: i16) -> Vec<BytesMut> {
    use delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    let partition = |i: i32, offset: i64| {
        DeleteRecordsPartition::default()
            .with_partition_index(i)
            .with_offset(offset)
    };
    let mut full = DeleteRecordsRequest::default()
        .with_topics(vec![
            DeleteRecordsTopic::default()
                .with_name(topic("t1"))
                .with_partitions(vec![partition(0, 10), partition(3, -1)]),
            DeleteRecordsTopic::default().with_name(topic("empty")),
        ])
        .with_timeout_ms(30_000);
    if let Some((tag, value)) = extra(v >= 2) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![
        encode(&full, v),
        encode(&DeleteRecordsRequest::default(), v),
    ]
}

fn elect_leaders_samples(v: i16) -> Vec<BytesMut> {
    use elect_leaders_request::TopicPartitions;
    let mut full = ElectLeadersRequest::default()
        .with_election_type(if v >= 1 { 1 } else { 0 })
        .with_topic_partitions(Some(vec![
            TopicPartitions::default()
                .with_topic(topic("t1"))
                .with_partitions(vec![0, 3]),
            TopicPartitions::default().with_topic(topic("empty")),
        ]))
        .with_timeout_ms(60_000);
    if let Some((tag, value)) = extra(v >= 2) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![
        encode(&full, v),
        encode(&ElectLeadersRequest::default(), v),
        encode(
            &ElectLeadersRequest::default().with_topic_partitions(Some(vec![])),
            v,
        ),
    ]
}

fn offset_for_leader_epoch_samples(v: i16) -> Vec<BytesMut> {
    use offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    let partition = |i: i32, epoch: i32| {
        OffsetForLeaderPartition::default()
            .with_partition(i)
            .with_current_leader_epoch(epoch)
            .with_leader_epoch(epoch - 1)
    };
    let mut full = OffsetForLeaderEpochRequest::default().with_topics(vec![
        OffsetForLeaderTopic::default()
            .with_topic(topic("t1"))
            .with_partitions(vec![partition(0, 5), partition(2, -1)]),
        OffsetForLeaderTopic::default().with_topic(topic("empty")),
    ]);
    if v >= 3 {
        full = full.with_replica_id(BrokerId(2));
    }
    if let Some((tag, value)) = extra(v >= 4) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![
        encode(&full, v),
        encode(&OffsetForLeaderEpochRequest::default(), v),
    ]
}

fn describe_log_dirs_samples(v: i16) -> Vec<BytesMut> {
    use describe_log_dirs_request::DescribableLogDirTopic;
    let mut full = DescribeLogDirsRequest::default().with_topics(Some(vec![
        DescribableLogDirTopic::default()
            .with_topic(topic("t1"))
            .with_partitions(vec![0, 1, 7]),
        DescribableLogDirTopic::default().with_topic(topic("")),
    ]));
    if let Some((tag, value)) = extra(v >= 2) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![
        encode(&full, v),
        encode(&DescribeLogDirsRequest::default().with_topics(None), v),
    ]
}

/// Requests whose arrays hold `n` of the smallest entries the schema allows (empty
/// strings, nulls, empty arrays), with little after them: if the guard overestimated an
/// entry's smallest size, it would reject these.
fn minimal_samples(api: ApiKey, v: i16, n: usize) -> Vec<BytesMut> {
    let bridge = api.valid_versions().min;
    if v < bridge {
        let bodies = minimal_samples(api, bridge, n);
        return bodies.into_iter().map(|b| to_legacy(api, v, b)).collect();
    }
    let request = match api {
        ApiKey::Metadata => encode(
            &MetadataRequest::default().with_topics(Some(vec![Default::default(); n])),
            v,
        ),
        ApiKey::CreateTopics => {
            let topic = CreatableTopic::default()
                .with_assignments(vec![Default::default(); n])
                .with_configs(vec![Default::default(); n]);
            let mut topics = vec![CreatableTopic::default(); n];
            topics.push(topic);
            encode(&CreateTopicsRequest::default().with_topics(topics), v)
        }
        ApiKey::DeleteTopics if v >= 6 => encode(
            &DeleteTopicsRequest::default().with_topics(vec![Default::default(); n]),
            v,
        ),
        ApiKey::DeleteTopics => encode(
            &DeleteTopicsRequest::default().with_topic_names(vec![Default::default(); n]),
            v,
        ),
        ApiKey::ListOffsets => {
            let mut topics = vec![ListOffsetsTopic::default(); n];
            topics.push(ListOffsetsTopic::default().with_partitions(vec![Default::default(); n]));
            encode(&ListOffsetsRequest::default().with_topics(topics), v)
        }
        ApiKey::Fetch => {
            let mut topics = vec![FetchTopic::default(); n];
            topics.push(FetchTopic::default().with_partitions(vec![Default::default(); n]));
            let mut request = FetchRequest::default().with_topics(topics);
            if v >= 7 {
                let mut forgotten = vec![ForgottenTopic::default(); n];
                forgotten.push(ForgottenTopic::default().with_partitions(vec![0; n]));
                request.forgotten_topics_data = forgotten;
            }
            encode(&request, v)
        }
        ApiKey::JoinGroup => encode(
            &JoinGroupRequest::default().with_protocols(vec![Default::default(); n]),
            v,
        ),
        ApiKey::SyncGroup => encode(
            &SyncGroupRequest::default().with_assignments(vec![Default::default(); n]),
            v,
        ),
        ApiKey::LeaveGroup if v >= 3 => encode(
            &LeaveGroupRequest::default().with_members(vec![Default::default(); n]),
            v,
        ),
        ApiKey::OffsetCommit => {
            let mut topics = vec![OffsetCommitRequestTopic::default(); n];
            topics.push(OffsetCommitRequestTopic::default().with_partitions(vec![
                Default::default(
                );
                n
            ]));
            encode(&OffsetCommitRequest::default().with_topics(topics), v)
        }
        ApiKey::OffsetFetch if v >= 8 => {
            let mut groups = vec![OffsetFetchRequestGroup::default().with_topics(None); n];
            groups.push(OffsetFetchRequestGroup::default().with_topics(Some(vec![
                OffsetFetchRequestTopics::default().with_partition_indexes(vec![0; n]);
                n
            ])));
            encode(&OffsetFetchRequest::default().with_groups(groups), v)
        }
        ApiKey::OffsetFetch => {
            let mut topics = vec![OffsetFetchRequestTopic::default(); n];
            topics.push(OffsetFetchRequestTopic::default().with_partition_indexes(vec![0; n]));
            encode(&OffsetFetchRequest::default().with_topics(Some(topics)), v)
        }
        ApiKey::ListGroups if v >= 5 => encode(
            &ListGroupsRequest::default()
                .with_states_filter(vec![Default::default(); n])
                .with_types_filter(vec![Default::default(); n]),
            v,
        ),
        ApiKey::ListGroups if v >= 4 => encode(
            &ListGroupsRequest::default().with_states_filter(vec![Default::default(); n]),
            v,
        ),
        ApiKey::DescribeGroups => encode(
            &DescribeGroupsRequest::default().with_groups(vec![Default::default(); n]),
            v,
        ),
        ApiKey::DeleteGroups => encode(
            &DeleteGroupsRequest::default().with_groups_names(vec![Default::default(); n]),
            v,
        ),
        ApiKey::ConsumerGroupHeartbeat => encode(
            &ConsumerGroupHeartbeatRequest::default()
                .with_subscribed_topic_names(Some(vec![Default::default(); n]))
                .with_topic_partitions(Some(vec![
                    TopicPartitions::default()
                        .with_partitions(vec![0; n]);
                    n
                ])),
            v,
        ),
        ApiKey::ConsumerGroupDescribe => encode(
            &ConsumerGroupDescribeRequest::default().with_group_ids(vec![Default::default(); n]),
            v,
        ),
        ApiKey::AlterUserScramCredentials => encode(
            &kafka_protocol::messages::AlterUserScramCredentialsRequest::default()
                .with_deletions(vec![Default::default(); n])
                .with_upsertions(vec![Default::default(); n]),
            v,
        ),
        ApiKey::DescribeUserScramCredentials => encode(
            &kafka_protocol::messages::DescribeUserScramCredentialsRequest::default()
                .with_users(Some(vec![Default::default(); n])),
            v,
        ),
        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => security_samples(api, v).remove(1),
        ApiKey::OffsetDelete => {
            let mut topics = vec![OffsetDeleteRequestTopic::default(); n];
            topics.push(OffsetDeleteRequestTopic::default().with_partitions(vec![
                Default::default(
                );
                n
            ]));
            encode(&OffsetDeleteRequest::default().with_topics(topics), v)
        }
        ApiKey::ElectLeaders => {
            let topics = vec![
                elect_leaders_request::TopicPartitions::default()
                    .with_partitions(vec![0; n]);
                n
            ];
            encode(
                &ElectLeadersRequest::default().with_topic_partitions(Some(topics)),
                v,
            )
        }
        ApiKey::CreatePartitions => {
            let mut topics = vec![create_partitions_request::CreatePartitionsTopic::default(); n];
            topics.push(
                create_partitions_request::CreatePartitionsTopic::default()
                    .with_assignments(Some(vec![Default::default(); n])),
            );
            encode(&CreatePartitionsRequest::default().with_topics(topics), v)
        }
        ApiKey::DescribeConfigs => encode(
            &DescribeConfigsRequest::default().with_resources(vec![Default::default(); n]),
            v,
        ),
        ApiKey::AlterConfigs => {
            let mut resources = vec![alter_configs_request::AlterConfigsResource::default(); n];
            resources.push(
                alter_configs_request::AlterConfigsResource::default()
                    .with_configs(vec![Default::default(); n]),
            );
            encode(&AlterConfigsRequest::default().with_resources(resources), v)
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut resources =
                vec![incremental_alter_configs_request::AlterConfigsResource::default(); n];
            resources.push(
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_configs(vec![Default::default(); n]),
            );
            encode(
                &IncrementalAlterConfigsRequest::default().with_resources(resources),
                v,
            )
        }
        ApiKey::DeleteRecords => {
            let mut topics = vec![delete_records_request::DeleteRecordsTopic::default(); n];
            topics.push(
                delete_records_request::DeleteRecordsTopic::default()
                    .with_partitions(vec![Default::default(); n]),
            );
            encode(&DeleteRecordsRequest::default().with_topics(topics), v)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut topics =
                vec![offset_for_leader_epoch_request::OffsetForLeaderTopic::default(); n];
            topics.push(
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_partitions(vec![Default::default(); n]),
            );
            encode(
                &OffsetForLeaderEpochRequest::default().with_topics(topics),
                v,
            )
        }
        ApiKey::DescribeLogDirs => {
            let mut topics = vec![describe_log_dirs_request::DescribableLogDirTopic::default(); n];
            topics.push(
                describe_log_dirs_request::DescribableLogDirTopic::default()
                    .with_partitions(vec![0; n]),
            );
            encode(
                &DescribeLogDirsRequest::default().with_topics(Some(topics)),
                v,
            )
        }
        _ => return vec![],
    };
    vec![request]
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

fn add_partitions_to_txn_samples(v: i16) -> Vec<BytesMut> {
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    let topics = vec![
        AddPartitionsToTxnTopic::default()
            .with_name(topic("orders"))
            .with_partitions(vec![0, 1, 2]),
        AddPartitionsToTxnTopic::default().with_name(topic("ü-empty")),
    ];
    let mut full = AddPartitionsToTxnRequest::default();
    if v >= 4 {
        full.transactions = vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(s("tx-1")))
                .with_producer_id(ProducerId(7))
                .with_producer_epoch(3)
                .with_verify_only(true)
                .with_topics(topics),
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(s("tx-2"))),
        ];
    } else {
        full.v3_and_below_transactional_id = TransactionalId(s("tx-1"));
        full.v3_and_below_producer_id = ProducerId(7);
        full.v3_and_below_producer_epoch = 3;
        full.v3_and_below_topics = topics;
    }
    if let Some((tag, value)) = extra(v >= 3) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![
        encode(&full, v),
        encode(&AddPartitionsToTxnRequest::default(), v),
    ]
}

fn add_offsets_to_txn_samples(v: i16) -> Vec<BytesMut> {
    let mut full = AddOffsetsToTxnRequest::default()
        .with_transactional_id(TransactionalId(s("tx-1")))
        .with_producer_id(ProducerId(7))
        .with_producer_epoch(3)
        .with_group_id(group("g"));
    if let Some((tag, value)) = extra(v >= 3) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v)]
}

fn end_txn_samples(v: i16) -> Vec<BytesMut> {
    let mut full = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s("tx-1")))
        .with_producer_id(ProducerId(7))
        .with_producer_epoch(3)
        .with_committed(true);
    if let Some((tag, value)) = extra(v >= 3) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&EndTxnRequest::default(), v)]
}

fn txn_offset_commit_samples(v: i16) -> Vec<BytesMut> {
    use kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let partition = |index: i32| {
        let mut p = TxnOffsetCommitRequestPartition::default()
            .with_partition_index(index)
            .with_committed_offset(1000 + i64::from(index));
        if v >= 2 {
            p.committed_leader_epoch = 2;
        }
        if index == 1 {
            p.committed_metadata = Some(s("meta"));
        }
        if let Some((tag, value)) = extra(v >= 3 && index == 2) {
            p = p.with_unknown_tagged_field(tag, value);
        }
        p
    };
    let mut full = TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s("tx-1")))
        .with_group_id(group("g"))
        .with_producer_id(ProducerId(7))
        .with_producer_epoch(3)
        .with_topics(vec![
            TxnOffsetCommitRequestTopic::default()
                .with_name(topic("orders"))
                .with_partitions((0..3).map(partition).collect()),
            TxnOffsetCommitRequestTopic::default().with_name(topic("empty")),
        ]);
    if v >= 3 {
        full.generation_id = 4;
        full.member_id = s("member-0");
        full.group_instance_id = Some(s("instance-1"));
    }
    if let Some((tag, value)) = extra(v >= 3) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![
        encode(&full, v),
        encode(&TxnOffsetCommitRequest::default(), v),
    ]
}

fn write_txn_markers_samples(v: i16) -> Vec<BytesMut> {
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    let marker = WritableTxnMarker::default()
        .with_producer_id(ProducerId(7))
        .with_producer_epoch(3)
        .with_transaction_result(true)
        .with_coordinator_epoch(2)
        .with_topics(vec![
            WritableTxnMarkerTopic::default()
                .with_name(topic("orders"))
                .with_partition_indexes(vec![0, 1]),
            WritableTxnMarkerTopic::default().with_name(topic("ü-empty")),
        ])
        .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    let full =
        WriteTxnMarkersRequest::default().with_markers(vec![marker, WritableTxnMarker::default()]);
    vec![
        encode(&full, v),
        encode(&WriteTxnMarkersRequest::default(), v),
    ]
}

fn describe_transactions_samples(v: i16) -> Vec<BytesMut> {
    let full = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(s("tx-1")), TransactionalId(s("ü-tx"))])
        .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    vec![
        encode(&full, v),
        encode(&DescribeTransactionsRequest::default(), v),
    ]
}

fn list_transactions_samples(v: i16) -> Vec<BytesMut> {
    let mut full = ListTransactionsRequest::default()
        .with_state_filters(vec![s("Ongoing"), s("PrepareCommit")])
        .with_producer_id_filters(vec![ProducerId(7), ProducerId(i64::MAX)])
        .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    if v >= 1 {
        full.duration_filter = 60_000;
    }
    if v >= 2 {
        full.transactional_id_pattern = Some(s("pay-.*"));
    }
    vec![
        encode(&full, v),
        encode(&ListTransactionsRequest::default(), v),
    ]
}

fn describe_producers_samples(v: i16) -> Vec<BytesMut> {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    let full = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(topic("orders"))
            .with_partition_indexes(vec![0, 2])
            .with_unknown_tagged_field(23, Bytes::from_static(b"future")),
        TopicRequest::default().with_name(topic("ü-empty")),
    ]);
    vec![
        encode(&full, v),
        encode(&DescribeProducersRequest::default(), v),
    ]
}

fn reassignment_samples(api: ApiKey, v: i16) -> Vec<BytesMut> {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, ListPartitionReassignmentsRequest,
    };
    let (tag, value) = extra(true).expect("flexible");
    if api == ApiKey::ListPartitionReassignments {
        let full = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(Some(vec![ListPartitionReassignmentsTopics::default()
                .with_name(topic("t1"))
                .with_partition_indexes(vec![0, 3])]))
            .with_unknown_tagged_field(tag, value);
        return vec![
            encode(&full, v),
            encode(&ListPartitionReassignmentsRequest::default(), v),
        ];
    }
    let full = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(topic("t1"))
            .with_partitions(vec![
                ReassignablePartition::default()
                    .with_partition_index(0)
                    .with_replicas(Some(vec![BrokerId(1), BrokerId(2)])),
                ReassignablePartition::default()
                    .with_partition_index(1)
                    .with_replicas(None),
            ])])
        .with_unknown_tagged_field(tag, value);
    vec![
        encode(&full, v),
        encode(&AlterPartitionReassignmentsRequest::default(), v),
    ]
}
