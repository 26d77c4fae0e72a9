//! Storage: Kafka's on-disk log layout, written with O_DIRECT through glommio.
