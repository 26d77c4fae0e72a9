//! Valid requests of the data-plane, admin, security and reassignment APIs, built and
//! encoded by kafka-protocol, at every version the guard serves.

use super::*;

/// Valid requests of every API at `version`, with several topics and partitions and the
/// version's optional fields set, encoded by the crate.
pub(super) fn samples(api: ApiKey, version: i16) -> Vec<BytesMut> {
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

pub(super) fn security_samples(api: ApiKey, v: i16) -> Vec<BytesMut> {
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

pub(super) fn acl_samples(api: ApiKey, v: i16) -> Vec<BytesMut> {
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

pub(super) fn metadata_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn create_topics_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn delete_topics_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn list_offsets_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn fetch_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn init_producer_id_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn describe_cluster_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn find_coordinator_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn api_versions_samples(v: i16) -> Vec<BytesMut> {
    let mut full = ApiVersionsRequest::default();
    if v >= 3 {
        full = full
            .with_client_software_name(s("corelog-tests"))
            .with_client_software_version(s("0.1.0"))
            .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    }
    vec![encode(&full, v), encode(&ApiVersionsRequest::default(), v)]
}

pub(super) fn create_partitions_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn describe_configs_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn alter_configs_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn incremental_alter_configs_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn delete_records_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn elect_leaders_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn offset_for_leader_epoch_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn describe_log_dirs_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn reassignment_samples(api: ApiKey, v: i16) -> Vec<BytesMut> {
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
