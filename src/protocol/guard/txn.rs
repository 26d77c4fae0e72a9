//! Schemas of the transaction APIs (AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//! TxnOffsetCommit, WriteTxnMarkers, DescribeTransactions, ListTransactions,
//! DescribeProducers), transcribed from kafka-protocol 0.18's `*_request.rs`.

use super::*;

pub(super) static ADD_PARTITIONS_TO_TXN: Struct = Struct {
    decoded_bytes: size_of::<AddPartitionsToTxnRequest>(),
    fields: &[
        field(
            "transactions",
            since(4),
            array(Elem::Struct(&ADD_PARTITIONS_TO_TXN_TRANSACTION)),
        ),
        field("v3_and_below_transactional_id", until(3), STRING),
        field("v3_and_below_producer_id", until(3), Ty::Int64),
        field("v3_and_below_producer_epoch", until(3), Ty::Int16),
        field(
            "v3_and_below_topics",
            until(3),
            array(Elem::Struct(&ADD_PARTITIONS_TO_TXN_TOPIC)),
        ),
    ],
    tagged: &[],
};

pub(super) static ADD_PARTITIONS_TO_TXN_TRANSACTION: Struct = Struct {
    decoded_bytes: size_of::<add_partitions_to_txn_request::AddPartitionsToTxnTransaction>(),
    fields: &[
        field("transactional_id", ALL, STRING),
        field("producer_id", ALL, Ty::Int64),
        field("producer_epoch", ALL, Ty::Int16),
        field("verify_only", ALL, Ty::Bool),
        field(
            "topics",
            ALL,
            array(Elem::Struct(&ADD_PARTITIONS_TO_TXN_TOPIC)),
        ),
    ],
    tagged: &[],
};

pub(super) static ADD_PARTITIONS_TO_TXN_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<add_partitions_to_txn_request::AddPartitionsToTxnTopic>(),
    fields: &[
        field("name", ALL, STRING),
        field("partitions", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};

pub(super) static ADD_OFFSETS_TO_TXN: Struct = Struct {
    decoded_bytes: size_of::<AddOffsetsToTxnRequest>(),
    fields: &[
        field("transactional_id", ALL, STRING),
        field("producer_id", ALL, Ty::Int64),
        field("producer_epoch", ALL, Ty::Int16),
        field("group_id", ALL, STRING),
    ],
    tagged: &[],
};

pub(super) static END_TXN: Struct = Struct {
    decoded_bytes: size_of::<EndTxnRequest>(),
    fields: &[
        field("transactional_id", ALL, STRING),
        field("producer_id", ALL, Ty::Int64),
        field("producer_epoch", ALL, Ty::Int16),
        field("committed", ALL, Ty::Bool),
    ],
    tagged: &[],
};

pub(super) static TXN_OFFSET_COMMIT: Struct = Struct {
    decoded_bytes: size_of::<TxnOffsetCommitRequest>(),
    fields: &[
        field("transactional_id", ALL, STRING),
        field("group_id", ALL, STRING),
        field("producer_id", ALL, Ty::Int64),
        field("producer_epoch", ALL, Ty::Int16),
        field("generation_id", since(3), Ty::Int32),
        field("member_id", since(3), STRING),
        field("group_instance_id", since(3), NULLABLE_STRING),
        field("topics", ALL, array(Elem::Struct(&TXN_OFFSET_COMMIT_TOPIC))),
    ],
    tagged: &[],
};

pub(super) static TXN_OFFSET_COMMIT_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<txn_offset_commit_request::TxnOffsetCommitRequestTopic>(),
    fields: &[
        field("name", ALL, STRING),
        field(
            "partitions",
            ALL,
            array(Elem::Struct(&TXN_OFFSET_COMMIT_PARTITION)),
        ),
    ],
    tagged: &[],
};

pub(super) static TXN_OFFSET_COMMIT_PARTITION: Struct = Struct {
    decoded_bytes: size_of::<txn_offset_commit_request::TxnOffsetCommitRequestPartition>(),
    fields: &[
        field("partition_index", ALL, Ty::Int32),
        field("committed_offset", ALL, Ty::Int64),
        field("committed_leader_epoch", since(2), Ty::Int32),
        field("committed_metadata", ALL, NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static WRITE_TXN_MARKERS: Struct = Struct {
    decoded_bytes: size_of::<WriteTxnMarkersRequest>(),
    fields: &[field(
        "markers",
        ALL,
        array(Elem::Struct(&WRITE_TXN_MARKER)),
    )],
    tagged: &[],
};

pub(super) static WRITE_TXN_MARKER: Struct = Struct {
    decoded_bytes: size_of::<write_txn_markers_request::WritableTxnMarker>(),
    fields: &[
        field("producer_id", ALL, Ty::Int64),
        field("producer_epoch", ALL, Ty::Int16),
        field("transaction_result", ALL, Ty::Bool),
        field("topics", ALL, array(Elem::Struct(&WRITE_TXN_MARKER_TOPIC))),
        field("coordinator_epoch", ALL, Ty::Int32),
    ],
    tagged: &[],
};

pub(super) static WRITE_TXN_MARKER_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<write_txn_markers_request::WritableTxnMarkerTopic>(),
    fields: &[
        field("name", ALL, STRING),
        field("partition_indexes", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};

pub(super) static DESCRIBE_TRANSACTIONS: Struct = Struct {
    decoded_bytes: size_of::<DescribeTransactionsRequest>(),
    fields: &[field("transactional_ids", ALL, array(Elem::String))],
    tagged: &[],
};

pub(super) static LIST_TRANSACTIONS: Struct = Struct {
    decoded_bytes: size_of::<ListTransactionsRequest>(),
    fields: &[
        field("state_filters", ALL, array(Elem::String)),
        field("producer_id_filters", ALL, array(Elem::Int64)),
        field("duration_filter", since(1), Ty::Int64),
        field("transactional_id_pattern", since(2), NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static DESCRIBE_PRODUCERS: Struct = Struct {
    decoded_bytes: size_of::<DescribeProducersRequest>(),
    fields: &[field(
        "topics",
        ALL,
        array(Elem::Struct(&DESCRIBE_PRODUCERS_TOPIC)),
    )],
    tagged: &[],
};

pub(super) static DESCRIBE_PRODUCERS_TOPIC: Struct = Struct {
    decoded_bytes: size_of::<describe_producers_request::TopicRequest>(),
    fields: &[
        field("name", ALL, STRING),
        field("partition_indexes", ALL, array(Elem::Int32)),
    ],
    tagged: &[],
};
