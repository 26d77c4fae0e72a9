//! The `corelog` binary: the broker (`corelog serve`) and its toolbox.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use corelog::cli::client::Cluster;
use corelog::cli::consume::Start;
use corelog::cli::topic::TopicError;

mod args;

use args::*;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CORELOG_LOG")
                // openraft narrates every election and retry at info and warn; its errors
                // are what an operator needs (CORELOG_LOG=openraft=info brings the rest).
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=error")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: a log file or the journal gets plain
        // text. NO_COLOR (any value) turns it off there too (no-color.org).
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    let cli = Cli::parse();
    if let Err(e) = corelog::cli::security::install(cli.command_config.as_deref()) {
        eprintln!("corelog: {e}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Connect(args) => corelog::connect::run(args),
        Command::Cluster(args) => corelog::cli::cluster::run(args),
        Command::Txn(args) => corelog::cli::txn::run(args),
        Command::Topic {
            bootstrap,
            output,
            action,
        } => run_topic(&bootstrap, output, action),
        Command::LogDirs {
            bootstrap,
            output,
            action: LogDirsAction::Describe { topic },
        } => run_log_dirs(&bootstrap, output, topic.as_deref()),
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
        Command::Profile {
            admin,
            output,
            reset,
            watch,
        } => {
            use corelog::cli::profile::{self, ProfileOutput};
            let output = match output {
                Output::Text => ProfileOutput::Text,
                Output::Json => ProfileOutput::Json,
            };
            match profile::run(&admin, output, reset, watch) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("corelog: {e}");
                    ExitCode::from(2)
                }
            }
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
        Command::Tune { action } => run_tune(action),
        Command::Storage { action } => corelog::cli::storage::run(action),
        Command::Acl(args) => corelog::cli::acl::run(args),
        Command::Quota(args) => corelog::cli::quota::run(args),
        Command::User { bootstrap, action } => {
            corelog::cli::user::run(corelog::cli::client::Client::connect(&bootstrap), action)
        }
        Command::Console(args) => match corelog::console::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("corelog console: {e}");
                ExitCode::FAILURE
            }
        },
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
    use corelog::cli::{configs, topic};
    let json = matches!(output, Output::Json);
    let result = Cluster::connect(bootstrap)
        .map_err(TopicError::from)
        .and_then(|mut cluster| match action {
            TopicAction::List => topic::list(cluster.any()).map(|t| match output {
                Output::Text => topic::render_text(&t, false),
                Output::Json => topic::render_json(&t) + "\n",
            }),
            TopicAction::Describe { name, all_configs } => {
                topic::describe_detail(&mut cluster, &name, all_configs).map(|d| match output {
                    Output::Text => topic::render_detail_text(&d),
                    Output::Json => topic::render_detail_json(&d) + "\n",
                })
            }
            TopicAction::Create {
                name,
                partitions,
                replication_factor,
                configs,
            } => topic::create(
                cluster.any(),
                &name,
                partitions,
                replication_factor,
                &configs,
            )
            .map(|()| String::new()),
            TopicAction::Alter {
                name,
                partitions,
                set,
                delete,
            } => {
                let client = cluster.any();
                let altered = if set.is_empty() && delete.is_empty() {
                    Ok(())
                } else {
                    configs::alter(client, &name, &set, &delete)
                };
                altered
                    .and_then(|()| match partitions {
                        Some(n) => topic::add_partitions(client, &name, n),
                        None => Ok(()),
                    })
                    .map(|()| String::new())
            }
            TopicAction::Reassign(args) => corelog::cli::reassign::run(&mut cluster, &args),
            TopicAction::Delete { name } => {
                topic::delete(cluster.any(), &name).map(|()| String::new())
            }
            TopicAction::DeleteRecords {
                name,
                partition,
                offset,
            } => topic::delete_records(&mut cluster, &name, partition, offset)
                .map(|low| topic::render_delete_records(&name, partition, low, json)),
        });
    finish(result)
}

/// `log-dirs describe`: exit codes as for `topic`.
fn run_log_dirs(bootstrap: &str, output: Output, topic: Option<&str>) -> ExitCode {
    use corelog::cli::log_dirs;
    let result = Cluster::connect(bootstrap)
        .map_err(TopicError::from)
        .and_then(|mut cluster| {
            let filter = match topic {
                Some(t) => Some(log_dirs::topic_filter(&mut cluster, t)?),
                None => None,
            };
            log_dirs::describe(&mut cluster, filter.as_ref())
        })
        .map(|dirs| match output {
            Output::Text => log_dirs::render_text(&dirs),
            Output::Json => log_dirs::render_json(&dirs) + "\n",
        });
    finish(result)
}

fn run_tune(action: TuneAction) -> ExitCode {
    use corelog::tune::{self, apply, Host};
    let all_cpus = || std::thread::available_parallelism().map_or(1, |n| n.get());
    let (items, output) = match action {
        TuneAction::Check {
            log_dirs,
            smp,
            output,
            sysroot,
        } => {
            let checks =
                tune::run_checks(&Host::at(&sysroot), smp.unwrap_or_else(all_cpus), &log_dirs);
            match output {
                Output::Text => print!("{}", tune::render_text(&checks)),
                Output::Json => println!("{}", tune::render_json(&checks)),
            }
            let failed = checks.iter().any(|c| c.status == tune::Status::Fail);
            return ExitCode::from(u8::from(failed));
        }
        TuneAction::Apply {
            log_dirs,
            smp,
            state,
            dry_run,
            output,
            sysroot,
        } => {
            if !dry_run && !is_root() {
                eprintln!("corelog: tune apply changes kernel settings and needs root: run it with sudo (or add --dry-run to see what it would change)");
                return ExitCode::from(2);
            }
            let opts = apply::Options {
                log_dirs,
                shards: smp.unwrap_or_else(all_cpus),
                dry_run,
            };
            let result = apply::apply(&Host::at(&sysroot), &opts, &state);
            if let (Ok(_), Output::Text, false) = (&result, output, dry_run) {
                let recorded = apply::load_state(&state).map_or(0, |r| r.len());
                eprintln!(
                    "corelog: {recorded} changed values recorded in {}; `corelog tune restore --state {}` puts them back",
                    state.display(),
                    state.display()
                );
            }
            (result, output)
        }
        TuneAction::Restore {
            state,
            dry_run,
            output,
        } => {
            if !dry_run && !is_root() {
                eprintln!("corelog: tune restore changes kernel settings and needs root: run it with sudo");
                return ExitCode::from(2);
            }
            let result = apply::restore(&state, dry_run);
            if let (Ok(items), Output::Text) = (&result, output) {
                if items.is_empty() {
                    eprintln!(
                        "corelog: nothing to restore: no changes recorded in {}",
                        state.display()
                    );
                }
            }
            (result, output)
        }
    };
    match items {
        Ok(items) => {
            match output {
                Output::Text => print!("{}", apply::render_text(&items)),
                Output::Json => println!("{}", apply::render_json(&items)),
            }
            let failed = items
                .iter()
                .any(|i| matches!(i.action, apply::Action::Failed { .. }));
            ExitCode::from(u8::from(failed))
        }
        Err(e) => {
            eprintln!("corelog: {e}");
            ExitCode::from(1)
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
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
        BenchAction::Suite(args) => return corelog::cli::bench::suite::main(&args),
        BenchAction::Disk(args) => return corelog::cli::bench::disk::main(&args),
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
    if let Some(admin) = &a.profile_admin {
        // A new profile window, so the report holds this run's stages only.
        if let Err(e) = corelog::cli::profile::fetch_profile_with(admin, true) {
            eprintln!("corelog: cannot reset the broker profile at {admin}: {e}");
            return ExitCode::from(2);
        }
    }
    let mut r = match bench::run(&cfg, a.broker_pid) {
        Ok(r) => r,
        Err(e) => return finish(Err(e)),
    };
    if let Some(admin) = &a.profile_admin {
        match corelog::cli::profile::fetch_profile(admin) {
            Ok(p) => r.broker_profile = Some(p.to_json()),
            Err(e) => eprintln!("corelog: cannot read the broker profile at {admin}: {e}"),
        }
    }
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
    if let Some(code) =
        corelog::cli::bench::suite::compare_files(a, b, matches!(output, Output::Json))
    {
        return code;
    }
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
    if let GroupAction::List = action {
        let listed = corelog::cli::client::Cluster::connect(bootstrap)
            .map_err(TopicError::from)
            .and_then(|mut cluster| group::list_all(&mut cluster));
        return finish(listed.map(|g| match output {
            Output::Text => group::render_list_text(&g),
            Output::Json => group::render_list_json(&g) + "\n",
        }));
    }
    let result = corelog::cli::client::Client::connect(bootstrap)
        .map_err(TopicError::from)
        .and_then(|mut client| match action {
            GroupAction::Describe { group: name } => {
                group::describe(&mut client, &name).map(|d| match output {
                    Output::Text => group::render_describe_text(&d),
                    Output::Json => group::render_describe_json(&d) + "\n",
                })
            }
            GroupAction::List | GroupAction::Delete { .. } | GroupAction::ResetOffsets { .. } => {
                unreachable!("handled above")
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
