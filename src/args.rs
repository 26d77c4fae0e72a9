//! The command line's shape: every subcommand, its arguments and their defaults (clap
//! derive). `main.rs` runs what is parsed here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use corelog::cli::client::{BROKERS_DEFAULT, BROKERS_ENV};
use corelog::cli::consume::{Format, Start};
use corelog::cli::produce::Partitioner;
use corelog::cli::reset_offsets::TopicSpec;

#[derive(Parser)]
#[command(
    name = "corelog",
    version,
    about = "A Kafka-compatible event-streaming broker, thread-per-core on io_uring"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Kafka client properties for the tools: security.protocol, sasl.mechanism,
    /// sasl.username, sasl.password (or sasl.jaas.config), ssl.ca.location, ...
    #[arg(long = "command-config", global = true, env = "CORELOG_COMMAND_CONFIG")]
    pub(crate) command_config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Kafka Connect in standalone mode: move files through topics (file connectors).
    Connect(corelog::connect::ConnectArgs),
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
    /// Create, list, describe, alter and delete topics on any Kafka-compatible broker.
    #[command(
        after_help = "Examples:\n  corelog topic create weblogs --partitions 3 -c retention.ms=86400000\n  corelog topic list\n  corelog topic describe weblogs --output json\n  corelog topic alter weblogs --partitions 6 --set retention.ms=3600000\n  corelog topic delete-records weblogs --partition 0 --offset 1200\n  corelog topic delete weblogs"
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
    /// Log dirs of every broker, like kafka-log-dirs.sh.
    #[command(name = "log-dirs")]
    LogDirs {
        /// Broker list, host:port[,host:port...].
        #[arg(short = 'b', long, env = corelog::cli::client::BROKERS_ENV, default_value = corelog::cli::client::BROKERS_DEFAULT, global = true)]
        bootstrap: String,
        #[arg(long, value_enum, default_value = "text", global = true)]
        output: Output,
        #[command(subcommand)]
        action: LogDirsAction,
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
    /// Show where a broker's latency goes: each stage of produce and fetch (count, p50,
    /// p99, p99.9, max in µs), from its admin API (GET /v1/profile).
    #[command(
        after_help = "Examples:\n  corelog profile\n  corelog profile --admin 127.0.0.1:9644 --output json\n  corelog profile --reset            # print, then start a new window\n  corelog profile --watch 5          # every 5 s, the last 5 s\n\nStages: produce.decode, .handoff (to the owner shard and back), .append, .write_wait,\n.fdatasync_wait (acks=all), .replication_wait (acks=all, cluster), .response, .total; fetch.long_poll_wait, .read, .send,\n.total; storage.write, .fdatasync. The window starts at the broker's start or the last\nreset (shared by everyone reading that broker's profile).\nExit codes: 0 printed, 2 no admin API reached or an unreadable answer."
    )]
    Profile {
        /// The broker's admin.listener, host:port.
        #[arg(long, env = corelog::cli::profile::ADMIN_ENV, default_value = corelog::cli::profile::ADMIN_DEFAULT)]
        admin: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Start a new window after printing this one.
        #[arg(long)]
        reset: bool,
        /// Print every SECONDS the window just ended, until interrupted.
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
        watch: Option<u64>,
    },
    /// Measure throughput and latency against any Kafka-compatible broker.
    #[command(
        after_help = "Examples:\n  corelog bench produce --topic bench --partitions 4 --create --seconds 10\n  corelog bench produce --topic bench --rate 100000 --acks all --output json > a.json\n  corelog bench consume --topic bench\n  corelog bench e2e --topic lat --create --rate 5000 --seconds 10 --report lat.html\n  corelog bench compare a.json b.json\n\nWorkers are threads pinned one per core, each owning its connections; Produce requests\nare pipelined (--max-in-flight per connection) and built once before the clock starts.\nWith --rate the load follows a fixed schedule and latency is measured from each record's\nintended send time, so a stalled sender cannot hide latency (no coordinated omission).\nThe warm-up (--warmup-seconds) is excluded from the results. Exit codes: 0 done,\n1 the run saw errors (refused or lost requests), 2 bad command line or no broker\nreached, 3 the watchdog ended an overrunning run."
    )]
    Bench {
        #[command(subcommand)]
        action: BenchAction,
    },
    /// A web console for any Kafka-compatible cluster: topics, messages, groups.
    #[command(
        after_help = "Examples:\n  corelog console --bootstrap-server localhost:9092\n  corelog console -b broker1:9092 --listen 127.0.0.1:8080   # then open http://127.0.0.1:8080/"
    )]
    Console(corelog::console::ConsoleArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  corelog completion bash > /etc/bash_completion.d/corelog\n  corelog completion zsh > \"${fpath[1]}/_corelog\"\n  corelog completion fish > ~/.config/fish/completions/corelog.fish"
    )]
    Completion {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// ACLs of a running broker: --add, --remove, --list (kafka-acls.sh's options).
    #[command(
        after_help = "Examples:\n  corelog acl --add --allow-principal User:alice --operation Write --topic payments\n  corelog acl --add --allow-principal User:bob --consumer --topic payments --group billing\n  corelog acl --add --deny-principal User:eve --operation All --topic secret- --resource-pattern-type prefixed\n  corelog acl --list --topic payments\n  corelog acl --remove --allow-principal User:alice --operation Write --topic payments"
    )]
    Acl(corelog::cli::acl::AclArgs),
    /// SCRAM users of a running broker: add, delete, list (kafka-configs --entity-type users).
    #[command(
        after_help = "Examples:\n  CORELOG_USER_PASSWORD=s3cret corelog user add alice --mechanism SCRAM-SHA-512\n  corelog user list\n  corelog user delete alice --mechanism SCRAM-SHA-512"
    )]
    User {
        /// Broker list, host:port[,host:port...].
        #[arg(short = 'b', long, env = corelog::cli::client::BROKERS_ENV, default_value = corelog::cli::client::BROKERS_DEFAULT, global = true)]
        bootstrap: String,
        #[command(subcommand)]
        action: corelog::cli::user::UserAction,
    },
    /// Client quotas of a running broker: set, delete, describe (kafka-configs --entity-type users/clients).
    #[command(
        after_help = "Examples:\n  corelog quota set --client app --add-config producer_byte_rate=1048576\n  corelog quota set --user alice --client-defaults --add-config consumer_byte_rate=2097152,request_percentage=50\n  corelog quota describe\n  corelog quota delete --client app --delete-config producer_byte_rate"
    )]
    Quota(corelog::cli::quota::QuotaArgs),
    /// Cluster operations: preferred and unclean leader election.
    Cluster(corelog::cli::cluster::ClusterArgs),
    /// Transactions: list, describe, find-hanging, abort (kafka-transactions.sh).
    #[command(
        after_help = "Examples:\n  corelog txn list --state Ongoing --duration-filter 60000\n  corelog txn describe --transactional-id payments-1\n  corelog txn describe-producers --topic orders --partition 0\n  corelog txn find-hanging --broker-id 1\n  corelog txn abort --topic orders --partition 0 --start-offset 1234\n\nExit codes: 0 done, 1 the broker refused (error code printed), 2 bad input or no broker reached."
    )]
    Txn(corelog::cli::txn::TxnArgs),
    /// Prepare log dirs before the first start (kafka-storage.sh format), with SCRAM users.
    Storage {
        #[command(subcommand)]
        action: corelog::cli::storage::StorageAction,
    },
    /// Check the host settings that matter to a broker; apply and restore them (root).
    Tune {
        #[command(subcommand)]
        action: TuneAction,
    },
}

/// Where the brokers are and how to print; shared by produce and consume.
#[derive(clap::Args)]
pub(crate) struct Conn {
    /// Broker list, host:port[,host:port...].
    #[arg(short = 'b', long, env = BROKERS_ENV, default_value = BROKERS_DEFAULT)]
    pub(crate) bootstrap: String,
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) output: Output,
}

#[derive(Subcommand)]
pub(crate) enum BenchAction {
    /// Producer throughput and delivery latency (send → ack).
    Produce(BenchArgs),
    /// Consumer throughput and fetch latency: reads the topic from the beginning to the end
    /// it had at the start (or --seconds / --count).
    Consume(BenchArgs),
    /// Produce → consume latency: producers stamp each record, consumers in the same
    /// process read the stamps back.
    E2e(BenchArgs),
    /// Every row of the performance table (issue 13) that bench can drive, as presets:
    /// JSON and HTML per run, suite.json and index.html with the medians.
    Suite(corelog::cli::bench::suite::SuiteArgs),
    /// The disk's own O_DIRECT append bandwidth into fallocated files (no broker): what
    /// the disk-bound row is compared with.
    Disk(corelog::cli::bench::disk::DiskArgs),
    /// Two JSON results (runs or suite.json files) side by side, with B/A ratios.
    Compare {
        a: PathBuf,
        b: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Broker list, host:port[,host:port...].
    #[arg(short = 'b', long, env = BROKERS_ENV, default_value = BROKERS_DEFAULT)]
    pub(crate) bootstrap: String,
    #[arg(long, default_value = "corelog-bench")]
    pub(crate) topic: String,
    /// Partitions when --create creates the topic.
    #[arg(long, default_value_t = 1)]
    pub(crate) partitions: i32,
    /// Create the topic first (an existing one is used as it is).
    #[arg(long)]
    pub(crate) create: bool,
    /// Measured seconds (after the warm-up); default 10 unless --count is given.
    #[arg(long)]
    pub(crate) seconds: Option<u64>,
    /// Measured records; the run ends when they are sent (or received).
    #[arg(long)]
    pub(crate) count: Option<u64>,
    /// Seconds of load before measuring; default 1 (produce, e2e), 0 (consume).
    #[arg(long)]
    pub(crate) warmup_seconds: Option<u64>,
    /// Worker threads, each pinned to a core; default one per core.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Connections per broker, spread over the threads; default one per thread.
    #[arg(long)]
    pub(crate) connections: Option<usize>,
    /// Produce requests in flight per connection.
    #[arg(long, default_value_t = 5)]
    pub(crate) max_in_flight: usize,
    /// Bytes of each record's value.
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    pub(crate) message_size: usize,
    /// Bytes of records per batch (one batch per Produce request).
    #[arg(long, default_value_t = 65536, value_name = "BYTES")]
    pub(crate) batch_size: usize,
    /// With --rate: how long a batch waits for more due records.
    #[arg(long, default_value_t = 1)]
    pub(crate) linger_ms: u64,
    #[arg(long, default_value = "all", value_parser = ["0", "1", "all"])]
    pub(crate) acks: String,
    #[arg(long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    pub(crate) compression: String,
    #[arg(long, value_enum, default_value = "random")]
    pub(crate) payload: corelog::cli::bench::payload::PayloadKind,
    /// Records per second in total, on a fixed schedule; latency then counts from each
    /// record's intended send time, so a stalled sender cannot hide it (no coordinated
    /// omission). Default: flat out (closed loop).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) output: Output,
    /// Also write a self-contained HTML report (SVG charts) to this file.
    #[arg(long, value_name = "FILE.html")]
    pub(crate) report: Option<PathBuf>,
    /// Also report this process's CPU time (the broker's, on the same machine).
    #[arg(long)]
    pub(crate) broker_pid: Option<u32>,
    /// A corelog broker's admin.listener (host:port): its latency profile (per stage:
    /// count, p50, p99, p99.9, max) over the run is added to the text, JSON and HTML
    /// reports, so a p99.9 can be traced to a stage. The window is reset at the start.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) profile_admin: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

pub(crate) fn parse_header(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))
}

pub(crate) fn parse_acks(s: &str) -> Result<i16, String> {
    match s {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        _ => Err(format!("{s:?}: expected 0, 1 or all")),
    }
}

#[derive(Subcommand)]
pub(crate) enum TuneAction {
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
        /// Read /proc and /sys under this dir (tests).
        #[arg(long, hide = true, default_value = "/")]
        sysroot: PathBuf,
    },
    /// Change what `check` recommends (root): swappiness, transparent huge pages,
    /// aio-max-nr, the log disks' scheduler and nomerges, the CPU governor, NIC and disk
    /// IRQs away from the broker's CPUs. Records each change for `restore`.
    #[command(
        after_help = "Examples:\n  corelog tune apply --dry-run\n  sudo corelog tune apply --log-dirs /mnt/d1/corelog,/mnt/d2/corelog --smp 6\n  sudo corelog tune restore\n\nWhat cannot be changed here (read-only /sys in a container, no cpufreq in a VM,\nkernel-managed IRQs) is left alone with a note; the run goes on. Running it again\nchanges nothing. Limits (memlock, open files) belong to the broker's process: apply\nprints what to set. Every change is recorded in the state file before it is made.\nExit codes: 0 done, 1 the state file could not be written (every change made so far\nis in it), 2 not root."
    )]
    Apply {
        /// Log dirs whose disks to tune (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "data")]
        log_dirs: Vec<PathBuf>,
        /// Shards the broker will run, on CPUs 0..N; IRQs go to the CPUs above. Default:
        /// one per CPU (then IRQs are left alone).
        #[arg(long)]
        smp: Option<usize>,
        /// Where to record the changes.
        #[arg(long, default_value = corelog::tune::apply::STATE_FILE_DEFAULT)]
        state: PathBuf,
        /// Show what would change; change nothing (needs no root).
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Tune /proc and /sys under this dir (tests).
        #[arg(long, hide = true, default_value = "/")]
        sysroot: PathBuf,
    },
    /// Put back every value `apply` recorded in the state file (root).
    Restore {
        #[arg(long, default_value = corelog::tune::apply::STATE_FILE_DEFAULT)]
        state: PathBuf,
        /// Show what would be put back; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
}

#[derive(Subcommand)]
pub(crate) enum TopicAction {
    /// Every topic with its partition count.
    List,
    /// One topic: its configs that differ from the defaults, and partition by partition
    /// the leader, replicas, in-sync replicas and the leader's log dir.
    #[command(
        after_help = "Examples:\n  corelog topic describe weblogs\n  corelog topic describe weblogs --all-configs --output json"
    )]
    Describe {
        name: String,
        /// Every config with where its value comes from, defaults included.
        #[arg(long)]
        all_configs: bool,
    },
    /// Create a topic.
    #[command(
        after_help = "Examples:\n  corelog topic create weblogs --partitions 3\n  corelog topic create audit -p 1 -c retention.ms=86400000 -c cleanup.policy=compact"
    )]
    Create {
        name: String,
        #[arg(short = 'p', long, default_value_t = 1)]
        partitions: i32,
        #[arg(short = 'r', long, default_value_t = 1)]
        replication_factor: i16,
        /// A topic config, KEY=VALUE; repeatable.
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = corelog::cli::configs::parse_key_value)]
        configs: Vec<(String, String)>,
    },
    /// Grow a topic, or set and delete its configs (in one request).
    #[command(
        group(clap::ArgGroup::new("change").required(true).multiple(true).args(["partitions", "set", "delete"])),
        after_help = "Examples:\n  corelog topic alter weblogs --partitions 6\n  corelog topic alter weblogs --set retention.ms=3600000 --set max.message.bytes=2097152\n  corelog topic alter weblogs --delete retention.ms --delete max.message.bytes\n\nPartitions can only be added: keyed records then map to other partitions. With both,\nthe configs change first (all or none), then the partitions are added."
    )]
    Alter {
        name: String,
        /// The new partition count (larger than the current one).
        #[arg(short = 'p', long)]
        partitions: Option<i32>,
        /// Set a topic config, KEY=VALUE; repeatable.
        #[arg(long, value_name = "KEY=VALUE", value_parser = corelog::cli::configs::parse_key_value)]
        set: Vec<(String, String)>,
        /// Remove a topic config (back to the broker's default); repeatable.
        #[arg(long, value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Delete a topic and its data.
    Delete { name: String },
    /// Move partitions between brokers, like kafka-reassign-partitions.sh.
    Reassign(corelog::cli::reassign::ReassignArgs),
    /// Delete a partition's records before an offset, like kafka-delete-records.sh;
    /// prints the new low watermark.
    #[command(
        after_help = "Examples:\n  corelog topic delete-records weblogs --partition 0 --offset 1200\n  corelog topic delete-records weblogs --partition 2 --offset -1   # everything so far"
    )]
    DeleteRecords {
        name: String,
        #[arg(long)]
        partition: i32,
        /// Records below this offset go; -1: up to the high watermark.
        #[arg(long, allow_negative_numbers = true)]
        offset: i64,
    },
}

#[derive(Subcommand)]
pub(crate) enum LogDirsAction {
    /// Every broker's log dirs: state, total and usable bytes, partitions and their sizes.
    #[command(
        after_help = "Examples:\n  corelog log-dirs describe\n  corelog log-dirs describe --topic weblogs --output json"
    )]
    Describe {
        /// Only this topic's partitions (every dir is still listed).
        #[arg(long)]
        topic: Option<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum GroupAction {
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
pub(crate) enum Output {
    Text,
    Json,
}
