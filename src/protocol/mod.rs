//! Kafka wire protocol: frames, headers, and our own codecs for the hot APIs.
