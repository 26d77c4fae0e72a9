//! Control-plane versions that Kafka 3.9 served and kafka-protocol 0.16+ no longer has
//! (KIP-896 removed them from Kafka 4.0): OffsetCommit v0-1, OffsetFetch v0, ListOffsets
//! v0, CreateTopics v0-1, DeleteTopics v0, DescribeConfigs v0, DescribeLogDirs v0,
//! OffsetForLeaderEpoch v0-1, the Fetch v0-3 request and the Produce v0-2 response.
//!
//! They go through kafka-protocol 0.15.1 (`kafka_protocol_old`, generated from Kafka
//! 3.9's JSON schemas) by way of a *bridge version*: the oldest version the current crate
//! still has. A request at an old version is decoded by the old crate and re-encoded at
//! the bridge version, which the handler then decodes with the current crate as usual; a
//! response goes the other way (current crate encodes at the bridge version, the old
//! crate decodes that and encodes at the requested version). Handlers therefore see one
//! set of types. Fields an old version lacks take the schema's defaults, exactly as the
//! old crate fills them when decoding; fields a response version lacks are dropped, and
//! where Kafka 3.9 derived an old field from a newer one (ListOffsets v0's offset list,
//! DescribeConfigs v0's is_default) `fix_response` derives it here.
//!
//! The request body has passed `guard::check_request_shape` for its own version before
//! the old crate sees it, and the re-encoded body is at most a few bytes per field
//! larger, so no allocation here is sized by an unchecked wire count.

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use kafka_protocol_old::messages as old;
use kafka_protocol_old::protocol::{Decodable, Encodable};

/// Why an old version could not be bridged.
#[derive(Debug, thiserror::Error)]
#[error("{api:?} v{version}: {why}")]
pub struct BridgeError {
    pub api: ApiKey,
    pub version: i16,
    pub why: String,
}

/// Re-encodes `body`, a request of `api` at `version`, at `bridge` (a version both
/// crates have). `body` is consumed up to the end of the request.
pub fn upgrade_request(
    api: ApiKey,
    version: i16,
    bridge: i16,
    body: &mut BytesMut,
) -> Result<BytesMut, BridgeError> {
    let err = |why: String| BridgeError { api, version, why };
    macro_rules! via {
        ($ty:ty) => {{
            let mut msg = <$ty>::decode(body, version).map_err(|e| err(e.to_string()))?;
            msg.fix(version);
            encode_old(&msg, bridge).map_err(err)
        }};
    }
    match api {
        ApiKey::Fetch => via!(old::FetchRequest),
        ApiKey::ListOffsets => via!(old::ListOffsetsRequest),
        ApiKey::CreateTopics => via!(old::CreateTopicsRequest),
        ApiKey::DeleteTopics => via!(old::DeleteTopicsRequest),
        ApiKey::OffsetForLeaderEpoch => via!(old::OffsetForLeaderEpochRequest),
        ApiKey::DescribeLogDirs => via!(old::DescribeLogDirsRequest),
        ApiKey::DescribeConfigs => via!(old::DescribeConfigsRequest),
        ApiKey::OffsetCommit => via!(old::OffsetCommitRequest),
        ApiKey::OffsetFetch => via!(old::OffsetFetchRequest),
        _ => Err(err("no legacy request codec".into())),
    }
}

/// Old request fields with no place in the bridge version, reset to the value the old
/// crate accepts there (what the handler would ignore anyway).
trait FixRequest {
    fn fix(&mut self, _version: i16) {}
}

impl FixRequest for old::FetchRequest {}
impl FixRequest for old::CreateTopicsRequest {}
impl FixRequest for old::DeleteTopicsRequest {}
impl FixRequest for old::OffsetForLeaderEpochRequest {}
impl FixRequest for old::DescribeLogDirsRequest {}
impl FixRequest for old::DescribeConfigsRequest {}
impl FixRequest for old::OffsetFetchRequest {}

impl FixRequest for old::OffsetCommitRequest {
    /// v1's per-partition commit time: the broker stamps commits with its own clock (as
    /// for v2+), so the field is dropped.
    fn fix(&mut self, _version: i16) {
        for p in self.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            p.commit_timestamp = -1;
        }
    }
}

impl FixRequest for old::ListOffsetsRequest {
    /// v0's max_num_offsets: one offset is answered, whatever was asked for.
    fn fix(&mut self, _version: i16) {
        for p in self.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            p.max_num_offsets = 1;
        }
    }
}

/// Re-encodes `bridged`, a response of `api` encoded at `bridge`, at `version`.
pub fn downgrade_response(
    api: ApiKey,
    version: i16,
    bridge: i16,
    mut bridged: BytesMut,
) -> Result<BytesMut, BridgeError> {
    let err = |why: String| BridgeError { api, version, why };
    macro_rules! via {
        ($ty:ty) => {{
            let mut msg = <$ty>::decode(&mut bridged, bridge).map_err(|e| err(e.to_string()))?;
            fix_response(&mut msg, version);
            encode_old(&msg, version).map_err(err)
        }};
    }
    match api {
        ApiKey::Produce => via!(old::ProduceResponse),
        ApiKey::ListOffsets => via!(old::ListOffsetsResponse),
        ApiKey::CreateTopics => via!(old::CreateTopicsResponse),
        ApiKey::DeleteTopics => via!(old::DeleteTopicsResponse),
        ApiKey::OffsetForLeaderEpoch => via!(old::OffsetForLeaderEpochResponse),
        ApiKey::DescribeLogDirs => via!(old::DescribeLogDirsResponse),
        ApiKey::DescribeConfigs => via!(old::DescribeConfigsResponse),
        ApiKey::OffsetCommit => via!(old::OffsetCommitResponse),
        ApiKey::OffsetFetch => via!(old::OffsetFetchResponse),
        _ => Err(err("no legacy response codec".into())),
    }
}

fn encode_old<T: Encodable>(msg: &T, version: i16) -> Result<BytesMut, String> {
    let mut out = BytesMut::new();
    msg.encode(&mut out, version).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Kafka 3.9's old response fields that are derived from newer ones, and newer fields
/// the old crate refuses to drop silently.
trait FixResponse {
    fn fix(&mut self, _version: i16) {}
}

fn fix_response<T: FixResponse>(msg: &mut T, version: i16) {
    msg.fix(version);
}

impl FixResponse for old::ProduceResponse {}
impl FixResponse for old::CreateTopicsResponse {}
impl FixResponse for old::DeleteTopicsResponse {}
impl FixResponse for old::OffsetForLeaderEpochResponse {}
impl FixResponse for old::DescribeLogDirsResponse {}
impl FixResponse for old::OffsetCommitResponse {}
impl FixResponse for old::OffsetFetchResponse {}

/// DEFAULT_CONFIG in DescribeConfigs' config_source (KIP-226).
const CONFIG_SOURCE_DEFAULT: i8 = 5;

impl FixResponse for old::ListOffsetsResponse {
    /// v0 answers a list of offsets instead of one (Kafka 3.9 gives the one it found).
    fn fix(&mut self, version: i16) {
        if version > 0 {
            return;
        }
        for p in self.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            p.old_style_offsets = if p.error_code == 0 && p.offset >= 0 {
                vec![p.offset]
            } else {
                Vec::new()
            };
            p.offset = -1;
            p.timestamp = -1;
        }
    }
}

impl FixResponse for old::DescribeConfigsResponse {
    /// v0 says is_default where v1+ give the source.
    fn fix(&mut self, version: i16) {
        if version > 0 {
            return;
        }
        for c in self.results.iter_mut().flat_map(|r| r.configs.iter_mut()) {
            c.is_default = c.config_source == CONFIG_SOURCE_DEFAULT;
        }
    }
}

#[cfg(test)]
mod tests;
