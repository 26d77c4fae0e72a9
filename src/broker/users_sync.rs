//! Cluster mode: this broker's SCRAM users follow the quorum's image, and the users its
//! file holds (`storage format --add-scram`, or users added before it joined a quorum)
//! are proposed to the quorum once (`Command::BootstrapScramCredentials`), after this
//! member's registration is applied, so that a member formatted with the first super
//! user makes that user known to every member. The quorum records that it took them;
//! afterwards its set wins (see ARCHITECTURE.md, "Security").

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use super::router::ShardMsg;
use super::shard::{Shard, METADATA_SHARD};
use super::Broker;
use crate::cluster::{AdminCall, ClusterImage};

/// Proposals of one bootstrap round before giving up until the next image change.
const BOOTSTRAP_ATTEMPTS_MAX: u32 = 60;
/// Pause between proposals that failed (no controller yet, say).
const BOOTSTRAP_RETRY: Duration = Duration::from_millis(500);

/// Called after every image change (controller thread).
pub fn follow(broker: &Arc<Broker>, image: &ClusterImage) {
    broker.users.follow(&image.scram_users);
    if !image.caught_up || image.scram_bootstrapped {
        return;
    }
    let Some(formatted) = broker.users.formatted().filter(|u| !u.is_empty()) else {
        return;
    };
    if broker.users.bootstrapping.swap(true, Ordering::AcqRel) {
        return;
    }
    let credentials = crate::security::users::records(&formatted);
    broker.send(
        METADATA_SHARD,
        ShardMsg::Run(Box::new(move |shard: Rc<Shard>| {
            async move { bootstrap(shard, credentials).await }.boxed_local()
        })),
    );
}

async fn bootstrap(shard: Rc<Shard>, credentials: Vec<crate::security::users::CredentialRecord>) {
    let broker = shard.broker.clone();
    let Some(cluster) = broker.cluster.clone() else {
        return;
    };
    let count = credentials.len();
    for attempt in 1..=BOOTSTRAP_ATTEMPTS_MAX {
        let call = AdminCall::BootstrapScramCredentials {
            node_id: cluster.node_id,
            credentials: credentials.clone(),
        };
        match cluster.call(call).await {
            Ok(()) => {
                tracing::info!(
                    count,
                    "this member's formatted SCRAM credentials were proposed to the quorum (those it had already are kept)"
                );
                break;
            }
            Err((_, why)) => {
                tracing::warn!(
                    attempt,
                    "cannot propose the formatted SCRAM users to the quorum yet: {why}"
                );
                crate::runtime::sleep(BOOTSTRAP_RETRY).await;
            }
        }
    }
    broker.users.bootstrapping.store(false, Ordering::Release);
}
