//! FetchResponse encoder (in progress).
