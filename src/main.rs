//! The `corelog` binary: the broker (`corelog serve`) and, in time, its toolbox.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "corelog",
    version,
    about = "A Kafka-compatible event-streaming broker, thread-per-core on io_uring"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (Kafka clients connect on :9092 by default; data in ./data).
    #[command(
        after_help = "Examples:\n  corelog serve\n  corelog serve --config server.properties --override log.dirs=/d1,/d2\n  corelog serve --smp 2 --override listeners=PLAINTEXT://127.0.0.1:19092"
    )]
    Serve {
        /// A Kafka server.properties file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// key=value, with Kafka's property names; repeatable; later ones win.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Number of shards (one thread per core); default: one per core.
        #[arg(long)]
        smp: Option<usize>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CORELOG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            overrides,
            smp,
        } => match corelog::serve::run(config.as_deref(), &overrides, smp) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("corelog: {e}");
                ExitCode::from(2)
            }
        },
    }
}
