//! The state machine without a network: joins, syncs, heartbeats, leaves and timeouts,
//! with time passed in by hand.

use super::*;
use crate::groups::classic_members::subscription_topics;
use bytes::Bytes;

const SESSION: Duration = Duration::from_millis(10_000);
const REBALANCE: Duration = Duration::from_millis(30_000);

fn join_args(member: &str, protocols: &[&str]) -> JoinArgs {
    JoinArgs {
        group: "g".into(),
        member_id: member.into(),
        instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION.as_millis() as i32,
        rebalance_timeout_ms: REBALANCE.as_millis() as i32,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

fn ready<T>(mut rx: oneshot::Receiver<T>) -> T {
    rx.try_recv()
        .expect("sender alive")
        .expect("answered at once")
}

/// Joins a new member through MEMBER_ID_REQUIRED; returns its id and the join receiver.
fn join_new(
    c: &mut Coordinator,
    now: Instant,
    protocols: &[&str],
) -> (String, oneshot::Receiver<JoinReply>) {
    let first = ready(c.join(now, join_args("", protocols)));
    assert_eq!(first.error_code, ec::MEMBER_ID_REQUIRED);
    let id = first.member_id;
    let rx = c.join(now, join_args(&id, protocols));
    (id, rx)
}

fn sync(
    c: &mut Coordinator,
    now: Instant,
    gen: i32,
    id: &str,
    given: &[(&str, &str)],
) -> oneshot::Receiver<SyncReply> {
    c.sync(
        now,
        SyncArgs {
            group: "g".into(),
            generation: gen,
            member_id: id.into(),
            instance_id: None,
            protocol_type: None,
            protocol: None,
            assignments: given
                .iter()
                .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
                .collect(),
        },
    )
}

fn state(c: &Coordinator) -> GroupState {
    c.group("g").unwrap().state
}

#[test]
fn a_single_member_joins_syncs_and_is_stable() {
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    let (a, rx) = join_new(&mut c, now, &["range"]);
    let j = ready(rx);
    assert_eq!(
        (j.error_code, j.generation, j.leader.as_str()),
        (0, 1, a.as_str())
    );
    assert_eq!(j.protocol.as_deref(), Some("range"));
    assert_eq!(j.members.len(), 1);
    assert_eq!(state(&c), GroupState::CompletingRebalance);
    let s = ready(sync(&mut c, now, 1, &a, &[(&a, "all")]));
    assert_eq!((s.error_code, &s.assignment[..]), (0, &b"all"[..]));
    assert_eq!(state(&c), GroupState::Stable);
    assert_eq!(c.heartbeat(now, "g", 1, &a, None), ec::NONE);
    assert_eq!(c.heartbeat(now, "g", 0, &a, None), ec::ILLEGAL_GENERATION);
    assert_eq!(
        c.heartbeat(now, "g", 1, "nobody", None),
        ec::UNKNOWN_MEMBER_ID
    );
}

#[test]
fn a_second_member_triggers_a_rebalance_that_waits_for_the_first() {
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    let (a, rx) = join_new(&mut c, now, &["roundrobin", "range"]);
    ready(rx);
    ready(sync(&mut c, now, 1, &a, &[]));
    let (b, rx_b) = join_new(&mut c, now, &["range", "roundrobin"]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(
        c.heartbeat(now, "g", 1, &a, None),
        ec::REBALANCE_IN_PROGRESS
    );
    let rx_a = c.join(now, join_args(&a, &["roundrobin", "range"]));
    let (ja, jb) = (ready(rx_a), ready(rx_b));
    assert_eq!((ja.generation, jb.generation), (2, 2));
    assert_eq!(ja.leader, a);
    assert_eq!((ja.members.len(), jb.members.len()), (2, 0));
    // One vote each: the tie goes to the leader's preference.
    assert_eq!(ja.protocol.as_deref(), Some("roundrobin"));
    let rx_b = sync(&mut c, now, 2, &b, &[]);
    let rx_a = sync(&mut c, now, 2, &a, &[(&a, "p0"), (&b, "p1")]);
    assert_eq!(&ready(rx_b).assignment[..], b"p1");
    assert_eq!(&ready(rx_a).assignment[..], b"p0");
    assert_eq!(state(&c), GroupState::Stable);
}

#[test]
fn members_that_do_not_rejoin_are_removed_at_the_rebalance_timeout() {
    let mut c = Coordinator::new(Duration::ZERO);
    let t0 = Instant::now();
    let (a, rx) = join_new(&mut c, t0, &["range"]);
    ready(rx);
    ready(sync(&mut c, t0, 1, &a, &[]));
    let (b, mut rx_b) = join_new(&mut c, t0, &["range"]);
    // a heartbeats (so its session does not expire) but never rejoins.
    for secs in [8, 16, 24] {
        let t = t0 + Duration::from_secs(secs);
        assert_eq!(c.heartbeat(t, "g", 1, &a, None), ec::REBALANCE_IN_PROGRESS);
        c.tick(t);
        assert!(rx_b.try_recv().unwrap().is_none(), "still waiting for {a}");
    }
    c.tick(t0 + REBALANCE);
    let jb = rx_b.try_recv().unwrap().expect("join completed");
    assert_eq!((jb.generation, jb.leader.as_str()), (2, b.as_str()));
    assert!(!c.group("g").unwrap().has_member(&a));
}

#[test]
fn a_member_that_stops_heartbeating_is_evicted_after_its_session_timeout() {
    let mut c = Coordinator::new(Duration::ZERO);
    let t0 = Instant::now();
    let (a, rx_a) = join_new(&mut c, t0, &["range"]);
    ready(rx_a);
    ready(sync(&mut c, t0, 1, &a, &[]));
    let (b, rx_b) = join_new(&mut c, t0, &["range"]);
    let rx_a = c.join(t0, join_args(&a, &["range"]));
    ready(rx_a);
    ready(rx_b);
    let rx_b = sync(&mut c, t0, 2, &b, &[]);
    ready(sync(&mut c, t0, 2, &a, &[]));
    ready(rx_b);
    let later = t0 + SESSION - Duration::from_millis(1);
    assert_eq!(c.heartbeat(later, "g", 2, &a, None), ec::NONE);
    c.tick(t0 + SESSION);
    assert!(!c.group("g").unwrap().has_member(&b));
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    let j = ready(c.join(t0 + SESSION, join_args(&a, &["range"])));
    assert_eq!((j.generation, j.members.len()), (3, 1));
}

#[test]
fn leaving_the_last_member_empties_the_group_and_allows_simple_commits() {
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    let (a, rx) = join_new(&mut c, now, &["range"]);
    ready(rx);
    ready(sync(&mut c, now, 1, &a, &[]));
    assert_eq!(
        c.offset_commit_check(now, "g", -1, "", None, 8),
        CommitCheck::Refused(ec::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(
        c.offset_commit_check(now, "g", 1, &a, None, 8),
        CommitCheck::Allowed
    );
    assert_eq!(
        c.offset_commit_check(now, "g", 0, &a, None, 8),
        CommitCheck::Refused(ec::ILLEGAL_GENERATION)
    );
    assert_eq!(
        c.leave(now, "g", &[(a.clone(), None), ("x".into(), None)]),
        vec![ec::NONE, ec::UNKNOWN_MEMBER_ID]
    );
    assert_eq!(state(&c), GroupState::Empty);
    assert_eq!(c.group("g").unwrap().generation, 2);
    assert_eq!(
        c.offset_commit_check(now, "g", -1, "", None, 8),
        CommitCheck::Allowed
    );
    assert_eq!(c.delete("g"), Ok(vec![]));
    assert_eq!(c.delete("g"), Err(ec::GROUP_ID_NOT_FOUND));
}

#[test]
fn a_group_with_members_cannot_be_deleted_and_protocols_must_match() {
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    let (_, rx) = join_new(&mut c, now, &["range"]);
    ready(rx);
    assert_eq!(c.delete("g"), Err(ec::NON_EMPTY_GROUP));
    let first = ready(c.join(now, join_args("", &["sticky"])));
    assert_eq!(first.error_code, ec::INCONSISTENT_GROUP_PROTOCOL);
    let mut bad = join_args("", &["range"]);
    bad.session_timeout_ms = 10;
    assert_eq!(
        ready(c.join(now, bad)).error_code,
        ec::INVALID_SESSION_TIMEOUT
    );
    assert_eq!(
        ready(c.join(now, join_args("ghost", &["range"]))).error_code,
        ec::UNKNOWN_MEMBER_ID
    );
    let mut nameless = join_args("", &["range"]);
    nameless.group = String::new();
    assert_eq!(
        ready(c.join(now, nameless)).error_code,
        ec::INVALID_GROUP_ID
    );
    assert_eq!(c.heartbeat(now, "", 1, "m", None), ec::INVALID_GROUP_ID);
    assert_eq!(
        c.leave(now, "", &[("m".into(), None)]),
        vec![ec::INVALID_GROUP_ID]
    );
}

#[test]
fn the_initial_rebalance_delay_holds_the_first_join() {
    let delay = Duration::from_millis(3_000);
    let mut c = Coordinator::new(delay);
    let t0 = Instant::now();
    let (_, mut rx_a) = join_new(&mut c, t0, &["range"]);
    let (_, mut rx_b) = join_new(&mut c, t0 + Duration::from_millis(1_000), &["range"]);
    c.tick(t0 + Duration::from_millis(2_000));
    assert!(rx_a.try_recv().unwrap().is_none());
    c.tick(t0 + Duration::from_millis(4_000));
    let (ja, jb) = (
        rx_a.try_recv().unwrap().unwrap(),
        rx_b.try_recv().unwrap().unwrap(),
    );
    assert_eq!((ja.generation, jb.generation), (1, 1));
    assert_eq!(ja.members.len(), 2);
}

#[test]
fn a_rejoin_during_completing_rebalance_fails_pending_syncs() {
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    let (a, rx) = join_new(&mut c, now, &["range"]);
    ready(rx);
    let (b, rx_b) = join_new(&mut c, now, &["range"]);
    let rx_a = c.join(now, join_args(&a, &["range"]));
    ready(rx_a);
    ready(rx_b);
    let rx_sync_b = sync(&mut c, now, 2, &b, &[]);
    // b leaves before the leader syncs: the rebalance restarts.
    assert_eq!(c.leave(now, "g", &[(b.clone(), None)]), vec![ec::NONE]);
    assert_eq!(ready(rx_sync_b).error_code, ec::UNKNOWN_MEMBER_ID);
    let j = ready(c.join(now, join_args(&a, &["range"])));
    assert_eq!((j.error_code, j.generation), (ec::NONE, 3));
}

#[test]
fn offsets_are_stored_fetched_and_deleted() {
    let mut c = Coordinator::new(Duration::ZERO);
    let committed = Committed {
        offset: 5,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: 1,
    };
    c.store_offsets("g", vec![(("t".into(), 0), Some(committed.clone()))]);
    c.tick(Instant::now());
    assert_eq!(c.committed("g", "t", 0), Some(&committed));
    c.store_offsets("g", vec![(("t".into(), 0), None)]);
    assert_eq!(c.committed("g", "t", 0), None);
    let t0 = Instant::now();
    c.tick(t0);
    assert_eq!(state(&c), GroupState::Empty, "still listed for a while");
    c.tick(t0 + EMPTY_GROUP_RETENTION);
    assert!(
        c.group("g").is_none(),
        "an empty group with no offsets is forgotten"
    );
}

fn static_args(member: &str, instance: &str) -> JoinArgs {
    JoinArgs {
        instance_id: Some(instance.into()),
        ..join_args(member, &["range"])
    }
}

#[test]
fn a_restarted_static_member_takes_its_place_without_a_rebalance() {
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    // Static members get their id at once: no MEMBER_ID_REQUIRED round.
    let a = ready(c.join(now, static_args("", "inst-a")));
    assert_eq!((a.error_code, a.generation), (ec::NONE, 1));
    ready(sync(&mut c, now, 1, &a.member_id, &[(&a.member_id, "pa")]));
    let rx_b = c.join(now, static_args("", "inst-b"));
    let rx_a = c.join(now, static_args(&a.member_id, "inst-a"));
    let (ja, jb) = (ready(rx_a), ready(rx_b));
    assert_eq!((ja.generation, jb.generation), (2, 2));
    let rx_b = sync(&mut c, now, 2, &jb.member_id, &[]);
    let given = [(ja.member_id.as_str(), "pa"), (jb.member_id.as_str(), "pb")];
    ready(sync(&mut c, now, 2, &ja.member_id, &given));
    ready(rx_b);

    // b's process restarts: same instance id, no member id.
    let again = ready(c.join(now, static_args("", "inst-b")));
    assert_eq!(again.error_code, ec::NONE);
    assert_eq!(again.generation, 2, "no rebalance");
    assert_ne!(again.member_id, jb.member_id);
    assert_eq!(again.leader, ja.member_id);
    assert_eq!(state(&c), GroupState::Stable);
    let s = ready(sync(&mut c, now, 2, &again.member_id, &[]));
    assert_eq!(&s.assignment[..], b"pb");
    // The old member id is fenced.
    let old = c.heartbeat(now, "g", 2, &jb.member_id, Some("inst-b"));
    assert_eq!(old, ec::FENCED_INSTANCE_ID);
    let stale = ready(c.join(now, static_args(&jb.member_id, "inst-b")));
    assert_eq!(stale.error_code, ec::FENCED_INSTANCE_ID);
    // Leaving by instance id alone removes the current member and rebalances.
    let left = c.leave(now, "g", &[(String::new(), Some("inst-b".into()))]);
    assert_eq!(left, vec![ec::NONE]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(c.group("g").unwrap().members.len(), 1);
}

/// A ConsumerProtocolSubscription v1 (version, topics, user data) for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&1i16.to_be_bytes());
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        out.extend_from_slice(&(t.len() as i16).to_be_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    Bytes::from(out)
}

/// A Stable one-member consumer group "g" subscribed to `topics`; returns the member id.
fn stable_consumer(c: &mut Coordinator, now: Instant, topics: &[&str]) -> String {
    let mut args = join_args("", &["range"]);
    args.require_known_member_id = false;
    args.protocols = vec![("range".into(), subscription(topics))];
    let j = ready(c.join(now, args));
    assert_eq!(j.error_code, ec::NONE);
    let s = ready(sync(c, now, j.generation, &j.member_id, &[]));
    assert_eq!(s.error_code, ec::NONE);
    assert_eq!(state(c), GroupState::Stable);
    j.member_id
}

fn commit_at(c: &mut Coordinator, group: &str, topic: &str, partition: i32, at_ms: i64) {
    let value = Committed {
        offset: 5,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp_ms: at_ms,
    };
    c.store_offsets(group, vec![((topic.to_string(), partition), Some(value))]);
}

fn keys(c: &Coordinator, group: &str) -> Vec<(String, i32)> {
    c.group(group)
        .map(|g| g.offsets.keys().cloned().collect())
        .unwrap_or_default()
}

fn tp(topic: &str, partition: i32) -> (String, i32) {
    (topic.to_string(), partition)
}

#[test]
fn offset_delete_needs_a_group_and_spares_subscribed_topics() {
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    assert_eq!(
        c.delete_offsets("g", &[tp("a", 0)]),
        Err(ec::GROUP_ID_NOT_FOUND)
    );
    commit_at(&mut c, "g", "a", 0, 0);
    commit_at(&mut c, "g", "b", 0, 0);
    commit_at(&mut c, "g", "b", 1, 0);
    stable_consumer(&mut c, now, &["a"]);
    let (codes, removed) = c
        .delete_offsets("g", &[tp("a", 0), tp("b", 0), tp("c", 0)])
        .unwrap();
    assert_eq!(
        codes,
        vec![ec::GROUP_SUBSCRIBED_TO_TOPIC, ec::NONE, ec::NONE]
    );
    assert_eq!(removed, vec![tp("b", 0)]);
    assert_eq!(keys(&c, "g"), vec![tp("a", 0), tp("b", 1)]);
}

#[test]
fn offset_delete_in_an_empty_group_removes_any_and_other_groups_with_members_refuse() {
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    commit_at(&mut c, "g", "a", 0, 0);
    let (codes, removed) = c.delete_offsets("g", &[tp("a", 0), tp("a", 1)]).unwrap();
    assert_eq!((codes, removed), (vec![0, 0], vec![tp("a", 0)]));
    // A non-consumer protocol with members: its subscriptions mean nothing to us.
    let mut args = join_args("", &["x"]);
    args.require_known_member_id = false;
    args.protocol_type = "connect".into();
    ready(c.join(now, args));
    assert_eq!(
        c.delete_offsets("g", &[tp("a", 0)]),
        Err(ec::NON_EMPTY_GROUP)
    );
}

#[test]
fn unreadable_subscriptions_count_as_subscribed_to_everything() {
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    commit_at(&mut c, "g", "a", 0, 0);
    // join_args' metadata ("meta-range") is no subscription.
    let mut args = join_args("", &["range"]);
    args.require_known_member_id = false;
    ready(c.join(now, args));
    let (codes, removed) = c.delete_offsets("g", &[tp("a", 0)]).unwrap();
    assert_eq!(
        (codes, removed),
        (vec![ec::GROUP_SUBSCRIBED_TO_TOPIC], vec![])
    );
    assert_eq!(
        subscription_topics(&subscription(&["x", "yz"])),
        Some(vec!["x".into(), "yz".into()])
    );
    assert_eq!(subscription_topics(&[0, 1, 0, 0, 0, 9]), None);
}

const RETENTION: Duration = Duration::from_secs(60);
const MS: i64 = 1_700_000_000_000;

#[test]
fn a_deleted_topics_offsets_are_removed_from_every_group() {
    let mut c = Coordinator::new(Duration::ZERO);
    commit_at(&mut c, "g1", "gone", 0, MS);
    commit_at(&mut c, "g1", "gone", 1, MS);
    commit_at(&mut c, "g1", "kept", 0, MS);
    commit_at(&mut c, "g2", "gone", 2, MS);
    commit_at(&mut c, "g3", "kept", 0, MS);
    let mut removed = c.remove_topic_offsets("gone");
    removed.sort();
    assert_eq!(
        removed,
        vec![
            ("g1".to_string(), vec![tp("gone", 0), tp("gone", 1)]),
            ("g2".to_string(), vec![tp("gone", 2)]),
        ]
    );
    assert_eq!(keys(&c, "g1"), vec![tp("kept", 0)]);
    assert!(keys(&c, "g2").is_empty());
    assert_eq!(keys(&c, "g3"), vec![tp("kept", 0)]);
    assert!(c.remove_topic_offsets("gone").is_empty());
}

#[test]
fn simple_commits_expire_by_commit_timestamp() {
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    commit_at(&mut c, "g", "a", 0, MS);
    commit_at(&mut c, "g", "a", 1, MS + 30_000);
    assert!(c.expire_offsets(now, MS + 59_999, RETENTION).is_empty());
    assert_eq!(
        c.expire_offsets(now, MS + 60_000, RETENTION),
        vec![("g".to_string(), vec![tp("a", 0)])]
    );
    assert_eq!(keys(&c, "g"), vec![tp("a", 1)]);
    assert_eq!(
        c.expire_offsets(now, MS + 90_000, RETENTION),
        vec![("g".to_string(), vec![tp("a", 1)])]
    );
    assert!(keys(&c, "g").is_empty());
}

#[test]
fn a_consumer_groups_offsets_expire_from_when_it_became_empty() {
    let mut c = Coordinator::new(Duration::ZERO);
    let t0 = Instant::now();
    let id = stable_consumer(&mut c, t0, &["a"]);
    commit_at(&mut c, "g", "a", 0, MS);
    commit_at(&mut c, "g", "gone", 0, MS);
    // Stable: the subscribed topic's offset stays however old; an unsubscribed one goes.
    let later = t0 + RETENTION * 10;
    assert_eq!(
        c.expire_offsets(later, MS + 600_000, RETENTION),
        vec![("g".to_string(), vec![tp("gone", 0)])]
    );
    assert_eq!(keys(&c, "g"), vec![tp("a", 0)]);
    // The member leaves: the clock starts now, not at the (old) commit.
    assert_eq!(c.leave(later, "g", &[(id, None)]), vec![ec::NONE]);
    assert_eq!(state(&c), GroupState::Empty);
    let almost = later + RETENTION - Duration::from_millis(1);
    assert!(c
        .expire_offsets(almost, MS + 10_000_000, RETENTION)
        .is_empty());
    assert_eq!(
        c.expire_offsets(later + RETENTION, MS + 10_000_000, RETENTION),
        vec![("g".to_string(), vec![tp("a", 0)])]
    );
    assert!(keys(&c, "g").is_empty());
}

#[test]
fn a_rejoin_stops_the_expiry_clock() {
    let mut c = Coordinator::new(Duration::ZERO);
    let t0 = Instant::now();
    let id = stable_consumer(&mut c, t0, &["a"]);
    commit_at(&mut c, "g", "a", 0, MS);
    c.leave(t0, "g", &[(id, None)]);
    stable_consumer(&mut c, t0 + RETENTION / 2, &["a"]);
    assert!(c
        .expire_offsets(t0 + RETENTION * 2, MS + 10_000_000, RETENTION)
        .is_empty());
    assert_eq!(keys(&c, "g"), vec![tp("a", 0)]);
}

#[test]
fn group_metadata_is_recorded_when_stable_and_when_empty() {
    use crate::groups::offsets::GroupRecord;
    let mut c = Coordinator::new(Duration::ZERO);
    let t0 = Instant::now();
    let id = stable_consumer(&mut c, t0, &["a"]);
    let records = c.take_records("g");
    let [GroupRecord::Classic(Some(stable))] = records.as_slice() else {
        panic!("one GroupMetadata record when Stable: {records:?}");
    };
    assert_eq!(stable.generation, 1);
    assert_eq!(stable.protocol.as_deref(), Some("range"));
    assert_eq!(stable.leader.as_deref(), Some(id.as_str()));
    assert_eq!(stable.members.len(), 1);
    assert_eq!(stable.members[0].id, id);
    assert!(c.take_records("g").is_empty(), "taken once");
    c.leave(t0, "g", &[(id, None)]);
    let records = c.take_records("g");
    let [GroupRecord::Classic(Some(empty))] = records.as_slice() else {
        panic!("one GroupMetadata record when Empty: {records:?}");
    };
    assert!(empty.members.is_empty() && empty.protocol.is_none() && empty.leader.is_none());
    assert_eq!(empty.generation, 2);
    // Wall-clock times: the Empty one is taken after the Stable one and before now.
    assert!(empty.state_timestamp_ms >= stable.state_timestamp_ms);
    assert!(empty.state_timestamp_ms <= crate::util::now_ms());
}

#[test]
fn a_replayed_empty_time_starts_the_retention_clock() {
    use crate::groups::offsets::{ClassicMetadata, GroupRecord};
    let mut c = Coordinator::new(Duration::ZERO);
    let now = Instant::now();
    commit_at(&mut c, "g", "a", 0, MS);
    let empty_at = MS + 30_000;
    let meta = ClassicMetadata {
        protocol_type: "consumer".into(),
        generation: 4,
        protocol: None,
        leader: None,
        state_timestamp_ms: empty_at,
        members: vec![],
    };
    c.replay_group_record("g", GroupRecord::Classic(Some(meta)), now, empty_at + 1_000);
    assert_eq!(c.group("g").map(|g| g.generation), Some(4));
    // Not by commit timestamp (MS + 60 s) but from the Empty time.
    assert!(c.expire_offsets(now, MS + 60_000, RETENTION).is_empty());
    assert!(c
        .expire_offsets(now, empty_at + 59_999, RETENTION)
        .is_empty());
    assert_eq!(
        c.expire_offsets(now, empty_at + 60_000, RETENTION),
        vec![("g".to_string(), vec![tp("a", 0)])]
    );
}

#[test]
fn a_join_past_group_max_size_is_refused_and_members_may_rejoin() {
    let now = Instant::now();
    let mut c = Coordinator::new(Duration::ZERO).with_group_max_size(2);
    let (a, _ra) = join_new(&mut c, now, &["range"]);
    let (_b, _rb) = join_new(&mut c, now, &["range"]);
    // A third member is refused before it is given a member id, as Kafka does.
    let refused = ready(c.join(now, join_args("", &["range"])));
    assert_eq!(
        (refused.error_code, refused.member_id.as_str()),
        (ec::GROUP_MAX_SIZE_REACHED, "")
    );
    assert_eq!(c.group("g").expect("group").members.len(), 2);
    // A member already in the group is not counted again.
    let mut rejoin = c.join(now, join_args(&a, &["range"]));
    if let Ok(Some(r)) = rejoin.try_recv() {
        assert_ne!(r.error_code, ec::GROUP_MAX_SIZE_REACHED);
    }
    assert_eq!(c.group("g").expect("group").members.len(), 2);
}
