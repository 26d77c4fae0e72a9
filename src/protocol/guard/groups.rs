//! Schemas of the group APIs (classic and KIP-848 consumer groups, offsets), transcribed
//! from kafka-protocol 0.18's `*_request.rs` (and 0.15.1's for the versions Kafka 4.0
//! removed).

use super::*;

pub(super) static JOIN_GROUP: Struct = Struct {
    decoded_bytes: size_of::<JoinGroupRequest>(),
    fields: &[
        field("group_id", ALL, STRING),
        field("session_timeout_ms", ALL, Ty::Int32),
        field("rebalance_timeout_ms", since(1), Ty::Int32),
        field("member_id", ALL, STRING),
        field("group_instance_id", since(5), NULLABLE_STRING),
        field("protocol_type", ALL, STRING),
        field("protocols", ALL, array(Elem::Struct(&JOIN_GROUP_PROTOCOL))),
        field("reason", since(8), NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static JOIN_GROUP_PROTOCOL: Struct = Struct {
    decoded_bytes: size_of::<join_group_request::JoinGroupRequestProtocol>(),
    fields: &[
        field("name", ALL, STRING),
        field("metadata", ALL, Ty::Bytes),
    ],
    tagged: &[],
};

pub(super) static SYNC_GROUP: Struct = Struct {
    decoded_bytes: size_of::<SyncGroupRequest>(),
    fields: &[
        field("group_id", ALL, STRING),
        field("generation_id", ALL, Ty::Int32),
        field("member_id", ALL, STRING),
        field("group_instance_id", since(3), NULLABLE_STRING),
        field("protocol_type", since(5), NULLABLE_STRING),
        field("protocol_name", since(5), NULLABLE_STRING),
        field(
            "assignments",
            ALL,
            array(Elem::Struct(&SYNC_GROUP_ASSIGNMENT)),
        ),
    ],
    tagged: &[],
};

pub(super) static SYNC_GROUP_ASSIGNMENT: Struct = Struct {
    decoded_bytes: size_of::<sync_group_request::SyncGroupRequestAssignment>(),
    fields: &[
        field("member_id", ALL, STRING),
        field("assignment", ALL, Ty::Bytes),
    ],
    tagged: &[],
};

pub(super) static HEARTBEAT: Struct = Struct {
    decoded_bytes: size_of::<HeartbeatRequest>(),
    fields: &[
        field("group_id", ALL, STRING),
        field("generation_id", ALL, Ty::Int32),
        field("member_id", ALL, STRING),
        field("group_instance_id", since(3), NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static LEAVE_GROUP: Struct = Struct {
    decoded_bytes: size_of::<LeaveGroupRequest>(),
    fields: &[
        field("group_id", ALL, STRING),
        field("member_id", until(2), STRING),
        field(
            "members",
            since(3),
            array(Elem::Struct(&LEAVE_GROUP_MEMBER)),
        ),
    ],
    tagged: &[],
};

pub(super) static LEAVE_GROUP_MEMBER: Struct = Struct {
    decoded_bytes: size_of::<leave_group_request::MemberIdentity>(),
    fields: &[
        field("member_id", ALL, STRING),
        field("group_instance_id", ALL, NULLABLE_STRING),
        field("reason", since(5), NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static OFFSET_COMMIT: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<OffsetCommitRequest>(),
        size_of::<old::OffsetCommitRequest>(),
    ),
    fields: &[
        field("group_id", ALL, STRING),
        field("generation_id_or_member_epoch", since(1), Ty::Int32),
        field("member_id", since(1), STRING),
        field("group_instance_id", since(7), NULLABLE_STRING),
        field("retention_time_ms", range(2, 4), Ty::Int64),
        field("topics", ALL, array(Elem::Struct(&OFFSET_COMMIT_TOPIC))),
    ],
    tagged: &[],
};

pub(super) static OFFSET_COMMIT_TOPIC: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<offset_commit_request::OffsetCommitRequestTopic>(),
        size_of::<old::offset_commit_request::OffsetCommitRequestTopic>(),
    ),
    fields: &[
        field("name", ALL, STRING),
        field(
            "partitions",
            ALL,
            array(Elem::Struct(&OFFSET_COMMIT_PARTITION)),
        ),
    ],
    tagged: &[],
};

pub(super) static OFFSET_COMMIT_PARTITION: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<offset_commit_request::OffsetCommitRequestPartition>(),
        size_of::<old::offset_commit_request::OffsetCommitRequestPartition>(),
    ),
    fields: &[
        field("partition_index", ALL, Ty::Int32),
        field("committed_offset", ALL, Ty::Int64),
        field("committed_leader_epoch", since(6), Ty::Int32),
        field("commit_timestamp", range(1, 1), Ty::Int64),
        field("committed_metadata", ALL, NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static OFFSET_FETCH: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<OffsetFetchRequest>(),
        size_of::<old::OffsetFetchRequest>(),
    ),
    fields: &[
        field("group_id", until(7), STRING),
        field(
            "topics",
            until(7),
            nullable_array(Elem::Struct(&OFFSET_FETCH_TOPIC)),
        ),
        field("groups", since(8), array(Elem::Struct(&OFFSET_FETCH_GROUP))),
        field("require_stable", since(7), Ty::Bool),
    ],
    tagged: &[],
};

pub(super) static OFFSET_FETCH_TOPIC: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<offset_fetch_request::OffsetFetchRequestTopic>(),
        size_of::<old::offset_fetch_request::OffsetFetchRequestTopic>(),
    ),
    fields: &[
        field("name", ALL, STRING),
        field("partition_indexes", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};

pub(super) static OFFSET_FETCH_GROUP: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<offset_fetch_request::OffsetFetchRequestGroup>(),
        size_of::<old::offset_fetch_request::OffsetFetchRequestGroup>(),
    ),
    fields: &[
        field("group_id", ALL, STRING),
        field("member_id", since(9), NULLABLE_STRING),
        field("member_epoch", since(9), Ty::Int32),
        field(
            "topics",
            ALL,
            nullable_array(Elem::Struct(&OFFSET_FETCH_GROUP_TOPIC)),
        ),
    ],
    tagged: &[],
};

pub(super) static OFFSET_FETCH_GROUP_TOPIC: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<offset_fetch_request::OffsetFetchRequestTopics>(),
        size_of::<old::offset_fetch_request::OffsetFetchRequestTopics>(),
    ),
    fields: &[
        field("name", ALL, STRING),
        field("partition_indexes", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};

pub(super) static LIST_GROUPS: Struct = Struct {
    decoded_bytes: size_of::<ListGroupsRequest>(),
    fields: &[
        field("states_filter", since(4), array(Elem::String)),
        field("types_filter", since(5), array(Elem::String)),
    ],
    tagged: &[],
};

pub(super) static DESCRIBE_GROUPS: Struct = Struct {
    decoded_bytes: size_of::<DescribeGroupsRequest>(),
    fields: &[
        field("groups", ALL, array(Elem::String)),
        field("include_authorized_operations", since(3), Ty::Bool),
    ],
    tagged: &[],
};

pub(super) static DELETE_GROUPS: Struct = Struct {
    decoded_bytes: size_of::<DeleteGroupsRequest>(),
    fields: &[field("groups_names", ALL, array(Elem::String))],
    tagged: &[],
};

pub(super) static OFFSET_DELETE: Struct = Struct {
    decoded_bytes: size_of::<OffsetDeleteRequest>(),
    fields: &[
        field("group_id", ALL, STRING),
        field("topics", ALL, array(Elem::Struct(&OFFSET_DELETE_TOPIC))),
    ],
    tagged: &[],
};

pub(super) static OFFSET_DELETE_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<offset_delete_request::OffsetDeleteRequestTopic>(),
    fields: &[
        field("name", ALL, STRING),
        field(
            "partitions",
            ALL,
            array(Elem::Struct(&OFFSET_DELETE_PARTITION)),
        ),
    ],
    tagged: &[],
};

pub(super) static OFFSET_DELETE_PARTITION: Struct = Struct {
    decoded_bytes: size_of::<offset_delete_request::OffsetDeleteRequestPartition>(),
    fields: &[field("partition_index", ALL, Ty::Int32)],
    tagged: &[],
};

pub(super) static CONSUMER_GROUP_HEARTBEAT: Struct = Struct {
    decoded_bytes: size_of::<ConsumerGroupHeartbeatRequest>(),
    fields: &[
        field("group_id", ALL, STRING),
        field("member_id", ALL, STRING),
        field("member_epoch", ALL, Ty::Int32),
        field("instance_id", ALL, NULLABLE_STRING),
        field("rack_id", ALL, NULLABLE_STRING),
        field("rebalance_timeout_ms", ALL, Ty::Int32),
        field("subscribed_topic_names", ALL, nullable_array(Elem::String)),
        field("subscribed_topic_regex", since(1), NULLABLE_STRING),
        field("server_assignor", ALL, NULLABLE_STRING),
        field(
            "topic_partitions",
            ALL,
            nullable_array(Elem::Struct(&CONSUMER_GROUP_HEARTBEAT_TOPIC)),
        ),
    ],
    tagged: &[],
};

pub(super) static CONSUMER_GROUP_HEARTBEAT_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<consumer_group_heartbeat_request::TopicPartitions>(),
    fields: &[
        field("topic_id", ALL, Ty::Uuid),
        field("partitions", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};

pub(super) static CONSUMER_GROUP_DESCRIBE: Struct = Struct {
    decoded_bytes: size_of::<ConsumerGroupDescribeRequest>(),
    fields: &[
        field("group_ids", ALL, array(Elem::String)),
        field("include_authorized_operations", ALL, Ty::Bool),
    ],
    tagged: &[],
};
