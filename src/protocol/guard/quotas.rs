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
