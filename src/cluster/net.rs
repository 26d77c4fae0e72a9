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

// openraft's `RaftNetwork` fixes the RPC error type, large as it is.
#![allow(clippy::result_large_err)]

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
/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The controller listener's TLS: the server side and the client side towards the
/// other voters; set once at start-up (`install_tls`), none for PLAINTEXT.
static TLS: OnceLock<(Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>)> = OnceLock::new();

/// Makes the controller listener and every `Peer` of this process speak TLS.
pub fn install_tls(server: Arc<rustls::ServerConfig>, client: Arc<rustls::ClientConfig>) {
    let _ = TLS.set((server, client));
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
}

#[derive(Serialize, Deserialize)]
pub enum Response {
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// The reply, or why it was not proposed (e.g. this node is not the leader).
    Write(Result<Reply, String>),
    Heartbeat(Result<(), String>),
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
    let len = stream.read_u32().await? as usize;
    if len > FRAME_BYTES_MAX {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {FRAME_BYTES_MAX}"),
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
    let acceptor = TLS
        .get()
        .map(|(server, _)| tokio_rustls::TlsAcceptor::from(server.clone()));
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
        let acceptor = acceptor.clone();
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
    loop {
        let request: Request = match read_frame(&mut stream).await {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Err(e) => {
                tracing::info!(%peer, error = %e, "closing a controller connection");
                return;
            }
        };
        let response = handler.clone().handle(request).await;
        if write_frame(&mut stream, &response).await.is_err() {
            return;
        }
    }
}

/// A client of one peer's controller listener.
pub struct Peer {
    addr: String,
    conn: Option<Box<dyn Stream>>,
}

impl Peer {
    pub fn new(addr: String) -> Peer {
        Peer { addr, conn: None }
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
            self.conn = Some(match TLS.get() {
                None => Box::new(stream),
                Some((_, client)) => {
                    let host = self.addr.rsplit_once(':').map_or(&*self.addr, |(h, _)| h);
                    let name =
                        crate::server::tls::server_name(host).map_err(std::io::Error::other)?;
                    let tls = tokio_rustls::TlsConnector::from(client.clone())
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
            });
        }
        let stream = self.conn.as_mut().expect("connected");
        write_frame(stream, request).await?;
        read_frame(stream).await
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
