//! AlterUserScramCredentials (v0), what `kafka-configs --alter --entity-type users`
//! and `corelog user add|delete` send: SCRAM credentials set or removed, persisted
//! (`security::users`) before the answer. The client sends the salted password (never
//! the password); the broker keeps StoredKey and ServerKey derived from it.
//!
//! In a cluster the change is a record of the metadata quorum, so every member logs
//! the user in (`cluster::users`).
//!
//! Checks as Kafka's: a user named twice in one request gets DUPLICATE_RESOURCE for every
//! entry; an empty name or an iteration count outside 4096..=16384 or an empty salt
//! UNACCEPTABLE_CREDENTIAL; an unknown mechanism UNSUPPORTED_SASL_MECHANISM; deleting
//! what does not exist RESOURCE_NOT_FOUND. One result per user named.

use std::collections::BTreeMap;
use std::rc::Rc;

use bytes::BytesMut;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
};

use super::{decode, respond, str_bytes, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::cluster::AdminCall;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};
use crate::security::scram::{Credential, Mechanism, ITERATIONS_MAX, ITERATIONS_MIN};
use crate::security::users::{Change, CredentialRecord};

type Refusal = (i16, String);

const CLUSTER_ALTER_DENIED: &str = "Changing SCRAM credentials needs ALTER on the cluster.";

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: AlterUserScramCredentialsRequest =
        decode(ApiKey::AlterUserScramCredentials, version, body)?;
    let mut named: BTreeMap<String, usize> = BTreeMap::new();
    for n in req
        .deletions
        .iter()
        .map(|d| &d.name)
        .chain(req.upsertions.iter().map(|u| &u.name))
    {
        *named.entry(n.to_string()).or_default() += 1;
    }
    let mut outcome: BTreeMap<String, Option<Refusal>> = BTreeMap::new();
    let mut changes = Vec::new();
    let entries = req
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism, None))
        .chain(req.upsertions.iter().map(|u| {
            (
                u.name.to_string(),
                u.mechanism,
                Some((u.iterations, u.salt.to_vec(), u.salted_password.to_vec())),
            )
        }));
    let may_alter = access.cluster(Operation::Alter);
    for (name, mechanism, upsert) in entries {
        let checked = if may_alter {
            check(&name, named[&name], mechanism, upsert)
        } else {
            Err((
                ec::CLUSTER_AUTHORIZATION_FAILED,
                CLUSTER_ALTER_DENIED.into(),
            ))
        };
        match checked {
            Ok(change) => changes.push(change),
            Err(refusal) => {
                outcome.insert(name.clone(), Some(refusal));
                continue;
            }
        }
        outcome.entry(name).or_insert(None);
    }
    let broker = shard.broker.clone();
    let (changes, result) = match &broker.cluster {
        Some(cluster) => {
            let r = apply_in_cluster(&broker, cluster, &changes).await;
            (changes, r)
        }
        None => {
            crate::runtime::blocking(move || {
                let r = broker.users.apply_blocking(&changes);
                (changes, r)
            })
            .await
        }
    };
    match result {
        Ok(results) => {
            for (change, r) in changes.iter().zip(results) {
                if let (Change::Delete { name, .. }, Err(_)) = (change, r) {
                    outcome.insert(
                        name.clone(),
                        Some((
                            ec::RESOURCE_NOT_FOUND,
                            "Attempt to delete a user credential that does not exist".into(),
                        )),
                    );
                }
            }
        }
        Err(e) => {
            tracing::error!("AlterUserScramCredentials: {e}");
            for change in &changes {
                let name = match change {
                    Change::Upsert { name, .. } | Change::Delete { name, .. } => name,
                };
                outcome.insert(name.clone(), Some((ec::UNKNOWN_SERVER_ERROR, e.clone())));
            }
        }
    }
    let mut resp = AlterUserScramCredentialsResponse::default();
    resp.results = outcome
        .into_iter()
        .map(|(user, refusal)| {
            let mut r = AlterUserScramCredentialsResult::default();
            r.user = str_bytes(&user);
            if let Some((code, msg)) = refusal {
                r.error_code = code;
                r.error_message = Some(str_bytes(&msg));
            }
            r
        })
        .collect();
    respond(ApiKey::AlterUserScramCredentials, version, &resp)
}

const IMAGE_WAIT_ROUND: std::time::Duration = std::time::Duration::from_millis(10);
const IMAGE_WAIT_ROUNDS: usize = 100;

/// Cluster mode: the changes as one quorum record, so every member logs the users in.
/// A deletion of what this member's image does not hold is refused here (the record
/// leaves it out); answered once this member's image shows the change. One outcome per
/// change, as `UserStore::apply_blocking`.
async fn apply_in_cluster(
    broker: &crate::broker::Broker,
    cluster: &crate::cluster::ClusterHandle,
    changes: &[Change],
) -> Result<Vec<Result<(), String>>, String> {
    let image = cluster.image();
    let mut upserts = Vec::new();
    let mut deletions = Vec::new();
    let mut outcomes = Vec::with_capacity(changes.len());
    for c in changes {
        match c {
            Change::Upsert {
                name,
                mechanism,
                credential,
            } => {
                upserts.push(CredentialRecord::new(name, *mechanism, credential));
                outcomes.push(Ok(()));
            }
            Change::Delete { name, mechanism } => {
                let held = image
                    .scram_users
                    .get(name)
                    .is_some_and(|m| m.contains_key(mechanism));
                if held {
                    deletions.push((name.clone(), mechanism.name().to_string()));
                    outcomes.push(Ok(()));
                } else {
                    outcomes.push(Err(name.clone()));
                }
            }
        }
    }
    if upserts.is_empty() && deletions.is_empty() {
        return Ok(outcomes);
    }
    let call = AdminCall::AlterScramCredentials {
        upserts: upserts.clone(),
        deletions: deletions.clone(),
    };
    cluster.call(call).await.map_err(|(_, why)| why)?;
    // The call is answered once the state holds the change; the image is published
    // right after. Wait for it (bounded) so the client's next login on this member
    // sees what it was told is done.
    for _ in 0..IMAGE_WAIT_ROUNDS {
        let image = cluster.image();
        let users = &image.scram_users;
        let has = |name: &str, m: &str| {
            users
                .get(name)
                .is_some_and(|ms| ms.keys().any(|k| k.name() == m))
        };
        let ups = upserts.iter().all(|u| {
            u.decode()
                .is_ok_and(|(m, c)| users.get(&u.name).and_then(|ms| ms.get(&m)) == Some(&c))
        });
        if ups && !deletions.iter().any(|(n, m)| has(n, m)) {
            broker.users.follow(users);
            return Ok(outcomes);
        }
        crate::runtime::sleep(IMAGE_WAIT_ROUND).await;
    }
    Err("the change is committed but not yet in this broker's image".into())
}

/// One deletion (`upsert` None) or upsertion, checked; the change it makes.
fn check(
    name: &str,
    times_named: usize,
    mechanism: i8,
    upsert: Option<(i32, Vec<u8>, Vec<u8>)>,
) -> Result<Change, Refusal> {
    if times_named > 1 {
        return Err((
            ec::DUPLICATE_RESOURCE,
            "A user credential cannot be altered twice in the same request".into(),
        ));
    }
    if name.is_empty() {
        return Err((
            ec::UNACCEPTABLE_CREDENTIAL,
            "Username must not be empty".into(),
        ));
    }
    let m = Mechanism::from_wire(mechanism).ok_or_else(|| {
        (
            ec::UNSUPPORTED_SASL_MECHANISM,
            format!("Unknown SCRAM mechanism {mechanism}"),
        )
    })?;
    let Some((iterations, salt, salted)) = upsert else {
        return Ok(Change::Delete {
            name: name.to_string(),
            mechanism: m,
        });
    };
    if iterations < ITERATIONS_MIN as i32 || iterations > ITERATIONS_MAX as i32 {
        return Err((
            ec::UNACCEPTABLE_CREDENTIAL,
            format!(
                "Iterations must be from {ITERATIONS_MIN} to {ITERATIONS_MAX} for {}",
                m.name()
            ),
        ));
    }
    if salt.is_empty() {
        return Err((ec::UNACCEPTABLE_CREDENTIAL, "Salt must not be empty".into()));
    }
    if salted.len() != m.output_bytes() {
        return Err((
            ec::UNACCEPTABLE_CREDENTIAL,
            format!(
                "A {} salted password is {} bytes",
                m.name(),
                m.output_bytes()
            ),
        ));
    }
    Ok(Change::Upsert {
        name: name.to_string(),
        mechanism: m,
        credential: Credential::from_salted(m, &salted, salt, iterations as u32),
    })
}
