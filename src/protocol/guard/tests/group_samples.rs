//! Valid requests of the group APIs (classic and KIP-848), built and encoded by
//! kafka-protocol.

use super::*;

pub(super) fn group(name: &str) -> GroupId {
    GroupId(s(name))
}

pub(super) fn join_group_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn sync_group_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn heartbeat_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn leave_group_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn offset_commit_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn offset_fetch_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn list_groups_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn describe_groups_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn delete_groups_samples(v: i16) -> Vec<BytesMut> {
    let mut full = DeleteGroupsRequest::default().with_groups_names(vec![group("g1"), group("")]);
    if let Some((tag, value)) = extra(v >= 2) {
        full = full.with_unknown_tagged_field(tag, value);
    }
    vec![encode(&full, v), encode(&DeleteGroupsRequest::default(), v)]
}

pub(super) fn consumer_group_heartbeat_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn consumer_group_describe_samples(v: i16) -> Vec<BytesMut> {
    let full = ConsumerGroupDescribeRequest::default()
        .with_group_ids(vec![group("g1"), group(""), group("ü")])
        .with_include_authorized_operations(true)
        .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    vec![
        encode(&full, v),
        encode(&ConsumerGroupDescribeRequest::default(), v),
    ]
}

pub(super) fn offset_delete_samples(v: i16) -> Vec<BytesMut> {
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
