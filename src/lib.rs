//! corelog: a Kafka-compatible event-streaming broker, thread-per-core on io_uring.
//! See ARCHITECTURE.md for the map of this crate.

pub mod protocol;
pub mod storage;
