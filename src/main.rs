//! The `corelog` binary: the broker (`corelog serve`) and its toolbox.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use corelog::cli::client::{Cluster, BROKERS_DEFAULT, BROKERS_ENV};
use corelog::cli::consume::{Format, Start};
use corelog::cli::produce::Partitioner;
use corelog::cli::reset_offsets::TopicSpec;
use corelog::cli::topic::TopicError;

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
    /// List, describe and delete consumer groups; reset their committed offsets.
    #[command(
        after_help = "Examples:\n  corelog group list\n  corelog group describe billing --output json\n  corelog group reset-offsets billing --topic weblogs --to-earliest\n  corelog group reset-offsets billing --topic weblogs:0,1 --shift-by -10 --execute\n  corelog group delete billing old-billing"
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
    /// Write one record per input line (stdin or --file), like kafka-console-producer.
    #[command(
        after_help = "Examples:\n  corelog produce weblogs < lines.txt\n  echo hello | corelog produce weblogs\n  printf 'user1:clicked\\nuser2:bought\\n' | corelog produce weblogs --key-separator :\n  corelog produce weblogs --file events.txt --compression zstd --acks all --output json\n  corelog produce weblogs --header source=cli --header v=2 --partition 0 < more.txt\n\nKeyed records go to murmur2(key) % partitions, the partition the Java client and\nlibrdkafka's murmur2_random choose; keyless ones stick to one partition per batch.\nExit codes: 0 every record acknowledged, 1 the broker refused (error named),\n2 bad input or command line, or no broker reached."
    )]
    Produce {
        topic: String,
        #[command(flatten)]
        conn: Conn,
        /// Split each line into KEY and VALUE at the first occurrence of this string.
        #[arg(long)]
        key_separator: Option<String>,
        /// A header added to every record; repeatable.
        #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// 0 (no answer), 1 (leader wrote it) or all (every in-sync replica has it).
        #[arg(long, default_value = "all", value_parser = parse_acks)]
        acks: i16,
        #[arg(long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
        compression: String,
        /// How long a batch may wait for more records before it is sent.
        #[arg(long, default_value_t = 5)]
        linger_ms: u64,
        /// A partition's batch is sent once it holds this many bytes.
        #[arg(long = "batch-size", default_value_t = 16384, value_name = "BYTES")]
        batch_bytes: usize,
        /// Write every record to this partition.
        #[arg(long)]
        partition: Option<i32>,
        #[arg(long, value_enum, default_value = "murmur2")]
        partitioner: Partitioner,
        /// Read lines from this file instead of stdin.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Print records as they arrive, like kafka-console-consumer; Ctrl-C ends it (exit 0).
    #[command(
        after_help = "Examples:\n  corelog consume weblogs\n  corelog consume weblogs --from-beginning --max-messages 10 --format json\n  corelog consume weblogs --partition 2 --offset 1200 --format kv --key-separator ' => '\n  corelog consume weblogs --group billing --timeout-ms 5000\n\nWithout --group: all partitions (or --partition) from latest, --from-beginning or --offset.\nWith --group: a member of the consumer group (range assignment, interoperates with\nlibrdkafka and Java members) that starts at the committed offsets and commits what it\nprinted, periodically and on exit."
    )]
    Consume {
        topic: String,
        #[command(flatten)]
        conn: Conn,
        /// Start at the earliest offset (where nothing was committed).
        #[arg(long, conflicts_with = "offset")]
        from_beginning: bool,
        /// Start at this offset, or earliest / latest (where nothing was committed).
        #[arg(long, value_name = "N|earliest|latest")]
        offset: Option<Start>,
        /// Read only this partition (without --group).
        #[arg(long, conflicts_with = "group")]
        partition: Option<i32>,
        /// Join this consumer group.
        #[arg(long)]
        group: Option<String>,
        /// Stop after this many records.
        #[arg(long)]
        max_messages: Option<u64>,
        /// Stop after this long without a new record.
        #[arg(long)]
        timeout_ms: Option<u64>,
        #[arg(long, value_enum, default_value = "value")]
        format: Format,
        /// Between key and value with --format kv.
        #[arg(long, default_value = "\t")]
        key_separator: String,
    },
    /// Measure throughput and latency against any Kafka-compatible broker.
    #[command(
        after_help = "Examples:\n  corelog bench produce --topic bench --partitions 4 --create --seconds 10\n  corelog bench produce --topic bench --rate 100000 --acks all --output json > a.json\n  corelog bench consume --topic bench\n  corelog bench e2e --topic lat --create --rate 5000 --seconds 10 --report lat.html\n  corelog bench compare a.json b.json\n\nWorkers are threads pinned one per core, each owning its connections; Produce requests\nare pipelined (--max-in-flight per connection) and built once before the clock starts.\nWith --rate the load follows a fixed schedule and latency is measured from each record's\nintended send time, so a stalled sender cannot hide latency (no coordinated omission).\nThe warm-up (--warmup-seconds) is excluded from the results. Exit codes: 0 done,\n1 the run saw errors (refused or lost requests), 2 bad command line or no broker\nreached, 3 the watchdog ended an overrunning run."
    )]
    Bench {
        #[command(subcommand)]
        action: BenchAction,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  corelog completion bash > /etc/bash_completion.d/corelog\n  corelog completion zsh > \"${fpath[1]}/_corelog\"\n  corelog completion fish > ~/.config/fish/completions/corelog.fish"
    )]
    Completion {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Check (read-only) the host settings that matter to a broker.
    Tune {
        #[command(subcommand)]
        action: TuneAction,
    },
}

/// Where the brokers are and how to print; shared by produce and consume.
#[derive(clap::Args)]
struct Conn {
    /// Broker list, host:port[,host:port...].
    #[arg(short = 'b', long, env = BROKERS_ENV, default_value = BROKERS_DEFAULT)]
    bootstrap: String,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Subcommand)]
enum BenchAction {
    /// Producer throughput and delivery latency (send → ack).
    Produce(BenchArgs),
    /// Consumer throughput and fetch latency: reads the topic from the beginning to the end
    /// it had at the start (or --seconds / --count).
    Consume(BenchArgs),
    /// Produce → consume latency: producers stamp each record, consumers in the same
    /// process read the stamps back.
    E2e(BenchArgs),
    /// Two JSON results side by side, with B/A ratios.
    Compare {
        a: PathBuf,
        b: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Broker list, host:port[,host:port...].
    #[arg(short = 'b', long, env = BROKERS_ENV, default_value = BROKERS_DEFAULT)]
    bootstrap: String,
    #[arg(long, default_value = "corelog-bench")]
    topic: String,
    /// Partitions when --create creates the topic.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Create the topic first (an existing one is used as it is).
    #[arg(long)]
    create: bool,
    /// Measured seconds (after the warm-up); default 10 unless --count is given.
    #[arg(long)]
    seconds: Option<u64>,
    /// Measured records; the run ends when they are sent (or received).
    #[arg(long)]
    count: Option<u64>,
    /// Seconds of load before measuring; default 1 (produce, e2e), 0 (consume).
    #[arg(long)]
    warmup_seconds: Option<u64>,
    /// Worker threads, each pinned to a core; default one per core.
    #[arg(long)]
    threads: Option<usize>,
    /// Connections per broker, spread over the threads; default one per thread.
    #[arg(long)]
    connections: Option<usize>,
    /// Produce requests in flight per connection.
    #[arg(long, default_value_t = 5)]
    max_in_flight: usize,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    message_size: usize,
    /// Bytes of records per batch (one batch per Produce request).
    #[arg(long, default_value_t = 65536, value_name = "BYTES")]
    batch_size: usize,
    /// With --rate: how long a batch waits for more due records.
    #[arg(long, default_value_t = 1)]
    linger_ms: u64,
    #[arg(long, default_value = "all", value_parser = ["0", "1", "all"])]
    acks: String,
    #[arg(long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    compression: String,
    #[arg(long, value_enum, default_value = "random")]
    payload: corelog::cli::bench::payload::PayloadKind,
    /// Records per second in total, on a fixed schedule; latency then counts from each
    /// record's intended send time, so a stalled sender cannot hide it (no coordinated
    /// omission). Default: flat out (closed loop).
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
    /// Also write a self-contained HTML report (SVG charts) to this file.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// Also report this process's CPU time (the broker's, on the same machine).
    #[arg(long)]
    broker_pid: Option<u32>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))
}

fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        _ => Err(format!("{s:?}: expected 0, 1 or all")),
    }
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
    /// Delete groups and their committed offsets (only groups without members).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Plan (dry run) or, with --execute, commit new offsets for an inactive group.
    #[command(
        group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime", "shift_by"])),
        after_help = "Examples:\n  corelog group reset-offsets billing --topic weblogs --to-earliest\n  corelog group reset-offsets billing --topic weblogs:0,2 --to-offset 100 --execute\n  corelog group reset-offsets billing --topic weblogs --to-datetime 2026-11-22T10:00:00Z\n  corelog group reset-offsets billing --topic weblogs --shift-by -5 --output json\n\nTargets are clamped into [earliest, latest] of each partition. The group must have no\nmembers: stop its consumers first."
    )]
    ResetOffsets {
        group: String,
        /// TOPIC (every partition) or TOPIC:P,P; repeatable.
        #[arg(long = "topic", required = true, value_name = "TOPIC[:P,P]")]
        topics: Vec<TopicSpec>,
        #[arg(long)]
        to_earliest: bool,
        #[arg(long)]
        to_latest: bool,
        #[arg(long, value_name = "N")]
        to_offset: Option<i64>,
        /// YYYY-MM-DDTHH:mm:SS[.sss][Z|+hh:mm] (local time without a zone).
        #[arg(long, value_name = "DATETIME", value_parser = corelog::cli::reset_offsets::parse_datetime)]
        to_datetime: Option<i64>,
        /// Move the committed offset by N (negative: back).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        shift_by: Option<i64>,
        /// Commit the new offsets (without it: only print them).
        #[arg(long)]
        execute: bool,
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
        Command::Produce {
            topic,
            conn,
            key_separator,
            headers,
            acks,
            compression,
            linger_ms,
            batch_bytes,
            partition,
            partitioner,
            file,
        } => {
            let opts = corelog::cli::produce::ProduceOptions {
                topic,
                key_separator,
                headers,
                acks,
                compression: corelog::cli::records::parse_compression(&compression)
                    .expect("clap allows only known codecs"),
                linger: Duration::from_millis(linger_ms),
                batch_bytes: batch_bytes.max(1),
                partition,
                partitioner,
            };
            run_produce(&conn, &opts, file)
        }
        Command::Consume {
            topic,
            conn,
            from_beginning,
            offset,
            partition,
            group,
            max_messages,
            timeout_ms,
            format,
            key_separator,
        } => {
            let start = if from_beginning {
                Start::Earliest
            } else {
                offset.unwrap_or(Start::Latest)
            };
            let opts = corelog::cli::consume::ConsumeOptions {
                topic,
                start,
                partition,
                group,
                max_messages,
                timeout: timeout_ms.map(Duration::from_millis),
                format,
                key_separator,
            };
            finish(
                Cluster::connect(&conn.bootstrap)
                    .map_err(TopicError::from)
                    .and_then(|mut c| corelog::cli::consume::run(&mut c, &opts))
                    .map(|_| String::new()),
            )
        }
        Command::Bench { action } => run_bench(action),
        Command::Completion { shell } => {
            let shell = match shell {
                CompletionShell::Bash => clap_complete::Shell::Bash,
                CompletionShell::Zsh => clap_complete::Shell::Zsh,
                CompletionShell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "corelog",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
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
fn finish(result: Result<String, TopicError>) -> ExitCode {
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(
            e @ (corelog::cli::topic::TopicError::Broker { .. }
            | corelog::cli::topic::TopicError::Refused(_)),
        ) => {
            eprintln!("corelog: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("corelog: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_produce(
    conn: &Conn,
    opts: &corelog::cli::produce::ProduceOptions,
    file: Option<PathBuf>,
) -> ExitCode {
    let input: Box<dyn std::io::BufRead + Send> = match file {
        Some(path) => match std::fs::File::open(&path) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("corelog: cannot read {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let output = conn.output;
    finish(
        Cluster::connect(&conn.bootstrap)
            .map_err(TopicError::from)
            .and_then(|mut c| corelog::cli::produce::run(&mut c, opts, input))
            .map(|summary| match output {
                Output::Text => String::new(),
                Output::Json => corelog::cli::produce::render_json(&summary) + "\n",
            }),
    )
}

/// Exit codes: 0 done, 1 the run saw errors, 2 bad command line or no broker reached,
/// 3 (from the watchdog) an overrunning run.
fn run_bench(action: BenchAction) -> ExitCode {
    use corelog::cli::bench::{self, report, Mode};
    let (mode, a) = match action {
        BenchAction::Produce(a) => (Mode::Produce, a),
        BenchAction::Consume(a) => (Mode::Consume, a),
        BenchAction::E2e(a) => (Mode::E2e, a),
        BenchAction::Compare { a, b, output } => return run_bench_compare(&a, &b, output),
    };
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let cfg = bench::Config {
        mode,
        bootstrap: a.bootstrap,
        topic: a.topic,
        partitions: a.partitions,
        create: a.create,
        seconds: a.seconds,
        count: a.count,
        warmup_seconds: a
            .warmup_seconds
            .unwrap_or(if mode == Mode::Consume { 0 } else { 1 }),
        threads,
        connections: a.connections.unwrap_or(threads),
        max_in_flight: a.max_in_flight,
        message_size: a.message_size,
        batch_size: a.batch_size,
        linger_ms: a.linger_ms,
        acks: a.acks,
        compression: a.compression,
        payload: a.payload,
        rate: a.rate,
    };
    let r = match bench::run(&cfg, a.broker_pid) {
        Ok(r) => r,
        Err(e) => return finish(Err(e)),
    };
    if let Some(path) = &a.report {
        if let Err(e) = std::fs::write(path, report::render_html(&r)) {
            eprintln!("corelog: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    match a.output {
        Output::Text => print!("{}", report::render_text(&r)),
        Output::Json => println!("{}", report::render_json(&r)),
    }
    if r.results.errors > 0 {
        eprintln!("corelog: {} requests failed or were lost", r.results.errors);
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn run_bench_compare(a: &std::path::Path, b: &std::path::Path, output: Output) -> ExitCode {
    use corelog::cli::bench::report;
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| report::parse_json(&t))
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    match (read(a), read(b)) {
        (Ok(ra), Ok(rb)) => {
            match output {
                Output::Text => print!("{}", report::render_compare_text(&ra, &rb)),
                Output::Json => println!("{}", report::render_compare_json(&ra, &rb)),
            }
            ExitCode::SUCCESS
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("corelog: {e}");
            ExitCode::from(2)
        }
    }
}

/// Exit codes as for `topic`: 0 done, 1 the broker refused, 2 no broker reached.
fn run_group(bootstrap: &str, output: Output, action: GroupAction) -> ExitCode {
    use corelog::cli::group;
    if let GroupAction::Delete { .. } | GroupAction::ResetOffsets { .. } = action {
        return run_group_admin(bootstrap, output, action);
    }
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
            GroupAction::Delete { .. } | GroupAction::ResetOffsets { .. } => {
                unreachable!("run_group_admin handles it")
            }
        });
    finish(result)
}

/// `group delete` and `group reset-offsets`: they talk to coordinators and leaders.
fn run_group_admin(bootstrap: &str, output: Output, action: GroupAction) -> ExitCode {
    use corelog::cli::{group, reset_offsets};
    let mut cluster = match Cluster::connect(bootstrap) {
        Ok(c) => c,
        Err(e) => return finish(Err(e.into())),
    };
    match action {
        GroupAction::Delete { groups } => {
            let results = match group::delete(&mut cluster, &groups) {
                Ok(r) => r,
                Err(e) => return finish(Err(e)),
            };
            if let Output::Json = output {
                println!("{}", group::render_delete_json(&results));
            }
            let mut errors = results.into_iter().filter_map(|(_, e)| e);
            let first = errors.next();
            for e in errors {
                eprintln!("corelog: {e}");
            }
            finish(first.map_or(Ok(String::new()), Err))
        }
        GroupAction::ResetOffsets {
            group,
            topics,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            shift_by,
            execute,
        } => {
            use reset_offsets::Target;
            let target = match (to_earliest, to_latest, to_offset, to_datetime, shift_by) {
                (true, ..) => Target::Earliest,
                (_, true, ..) => Target::Latest,
                (_, _, Some(n), ..) => Target::Offset(n),
                (_, _, _, Some(ms), _) => Target::Datetime(ms),
                (.., Some(n)) => Target::ShiftBy(n),
                _ => unreachable!("clap requires one target"),
            };
            let result = reset_offsets::run(&mut cluster, &group, &topics, target, execute);
            if let (Ok(_), false, Output::Text) = (&result, execute, output) {
                eprintln!(
                    "corelog: dry run, nothing committed: add --execute to commit these offsets"
                );
            }
            finish(result.map(|rows| match output {
                Output::Text => reset_offsets::render_text(&rows),
                Output::Json => reset_offsets::render_json(&group, &rows, execute) + "\n",
            }))
        }
        GroupAction::List | GroupAction::Describe { .. } => unreachable!("run_group handles it"),
    }
}
