//! DescribeUserScramCredentials (v0): which SCRAM mechanisms and iteration counts each
//! user has (never a salt or key). No names (null or empty) describes every user; an
//! unknown name gets RESOURCE_NOT_FOUND, a name given twice DUPLICATE_RESOURCE.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    ApiKey, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

pub fn handle(
    shard: &Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DescribeUserScramCredentialsRequest =
        decode(ApiKey::DescribeUserScramCredentials, version, body)?;
    if !access.cluster(Operation::Describe) {
        let mut resp = DescribeUserScramCredentialsResponse::default();
        resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = Some(str_bytes(
            "Describing SCRAM credentials needs DESCRIBE on the cluster.",
        ));
        return respond(ApiKey::DescribeUserScramCredentials, version, &resp);
    }
    let users = shard.broker.users.snapshot();
    let names: Vec<String> = match &req.users {
        Some(list) if !list.is_empty() => list.iter().map(|u| u.name.to_string()).collect(),
        _ => users.keys().cloned().collect(),
    };
    let mut resp = DescribeUserScramCredentialsResponse::default();
    resp.results = names
        .iter()
        .map(|name| {
            let mut r = DescribeUserScramCredentialsResult::default();
            r.user = str_bytes(name);
            if names.iter().filter(|n| *n == name).count() > 1 {
                r.error_code = ec::DUPLICATE_RESOURCE;
                r.error_message = Some(str_bytes(&format!("Cannot describe SCRAM credentials for the same user twice in a single request: {name}")));
                return r;
            }
            match users.get(name) {
                Some(mechs) => {
                    r.credential_infos = mechs
                        .iter()
                        .map(|(m, c)| {
                            let mut i = CredentialInfo::default();
                            i.mechanism = m.wire();
                            i.iterations = c.iterations as i32;
                            i
                        })
                        .collect();
                }
                None => {
                    r.error_code = ec::RESOURCE_NOT_FOUND;
                    r.error_message = Some(str_bytes(&format!(
                        "Attempt to describe a user credential that does not exist: {name}"
                    )));
                }
            }
            r
        })
        .collect();
    respond(ApiKey::DescribeUserScramCredentials, version, &resp)
}
