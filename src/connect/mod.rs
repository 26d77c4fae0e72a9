//! `corelog connect standalone <worker.properties> <connector.properties>...`: a
//! standalone Kafka Connect worker in the one binary, with Kafka's file connectors
//! (FileStreamSource, FileStreamSink), converters (JSON with and without schemas,
//! String, ByteArray), offset file and REST API. It is a client of any
//! Kafka-compatible broker through the toolbox's protocol client (src/cli), and runs on
//! plain threads: one per connector task, a few for the REST API, the main thread
//! waiting for SIGINT/SIGTERM to stop everything cleanly.
//!
//! ```text
//!   main ── reads the property files ──▶ Worker ──spawns──▶ task thread per connector
//!     │                                   ▲   │               file_source / file_sink
//!     │ SIGTERM: stop_all                 │   └── OffsetStore (offset.storage.file.filename)
//!     └── Rest (tiny_http, REST_THREADS) ─┘  put / pause / resume / restart / delete
//! ```

pub mod config;
pub mod converters;
pub mod file_sink;
pub mod file_source;
pub mod offsets;
pub mod rest;
pub mod task;
pub mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use config::{read_properties, ConnectorConfig, WorkerConfig};

/// How often the main thread looks for a stop signal.
const SIGNAL_POLL_INTERVAL: Duration = Duration::from_millis(100);

#[derive(clap::Args)]
pub struct ConnectArgs {
    #[command(subcommand)]
    pub mode: ConnectMode,
}

#[derive(clap::Subcommand)]
pub enum ConnectMode {
    /// One worker process with its connectors, like connect-standalone.sh.
    #[command(
        after_help = "Example (Kafka's stock files, bootstrap.servers pointing at the broker):\n  corelog connect standalone config/connect-standalone.properties \\\n      config/connect-file-source.properties config/connect-file-sink.properties\n\nConnectors: FileStreamSource and FileStreamSink (no plugins). Converters: JsonConverter,\nStringConverter, ByteArrayConverter. The REST API listens on `listeners`\n(default http://:8083). SIGINT/SIGTERM stop it cleanly: sources store their file\npositions, sinks flush their files and commit."
    )]
    Standalone {
        /// The worker's properties (connect-standalone.properties).
        worker: PathBuf,
        /// One properties file per connector (connect-file-source.properties, ...).
        connectors: Vec<PathBuf>,
    },
}

/// Runs until SIGINT/SIGTERM. Exit 0 after a clean stop, 2 for bad property files, 1
/// when the worker cannot start (offset file unreadable, REST port taken).
pub fn run(args: ConnectArgs) -> ExitCode {
    let ConnectMode::Standalone { worker, connectors } = args.mode;
    let (worker_cfg, connector_cfgs) = match load(&worker, &connectors) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("corelog connect: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("corelog connect: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    }
    let worker = match worker::Worker::new(worker_cfg) {
        Ok(w) => Arc::new(w),
        Err(e) => {
            eprintln!("corelog connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rest = match rest::Rest::start(Arc::clone(&worker)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("corelog connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "corelog connect: worker {} (REST API on http://{}), broker {}, {} connectors",
        worker.config.worker_id,
        worker.config.rest_addr,
        worker.config.bootstrap,
        connector_cfgs.len()
    );
    for cfg in connector_cfgs {
        tracing::info!("{}: starting {}", cfg.name, cfg.kind.type_name());
        worker.put(cfg);
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(SIGNAL_POLL_INTERVAL);
    }
    tracing::info!("corelog connect: stopping (sources store their positions, sinks commit)");
    rest.stop();
    worker.stop_all();
    tracing::info!("corelog connect: stopped");
    ExitCode::SUCCESS
}

fn load(
    worker: &std::path::Path,
    connectors: &[PathBuf],
) -> Result<(WorkerConfig, Vec<ConnectorConfig>), String> {
    let wfile = worker.display().to_string();
    let worker_cfg =
        WorkerConfig::from_properties(&wfile, read_properties(worker).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let mut cfgs: Vec<ConnectorConfig> = Vec::new();
    for path in connectors {
        let file = path.display().to_string();
        let props = read_properties(path).map_err(|e| e.to_string())?;
        let cfg = ConnectorConfig::from_properties(&file, props, &worker_cfg)
            .map_err(|e| e.to_string())?;
        if cfgs.iter().any(|c| c.name == cfg.name) {
            return Err(format!("{file}: a second connector named {}", cfg.name));
        }
        cfgs.push(cfg);
    }
    Ok((worker_cfg, cfgs))
}
