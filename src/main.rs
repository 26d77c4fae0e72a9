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
    /// Create, list, describe and delete topics on any Kafka-compatible broker.
    #[command(
        after_help = "Examples:\n  corelog topic create weblogs --partitions 3\n  corelog topic list\n  corelog topic describe weblogs --output json\n  corelog topic delete weblogs"
    )]
    Topic {
        /// Broker list, host:port[,host:port...].
        #[arg(short = 'b', long, env = corelog::cli::client::BROKERS_ENV, default_value = corelog::cli::client::BROKERS_DEFAULT, global = true)]
        bootstrap: String,
        #[arg(long, value_enum, default_value = "text", global = true)]
        output: Output,
        #[command(subcommand)]
        action: TopicAction,
    },
    /// List consumer groups, or describe one with its members and lag.
    #[command(
        after_help = "Examples:\n  corelog group list\n  corelog group describe billing --output json"
    )]
    Group {
        /// Broker list, host:port[,host:port...].
        #[arg(short = 'b', long, env = corelog::cli::client::BROKERS_ENV, default_value = corelog::cli::client::BROKERS_DEFAULT, global = true)]
        bootstrap: String,
        #[arg(long, value_enum, default_value = "text", global = true)]
        output: Output,
        #[command(subcommand)]
        action: GroupAction,
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

#[derive(Subcommand)]
enum TopicAction {
    /// Every topic with its partition count.
    List,
    /// One topic, partition by partition (leader, replicas, in-sync replicas).
    Describe { name: String },
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i16,
    },
    /// Delete a topic and its data.
    Delete { name: String },
}

#[derive(Subcommand)]
enum GroupAction {
    /// Every group with its state.
    List,
    /// One group: state, members, and per partition its committed offset, log end and lag.
    Describe { group: String },
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
        Command::Topic {
            bootstrap,
            output,
            action,
        } => run_topic(&bootstrap, output, action),
        Command::Group {
            bootstrap,
            output,
            action,
        } => run_group(&bootstrap, output, action),
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

/// Exit codes scripts can trust: 0 done, 1 the broker refused (error code printed),
/// 2 no broker reached or an unreadable answer.
fn run_topic(bootstrap: &str, output: Output, action: TopicAction) -> ExitCode {
    use corelog::cli::topic::{self, TopicError};
    let result = corelog::cli::client::Client::connect(bootstrap)
        .map_err(TopicError::from)
        .and_then(|mut client| match action {
            TopicAction::List => topic::list(&mut client).map(|t| (t, false)),
            TopicAction::Describe { name } => {
                topic::describe(&mut client, &name).map(|t| (vec![t], true))
            }
            TopicAction::Create {
                name,
                partitions,
                replication_factor,
            } => topic::create(&mut client, &name, partitions, replication_factor)
                .map(|()| (vec![], false)),
            TopicAction::Delete { name } => {
                topic::delete(&mut client, &name).map(|()| (vec![], false))
            }
        });
    finish(result.map(|(topics, per_partition)| match output {
        Output::Text => topic::render_text(&topics, per_partition),
        Output::Json => topic::render_json(&topics) + "\n",
    }))
}

/// Prints a tool's output or error and picks the exit code scripts rely on: 0 done,
/// 1 the broker refused (its error code is in the message), 2 no broker reached.
fn finish(result: Result<String, corelog::cli::topic::TopicError>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e @ corelog::cli::topic::TopicError::Broker { .. }) => {
            eprintln!("corelog: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("corelog: {e}");
            ExitCode::from(2)
        }
    }
}

/// Exit codes as for `topic`: 0 done, 1 the broker refused, 2 no broker reached.
fn run_group(bootstrap: &str, output: Output, action: GroupAction) -> ExitCode {
    use corelog::cli::group;
    use corelog::cli::topic::TopicError;
    let result = corelog::cli::client::Client::connect(bootstrap)
        .map_err(TopicError::from)
        .and_then(|mut client| match action {
            GroupAction::List => group::list(&mut client).map(|g| match output {
                Output::Text => group::render_list_text(&g),
                Output::Json => group::render_list_json(&g) + "\n",
            }),
            GroupAction::Describe { group: name } => {
                group::describe(&mut client, &name).map(|d| match output {
                    Output::Text => group::render_describe_text(&d),
                    Output::Json => group::render_describe_json(&d) + "\n",
                })
            }
        });
    finish(result)
}
