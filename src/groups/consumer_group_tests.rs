//! The consumer protocol's state machine with time and metadata passed in by hand.

use super::*;
use crate::broker::metadata::{Placement, TopicMeta};
use crate::groups::coordinator::Coordinator;

const T: TopicId = [7; 16];
const U: TopicId = [8; 16];

fn snapshot(topics: &[(&str, TopicId, usize)]) -> Snapshot {
    topics.iter().fold(Snapshot::default(), |s, (name, id, n)| {
        s.with_topic(TopicMeta {
            name: name.to_string(),
            id: *id,
            partitions: vec![Placement { shard: 0, dir: 0 }; *n],
            configs: Default::default(),
            replication: Vec::new(),
        })
    })
}

fn coordinator() -> Coordinator {
    Coordinator::new(Duration::ZERO).with_consumer_config(ConsumerConfig {
        session_timeout: Duration::from_secs(10),
        heartbeat_interval: Duration::from_secs(1),
        assignors: vec![Assignor::Uniform, Assignor::Range],
        max_size: crate::config::GROUP_MAX_SIZE_DEFAULT,
    })
}

fn join(member: &str, topics: &[&str]) -> HeartbeatArgs {
    HeartbeatArgs {
        group: "g".into(),
        member_id: member.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
        owned: Some(Assignment::new()),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        version: 1,
        ..HeartbeatArgs::default()
    }
}

fn beat(member: &str, epoch: i32, owned: &Assignment) -> HeartbeatArgs {
    HeartbeatArgs {
        group: "g".into(),
        member_id: member.into(),
        member_epoch: epoch,
        owned: Some(owned.clone()),
        client_id: "c".into(),
        version: 1,
        ..HeartbeatArgs::default()
    }
}

/// A client that owns what it was last given, and reports it every heartbeat.
struct Client {
    id: String,
    epoch: i32,
    owned: Assignment,
}

impl Client {
    fn join(
        c: &mut Coordinator,
        now: Instant,
        snap: &Snapshot,
        id: &str,
        topics: &[&str],
    ) -> Client {
        let r = c.consumer_heartbeat(now, join(id, topics), snap);
        assert_eq!(r.error_code, ec::NONE, "{r:?}");
        Client {
            id: id.into(),
            epoch: r.member_epoch,
            owned: r.assignment.expect("a join is answered with an assignment"),
        }
    }

    fn beat(&mut self, c: &mut Coordinator, now: Instant, snap: &Snapshot) -> HeartbeatReply {
        let r = c.consumer_heartbeat(now, beat(&self.id, self.epoch, &self.owned), snap);
        if r.error_code == ec::NONE {
            self.epoch = r.member_epoch;
            if let Some(a) = &r.assignment {
                self.owned = a.clone();
            }
        }
        r
    }
}

fn partitions(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

fn group(c: &Coordinator) -> &ConsumerGroup {
    c.group("g")
        .and_then(|g| g.consumer.as_ref())
        .expect("a consumer group")
}

/// No partition is owned by two clients at any time.
fn no_overlap(clients: &[&Client]) {
    let mut seen = BTreeSet::new();
    for cl in clients {
        for (t, ps) in &cl.owned {
            for p in ps {
                assert!(seen.insert((*t, *p)), "partition {p} owned twice");
            }
        }
    }
}

#[test]
fn two_members_split_and_a_third_joins_without_overlap() {
    let mut c = coordinator();
    let snap = snapshot(&[("t", T, 4)]);
    let now = Instant::now();
    let mut a = Client::join(&mut c, now, &snap, "a", &["t"]);
    assert_eq!((a.epoch, partitions(&a.owned)), (1, 4));
    let mut b = Client::join(&mut c, now, &snap, "b", &["t"]);
    // b's partitions are still a's: b waits for them.
    assert_eq!(partitions(&b.owned), 0);
    assert_eq!(b.epoch, 2);
    no_overlap(&[&a, &b]);
    let r = a.beat(&mut c, now, &snap);
    assert_eq!(r.member_epoch, 1, "a keeps its epoch while it revokes");
    assert_eq!(partitions(&a.owned), 2);
    assert_eq!(group(&c).state(), "Reconciling");
    a.beat(&mut c, now, &snap);
    assert_eq!(a.epoch, 2);
    b.beat(&mut c, now, &snap);
    assert_eq!(partitions(&b.owned), 2);
    no_overlap(&[&a, &b]);
    assert_eq!(group(&c).state(), "Stable");

    let mut d = Client::join(&mut c, now, &snap, "d", &["t"]);
    for _ in 0..4 {
        for cl in [&mut a, &mut b, &mut d] {
            cl.beat(&mut c, now, &snap);
        }
        no_overlap(&[&a, &b, &d]);
    }
    assert_eq!(group(&c).state(), "Stable");
    let total = partitions(&a.owned) + partitions(&b.owned) + partitions(&d.owned);
    assert_eq!(total, 4);
    let mut counts = [&a, &b, &d].map(|cl| partitions(&cl.owned));
    counts.sort();
    assert_eq!(counts, [1, 1, 2], "4 partitions over 3 members");
    assert_eq!(a.epoch, group(&c).assignment_epoch);
}

#[test]
fn a_leaving_member_frees_its_partitions_at_once() {
    let mut c = coordinator();
    let snap = snapshot(&[("t", T, 4)]);
    let now = Instant::now();
    let mut a = Client::join(&mut c, now, &snap, "a", &["t"]);
    let mut b = Client::join(&mut c, now, &snap, "b", &["t"]);
    a.beat(&mut c, now, &snap);
    a.beat(&mut c, now, &snap);
    b.beat(&mut c, now, &snap);
    let r = c.consumer_heartbeat(now, beat("b", -1, &Assignment::new()), &snap);
    assert_eq!((r.error_code, r.member_epoch), (ec::NONE, -1));
    a.beat(&mut c, now, &snap);
    assert_eq!(partitions(&a.owned), 4);
    assert_eq!(group(&c).state(), "Stable");
}

#[test]
fn an_expired_member_is_evicted_by_the_tick() {
    let mut c = coordinator();
    let snap = snapshot(&[("t", T, 2)]);
    let now = Instant::now();
    let mut a = Client::join(&mut c, now, &snap, "a", &["t"]);
    let _b = Client::join(&mut c, now, &snap, "b", &["t"]);
    a.beat(&mut c, now, &snap);
    a.beat(&mut c, now, &snap);
    // a keeps heartbeating, b stops.
    let later = now + Duration::from_secs(9);
    a.beat(&mut c, later, &snap);
    c.tick(now + Duration::from_secs(11));
    assert_eq!(group(&c).members.len(), 1);
    a.beat(&mut c, now + Duration::from_secs(11), &snap);
    assert_eq!(partitions(&a.owned), 2);
    let records = c.take_records("g");
    assert!(records.iter().any(|r| matches!(
        r,
        crate::groups::offsets::GroupRecord::ConsumerEpoch(Some(_))
    )));
}

#[test]
fn epochs_are_checked() {
    let mut c = coordinator();
    let snap = snapshot(&[("t", T, 2)]);
    let now = Instant::now();
    let a = Client::join(&mut c, now, &snap, "a", &["t"]);
    let r = c.consumer_heartbeat(now, beat("a", a.epoch + 1, &a.owned), &snap);
    assert_eq!(r.error_code, FENCED_MEMBER_EPOCH);
    let r = c.consumer_heartbeat(now, beat("nobody", 3, &Assignment::new()), &snap);
    assert_eq!(r.error_code, ec::UNKNOWN_MEMBER_ID);
    let r = c.consumer_heartbeat(now, beat("a", -1, &Assignment::new()), &snap);
    assert_eq!(r.error_code, ec::NONE);
    let r = c.consumer_heartbeat(now, beat("a", -1, &Assignment::new()), &snap);
    assert_eq!(r.error_code, ec::UNKNOWN_MEMBER_ID);
}

#[test]
fn bad_requests_get_kafkas_errors() {
    let mut c = coordinator();
    let snap = snapshot(&[("t", T, 2)]);
    let now = Instant::now();
    let mut args = join("a", &["t"]);
    args.server_assignor = Some("sticky".into());
    assert_eq!(
        c.consumer_heartbeat(now, args, &snap).error_code,
        UNSUPPORTED_ASSIGNOR
    );
    let mut args = join("a", &[]);
    args.topic_names = None;
    args.topic_regex = Some("(unclosed".into());
    assert_eq!(
        c.consumer_heartbeat(now, args, &snap).error_code,
        INVALID_REGULAR_EXPRESSION
    );
    let mut args = join("", &["t"]);
    assert_eq!(
        c.consumer_heartbeat(now, args.clone(), &snap).error_code,
        ec::INVALID_REQUEST
    );
    // v0: the coordinator makes up the member id.
    args.version = 0;
    let r = c.consumer_heartbeat(now, args, &snap);
    assert_eq!(r.error_code, ec::NONE);
    assert!(r.member_id.is_some_and(|id| !id.is_empty()));
    let mut args = join("b", &["t"]);
    args.rebalance_timeout_ms = -1;
    assert_eq!(
        c.consumer_heartbeat(now, args, &snap).error_code,
        ec::INVALID_REQUEST
    );
}

#[test]
fn the_assignor_is_the_one_members_ask_for() {
    let mut c = coordinator();
    let snap = snapshot(&[("t", T, 4), ("u", U, 4)]);
    let now = Instant::now();
    let mut args = join("a", &["t", "u"]);
    args.server_assignor = Some("range".into());
    c.consumer_heartbeat(now, args, &snap);
    assert_eq!(group(&c).assignor, Some(Assignor::Range));
    let mut c = coordinator();
    c.consumer_heartbeat(now, join("a", &["t"]), &snap);
    assert_eq!(group(&c).assignor, Some(Assignor::Uniform));
}

#[test]
fn a_regex_subscription_follows_new_topics_and_partitions() {
    let mut c = coordinator();
    let now = Instant::now();
    let snap = snapshot(&[("orders-1", T, 2), ("other", U, 3)]);
    let mut args = join("a", &[]);
    args.topic_names = None;
    args.topic_regex = Some("orders-.*".into());
    let r = c.consumer_heartbeat(now, args, &snap);
    assert_eq!(partitions(&r.assignment.clone().unwrap()), 2);
    let mut a = Client {
        id: "a".into(),
        epoch: r.member_epoch,
        owned: r.assignment.unwrap(),
    };
    let before = group(&c).group_epoch;
    let grown = snapshot(&[
        ("orders-1", T, 3),
        ("other", U, 3),
        ("orders-2", [9; 16], 1),
    ]);
    a.beat(&mut c, now, &grown);
    assert_eq!(
        group(&c).group_epoch,
        before + 1,
        "one metadata change, one bump"
    );
    assert_eq!(partitions(&a.owned), 4);
    assert!(!a.owned.contains_key(&U));
    assert!(group(&c).subscribed_names.contains("orders-2"));
}

#[test]
fn a_static_member_that_leaves_temporarily_gets_its_partitions_back() {
    let mut c = coordinator();
    let snap = snapshot(&[("t", T, 2)]);
    let now = Instant::now();
    let mut args = join("a", &["t"]);
    args.instance_id = Some("i1".into());
    let r = c.consumer_heartbeat(now, args, &snap);
    let owned = r.assignment.unwrap();
    let mut leave = beat("a", -2, &owned);
    leave.instance_id = Some("i1".into());
    assert_eq!(c.consumer_heartbeat(now, leave, &snap).member_epoch, -2);
    let mut back = join("a2", &["t"]);
    back.instance_id = Some("i1".into());
    let r = c.consumer_heartbeat(now, back, &snap);
    assert_eq!(r.error_code, ec::NONE);
    assert_eq!(r.assignment, Some(owned));
    // While a2 is active another process with the same instance id is refused.
    let mut dup = join("a3", &["t"]);
    dup.instance_id = Some("i1".into());
    assert_eq!(
        c.consumer_heartbeat(now, dup, &snap).error_code,
        UNRELEASED_INSTANCE_ID
    );
}

#[test]
fn classic_and_consumer_groups_do_not_mix() {
    let mut c = coordinator();
    let snap = snapshot(&[("t", T, 2)]);
    let now = Instant::now();
    c.consumer_heartbeat(now, join("a", &["t"]), &snap);
    assert_eq!(c.group("g").unwrap().group_type(), "consumer");
    // OffsetCommit: epoch, member and version are checked.
    let check = |c: &mut Coordinator, epoch, member: &str, version| {
        c.offset_commit_check(now, "g", epoch, member, None, version)
    };
    use crate::groups::coordinator::CommitCheck;
    assert_eq!(check(&mut c, 1, "a", 9), CommitCheck::Allowed);
    assert_eq!(
        check(&mut c, 0, "a", 9),
        CommitCheck::Refused(STALE_MEMBER_EPOCH)
    );
    assert_eq!(
        check(&mut c, 1, "x", 9),
        CommitCheck::Refused(ec::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(
        check(&mut c, 1, "a", 8),
        CommitCheck::Refused(ec::UNSUPPORTED_VERSION)
    );
    assert_eq!(
        check(&mut c, -1, "", 9),
        CommitCheck::Refused(ec::UNKNOWN_MEMBER_ID)
    );
    assert_eq!(c.offset_fetch_check("g", Some("a"), 1), Ok(()));
    assert_eq!(
        c.offset_fetch_check("g", Some("a"), 0),
        Err(STALE_MEMBER_EPOCH)
    );
    assert_eq!(c.offset_fetch_check("g", None, -1), Ok(()));
    assert_eq!(c.delete("g"), Err(ec::NON_EMPTY_GROUP));
    // Once empty, it may be used by the classic protocol again, and the other way.
    c.consumer_heartbeat(now, beat("a", -1, &Assignment::new()), &snap);
    assert_eq!(check(&mut c, -1, "", 9), CommitCheck::Allowed);
}

#[test]
fn a_classic_group_with_members_is_not_a_consumer_group() {
    use crate::groups::coordinator::JoinArgs;
    let mut c = coordinator();
    let snap = snapshot(&[("t", T, 2)]);
    let now = Instant::now();
    let rx = c.join(
        now,
        JoinArgs {
            group: "g".into(),
            member_id: String::new(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), bytes::Bytes::new())],
            require_known_member_id: false,
        },
    );
    drop(rx);
    let r = c.consumer_heartbeat(now, join("a", &["t"]), &snap);
    assert_eq!(r.error_code, ec::GROUP_ID_NOT_FOUND);
    assert_eq!(
        r.error_message.as_deref(),
        Some("Group g is not a consumer group.")
    );
}

#[test]
fn a_replayed_epoch_is_where_the_group_continues() {
    let mut c = coordinator();
    c.replay_group_record(
        "g",
        crate::groups::offsets::GroupRecord::ConsumerEpoch(Some(41)),
        Instant::now(),
        0,
    );
    let snap = snapshot(&[("t", T, 2)]);
    let r = c.consumer_heartbeat(Instant::now(), join("a", &["t"]), &snap);
    assert_eq!(r.member_epoch, 42, "{r:?}");
}

#[test]
fn members_and_their_partitions_are_restored_from_their_records() {
    let snap = snapshot(&[("t", T, 4)]);
    let now = Instant::now();
    let mut c = coordinator();
    let mut a = Client::join(&mut c, now, &snap, "a", &["t"]);
    let mut b = Client::join(&mut c, now, &snap, "b", &["t"]);
    for _ in 0..3 {
        a.beat(&mut c, now, &snap);
        b.beat(&mut c, now, &snap);
    }
    assert_eq!(group(&c).state(), "Stable");
    let mut records = c.take_records("g");
    // b leaves and comes back: tombstones, then new records.
    c.consumer_heartbeat(now, beat("b", -1, &Assignment::new()), &snap);
    let mut b = Client::join(&mut c, now, &snap, "b", &["t"]);
    for _ in 0..3 {
        a.beat(&mut c, now, &snap);
        b.beat(&mut c, now, &snap);
    }
    records.extend(c.take_records("g"));
    let epoch = group(&c).group_epoch;

    let mut restored = coordinator();
    for r in records {
        restored.replay_group_record("g", r, now, 0);
    }
    restored.finish_replay(|_| true);
    let g = group(&restored);
    assert_eq!(g.group_epoch, epoch);
    assert_eq!(g.members.len(), 2);
    assert_eq!(g.members["a"].assigned, a.owned);
    assert_eq!(g.members["b"].assigned, b.owned);
    assert_eq!(g.members["b"].topic_names, vec!["t".to_string()]);
    // The members carry on at their epochs, with no rejoin and nothing moved.
    let (a_owned, b_owned) = (a.owned.clone(), b.owned.clone());
    for _ in 0..3 {
        assert_eq!(a.beat(&mut restored, now, &snap).error_code, ec::NONE);
        assert_eq!(b.beat(&mut restored, now, &snap).error_code, ec::NONE);
    }
    assert_eq!((a.owned.clone(), b.owned.clone()), (a_owned, b_owned));
    assert_eq!(group(&restored).state(), "Stable");
}

#[test]
fn a_member_joining_past_group_consumer_max_size_is_refused_until_one_leaves() {
    let now = Instant::now();
    let snap = snapshot(&[("t", T, 4)]);
    let mut c = Coordinator::new(Duration::ZERO).with_consumer_config(ConsumerConfig {
        max_size: 2,
        ..ConsumerConfig::default()
    });
    let a = Client::join(&mut c, now, &snap, "a", &["t"]);
    Client::join(&mut c, now, &snap, "b", &["t"]);
    let r = c.consumer_heartbeat(now, join("x", &["t"]), &snap);
    assert_eq!(r.error_code, ec::GROUP_MAX_SIZE_REACHED, "{r:?}");
    assert!(r.error_message.unwrap().contains("group.consumer.max.size"));
    assert_eq!(group(&c).members.len(), 2);
    let left = c.consumer_heartbeat(now, beat(&a.id, LEAVE_EPOCH, &a.owned), &snap);
    assert_eq!(left.error_code, ec::NONE);
    Client::join(&mut c, now, &snap, "x", &["t"]);
}
