//! What each shard thread runs: open the partitions it owns, serve its mailbox, accept
//! connections once every shard is ready, and on shutdown close its logs.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{select, Either};

use crate::broker::router::PartitionCheckpoint;
use crate::broker::shard::{Shard, METADATA_SHARD};
use crate::broker::Broker;
use crate::runtime;
use crate::server::connection::{self, ConnInfo};

/// How often a shard checks whether all shards have finished start-up.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(2);

/// Runs shard `id` until shutdown. `started` reports start-up success or the reason it
/// failed; `closed` receives the partitions closed at shutdown.
pub async fn run(
    id: usize,
    broker: Arc<Broker>,
    started: std::sync::mpsc::Sender<Result<(), String>>,
) {
    crate::metrics::init_shard(broker.config.metrics_enable);
    let shard = Shard::new(id, broker.clone());
    let snap = broker.metadata.snapshot();
    if let Err(e) = shard.open_owned(&snap).await {
        let _ = started.send(Err(format!("shard {id}: {e}")));
        return;
    }
    match crate::groups::replay(&shard).await {
        Ok(n) if n > 0 => tracing::info!(shard = id, records = n, "replayed committed offsets"),
        Ok(_) => {}
        Err(e) => {
            let _ = started.send(Err(format!("shard {id}: {e}")));
            return;
        }
    }
    match crate::txn::coordinator::replay(&shard).await {
        Ok(n) if n > 0 => tracing::info!(shard = id, records = n, "replayed transaction state"),
        Ok(_) => {}
        Err(e) => {
            let _ = started.send(Err(format!("shard {id}: {e}")));
            return;
        }
    }
    let Some(inbox) = broker.take_inbox(id) else {
        let _ = started.send(Err(format!("shard {id}: mailbox already taken")));
        return;
    };
    let listeners = match bind_listeners(&broker) {
        Ok(l) => l,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let admin = match bind_admin(id, &broker) {
        Ok(a) => a,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    broker.mark_ready();
    while !broker.all_ready() {
        runtime::sleep(READY_POLL_INTERVAL).await;
    }
    let _ = started.send(Ok(()));
    let mut stops = Vec::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        stops.push(stop_tx);
        runtime::spawn_local(accept_loop(shard.clone(), listener, index, stop_rx));
    }
    let (admin_stop_tx, admin_stop_rx) = oneshot::channel::<()>();
    if let Some(listener) = admin {
        let server = crate::server::admin_http::AdminServer::new(shard.clone());
        runtime::spawn_local(crate::server::admin_http::accept_loop(
            server,
            listener,
            admin_stop_rx,
        ));
    }
    runtime::spawn_local(crate::groups::service::tick_loop(shard.clone()));
    runtime::spawn_local(crate::txn::coordinator::tick_loop(shard.clone()));
    runtime::spawn_local(crate::broker::maintenance::maintenance_loop(shard.clone()));
    if id == METADATA_SHARD {
        runtime::spawn_local(checkpoint_loop(shard.clone()));
    }
    let reply = shard.clone().serve_mailbox(inbox).await;
    for stop in stops {
        let _ = stop.send(());
    }
    let _ = admin_stop_tx.send(());
    let closed: Vec<PartitionCheckpoint> = shard.close_all().await;
    tracing::debug!(
        shard = id,
        partitions = closed.len(),
        "shard closed its logs"
    );
    if let Some(reply) = reply {
        let _ = reply.send(closed);
    }
}

/// Binds every client listener (`listeners`), in config order, on this shard.
fn bind_listeners(broker: &Broker) -> Result<Vec<runtime::TcpListener>, String> {
    broker
        .config
        .listeners
        .iter()
        .map(|l| {
            let addr = l.bind.bind_addr().map_err(|e| format!("listeners: {e}"))?;
            runtime::bind(addr).map_err(|e| format!("cannot listen on {addr} ({}): {e}", l.name))
        })
        .collect()
}

/// Binds the admin listener (`admin.listener`) on the metadata shard; other shards and
/// a disabled listener get `None`.
fn bind_admin(id: usize, broker: &Broker) -> Result<Option<runtime::TcpListener>, String> {
    let Some(l) = broker
        .config
        .admin_listener
        .as_ref()
        .filter(|_| id == METADATA_SHARD)
    else {
        return Ok(None);
    };
    let addr = l.bind_addr().map_err(|e| format!("admin.listener: {e}"))?;
    let listener = runtime::bind(addr)
        .map_err(|e| format!("cannot listen on {addr} (admin.listener): {e}"))?;
    let bound = listener.local_addr().map_or(addr, |a| a);
    tracing::info!(admin = %bound, "admin API (/metrics, /v1/profile, /v1/status) is serving");
    Ok(Some(listener))
}

/// Flushes every partition and writes the checkpoint files at Kafka's
/// `log.flush.offset.checkpoint.interval.ms`, so a restart after a crash re-validates
/// at most that interval's worth of log. Ends with the shard.
async fn checkpoint_loop(shard: Rc<Shard>) {
    let every = Duration::from_millis(shard.broker.config.log_flush_offset_checkpoint_interval_ms);
    loop {
        runtime::sleep(every).await;
        shard.write_checkpoints().await;
    }
}

/// How often a shard holding a connection at `max.connections` looks for a free slot.
/// Slots free on any shard, so this is a poll rather than a wake-up across cores.
const SLOT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A `max.connections` slot for the connection this shard just accepted: at once when
/// the broker is not full, else when one frees (the connection is not read meanwhile,
/// and this shard accepts nothing more, as Kafka's acceptor waits). None: stopping.
async fn wait_for_slot(
    shard: &Shard,
    stop: &mut oneshot::Receiver<()>,
) -> Option<crate::quota::conn_limits::Reservation> {
    let limits = &shard.broker.conn_limits;
    if let Some(r) = limits.try_reserve() {
        return Some(r);
    }
    tracing::info!(
        max_connections = shard.broker.config.quota.limits.max_connections,
        "max.connections reached: holding the new connection until one closes"
    );
    loop {
        let tick = runtime::sleep(SLOT_POLL_INTERVAL);
        futures::pin_mut!(tick);
        if let Either::Right(_) = select(tick, &mut *stop).await {
            return None;
        }
        if let Some(r) = limits.try_reserve() {
            tracing::info!("a connection slot is free: serving the held connection");
            return Some(r);
        }
    }
}

/// Accepts on listener `index` of `config.listeners` until `stop`; each connection
/// runs as its own task on this shard, TLS handshake included.
async fn accept_loop(
    shard: Rc<Shard>,
    listener: runtime::TcpListener,
    index: usize,
    mut stop: oneshot::Receiver<()>,
) {
    // Kafka never holds back the inter-broker listener's connections.
    let config = &shard.broker.config;
    let waits = config.cluster.is_none() || index != config.inter_broker.listener;
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
                let reserved = if waits {
                    match wait_for_slot(&shard, &mut stop).await {
                        Some(r) => Some(r),
                        None => return,
                    }
                } else {
                    None
                };
                runtime::spawn_local(start_connection(shard.clone(), stream, index, reserved))
            }
            Err(e) => {
                // Running out of descriptors is the usual cause; back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                runtime::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Runs one accepted connection: the TLS handshake first on a TLS listener (a failed one
/// closes only this connection, with a log line), then the request loop.
async fn start_connection(
    shard: Rc<Shard>,
    stream: runtime::TcpStream,
    listener: usize,
    reserved: Option<crate::quota::conn_limits::Reservation>,
) {
    let peer = connection::prepare(&stream);
    // Over a connection limit: closed before any byte is read or the TLS handshake.
    let _slot = match shard
        .broker
        .conn_limits
        .admit(listener, peer.map(|p| p.ip()), reserved)
    {
        Ok(slot) => slot,
        Err(why) => {
            crate::metrics::add(crate::metrics::Counter::ConnectionsRefused, 1);
            tracing::warn!(?peer, "refusing connection: {why}");
            return;
        }
    };
    // Over a connection creation rate (KIP-612): closed likewise, before TLS.
    if let Err(why) = shard.broker.quotas.admit_connection(peer.map(|p| p.ip())) {
        crate::metrics::add(crate::metrics::Counter::ConnectionsRefused, 1);
        tracing::warn!(?peer, "refusing connection: {why}");
        return;
    }
    let mut info = ConnInfo {
        peer,
        listener,
        principal: None,
        identity: Default::default(),
    };
    let tls = shard.broker.tls.get(listener).and_then(Option::as_ref);
    let Some(tls) = tls else {
        connection::serve(shard, stream, info).await;
        return;
    };
    match crate::server::tls::accept(tls.config(), stream).await {
        Ok((stream, principal)) => {
            crate::metrics::add(crate::metrics::Counter::TlsHandshakes, 1);
            info.principal = principal;
            connection::serve(shard, stream, info).await;
        }
        Err(e) => {
            crate::metrics::add(crate::metrics::Counter::TlsHandshakeFailures, 1);
            tracing::warn!(?peer, "closing connection: {e}");
        }
    }
}
