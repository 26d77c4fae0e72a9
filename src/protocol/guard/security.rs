//! Schemas of the security APIs (SASL, SCRAM users), transcribed from kafka-protocol
//! 0.18's `sasl_*_request.rs` and `*_user_scram_credentials_request.rs`.

use std::mem::size_of;

use kafka_protocol::messages::{
    alter_user_scram_credentials_request, describe_user_scram_credentials_request,
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};

use super::{array, field, nullable_array, Elem, Struct, Ty, ALL, STRING};

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
