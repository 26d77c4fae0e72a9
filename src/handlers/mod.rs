//! One module per Kafka API. `dispatch` checks the version against what we advertise and
//! hands the request body to its handler.
//!
//! A handler is split in two where order matters: `dispatch` runs synchronously while
//! the connection reads requests in order (Produce appends, or forwards to the owner
//! shard, right there), and returns a future that completes the response.

pub mod acl_change;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod fetch_session;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leader_hint;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use futures::future::{FutureExt, LocalBoxFuture};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, Message};

use crate::broker::shard::Shard;
use crate::protocol::header::RequestHeaderView;
use crate::security::acl::Access;

/// What a request produces: a response body (as chunks, written in order), or nothing
/// (Produce with acks=0).
pub enum Outcome {
    Respond(Vec<Bytes>),
    NoResponse,
}

/// A request we cannot answer: the connection is closed with this as the log line.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{api:?} v{version} is not supported (supported: v{min}-v{max})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("malformed {api:?} v{version} request: {why}")]
    Malformed {
        api: ApiKey,
        version: i16,
        why: String,
    },
    #[error("cannot encode {api:?} v{version} response: {why}")]
    Encode {
        api: ApiKey,
        version: i16,
        why: String,
    },
}

impl RequestError {
    /// The Kafka error code a refused request counts as in the metrics.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            RequestError::UnsupportedVersion { .. } => crate::protocol::errors::UNSUPPORTED_VERSION,
            RequestError::Malformed { .. } => crate::protocol::errors::INVALID_REQUEST,
            RequestError::Encode { .. } => crate::protocol::errors::UNKNOWN_SERVER_ERROR,
        }
    }
}

/// Largest body accepted for any API but Produce. Control-plane requests are small (a
/// Fetch for 10,000 partitions is about 300 KiB); the cap bounds what a hostile request
/// can make the kafka-protocol decoders allocate.
pub const CONTROL_REQUEST_BYTES_MAX: usize = 4 << 20;

/// Who sent a request, as DescribeGroups shows members.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub id: String,
    /// Kafka's form: "/" and the peer's IP address.
    pub host: String,
}

pub type Pending = LocalBoxFuture<'static, Result<Outcome, RequestError>>;

/// The first versions that know THROTTLING_QUOTA_EXCEEDED (KIP-599); older ones are
/// throttled by holding the response back.
const CREATE_TOPICS_STRICT_FROM: i16 = 6;
const DELETE_TOPICS_STRICT_FROM: i16 = 5;
const CREATE_PARTITIONS_STRICT_FROM: i16 = 3;

/// The request's `controller_mutation_rate` quota: by the connection's principal (Kafka's
/// `ANONYMOUS` without one) and the request's client id.
fn mutation_quota(
    shard: &Shard,
    header: &RequestHeaderView,
    conn: &crate::server::connection::ConnInfo,
    strict_from: i16,
) -> crate::quota::mutation::MutationQuota {
    let user = conn
        .principal
        .as_deref()
        .map(|p| p.strip_prefix("User:").unwrap_or(p))
        .unwrap_or("ANONYMOUS")
        .to_string();
    let who = crate::quota::entity::ClientKey {
        user,
        client_id: header.client_id.as_deref().unwrap_or("").to_string(),
    };
    crate::quota::mutation::MutationQuota::new(
        &shard.broker.quotas,
        who,
        header.api_version >= strict_from,
    )
}

/// Starts serving one request. Errors here close the connection.
pub fn dispatch(
    shard: &Rc<Shard>,
    header: &RequestHeaderView,
    body: BytesMut,
    conn: &crate::server::connection::ConnInfo,
) -> Result<Pending, RequestError> {
    let peer = conn.peer;
    let version = header.api_version;
    let Ok(api) = ApiKey::try_from(header.api_key) else {
        unreachable!("the header decoder rejects unknown api keys")
    };
    if api == ApiKey::ApiVersions {
        // Answered even for versions we do not know: that is how clients negotiate.
        return Ok(ready(api_versions::handle(version, body)));
    }
    let Some((min, max)) = api_versions::supported(api) else {
        return Err(RequestError::UnsupportedVersion {
            api,
            version,
            min: 0,
            max: -1,
        });
    };
    if version < min || version > max {
        return Err(RequestError::UnsupportedVersion {
            api,
            version,
            min,
            max,
        });
    }
    if api != ApiKey::Produce && body.len() > CONTROL_REQUEST_BYTES_MAX {
        // The crate's decoders allocate a multiple of the body size; cap what they see.
        return Err(RequestError::Malformed {
            api,
            version,
            why: format!(
                "{} bytes is over the {CONTROL_REQUEST_BYTES_MAX}-byte limit for this API",
                body.len()
            ),
        });
    }
    let s = shard.clone();
    // Who asks, for the ACL checks (nothing to build without an authorizer).
    let access = Access::new(
        &shard.broker.acls,
        &conn.identity,
        conn.principal.as_deref(),
        peer,
    );
    Ok(match api {
        ApiKey::Produce => produce::start(&s, version, body, conn.listener, &access)?,
        ApiKey::Fetch => fetch::handle(s, version, body, conn.listener, access).boxed_local(),
        ApiKey::Metadata => metadata::handle(s, version, body, conn.listener, access).boxed_local(),
        ApiKey::ListOffsets => list_offsets::handle(s, version, body, access).boxed_local(),
        ApiKey::CreateTopics => {
            let quota = mutation_quota(shard, header, conn, CREATE_TOPICS_STRICT_FROM);
            create_topics::handle(s, version, body, access, quota).boxed_local()
        }
        ApiKey::DeleteTopics => {
            let quota = mutation_quota(shard, header, conn, DELETE_TOPICS_STRICT_FROM);
            delete_topics::handle(s, version, body, access, quota).boxed_local()
        }
        ApiKey::DescribeLogDirs => {
            describe_log_dirs::handle(s, version, body, access).boxed_local()
        }
        ApiKey::DeleteRecords => delete_records::handle(s, version, body, access).boxed_local(),
        ApiKey::OffsetForLeaderEpoch => {
            offset_for_leader_epoch::handle(s, version, body, access).boxed_local()
        }
        ApiKey::CreatePartitions => {
            let quota = mutation_quota(shard, header, conn, CREATE_PARTITIONS_STRICT_FROM);
            create_partitions::handle(s, version, body, access, quota).boxed_local()
        }
        ApiKey::DescribeConfigs => describe_configs::handle(s, version, body, access).boxed_local(),
        ApiKey::AlterConfigs => {
            alter_configs::handle_legacy(s, version, body, access).boxed_local()
        }
        ApiKey::ElectLeaders => elect_leaders::handle(s, version, body, access).boxed_local(),
        ApiKey::IncrementalAlterConfigs => {
            alter_configs::handle_incremental(s, version, body, access).boxed_local()
        }
        ApiKey::AlterPartitionReassignments => {
            alter_partition_reassignments::handle(s, version, body, access).boxed_local()
        }
        ApiKey::ListPartitionReassignments => ready(list_partition_reassignments::handle(
            &s, version, body, access,
        )),
        ApiKey::DescribeCluster => ready(describe_cluster::handle(
            &s,
            version,
            body,
            conn.listener,
            access,
        )),
        ApiKey::FindCoordinator => ready(find_coordinator::handle(
            &s,
            version,
            body,
            conn.listener,
            access,
        )),
        ApiKey::JoinGroup => {
            join_group::handle(s, version, body, client(header, peer), access).boxed_local()
        }
        ApiKey::ConsumerGroupHeartbeat => {
            consumer_group_heartbeat::handle(s, version, body, client(header, peer), access)
                .boxed_local()
        }
        ApiKey::ConsumerGroupDescribe => {
            consumer_group_describe::handle(s, version, body, access).boxed_local()
        }
        ApiKey::SyncGroup => sync_group::handle(s, version, body, access).boxed_local(),
        ApiKey::Heartbeat => heartbeat::handle(s, version, body, access).boxed_local(),
        ApiKey::LeaveGroup => leave_group::handle(s, version, body, access).boxed_local(),
        ApiKey::OffsetCommit => offset_commit::handle(s, version, body, access).boxed_local(),
        ApiKey::OffsetFetch => offset_fetch::handle(s, version, body, access).boxed_local(),
        ApiKey::ListGroups => list_groups::handle(s, version, body, access).boxed_local(),
        ApiKey::DescribeGroups => describe_groups::handle(s, version, body, access).boxed_local(),
        ApiKey::DeleteGroups => delete_groups::handle(s, version, body, access).boxed_local(),
        ApiKey::OffsetDelete => offset_delete::handle(s, version, body, access).boxed_local(),
        ApiKey::InitProducerId => init_producer_id::handle(s, version, body, access).boxed_local(),
        ApiKey::AlterUserScramCredentials => {
            alter_user_scram_credentials::handle(s, version, body, access).boxed_local()
        }
        ApiKey::DescribeUserScramCredentials => ready(describe_user_scram_credentials::handle(
            &s, version, body, access,
        )),
        ApiKey::SaslHandshake => ready(sasl_handshake::illegal_state(version, body)),
        ApiKey::SaslAuthenticate => ready(sasl_authenticate::illegal_state(version, body)),
        ApiKey::AddPartitionsToTxn => {
            add_partitions_to_txn::handle(s, version, body, access).boxed_local()
        }
        ApiKey::AddOffsetsToTxn => {
            add_offsets_to_txn::handle(s, version, body, access).boxed_local()
        }
        ApiKey::EndTxn => end_txn::handle(s, version, body, access).boxed_local(),
        ApiKey::TxnOffsetCommit => {
            txn_offset_commit::handle(s, version, body, access).boxed_local()
        }
        ApiKey::WriteTxnMarkers => {
            write_txn_markers::handle(s, version, body, access).boxed_local()
        }
        ApiKey::DescribeTransactions => {
            describe_transactions::handle(s, version, body, access).boxed_local()
        }
        ApiKey::ListTransactions => {
            list_transactions::handle(s, version, body, access).boxed_local()
        }
        ApiKey::CreateAcls => create_acls::handle(s, version, body, access).boxed_local(),
        ApiKey::DescribeAcls => ready(describe_acls::handle(&s, version, body, access)),
        ApiKey::DeleteAcls => delete_acls::handle(s, version, body, access).boxed_local(),
        ApiKey::DescribeProducers => {
            describe_producers::handle(s, version, body, access).boxed_local()
        }
        ApiKey::DescribeClientQuotas => {
            ready(describe_client_quotas::handle(&s, version, body, access))
        }
        ApiKey::AlterClientQuotas => {
            alter_client_quotas::handle(s, version, body, access).boxed_local()
        }
        _ => {
            return Err(RequestError::UnsupportedVersion {
                api,
                version,
                min,
                max,
            })
        }
    })
}

/// Kafka's answer to a topic named twice in CreateTopics or CreatePartitions.
pub const DUPLICATE_TOPIC_NAME: &str = "Duplicate topic name.";

/// The names given more than once, each once, in the order they first repeat.
pub fn repeated_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::new();
    let mut listed = std::collections::HashSet::new();
    let mut repeated = Vec::new();
    for name in names {
        if !seen.insert(name) && listed.insert(name) {
            repeated.push(name);
        }
    }
    repeated
}

/// Whether `key` is named for the first time in a request. Describe-style APIs answer a
/// repeat with INVALID_REQUEST instead of describing it again: Kafka describes every
/// repeat, so a 4 MiB request naming one large group or topic 500,000 times makes an
/// answer of gigabytes; real clients never repeat a name.
pub fn first_time<'a>(seen: &mut std::collections::HashSet<&'a str>, key: &'a str) -> bool {
    seen.insert(key)
}

pub fn repeated_message(what: &str, name: &str) -> String {
    format!("{what} {name} is named more than once in this request")
}

fn client(header: &RequestHeaderView, peer: Option<std::net::SocketAddr>) -> Client {
    Client {
        id: header.client_id.clone().unwrap_or_default(),
        host: peer.map_or_else(String::new, |p| format!("/{}", p.ip())),
    }
}

fn ready(r: Result<Outcome, RequestError>) -> Pending {
    futures::future::ready(r).boxed_local()
}

/// Decodes a control-plane request body with the kafka-protocol crate, after checking its
/// shape: the crate sizes allocations by counts from the wire, and a failed allocation
/// aborts the process (see `protocol::guard`).
///
/// A version older than the crate has (Kafka 3.9's oldest) is first re-encoded at the
/// crate's oldest by `protocol::legacy`, so handlers see the current types only.
pub fn decode<T: Decodable + Message>(
    api: ApiKey,
    version: i16,
    mut body: BytesMut,
) -> Result<T, RequestError> {
    let malformed = |why: String| RequestError::Malformed { api, version, why };
    crate::protocol::guard::check_request_shape(api as i16, version, &body)
        .map_err(|e| malformed(e.to_string()))?;
    let bridge = T::VERSIONS.min;
    if version < bridge {
        let mut bridged = crate::protocol::legacy::upgrade_request(api, version, bridge, &mut body)
            .map_err(|e| malformed(e.why))?;
        return T::decode(&mut bridged, bridge).map_err(|e| malformed(e.to_string()));
    }
    T::decode(&mut body, version).map_err(|e| malformed(e.to_string()))
}

/// Encodes a control-plane response body with the kafka-protocol crate.
/// A version older than the crate has goes through `protocol::legacy` (see `decode`).
pub fn respond<T: Encodable + Message>(
    api: ApiKey,
    version: i16,
    msg: &T,
) -> Result<Outcome, RequestError> {
    let encode_error = |why: String| RequestError::Encode { api, version, why };
    let bridge = T::VERSIONS.min;
    let mut out = BytesMut::new();
    msg.encode(&mut out, version.max(bridge))
        .map_err(|e| encode_error(e.to_string()))?;
    if version < bridge {
        out = crate::protocol::legacy::downgrade_response(api, version, bridge, out)
            .map_err(|e| encode_error(e.why))?;
    }
    Ok(Outcome::Respond(vec![out.freeze()]))
}

/// A topic name as the crate wants it.
pub fn topic_name(name: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_string(
        name.to_string(),
    ))
}

pub fn str_bytes(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn repeated_names_once_each_in_order() {
        let names = ["a", "b", "a", "c", "b", "a", "d"];
        assert_eq!(super::repeated_names(names), vec!["a", "b"]);
        assert!(super::repeated_names(["x", "y"]).is_empty());
    }
}
