//! `Access`: what one request may do. `handlers::dispatch` builds it from the
//! connection's principal and address and the shard's view of the ACLs; handlers ask it
//! one question per resource (`topic`, `group`, `cluster`, `transactional_id`).
//! Without an authorizer it allows everything and costs nothing.

use std::net::SocketAddr;
use std::rc::Rc;

use super::index::Request;
use super::{AclStore, Operation, ResourceType, ANONYMOUS, CLUSTER_NAME};

#[derive(Clone, Default)]
pub struct Access(Option<Inner>);

#[derive(Clone)]
struct Inner {
    who: Rc<Identity>,
    allow_if_none: bool,
    acls: super::store::View,
}

/// Who a connection is, worked out once per connection (its first request after the
/// login) and kept in `ConnInfo::identity`, so a request costs no allocation.
#[derive(Debug)]
pub struct Identity {
    principal: String,
    /// The client's IP address as ACL hosts name it (`127.0.0.1`).
    host: String,
    super_user: bool,
}

/// A connection's cached `Identity`.
pub type IdentityCell = std::cell::OnceCell<Rc<Identity>>;

impl Access {
    /// No authorizer: everything is allowed.
    pub fn everything() -> Access {
        Access(None)
    }

    /// `principal` is the connection's (SASL or mTLS); none is `User:ANONYMOUS`.
    /// `identity` caches what is derived from it and `peer` for the connection's life.
    pub fn new(
        store: &AclStore,
        identity: &IdentityCell,
        principal: Option<&str>,
        peer: Option<SocketAddr>,
    ) -> Access {
        if !store.enabled() {
            return Access(None);
        }
        let who = identity.get_or_init(|| {
            let principal = principal.unwrap_or(ANONYMOUS).to_string();
            Rc::new(Identity {
                super_user: store.config.super_users.contains(&principal),
                principal,
                host: peer.map_or_else(String::new, |p| p.ip().to_string()),
            })
        });
        Access(Some(Inner {
            who: who.clone(),
            allow_if_none: store.config.allow_everyone_if_no_acl_found,
            acls: store.current(),
        }))
    }

    pub fn allows(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        let Some(inner) = &self.0 else {
            return true;
        };
        let who = &inner.who;
        if who.super_user {
            return true;
        }
        let req = Request {
            principal: &who.principal,
            host: &who.host,
            operation,
        };
        let allowed = inner
            .acls
            .authorize(&req, resource_type, name, inner.allow_if_none);
        if !allowed {
            tracing::debug!(
                principal = %who.principal, host = %who.host,
                "denied {} on {} {name}", operation.name(), resource_type.name()
            );
        }
        allowed
    }

    /// Whether some resource of the type allows `operation` (Kafka's
    /// `authorizeByResourceType`, as an idempotent producer's WRITE on any topic).
    pub fn any(&self, operation: Operation, resource_type: ResourceType) -> bool {
        let Some(inner) = &self.0 else {
            return true;
        };
        let who = &inner.who;
        let req = Request {
            principal: &who.principal,
            host: &who.host,
            operation,
        };
        who.super_user
            || inner
                .acls
                .authorize_any(&req, resource_type, inner.allow_if_none)
    }

    pub fn topic(&self, operation: Operation, name: &str) -> bool {
        self.allows(operation, ResourceType::Topic, name)
    }

    pub fn group(&self, operation: Operation, name: &str) -> bool {
        self.allows(operation, ResourceType::Group, name)
    }

    pub fn transactional_id(&self, operation: Operation, id: &str) -> bool {
        self.allows(operation, ResourceType::TransactionalId, id)
    }

    pub fn cluster(&self, operation: Operation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether an authorizer decides (else the ACL APIs answer SECURITY_DISABLED).
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }
}
