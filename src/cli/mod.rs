//! The toolbox side of the `corelog` binary: commands that talk to any Kafka-compatible
//! broker over the wire protocol (never through its files).

pub mod acl;
pub mod bench;
pub mod client;
pub mod cluster;
pub mod configs;
pub mod consume;
pub mod elect_leaders;
pub mod group;
pub mod group_member;
pub mod log_dirs;
pub mod murmur2;
pub mod offsets;
pub mod produce;
pub mod profile;
pub mod quota;
pub mod reassign;
pub mod records;
pub mod reset_offsets;
pub mod security;
pub mod storage;
pub mod topic;
pub mod txn;
pub mod user;
