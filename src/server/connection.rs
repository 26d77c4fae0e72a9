//! One client connection. A reader reads frames in order and starts each request
//! (`handlers::dispatch`); a writer awaits the started requests in the same order and
//! writes their responses, so responses leave in request order as Kafka requires while
//! produce appends of later requests are not held up by earlier acks.
//!
//! Bounds: a frame larger than socket.request.max.bytes closes the connection; at most
//! `INFLIGHT_REQUESTS_MAX` requests are started and not yet answered, and a Fetch is
//! alone in flight; a request body costs memory as its bytes arrive; a connection idle
//! for connections.max.idle.ms is closed.

use std::cell::RefCell;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::channel::mpsc;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use futures::{SinkExt, StreamExt};

use crate::broker::shard::Shard;
use crate::handlers::{self, Outcome, Pending};
use crate::metrics::{self, Counter, Stage};
use crate::protocol::frame::frame_len;
use crate::protocol::header::{
    decode_request_header, encode_response_header, response_header_flexible,
};
use crate::quota::entity::Kind;
use crate::quota::manager::{ConnQuotas, Timed};
use crate::quota::throttle_field;
use crate::runtime::{self, Semaphore, StaticPermit, TcpStream};

/// Requests read and started but not yet answered, per connection. librdkafka keeps up
/// to 5 produce requests in flight per connection; Java's default is 5 as well.
pub const INFLIGHT_REQUESTS_MAX: usize = 16;
/// A request body is read into a buffer that grows by this much as bytes arrive.
pub const BODY_READ_CHUNK_BYTES: usize = 64 << 10;
/// Responses up to this size are gathered into one buffer and written with one send;
/// larger ones are written chunk by chunk so record data is never copied.
pub const COALESCE_BYTES_MAX: usize = 64 << 10;

struct Started {
    correlation_id: i32,
    flexible: bool,
    api_key: i16,
    /// When the request was read (`metrics::now`), for the total-time stages.
    received: Option<std::time::Instant>,
    api_version: i16,
    /// Counted against the client's quotas (not ApiVersions, the login, replica fetches).
    quota: bool,
    /// The throttle time decided when the request was read (producer_byte_rate).
    throttle_ms: u64,
    pending: Timed<Pending>,
    /// Its share of the connection's in-flight slots, given back once it is answered.
    _slot: StaticPermit,
}

/// What a connection runs over: a plain TCP stream, or TLS over one (`server::tls`).
pub trait Transport: AsyncRead + AsyncWrite + Unpin + 'static {
    /// The socket to gather plaintext response chunks into with one `sendmsg`, or
    /// `None` when every byte must pass through the stream (TLS encrypts it).
    fn gather_fd(&self) -> Option<RawFd>;
}

impl Transport for TcpStream {
    fn gather_fd(&self) -> Option<RawFd> {
        Some(self.as_raw_fd())
    }
}

/// Who is at the other end and how they came in.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: Option<SocketAddr>,
    /// Index into `BrokerConfig::listeners` of the listener that accepted it.
    pub listener: usize,
    /// The principal from the client's TLS certificate (`User:<subject DN>`), if any.
    pub principal: Option<String>,
    /// What the authorizer derives from the principal and peer, on first use.
    pub identity: crate::security::acl::access::IdentityCell,
}

/// Serves one connection until the client leaves, a frame is bad, or a write fails.
/// `stream` has finished any TLS handshake; call `prepare` on the TCP stream first.
pub async fn serve<S: Transport>(shard: Rc<Shard>, mut stream: S, mut info: ConnInfo) {
    metrics::add(Counter::ConnectionsOpened, 1);
    let peer = info.peer;
    let listener = &shard.broker.config.listeners[info.listener];
    let mut reauth = None;
    if listener.protocol.sasl() {
        let mechanisms = listener.sasl_mechanisms.clone();
        match crate::server::sasl::login(&shard, &mut stream, &info, &mechanisms).await {
            Ok(session) => {
                info.principal = Some(session.principal.clone());
                reauth = crate::server::sasl::Reauth::new(session);
            }
            Err(why) => {
                tracing::warn!(?peer, "closing connection: {why}");
                metrics::add(Counter::ConnectionsClosed, 1);
                return;
            }
        }
    }
    let fd = stream.gather_fd();
    let (reader, writer) = futures::io::AsyncReadExt::split(stream);
    let (tx, rx) = mpsc::channel::<Started>(INFLIGHT_REQUESTS_MAX);
    let slots = Rc::new(Semaphore::new(INFLIGHT_REQUESTS_MAX as u64));
    let idle = Duration::from_millis(shard.broker.config.connections_max_idle_ms);
    let quotas = Rc::new(RefCell::new(ConnQuotas::new(info.principal.as_deref())));
    let write_task = write_responses(
        rx,
        Writer { half: writer, fd },
        peer,
        (shard.clone(), quotas.clone()),
        idle,
    );
    let read_task = read_requests(shard, reader, tx, info, slots, reauth, quotas);
    // The reader ends on EOF or a bad frame (dropping `tx`); the writer then answers what
    // was started and ends. A write error ends the writer and, with it, the connection.
    futures::pin_mut!(write_task);
    futures::pin_mut!(read_task);
    match futures::future::select(read_task, write_task).await {
        futures::future::Either::Left((_, write_task)) => write_task.await,
        futures::future::Either::Right(_) => {}
    }
    metrics::add(Counter::ConnectionsClosed, 1);
}

/// Sets the socket options every client connection gets; returns the peer address.
pub fn prepare(stream: &TcpStream) -> Option<SocketAddr> {
    let _ = stream.set_nodelay(true);
    stream.peer_addr().ok()
}

async fn read_requests<S: Transport>(
    shard: Rc<Shard>,
    mut reader: futures::io::ReadHalf<S>,
    mut tx: mpsc::Sender<Started>,
    info: ConnInfo,
    slots: Rc<Semaphore>,
    mut reauth: Option<crate::server::sasl::Reauth>,
    quotas: Rc<RefCell<ConnQuotas>>,
) {
    let peer = info.peer;
    let max = shard.broker.config.socket_request_max_bytes;
    let idle = Duration::from_millis(shard.broker.config.connections_max_idle_ms);
    loop {
        let mut prefix = [0u8; 4];
        match read_full(&mut reader, &mut prefix, idle, &slots).await {
            Ok(()) => {}
            Err(ReadEnd::Eof) => return,
            Err(ReadEnd::Idle) => {
                tracing::info!(
                    ?peer,
                    "closing connection: idle for connections.max.idle.ms ({} ms)",
                    idle.as_millis()
                );
                return;
            }
            Err(ReadEnd::Failed(e)) => {
                tracing::debug!(?peer, "connection read failed: {e}");
                return;
            }
        }
        let len = match frame_len(prefix, max) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(?peer, "closing connection: {e}");
                return;
            }
        };
        let body = match read_body(&mut reader, len, idle, &slots).await {
            Ok(body) => body,
            Err(e) => {
                let why = match e {
                    ReadEnd::Eof => "the client closed it".to_string(),
                    ReadEnd::Idle => format!(
                        "nothing arrived for connections.max.idle.ms ({} ms)",
                        idle.as_millis()
                    ),
                    ReadEnd::Failed(e) => e.to_string(),
                };
                tracing::warn!(
                    ?peer,
                    "closing connection: request truncated ({len}-byte frame): {why}"
                );
                return;
            }
        };
        let mut body = body;
        let received = metrics::now();
        metrics::add(Counter::NetworkReceivedBytes, 4 + len as u64);
        let header = match decode_request_header(&mut body) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(?peer, "closing connection: {e}");
                return;
            }
        };
        // A Fetch takes every slot: it starts once all earlier responses are written,
        // and nothing after it starts until its own is. A client that stops reading its
        // socket then holds at most one fetch response, as Kafka's muted channel does,
        // instead of `INFLIGHT_REQUESTS_MAX` of them read from disk.
        let units = if header.api_key == API_FETCH {
            INFLIGHT_REQUESTS_MAX as u64
        } else {
            1
        };
        let Ok(slot) = slots.acquire_static_permit(units).await else {
            return;
        };
        let flexible = response_header_flexible(header.api_key, header.api_version);
        metrics::request(header.api_key);
        if let Some(r) = reauth.as_mut() {
            if crate::server::sasl::is_login_api(header.api_key) {
                // KIP-368: a re-login in the request stream, answered in order.
                let step = match r
                    .step(&shard, &info, header.api_key, header.api_version, body)
                    .await
                {
                    Ok(step) => step,
                    Err(why) => {
                        tracing::warn!(?peer, "closing connection: {why}");
                        return;
                    }
                };
                let started = Started {
                    correlation_id: header.correlation_id,
                    flexible,
                    api_key: header.api_key,
                    received,
                    api_version: header.api_version,
                    quota: false,
                    throttle_ms: 0,
                    pending: Timed::new(Box::pin(futures::future::ready(Ok(step.outcome))), None),
                    _slot: slot,
                };
                if tx.send(started).await.is_err() {
                    return;
                }
                if let Some(why) = step.close {
                    tracing::warn!(?peer, "closing connection: {why}");
                    return;
                }
                continue;
            }
            if let Some(why) = r.expired(std::time::Instant::now()) {
                tracing::info!(?peer, "closing connection: {why}");
                return;
            }
        }
        // A muted connection (over a quota) reads nothing more until the mute ends.
        let muted = quotas.borrow().muted_for();
        if let Some(wait) = muted {
            runtime::sleep(wait).await;
        }
        let quota = !throttle_field::exempt(header.api_key)
            && !is_replica_fetch(header.api_key, header.api_version, &body)
            && quotas.borrow_mut().refresh(
                &shard.broker.quotas,
                header.client_id.as_deref().unwrap_or(""),
            );
        let mut throttle_ms = 0;
        if quota && header.api_key == API_PRODUCE {
            let mut q = quotas.borrow_mut();
            throttle_ms = q.record(&shard.broker.quotas, Kind::Produce, 4 + len as u64);
            if throttle_ms > 0 {
                q.mute(throttle_ms);
            }
        }
        let dispatched = quota.then(std::time::Instant::now);
        let pending = match handlers::dispatch(&shard, &header, body, &info) {
            Ok(p) => p,
            Err(e) => {
                metrics::error(header.api_key, e.kafka_error_code());
                tracing::warn!(?peer, client_id = ?header.client_id, "closing connection: {e}");
                return;
            }
        };
        let spent_ns = dispatched.map(|t| t.elapsed().as_nanos() as u64);
        let started = Started {
            correlation_id: header.correlation_id,
            flexible,
            api_key: header.api_key,
            received,
            api_version: header.api_version,
            quota,
            throttle_ms,
            pending: Timed::new(pending, spent_ns),
            _slot: slot,
        };
        if tx.send(started).await.is_err() {
            return;
        }
    }
}

/// Why a read of the next bytes of a connection ended without them.
enum ReadEnd {
    Eof,
    /// Nothing arrived for `connections.max.idle.ms` while nothing was being answered.
    Idle,
    Failed(std::io::Error),
}

/// Reads a request body of `len` bytes. The buffer grows with what arrives
/// (`BODY_READ_CHUNK_BYTES` at a time), so a client that announces a large request
/// and sends it slowly, or never, costs the broker what it sent, not what it announced.
async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
    idle: Duration,
    slots: &Semaphore,
) -> Result<BytesMut, ReadEnd> {
    let mut body = BytesMut::with_capacity(len);
    while body.len() < len {
        let filled = body.len();
        let chunk = (len - filled).min(BODY_READ_CHUNK_BYTES);
        body.resize(filled + chunk, 0);
        let got = read_some(reader, &mut body[filled..], idle, slots).await;
        match got {
            Ok(n) => body.truncate(filled + n),
            Err(e) => return Err(e),
        }
    }
    Ok(body)
}

/// Fills `buf` completely (see `read_some`).
async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    idle: Duration,
    slots: &Semaphore,
) -> Result<(), ReadEnd> {
    let mut filled = 0;
    while filled < buf.len() {
        filled += read_some(reader, &mut buf[filled..], idle, slots).await?;
    }
    Ok(())
}

/// Reads at least one byte into `buf`. Gives up with `Idle` when nothing arrives for
/// `idle` while no request of this connection is waiting to be answered (every slot
/// free): a long-poll Fetch or a JoinGroup in a rebalance keeps its connection open.
async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
    idle: Duration,
    slots: &Semaphore,
) -> Result<usize, ReadEnd> {
    let read = reader.read(buf);
    futures::pin_mut!(read);
    // Bytes already waiting need no timer (the common case under load).
    let got = match futures::poll!(read.as_mut()) {
        std::task::Poll::Ready(got) => got,
        std::task::Poll::Pending => loop {
            let timer = runtime::sleep(idle);
            futures::pin_mut!(timer);
            match futures::future::select(read.as_mut(), timer).await {
                futures::future::Either::Left((got, _)) => break got,
                futures::future::Either::Right(_) => {
                    if slots.available() == INFLIGHT_REQUESTS_MAX as u64 {
                        return Err(ReadEnd::Idle);
                    }
                }
            }
        },
    };
    match got {
        Ok(0) => Err(ReadEnd::Eof),
        Ok(n) => Ok(n),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(ReadEnd::Eof),
        Err(e) => Err(ReadEnd::Failed(e)),
    }
}

/// The write side of a connection: the async half (for waiting until the socket is
/// writable) and the descriptor (for gathering sends).
struct Writer<S: Transport> {
    half: futures::io::WriteHalf<S>,
    fd: Option<RawFd>,
}

async fn write_responses<S: Transport>(
    mut rx: mpsc::Receiver<Started>,
    mut writer: Writer<S>,
    peer: Option<SocketAddr>,
    (shard, quotas): (Rc<Shard>, Rc<RefCell<ConnQuotas>>),
    idle: Duration,
) {
    while let Some(s) = rx.next().await {
        let (outcome, spent_ns) = s.pending.await;
        let chunks = match outcome {
            Ok(Outcome::Respond(mut chunks)) => {
                if s.quota {
                    let mut q = quotas.borrow_mut();
                    let req = (s.api_key, s.api_version, s.throttle_ms);
                    throttle(&shard, &mut q, req, spent_ns, &mut chunks);
                }
                chunks
            }
            Ok(Outcome::NoResponse) => {
                record_total(s.api_key, s.received);
                continue;
            }
            Err(e) => {
                metrics::error(s.api_key, e.kafka_error_code());
                tracing::warn!(?peer, "closing connection: {e}");
                return;
            }
        };
        let ready = s.received.map(|_| std::time::Instant::now());
        // A client that does not read its answer for connections.max.idle.ms is idle, as
        // in Kafka, and is closed: it would otherwise hold the response (read from disk
        // for a Fetch) as long as it likes.
        let write = write_response(&mut writer, s.correlation_id, s.flexible, chunks);
        futures::pin_mut!(write);
        // Most responses fit the socket buffer at once and need no timer.
        let written = match futures::poll!(write.as_mut()) {
            std::task::Poll::Ready(written) => Ok(written),
            std::task::Poll::Pending => {
                let timer = runtime::sleep(idle);
                futures::pin_mut!(timer);
                match futures::future::select(write, timer).await {
                    futures::future::Either::Left((written, _)) => Ok(written),
                    futures::future::Either::Right(_) => Err(()),
                }
            }
        };
        let written = match written {
            Ok(written) => written,
            Err(()) => {
                tracing::info!(
                    ?peer,
                    "closing connection: the client did not read its response for connections.max.idle.ms ({} ms)",
                    idle.as_millis()
                );
                return;
            }
        };
        match written {
            Ok(sent) => {
                metrics::add(Counter::NetworkSentBytes, sent as u64);
                let stage = match s.api_key {
                    API_PRODUCE => Some(Stage::ProduceResponse),
                    API_FETCH => Some(Stage::FetchSend),
                    _ => None,
                };
                if let Some(stage) = stage {
                    metrics::record_since(stage, ready);
                }
                record_total(s.api_key, s.received);
            }
            Err(e) => {
                tracing::debug!(?peer, "connection write failed: {e}");
                return;
            }
        }
    }
    let _ = writer.half.flush().await;
}

const API_PRODUCE: i16 = 0;
const API_FETCH: i16 = 1;
/// Fetch versions with the replica id in the body (a follower's fetch is replication,
/// not a consumer; corelog's followers fetch at v12).
const FETCH_REPLICA_ID_IN_BODY_MAX: i16 = 14;

/// Whether a request is a follower's Fetch (replica id >= 0), which quotas do not count.
fn is_replica_fetch(api_key: i16, version: i16, body: &[u8]) -> bool {
    api_key == API_FETCH
        && version <= FETCH_REPLICA_ID_IN_BODY_MAX
        && body.len() >= 4
        && i32::from_be_bytes([body[0], body[1], body[2], body[3]]) >= 0
}

/// Counts a finished request against the client's consumer_byte_rate (Fetch) and
/// request_percentage quotas; writes the largest throttle time (with the produce one
/// decided on read) into the response and mutes the connection that long. Kafka (2.0+,
/// KIP-219) answers at once too and mutes after.
fn throttle(
    shard: &Shard,
    q: &mut ConnQuotas,
    (api_key, api_version, throttle_ms): (i16, i16, u64),
    spent_ns: u64,
    chunks: &mut [Bytes],
) {
    let m = &shard.broker.quotas;
    let mut ms = throttle_ms;
    if api_key == API_FETCH {
        let bytes: usize = chunks.iter().map(Bytes::len).sum();
        ms = ms.max(q.record(m, Kind::Fetch, bytes as u64));
    }
    ms = ms.max(q.record(m, Kind::Request, spent_ns));
    if ms == 0 {
        return;
    }
    q.mute(ms);
    let ms = i32::try_from(ms).unwrap_or(i32::MAX);
    if throttle_field::write(api_key, api_version, chunks, ms) {
        metrics::add(Counter::QuotaThrottledResponses, 1);
    }
}

/// The request-to-response time of a Produce or Fetch.
fn record_total(api_key: i16, received: Option<std::time::Instant>) {
    match api_key {
        API_PRODUCE => metrics::record_since(Stage::ProduceTotal, received),
        API_FETCH => metrics::record_since(Stage::FetchTotal, received),
        _ => {}
    }
}

/// One whole response frame in one buffer: size, header, body.
pub fn encode_frame(correlation_id: i32, flexible: bool, chunks: &[Bytes]) -> BytesMut {
    let body_len: usize = chunks.iter().map(Bytes::len).sum();
    let mut out = BytesMut::with_capacity(16 + body_len);
    out.put_i32(0);
    encode_response_header(&mut out, correlation_id, flexible);
    for c in chunks {
        out.extend_from_slice(c);
    }
    let total = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&total.to_be_bytes());
    out
}

/// Writes one response; returns the bytes written.
async fn write_response<S: Transport>(
    writer: &mut Writer<S>,
    correlation_id: i32,
    flexible: bool,
    chunks: Vec<Bytes>,
) -> std::io::Result<usize> {
    let mut head = BytesMut::with_capacity(16);
    head.put_i32(0);
    encode_response_header(&mut head, correlation_id, flexible);
    let body_len: usize = chunks.iter().map(Bytes::len).sum();
    let total = head.len() - 4 + body_len;
    head[..4].copy_from_slice(&(total as i32).to_be_bytes());
    let Some(fd) = writer.fd else {
        // TLS: rustls copies into its records anyway; flush so the response leaves now
        // rather than when the next one fills the TLS buffer.
        writer.half.write_all(&head).await?;
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            writer.half.write_all(c).await?;
        }
        writer.half.flush().await?;
        return Ok(total + 4);
    };
    if total <= COALESCE_BYTES_MAX {
        for c in &chunks {
            head.extend_from_slice(c);
        }
        writer.half.write_all(&head).await?;
        return Ok(total + 4);
    }
    let mut parts: Vec<Bytes> = Vec::with_capacity(chunks.len() + 1);
    parts.push(head.freeze());
    parts.extend(chunks.into_iter().filter(|c| !c.is_empty()));
    send_all(&mut writer.half, fd, parts).await?;
    Ok(total + 4)
}

/// Sends every part, gathering as many as the kernel takes per syscall; when the socket
/// buffer is full, waits for it with an ordinary async write of the next part.
async fn send_all<W: AsyncWrite + Unpin>(
    half: &mut W,
    fd: RawFd,
    mut parts: Vec<Bytes>,
) -> std::io::Result<()> {
    let mut first = 0;
    while first < parts.len() {
        let slices: Vec<IoSlice<'_>> = parts[first..]
            .iter()
            .take(runtime::IOVECS_MAX)
            .map(|b| IoSlice::new(b))
            .collect();
        let sent = match runtime::try_send_vectored(fd, &slices) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                half.write(&parts[first]).await?
            }
            Err(e) => return Err(e),
        };
        drop(slices);
        advance(&mut parts, &mut first, sent);
    }
    Ok(())
}

/// Drops `sent` bytes from the front of `parts[first..]`.
fn advance(parts: &mut [Bytes], first: &mut usize, mut sent: usize) {
    while sent > 0 && *first < parts.len() {
        let len = parts[*first].len();
        if sent >= len {
            sent -= len;
            *first += 1;
        } else {
            let _ = parts[*first].split_to(sent);
            sent = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_drops_whole_and_partial_parts() {
        let mut parts = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"defg"),
            Bytes::from_static(b"h"),
        ];
        let mut first = 0;
        advance(&mut parts, &mut first, 5);
        assert_eq!((first, &parts[1][..]), (1, &b"fg"[..]));
        advance(&mut parts, &mut first, 3);
        assert_eq!(first, 3);
    }
}
