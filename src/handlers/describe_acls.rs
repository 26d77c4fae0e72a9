//! DescribeAcls (v1-3): the bindings one filter selects (Kafka's ANY / MATCH
//! semantics, `security::acl::AclFilter`), grouped by resource pattern. Needs DESCRIBE
//! on the cluster; SECURITY_DISABLED without an authorizer.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, AclFilter, Operation};

pub fn handle(
    shard: &Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DescribeAclsRequest = decode(ApiKey::DescribeAcls, version, body)?;
    let mut resp = DescribeAclsResponse::default();
    let filter = AclFilter::from_wire(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    );
    let refused = if let Some(refusal) =
        super::acl_change::refusal(&access, Operation::Describe, "describing ACLs")
    {
        Some(refusal)
    } else {
        filter
            .as_ref()
            .err()
            .map(|why| (ec::INVALID_REQUEST, why.clone()))
    };
    if let Some((code, why)) = refused {
        resp.error_code = code;
        resp.error_message = Some(str_bytes(&why));
        return respond(ApiKey::DescribeAcls, version, &resp);
    }
    let Ok(filter) = filter else {
        unreachable!("a filter error is refused above")
    };
    let acls = shard.broker.acls.snapshot();
    let mut by_resource: BTreeMap<(i8, &str, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in acls.matching(&filter) {
        let mut d = AclDescription::default();
        d.principal = str_bytes(&b.principal);
        d.host = str_bytes(&b.host);
        d.operation = b.operation.code();
        d.permission_type = b.permission.code();
        let key = (b.resource_type.code(), b.name.as_str(), b.pattern.code());
        by_resource.entry(key).or_default().push(d);
    }
    resp.resources = by_resource
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            let mut r = DescribeAclsResource::default();
            r.resource_type = resource_type;
            r.resource_name = str_bytes(name);
            r.pattern_type = pattern_type;
            r.acls = acls;
            r
        })
        .collect();
    respond(ApiKey::DescribeAcls, version, &resp)
}
