//! CreateAcls (v1-3): new ACL bindings, checked as Kafka's controller checks them,
//! stored (`security::acl::store`: the first log dir's file, or the metadata quorum in
//! a cluster) before the answer. Needs ALTER on the cluster; SECURITY_DISABLED without
//! an authorizer.

use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, AclBinding, Operation};

/// Kafka's answer when no authorizer is configured.
/// Most bindings one request may create: each is a record in the file or the quorum.
pub const ACLS_PER_REQUEST_MAX: usize = 10_000;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: CreateAclsRequest = decode(ApiKey::CreateAcls, version, body)?;
    let refuse_all = super::acl_change::refusal(&access, Operation::Alter, "creating ACLs")
        .or_else(|| {
            (req.creations.len() > ACLS_PER_REQUEST_MAX).then(|| {
                let why = format!("at most {ACLS_PER_REQUEST_MAX} ACLs may be created per request");
                (ec::INVALID_REQUEST, why)
            })
        });
    let mut outcomes: Vec<Result<AclBinding, (i16, String)>> = req
        .creations
        .iter()
        .map(|c| match &refuse_all {
            Some(e) => Err(e.clone()),
            None => AclBinding::from_wire(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
            .map_err(|why| (ec::INVALID_REQUEST, why)),
        })
        .collect();
    let valid: Vec<AclBinding> = outcomes.iter().filter_map(|o| o.clone().ok()).collect();
    if !valid.is_empty() {
        if let Err(e) = super::acl_change::apply(&shard, valid, Vec::new()).await {
            for o in outcomes.iter_mut().filter(|o| o.is_ok()) {
                *o = Err(e.clone());
            }
        }
    }
    let mut resp = CreateAclsResponse::default();
    resp.results = outcomes
        .into_iter()
        .map(|o| {
            let mut r = AclCreationResult::default();
            if let Err((code, why)) = o {
                r.error_code = code;
                r.error_message = Some(str_bytes(&why));
            }
            r
        })
        .collect();
    respond(ApiKey::CreateAcls, version, &resp)
}
