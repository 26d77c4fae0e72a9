//! Schemas of DescribeClientQuotas and AlterClientQuotas (v0-1), transcribed from
//! kafka-protocol 0.18's `*_client_quotas_request.rs`.

use std::mem::size_of;

use kafka_protocol::messages::{
    alter_client_quotas_request, describe_client_quotas_request, AlterClientQuotasRequest,
    DescribeClientQuotasRequest,
};

use super::{array, field, Elem, Struct, Ty, ALL, NULLABLE_STRING, STRING};

pub(super) static DESCRIBE_CLIENT_QUOTAS: Struct = Struct {
    decoded_bytes: size_of::<DescribeClientQuotasRequest>(),
    fields: &[
        field("components", ALL, array(Elem::Struct(&COMPONENT))),
        field("strict", ALL, Ty::Bool),
    ],
    tagged: &[],
};

static COMPONENT: Struct = Struct {
    decoded_bytes: size_of::<describe_client_quotas_request::ComponentData>(),
    fields: &[
        field("entity_type", ALL, STRING),
        field("match_type", ALL, Ty::Int8),
        field("match", ALL, NULLABLE_STRING),
    ],
    tagged: &[],
};

pub(super) static ALTER_CLIENT_QUOTAS: Struct = Struct {
    decoded_bytes: size_of::<AlterClientQuotasRequest>(),
    fields: &[
        field("entries", ALL, array(Elem::Struct(&ENTRY))),
        field("validate_only", ALL, Ty::Bool),
    ],
    tagged: &[],
};

static ENTRY: Struct = Struct {
    decoded_bytes: size_of::<alter_client_quotas_request::EntryData>(),
    fields: &[
        field("entity", ALL, array(Elem::Struct(&ENTITY))),
        field("ops", ALL, array(Elem::Struct(&OP))),
    ],
    tagged: &[],
};

static ENTITY: Struct = Struct {
    decoded_bytes: size_of::<alter_client_quotas_request::EntityData>(),
    fields: &[
        field("entity_type", ALL, STRING),
        field("entity_name", ALL, NULLABLE_STRING),
    ],
    tagged: &[],
};

static OP: Struct = Struct {
    decoded_bytes: size_of::<alter_client_quotas_request::OpData>(),
    fields: &[
        field("key", ALL, STRING),
        // A float64: eight bytes on the wire, like an int64 (the guard checks shape only).
        field("value", ALL, Ty::Int64),
        field("remove", ALL, Ty::Bool),
    ],
    tagged: &[],
};

/// Valid DescribeClientQuotas / AlterClientQuotas requests at `v` for the guard's tests
/// (`guard/tests.rs` `samples`): defaults and names, several entries and ops.
#[cfg(test)]
pub(super) fn samples(api: kafka_protocol::messages::ApiKey, v: i16) -> Vec<bytes::BytesMut> {
    use alter_client_quotas_request::{EntityData, EntryData, OpData};
    use describe_client_quotas_request::ComponentData;
    use kafka_protocol::messages::ApiKey;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let s = |t: &str| StrBytes::from_string(t.to_string());
    let encode = |msg: &dyn Fn(&mut bytes::BytesMut)| {
        let mut out = bytes::BytesMut::new();
        msg(&mut out);
        out
    };
    if api == ApiKey::DescribeClientQuotas {
        let full = DescribeClientQuotasRequest::default()
            .with_components(vec![
                ComponentData::default()
                    .with_entity_type(s("user"))
                    .with_match_type(0)
                    .with_match(Some(s("alice"))),
                ComponentData::default()
                    .with_entity_type(s("client-id"))
                    .with_match_type(1)
                    .with_match(None),
            ])
            .with_strict(true);
        let empty = DescribeClientQuotasRequest::default();
        return vec![
            encode(&|o| full.encode(o, v).expect("encodes")),
            encode(&|o| empty.encode(o, v).expect("encodes")),
        ];
    }
    let entry = EntryData::default()
        .with_entity(vec![
            EntityData::default()
                .with_entity_type(s("user"))
                .with_entity_name(None),
            EntityData::default()
                .with_entity_type(s("client-id"))
                .with_entity_name(Some(s("app"))),
        ])
        .with_ops(vec![
            OpData::default()
                .with_key(s("producer_byte_rate"))
                .with_value(1024.5),
            OpData::default()
                .with_key(s("consumer_byte_rate"))
                .with_remove(true),
        ]);
    let full = AlterClientQuotasRequest::default()
        .with_entries(vec![entry.clone(), entry])
        .with_validate_only(true);
    let empty = AlterClientQuotasRequest::default();
    vec![
        encode(&|o| full.encode(o, v).expect("encodes")),
        encode(&|o| empty.encode(o, v).expect("encodes")),
    ]
}
