//! Requests whose arrays hold many of the smallest entries each schema allows.

use super::*;

/// Requests whose arrays hold `n` of the smallest entries the schema allows (empty
/// strings, nulls, empty arrays), with little after them: if the guard overestimated an
/// entry's smallest size, it would reject these.
pub(super) fn minimal_samples(api: ApiKey, v: i16, n: usize) -> Vec<BytesMut> {
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
