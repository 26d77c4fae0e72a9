//! KIP-227 incremental fetch sessions: one shard's cache of them.
//!
//! A session remembers, per partition, what the client last asked (fetch offset,
//! partition max bytes, log start, leader epoch) and what the last response that
//! included the partition told it (high watermark, last stable offset, log start). An
//! incremental Fetch then names only the partitions whose request changed; the broker
//! reads every partition of the session at its stored offset and answers only those
//! with records, an error or a changed offset.
//!
//! ```text
//!   FetchSessions (one per shard, in Shard::fetch_sessions: RefCell, shard thread only)
//!     sessions: id → Session { next_epoch, partitions: key → Cached { fetch, sent, order } }
//!   id % shard_count == shard: a session lives on the shard whose connection made it
//! ```
//!
//! Stored fetch offsets change only from requests (KIP-227: the client re-sends a
//! partition whenever its position moved), never from what a response returned.
//!
//! Eviction follows Kafka's FetchSessionCache: with every slot taken, a new session
//! takes the slot of the least recently used session if that one has been idle longer
//! than [`SESSION_EVICTION_MS`]; otherwise of the weakest evictable session (fewest
//! partitions, unprivileged before privileged) if the new one is stronger, and is
//! refused (answered with session id 0) if not. A session younger than
//! [`SESSION_EVICTION_MS`] is evictable only by a privileged (replica) session.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Kafka's default `max.incremental.fetch.session.cache.slots`: sessions per broker.
pub const SESSION_SLOTS_DEFAULT: usize = 1000;
/// Kafka's `min.incremental.fetch.session.eviction.ms` default (2 minutes).
pub const SESSION_EVICTION_MS: u64 = 120_000;
/// The most partitions one session holds. A full fetch naming more gets no session
/// (full fetches go on, as before sessions); an incremental one that would grow past it
/// closes the session (FETCH_SESSION_ID_NOT_FOUND, so the client starts over).
pub const SESSION_PARTITIONS_MAX: usize = 10_000;

/// The most partitions all sessions of one shard hold together (about 15 MiB at
/// [`PARTITION_BYTES_ESTIMATE`] each): a new session that does not fit is refused, an
/// incremental fetch that would grow past it closes its session.
pub const SHARD_SESSION_PARTITIONS_MAX: usize = 100_000;
/// Heap bytes of one session partition, roughly (key with a short topic name, what was
/// asked and sent, and the hash table's share), for the memory gauges.
pub const PARTITION_BYTES_ESTIMATE: usize = 160;

/// The epoch of a full fetch that asks for a new session.
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch that wants no session.
pub const FINAL_EPOCH: i32 = -1;

/// A partition as a Fetch names it: by topic name (v7-12, `topic_id` zero) or by topic
/// id (v13+, `topic` empty).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub topic: String,
    pub topic_id: [u8; 16],
    pub partition: i32,
}

/// What the client asked for a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionFetch {
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub log_start_offset: i64,
    pub current_leader_epoch: i32,
}

/// The offsets a response gave a client for a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionSent {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

/// Nothing sent yet: every real answer differs, so a new partition is always included.
const NOT_SENT: PartitionSent = PartitionSent {
    high_watermark: -1,
    last_stable_offset: -1,
    log_start_offset: -1,
};

/// What this response holds for one partition of the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionAnswer {
    pub error_code: i16,
    pub has_records: bool,
    /// KIP-392: the answer points the consumer to a follower.
    pub redirected: bool,
    pub offsets: PartitionSent,
}

#[derive(Debug)]
struct Cached {
    fetch: PartitionFetch,
    sent: PartitionSent,
    /// Position in the session: partitions that returned records move to the end, so
    /// that a response's max bytes does not always go to the same partitions first.
    order: u64,
}

#[derive(Debug)]
pub struct Session {
    next_epoch: i32,
    /// Created by a replica fetch (Kafka's privileged sessions).
    privileged: bool,
    /// Created by Fetch v13+ (topic ids).
    uses_topic_ids: bool,
    partitions: HashMap<PartitionKey, Cached>,
    next_order: u64,
    created: Instant,
    last_used: Instant,
}

impl Session {
    fn upsert(&mut self, key: PartitionKey, fetch: PartitionFetch) {
        let order = self.next_order;
        let cached = self.partitions.entry(key).or_insert_with(|| Cached {
            fetch,
            sent: NOT_SENT,
            order,
        });
        cached.fetch = fetch;
        if cached.order == order {
            self.next_order += 1;
        }
    }

    /// The session's partitions in their order, with what to fetch.
    pub fn partitions(&self) -> Vec<(PartitionKey, PartitionFetch)> {
        let mut all: Vec<(&PartitionKey, &Cached)> = self.partitions.iter().collect();
        all.sort_unstable_by_key(|(_, c)| c.order);
        all.into_iter().map(|(k, c)| (k.clone(), c.fetch)).collect()
    }

    /// Whether the response includes this partition (records, an error, a KIP-392
    /// redirect, changed offsets, or named in the request), remembering what it sends.
    fn answer(&mut self, key: &PartitionKey, a: &PartitionAnswer, named: bool) -> bool {
        let Some(c) = self.partitions.get_mut(key) else {
            return true;
        };
        let changed = c.sent != a.offsets;
        c.sent = a.offsets;
        if a.error_code != 0 {
            // Kafka: so that the partition is sent again once the error has cleared.
            c.sent.high_watermark = -1;
        }
        if a.has_records {
            c.order = self.next_order;
            self.next_order += 1;
        }
        a.has_records || a.error_code != 0 || a.redirected || changed || named
    }

    fn size(&self) -> usize {
        self.partitions.len()
    }
}

/// Why an incremental fetch is refused (its top-level error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// FETCH_SESSION_ID_NOT_FOUND.
    NotFound,
    /// INVALID_FETCH_SESSION_EPOCH.
    InvalidEpoch,
    /// FETCH_SESSION_TOPIC_ID_ERROR.
    TopicIdUsage,
}

/// What creating a session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The new session's id; `evicted`: it took an evicted session's slot.
    Yes { id: i32, evicted: bool },
    /// No slot (or too many partitions): the full fetch is answered with session id 0.
    Refused,
}

/// One shard's sessions. See the module comment.
#[derive(Debug)]
pub struct FetchSessions {
    sessions: HashMap<i32, Session>,
    /// This shard's share of `max.incremental.fetch.session.cache.slots`.
    slots_max: usize,
    shard: u32,
    shard_count: u32,
    eviction: Duration,
    rng: u64,
}

impl FetchSessions {
    /// The cache of shard `shard` of `shard_count`, with its share of `slots_broker`
    /// (rounded up, so a broker holds at most `shard_count - 1` more than configured;
    /// 0 turns sessions off).
    pub fn new(slots_broker: usize, shard: usize, shard_count: usize) -> FetchSessions {
        let shard_count = shard_count.max(1);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        FetchSessions {
            sessions: HashMap::new(),
            slots_max: slots_broker.div_ceil(shard_count),
            shard: shard as u32,
            shard_count: shard_count as u32,
            eviction: Duration::from_millis(SESSION_EVICTION_MS),
            rng: (seed ^ ((shard as u64 + 1) << 32)) | 1,
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn slots_max(&self) -> usize {
        self.slots_max
    }

    /// The partitions summed over sessions (for memory accounting).
    pub fn partitions_total(&self) -> usize {
        self.sessions.values().map(Session::size).sum()
    }

    /// Closes session `id` if this shard holds it; whether it did.
    pub fn remove(&mut self, id: i32) -> bool {
        self.sessions.remove(&id).is_some()
    }

    /// A new session of `partitions` (a full fetch with epoch 0), whose first
    /// incremental fetch must carry epoch 1. The partitions' first answers are recorded
    /// with [`FetchSessions::answer`].
    pub fn create(
        &mut self,
        now: Instant,
        privileged: bool,
        uses_topic_ids: bool,
        partitions: Vec<(PartitionKey, PartitionFetch)>,
    ) -> Created {
        if partitions.is_empty()
            || partitions.len() > SESSION_PARTITIONS_MAX
            || self.partitions_total() + partitions.len() > SHARD_SESSION_PARTITIONS_MAX
        {
            return Created::Refused;
        }
        let mut evicted = false;
        if self.sessions.len() >= self.slots_max {
            match self.evictable(now, privileged, partitions.len()) {
                Some(victim) => {
                    self.sessions.remove(&victim);
                    evicted = true;
                }
                None => return Created::Refused,
            }
        }
        let id = self.new_id();
        let mut session = Session {
            next_epoch: 1,
            privileged,
            uses_topic_ids,
            partitions: HashMap::with_capacity(partitions.len()),
            next_order: 0,
            created: now,
            last_used: now,
        };
        for (key, fetch) in partitions {
            session.upsert(key, fetch);
        }
        self.sessions.insert(id, session);
        Created::Yes { id, evicted }
    }

    /// Kafka's rule (see the module comment): the session whose slot a new one of
    /// `size` partitions may take, if any.
    fn evictable(&self, now: Instant, privileged: bool, size: usize) -> Option<i32> {
        let idle = |s: &Session| now.saturating_duration_since(s.last_used);
        let lru = self
            .sessions
            .iter()
            .max_by_key(|(id, s)| (idle(s), std::cmp::Reverse(**id)))?;
        if idle(lru.1) > self.eviction {
            return Some(*lru.0);
        }
        let old = |s: &Session| now.saturating_duration_since(s.created) > self.eviction;
        let (id, weakest) = self
            .sessions
            .iter()
            .filter(|(_, s)| old(s) || (privileged && !s.privileged))
            .min_by_key(|(id, s)| (s.privileged, s.size(), **id))?;
        ((privileged, size) > (weakest.privileged, weakest.size())).then_some(*id)
    }

    /// A fresh id, not 0, not in use, and naming this shard (`id % shard_count`).
    fn new_id(&mut self) -> i32 {
        let slots_per_shard = (i32::MAX as u32 - self.shard) / self.shard_count;
        loop {
            // xorshift64*: ids need only be unlikely to repeat across restarts.
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let r = (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as u32;
            let id = ((r % slots_per_shard) * self.shard_count + self.shard) as i32;
            if id != 0 && !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// An incremental fetch of session `id` at `epoch`: its partitions after adding or
    /// updating `updates` and dropping `forgotten`, in session order. An empty session
    /// is closed (Kafka answers it sessionless and empty): `Ok` of nothing.
    pub fn incremental(
        &mut self,
        now: Instant,
        (id, epoch): (i32, i32),
        uses_topic_ids: bool,
        updates: Vec<(PartitionKey, PartitionFetch)>,
        forgotten: &[PartitionKey],
    ) -> Result<Vec<(PartitionKey, PartitionFetch)>, Refusal> {
        if id as u32 % self.shard_count != self.shard {
            return Err(Refusal::NotFound);
        }
        let session = self.sessions.get_mut(&id).ok_or(Refusal::NotFound)?;
        if session.next_epoch != epoch {
            return Err(Refusal::InvalidEpoch);
        }
        if session.uses_topic_ids != uses_topic_ids {
            return Err(Refusal::TopicIdUsage);
        }
        for key in forgotten {
            session.partitions.remove(key);
        }
        let size_before = session.size();
        for (key, fetch) in updates {
            session.upsert(key, fetch);
        }
        let grown = session.size() > size_before;
        if session.size() > SESSION_PARTITIONS_MAX
            || (grown && self.partitions_total() > SHARD_SESSION_PARTITIONS_MAX)
        {
            self.sessions.remove(&id);
            return Err(Refusal::NotFound);
        }
        let Some(session) = self.sessions.get_mut(&id) else {
            return Err(Refusal::NotFound);
        };
        if session.partitions.is_empty() {
            self.sessions.remove(&id);
            return Ok(Vec::new());
        }
        // Kafka's epochs wrap from i32::MAX to 1 (0 and -1 mean full fetches).
        session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        session.last_used = now;
        Ok(session.partitions())
    }

    /// Records a response of session `id`: for each partition whether it is included
    /// (`named`: the request named it). `None` when the session is gone meanwhile
    /// (evicted or closed by another request): include every partition.
    pub fn answer(
        &mut self,
        id: i32,
        answers: &[(PartitionKey, PartitionAnswer)],
        named: &HashSet<PartitionKey>,
    ) -> Option<Vec<bool>> {
        let session = self.sessions.get_mut(&id)?;
        Some(
            answers
                .iter()
                .map(|(key, a)| session.answer(key, a, named.contains(key)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        PartitionKey {
            topic: "t".into(),
            topic_id: [0; 16],
            partition: p,
        }
    }

    fn fetch(offset: i64) -> PartitionFetch {
        PartitionFetch {
            fetch_offset: offset,
            partition_max_bytes: 1 << 20,
            log_start_offset: -1,
            current_leader_epoch: -1,
        }
    }

    fn answer(hw: i64, records: bool, error_code: i16) -> PartitionAnswer {
        PartitionAnswer {
            error_code,
            has_records: records,
            redirected: false,
            offsets: PartitionSent {
                high_watermark: hw,
                last_stable_offset: hw,
                log_start_offset: 0,
            },
        }
    }

    fn created(c: Created) -> i32 {
        match c {
            Created::Yes { id, .. } => id,
            Created::Refused => panic!("refused"),
        }
    }

    fn session_of(n: i32) -> Vec<(PartitionKey, PartitionFetch)> {
        (0..n).map(|p| (key(p), fetch(0))).collect()
    }

    #[test]
    fn epochs_must_follow_one_another() {
        let now = Instant::now();
        let mut c = FetchSessions::new(10, 0, 1);
        let id = created(c.create(now, false, false, session_of(2)));
        assert_ne!(id, 0);
        assert_eq!(
            c.incremental(now, (id, 2), false, vec![], &[]),
            Err(Refusal::InvalidEpoch)
        );
        assert_eq!(
            c.incremental(now, (id, 1), false, vec![], &[])
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            c.incremental(now, (id, 1), false, vec![], &[]),
            Err(Refusal::InvalidEpoch),
            "an epoch is used once"
        );
        assert!(c.incremental(now, (id, 2), false, vec![], &[]).is_ok());
        assert_eq!(
            c.incremental(now, (id + 1, 3), false, vec![], &[]),
            Err(Refusal::NotFound)
        );
        assert_eq!(
            c.incremental(now, (id, 3), true, vec![], &[]),
            Err(Refusal::TopicIdUsage)
        );
        c.sessions.get_mut(&id).unwrap().next_epoch = i32::MAX;
        assert!(c
            .incremental(now, (id, i32::MAX), false, vec![], &[])
            .is_ok());
        assert!(
            c.incremental(now, (id, 1), false, vec![], &[]).is_ok(),
            "wraps to 1"
        );
        assert!(c.remove(id));
        assert_eq!(
            c.incremental(now, (id, 2), false, vec![], &[]),
            Err(Refusal::NotFound)
        );
    }

    #[test]
    fn ids_name_their_shard() {
        let now = Instant::now();
        for shard in 0..3 {
            let mut c = FetchSessions::new(300, shard, 3);
            for _ in 0..50 {
                let id = created(c.create(now, false, false, session_of(1)));
                assert!(id > 0);
                assert_eq!(id as usize % 3, shard);
            }
            assert_eq!(c.len(), 50);
            let other = (shard as i32 + 1) % 3 + 3;
            assert_eq!(
                c.incremental(now, (other, 1), false, vec![], &[]),
                Err(Refusal::NotFound)
            );
        }
    }

    #[test]
    fn updates_add_and_change_forgotten_leave_offsets_stay_until_sent() {
        let now = Instant::now();
        let mut c = FetchSessions::new(10, 0, 1);
        let id = created(c.create(now, false, false, session_of(3)));
        let parts = c
            .incremental(
                now,
                (id, 1),
                false,
                vec![(key(1), fetch(7)), (key(5), fetch(3))],
                &[key(0)],
            )
            .unwrap();
        let got: Vec<(i32, i64)> = parts
            .iter()
            .map(|(k, f)| (k.partition, f.fetch_offset))
            .collect();
        assert_eq!(got, vec![(1, 7), (2, 0), (5, 3)]);
        // A response with records does not move the stored offset: only requests do.
        let answers: Vec<_> = parts
            .iter()
            .map(|(k, _)| (k.clone(), answer(10, true, 0)))
            .collect();
        c.answer(id, &answers, &HashSet::new()).unwrap();
        let parts = c.incremental(now, (id, 2), false, vec![], &[]).unwrap();
        let got: Vec<(i32, i64)> = parts
            .iter()
            .map(|(k, f)| (k.partition, f.fetch_offset))
            .collect();
        assert_eq!(got, vec![(1, 7), (2, 0), (5, 3)]);
        // Forgetting everything closes the session.
        let all: Vec<PartitionKey> = [1, 2, 5].map(key).to_vec();
        assert_eq!(c.incremental(now, (id, 3), false, vec![], &all), Ok(vec![]));
        assert!(c.is_empty());
    }

    #[test]
    fn incremental_answers_hold_what_changed() {
        let now = Instant::now();
        let mut c = FetchSessions::new(10, 0, 1);
        let id = created(c.create(now, false, false, session_of(4)));
        let first: Vec<_> = (0..4).map(|p| (key(p), answer(5, false, 0))).collect();
        assert_eq!(
            c.answer(id, &first, &HashSet::new()),
            Some(vec![true; 4]),
            "first answer"
        );
        let mut next = first.clone();
        next[1].1 = answer(5, true, 0); // records
        next[2].1 = answer(6, false, 0); // high watermark moved
        let named: HashSet<PartitionKey> = [key(3)].into();
        assert_eq!(
            c.answer(id, &next, &named),
            Some(vec![false, true, true, true])
        );
        assert_eq!(
            c.answer(id, &next, &HashSet::new()),
            Some(vec![false, true, false, false])
        );
        // An error is always included, and the partition again once it clears.
        next[1].1 = answer(5, false, 0);
        next[0].1 = answer(5, false, 6);
        assert_eq!(
            c.answer(id, &next, &HashSet::new()),
            Some(vec![true, false, false, false])
        );
        next[0].1 = answer(5, false, 0);
        assert_eq!(
            c.answer(id, &next, &HashSet::new()),
            Some(vec![true, false, false, false])
        );
        assert_eq!(c.answer(id, &next, &HashSet::new()), Some(vec![false; 4]));
        let mut lso = next.clone();
        lso[3].1.offsets.last_stable_offset = 4;
        lso[2].1.redirected = true;
        assert_eq!(
            c.answer(id, &lso, &HashSet::new()),
            Some(vec![false, false, true, true])
        );
        assert_eq!(c.answer(id + 1, &lso, &HashSet::new()), None);
    }

    #[test]
    fn partitions_with_records_move_to_the_end() {
        let now = Instant::now();
        let mut c = FetchSessions::new(10, 0, 1);
        let id = created(c.create(now, false, false, session_of(3)));
        let mut a: Vec<_> = (0..3).map(|p| (key(p), answer(5, false, 0))).collect();
        a[0].1.has_records = true;
        c.answer(id, &a, &HashSet::new()).unwrap();
        let order: Vec<i32> = c
            .incremental(now, (id, 1), false, vec![(key(0), fetch(9))], &[])
            .unwrap()
            .iter()
            .map(|(k, _)| k.partition)
            .collect();
        assert_eq!(order, vec![1, 2, 0]);
    }

    #[test]
    fn eviction_is_bounded_and_follows_kafka() {
        let t0 = Instant::now();
        let mut c = FetchSessions::new(4, 0, 2); // 2 slots on this shard
        assert_eq!(c.slots_max(), 2);
        let a = created(c.create(t0, false, false, session_of(3)));
        let b = created(c.create(t0, false, false, session_of(1)));
        // Full, both fresh: neither a smaller nor a larger unprivileged session evicts.
        assert_eq!(c.create(t0, false, false, session_of(2)), Created::Refused);
        assert_eq!(c.create(t0, false, false, session_of(9)), Created::Refused);
        // A privileged session evicts the weakest unprivileged one (fewest partitions).
        let p = c.create(t0, true, false, session_of(1));
        assert!(matches!(p, Created::Yes { evicted: true, .. }));
        assert!(c.sessions.contains_key(&a) && !c.sessions.contains_key(&b));
        assert_eq!(c.len(), 2);
        // Once older than the eviction time, a larger session evicts the smaller.
        let later = t0 + Duration::from_millis(SESSION_EVICTION_MS / 2);
        c.incremental(later, (a, 1), false, vec![], &[]).unwrap();
        let old = t0 + Duration::from_millis(SESSION_EVICTION_MS + 1);
        let d = c.create(old, false, false, session_of(5));
        assert!(matches!(d, Created::Yes { evicted: true, .. }));
        assert!(
            c.sessions.contains_key(&a),
            "the idle privileged one went (idle > 2 min)"
        );
        assert_eq!(c.len(), 2);
        // Idle longer than the eviction time: the least recently used goes first.
        let idle = old + Duration::from_millis(SESSION_EVICTION_MS + 1);
        c.incremental(idle, (a, 2), false, vec![], &[]).unwrap();
        let e = created(c.create(idle, false, false, session_of(1)));
        assert!(c.sessions.contains_key(&a) && c.sessions.contains_key(&e));
        assert_eq!(c.len(), 2);
        // Bounded partitions: per session, and per shard over all sessions.
        let mut big = FetchSessions::new(100, 0, 1);
        let too_many = SESSION_PARTITIONS_MAX as i32 + 1;
        assert_eq!(
            big.create(t0, false, false, session_of(too_many)),
            Created::Refused
        );
        let per = SESSION_PARTITIONS_MAX as i32;
        let mut ids = Vec::new();
        for _ in 0..SHARD_SESSION_PARTITIONS_MAX / SESSION_PARTITIONS_MAX {
            ids.push(created(big.create(t0, false, false, session_of(per))));
        }
        assert_eq!(big.partitions_total(), SHARD_SESSION_PARTITIONS_MAX);
        assert_eq!(
            big.create(t0, false, false, session_of(1)),
            Created::Refused
        );
        let forget: Vec<PartitionKey> = (0..2).map(key).collect();
        big.incremental(t0, (ids[0], 1), false, vec![], &forget)
            .unwrap();
        created(big.create(t0, false, false, session_of(2)));
        assert_eq!(big.partitions_total(), SHARD_SESSION_PARTITIONS_MAX);
        // An update of a partition it has already is no growth.
        assert!(big
            .incremental(t0, (ids[0], 2), false, vec![(key(5), fetch(1))], &[])
            .is_ok());
        assert_eq!(
            big.incremental(t0, (ids[0], 3), false, vec![(key(0), fetch(0))], &[]),
            Err(Refusal::NotFound),
            "grown past the shard's bound: closed"
        );
        assert_eq!(big.len(), ids.len());
        assert_eq!(
            big.incremental(t0, (ids[1], 1), false, vec![(key(per), fetch(0))], &[]),
            Err(Refusal::NotFound),
            "grown past the session's bound: closed"
        );
        assert_eq!(big.len(), ids.len() - 1);
        // No slots at all: no sessions.
        let mut off = FetchSessions::new(0, 0, 2);
        assert_eq!(off.create(t0, true, false, session_of(1)), Created::Refused);
        assert_eq!(
            c.create(t0, false, false, vec![]),
            Created::Refused,
            "no partitions"
        );
    }
}
