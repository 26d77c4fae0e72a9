//! Where CreateAcls and DeleteAcls store their change: a single broker's ACL file (off
//! the shard, through `runtime::blocking`), or the metadata quorum in a cluster, so that
//! every member enforces the same ACLs.

use std::rc::Rc;

use crate::broker::shard::Shard;
use crate::cluster::AdminCall;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, AclBinding, Operation};

/// Kafka's message when an ACL API reaches a broker without an authorizer.
pub const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// Why an ACL API is refused as a whole, the same for the three of them: no authorizer
/// (SECURITY_DISABLED), or the principal lacks `operation` on the cluster (`action` says
/// what it wanted to do, e.g. "creating ACLs").
pub fn refusal(access: &Access, operation: Operation, action: &str) -> Option<(i16, String)> {
    if !access.enabled() {
        Some((ec::SECURITY_DISABLED, NO_AUTHORIZER.to_string()))
    } else if !access.cluster(operation) {
        let why = format!(
            "Authorization failed: {action} needs {} on the cluster.",
            operation.name().to_uppercase()
        );
        Some((ec::CLUSTER_AUTHORIZATION_FAILED, why))
    } else {
        None
    }
}

const IMAGE_WAIT_ROUND: std::time::Duration = std::time::Duration::from_millis(10);
const IMAGE_WAIT_ROUNDS: usize = 100;

/// Adds `create` and removes `delete` (exact bindings); answered once stored and
/// published on this broker.
pub async fn apply(
    shard: &Rc<Shard>,
    create: Vec<AclBinding>,
    delete: Vec<AclBinding>,
) -> Result<(), (i16, String)> {
    let broker = shard.broker.clone();
    if let Some(cluster) = &broker.cluster {
        let call = if create.is_empty() {
            AdminCall::DeleteAcls {
                bindings: delete.clone(),
            }
        } else {
            AdminCall::CreateAcls {
                bindings: create.clone(),
            }
        };
        cluster.call(call).await?;
        // The call is answered once the state holds the change; the image (which
        // `follow` reads) is published right after. Wait for it, boundedly, so that a
        // client's next request on this broker sees what it was told is done.
        for _ in 0..IMAGE_WAIT_ROUNDS {
            let image = cluster.image();
            let acls = &image.acls;
            if create.iter().all(|b| acls.contains(b)) && !delete.iter().any(|b| acls.contains(b)) {
                broker.acls.follow(acls);
                return Ok(());
            }
            crate::runtime::sleep(IMAGE_WAIT_ROUND).await;
        }
        return Err((
            ec::REQUEST_TIMED_OUT,
            "the ACL change is committed but not yet in this broker's image".into(),
        ));
    }
    crate::runtime::blocking(move || {
        if create.is_empty() {
            broker.acls.delete_blocking(&delete)
        } else {
            broker.acls.create_blocking(&create)
        }
    })
    .await
    .map_err(|why| {
        tracing::error!("{why}");
        (ec::UNKNOWN_SERVER_ERROR, why)
    })
}
