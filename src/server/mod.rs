//! The network side of a shard: accept connections and serve them. The network layer
//! never touches a file; it hands decoded requests to handlers.

pub mod admin_http;
pub mod connection;
pub mod sasl;
pub mod shard_main;
pub mod tls;
