//! Kafka error codes the broker answers with. Each value is checked against
//! `kafka_protocol::ResponseError` in the tests below; the doc line is Kafka's own message.

/// No error.
pub const NONE: i16 = 0;
/// Unexpected server error; also the catch-all for bugs.
pub const UNKNOWN_SERVER_ERROR: i16 = -1;
/// The requested offset is not within the range of offsets maintained by the server.
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
/// This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt.
pub const CORRUPT_MESSAGE: i16 = 2;
/// This server does not host this topic-partition.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// The requested fetch size is invalid.
pub const INVALID_FETCH_SIZE: i16 = 4;
/// There is no leader for this topic-partition as we are in the middle of a leadership election.
pub const LEADER_NOT_AVAILABLE: i16 = 5;
/// For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition.
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// The request timed out.
pub const REQUEST_TIMED_OUT: i16 = 7;
/// The request included a message larger than the max message size the server will accept.
pub const MESSAGE_TOO_LARGE: i16 = 10;
/// The request attempted to perform an operation on an invalid topic.
pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
/// The request included message batch larger than the configured segment size on the server.
pub const RECORD_LIST_TOO_LARGE: i16 = 18;
/// Messages are rejected since there are fewer in-sync replicas than required.
pub const NOT_ENOUGH_REPLICAS: i16 = 19;
/// Messages are written to the log, but to fewer in-sync replicas than required.
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
/// Produce request specified an invalid value for required acks.
pub const INVALID_REQUIRED_ACKS: i16 = 21;
/// Topic authorization failed.
pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
/// Group authorization failed.
pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
/// Cluster authorization failed.
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
/// Security features are disabled (the ACL APIs without an authorizer).
pub const SECURITY_DISABLED: i16 = 54;
/// The timestamp of the message is out of acceptable range.
pub const INVALID_TIMESTAMP: i16 = 32;
/// The broker does not support the requested SASL mechanism.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// Request is not valid given the current SASL state.
pub const ILLEGAL_SASL_STATE: i16 = 34;
/// The version of API is not supported.
pub const UNSUPPORTED_VERSION: i16 = 35;
/// Topic with this name already exists.
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
/// Number of partitions is below 1.
pub const INVALID_PARTITIONS: i16 = 37;
/// Replication factor is below 1 or larger than the number of available brokers.
pub const INVALID_REPLICATION_FACTOR: i16 = 38;
/// Replica assignment is invalid.
pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
/// Configuration is invalid.
pub const INVALID_CONFIG: i16 = 40;
/// No partition reassignment is in progress (cancelling one that is not there).
pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
/// This is not the correct controller for this cluster.
pub const NOT_CONTROLLER: i16 = 41;
/// This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details.
pub const INVALID_REQUEST: i16 = 42;
/// The message format version on the broker does not support the request.
pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
/// SASL Authentication failed.
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// A request illegally referred to a resource that does not exist.
pub const RESOURCE_NOT_FOUND: i16 = 91;
/// A request illegally referred to the same resource twice.
pub const DUPLICATE_RESOURCE: i16 = 92;
/// Requested credential would not meet criteria for acceptability.
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
/// Request parameters do not satisfy the configured policy.
pub const POLICY_VIOLATION: i16 = 44;
/// The broker received an out of order sequence number.
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
/// The broker received a duplicate sequence number.
pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
/// Producer attempted to produce with an old epoch.
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
/// Disk error when trying to access log file on the disk.
pub const KAFKA_STORAGE_ERROR: i16 = 56;
/// This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question. This could happen if, for instance, the producer's records were deleted because their retention time had elapsed. Once the last records of the producerId are removed, the producer's metadata is removed from the broker, and future appends by the producer will return this exception.
pub const UNKNOWN_PRODUCER_ID: i16 = 59;
/// Topic deletion is disabled.
pub const TOPIC_DELETION_DISABLED: i16 = 73;
/// The leader epoch in the request is older than the epoch on the broker.
pub const FENCED_LEADER_EPOCH: i16 = 74;
/// The leader epoch in the request is newer than the epoch on the broker.
pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
/// The requesting client does not support the compression type of given partition.
pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
/// The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing.
pub const OFFSET_NOT_AVAILABLE: i16 = 78;
/// This record has failed the validation on broker and hence will be rejected.
pub const INVALID_RECORD: i16 = 87;
/// There is a newer producer with the same transactionalId which fences the current one.
pub const PRODUCER_FENCED: i16 = 90;
/// This server does not host this topic ID.
pub const UNKNOWN_TOPIC_ID: i16 = 100;
/// The log's topic ID did not match the topic ID in the request
pub const INCONSISTENT_TOPIC_ID: i16 = 103;
/// Transactional Id authorization failed.
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
/// The coordinator is not available.
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
/// The coordinator is loading its partition of the state topic and cannot serve yet.
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// This is not the correct coordinator.
pub const NOT_COORDINATOR: i16 = 16;
/// The committing client's metadata string is too large.
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
/// Specified group generation id is not valid.
pub const ILLEGAL_GENERATION: i16 = 22;
/// The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list.
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
/// The group id is invalid.
pub const INVALID_GROUP_ID: i16 = 24;
/// The coordinator is not aware of this member.
pub const UNKNOWN_MEMBER_ID: i16 = 25;
/// The session timeout is not within the range allowed by the broker.
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
/// The group is rebalancing, so a rejoin is needed.
pub const REBALANCE_IN_PROGRESS: i16 = 27;
/// The group is not empty.
pub const NON_EMPTY_GROUP: i16 = 68;
/// The group id does not exist.
pub const GROUP_ID_NOT_FOUND: i16 = 69;
/// The group member needs to have a valid member id before actually entering a consumer group.
pub const MEMBER_ID_REQUIRED: i16 = 79;
/// The group is already at its configured maximum size (`group.max.size`,
/// `group.consumer.max.size`).
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
/// Another consumer with the same group.instance.id has registered with a different member.id.
pub const FENCED_INSTANCE_ID: i16 = 82;
/// The consumer group is actively subscribed to the topic.
pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

/// The preferred leader was not available.
pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
/// Eligible topic partition leaders are not available.
pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
/// Leader election not needed for topic partition.
pub const ELECTION_NOT_NEEDED: i16 = 84;

/// The producer attempted a transactional operation in an invalid state.
pub const INVALID_TXN_STATE: i16 = 48;
/// The producer attempted to use a producer id which is not currently assigned to its transactional id.
pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
/// The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms).
pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
/// The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing.
pub const CONCURRENT_TRANSACTIONS: i16 = 51;
/// The broker did not attempt to execute this operation.
pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
/// The transactionalId could not be found.
pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

/// The request was refused because a `controller_mutation_rate` quota is exhausted
/// (KIP-599); retry after the response's throttle_time_ms.
pub const THROTTLING_QUOTA_EXCEEDED: i16 = 89;

/// KIP-227: the Fetch named a fetch session this broker (shard) does not hold; the
/// client answers with a full fetch that creates a new one.
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// KIP-227: the Fetch's session epoch is not the session's next one.
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
/// KIP-227: a session created with topic names (Fetch v7-12) used with topic ids
/// (v13+), or the other way round.
pub const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::ResponseError as E;

    #[test]
    fn codes_match_kafka_protocol() {
        let pairs = [
            (UNKNOWN_SERVER_ERROR, E::UnknownServerError),
            (OFFSET_OUT_OF_RANGE, E::OffsetOutOfRange),
            (CORRUPT_MESSAGE, E::CorruptMessage),
            (UNKNOWN_TOPIC_OR_PARTITION, E::UnknownTopicOrPartition),
            (INVALID_FETCH_SIZE, E::InvalidFetchSize),
            (LEADER_NOT_AVAILABLE, E::LeaderNotAvailable),
            (NOT_LEADER_OR_FOLLOWER, E::NotLeaderOrFollower),
            (REQUEST_TIMED_OUT, E::RequestTimedOut),
            (MESSAGE_TOO_LARGE, E::MessageTooLarge),
            (INVALID_TOPIC_EXCEPTION, E::InvalidTopicException),
            (RECORD_LIST_TOO_LARGE, E::RecordListTooLarge),
            (NOT_ENOUGH_REPLICAS, E::NotEnoughReplicas),
            (
                NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                E::NotEnoughReplicasAfterAppend,
            ),
            (INVALID_REQUIRED_ACKS, E::InvalidRequiredAcks),
            (TOPIC_AUTHORIZATION_FAILED, E::TopicAuthorizationFailed),
            (GROUP_AUTHORIZATION_FAILED, E::GroupAuthorizationFailed),
            (CLUSTER_AUTHORIZATION_FAILED, E::ClusterAuthorizationFailed),
            (SECURITY_DISABLED, E::SecurityDisabled),
            (INVALID_TIMESTAMP, E::InvalidTimestamp),
            (UNSUPPORTED_VERSION, E::UnsupportedVersion),
            (TOPIC_ALREADY_EXISTS, E::TopicAlreadyExists),
            (INVALID_PARTITIONS, E::InvalidPartitions),
            (INVALID_REPLICATION_FACTOR, E::InvalidReplicationFactor),
            (INVALID_REPLICA_ASSIGNMENT, E::InvalidReplicaAssignment),
            (INVALID_CONFIG, E::InvalidConfig),
            (NO_REASSIGNMENT_IN_PROGRESS, E::NoReassignmentInProgress),
            (NOT_CONTROLLER, E::NotController),
            (INVALID_REQUEST, E::InvalidRequest),
            (
                UNSUPPORTED_FOR_MESSAGE_FORMAT,
                E::UnsupportedForMessageFormat,
            ),
            (POLICY_VIOLATION, E::PolicyViolation),
            (OUT_OF_ORDER_SEQUENCE_NUMBER, E::OutOfOrderSequenceNumber),
            (DUPLICATE_SEQUENCE_NUMBER, E::DuplicateSequenceNumber),
            (INVALID_PRODUCER_EPOCH, E::InvalidProducerEpoch),
            (KAFKA_STORAGE_ERROR, E::KafkaStorageError),
            (UNKNOWN_PRODUCER_ID, E::UnknownProducerId),
            (TOPIC_DELETION_DISABLED, E::TopicDeletionDisabled),
            (FENCED_LEADER_EPOCH, E::FencedLeaderEpoch),
            (UNKNOWN_LEADER_EPOCH, E::UnknownLeaderEpoch),
            (UNSUPPORTED_COMPRESSION_TYPE, E::UnsupportedCompressionType),
            (OFFSET_NOT_AVAILABLE, E::OffsetNotAvailable),
            (INVALID_RECORD, E::InvalidRecord),
            (
                PREFERRED_LEADER_NOT_AVAILABLE,
                E::PreferredLeaderNotAvailable,
            ),
            (
                ELIGIBLE_LEADERS_NOT_AVAILABLE,
                E::EligibleLeadersNotAvailable,
            ),
            (ELECTION_NOT_NEEDED, E::ElectionNotNeeded),
            (PRODUCER_FENCED, E::ProducerFenced),
            (
                TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                E::TransactionalIdAuthorizationFailed,
            ),
            (COORDINATOR_NOT_AVAILABLE, E::CoordinatorNotAvailable),
            (COORDINATOR_LOAD_IN_PROGRESS, E::CoordinatorLoadInProgress),
            (NOT_COORDINATOR, E::NotCoordinator),
            (OFFSET_METADATA_TOO_LARGE, E::OffsetMetadataTooLarge),
            (ILLEGAL_GENERATION, E::IllegalGeneration),
            (INCONSISTENT_GROUP_PROTOCOL, E::InconsistentGroupProtocol),
            (INVALID_GROUP_ID, E::InvalidGroupId),
            (UNKNOWN_MEMBER_ID, E::UnknownMemberId),
            (INVALID_SESSION_TIMEOUT, E::InvalidSessionTimeout),
            (REBALANCE_IN_PROGRESS, E::RebalanceInProgress),
            (NON_EMPTY_GROUP, E::NonEmptyGroup),
            (GROUP_ID_NOT_FOUND, E::GroupIdNotFound),
            (GROUP_SUBSCRIBED_TO_TOPIC, E::GroupSubscribedToTopic),
            (MEMBER_ID_REQUIRED, E::MemberIdRequired),
            (FENCED_INSTANCE_ID, E::FencedInstanceId),
            (UNKNOWN_TOPIC_ID, E::UnknownTopicId),
            (INCONSISTENT_TOPIC_ID, E::InconsistentTopicId),
            (UNSUPPORTED_SASL_MECHANISM, E::UnsupportedSaslMechanism),
            (ILLEGAL_SASL_STATE, E::IllegalSaslState),
            (SASL_AUTHENTICATION_FAILED, E::SaslAuthenticationFailed),
            (RESOURCE_NOT_FOUND, E::ResourceNotFound),
            (DUPLICATE_RESOURCE, E::DuplicateResource),
            (UNACCEPTABLE_CREDENTIAL, E::UnacceptableCredential),
            (INVALID_TXN_STATE, E::InvalidTxnState),
            (INVALID_PRODUCER_ID_MAPPING, E::InvalidProducerIdMapping),
            (INVALID_TRANSACTION_TIMEOUT, E::InvalidTransactionTimeout),
            (CONCURRENT_TRANSACTIONS, E::ConcurrentTransactions),
            (OPERATION_NOT_ATTEMPTED, E::OperationNotAttempted),
            (TRANSACTIONAL_ID_NOT_FOUND, E::TransactionalIdNotFound),
            (FETCH_SESSION_ID_NOT_FOUND, E::FetchSessionIdNotFound),
            (INVALID_FETCH_SESSION_EPOCH, E::InvalidFetchSessionEpoch),
            (FETCH_SESSION_TOPIC_ID_ERROR, E::FetchSessionTopicIdError),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours, theirs.code(), "{theirs:?}");
        }
        assert_eq!(NONE, 0);
    }
}
