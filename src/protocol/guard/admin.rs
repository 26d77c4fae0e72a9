//! Schemas of the admin APIs (CreatePartitions, Describe/Alter/IncrementalAlterConfigs,
//! DeleteRecords, OffsetForLeaderEpoch, DescribeLogDirs), transcribed from kafka-protocol
//! 0.18's `*_request.rs` (and 0.15.1's for the versions Kafka 4.0 removed).

use super::*;

pub(super) static CREATE_PARTITIONS: Struct = Struct {
    decoded_bytes: size_of::<CreatePartitionsRequest>(),
    fields: &[
        field("topics", ALL, array(Elem::Struct(&CREATE_PARTITIONS_TOPIC))),
        field("timeout_ms", ALL, Ty::Int32),
        field("validate_only", ALL, Ty::Bool),
    ],
    tagged: &[],
};

pub(super) static CREATE_PARTITIONS_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<create_partitions_request::CreatePartitionsTopic>(),
    fields: &[
        field("name", ALL, STRING),
        field("count", ALL, Ty::Int32),
        field(
            "assignments",
            ALL,
            nullable_array(Elem::Struct(&CREATE_PARTITIONS_ASSIGNMENT)),
        ),
    ],
    tagged: &[],
};

pub(super) static CREATE_PARTITIONS_ASSIGNMENT: Struct = Struct {
    decoded_bytes: size_of::<create_partitions_request::CreatePartitionsAssignment>(),
    fields: &[field("broker_ids", ALL, array(Elem::Int32))],
    tagged: &[],
};

pub(super) static ELECT_LEADERS: Struct = Struct {
    decoded_bytes: size_of::<ElectLeadersRequest>(),
    fields: &[
        field("election_type", since(1), Ty::Int8),
        // Null (every partition) is valid from v1; the crate reads it at v0 too.
        field(
            "topic_partitions",
            ALL,
            nullable_array(Elem::Struct(&ELECT_LEADERS_TOPIC)),
        ),
        field("timeout_ms", ALL, Ty::Int32),
    ],
    tagged: &[],
};

pub(super) static ELECT_LEADERS_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<elect_leaders_request::TopicPartitions>(),
    fields: &[
        field("topic", ALL, STRING),
        field("partitions", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};

pub(super) static DESCRIBE_CONFIGS: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<DescribeConfigsRequest>(),
        size_of::<old::DescribeConfigsRequest>(),
    ),
    fields: &[
        field(
            "resources",
            ALL,
            array(Elem::Struct(&DESCRIBE_CONFIGS_RESOURCE)),
        ),
        field("include_synonyms", since(1), Ty::Bool),
        field("include_documentation", since(3), Ty::Bool),
    ],
    tagged: &[],
};

pub(super) static DESCRIBE_CONFIGS_RESOURCE: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<describe_configs_request::DescribeConfigsResource>(),
        size_of::<old::describe_configs_request::DescribeConfigsResource>(),
    ),
    fields: &[
        field("resource_type", ALL, Ty::Int8),
        field("resource_name", ALL, STRING),
        field("configuration_keys", ALL, nullable_array(Elem::String)),
    ],
    tagged: &[],
};

pub(super) static ALTER_CONFIGS: Struct = Struct {
    decoded_bytes: size_of::<AlterConfigsRequest>(),
    fields: &[
        field(
            "resources",
            ALL,
            array(Elem::Struct(&ALTER_CONFIGS_RESOURCE)),
        ),
        field("validate_only", ALL, Ty::Bool),
    ],
    tagged: &[],
};

pub(super) static ALTER_CONFIGS_RESOURCE: Struct = Struct {
    decoded_bytes: size_of::<alter_configs_request::AlterConfigsResource>(),
    fields: &[
        field("resource_type", ALL, Ty::Int8),
        field("resource_name", ALL, STRING),
        field("configs", ALL, array(Elem::Struct(&ALTERABLE_CONFIG))),
    ],
    tagged: &[],
};

pub(super) static ALTERABLE_CONFIG: Struct = Struct {
    decoded_bytes: size_of::<alter_configs_request::AlterableConfig>(),
    fields: &[
        field("name", ALL, STRING),
        field("value", ALL, NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static INCREMENTAL_ALTER_CONFIGS: Struct = Struct {
    decoded_bytes: size_of::<IncrementalAlterConfigsRequest>(),
    fields: &[
        field(
            "resources",
            ALL,
            array(Elem::Struct(&INCREMENTAL_ALTER_CONFIGS_RESOURCE)),
        ),
        field("validate_only", ALL, Ty::Bool),
    ],
    tagged: &[],
};

pub(super) static INCREMENTAL_ALTER_CONFIGS_RESOURCE: Struct = Struct {
    decoded_bytes: size_of::<incremental_alter_configs_request::AlterConfigsResource>(),
    fields: &[
        field("resource_type", ALL, Ty::Int8),
        field("resource_name", ALL, STRING),
        field(
            "configs",
            ALL,
            array(Elem::Struct(&INCREMENTAL_ALTERABLE_CONFIG)),
        ),
    ],
    tagged: &[],
};

pub(super) static INCREMENTAL_ALTERABLE_CONFIG: Struct = Struct {
    decoded_bytes: size_of::<incremental_alter_configs_request::AlterableConfig>(),
    fields: &[
        field("name", ALL, STRING),
        field("config_operation", ALL, Ty::Int8),
        field("value", ALL, NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static DELETE_RECORDS: Struct = Struct {
    decoded_bytes: size_of::<DeleteRecordsRequest>(),
    fields: &[
        field("topics", ALL, array(Elem::Struct(&DELETE_RECORDS_TOPIC))),
        field("timeout_ms", ALL, Ty::Int32),
    ],
    tagged: &[],
};

pub(super) static DELETE_RECORDS_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<delete_records_request::DeleteRecordsTopic>(),
    fields: &[
        field("name", ALL, STRING),
        field(
            "partitions",
            ALL,
            array(Elem::Struct(&DELETE_RECORDS_PARTITION)),
        ),
    ],
    tagged: &[],
};

pub(super) static DELETE_RECORDS_PARTITION: Struct = Struct {
    decoded_bytes: size_of::<delete_records_request::DeleteRecordsPartition>(),
    fields: &[
        field("partition_index", ALL, Ty::Int32),
        field("offset", ALL, Ty::Int64),
    ],
    tagged: &[],
};

pub(super) static OFFSET_FOR_LEADER_EPOCH: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<OffsetForLeaderEpochRequest>(),
        size_of::<old::OffsetForLeaderEpochRequest>(),
    ),
    fields: &[
        field("replica_id", since(3), Ty::Int32),
        field("topics", ALL, array(Elem::Struct(&OFFSET_FOR_LEADER_TOPIC))),
    ],
    tagged: &[],
};

pub(super) static OFFSET_FOR_LEADER_TOPIC: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<offset_for_leader_epoch_request::OffsetForLeaderTopic>(),
        size_of::<old::offset_for_leader_epoch_request::OffsetForLeaderTopic>(),
    ),
    fields: &[
        field("topic", ALL, STRING),
        field(
            "partitions",
            ALL,
            array(Elem::Struct(&OFFSET_FOR_LEADER_PARTITION)),
        ),
    ],
    tagged: &[],
};

pub(super) static OFFSET_FOR_LEADER_PARTITION: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<offset_for_leader_epoch_request::OffsetForLeaderPartition>(),
        size_of::<old::offset_for_leader_epoch_request::OffsetForLeaderPartition>(),
    ),
    fields: &[
        field("partition", ALL, Ty::Int32),
        field("current_leader_epoch", since(2), Ty::Int32),
        field("leader_epoch", ALL, Ty::Int32),
    ],
    tagged: &[],
};

pub(super) static DESCRIBE_LOG_DIRS: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<DescribeLogDirsRequest>(),
        size_of::<old::DescribeLogDirsRequest>(),
    ),
    fields: &[field(
        "topics",
        ALL,
        nullable_array(Elem::Struct(&DESCRIBABLE_LOG_DIR_TOPIC)),
    )],
    tagged: &[],
};

pub(super) static DESCRIBABLE_LOG_DIR_TOPIC: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<describe_log_dirs_request::DescribableLogDirTopic>(),
        size_of::<old::describe_log_dirs_request::DescribableLogDirTopic>(),
    ),
    fields: &[
        field("topic", ALL, STRING),
        field("partitions", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};
