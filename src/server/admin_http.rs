//! The HTTP admin listener (`admin.listener`, default 127.0.0.1:9644 like Redpanda's
//! admin API), served by shard 0 only: `/metrics` (Prometheus text), `/v1/profile`
//! (stage quantiles as JSON, `?reset=true` starts a new window) and `/v1/status`.
//!
//! Bounds: at most [`ADMIN_CONNECTIONS_MAX`] connections at once (more get 503), a
//! request head of at most `metrics::http::REQUEST_BYTES_MAX` (else 431) read within
//! [`ADMIN_READ_TIMEOUT`] (else 408), one request per connection. Answering asks every
//! shard for a copy of its metrics through `Shard::run_on`; nothing is shared between
//! shards otherwise.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::future::{join_all, select, Either, FutureExt};
use futures::io::{AsyncReadExt, AsyncWriteExt};
use serde_json::json;

use crate::broker::shard::Shard;
use crate::metrics::http::{self, ParseError, Request};
use crate::metrics::profile::Profile;
use crate::metrics::prometheus::{self, BrokerGauges};
use crate::metrics::{self, Hist, ShardSnapshot};
use crate::runtime::{self, TcpListener, TcpStream};

/// Admin connections served at once; more are answered 503 and closed.
pub const ADMIN_CONNECTIONS_MAX: usize = 32;
/// Time a client has to send its request head.
pub const ADMIN_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// After answering, unread request bytes are drained (at most this many) so closing
/// does not reset the connection before the client reads the answer.
const DRAIN_BYTES_MAX: usize = 1 << 20;
const DRAIN_TIMEOUT: Duration = Duration::from_millis(200);

/// State of the admin listener on shard 0.
pub struct AdminServer {
    shard: Rc<Shard>,
    connections: Cell<usize>,
    /// The profile window: when it started and each shard's stage histograms then
    /// (`None`: the window starts at the broker's start).
    window: RefCell<(Instant, Vec<Option<Vec<Hist>>>)>,
}

impl AdminServer {
    pub fn new(shard: Rc<Shard>) -> Rc<AdminServer> {
        let started = shard.broker.started_at;
        let shards = shard.broker.shard_count;
        Rc::new(AdminServer {
            shard,
            connections: Cell::new(0),
            window: RefCell::new((started, vec![None; shards])),
        })
    }
}

/// Accepts admin connections until `stop` resolves.
pub async fn accept_loop(
    server: Rc<AdminServer>,
    listener: TcpListener,
    mut stop: futures::channel::oneshot::Receiver<()>,
) {
    loop {
        let accepted = {
            let accept = listener.accept();
            futures::pin_mut!(accept);
            match select(accept, &mut stop).await {
                Either::Left((r, _)) => r,
                Either::Right(_) => return,
            }
        };
        match accepted {
            Ok(stream) => {
                let s = server.clone();
                runtime::spawn_local(async move { serve_connection(s, stream).await });
            }
            Err(e) => {
                tracing::warn!("admin accept failed: {e}");
                runtime::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_connection(server: Rc<AdminServer>, mut stream: TcpStream) {
    if server.connections.get() >= ADMIN_CONNECTIONS_MAX {
        let busy = http::error_response(503, "too many admin connections", "");
        let _ = stream.write_all(&busy).await;
        return;
    }
    server.connections.set(server.connections.get() + 1);
    let answer = {
        let read = read_head(&mut stream);
        let timeout = runtime::sleep(ADMIN_READ_TIMEOUT);
        futures::pin_mut!(read, timeout);
        match select(read, timeout).await {
            Either::Left((Ok(Some(head)), _)) => match http::parse_request(&head) {
                Ok(req) => Some(route(&server, &req).await),
                Err(ParseError::TooLarge) => {
                    Some(http::error_response(431, "request too large", ""))
                }
                Err(ParseError::Malformed(why)) => Some(http::error_response(400, why, "")),
            },
            Either::Left((Ok(None), _)) => None,
            Either::Left((Err(ReadError::TooLarge), _)) => Some(http::error_response(
                431,
                "request head larger than 8 KiB",
                "",
            )),
            Either::Left((Err(ReadError::Incomplete), _)) => {
                Some(http::error_response(400, "incomplete request", ""))
            }
            Either::Right(_) => Some(http::error_response(408, "no complete request in time", "")),
        }
    };
    if let Some(answer) = answer {
        if stream.write_all(&answer).await.is_ok() {
            let _ = stream.flush().await;
            let _ = stream.shutdown(std::net::Shutdown::Write).await;
            drain(&mut stream).await;
        }
    }
    server.connections.set(server.connections.get() - 1);
}

enum ReadError {
    TooLarge,
    Incomplete,
}

/// Reads until the end of the request head. `Ok(None)`: the peer closed without
/// sending anything.
async fn read_head(stream: &mut TcpStream) -> Result<Option<Vec<u8>>, ReadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| ReadError::Incomplete)?;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Incomplete)
            };
        }
        // Only the new bytes (and the 3 before them) can complete the blank line.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = http::head_end(&buf[from..]) {
            buf.truncate(from + end);
            return Ok(Some(buf));
        }
        if buf.len() > http::REQUEST_BYTES_MAX {
            return Err(ReadError::TooLarge);
        }
    }
}

async fn drain(stream: &mut TcpStream) {
    let mut chunk = [0u8; 4096];
    let mut drained = 0;
    let deadline = runtime::sleep(DRAIN_TIMEOUT).fuse();
    futures::pin_mut!(deadline);
    while drained < DRAIN_BYTES_MAX {
        let read = stream.read(&mut chunk);
        futures::pin_mut!(read);
        match select(read, &mut deadline).await {
            Either::Left((Ok(n), _)) if n > 0 => drained += n,
            _ => return,
        }
    }
}

async fn route(server: &Rc<AdminServer>, req: &Request) -> Vec<u8> {
    let known = matches!(req.path.as_str(), "/metrics" | "/v1/profile" | "/v1/status");
    if !known {
        return http::error_response(
            404,
            "unknown path; try /metrics, /v1/profile, /v1/status",
            "",
        );
    }
    if req.method != "GET" {
        return http::error_response(405, "only GET is served", "Allow: GET\r\n");
    }
    match req.path.as_str() {
        "/metrics" => {
            let shards = gather(&server.shard).await;
            let mut text = prometheus::render(&shards, &gauges(&server.shard));
            let memory = gather_memory(&server.shard).await;
            metrics::memory::render(&mut text, &memory, &metrics::memory::ProcessMemory::read());
            http::response(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                text.as_bytes(),
                "",
            )
        }
        "/v1/profile" => {
            let reset = match req.query_value("reset") {
                None | Some("false") => false,
                Some("true") => true,
                Some(_) => return http::error_response(400, "reset must be true or false", ""),
            };
            let profile = profile(server, reset).await;
            json_response(&profile.to_json())
        }
        _ => json_response(&status(&server.shard)),
    }
}

fn json_response(v: &serde_json::Value) -> Vec<u8> {
    let mut body = v.to_string();
    body.push('\n');
    http::response(200, "application/json", body.as_bytes(), "")
}

/// Every shard's metrics, in shard order (a shard shutting down is left out).
pub async fn gather(shard: &Rc<Shard>) -> Vec<ShardSnapshot> {
    let asks = (0..shard.broker.shard_count).map(|id| {
        shard.run_on(id, move |s| {
            async move {
                metrics::snapshot(id).map(|mut snap| {
                    snap.replica_lag = s.replica_lag();
                    snap.txn_ongoing = crate::txn::probe::ongoing(&s);
                    snap.fetch_sessions_open = s.fetch_sessions.borrow().len() as u64;
                    snap
                })
            }
            .boxed_local()
        })
    });
    join_all(asks)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect()
}

/// Every shard's memory by structure (`broker::memory`), in shard order.
pub async fn gather_memory(shard: &Rc<Shard>) -> Vec<crate::broker::memory::ShardMemory> {
    let asks = (0..shard.broker.shard_count)
        .map(|id| shard.run_on(id, |s| async move { s.memory() }.boxed_local()));
    join_all(asks).await.into_iter().flatten().collect()
}

fn gauges(shard: &Shard) -> BrokerGauges {
    let b = &shard.broker;
    let offline = (0..b.log_dirs.len())
        .filter(|&d| b.dirs.is_offline(d))
        .count();
    // Cluster mode: partitions this broker leads, and those of them whose ISR lacks a
    // replica (Kafka's UnderReplicatedPartitions); 0 and 0 for a single broker.
    let me = b.config.node_id;
    let snap = b.metadata.snapshot();
    let led: Vec<_> = snap
        .topics
        .values()
        .flat_map(|t| t.replication.iter())
        .filter(|r| r.leader == me)
        .collect();
    BrokerGauges {
        leader_partitions: led.len(),
        under_replicated_partitions: led
            .iter()
            .filter(|r| r.isr.len() < r.replicas.len())
            .count(),
        shards: b.shard_count,
        uptime_seconds: b.started_at.elapsed().as_secs_f64(),
        log_dirs: b.log_dirs.len(),
        log_dirs_offline: offline,
        log_dir_failures: b.dirs.failures(),
        recording: b.config.metrics_enable,
    }
}

/// The current window's profile; with `reset`, a new window starts now.
async fn profile(server: &Rc<AdminServer>, reset: bool) -> Profile {
    let shards = gather(&server.shard).await;
    let now = Instant::now();
    let mut window = server.window.borrow_mut();
    let windows: Vec<(usize, Vec<Hist>)> = shards
        .iter()
        .map(|s| {
            let hs = match window.1.get(s.shard).and_then(Option::as_ref) {
                Some(base) => s.stages.iter().zip(base).map(|(h, b)| h.since(b)).collect(),
                None => s.stages.clone(),
            };
            (s.shard, hs)
        })
        .collect();
    let b = &server.shard.broker;
    let p = Profile::from_windows(
        now.duration_since(window.0).as_secs_f64(),
        b.config.metrics_enable,
        b.shard_count,
        &windows,
    );
    if reset {
        window.0 = now;
        for s in shards {
            if let Some(slot) = window.1.get_mut(s.shard) {
                *slot = Some(s.stages);
            }
        }
    }
    p
}

fn status(shard: &Shard) -> serde_json::Value {
    let b = &shard.broker;
    let dirs: Vec<serde_json::Value> = b
        .log_dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "path": d.display().to_string(),
                "online": !b.dirs.is_offline(i),
                "error": b.dirs.reason(i),
            })
        })
        .collect();
    let online = (0..b.log_dirs.len())
        .filter(|&d| !b.dirs.is_offline(d))
        .count();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "node_id": b.config.node_id,
        "cluster_id": b.cluster_id,
        "uptime_seconds": (b.started_at.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "shards": b.shard_count,
        "metrics_recording": b.config.metrics_enable,
        "log_dirs_online": online,
        "log_dirs_offline": b.log_dirs.len() - online,
        "log_dirs": dirs,
    })
}
