//! The controller listener's protocol: Raft RPCs between voters and the commands a node
//! forwards to the active controller. Length-prefixed JSON frames over TCP:
//!
//! ```text
//!  request:  [len u32][JSON Request]      response: [len u32][JSON Response]
//! ```
//!
//! One request at a time per connection; a client keeps its connection until an error
//! and reconnects on the next call. The port speaks nothing else and no Kafka client
//! ever connects to it.
//!
//! With `CONTROLLER:SSL` in `listener.security.protocol.map` (`install_tls`) the frames
//! travel inside TLS (tokio-rustls on the controller thread): the listener does the
//! server handshake, with the client-certificate check of `ssl.client.auth`, and every
//! `Peer` the client handshake, verifying the voter's certificate. A connection whose
//! handshake fails is closed before a single frame is read.
//!
//! With `CONTROLLER:SASL_PLAINTEXT` or `SASL_SSL` (`install_sasl`) the first frame of
//! every connection (after TLS, if any) must be a `Login` with PLAIN credentials the
//! listener's JAAS config accepts; nothing else is read from a connection before that,
//! and a refused login is answered, logged with the peer's address and closed.
//!
//! Every connection then says which cluster it belongs to (`Hello`, Kafka's ClusterId
//! on its Raft requests): a listener of another cluster refuses it with its own id, so
//! a member whose log dirs were formatted for another cluster neither votes, nor takes
//! appends, nor forwards commands here (INCONSISTENT_CLUSTER_ID), and says so in the
//! log on both sides. An empty id (unknown) is not checked; a peer that sends no
//! `Hello` (an older corelog) is served unchecked, as Kafka serves a null ClusterId.

// openraft's `RaftNetwork` fixes the RPC error type, large as it is.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::state::{Command, Reply};
use super::TypeConfig;

/// Bound on one frame (a snapshot travels whole in one).
const FRAME_BYTES_MAX: usize = 64 << 20;
/// Bound on the login frame: an unauthenticated peer gets no large buffer.
const LOGIN_FRAME_BYTES_MAX: usize = 4 << 10;
/// How long a new connection has to log in when the listener is a SASL one.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one warning per peer this often about our own refused login.
const LOGIN_WARN_INTERVAL: Duration = Duration::from_secs(10);
/// The one mechanism served on the controller listener (`config::controller_listener`).
const MECHANISM: &str = "PLAIN";
/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// At most one INCONSISTENT_CLUSTER_ID error per this long in the log, on each side
/// (the peers retry every few hundred milliseconds).
const FOREIGN_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The controller listener's TLS: the server side and the client side towards the
/// other voters; set once at start-up (`install_tls`), none for PLAINTEXT. Both are
/// read at each new connection, so changed certificate files (reloaded by `serve`'s
/// watcher) reach the next handshake without a restart.
static TLS: OnceLock<(
    Arc<crate::server::tls::TlsContext>,
    Arc<crate::server::tls::ClientTlsContext>,
)> = OnceLock::new();

/// Makes the controller listener and every `Peer` of this process speak TLS.
pub fn install_tls(
    server: Arc<crate::server::tls::TlsContext>,
    client: Arc<crate::server::tls::ClientTlsContext>,
) {
    let _ = TLS.set((server, client));
}

/// The controller listener's PLAIN logins (SASL_PLAINTEXT / SASL_SSL); set once at
/// start-up, none otherwise.
static SASL: OnceLock<crate::config::controller_listener::ControllerSasl> = OnceLock::new();

/// Makes the controller listener require a login first and every `Peer` log in.
pub fn install_sasl(sasl: crate::config::controller_listener::ControllerSasl) {
    let _ = SASL.set(sasl);
}

/// This node's cluster id (meta.properties), set once at start-up (`install_cluster_id`):
/// sent in every connection's `Hello` and required of every peer that sends one.
static CLUSTER_ID: OnceLock<String> = OnceLock::new();

/// Makes every connection of this process, both ways, carry and check `cluster_id`.
pub fn install_cluster_id(cluster_id: String) {
    let _ = CLUSTER_ID.set(cluster_id);
}

fn cluster_id() -> &'static str {
    CLUSTER_ID.get().map_or("", String::as_str)
}

/// Two ids disagree only when both are known.
fn foreign(ours: &str, theirs: &str) -> bool {
    !ours.is_empty() && !theirs.is_empty() && ours != theirs
}

/// When the last INCONSISTENT_CLUSTER_ID error was logged, in ms since the Unix epoch
/// (`FOREIGN_WARN_INTERVAL`).
static FOREIGN_WARNED_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn warn_foreign_due() -> bool {
    use std::sync::atomic::Ordering;
    let now = crate::util::now_ms();
    let last = FOREIGN_WARNED_MS.load(Ordering::Relaxed);
    now - last >= FOREIGN_WARN_INTERVAL.as_millis() as i64
        && FOREIGN_WARNED_MS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// The voters (by address) whose listeners last refused this node's `Hello`, with the
/// cluster id each gave; an accepted `Hello` removes its address.
static REFUSED_BY: std::sync::Mutex<BTreeMap<String, String>> =
    std::sync::Mutex::new(BTreeMap::new());

fn note_hello(addr: &str, refused_as: Option<&str>) {
    let mut refused = REFUSED_BY.lock().unwrap_or_else(|e| e.into_inner());
    match refused_as {
        Some(theirs) => refused.insert(addr.to_string(), theirs.to_string()),
        None => refused.remove(addr),
    };
}

/// The cluster id a majority of the `voters` voters refused this node with, if they
/// did (this node never refuses itself, so that is a majority of the others too).
pub fn refused_by_majority(voters: usize) -> Option<String> {
    let refused: Vec<String> = REFUSED_BY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for theirs in refused {
        *counts.entry(theirs).or_default() += 1;
    }
    counts
        .into_iter()
        .find(|&(_, n)| 2 * n > voters)
        .map(|(id, _)| id)
}

/// A peer's controller listener belongs to another cluster (its `Hello` answer).
#[derive(Debug)]
pub struct ForeignCluster {
    pub addr: String,
    /// The peer's cluster id.
    pub theirs: String,
}

impl std::fmt::Display for ForeignCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "INCONSISTENT_CLUSTER_ID: the controller listener {} belongs to cluster {}, this node to cluster {}; \
             check controller.quorum.voters, and that log.dirs hold this cluster's meta.properties",
            self.addr,
            self.theirs,
            cluster_id()
        )
    }
}

impl std::error::Error for ForeignCluster {}

impl ForeignCluster {
    /// The `ForeignCluster` inside an error from `Peer::call`, if that is what it is.
    pub fn of(e: &std::io::Error) -> Option<&ForeignCluster> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

/// What a controller connection reads and writes through: TCP or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Stream for T {}

#[derive(Serialize, Deserialize)]
pub enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A command for the active controller to propose.
    Write(Command),
    /// A broker's heartbeat, for the active controller.
    Heartbeat {
        node_id: i32,
        incarnation: String,
    },
    /// The first frame on a SASL controller listener (SASL PLAIN's two fields; the
    /// authorization id is always this user).
    Login {
        mechanism: String,
        username: String,
        password: String,
    },
    /// The first frame after any login: the sender's cluster id (may be empty).
    Hello {
        cluster_id: String,
    },
}

#[derive(Serialize, Deserialize)]
pub enum Response {
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// The reply and the index of the log entry that carried it (a proposer waits
    /// until its own member has applied that index), or why it was not proposed (e.g.
    /// this node is not the leader).
    Write(Result<(Reply, u64), String>),
    Heartbeat(Result<(), String>),
    /// Whether the login was accepted; a refused one is followed by the close.
    Login(Result<(), String>),
    /// The `Hello` accepted, or refused with the listener's own cluster id (then the
    /// connection is closed).
    Hello(Result<(), String>),
}

/// What answers requests on the controller listener.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        request: Request,
    ) -> impl std::future::Future<Output = Response> + Send;
}

async fn read_frame<T: serde::de::DeserializeOwned>(
    stream: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<T> {
    read_frame_within(stream, FRAME_BYTES_MAX).await
}

async fn read_frame_within<T: serde::de::DeserializeOwned>(
    stream: &mut (impl AsyncRead + Unpin),
    bytes_max: usize,
) -> std::io::Result<T> {
    let len = stream.read_u32().await? as usize;
    if len > bytes_max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {bytes_max}"),
        ));
    }
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).await?;
    serde_json::from_slice(&buf)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

async fn write_frame<T: Serialize>(
    stream: &mut (impl AsyncWrite + Unpin),
    value: &T,
) -> std::io::Result<()> {
    let json = serde_json::to_vec(value)?;
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    stream.write_all(&out).await
}

/// Accepts on the controller listener and serves each connection on its own task,
/// after the TLS handshake when the listener is an SSL one.
pub async fn serve<H: Handler>(listener: TcpListener, handler: Arc<H>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "controller listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let acceptor = TLS
            .get()
            .map(|(server, _)| tokio_rustls::TlsAcceptor::from(server.config()));
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                return serve_connection(stream, peer, handler).await;
            };
            let handshake = tokio::time::timeout(
                crate::server::tls::TLS_HANDSHAKE_TIMEOUT,
                acceptor.accept(stream),
            );
            match handshake.await {
                Ok(Ok(tls)) => serve_connection(tls, peer, handler).await,
                // A connect-and-close (the fencing probe) is no handshake failure.
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
                Ok(Err(e)) => {
                    tracing::info!(%peer, "controller listener: TLS handshake failed, closing: {e}")
                }
                Err(_) => {
                    tracing::info!(%peer, "controller listener: TLS handshake not finished in time, closing")
                }
            }
        });
    }
}

async fn serve_connection<H: Handler>(
    mut stream: impl Stream,
    peer: std::net::SocketAddr,
    handler: Arc<H>,
) {
    if let Some(sasl) = SASL.get() {
        if !accept_login(&mut stream, peer, sasl).await {
            return;
        }
    }
    loop {
        let request: Request = match read_frame(&mut stream).await {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) => {
                tracing::info!(%peer, error = %e, "closing a controller connection");
                return;
            }
        };
        let response = match request {
            Request::Hello { cluster_id: theirs } => {
                let ours = cluster_id();
                if foreign(ours, &theirs) {
                    if warn_foreign_due() {
                        tracing::error!(%peer, "INCONSISTENT_CLUSTER_ID: refused a controller connection from a member of cluster {theirs}; this is cluster {ours} (check that node's controller.quorum.voters and log.dirs)");
                    }
                    let _ = write_frame(&mut stream, &Response::Hello(Err(ours.to_string()))).await;
                    return;
                }
                Response::Hello(Ok(()))
            }
            request => handler.clone().handle(request).await,
        };
        if write_frame(&mut stream, &response).await.is_err() {
            return;
        }
    }
}

/// The server side of the login: true when `stream` may go on. A refused login is
/// answered (so the peer can say why), logged with the peer's address and closed.
async fn accept_login(
    stream: &mut impl Stream,
    peer: std::net::SocketAddr,
    sasl: &crate::config::controller_listener::ControllerSasl,
) -> bool {
    let first = tokio::time::timeout(
        LOGIN_TIMEOUT,
        read_frame_within::<Request>(stream, LOGIN_FRAME_BYTES_MAX),
    )
    .await;
    let (username, accepted) = match first {
        Ok(Ok(Request::Login {
            mechanism,
            username,
            password,
        })) => {
            let accepted = mechanism == MECHANISM
                && sasl.users.get(&username).is_some_and(|expected| {
                    crate::security::scram::constant_time_eq(
                        expected.as_bytes(),
                        password.as_bytes(),
                    )
                });
            (username, accepted)
        }
        Ok(Ok(_)) => {
            tracing::warn!(%peer, "controller listener: a request before the SASL login, closing (is the peer's controller listener SASL too?)");
            return false;
        }
        // A connect-and-close (the fencing probe) is no failed login.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return false,
        Ok(Err(e)) => {
            tracing::warn!(%peer, "controller listener: unreadable SASL login, closing: {e}");
            return false;
        }
        Err(_) => {
            tracing::warn!(%peer, "controller listener: no SASL login within {LOGIN_TIMEOUT:?}, closing");
            return false;
        }
    };
    if !accepted {
        tracing::warn!(%peer, user = %username, "controller listener: SASL PLAIN login refused (unknown user or wrong password), closing; nothing from this connection is applied");
        let refused = Response::Login(Err("invalid username or password".into()));
        let _ = write_frame(stream, &refused).await;
        return false;
    }
    write_frame(stream, &Response::Login(Ok(()))).await.is_ok()
}

/// A client of one peer's controller listener.
pub struct Peer {
    addr: String,
    conn: Option<Box<dyn Stream>>,
    /// When our refused login was last logged (`LOGIN_WARN_INTERVAL`).
    login_warned: Option<std::time::Instant>,
}

impl Peer {
    pub fn new(addr: String) -> Peer {
        Peer {
            addr,
            conn: None,
            login_warned: None,
        }
    }

    /// Sends `request` and waits for the response, within `timeout`.
    pub async fn call(
        &mut self,
        request: &Request,
        timeout: Duration,
    ) -> std::io::Result<Response> {
        let result = tokio::time::timeout(timeout, self.call_inner(request)).await;
        let result = result.unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from {} in {timeout:?}", self.addr),
            ))
        });
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn call_inner(&mut self, request: &Request) -> std::io::Result<Response> {
        if self.conn.is_none() {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                })??;
            stream.set_nodelay(true)?;
            let mut conn: Box<dyn Stream> = match TLS.get() {
                None => Box::new(stream),
                Some((_, client)) => {
                    let host = self.addr.rsplit_once(':').map_or(&*self.addr, |(h, _)| h);
                    let name =
                        crate::server::tls::server_name(host).map_err(std::io::Error::other)?;
                    let tls = tokio_rustls::TlsConnector::from(client.config())
                        .connect(name, stream)
                        .await
                        .map_err(|e| {
                            std::io::Error::other(format!(
                                "TLS handshake with the controller listener {} failed: {e}",
                                self.addr
                            ))
                        })?;
                    Box::new(tls)
                }
            };
            if let Some(sasl) = SASL.get() {
                if let Err(e) = login(&mut conn, sasl).await {
                    let e = format!(
                        "the controller listener {} refused our SASL PLAIN login as {:?}: {e}",
                        self.addr, sasl.username
                    );
                    let now = std::time::Instant::now();
                    if self
                        .login_warned
                        .is_none_or(|t| now.duration_since(t) >= LOGIN_WARN_INTERVAL)
                    {
                        self.login_warned = Some(now);
                        tracing::warn!("{e} (check username and password in listener.name.<controller>.plain.sasl.jaas.config)");
                    }
                    return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, e));
                }
            }
            hello(&mut conn, &self.addr).await?;
            self.conn = Some(conn);
        }
        let stream = self.conn.as_mut().expect("connected");
        write_frame(stream, request).await?;
        read_frame(stream).await
    }
}

/// The client side of `Hello`: a refusal is a `ForeignCluster` error (logged here, at
/// most once per `FOREIGN_WARN_INTERVAL`).
async fn hello(conn: &mut Box<dyn Stream>, addr: &str) -> std::io::Result<()> {
    let request = Request::Hello {
        cluster_id: cluster_id().to_string(),
    };
    write_frame(conn, &request).await?;
    match read_frame_within(conn, LOGIN_FRAME_BYTES_MAX).await? {
        Response::Hello(Ok(())) => {
            note_hello(addr, None);
            Ok(())
        }
        Response::Hello(Err(theirs)) => {
            note_hello(addr, Some(&theirs));
            let e = ForeignCluster {
                addr: addr.to_string(),
                theirs,
            };
            if warn_foreign_due() {
                tracing::error!("{e}");
            }
            Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, e))
        }
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "an answer that is not a hello's",
        )),
    }
}

/// The client side of the login: `Login`, then the answer.
async fn login(
    conn: &mut Box<dyn Stream>,
    sasl: &crate::config::controller_listener::ControllerSasl,
) -> Result<(), String> {
    let request = Request::Login {
        mechanism: MECHANISM.into(),
        username: sasl.username.clone(),
        password: sasl.password.clone(),
    };
    write_frame(conn, &request)
        .await
        .map_err(|e| e.to_string())?;
    match read_frame_within(conn, LOGIN_FRAME_BYTES_MAX).await {
        Ok(Response::Login(r)) => r,
        Ok(_) => Err("an answer that is not a login's".into()),
        Err(e) => Err(format!("no answer to the login: {e}")),
    }
}

/// openraft's view of the network: one `Peer` per target voter.
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerNetwork {
        PeerNetwork {
            target,
            peer: Peer::new(node.addr.clone()),
        }
    }
}

pub struct PeerNetwork {
    target: u64,
    peer: Peer,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

fn unexpected<E: std::error::Error>() -> RPCError<u64, BasicNode, RaftError<u64, E>> {
    let e = std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected response kind");
    RPCError::Network(NetworkError::new(&e))
}

impl PeerNetwork {
    async fn send<E: std::error::Error>(
        &mut self,
        request: Request,
        option: &RPCOption,
    ) -> Result<Response, RPCError<u64, BasicNode, RaftError<u64, E>>> {
        self.peer
            .call(&request, option.hard_ttl())
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }

    fn remote<T, E: std::error::Error>(
        &self,
        result: Result<T, RaftError<u64, E>>,
    ) -> Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>> {
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        match self.send(Request::Append(rpc), &option).await? {
            Response::Append(r) => self.remote(r),
            _ => Err(unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        match self.send(Request::Snapshot(rpc), &option).await? {
            Response::Snapshot(r) => self.remote(r),
            _ => Err(unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        match self.send(Request::Vote(rpc), &option).await? {
            Response::Vote(r) => self.remote(r),
            _ => Err(unexpected()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id this test binary's listeners and peers carry (`CLUSTER_ID` is set once
    /// per process, and only these tests set it).
    const OURS: &str = "oursOURSoursOURSours12";

    struct Echo;

    impl Handler for Echo {
        async fn handle(self: Arc<Self>, request: Request) -> Response {
            match request {
                Request::Heartbeat { node_id, .. } => Response::Heartbeat(Err(node_id.to_string())),
                _ => Response::Write(Err("unexpected".into())),
            }
        }
    }

    async fn listener() -> String {
        install_cluster_id(OURS.into());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(serve(listener, Arc::new(Echo)));
        addr
    }

    fn beat(node_id: i32) -> Request {
        Request::Heartbeat {
            node_id,
            incarnation: "x".into(),
        }
    }

    #[test]
    fn only_two_known_different_ids_disagree() {
        assert!(foreign("a", "b"));
        assert!(!foreign("a", "a"));
        assert!(!foreign("", "b"));
        assert!(!foreign("a", ""));
    }

    #[test]
    fn a_majority_of_voters_refusing_names_their_cluster() {
        note_hello("10.0.0.1:1", Some("X"));
        assert_eq!(refused_by_majority(3), None, "one of three");
        note_hello("10.0.0.2:1", Some("X"));
        assert_eq!(refused_by_majority(3).as_deref(), Some("X"));
        assert_eq!(refused_by_majority(5), None, "two of five");
        note_hello("10.0.0.2:1", None);
        assert_eq!(refused_by_majority(3), None, "accepted since");
        note_hello("10.0.0.1:1", None);
    }

    #[tokio::test]
    async fn a_hello_from_another_cluster_is_refused_with_our_id_and_closed() {
        let addr = listener().await;
        let mut raw = TcpStream::connect(&addr).await.unwrap();
        let hello = Request::Hello {
            cluster_id: "theirsTHEIRStheirs1234".into(),
        };
        write_frame(&mut raw, &hello).await.unwrap();
        match read_frame::<Response>(&mut raw).await.unwrap() {
            Response::Hello(Err(id)) => assert_eq!(id, OURS),
            _ => panic!("not a refused hello"),
        }
        // Nothing more is read from it.
        let _ = write_frame(&mut raw, &beat(7)).await;
        assert!(read_frame::<Response>(&mut raw).await.is_err());
    }

    #[tokio::test]
    async fn our_id_an_unknown_id_and_no_hello_at_all_are_served() {
        let addr = listener().await;
        for id in [Some(OURS), Some(""), None] {
            let mut raw = TcpStream::connect(&addr).await.unwrap();
            if let Some(id) = id {
                let hello = Request::Hello {
                    cluster_id: id.into(),
                };
                write_frame(&mut raw, &hello).await.unwrap();
                assert!(matches!(
                    read_frame::<Response>(&mut raw).await.unwrap(),
                    Response::Hello(Ok(()))
                ));
            }
            write_frame(&mut raw, &beat(7)).await.unwrap();
            match read_frame::<Response>(&mut raw).await.unwrap() {
                Response::Heartbeat(Err(n)) => assert_eq!(n, "7", "{id:?}"),
                _ => panic!("not the handler's answer"),
            }
        }
        // A peer says hello itself and is served.
        let mut peer = Peer::new(addr);
        let answer = peer.call(&beat(9), Duration::from_secs(5)).await.unwrap();
        assert!(matches!(answer, Response::Heartbeat(Err(n)) if n == "9"));
    }

    #[tokio::test]
    async fn a_peer_refused_as_foreign_gets_an_error_naming_their_cluster() {
        install_cluster_id(OURS.into());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let hello: Request = read_frame(&mut conn).await.unwrap();
            assert!(matches!(hello, Request::Hello { cluster_id } if cluster_id == OURS));
            let refused = Response::Hello(Err("theirsTHEIRStheirs1234".into()));
            write_frame(&mut conn, &refused).await.unwrap();
        });
        let mut peer = Peer::new(addr.clone());
        let e = peer
            .call(&beat(1), Duration::from_secs(5))
            .await
            .err()
            .expect("refused");
        let f = ForeignCluster::of(&e).expect("a ForeignCluster error");
        assert_eq!(
            (f.addr.as_str(), f.theirs.as_str()),
            (addr.as_str(), "theirsTHEIRStheirs1234")
        );
        assert!(e.to_string().starts_with("INCONSISTENT_CLUSTER_ID"), "{e}");
    }
}
