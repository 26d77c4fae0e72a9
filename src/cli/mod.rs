//! The toolbox side of the `corelog` binary: commands that talk to any Kafka-compatible
//! broker over the wire protocol (never through its files).

pub mod client;
pub mod group;
pub mod topic;
