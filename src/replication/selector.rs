//! KIP-392 follower fetching: which replica a consumer should read from. The leader
//! answers a consumer Fetch (v11+, with the consumer's `client.rack`) by pointing it to
//! an in-sync follower in the consumer's rack (`preferred_read_replica`), the choice of
//! Kafka's RackAwareReplicaSelector; the follower then serves that consumer's reads up
//! to its own high watermark.
//!
//! Where Kafka ranks candidates by each follower's log end offset (known on the leader's
//! request thread), the choice here is made on the accepting shard from the topic
//! table alone: the ISR (every member fetched up to the leader's end within
//! `replica.lag.time.max.ms`), ties to the lowest broker id, so one rack's consumers
//! agree on one follower. A follower that is still behind the consumer answers with no
//! data (or OFFSET_OUT_OF_RANGE past its end), and clients go back to the leader.

/// The follower a consumer in `client_rack` should read from, or `None` for the leader:
/// no rack given, the leader is in that rack itself, or no in-sync follower is.
/// `rack_of` gives a live broker's rack (`None` for a broker not live or without one).
pub fn preferred_read_replica<'a>(
    leader: i32,
    isr: &[i32],
    client_rack: &str,
    rack_of: impl Fn(i32) -> Option<&'a str>,
) -> Option<i32> {
    if client_rack.is_empty() || rack_of(leader) == Some(client_rack) {
        return None;
    }
    isr.iter()
        .copied()
        .filter(|&r| r != leader && rack_of(r) == Some(client_rack))
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn racks(id: i32) -> Option<&'static str> {
        match id {
            1 => Some("a"),
            2 => Some("b"),
            3 => Some("c"),
            4 => Some("c"),
            _ => None,
        }
    }

    #[test]
    fn points_to_the_in_sync_follower_in_the_clients_rack() {
        assert_eq!(preferred_read_replica(1, &[1, 2, 3], "c", racks), Some(3));
        assert_eq!(preferred_read_replica(1, &[1, 2, 3], "b", racks), Some(2));
        // Two candidates: the lowest id, whatever the ISR order.
        assert_eq!(preferred_read_replica(1, &[4, 1, 3], "c", racks), Some(3));
    }

    #[test]
    fn stays_on_the_leader_otherwise() {
        // The leader shares the client's rack.
        assert_eq!(preferred_read_replica(1, &[1, 2, 3], "a", racks), None);
        // No rack sent (client.rack unset).
        assert_eq!(preferred_read_replica(1, &[1, 2, 3], "", racks), None);
        // The rack's only replica is out of the ISR.
        assert_eq!(preferred_read_replica(1, &[1, 2], "c", racks), None);
        // A rack no broker has, or a broker whose rack is unknown (not live).
        assert_eq!(preferred_read_replica(1, &[1, 2, 3], "z", racks), None);
        assert_eq!(preferred_read_replica(1, &[1, 5], "c", racks), None);
    }
}
