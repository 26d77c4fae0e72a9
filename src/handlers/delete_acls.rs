//! DeleteAcls (v1-3): removes every binding each filter selects and lists them per
//! filter. The bindings are resolved here from the current set and removed exactly (in
//! a cluster the quorum gets the resolved list, so what is answered is what went).
//! Needs ALTER on the cluster; SECURITY_DISABLED without an authorizer.

use std::collections::BTreeSet;
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, AclBinding, AclFilter, Operation};

/// Most filters one request may carry (each is a scan of the ACLs).
pub const FILTERS_PER_REQUEST_MAX: usize = 1_000;

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DeleteAclsRequest = decode(ApiKey::DeleteAcls, version, body)?;
    let refuse_all = super::acl_change::refusal(&access, Operation::Alter, "deleting ACLs")
        .or_else(|| {
            (req.filters.len() > FILTERS_PER_REQUEST_MAX).then(|| {
                let why = format!("at most {FILTERS_PER_REQUEST_MAX} filters per request");
                (ec::INVALID_REQUEST, why)
            })
        });
    let acls = shard.broker.acls.snapshot();
    let mut gone: BTreeSet<AclBinding> = BTreeSet::new();
    let mut per_filter: Vec<Result<Vec<AclBinding>, (i16, String)>> = req
        .filters
        .iter()
        .map(|f| {
            if let Some(e) = &refuse_all {
                return Err(e.clone());
            }
            let filter = AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
            .map_err(|why| (ec::INVALID_REQUEST, why))?;
            let matched: Vec<AclBinding> = acls.matching(&filter).cloned().collect();
            gone.extend(matched.iter().cloned());
            Ok(matched)
        })
        .collect();
    if !gone.is_empty() {
        let delete = gone.into_iter().collect();
        if let Err(e) = super::acl_change::apply(&shard, Vec::new(), delete).await {
            for r in per_filter.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(e.clone());
            }
        }
    }
    let mut resp = DeleteAclsResponse::default();
    resp.filter_results = per_filter.into_iter().map(filter_result).collect();
    respond(ApiKey::DeleteAcls, version, &resp)
}

fn filter_result(r: Result<Vec<AclBinding>, (i16, String)>) -> DeleteAclsFilterResult {
    let mut out = DeleteAclsFilterResult::default();
    match r {
        Err((code, why)) => {
            out.error_code = code;
            out.error_message = Some(str_bytes(&why));
        }
        Ok(matched) => {
            out.matching_acls = matched
                .into_iter()
                .map(|b| {
                    let mut m = DeleteAclsMatchingAcl::default();
                    m.resource_type = b.resource_type.code();
                    m.resource_name = str_bytes(&b.name);
                    m.pattern_type = b.pattern.code();
                    m.principal = str_bytes(&b.principal);
                    m.host = str_bytes(&b.host);
                    m.operation = b.operation.code();
                    m.permission_type = b.permission.code();
                    m
                })
                .collect();
        }
    }
    out
}
