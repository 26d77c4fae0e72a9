//! The classic protocol's member bookkeeping behind JoinGroup and SyncGroup: adding a
//! member, replacing a static member, a known member's rejoin, recording a sync, and
//! reading a consumer's subscription from its metadata.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;

use super::group::{Group, GroupState, JoinArgs, SyncArgs};
use super::member::{JoinReply, Member, SyncReply};
use crate::protocol::errors as ec;

pub(super) fn add_member(
    group: &mut Group,
    now: Instant,
    id: String,
    args: JoinArgs,
    tx: oneshot::Sender<JoinReply>,
    delay: Duration,
) {
    if group.members.is_empty() {
        group.protocol_type = Some(args.protocol_type.clone());
    }
    if let Some(instance) = &args.instance_id {
        group.static_members.insert(instance.clone(), id.clone());
    }
    let mut member = Member {
        id: id.clone(),
        instance_id: args.instance_id,
        client_id: args.client_id,
        client_host: args.client_host,
        session_timeout: Duration::from_millis(args.session_timeout_ms as u64),
        rebalance_timeout: Duration::from_millis(args.rebalance_timeout_ms.max(0) as u64),
        protocols: args.protocols,
        assignment: Bytes::new(),
        join_waiter: Some(tx),
        sync_waiter: None,
        expires_at: now,
    };
    member.touch(now);
    if group.leader.is_none() {
        group.leader = Some(id);
    }
    group.members.push(member);
    match group.state {
        GroupState::PreparingRebalance => {
            // New members keep the initial delay running, up to the rebalance timeout.
            if let (Some(nb), Some(deadline)) = (group.join_not_before, group.rebalance_deadline) {
                group.join_not_before = Some((now + delay).min(deadline).max(nb));
            }
            let timeout = group.members.last().map(|m| m.rebalance_timeout);
            if let (Some(t), Some(d)) = (timeout, group.rebalance_deadline) {
                group.rebalance_deadline = Some(d.max(now + t));
            }
        }
        _ => group.prepare_rebalance(now, delay),
    }
    group.maybe_complete_join(now);
}

/// A static member rejoining with no member id (its process restarted): it takes a new
/// member id and the old one is fenced. In a Stable group whose protocol stays the same
/// it keeps its assignment with no rebalance; the answer names the old leader id, so a
/// restarted leader does not compute assignments a Stable group would not send out.
pub(super) fn replace_static_member(
    group: &mut Group,
    now: Instant,
    old: &str,
    args: JoinArgs,
    tx: oneshot::Sender<JoinReply>,
    delay: Duration,
) {
    let new_id = format!("{}-{}", args.client_id, uuid_text());
    let reported_leader = group.leader.clone().unwrap_or_default();
    if group.leader.as_deref() == Some(old) {
        group.leader = Some(new_id.clone());
    }
    if let Some(instance) = &args.instance_id {
        group
            .static_members
            .insert(instance.clone(), new_id.clone());
    }
    let Some(m) = group.member_mut(old) else {
        return;
    };
    m.fail_waiters(ec::FENCED_INSTANCE_ID);
    m.id = new_id.clone();
    m.client_id = args.client_id;
    m.client_host = args.client_host;
    m.session_timeout = Duration::from_millis(args.session_timeout_ms as u64);
    m.rebalance_timeout = Duration::from_millis(args.rebalance_timeout_ms.max(0) as u64);
    m.protocols = args.protocols;
    m.touch(now);
    m.join_waiter = Some(tx);
    match group.state {
        GroupState::Stable if group.select_protocol() == group.protocol => {
            let m = group.member_mut(&new_id).expect("renamed above");
            let waiter = m.join_waiter.take();
            let reply = JoinReply {
                error_code: ec::NONE,
                generation: group.generation,
                protocol_type: group.protocol_type.clone(),
                protocol: group.protocol.clone(),
                leader: reported_leader,
                member_id: new_id,
                members: Vec::new(),
            };
            if let Some(w) = waiter {
                let _ = w.send(reply);
            }
        }
        GroupState::PreparingRebalance => group.maybe_complete_join(now),
        _ => {
            group.prepare_rebalance(now, delay);
            group.maybe_complete_join(now);
        }
    }
}

/// A JoinGroup from a known member.
pub(super) fn rejoin(
    group: &mut Group,
    now: Instant,
    args: JoinArgs,
    tx: oneshot::Sender<JoinReply>,
    delay: Duration,
) {
    let state = group.state;
    let is_leader = group.leader.as_deref() == Some(args.member_id.as_str());
    let Some(m) = group.member_mut(&args.member_id) else {
        return;
    };
    let same_protocols = m.protocols == args.protocols;
    m.touch(now);
    m.session_timeout = Duration::from_millis(args.session_timeout_ms as u64);
    m.rebalance_timeout = Duration::from_millis(args.rebalance_timeout_ms.max(0) as u64);
    m.protocols = args.protocols;
    if let Some(old) = m.join_waiter.replace(tx) {
        let _ = old.send(JoinReply::error(ec::UNKNOWN_MEMBER_ID, &args.member_id));
    }
    match state {
        GroupState::PreparingRebalance => group.maybe_complete_join(now),
        GroupState::CompletingRebalance | GroupState::Stable
            if same_protocols && !(state == GroupState::Stable && is_leader) =>
        {
            // Nothing changed: answer with the current generation.
            let m = group.member_mut(&args.member_id).expect("checked above");
            let waiter = m.join_waiter.take();
            let m = group
                .members
                .iter()
                .find(|m| m.id == args.member_id)
                .expect("checked above");
            let reply = group.join_reply(m);
            if let Some(w) = waiter {
                let _ = w.send(reply);
            }
        }
        _ => {
            group.prepare_rebalance(now, delay);
            group.maybe_complete_join(now);
        }
    }
}

pub(super) fn sync_member(
    g: &mut Group,
    now: Instant,
    args: SyncArgs,
    tx: oneshot::Sender<SyncReply>,
) -> Result<(), (i16, oneshot::Sender<SyncReply>)> {
    if let Err(code) = g.check_instance(args.instance_id.as_deref(), &args.member_id) {
        return Err((code, tx));
    }
    if !g.has_member(&args.member_id) {
        return Err((ec::UNKNOWN_MEMBER_ID, tx));
    }
    if args.generation != g.generation {
        return Err((ec::ILLEGAL_GENERATION, tx));
    }
    let type_ok = args.protocol_type.is_none() || args.protocol_type == g.protocol_type;
    let proto_ok = args.protocol.is_none() || args.protocol == g.protocol;
    if !type_ok || !proto_ok {
        return Err((ec::INCONSISTENT_GROUP_PROTOCOL, tx));
    }
    match g.state {
        GroupState::Empty | GroupState::Dead => Err((ec::UNKNOWN_MEMBER_ID, tx)),
        GroupState::PreparingRebalance => Err((ec::REBALANCE_IN_PROGRESS, tx)),
        GroupState::Stable => {
            let (pt, p) = (g.protocol_type.clone(), g.protocol.clone());
            let m = g.member_mut(&args.member_id).expect("checked above");
            m.touch(now);
            let _ = tx.send(SyncReply {
                error_code: ec::NONE,
                protocol_type: pt,
                protocol: p,
                assignment: m.assignment.clone(),
            });
            Ok(())
        }
        GroupState::CompletingRebalance => {
            let is_leader = g.leader.as_deref() == Some(args.member_id.as_str());
            let m = g.member_mut(&args.member_id).expect("checked above");
            m.touch(now);
            m.sync_waiter = Some(tx);
            if is_leader {
                let mut given: HashMap<String, Bytes> = args.assignments.into_iter().collect();
                let (pt, p) = (g.protocol_type.clone(), g.protocol.clone());
                for m in &mut g.members {
                    m.assignment = given.remove(&m.id).unwrap_or_default();
                    if let Some(w) = m.sync_waiter.take() {
                        let _ = w.send(SyncReply {
                            error_code: ec::NONE,
                            protocol_type: pt.clone(),
                            protocol: p.clone(),
                            assignment: m.assignment.clone(),
                        });
                    }
                }
                g.state = GroupState::Stable;
                g.record_classic_state();
            }
            Ok(())
        }
    }
}

/// The topic names of a ConsumerProtocolSubscription (every version starts with int16
/// version, then a non-flexible array of int16-length strings).
pub(super) fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut buf = metadata;
    let take = |buf: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        if buf.len() < n {
            return None;
        }
        let (head, rest) = buf.split_at(n);
        *buf = rest;
        Some(head.to_vec())
    };
    take(&mut buf, 2)?;
    let count = i32::from_be_bytes(take(&mut buf, 4)?.try_into().ok()?);
    let count = usize::try_from(count).ok()?;
    if count > buf.len() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        let len = i16::from_be_bytes(take(&mut buf, 2)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        topics.push(String::from_utf8(take(&mut buf, len)?).ok()?);
    }
    Some(topics)
}

pub(super) fn uuid_text() -> String {
    uuid::Uuid::from_bytes(crate::util::random_uuid()).to_string()
}
