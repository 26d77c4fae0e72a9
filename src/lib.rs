//! corelog: a Kafka-compatible event-streaming broker, thread-per-core on io_uring.
//! See ARCHITECTURE.md for the map of this crate.

pub mod boot;
pub mod broker;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod connect;
pub mod console;
pub mod groups;
pub mod handlers;
pub mod metrics;
pub mod protocol;
pub mod quota;
pub mod replication;
pub mod runtime;
pub mod security;
pub mod serve;
pub mod server;
pub mod storage;
pub mod topic_config;
pub mod tune;
pub mod txn;
pub mod util;
