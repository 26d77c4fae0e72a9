//! Schemas of the security APIs (SASL, SCRAM users), transcribed from kafka-protocol
//! 0.18's `sasl_*_request.rs` and `*_user_scram_credentials_request.rs`.

use std::mem::size_of;

use kafka_protocol::messages::{
    alter_user_scram_credentials_request, describe_user_scram_credentials_request,
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::messages::{
    create_acls_request, delete_acls_request, CreateAclsRequest, DeleteAclsRequest,
    DescribeAclsRequest,
};

use super::{array, field, nullable_array, Elem, Struct, Ty, ALL, NULLABLE_STRING, STRING};

pub(super) static SASL_HANDSHAKE: Struct = Struct {
    decoded_bytes: size_of::<SaslHandshakeRequest>(),
    fields: &[field("mechanism", ALL, STRING)],
    tagged: &[],
};

pub(super) static SASL_AUTHENTICATE: Struct = Struct {
    decoded_bytes: size_of::<SaslAuthenticateRequest>(),
    fields: &[field("auth_bytes", ALL, Ty::Bytes)],
    tagged: &[],
};

pub(super) static ALTER_USER_SCRAM_CREDENTIALS: Struct = Struct {
    decoded_bytes: size_of::<AlterUserScramCredentialsRequest>(),
    fields: &[
        field("deletions", ALL, array(Elem::Struct(&SCRAM_DELETION))),
        field("upsertions", ALL, array(Elem::Struct(&SCRAM_UPSERTION))),
    ],
    tagged: &[],
};

static SCRAM_DELETION: Struct = Struct {
    decoded_bytes: size_of::<alter_user_scram_credentials_request::ScramCredentialDeletion>(),
    fields: &[
        field("name", ALL, STRING),
        field("mechanism", ALL, Ty::Int8),
    ],
    tagged: &[],
};

static SCRAM_UPSERTION: Struct = Struct {
    decoded_bytes: size_of::<alter_user_scram_credentials_request::ScramCredentialUpsertion>(),
    fields: &[
        field("name", ALL, STRING),
        field("mechanism", ALL, Ty::Int8),
        field("iterations", ALL, Ty::Int32),
        field("salt", ALL, Ty::Bytes),
        field("salted_password", ALL, Ty::Bytes),
    ],
    tagged: &[],
};

pub(super) static DESCRIBE_USER_SCRAM_CREDENTIALS: Struct = Struct {
    decoded_bytes: size_of::<DescribeUserScramCredentialsRequest>(),
    fields: &[field(
        "users",
        ALL,
        nullable_array(Elem::Struct(&USER_NAME)),
    )],
    tagged: &[],
};

static USER_NAME: Struct = Struct {
    decoded_bytes: size_of::<describe_user_scram_credentials_request::UserName>(),
    fields: &[field("name", ALL, STRING)],
    tagged: &[],
};

// The ACL APIs (kafka-protocol 0.18's `*_acls_request.rs`, v1-3; v0 had no pattern
// type and Kafka 4 removed it).

pub(super) static CREATE_ACLS: Struct = Struct {
    decoded_bytes: size_of::<CreateAclsRequest>(),
    fields: &[field("creations", ALL, array(Elem::Struct(&ACL_CREATION)))],
    tagged: &[],
};

static ACL_CREATION: Struct = Struct {
    decoded_bytes: size_of::<create_acls_request::AclCreation>(),
    fields: &[
        field("resource_type", ALL, Ty::Int8),
        field("resource_name", ALL, STRING),
        field("resource_pattern_type", ALL, Ty::Int8),
        field("principal", ALL, STRING),
        field("host", ALL, STRING),
        field("operation", ALL, Ty::Int8),
        field("permission_type", ALL, Ty::Int8),
    ],
    tagged: &[],
};

/// DescribeAcls' body is one filter, the shape of a DeleteAcls filter.
pub(super) static DESCRIBE_ACLS: Struct = Struct {
    decoded_bytes: size_of::<DescribeAclsRequest>(),
    fields: ACL_FILTER_FIELDS,
    tagged: &[],
};

pub(super) static DELETE_ACLS: Struct = Struct {
    decoded_bytes: size_of::<DeleteAclsRequest>(),
    fields: &[field("filters", ALL, array(Elem::Struct(&ACL_FILTER)))],
    tagged: &[],
};

static ACL_FILTER: Struct = Struct {
    decoded_bytes: size_of::<delete_acls_request::DeleteAclsFilter>(),
    fields: ACL_FILTER_FIELDS,
    tagged: &[],
};

const ACL_FILTER_FIELDS: &[super::Field] = &[
    field("resource_type_filter", ALL, Ty::Int8),
    field("resource_name_filter", ALL, NULLABLE_STRING),
    field("pattern_type_filter", ALL, Ty::Int8),
    field("principal_filter", ALL, NULLABLE_STRING),
    field("host_filter", ALL, NULLABLE_STRING),
    field("operation", ALL, Ty::Int8),
    field("permission_type", ALL, Ty::Int8),
];
