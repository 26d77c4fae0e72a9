//! Schemas of the partition reassignment APIs (AlterPartitionReassignments,
//! ListPartitionReassignments; flexible from v0), transcribed from kafka-protocol
//! 0.18's `*_request.rs`.

use super::*;
use kafka_protocol::messages::{
    alter_partition_reassignments_request, list_partition_reassignments_request,
    AlterPartitionReassignmentsRequest, ListPartitionReassignmentsRequest,
};

pub(super) static ALTER_PARTITION_REASSIGNMENTS: Struct = Struct {
    decoded_bytes: size_of::<AlterPartitionReassignmentsRequest>(),
    fields: &[
        field("timeout_ms", ALL, Ty::Int32),
        field("allow_replication_factor_change", since(1), Ty::Bool),
        field("topics", ALL, array(Elem::Struct(&REASSIGNABLE_TOPIC))),
    ],
    tagged: &[],
};

pub(super) static REASSIGNABLE_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<alter_partition_reassignments_request::ReassignableTopic>(),
    fields: &[
        field("name", ALL, STRING),
        field(
            "partitions",
            ALL,
            array(Elem::Struct(&REASSIGNABLE_PARTITION)),
        ),
    ],
    tagged: &[],
};

pub(super) static REASSIGNABLE_PARTITION: Struct = Struct {
    decoded_bytes: size_of::<alter_partition_reassignments_request::ReassignablePartition>(),
    fields: &[
        field("partition_index", ALL, Ty::Int32),
        field("replicas", ALL, nullable_array(Elem::Int32)),
    ],
    tagged: &[],
};

pub(super) static LIST_PARTITION_REASSIGNMENTS: Struct = Struct {
    decoded_bytes: size_of::<ListPartitionReassignmentsRequest>(),
    fields: &[
        field("timeout_ms", ALL, Ty::Int32),
        field(
            "topics",
            ALL,
            nullable_array(Elem::Struct(&LIST_PARTITION_REASSIGNMENTS_TOPIC)),
        ),
    ],
    tagged: &[],
};

pub(super) static LIST_PARTITION_REASSIGNMENTS_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<list_partition_reassignments_request::ListPartitionReassignmentsTopics>(
    ),
    fields: &[
        field("name", ALL, STRING),
        field("partition_indexes", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};
