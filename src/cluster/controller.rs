//! The controller thread: runs the openraft node of this process on a tokio
//! current-thread runtime, serves the controller listener, keeps this broker registered
//! and heartbeating, and — while it is the Raft leader, the active controller — fences
//! brokers whose heartbeats stopped.
//!
//! Decisions that need a clock (fencing) are made here, by the leader only, and
//! proposed as commands; `state::ClusterState::apply` stays deterministic.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft};
use tokio::net::TcpListener;

use super::config::ClusterConfig;
use super::log_store::LogStore;
use super::net::{self, Handler, Network, Peer, Request, Response};
use super::probe::{self, RefusalTracker};
use super::state::{BrokerRegistration, Command, Reply};
use super::state_machine::StateMachine;
use super::{ClusterHandle, TypeConfig};
use crate::config::Listener;

/// Raft timing: a leader heartbeats every 100 ms; a follower that hears nothing
/// campaigns once the leader's lease (the maximum timeout) and then its own random
/// 300-600 ms timeout have passed, so a silent controller is replaced in about
/// 0.9-1.2 s, and one whose process is gone (connects refused, `gone_loop`) as soon as
/// the lease runs out, about 0.6 s (`scripts/bench_controller_failover.py`). Three
/// missed heartbeats before a campaign leave room for a stalled thread on a busy host.
const RAFT_HEARTBEAT_MS: u64 = 100;
const RAFT_ELECTION_TIMEOUT_MIN_MS: u64 = 300;
const RAFT_ELECTION_TIMEOUT_MAX_MS: u64 = 600;
/// A snapshot every this many applied entries; the log before it is purged.
const SNAPSHOT_EVERY_ENTRIES: u64 = 1000;
/// How long a command or heartbeat keeps looking for a leader before it gives up.
const PROPOSE_DEADLINE: Duration = Duration::from_secs(5);
/// Pause before retrying while there is no leader, or it changed.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How often the active controller looks for brokers to fence.
const FENCE_CHECK_INTERVAL: Duration = Duration::from_millis(250);
/// Bound on one forwarded RPC.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the members' controller listeners are probed for a process that is gone
/// (`probe`): the active controller probes every member, a follower the leader.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// A follower campaigns against a gone leader this long after its connects were first
/// refused: the voters' lease of the old leader (the maximum election timeout, counted
/// from its last heartbeat, which came before the first refusal) has then run out.
const CAMPAIGN_AFTER_REFUSED: Duration = Duration::from_millis(RAFT_ELECTION_TIMEOUT_MAX_MS);

/// Starts the controller thread and returns the handle shards read. Fails (before any
/// thread starts) when the metadata log cannot be opened or the listener bound.
pub fn start(
    config: ClusterConfig,
    metadata_dir: PathBuf,
    advertised: Listener,
) -> Result<Arc<ClusterHandle>, String> {
    let (calls_tx, calls_rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = Arc::new(ClusterHandle::new(config.node_id, calls_tx));
    let log_store = LogStore::open(&metadata_dir).map_err(|e| {
        format!(
            "cannot open the metadata log in {}: {e}",
            metadata_dir.display()
        )
    })?;
    let state_machine = StateMachine::open(metadata_dir.clone(), handle.clone()).map_err(|e| {
        format!(
            "cannot load the metadata snapshot in {}: {e}",
            metadata_dir.display()
        )
    })?;
    let bind = config.controller_listener.bind_addr()?;
    let std_listener = std::net::TcpListener::bind(bind)
        .map_err(|e| format!("cannot bind the controller listener {bind}: {e}"))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| format!("controller listener: {e}"))?;
    let thread_handle = handle.clone();
    std::thread::Builder::new()
        .name("corelog-controller".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime for the controller");
            runtime.block_on(run(
                config,
                advertised,
                log_store,
                state_machine,
                std_listener,
                thread_handle,
                calls_rx,
            ));
        })
        .map_err(|e| format!("cannot start the controller thread: {e}"))?;
    Ok(handle)
}

/// This process's quorum member: the Raft node and what the active controller tracks.
pub(super) struct Node {
    id: u64,
    raft: Raft<TypeConfig>,
    pub(super) state_machine: StateMachine,
    /// Voter id → controller listener address.
    voters: BTreeMap<u64, String>,
    peers: tokio::sync::Mutex<HashMap<u64, Peer>>,
    /// Active controller only: the last heartbeat of each broker (incarnation, when).
    heartbeats: Mutex<HashMap<i32, (String, Instant)>>,
    session_timeout: Duration,
    /// `controller.fast.fencing.enable`: fence a member whose process is gone
    /// (`probe`) at once, and campaign at once when the gone one is the leader.
    fast_fencing: bool,
}

async fn run(
    config: ClusterConfig,
    advertised: Listener,
    log_store: LogStore,
    state_machine: StateMachine,
    std_listener: std::net::TcpListener,
    handle: Arc<ClusterHandle>,
    calls: tokio::sync::mpsc::UnboundedReceiver<super::admin::Call>,
) {
    let raft_config = openraft::Config {
        cluster_name: "corelog".into(),
        heartbeat_interval: RAFT_HEARTBEAT_MS,
        election_timeout_min: RAFT_ELECTION_TIMEOUT_MIN_MS,
        election_timeout_max: RAFT_ELECTION_TIMEOUT_MAX_MS,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(SNAPSHOT_EVERY_ENTRIES),
        ..Default::default()
    }
    .validate()
    .expect("the controller's Raft settings are valid");
    let id = config.node_id as u64;
    let raft = match Raft::new(
        id,
        Arc::new(raft_config),
        Network,
        log_store,
        state_machine.clone(),
    )
    .await
    {
        Ok(raft) => raft,
        Err(e) => {
            tracing::error!(error = %e, "the metadata quorum member did not start");
            return;
        }
    };
    let voters: BTreeMap<u64, String> = config
        .voters
        .iter()
        .map(|v| (v.id as u64, v.addr()))
        .collect();
    let node = Arc::new(Node {
        id,
        raft: raft.clone(),
        state_machine,
        voters: voters.clone(),
        peers: tokio::sync::Mutex::new(HashMap::new()),
        heartbeats: Mutex::new(HashMap::new()),
        session_timeout: Duration::from_millis(config.session_timeout_ms),
        fast_fencing: config.fast_fencing,
    });
    let listener = TcpListener::from_std(std_listener).expect("a tokio controller listener");
    tokio::spawn(net::serve(listener, node.clone()));
    // Every voter proposes the same initial membership; all but the first are refused
    // as already initialized, which is fine.
    let members: BTreeMap<u64, BasicNode> = voters
        .iter()
        .map(|(&id, addr)| (id, BasicNode::new(addr.clone())))
        .collect();
    if let Err(e) = raft.initialize(members).await {
        tracing::debug!(error = %e, "metadata quorum already initialized");
    }
    let incarnation = handle.incarnation.clone();
    tokio::spawn(watch_leader(raft.clone(), handle));
    tokio::spawn(fence_loop(node.clone()));
    tokio::spawn(super::elect::election_loop(
        node.clone(),
        config.election.clone(),
    ));
    if node.fast_fencing {
        tokio::spawn(gone_loop(node.clone()));
    }
    tokio::spawn(super::admin::serve(node.clone(), calls));
    broker_lifecycle(node, config, advertised, incarnation).await;
}

/// Publishes the current Raft leader as the controller id.
async fn watch_leader(raft: Raft<TypeConfig>, handle: Arc<ClusterHandle>) {
    let mut metrics = raft.metrics();
    loop {
        let leader = metrics.borrow().current_leader.map(|l| l as i32);
        handle.update(|image| image.controller_id = leader);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// The exit status of a broker the quorum refused as belonging to another cluster.
const EXIT_INCONSISTENT_CLUSTER_ID: i32 = 1;

/// Kafka's broker stops on INCONSISTENT_CLUSTER_ID; so does this one, rather than serve
/// another cluster's data as a member of this one.
fn exit_inconsistent(quorum: &str, ours: &str) -> ! {
    let why = format!(
        "INCONSISTENT_CLUSTER_ID: the metadata quorum belongs to cluster {quorum}, but this broker's log dirs (meta.properties) say cluster {ours}; \
         point log.dirs at this cluster's dirs, or format them for cluster {quorum}"
    );
    tracing::error!("{why}");
    eprintln!("corelog: {why}");
    std::process::exit(EXIT_INCONSISTENT_CLUSTER_ID);
}

/// Registers this broker (a new incarnation per process start) and heartbeats for it.
async fn broker_lifecycle(
    node: Arc<Node>,
    config: ClusterConfig,
    advertised: Listener,
    incarnation: String,
) {
    let registration = BrokerRegistration {
        node_id: config.node_id,
        incarnation: incarnation.clone(),
        host: advertised.host.clone(),
        port: advertised.port,
        rack: config.rack.clone(),
        listeners: config.endpoints.clone(),
        at_ms: crate::util::now_ms().max(0) as u64,
        cluster_id: config.cluster_id.clone(),
    };
    let interval = Duration::from_millis(config.heartbeat_interval_ms);
    loop {
        match node
            .propose(Command::RegisterBroker(registration.clone()))
            .await
        {
            Ok(Reply::BrokerEpoch(epoch)) => {
                tracing::info!(
                    node_id = config.node_id,
                    epoch,
                    "registered with the metadata quorum"
                );
                break;
            }
            Ok(Reply::InconsistentClusterId { quorum }) => {
                exit_inconsistent(&quorum, &config.cluster_id)
            }
            Ok(other) => tracing::warn!(?other, "broker registration refused; retrying"),
            Err(e) => {
                // A node of another cluster learns of no leader (the voters refuse its
                // connections, so nothing forwards): a majority refusing is the answer.
                if let Some(quorum) = super::net::refused_by_majority(node.voters.len()) {
                    exit_inconsistent(&quorum, &config.cluster_id);
                }
                tracing::info!(error = %e, "broker registration pending; retrying")
            }
        }
        tokio::time::sleep(interval).await;
    }
    // Every voter hears every heartbeat (the leader's answer unfences; the others only
    // note the time), so a newly elected controller knows who is alive and fences a dead
    // broker one session after its last heartbeat, not one session after the election.
    let notice_peers: HashMap<u64, Arc<tokio::sync::Mutex<Peer>>> = node
        .voters
        .iter()
        .filter(|(&id, _)| id != node.id)
        .map(|(&id, addr)| {
            (
                id,
                Arc::new(tokio::sync::Mutex::new(Peer::new(addr.clone()))),
            )
        })
        .collect();
    loop {
        if handle_stopping(&node) {
            return;
        }
        let beat = Request::Heartbeat {
            node_id: config.node_id,
            incarnation: incarnation.clone(),
        };
        node.note_heartbeat(config.node_id, &incarnation);
        let leader = node.raft.current_leader().await;
        for (id, peer) in &notice_peers {
            if Some(*id) == leader {
                continue;
            }
            let peer = peer.clone();
            let beat = Request::Heartbeat {
                node_id: config.node_id,
                incarnation: incarnation.clone(),
            };
            tokio::spawn(async move {
                // A busy peer (a dead voter's connect still timing out) is skipped.
                if let Ok(mut peer) = peer.try_lock() {
                    let _ = peer.call(&beat, interval).await;
                }
            });
        }
        if let Err(e) = node.to_leader(beat).await {
            tracing::debug!(error = %e, "heartbeat not delivered");
        }
        tokio::time::sleep(interval).await;
    }
}

/// Whether controlled shutdown has begun (heartbeats then stop for good).
fn handle_stopping(node: &Node) -> bool {
    node.state_machine
        .handle()
        .stopping
        .load(std::sync::atomic::Ordering::Acquire)
}

/// While this node is the leader, fences brokers whose heartbeats stopped. A new
/// leader knows no heartbeat yet, so it gives every broker a full session first.
async fn fence_loop(node: Arc<Node>) {
    let mut leading_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(FENCE_CHECK_INTERVAL).await;
        let leader = node.raft.current_leader().await == Some(node.id);
        if !leader {
            leading_since = None;
            continue;
        }
        let now = Instant::now();
        let since = *leading_since.get_or_insert(now);
        // A broker this node has never heard from gets a full session from the time
        // this node became leader; one it has heard from (as leader or, through the
        // heartbeat notices, as follower) a session from its last heartbeat.
        let grace_over = now.duration_since(since) > node.session_timeout;
        let stale: Vec<Command> = node.state_machine.read(|state| {
            let beats = node.heartbeats.lock().expect("heartbeats lock");
            state
                .brokers
                .values()
                .filter(|b| !b.fenced)
                .filter(|b| match beats.get(&b.registration.node_id) {
                    Some((inc, at)) if *inc == b.registration.incarnation => {
                        now.duration_since(*at) > node.session_timeout
                    }
                    _ => grace_over,
                })
                .map(|b| Command::FenceBroker {
                    node_id: b.registration.node_id,
                    incarnation: b.registration.incarnation.clone(),
                    at_ms: crate::util::now_ms().max(0) as u64,
                })
                .collect()
        });
        for command in stale {
            tracing::warn!(
                ?command,
                "no heartbeat within broker.session.timeout.ms: fencing"
            );
            if let Err(e) = node.propose(command).await {
                tracing::info!(error = %e, "fencing not committed");
            }
        }
    }
}

/// Fast failure detection (see `probe`): probes the controller listeners of the
/// members that matter to this node's role, every `PROBE_INTERVAL`. As the active
/// controller it fences a member whose process is gone without waiting for its
/// session to run out. As a follower it watches the leader: when the leader's process
/// is gone, the lowest-id other voter campaigns once, as soon as the voters' lease of
/// the old leader has run out (`CAMPAIGN_AFTER_REFUSED`), instead of after the lease
/// plus its random election timeout; the others keep their timeouts.
async fn gone_loop(node: Arc<Node>) {
    let mut trackers: HashMap<u64, RefusalTracker> = HashMap::new();
    // The leader last seen, so a gone leader is still watched while this node campaigns.
    let mut last_leader: Option<u64> = None;
    // The gone leader this node campaigns against (logged once, not every probe).
    let mut campaigning_against: Option<u64> = None;
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        let leader = node.raft.current_leader().await;
        if leader.is_some() {
            if leader != last_leader {
                campaigning_against = None;
            }
            last_leader = leader;
        }
        let leading = leader == Some(node.id);
        let targets: Vec<(u64, String)> = node
            .voters
            .iter()
            .filter(|(&id, _)| id != node.id && (leading || Some(id) == last_leader))
            .map(|(&id, addr)| (id, addr.clone()))
            .collect();
        let mut probes = tokio::task::JoinSet::new();
        for (id, addr) in targets {
            probes.spawn(async move { (id, probe::probe(&addr).await) });
        }
        while let Some(done) = probes.join_next().await {
            let Ok((id, outcome)) = done else { continue };
            let now = Instant::now();
            if !trackers.entry(id).or_default().observe(outcome, now) {
                continue;
            }
            if leading {
                fence_gone(&node, id).await;
            } else if Some(id) == last_leader
                && node.first_to_campaign(id)
                && campaigning_against != Some(id)
                && tracker_age(&trackers, id, now) >= CAMPAIGN_AFTER_REFUSED
            {
                // Once per gone leader, once the other voters' lease of it has run out
                // (they refuse any vote before): a campaign repeated every probe would
                // keep raising this node's term, and if its log is the shorter one,
                // block the voter that could win (seen: 30 s without a controller).
                campaigning_against = Some(id);
                tracing::info!(
                    leader = id,
                    "the controller's process is gone (connects refused): campaigning"
                );
                let _ = node.raft.trigger().elect().await;
            }
        }
    }
}

/// How long a gone leader's connects have been refused, by `trackers`.
fn tracker_age(trackers: &HashMap<u64, RefusalTracker>, id: u64, now: Instant) -> Duration {
    trackers
        .get(&id)
        .and_then(RefusalTracker::refused_since)
        .map_or(Duration::ZERO, |since| now.duration_since(since))
}

/// Fences member `id`'s registered incarnation, unless it is fenced already.
async fn fence_gone(node: &Node, id: u64) {
    let command = node.state_machine.read(|state| {
        state
            .brokers
            .get(&(id as i32))
            .filter(|b| !b.fenced)
            .map(|b| Command::FenceBroker {
                node_id: b.registration.node_id,
                incarnation: b.registration.incarnation.clone(),
                at_ms: crate::util::now_ms().max(0) as u64,
            })
    });
    let Some(command) = command else { return };
    tracing::warn!(
        ?command,
        "connects to its controller listener refused: the process is gone, fencing"
    );
    if let Err(e) = node.propose(command).await {
        tracing::info!(error = %e, "fencing not committed");
    }
}

impl Node {
    /// Whether this node is the Raft leader (the active controller).
    pub(super) async fn is_leader(&self) -> bool {
        self.raft.current_leader().await == Some(self.id)
    }

    /// Whether this node is the voter that campaigns when leader `gone` is gone: the
    /// lowest id among the others.
    fn first_to_campaign(&self, gone: u64) -> bool {
        self.voters.keys().find(|&&id| id != gone) == Some(&self.id)
    }

    fn note_heartbeat(&self, node_id: i32, incarnation: &str) {
        self.heartbeats
            .lock()
            .expect("heartbeats lock")
            .insert(node_id, (incarnation.to_string(), Instant::now()));
    }

    /// Proposes `command` through the leader (this node or another) and returns the
    /// applied reply; retries while there is no leader, up to `PROPOSE_DEADLINE`.
    pub(super) async fn propose(&self, command: Command) -> Result<Reply, String> {
        self.propose_at(command).await.map(|(reply, _)| reply)
    }

    /// As `propose`, with the index of the log entry that carried the command.
    pub(super) async fn propose_at(&self, command: Command) -> Result<(Reply, u64), String> {
        match self.to_leader(Request::Write(command)).await? {
            Response::Write(r) => r,
            _ => Err("unexpected response kind".into()),
        }
    }

    /// Delivers a request meant for the active controller: handled here when this node
    /// leads, else forwarded to the leader's controller listener.
    async fn to_leader(&self, request: Request) -> Result<Response, String> {
        let deadline = Instant::now() + PROPOSE_DEADLINE;
        let mut last_error = String::from("no leader");
        while Instant::now() < deadline {
            match self.raft.current_leader().await {
                Some(leader) if leader == self.id => match self.handle_local(&request).await {
                    Ok(r) => return Ok(r),
                    Err(e) => last_error = e,
                },
                Some(leader) => {
                    let Some(addr) = self.voters.get(&leader).cloned() else {
                        return Err(format!("leader {leader} is not a known voter"));
                    };
                    let mut peers = self.peers.lock().await;
                    let peer = peers.entry(leader).or_insert_with(|| Peer::new(addr));
                    match peer.call(&request, FORWARD_TIMEOUT).await {
                        Ok(Response::Write(Err(e))) | Ok(Response::Heartbeat(Err(e))) => {
                            last_error = e
                        }
                        Ok(r) => return Ok(r),
                        // The quorum belongs to another cluster: what the quorum's
                        // state would answer a registration, without asking it.
                        Err(e) if matches!(request, Request::Write(_)) => {
                            if let Some(f) = super::net::ForeignCluster::of(&e) {
                                let refusal = Reply::InconsistentClusterId {
                                    quorum: f.theirs.clone(),
                                };
                                return Ok(Response::Write(Ok((refusal, 0))));
                            }
                            last_error = e.to_string()
                        }
                        Err(e) => last_error = e.to_string(),
                    }
                }
                None => {}
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        Err(last_error)
    }

    /// The active controller's side of `Write` and `Heartbeat`; an error when this
    /// node is not (or no longer) the leader.
    async fn handle_local(&self, request: &Request) -> Result<Response, String> {
        match request {
            Request::Write(command) => match self.raft.client_write(command.clone()).await {
                Ok(written) => Ok(Response::Write(Ok((written.data, written.log_id.index)))),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    Err(format!("not the leader (leader: {:?})", f.leader_id))
                }
                Err(e) => Err(e.to_string()),
            },
            Request::Heartbeat {
                node_id,
                incarnation,
            } => {
                // Noted on every voter, so that a future leader knows it.
                self.note_heartbeat(*node_id, incarnation);
                if self.raft.current_leader().await != Some(self.id) {
                    return Err("not the leader".into());
                }
                let fenced = self.state_machine.read(|state| {
                    state
                        .brokers
                        .get(node_id)
                        .is_some_and(|b| b.fenced && b.registration.incarnation == *incarnation)
                });
                if fenced {
                    let command = Command::UnfenceBroker {
                        node_id: *node_id,
                        incarnation: incarnation.clone(),
                    };
                    if let Err(e) = self.raft.client_write(command).await {
                        return Err(e.to_string());
                    }
                }
                Ok(Response::Heartbeat(Ok(())))
            }
            _ => Err("not a request for the active controller".into()),
        }
    }
}

impl Handler for Node {
    async fn handle(self: Arc<Self>, request: Request) -> Response {
        match request {
            Request::Append(rpc) => Response::Append(self.raft.append_entries(rpc).await),
            Request::Vote(rpc) => Response::Vote(self.raft.vote(rpc).await),
            Request::Snapshot(rpc) => Response::Snapshot(self.raft.install_snapshot(rpc).await),
            request @ Request::Write(_) => match self.handle_local(&request).await {
                Ok(r) => r,
                Err(e) => Response::Write(Err(e)),
            },
            request @ Request::Heartbeat { .. } => match self.handle_local(&request).await {
                Ok(r) => r,
                Err(e) => Response::Heartbeat(Err(e)),
            },
            // The login is taken by `net` before the handler sees a connection; one
            // here is a second login or one on a listener without SASL.
            // `net` answers every Hello itself.
            Request::Hello { .. } => Response::Hello(Ok(())),
            Request::Login { .. } => Response::Login(Err(
                "no login expected here (already logged in, or the listener has no SASL)".into(),
            )),
        }
    }
}
