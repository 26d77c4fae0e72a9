//! `corelog serve`: the boot sequence, the shard threads, and a clean shutdown on
//! SIGTERM or SIGINT (stop accepting, finish in-flight writes, close every log, write the
//! checkpoint files).

use std::path::Path;
use std::sync::Arc;

use futures::channel::oneshot;

use crate::boot;
use crate::broker::metadata::MetadataStore;
use crate::broker::producer_ids::ProducerIds;
use crate::broker::router::{PartitionCheckpoint, ShardMsg};
use crate::broker::{Broker, Checkpoints};
use crate::config::BrokerConfig;
use crate::server::tls::{ClientTlsContext, Reloading};
use crate::storage::checkpoint::{
    self, LOG_START_OFFSET_CHECKPOINT_FILE as LOG_START_OFFSET_FILE,
    RECOVERY_POINT_CHECKPOINT_FILE as RECOVERY_POINT_FILE,
};

/// The metadata quorum's log and snapshot, in the first log dir (Kafka's name).
const CLUSTER_METADATA_DIR: &str = "__cluster_metadata-0";

pub fn run(
    config_file: Option<&Path>,
    overrides: &[String],
    smp: Option<usize>,
) -> Result<(), String> {
    let (config, warnings) =
        BrokerConfig::load(config_file, overrides, smp).map_err(|e| e.to_string())?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    let shards = config.shard_count();
    crate::txn::v2::finalize(true);
    boot::limits::check(shards).map_err(|e| e.to_string())?;
    boot::limits::tune_allocator();
    crate::storage::fault::arm_from_env();
    let cluster_id = match &config.cluster {
        Some(c) if config.cluster_id.is_empty() => c.derived_cluster_id(),
        _ => config.cluster_id.clone(),
    };
    let dirs = boot::dirs::prepare(&config.log_dirs, config.node_id, &cluster_id)
        .map_err(|e| e.to_string())?;
    let mut offline = dirs.offline.clone();
    let checkpoints = read_checkpoints(&config.log_dirs, &mut offline)?;
    let metadata = MetadataStore::open(&config.log_dirs[0], shards, config.log_dirs.len())?;
    let online: Vec<bool> = offline.iter().map(Option::is_none).collect();
    // A cluster's offsets topic is replicated and created through the quorum
    // (`cluster_sync`); a single broker keeps its own.
    if config.cluster.is_none() {
        metadata.ensure_topic_blocking(
            crate::groups::offsets::OFFSETS_TOPIC,
            config.offsets_topic_num_partitions,
            shards,
            &online,
            &crate::groups::offsets::offsets_topic_configs(),
        )?;
    }
    // Likewise `__transaction_state` (see ARCHITECTURE.md, Transactions across brokers).
    if config.cluster.is_none() {
        metadata.ensure_topic_blocking(
            crate::txn::TXN_STATE_TOPIC,
            config.txn.state_log_num_partitions,
            shards,
            &online,
            &crate::txn::log::txn_state_topic_configs(),
        )?;
    }
    let producer_ids =
        ProducerIds::open(&config.log_dirs[0]).map_err(|e| format!("producer ids: {e}"))?;
    let config_dir0 = config.log_dirs[0].clone();
    let users = if config.cluster.is_some() {
        crate::security::users::UserStore::open_in_cluster(&config_dir0)?
    } else {
        crate::security::users::UserStore::open(&config_dir0)?
    };
    let mut broker = Broker::new(
        config,
        dirs.cluster_id.clone(),
        metadata,
        producer_ids,
        checkpoints,
        offline,
        users,
    );
    for l in &broker.config.listeners {
        probe_listener(&l.bind, &format!("listeners ({})", l.name))?;
    }
    broker.tls = load_tls(&broker.config)?;
    // Every TLS configuration whose files are watched for changes.
    let mut watched: Vec<Arc<dyn crate::server::tls::Reload>> = broker
        .tls
        .iter()
        .flatten()
        .map(|c| c.clone() as Arc<dyn crate::server::tls::Reload>)
        .collect();
    if broker.config.cluster.is_none() {
        let authorizer = broker.config.authorizer.clone();
        broker.acls = crate::security::acl::AclStore::open(&broker.config.log_dirs[0], authorizer)?;
        broker.quotas = crate::quota::manager::QuotaManager::new(
            broker.config.quota.clone(),
            crate::quota::store::QuotaStore::open(&broker.config.log_dirs[0])?,
        );
    }
    if let Some(login) = broker.config.inter_broker.login.clone() {
        crate::replication::install_login(login);
    }
    if broker.config.cluster.is_some() {
        let inter = &broker.config.listeners[broker.config.inter_broker.listener];
        if let Some(tls) = &inter.tls {
            let config =
                crate::server::tls::ClientTlsContext::load_client(tls, "inter-broker client")
                    .map_err(|e| {
                        format!(
                            "the inter-broker listener {} (TLS towards the other brokers): {e}",
                            inter.name
                        )
                    })?;
            let config = Arc::new(config);
            watched.push(config.clone());
            crate::replication::install_tls(config);
        }
    }
    if let Some(tls) = broker
        .config
        .cluster
        .as_ref()
        .and_then(|c| c.controller_tls.as_ref())
    {
        let context = |e: String| format!("the controller listener (SSL): {e}");
        let server = Reloading::new(
            tls,
            crate::server::tls::server_config,
            "controller listener",
        )
        .map_err(context)?;
        let client = ClientTlsContext::load_client(tls, "controller client").map_err(context)?;
        let (server, client) = (Arc::new(server), Arc::new(client));
        watched.push(server.clone());
        watched.push(client.clone());
        crate::cluster::install_tls(server, client);
    }
    watch_tls(watched)?;
    if let Some(sasl) = broker
        .config
        .cluster
        .as_ref()
        .and_then(|c| c.controller_sasl.clone())
    {
        crate::cluster::install_sasl(sasl);
    }
    if let Some(mut cluster) = broker.config.cluster.clone() {
        cluster.cluster_id = broker.cluster_id.clone();
        crate::cluster::install_cluster_id(broker.cluster_id.clone());
        let metadata_dir = broker.config.log_dirs[0].join(CLUSTER_METADATA_DIR);
        let advertised = broker.config.advertised.clone();
        broker.cluster = Some(crate::cluster::start(cluster, metadata_dir, advertised)?);
    }
    let broker = Arc::new(broker);
    if let Some(cluster) = &broker.cluster {
        crate::broker::cluster_sync::follow_image(&broker, cluster);
    }
    if let Some(admin) = broker
        .config
        .admin_listener
        .as_ref()
        .filter(|l| l.port != 0)
    {
        probe_listener(admin, "admin.listener")?;
    }
    block_stop_signals();
    let handles = start_shards(&broker)?;
    let c = &broker.config;
    tracing::info!(
        listeners = %c
            .listeners
            .iter()
            .map(|l| format!("{}://{}:{} ({})", l.name, l.bind.host, l.bind.port, l.protocol.name()))
            .collect::<Vec<_>>()
            .join(","),
        advertised = %format!("{}:{}", c.advertised.host, c.advertised.port),
        shards,
        log_dirs = ?c.log_dirs,
        cluster_id = %broker.cluster_id,
        node_id = c.node_id,
        "corelog is serving"
    );
    let signal = wait_stop_signal();
    tracing::info!("received {signal}, shutting down");
    if let Some(cluster) = &broker.cluster {
        // Controlled shutdown: leaderships move before the shards stop serving.
        match cluster.controlled_shutdown_blocking() {
            Ok(()) => {
                // Clients are told of the new leaders once the topic table has
                // followed the image; a short, bounded wait for that.
                let me = broker.config.node_id;
                let deadline = std::time::Instant::now() + CONTROLLED_SHUTDOWN_SETTLE;
                while leads_any(&broker.metadata.snapshot(), me)
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                tracing::info!("fenced through the quorum: leaderships moved");
            }
            Err((_, why)) => tracing::warn!("controlled shutdown incomplete: {why}"),
        }
    }
    let closed = stop_shards(&broker);
    broker.write_checkpoints_blocking(&closed)?;
    for h in handles {
        let _ = h.join();
    }
    drop(dirs);
    tracing::info!(partitions = closed.len(), "shut down cleanly");
    Ok(())
}

/// Loads the certificates of every TLS listener; a file that does not load is a
/// start-up error naming it.
fn load_tls(
    config: &BrokerConfig,
) -> Result<Vec<Option<Arc<crate::server::tls::TlsContext>>>, String> {
    let contexts = config
        .listeners
        .iter()
        .map(|l| match &l.tls {
            Some(s) => crate::server::tls::TlsContext::load(s)
                .map(|c| Some(Arc::new(c)))
                .map_err(|e| format!("listener {}: {e}", l.name)),
            None => Ok(None),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(contexts)
}

/// Watches the files of every TLS configuration for changes (`TLS_RELOAD_INTERVAL`):
/// the listeners', and those this broker shows to the others.
fn watch_tls(watched: Vec<Arc<dyn crate::server::tls::Reload>>) -> Result<(), String> {
    if !watched.is_empty() {
        std::thread::Builder::new()
            .name("tls-reload".into())
            .spawn(move || loop {
                std::thread::sleep(TLS_RELOAD_INTERVAL);
                for c in &watched {
                    c.reload_if_changed();
                }
            })
            .map_err(|e| format!("cannot start the TLS reload thread: {e}"))?;
    }
    Ok(())
}

/// How often the keystore and truststore files are checked for changes: a renewed
/// certificate is served to new connections within this long, without a restart.
const TLS_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// How long the start-up probe waits for an answer on the listener address.
const LISTENER_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(300);
/// How long the probe keeps finding a listener before it gives up. A broker killed a
/// moment ago can keep accepting briefly: the kernel tears its io_uring (which holds the
/// listening socket) down after the process has exited.
const LISTENER_PROBE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// Every shard binds the listener with SO_REUSEPORT (glommio sets it on every listening
/// socket, the admin listener's too), which would let this broker share a port with
/// another process that also uses it (another corelog) and silently split the clients
/// between the two. So first try to connect: if something accepts, refuse to start. (A plain bind would be refused by the dying connections of a broker that just
/// stopped on this port, which are no reason to fail a restart.)
fn probe_listener(l: &crate::config::Listener, key: &str) -> Result<(), String> {
    let addr = l.bind_addr().map_err(|e| format!("{key}: {e}"))?;
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect_timeout(&target, LISTENER_PROBE_TIMEOUT).is_ok() {
        if started.elapsed() >= LISTENER_PROBE_PATIENCE {
            return Err(format!(
                "cannot listen on {addr}: another process is already listening there \
                 (another broker?); stop it or choose another port in {key}"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

fn start_shards(broker: &Arc<Broker>) -> Result<Vec<crate::runtime::ShardHandle>, String> {
    let cpus = core_affinity::get_core_ids().unwrap_or_default();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut handles = Vec::new();
    for id in 0..broker.shard_count {
        // Pin when there is a core per shard; more shards than cores run unpinned.
        let cpu = (broker.shard_count <= cpus.len()).then(|| cpus[id].id);
        let (b, tx) = (broker.clone(), tx.clone());
        let h =
            crate::runtime::spawn_shard(id, cpu, move || crate::server::shard_main::run(id, b, tx))
                .map_err(|e| format!("cannot start shard {id}: {e}"))?;
        handles.push(h);
    }
    for _ in 0..broker.shard_count {
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a shard stopped during start-up".into()),
        }
    }
    Ok(handles)
}

fn stop_shards(broker: &Arc<Broker>) -> Vec<PartitionCheckpoint> {
    let replies: Vec<_> = (0..broker.shard_count)
        .map(|id| {
            let (reply, rx) = oneshot::channel();
            broker.send(id, ShardMsg::Shutdown { reply });
            rx
        })
        .collect();
    replies
        .into_iter()
        .flat_map(|rx| futures::executor::block_on(rx).unwrap_or_default())
        .collect()
}

/// Reads every usable dir's checkpoint files. A dir whose files cannot be read is taken
/// offline (`offline[i]` gets the reason), except the first, which must be usable.
fn read_checkpoints(
    dirs: &[std::path::PathBuf],
    offline: &mut [Option<String>],
) -> Result<Checkpoints, String> {
    let mut cp = Checkpoints::default();
    for (i, d) in dirs.iter().enumerate() {
        // One cleaner checkpoint per dir, in dir order (empty for an offline dir).
        cp.cleaner_offsets.push(Default::default());
        if offline[i].is_some() {
            continue;
        }
        let read = |file: &str| {
            let path = d.join(file);
            crate::storage::fault::check(&path)
                .and_then(|()| checkpoint::read_checkpoint_blocking(&path))
        };
        let all = (|| {
            Ok::<_, crate::storage::StorageError>((
                read(RECOVERY_POINT_FILE)?,
                read(LOG_START_OFFSET_FILE)?,
                read(checkpoint::CLEANER_OFFSET_CHECKPOINT_FILE)?,
            ))
        })();
        match all {
            Ok((recovery, start, cleaner)) => {
                cp.recovery_points.extend(recovery);
                cp.log_start_offsets.extend(start);
                cp.cleaner_offsets[i] = cleaner;
            }
            Err(e) if i > 0 => {
                tracing::error!(
                    "{e}; starting without log dir {} (its partitions are offline)",
                    d.display()
                );
                offline[i] = Some(e.to_string());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(cp)
}

fn stop_signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM and SIGINT in this thread before the shards start, so every shard
/// thread inherits the mask and only `wait_stop_signal` receives them.
fn block_stop_signals() {
    let set = stop_signal_set();
    // SAFETY: changes this thread's signal mask only.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

fn wait_stop_signal() -> &'static str {
    let set = stop_signal_set();
    let mut sig: libc::c_int = 0;
    // SAFETY: sigwait reads the set and writes the signal number.
    unsafe { libc::sigwait(&set, &mut sig) };
    if sig == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

/// How long a stopping cluster member waits for its topic table to show its
/// leaderships gone after the quorum moved them.
const CONTROLLED_SHUTDOWN_SETTLE: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether broker `me` leads any replicated partition in `snap`.
fn leads_any(snap: &crate::broker::metadata::Snapshot, me: i32) -> bool {
    snap.topics
        .values()
        .flat_map(|t| t.replication.iter())
        .any(|r| r.leader == me)
}
