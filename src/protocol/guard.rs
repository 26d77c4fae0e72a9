//! A shape check for request bodies that we decode with `kafka-protocol`.
//!
//! The crate's generated decoders trust the wire: an array count goes straight into
//! `Vec::with_capacity`, so a few bytes claiming 2^31-1 topics make the broker ask for
//! tens of gigabytes, and a failed allocation aborts the process. Before the crate sees a
//! body, `check_request_shape` walks it with the bounded `Reader`, following the schema
//! exactly as the crate does (field order per version, compact forms in flexible
//! versions, tagged fields: known tags decoded in place, unknown ones skipped by size),
//! and allocates nothing. It rejects every count or length that the bytes after it cannot
//! hold, and every body the crate would run off the end of or refuse (nulls where the
//! crate's type is not an `Option`, bad UTF-8, known tags in the wrong version). It is
//! stricter than the crate only where Kafka is: varints past 32 bits, strings longer than
//! i16::MAX in compact form.
//!
//! It also adds up what the crate will allocate for the body (each array's count times
//! the size of the crate's Rust type, plus a map per tagged-field section with unknown
//! tags), and rejects bodies whose decode would take more than
//! `DECODE_BYTES_PER_BODY_BYTE_MAX` bytes per body byte, past a small allowance. A body
//! that passes therefore decodes (or fails to) within that budget. The budget is relative:
//! a hostile body as large as `socket.request.max.bytes` (100 MiB) can still cost a few
//! GB, because that is what the crate's types take for that many empty entries.
//!
//! Each API's schema is a small table in a submodule by area (`data` for metadata, topics
//! and fetch; `admin`, `groups`, `txn`, `security`, `quotas`, `reassign`), transcribed from the crate's
//! `messages/*_request.rs` decoders (kafka-protocol 0.18; the versions Kafka 4.0 removed,
//! which `legacy` decodes, from kafka-protocol 0.15.1's, i.e. Kafka 3.9's schemas). Adding
//! an API means adding its `Struct`s and a line in `APIS`; an API without a line is
//! refused, so a new handler cannot decode unchecked by accident.

use std::mem::size_of;

use kafka_protocol::messages::{
    add_partitions_to_txn_request, describe_producers_request, txn_offset_commit_request,
    write_txn_markers_request, AddOffsetsToTxnRequest, AddPartitionsToTxnRequest,
    DescribeProducersRequest, DescribeTransactionsRequest, EndTxnRequest, ListTransactionsRequest,
    TxnOffsetCommitRequest, WriteTxnMarkersRequest,
};
use kafka_protocol::messages::{
    alter_configs_request, create_partitions_request, delete_records_request,
    describe_configs_request, describe_log_dirs_request, elect_leaders_request,
    incremental_alter_configs_request, offset_for_leader_epoch_request, AlterConfigsRequest,
    CreatePartitionsRequest, DeleteRecordsRequest, DescribeConfigsRequest, DescribeLogDirsRequest,
    ElectLeadersRequest, IncrementalAlterConfigsRequest, OffsetForLeaderEpochRequest,
};
use kafka_protocol::messages::{
    consumer_group_heartbeat_request, create_topics_request, delete_topics_request, fetch_request,
    join_group_request, leave_group_request, list_offsets_request, metadata_request,
    offset_commit_request, offset_delete_request, offset_fetch_request, sync_group_request, ApiKey,
    ApiVersionsRequest, ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest,
    CreateTopicsRequest, DeleteGroupsRequest, DeleteTopicsRequest, DescribeClusterRequest,
    DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest,
    InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
    ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol_old::messages as old;

use super::wire::Reader;
use super::DecodeError;

mod admin;
mod data;
mod groups;
mod quotas;
mod reassign;
mod security;
mod txn;

use admin::*;
use data::*;
use groups::*;
use reassign::*;
use txn::*;
#[cfg(test)]
mod tests;

/// What the crate's decode of an accepted body may allocate, per byte of body. The
/// largest ratio the schemas allow without unknown tagged fields is 40 (a v9 Metadata
/// topic is 36: 2 bytes on the wire, 72 in memory; the test
/// `arrays_alone_stay_within_the_decode_budget` names the worst array), so this only
/// bites on bodies stuffed with unknown tagged fields, which cost a map node each.
pub const DECODE_BYTES_PER_BODY_BYTE_MAX: usize = 48;

/// Decode bytes every body may use whatever its size, so that small requests with a few
/// unknown tagged fields pass.
pub const DECODE_BYTES_ALLOWANCE: usize = 64 * 1024;

/// Upper bounds on what the crate's `BTreeMap<i32, Bytes>` of unknown tagged fields
/// allocates: the first node, and each further field (nodes hold at least 5 entries
/// once they split; a node is about 500 bytes).
const UNKNOWN_TAGS_MAP_BYTES: usize = 512;
const UNKNOWN_TAG_BYTES: usize = 128;

/// Checks that `body` (a request body, after the header) has the shape of request
/// `api_key` at `version`, and that the crate's decode of it stays within the budget
/// above. Trailing bytes after the schema are allowed, as the crate allows them.
pub fn check_request_shape(api_key: i16, version: i16, body: &[u8]) -> Result<(), DecodeError> {
    let decode_bytes = walk_body(api_key, version, &mut &body[..])?;
    let decode_bytes_max = DECODE_BYTES_PER_BODY_BYTE_MAX
        .saturating_mul(body.len())
        .saturating_add(DECODE_BYTES_ALLOWANCE);
    if decode_bytes > decode_bytes_max {
        return Err(DecodeError::DecodeTooLarge {
            decode_bytes,
            body_bytes: body.len(),
            decode_bytes_max,
        });
    }
    Ok(())
}

/// Walks a body from the front of `body`, leaving behind the bytes past the schema (the
/// crate does not read them either), and returns an upper bound on what the crate
/// allocates to decode it.
fn walk_body(api_key: i16, version: i16, body: &mut &[u8]) -> Result<usize, DecodeError> {
    let api = APIS
        .iter()
        .find(|api| api.key as i16 == api_key)
        .ok_or(DecodeError::NoRequestSchema { api_key })?;
    if !api.versions.contains(version) {
        return Err(DecodeError::UnsupportedVersion {
            api_key,
            version,
            min: api.versions.min,
            max: api.versions.max,
        });
    }
    let flexible = api.flexible.contains(version);
    let mut walk = Walk {
        reader: Reader::new(body, flexible),
        flexible,
        version,
        decode_bytes: 0,
    };
    walk.walk_struct(api.body)?;
    Ok(walk.decode_bytes)
}

/// The larger of what the current crate and kafka-protocol 0.15.1 (which decodes the
/// versions Kafka 4.0 removed, see `legacy`) allocate for one entry.
const fn either_crate(current_bytes: usize, old_bytes: usize) -> usize {
    if current_bytes > old_bytes {
        current_bytes
    } else {
        old_bytes
    }
}

/// Versions `min..=max`.
#[derive(Clone, Copy)]
struct Versions {
    min: i16,
    max: i16,
}

impl Versions {
    fn contains(self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

const ALL: Versions = since(0);

const fn since(min: i16) -> Versions {
    Versions { min, max: i16::MAX }
}

const fn until(max: i16) -> Versions {
    Versions { min: 0, max }
}

const fn range(min: i16, max: i16) -> Versions {
    Versions { min, max }
}

/// The wire type of a field, as the crate decodes it. Nullability follows the crate's
/// Rust types (`Option<...>`), which is what its decoder enforces.
#[derive(Clone, Copy)]
enum Ty {
    Int8,
    Int16,
    Int32,
    Int64,
    Bool,
    Uuid,
    String {
        nullable: bool,
    },
    /// Non-nullable bytes (the crate's `Bytes`): a view of the body, no allocation.
    Bytes,
    Array {
        of: Elem,
        nullable: bool,
    },
    Struct(&'static Struct),
}

/// The entry type of an array.
#[derive(Clone, Copy)]
enum Elem {
    Int32,
    Int64,
    String,
    Struct(&'static Struct),
}

const STRING: Ty = Ty::String { nullable: false };
const NULLABLE_STRING: Ty = Ty::String { nullable: true };

const fn array(of: Elem) -> Ty {
    Ty::Array {
        of,
        nullable: false,
    }
}

const fn nullable_array(of: Elem) -> Ty {
    Ty::Array { of, nullable: true }
}

struct Field {
    name: &'static str,
    versions: Versions,
    ty: Ty,
}

const fn field(name: &'static str, versions: Versions, ty: Ty) -> Field {
    Field { name, versions, ty }
}

/// A tagged field the crate decodes itself (it keeps the others as raw bytes). In a
/// version outside `versions` the crate rejects the tag.
struct Tagged {
    tag: u32,
    field: Field,
}

const fn tagged(tag: u32, name: &'static str, versions: Versions, ty: Ty) -> Tagged {
    Tagged {
        tag,
        field: field(name, versions, ty),
    }
}

/// A message or one of its nested structures. In flexible versions every struct ends
/// with a tagged-field section.
struct Struct {
    /// Size of the crate's Rust type: what one array entry costs once decoded.
    decoded_bytes: usize,
    fields: &'static [Field],
    tagged: &'static [Tagged],
}

struct Api {
    key: ApiKey,
    versions: Versions,
    /// Versions that use compact strings, bytes and arrays and tagged fields.
    flexible: Versions,
    body: &'static Struct,
}

static APIS: [Api; 48] = [
    Api {
        key: ApiKey::SaslHandshake,
        versions: range(0, 1),
        // No flexible version.
        flexible: since(2),
        body: &security::SASL_HANDSHAKE,
    },
    Api {
        key: ApiKey::SaslAuthenticate,
        versions: range(0, 2),
        flexible: since(2),
        body: &security::SASL_AUTHENTICATE,
    },
    Api {
        key: ApiKey::AlterUserScramCredentials,
        versions: range(0, 0),
        flexible: ALL,
        body: &security::ALTER_USER_SCRAM_CREDENTIALS,
    },
    Api {
        key: ApiKey::DescribeUserScramCredentials,
        versions: range(0, 0),
        flexible: ALL,
        body: &security::DESCRIBE_USER_SCRAM_CREDENTIALS,
    },
    Api {
        key: ApiKey::CreateAcls,
        versions: range(1, 3),
        flexible: since(2),
        body: &security::CREATE_ACLS,
    },
    Api {
        key: ApiKey::DescribeAcls,
        versions: range(1, 3),
        flexible: since(2),
        body: &security::DESCRIBE_ACLS,
    },
    Api {
        key: ApiKey::DeleteAcls,
        versions: range(1, 3),
        flexible: since(2),
        body: &security::DELETE_ACLS,
    },
    Api {
        key: ApiKey::DescribeClientQuotas,
        versions: range(0, 1),
        flexible: since(1),
        body: &quotas::DESCRIBE_CLIENT_QUOTAS,
    },
    Api {
        key: ApiKey::AlterClientQuotas,
        versions: range(0, 1),
        flexible: since(1),
        body: &quotas::ALTER_CLIENT_QUOTAS,
    },
    Api {
        key: ApiKey::Metadata,
        versions: range(0, 13),
        flexible: since(9),
        body: &METADATA,
    },
    Api {
        key: ApiKey::CreateTopics,
        versions: range(0, 7),
        flexible: since(5),
        body: &CREATE_TOPICS,
    },
    Api {
        key: ApiKey::DeleteTopics,
        versions: range(0, 6),
        flexible: since(4),
        body: &DELETE_TOPICS,
    },
    Api {
        key: ApiKey::ListOffsets,
        versions: range(0, 10),
        flexible: since(6),
        body: &LIST_OFFSETS,
    },
    Api {
        key: ApiKey::Fetch,
        versions: range(0, 18),
        flexible: since(12),
        body: &FETCH,
    },
    Api {
        key: ApiKey::InitProducerId,
        versions: range(0, 5),
        flexible: since(2),
        body: &INIT_PRODUCER_ID,
    },
    Api {
        key: ApiKey::AddPartitionsToTxn,
        versions: range(0, 5),
        flexible: since(3),
        body: &ADD_PARTITIONS_TO_TXN,
    },
    Api {
        key: ApiKey::AddOffsetsToTxn,
        versions: range(0, 4),
        flexible: since(3),
        body: &ADD_OFFSETS_TO_TXN,
    },
    Api {
        key: ApiKey::EndTxn,
        versions: range(0, 5),
        flexible: since(3),
        body: &END_TXN,
    },
    Api {
        key: ApiKey::TxnOffsetCommit,
        versions: range(0, 5),
        flexible: since(3),
        body: &TXN_OFFSET_COMMIT,
    },
    Api {
        key: ApiKey::WriteTxnMarkers,
        versions: range(1, 1),
        flexible: since(1),
        body: &WRITE_TXN_MARKERS,
    },
    Api {
        key: ApiKey::DescribeTransactions,
        versions: range(0, 0),
        flexible: ALL,
        body: &DESCRIBE_TRANSACTIONS,
    },
    Api {
        key: ApiKey::ListTransactions,
        versions: range(0, 2),
        flexible: ALL,
        body: &LIST_TRANSACTIONS,
    },
    Api {
        key: ApiKey::DescribeProducers,
        versions: range(0, 0),
        flexible: ALL,
        body: &DESCRIBE_PRODUCERS,
    },
    Api {
        key: ApiKey::DescribeCluster,
        versions: range(0, 2),
        flexible: ALL,
        body: &DESCRIBE_CLUSTER,
    },
    Api {
        key: ApiKey::FindCoordinator,
        versions: range(0, 6),
        flexible: since(3),
        body: &FIND_COORDINATOR,
    },
    Api {
        key: ApiKey::ApiVersions,
        versions: range(0, 4),
        flexible: since(3),
        body: &API_VERSIONS,
    },
    Api {
        key: ApiKey::JoinGroup,
        versions: range(0, 9),
        flexible: since(6),
        body: &JOIN_GROUP,
    },
    Api {
        key: ApiKey::SyncGroup,
        versions: range(0, 5),
        flexible: since(4),
        body: &SYNC_GROUP,
    },
    Api {
        key: ApiKey::Heartbeat,
        versions: range(0, 4),
        flexible: since(4),
        body: &HEARTBEAT,
    },
    Api {
        key: ApiKey::LeaveGroup,
        versions: range(0, 5),
        flexible: since(4),
        body: &LEAVE_GROUP,
    },
    Api {
        key: ApiKey::OffsetCommit,
        versions: range(0, 9),
        flexible: since(8),
        body: &OFFSET_COMMIT,
    },
    Api {
        key: ApiKey::OffsetFetch,
        versions: range(0, 9),
        flexible: since(6),
        body: &OFFSET_FETCH,
    },
    Api {
        key: ApiKey::ListGroups,
        versions: range(0, 5),
        flexible: since(3),
        body: &LIST_GROUPS,
    },
    Api {
        key: ApiKey::DescribeGroups,
        versions: range(0, 5),
        flexible: since(5),
        body: &DESCRIBE_GROUPS,
    },
    Api {
        key: ApiKey::DeleteGroups,
        versions: range(0, 2),
        flexible: since(2),
        body: &DELETE_GROUPS,
    },
    Api {
        key: ApiKey::CreatePartitions,
        versions: range(0, 3),
        flexible: since(2),
        body: &CREATE_PARTITIONS,
    },
    Api {
        key: ApiKey::ElectLeaders,
        versions: range(0, 2),
        flexible: since(2),
        body: &ELECT_LEADERS,
    },
    Api {
        key: ApiKey::DescribeConfigs,
        versions: range(0, 4),
        flexible: since(4),
        body: &DESCRIBE_CONFIGS,
    },
    Api {
        key: ApiKey::AlterConfigs,
        versions: range(0, 2),
        flexible: since(2),
        body: &ALTER_CONFIGS,
    },
    Api {
        key: ApiKey::IncrementalAlterConfigs,
        versions: range(0, 1),
        flexible: since(1),
        body: &INCREMENTAL_ALTER_CONFIGS,
    },
    Api {
        key: ApiKey::AlterPartitionReassignments,
        versions: range(0, 0),
        flexible: ALL,
        body: &ALTER_PARTITION_REASSIGNMENTS,
    },
    Api {
        key: ApiKey::ListPartitionReassignments,
        versions: range(0, 0),
        flexible: ALL,
        body: &LIST_PARTITION_REASSIGNMENTS,
    },
    Api {
        key: ApiKey::DeleteRecords,
        versions: range(0, 2),
        flexible: since(2),
        body: &DELETE_RECORDS,
    },
    Api {
        key: ApiKey::OffsetForLeaderEpoch,
        versions: range(0, 4),
        flexible: since(4),
        body: &OFFSET_FOR_LEADER_EPOCH,
    },
    Api {
        key: ApiKey::DescribeLogDirs,
        versions: range(0, 4),
        flexible: since(2),
        body: &DESCRIBE_LOG_DIRS,
    },
    Api {
        key: ApiKey::OffsetDelete,
        versions: range(0, 0),
        // No flexible version.
        flexible: since(1),
        body: &OFFSET_DELETE,
    },
    Api {
        key: ApiKey::ConsumerGroupHeartbeat,
        versions: range(0, 1),
        flexible: ALL,
        body: &CONSUMER_GROUP_HEARTBEAT,
    },
    Api {
        key: ApiKey::ConsumerGroupDescribe,
        versions: range(0, 1),
        flexible: ALL,
        body: &CONSUMER_GROUP_DESCRIBE,
    },
];

/// One pass over a body. Recursion follows the static schemas (at most four levels deep),
/// never the data; loops run once per entry, and the reader has checked that the
/// remaining bytes can hold every entry.
struct Walk<'a, 'b> {
    reader: Reader<'a, &'b [u8]>,
    flexible: bool,
    version: i16,
    /// Upper bound on the crate's allocations for what has been walked so far.
    decode_bytes: usize,
}

impl Walk<'_, '_> {
    fn walk_struct(&mut self, schema: &Struct) -> Result<(), DecodeError> {
        for field in schema.fields {
            if field.versions.contains(self.version) {
                self.walk_field(field.name, field.ty)?;
            }
        }
        if self.flexible {
            self.walk_tagged_fields(schema.tagged)?;
        }
        Ok(())
    }

    fn walk_field(&mut self, name: &'static str, ty: Ty) -> Result<(), DecodeError> {
        match ty {
            Ty::String { nullable } => self.reader.skip_string(name, nullable),
            Ty::Bytes => self.reader.skip_bytes(name),
            Ty::Array { of, nullable } => self.walk_array(name, of, nullable),
            Ty::Struct(schema) => self.walk_struct(schema),
            fixed => self.reader.skip(name, self.encoded_bytes_min(fixed)),
        }
    }

    fn walk_array(
        &mut self,
        name: &'static str,
        of: Elem,
        nullable: bool,
    ) -> Result<(), DecodeError> {
        let entry = of.ty();
        let entry_bytes_min = self.encoded_bytes_min(entry);
        let count = if nullable {
            self.reader.nullable_array_len(name, entry_bytes_min)?
        } else {
            Some(self.reader.array_len(name, entry_bytes_min)?)
        };
        let Some(count) = count else {
            return Ok(());
        };
        self.charge(count.saturating_mul(of.decoded_bytes()));
        for _ in 0..count {
            self.walk_field(name, entry)?;
        }
        Ok(())
    }

    /// Known tags are decoded in place, as the crate does (it ignores their size prefix);
    /// unknown ones are skipped by their size and kept by the crate in a map.
    fn walk_tagged_fields(&mut self, known: &[Tagged]) -> Result<(), DecodeError> {
        let count = self.reader.tagged_fields_len("tagged fields")?;
        let mut unknown = 0;
        for _ in 0..count {
            let tag = self.reader.uvarint("tag")?;
            let size_bytes = self.reader.uvarint("tagged field size")? as usize;
            match known.iter().find(|t| t.tag == tag) {
                Some(t) if t.field.versions.contains(self.version) => {
                    self.walk_field(t.field.name, t.field.ty)?
                }
                Some(t) => {
                    return Err(DecodeError::TagNotInVersion {
                        field: t.field.name,
                        tag,
                        version: self.version,
                    })
                }
                None => {
                    self.reader.skip("unknown tagged field", size_bytes)?;
                    unknown += 1;
                }
            }
        }
        if unknown > 0 {
            self.charge(UNKNOWN_TAGS_MAP_BYTES + unknown * UNKNOWN_TAG_BYTES);
        }
        Ok(())
    }

    fn charge(&mut self, bytes: usize) {
        self.decode_bytes = self.decode_bytes.saturating_add(bytes);
    }

    /// The fewest bytes a value of `ty` takes on the wire in this version: empty strings
    /// and arrays, empty tagged-field sections.
    fn encoded_bytes_min(&self, ty: Ty) -> usize {
        match ty {
            Ty::Int8 | Ty::Bool => 1,
            Ty::Int16 => 2,
            Ty::Int32 => 4,
            Ty::Int64 => 8,
            Ty::Uuid => 16,
            Ty::String { .. } if self.flexible => 1,
            Ty::String { .. } => 2,
            Ty::Bytes if self.flexible => 1,
            Ty::Bytes => 4,
            Ty::Array { .. } if self.flexible => 1,
            Ty::Array { .. } => 4,
            Ty::Struct(schema) => {
                let fields: usize = schema
                    .fields
                    .iter()
                    .filter(|f| f.versions.contains(self.version))
                    .map(|f| self.encoded_bytes_min(f.ty))
                    .sum();
                fields + usize::from(self.flexible)
            }
        }
    }
}

impl Elem {
    fn ty(self) -> Ty {
        match self {
            Elem::Int32 => Ty::Int32,
            Elem::Int64 => Ty::Int64,
            Elem::String => STRING,
            Elem::Struct(schema) => Ty::Struct(schema),
        }
    }

    /// What one entry takes in the `Vec` the crate decodes the array into.
    fn decoded_bytes(self) -> usize {
        match self {
            Elem::Int32 => size_of::<i32>(),
            Elem::Int64 => size_of::<i64>(),
            Elem::String => size_of::<StrBytes>(),
            Elem::Struct(schema) => schema.decoded_bytes,
        }
    }
}
