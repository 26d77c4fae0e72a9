//! Cross-shard messages. A handler groups a request's partitions by owner shard and
//! sends each owner one message; the owner answers on a oneshot. Partitions owned by the
//! handler's own shard are served in place, with no message at all.

use bytes::{Bytes, BytesMut};
use futures::channel::oneshot;

/// One partition's records of a Produce request.
pub struct ProduceItem {
    pub topic: String,
    pub partition: i32,
    pub records: Option<BytesMut>,
}

#[derive(Debug, Clone)]
pub struct ProduceResult {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub base_offset: i64,
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
}

impl ProduceResult {
    pub fn error(code: i16, message: Option<String>) -> ProduceResult {
        ProduceResult {
            error_code: code,
            error_message: message,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: -1,
        }
    }
}

/// An owner shard's answer to `ShardMsg::Produce`, with when it got the message and
/// when it replied (both `None` unless metrics are recorded), so the sender can tell
/// the hand-off time from the owner's own work.
pub struct ProduceReply {
    pub results: Vec<ProduceResult>,
    pub received: Option<std::time::Instant>,
    pub replied: Option<std::time::Instant>,
}

/// One partition of a Fetch request.
#[derive(Debug, Clone)]
pub struct FetchItem {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub max_bytes: usize,
    /// A waiting read waits for data past this offset: the fetch offset, or the high
    /// watermark already seen when what is there is fewer than the request's min_bytes
    /// (waiting past the fetch offset would then return at once, again and again).
    pub wait_past: i64,
    /// A follower's replica fetch (its broker id): reads up to what is written, not
    /// just to the high watermark, and reports the follower's progress to the leader.
    pub replica: Option<i32>,
    /// isolation_level=1 (read_committed): up to the last stable offset.
    pub read_committed: bool,
    /// A consumer read served by a follower (KIP-392): refused with
    /// NOT_LEADER_OR_FOLLOWER unless the shard follows the partition and has the
    /// leader's high watermark, which bounds the read.
    pub follower_read: bool,
    /// A follower's own log start offset, as its replica fetch reports it (-1 from
    /// consumers and before Fetch v5): the leader's DeleteRecords waits for it.
    pub replica_log_start: i64,
}

#[derive(Debug, Clone)]
pub struct FetchResult {
    pub error_code: i16,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub last_stable_offset: i64,
    /// (producer id, first offset) of aborted transactions in `batches`.
    pub aborted: Vec<(i64, i64)>,
    pub batches: Vec<Bytes>,
    /// A follower's read left empty by the leader's replication throttle: a long-poll
    /// does not wait on this partition's data (there is some, it may not be sent yet).
    pub throttled: bool,
}

impl FetchResult {
    pub fn error(code: i16) -> FetchResult {
        FetchResult {
            error_code: code,
            high_watermark: -1,
            log_start_offset: -1,
            last_stable_offset: -1,
            aborted: Vec::new(),
            batches: Vec::new(),
            throttled: false,
        }
    }

    pub fn bytes(&self) -> usize {
        self.batches.iter().map(Bytes::len).sum()
    }
}

/// One partition of a ListOffsets request.
#[derive(Debug, Clone)]
pub struct OffsetQuery {
    pub topic: String,
    pub partition: i32,
    pub timestamp: i64,
    /// isolation_level=1: "latest" is the last stable offset.
    pub read_committed: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct OffsetAnswer {
    pub error_code: i16,
    pub offset: i64,
    pub timestamp: i64,
}

/// A partition to open (create) on its owner shard.
#[derive(Debug, Clone)]
pub struct PartitionRef {
    pub topic: String,
    pub partition: i32,
    pub dir: usize,
}

/// A partition's recovery point (everything below it is on disk) and log start offset,
/// as written to the checkpoint files periodically and at shutdown.
#[derive(Debug, Clone)]
pub struct PartitionCheckpoint {
    pub dir: usize,
    pub topic: String,
    pub partition: i32,
    pub recovery_point: i64,
    pub log_start_offset: i64,
}

/// Work run on another shard: a closure that starts a task there. For rare control-plane
/// steps (config changes, partition growth) that need no message type of their own.
pub type ShardTask = Box<
    dyn FnOnce(
            std::rc::Rc<crate::broker::shard::Shard>,
        ) -> futures::future::LocalBoxFuture<'static, ()>
        + Send,
>;

pub enum ShardMsg {
    /// Runs the closure on the receiving shard (see `Shard::run_on`).
    Run(ShardTask),
    /// Appended in the order messages arrive; the reply comes when `acks` is satisfied.
    /// `sent` is when the message left (`metrics::now`), for the hand-off stage.
    Produce {
        acks: i16,
        items: Vec<ProduceItem>,
        sent: Option<std::time::Instant>,
        reply: oneshot::Sender<ProduceReply>,
    },
    /// Reads the partitions. With `wait`, first waits (at most that long) until any of
    /// them has data past its offset, so a long-poll costs one hop there and one back;
    /// the wait ends early when the receiver is dropped.
    Fetch {
        items: Vec<FetchItem>,
        /// The response's byte budget (`Shard::fetch_local`).
        response_bytes_max: usize,
        wait: Option<std::time::Duration>,
        reply: oneshot::Sender<Vec<FetchResult>>,
    },
    ListOffsets {
        items: Vec<OffsetQuery>,
        reply: oneshot::Sender<Vec<OffsetAnswer>>,
    },
    /// Opens (creates) partitions with the configs of `snap`, the snapshot about to be
    /// published with them.
    OpenPartitions {
        parts: Vec<PartitionRef>,
        snap: std::sync::Arc<crate::broker::metadata::Snapshot>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    DeletePartitions {
        parts: Vec<PartitionRef>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Admin work that only shard 0 (the metadata writer) does.
    Admin(crate::broker::shard::AdminMsg),
    /// A group operation, sent to the group's home shard.
    Group {
        op: crate::groups::GroupOp,
        reply: oneshot::Sender<crate::groups::GroupReply>,
    },
    /// Flush every partition and report its recovery point (periodic checkpoint).
    Checkpoint {
        reply: oneshot::Sender<Vec<PartitionCheckpoint>>,
    },
    Shutdown {
        reply: oneshot::Sender<Vec<PartitionCheckpoint>>,
    },
    /// A whole long-poll on the one shard that owns every partition of a Fetch: read,
    /// and while fewer than `min_bytes` came back, wait (until `wait` has passed since
    /// the message arrived) for data past what was seen and read again
    /// (`handlers::fetch::read_until`). One hop there and one back, where a `Fetch`
    /// read followed by a `Fetch` wait took two. Ends early when the receiver is dropped.
    FetchUntil {
        items: Vec<FetchItem>,
        response_bytes_max: usize,
        min_bytes: usize,
        wait: std::time::Duration,
        reply: oneshot::Sender<Vec<FetchResult>>,
    },
}
