//! Simulated power cuts (issue 15 item 2; ARCHITECTURE.md "Simulated power cuts").
//!
//! ```text
//!  workload ──storage::io──▶ recorder journal: op 0, op 1, ... (+ acks, marks)
//!                                    │ cut before each disk op, and at the end
//!  disk model (disk.rs) ─── crash states a power cut allows at that cut
//!                                    │ each written to a scratch dir
//!  checker (check.rs) ──── real recovery, read everything, compare with history
//! ```
//!
//! `CORELOG_POWERCUT_STATES` sets how many crash states to check (default
//! [`STATES_DEFAULT`]), `CORELOG_POWERCUT_SEED` the first round's seed (printed either
//! way). A round is one workload run on a fresh dir, cut at every point; rounds go on
//! with the next seed until enough states are checked. The journal depends on task
//! timing as well as the seed, so a failing state is kept on disk (its path printed)
//! for replay with the real recovery.

mod check;
mod disk;
mod workload;

use std::path::{Path, PathBuf};

use crate::storage::recorder::{Op, Recording};
use disk::{CrashState, Disk, Rng};

/// Crash states the default test checks (a few seconds to a minute in a debug build).
const STATES_DEFAULT: u64 = 2_000;
/// Crash states checked per workload run, at most: then a new run with a new seed.
const STATES_PER_ROUND_MAX: u64 = 2_500;
/// Workload steps per run.
const STEPS_PER_ROUND: usize = 120;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

/// Whether the journal op changes a file or directory (cuts go before those).
fn touches_disk(op: &Op) -> bool {
    !matches!(op, Op::Ack { .. } | Op::Mark { .. })
}

/// One line about a journal op (a write's bytes are left out).
fn brief(op: &Op) -> String {
    match op {
        Op::Write { path, pos, data } => {
            format!("Write {} bytes at {pos} of {}", data.len(), path.display())
        }
        Op::Mark { mark, .. } => format!("{mark:?}").chars().take(120).collect(),
        other => format!("{other:?}"),
    }
}

/// Writes `state` into `out` (recreated), mapping the recorded `root` to it.
fn materialize(state: &CrashState, root: &Path, out: &Path) {
    if out.exists() {
        std::fs::remove_dir_all(out).expect("clear the scratch dir");
    }
    std::fs::create_dir_all(out.join("data")).expect("create the scratch dir");
    for (path, content) in &state.entries {
        let target = out.join(path.strip_prefix(root).expect("recorded under the root"));
        match content {
            None => std::fs::create_dir_all(&target).expect("create a dir"),
            Some(bytes) => std::fs::write(&target, bytes).expect("write a file"),
        }
    }
}

/// What a panic (a recovery that panicked) reports, and which scratch dir to keep.
struct PanicReport<'a>(&'a str);

impl Drop for PanicReport<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("powercut: panicked while checking {}", self.0);
        }
    }
}

/// Totals of a run, for the report line.
#[derive(Debug, Default)]
struct Totals {
    rounds: u64,
    ops: u64,
    cuts: u64,
    states: u64,
}

/// Runs the workload under `scratch/round-<seed>` with the recorder armed and returns
/// the root and log dir it used (removed again) and the journal.
async fn record(seed: u64, steps: usize, scratch: &Path) -> (PathBuf, PathBuf, Vec<Op>) {
    let root = scratch.join(format!("round-{seed}"));
    let data = root.join("data");
    std::fs::create_dir_all(&data).expect("create the round's dir");
    let recording = Recording::start(&root);
    workload::run(&data, &recording, seed, steps).await;
    let journal = recording.ops();
    drop(recording);
    std::fs::remove_dir_all(&root).expect("remove the round's dir");
    (root, data, journal)
}

/// One round: record a workload, then check up to `budget` crash states of it.
async fn round(seed: u64, budget: u64, scratch: &Path, totals: &mut Totals) {
    let (root, data, journal) = record(seed, STEPS_PER_ROUND, scratch).await;

    let cuts = journal.iter().filter(|op| touches_disk(op)).count() as u64 + 1;
    let per_cut = (budget / cuts).max(1);
    let mut disk = Disk::new(&[root.clone(), data.clone()]);
    let mut history = check::History::default();
    let mut rng = Rng(seed ^ 0x5eed);
    let out = scratch.join("state");
    let ops = journal.len();
    let mut journal = journal.into_iter().enumerate().peekable();
    loop {
        let next = journal.peek();
        let at = next.map_or(ops, |(i, _)| *i);
        if next.is_none_or(|(_, op)| touches_disk(op)) {
            for (n, state) in disk.crash_states(per_cut, &mut rng).iter().enumerate() {
                let what = format!(
                    "seed {seed}, cut before op {at} of {ops}, state {n} (acked below {}), \
                     kept at {}",
                    history.acked_end(),
                    out.display()
                );
                let _report = PanicReport(&what);
                materialize(state, &root, &out);
                let checked = check::check(
                    &out.join("data"),
                    workload::TOPIC,
                    &workload::config(),
                    &history,
                )
                .await;
                if let Err(problem) = checked {
                    let next_op = next.map_or("none (end of journal)".into(), |n| brief(&n.1));
                    panic!("powercut: {what}: {problem}\nnext op: {next_op}");
                }
                totals.states += 1;
            }
            totals.cuts += 1;
        }
        let Some((_, op)) = journal.next() else { break };
        history.apply(&op);
        disk.apply(op);
    }
    totals.ops += ops as u64;
    totals.rounds += 1;
    eprintln!(
        "powercut: round {} (seed {seed}): {ops} journaled ops; {} crash states checked so far",
        totals.rounds, totals.states
    );
}

/// Where crash states are written: `CORELOG_POWERCUT_DIR`, else /dev/shm when there is
/// one (every state's recovery fsyncs, which on a real disk costs ~100 ms a state),
/// else the temp dir.
fn scratch_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CORELOG_POWERCUT_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    match shm.is_dir() {
        true => shm.to_owned(),
        false => std::env::temp_dir(),
    }
}

#[test]
fn acked_records_survive_simulated_power_cuts() {
    let states = env_u64("CORELOG_POWERCUT_STATES").unwrap_or(STATES_DEFAULT);
    let seed = env_u64("CORELOG_POWERCUT_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |d| d.as_nanos() as u64 & 0xffff_ffff)
    });
    eprintln!("powercut: seed {seed}, {states} crash states (CORELOG_POWERCUT_SEED to replay)");
    let scratch = scratch_root().join(format!("corelog-powercut-{}-{seed}", std::process::id()));
    let dir = scratch.clone();
    let started = std::time::Instant::now();
    let totals = crate::storage::testutil::run(async move {
        let mut totals = Totals::default();
        while totals.states < states {
            let budget = (states - totals.states).min(STATES_PER_ROUND_MAX);
            round(seed + totals.rounds, budget, &dir, &mut totals).await;
        }
        totals
    });
    std::fs::remove_dir_all(&scratch).expect("remove the scratch dir");
    eprintln!(
        "powercut: {} rounds, {} journaled ops, {} cuts, {} crash states checked in {:.1} s",
        totals.rounds,
        totals.ops,
        totals.cuts,
        totals.states,
        started.elapsed().as_secs_f64()
    );
}

/// The checker is not blind: the state a clean close leaves passes, and the same state
/// with its segment files gone, or with one byte of record data changed, fails.
#[test]
fn the_checker_sees_lost_and_altered_records() {
    let scratch = scratch_root().join(format!("corelog-powercut-control-{}", std::process::id()));
    let dir = scratch.clone();
    crate::storage::testutil::run(async move {
        let (root, _, journal) = record(11, 40, &dir).await;
        let mut disk = Disk::new(&[root.clone(), root.join("data")]);
        let mut history = check::History::default();
        for op in journal {
            history.apply(&op);
            disk.apply(op);
        }
        assert!(history.acked_end() > 0, "the workload acked something");
        let states = disk.crash_states(1, &mut Rng(1));
        assert_eq!(states.len(), 1, "after a clean close everything is durable");
        let out = dir.join("state");
        let data = out.join("data");
        let config = workload::config();
        materialize(&states[0], &root, &out);
        check::check(&data, workload::TOPIC, &config, &history)
            .await
            .expect("clean state");

        let is_segment = |p: &PathBuf| p.extension().is_some_and(|e| e == "log");
        let partition = data.join(format!("{}-0", workload::TOPIC));
        let mut lost = states[0].clone();
        lost.entries.retain(|path, _| !is_segment(path));
        materialize(&lost, &root, &out);
        let problem = check::check(&data, workload::TOPIC, &config, &history).await;
        assert!(problem.unwrap_err().contains("lost"));

        materialize(&states[0], &root, &out);
        let first = std::fs::read_dir(&partition)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(is_segment)
            .min()
            .unwrap();
        let mut bytes = std::fs::read(&first).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        std::fs::write(&first, bytes).unwrap();
        let problem = check::check(&data, workload::TOPIC, &config, &history).await;
        assert!(problem.is_err(), "a changed byte went unnoticed");
    });
    std::fs::remove_dir_all(&scratch).unwrap();
}

/// The workload reaches every operation the brief names, so a change that stops it
/// doing one (no more rolls, no zeros ahead, no snapshots) fails here, not silently.
#[test]
fn the_workload_exercises_every_kind_of_operation() {
    use crate::storage::recorder::Mark;
    let scratch = scratch_root().join(format!("corelog-powercut-kinds-{}", std::process::id()));
    let dir = scratch.clone();
    let journal =
        crate::storage::testutil::run(async move { record(5, STEPS_PER_ROUND, &dir).await.2 });
    std::fs::remove_dir_all(&scratch).unwrap();
    let kind = |op: &Op| match op {
        Op::Create { .. } => "create",
        Op::Mkdir { .. } => "mkdir",
        Op::Write { .. } => "write",
        Op::SetLen { .. } => "set_len",
        Op::Allocate { .. } => "allocate",
        Op::SyncFile { .. } => "sync_file",
        Op::SyncDir { .. } => "sync_dir",
        Op::Rename { .. } => "rename",
        Op::Unlink { .. } => "unlink",
        Op::RemoveTree { .. } => "remove_tree",
        Op::Ack { .. } => "ack",
        Op::Mark { mark, .. } => match mark {
            Mark::Appended { .. } => "appended",
            Mark::TruncatedTo { .. } => "truncated",
            Mark::LogStartMoved { .. } => "log_start_moved",
        },
    };
    let kinds: std::collections::BTreeSet<&str> = journal.iter().map(kind).collect();
    for expected in [
        "create",
        "mkdir",
        "write",
        "set_len",
        "allocate",
        "sync_file",
        "sync_dir",
        "rename",
        "unlink",
        "ack",
        "appended",
        "truncated",
        "log_start_moved",
    ] {
        assert!(kinds.contains(expected), "no {expected} in the journal");
    }
    let renamed_to: Vec<String> = journal
        .iter()
        .filter_map(|op| match op {
            Op::Rename { to, .. } => Some(to.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    for suffix in [
        ".index",
        ".timeindex",
        ".snapshot",
        "recovery-point-offset-checkpoint",
        "log-start-offset-checkpoint",
        "leader-epoch-checkpoint",
    ] {
        assert!(
            renamed_to.iter().any(|to| to.ends_with(suffix)),
            "no {suffix} file written"
        );
    }
    let zeros = journal.iter().any(|op| match op {
        Op::Write { data, .. } => data.len() >= 4096 && data.iter().all(|&b| b == 0),
        _ => false,
    });
    assert!(zeros, "no zeros written ahead");
}
