use super::*;

fn committed(offset: i64) -> Committed {
    Committed {
        offset,
        leader_epoch: 4,
        metadata: "meta-ü".into(),
        commit_timestamp_ms: 1_700_000_000_123,
    }
}

#[test]
fn transactional_offsets_carry_the_producer_and_replay_as_offsets() {
    let kvs = vec![
        (encode_key("g", "t", 0), Some(encode_value(&committed(5)))),
        (encode_key("g", "t", 1), Some(encode_value(&committed(6)))),
    ];
    let batch = encode_txn_kv_batch(&kvs, 1_700_000_000_000, (42, 3), 7).freeze();
    let header = crate::storage::batch::BatchHeader::parse(&batch).unwrap();
    assert!(header.is_transactional() && !header.is_control());
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (42, 3, 7)
    );
    assert_eq!(header.last_sequence(), 8);
    let offsets = decode_batches(batch).unwrap();
    assert_eq!(offsets.len(), 2);
    assert_eq!(offsets[1].value, Some(committed(6)));
    // A plain batch stays non-transactional, with no producer.
    let plain = encode_kv_batch(&kvs, 1_700_000_000_000).freeze();
    let header = crate::storage::batch::BatchHeader::parse(&plain).unwrap();
    assert!(!header.is_transactional());
    assert_eq!(header.producer_id, -1);
}

#[test]
fn key_and_value_use_kafkas_layout() {
    let key = encode_key("g", "t", 7);
    assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
    let value = encode_value(&committed(42));
    assert_eq!(&value[..2], &[0, 3]);
    assert_eq!(&value[2..10], &42i64.to_be_bytes());
    assert_eq!(&value[10..14], &4i32.to_be_bytes());
    assert_eq!(decode_value(value), Some(committed(42)));
    assert_eq!(decode_key(key), Some(("g".into(), "t".into(), 7)));
}

#[test]
fn older_value_versions_decode() {
    let mut v1 = BytesMut::new();
    v1.put_i16(1);
    v1.put_i64(9);
    put_string(&mut v1, "m");
    v1.put_i64(5);
    v1.put_i64(6);
    let c = decode_value(v1.freeze()).unwrap();
    assert_eq!(
        (c.offset, c.leader_epoch, c.commit_timestamp_ms),
        (9, -1, 5)
    );
    assert_eq!(decode_key(Bytes::from_static(&[0, 2, 0, 1, b'g'])), None);
}

#[test]
fn group_metadata_uses_kafkas_v3_layout_and_round_trips() {
    let meta = ClassicMetadata {
        protocol_type: "consumer".into(),
        generation: 7,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        state_timestamp_ms: 1_700_000_000_999,
        members: vec![ClassicMemberRecord {
            id: "m-1".into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 300_000,
            session_timeout_ms: 45_000,
            subscription: Bytes::from_static(b"sub"),
            assignment: Bytes::from_static(b"asg"),
        }],
    };
    let (key, value) = encode_group_record("g", &GroupRecord::Classic(Some(meta.clone())));
    assert_eq!(&key[..], &[0, 2, 0, 1, b'g']);
    let value = value.unwrap();
    assert_eq!(&value[..2], &[0, 3]);
    assert_eq!(
        &value[2..12],
        &[0, 8, b'c', b'o', b'n', b's', b'u', b'm', b'e', b'r']
    );
    assert_eq!(decode_classic_metadata(value.clone()), Some(meta.clone()));
    // Truncations never decode to something else or panic.
    for n in 0..value.len() {
        assert_eq!(decode_classic_metadata(value.slice(..n)), None, "{n}");
    }
    let empty = ClassicMetadata {
        members: vec![],
        protocol: None,
        leader: None,
        ..meta
    };
    assert_eq!(
        decode_classic_metadata(encode_classic_metadata(&empty)),
        Some(empty)
    );
}

#[test]
fn group_records_replay_in_order_beside_offsets() {
    let kvs = vec![
        encode_group_record("g", &GroupRecord::ConsumerEpoch(Some(12))),
        (encode_key("g", "t", 0), Some(encode_value(&committed(5)))),
        encode_group_record("h", &GroupRecord::Classic(None)),
    ];
    let (k, v) = &kvs[0];
    assert_eq!(&k[..], &[0, 3, 0, 1, b'g']);
    assert_eq!(&v.as_ref().unwrap()[..], &[0, 0, 0, 0, 0, 12, 0]);
    let all = decode_all(encode_kv_batch(&kvs, 1).freeze()).unwrap();
    assert_eq!(
        all,
        vec![
            Replayed::Group("g".into(), GroupRecord::ConsumerEpoch(Some(12))),
            Replayed::Offset(OffsetRecord {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                value: Some(committed(5)),
            }),
            Replayed::Group("h".into(), GroupRecord::Classic(None)),
        ]
    );
}

#[test]
fn member_records_round_trip_in_kafkas_flexible_layout() {
    let meta = MemberMetadata {
        instance_id: None,
        rack_id: Some("r".into()),
        client_id: "c".into(),
        client_host: "/h".into(),
        topic_names: vec!["a".into(), "bb".into()],
        topic_regex: None,
        rebalance_timeout_ms: 300_000,
        server_assignor: Some("range".into()),
    };
    let v = encode_member_metadata(&meta);
    // version, null instance, "r", "c", "/h", [a, bb], null regex, timeout, "range", tags
    assert_eq!(&v[..9], &[0, 0, 0, 2, b'r', 2, b'c', 3, b'/']);
    assert_eq!(*v.last().unwrap(), 0);
    assert_eq!(decode_member_metadata(v.clone()), Some(meta));
    for n in 0..v.len() {
        assert_eq!(decode_member_metadata(v.slice(..n)), None, "{n}");
    }
    let a = CurrentAssignment {
        epoch: 5,
        previous_epoch: 4,
        state: 1,
        assigned: Assignment::from([([1; 16], [0, 2].into())]),
        revoking: Assignment::from([([2; 16], [7].into())]),
    };
    let v = encode_current_assignment(&a);
    assert_eq!(&v[..11], &[0, 0, 0, 0, 0, 5, 0, 0, 0, 4, 1]);
    assert_eq!(decode_current_assignment(v.clone()), Some(a.clone()));
    for n in 0..v.len() {
        assert_eq!(decode_current_assignment(v.slice(..n)), None, "{n}");
    }
    let kvs = vec![
        encode_group_record(
            "g",
            &GroupRecord::MemberAssignment("m".into(), Some(a.clone())),
        ),
        encode_group_record("g", &GroupRecord::Member("m".into(), None)),
    ];
    assert_eq!(&kvs[0].0[..], &[0, 8, 0, 1, b'g', 0, 1, b'm']);
    assert_eq!(
        decode_all(encode_kv_batch(&kvs, 1).freeze()).unwrap(),
        vec![
            Replayed::Group(
                "g".into(),
                GroupRecord::MemberAssignment("m".into(), Some(a))
            ),
            Replayed::Group("g".into(), GroupRecord::Member("m".into(), None)),
        ]
    );
}

#[test]
fn batches_round_trip_with_tombstones() {
    let records = vec![
        OffsetRecord {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(committed(10)),
        },
        OffsetRecord {
            group: "g".into(),
            topic: "t".into(),
            partition: 1,
            value: None,
        },
    ];
    let batch = encode_batch(&records, 1);
    crate::storage::batch::BatchHeader::parse(&batch).expect("a valid v2 batch");
    assert_eq!(decode_batches(batch.freeze()).unwrap(), records);
}

/// Fuzz finding (group_records): a stored batch whose record count says 2^31 - 1
/// (CRC right) made the crate's decoder reserve that many records and abort the
/// process at start-up. It is now a replay error naming the batch.
#[test]
fn a_corrupt_record_count_is_an_error_not_an_allocation() {
    let records = vec![OffsetRecord {
        group: "g".into(),
        topic: "t".into(),
        partition: 0,
        value: Some(committed(10)),
    }];
    let mut batch = encode_batch(&records, 1);
    batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    batch[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    let error = decode_all(batch.freeze()).unwrap_err();
    assert!(error.contains("batch at byte 0"), "{error}");
    // A torn tail after whole batches is an error too, as the crate made it.
    let mut torn = encode_batch(&records, 1);
    let whole = torn.len();
    torn.extend_from_slice(&encode_batch(&records, 2)[..30]);
    let error = decode_all(torn.freeze()).unwrap_err();
    assert!(error.contains(&format!("batch at byte {whole}")), "{error}");
}
