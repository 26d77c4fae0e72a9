//! Schemas of the data-plane and topic APIs (Metadata, CreateTopics, DeleteTopics,
//! ListOffsets, Fetch, InitProducerId, FindCoordinator, DescribeCluster, ApiVersions),
//! transcribed from kafka-protocol 0.18's `*_request.rs`.

use super::*;

pub(super) static METADATA: Struct = Struct {
    decoded_bytes: size_of::<MetadataRequest>(),
    fields: &[
        field("topics", ALL, nullable_array(Elem::Struct(&METADATA_TOPIC))),
        field("allow_auto_topic_creation", since(4), Ty::Bool),
        field(
            "include_cluster_authorized_operations",
            range(8, 10),
            Ty::Bool,
        ),
        field("include_topic_authorized_operations", since(8), Ty::Bool),
    ],
    tagged: &[],
};

pub(super) static METADATA_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<metadata_request::MetadataRequestTopic>(),
    fields: &[
        field("topic_id", since(10), Ty::Uuid),
        field("name", ALL, NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static CREATE_TOPICS: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<CreateTopicsRequest>(),
        size_of::<old::CreateTopicsRequest>(),
    ),
    fields: &[
        field("topics", ALL, array(Elem::Struct(&CREATABLE_TOPIC))),
        field("timeout_ms", ALL, Ty::Int32),
        field("validate_only", since(1), Ty::Bool),
    ],
    tagged: &[],
};

pub(super) static CREATABLE_TOPIC: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<create_topics_request::CreatableTopic>(),
        size_of::<old::create_topics_request::CreatableTopic>(),
    ),
    fields: &[
        field("name", ALL, STRING),
        field("num_partitions", ALL, Ty::Int32),
        field("replication_factor", ALL, Ty::Int16),
        field("assignments", ALL, array(Elem::Struct(&REPLICA_ASSIGNMENT))),
        field("configs", ALL, array(Elem::Struct(&CREATABLE_TOPIC_CONFIG))),
    ],
    tagged: &[],
};

pub(super) static REPLICA_ASSIGNMENT: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<create_topics_request::CreatableReplicaAssignment>(),
        size_of::<old::create_topics_request::CreatableReplicaAssignment>(),
    ),
    fields: &[
        field("partition_index", ALL, Ty::Int32),
        field("broker_ids", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};

pub(super) static CREATABLE_TOPIC_CONFIG: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<create_topics_request::CreatableTopicConfig>(),
        size_of::<old::create_topics_request::CreatableTopicConfig>(),
    ),
    fields: &[
        field("name", ALL, STRING),
        field("value", ALL, NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static DELETE_TOPICS: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<DeleteTopicsRequest>(),
        size_of::<old::DeleteTopicsRequest>(),
    ),
    fields: &[
        field("topics", since(6), array(Elem::Struct(&DELETE_TOPIC_STATE))),
        field("topic_names", until(5), array(Elem::String)),
        field("timeout_ms", ALL, Ty::Int32),
    ],
    tagged: &[],
};

pub(super) static DELETE_TOPIC_STATE: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<delete_topics_request::DeleteTopicState>(),
        size_of::<old::delete_topics_request::DeleteTopicState>(),
    ),
    fields: &[
        field("name", ALL, NULLABLE_STRING),
        field("topic_id", ALL, Ty::Uuid),
    ],
    tagged: &[],
};

pub(super) static LIST_OFFSETS: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<ListOffsetsRequest>(),
        size_of::<old::ListOffsetsRequest>(),
    ),
    fields: &[
        field("replica_id", ALL, Ty::Int32),
        field("isolation_level", since(2), Ty::Int8),
        field("topics", ALL, array(Elem::Struct(&LIST_OFFSETS_TOPIC))),
        field("timeout_ms", since(10), Ty::Int32),
    ],
    tagged: &[],
};

pub(super) static LIST_OFFSETS_TOPIC: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<list_offsets_request::ListOffsetsTopic>(),
        size_of::<old::list_offsets_request::ListOffsetsTopic>(),
    ),
    fields: &[
        field("name", ALL, STRING),
        field(
            "partitions",
            ALL,
            array(Elem::Struct(&LIST_OFFSETS_PARTITION)),
        ),
    ],
    tagged: &[],
};

pub(super) static LIST_OFFSETS_PARTITION: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<list_offsets_request::ListOffsetsPartition>(),
        size_of::<old::list_offsets_request::ListOffsetsPartition>(),
    ),
    fields: &[
        field("partition_index", ALL, Ty::Int32),
        field("current_leader_epoch", since(4), Ty::Int32),
        field("timestamp", ALL, Ty::Int64),
        field("max_num_offsets", until(0), Ty::Int32),
    ],
    tagged: &[],
};

pub(super) static FETCH: Struct = Struct {
    decoded_bytes: either_crate(size_of::<FetchRequest>(), size_of::<old::FetchRequest>()),
    fields: &[
        field("replica_id", until(14), Ty::Int32),
        field("max_wait_ms", ALL, Ty::Int32),
        field("min_bytes", ALL, Ty::Int32),
        field("max_bytes", since(3), Ty::Int32),
        field("isolation_level", since(4), Ty::Int8),
        field("session_id", since(7), Ty::Int32),
        field("session_epoch", since(7), Ty::Int32),
        field("topics", ALL, array(Elem::Struct(&FETCH_TOPIC))),
        field(
            "forgotten_topics_data",
            since(7),
            array(Elem::Struct(&FORGOTTEN_TOPIC)),
        ),
        field("rack_id", since(11), STRING),
    ],
    tagged: &[
        tagged(0, "cluster_id", ALL, NULLABLE_STRING),
        tagged(1, "replica_state", since(15), Ty::Struct(&REPLICA_STATE)),
    ],
};

pub(super) static FETCH_TOPIC: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<fetch_request::FetchTopic>(),
        size_of::<old::fetch_request::FetchTopic>(),
    ),
    fields: &[
        field("topic", until(12), STRING),
        field("topic_id", since(13), Ty::Uuid),
        field("partitions", ALL, array(Elem::Struct(&FETCH_PARTITION))),
    ],
    tagged: &[],
};

pub(super) static FETCH_PARTITION: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<fetch_request::FetchPartition>(),
        size_of::<old::fetch_request::FetchPartition>(),
    ),
    fields: &[
        field("partition", ALL, Ty::Int32),
        field("current_leader_epoch", since(9), Ty::Int32),
        field("fetch_offset", ALL, Ty::Int64),
        field("last_fetched_epoch", since(12), Ty::Int32),
        field("log_start_offset", since(5), Ty::Int64),
        field("partition_max_bytes", ALL, Ty::Int32),
    ],
    tagged: &[
        tagged(0, "replica_directory_id", since(17), Ty::Uuid),
        tagged(1, "high_watermark", since(18), Ty::Int64),
    ],
};

pub(super) static FORGOTTEN_TOPIC: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<fetch_request::ForgottenTopic>(),
        size_of::<old::fetch_request::ForgottenTopic>(),
    ),
    fields: &[
        field("topic", until(12), STRING),
        field("topic_id", since(13), Ty::Uuid),
        field("partitions", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};

pub(super) static REPLICA_STATE: Struct = Struct {
    decoded_bytes: either_crate(
        size_of::<fetch_request::ReplicaState>(),
        size_of::<old::fetch_request::ReplicaState>(),
    ),
    fields: &[
        field("replica_id", ALL, Ty::Int32),
        field("replica_epoch", ALL, Ty::Int64),
    ],
    tagged: &[],
};

pub(super) static INIT_PRODUCER_ID: Struct = Struct {
    decoded_bytes: size_of::<InitProducerIdRequest>(),
    fields: &[
        field("transactional_id", ALL, NULLABLE_STRING),
        field("transaction_timeout_ms", ALL, Ty::Int32),
        field("producer_id", since(3), Ty::Int64),
        field("producer_epoch", since(3), Ty::Int16),
    ],
    tagged: &[],
};

pub(super) static FIND_COORDINATOR: Struct = Struct {
    decoded_bytes: size_of::<FindCoordinatorRequest>(),
    fields: &[
        field("key", range(0, 3), STRING),
        field("key_type", since(1), Ty::Int8),
        field("coordinator_keys", since(4), array(Elem::String)),
    ],
    tagged: &[],
};

pub(super) static DESCRIBE_CLUSTER: Struct = Struct {
    decoded_bytes: size_of::<DescribeClusterRequest>(),
    fields: &[
        field("include_cluster_authorized_operations", ALL, Ty::Bool),
        field("endpoint_type", since(1), Ty::Int8),
        field("include_fenced_brokers", since(2), Ty::Bool),
    ],
    tagged: &[],
};

pub(super) static API_VERSIONS: Struct = Struct {
    decoded_bytes: size_of::<ApiVersionsRequest>(),
    fields: &[
        field("client_software_name", since(3), STRING),
        field("client_software_version", since(3), STRING),
    ],
    tagged: &[],
};
