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
    /// Check (read-only) the host settings that matter to a broker.
    Tune {
        #[command(subcommand)]
        action: TuneAction,
    },
}

#[derive(Subcommand)]
enum TuneAction {
    /// Say, for each setting, what it is, what it should be and why. Changes nothing,
    /// needs no root. Exit code 1 when a check fails, 0 otherwise.
    #[command(
        after_help = "Examples:\n  corelog tune check\n  corelog tune check --log-dirs /mnt/d1,/mnt/d2 --output json"
    )]
    Check {
        /// Log dirs whose file system and disk scheduler to check (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "data")]
        log_dirs: Vec<PathBuf>,
        /// Shards the broker will run (for the locked-memory check); default one per core.
        #[arg(long)]
        smp: Option<usize>,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Output {
    Text,
    Json,
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
        Command::Tune {
            action:
                TuneAction::Check {
                    log_dirs,
                    smp,
                    output,
                },
        } => {
            let shards =
                smp.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let checks = corelog::tune::run_checks(shards, &log_dirs);
            match output {
                Output::Text => print!("{}", corelog::tune::render_text(&checks)),
                Output::Json => println!("{}", corelog::tune::render_json(&checks)),
            }
            if checks
                .iter()
                .any(|c| c.status == corelog::tune::Status::Fail)
            {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
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
