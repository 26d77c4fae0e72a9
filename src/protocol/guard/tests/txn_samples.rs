//! Valid requests of the transaction APIs, built and encoded by kafka-protocol.

use super::*;

pub(super) fn add_partitions_to_txn_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn add_offsets_to_txn_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn end_txn_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn txn_offset_commit_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn write_txn_markers_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn describe_transactions_samples(v: i16) -> Vec<BytesMut> {
    let full = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(s("tx-1")), TransactionalId(s("ü-tx"))])
        .with_unknown_tagged_field(23, Bytes::from_static(b"future"));
    vec![
        encode(&full, v),
        encode(&DescribeTransactionsRequest::default(), v),
    ]
}

pub(super) fn list_transactions_samples(v: i16) -> Vec<BytesMut> {
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

pub(super) fn describe_producers_samples(v: i16) -> Vec<BytesMut> {
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
