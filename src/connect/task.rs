//! What a connector's task thread and the worker share: the state the worker asks for
//! (run, pause, stop), the state the task reports (RUNNING, PAUSED, FAILED with a
//! trace), and the retry backoff every task uses against an unreachable broker.
//!
//! Concurrency: the worker (REST threads, signal handling) writes `target`; only the
//! task thread writes `state`. Tasks look at `target` between batches and in every
//! wait, so a stop takes effect within one wait step (`TASK_WAIT_STEP`).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cli::client::ClientError;
use crate::cli::topic::TopicError;

/// The longest a task sleeps before looking at its target state again.
pub const TASK_WAIT_STEP: Duration = Duration::from_millis(100);
/// Retry delays against a broker that does not answer: doubling from the first to the
/// last, so a broker that comes back is noticed within `RETRY_BACKOFF_MAX`.
pub const RETRY_BACKOFF_FIRST: Duration = Duration::from_millis(200);
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_millis(2_000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Run = 0,
    Pause = 1,
    Stop = 2,
}

/// Kafka Connect's task states as the REST API names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running,
    Paused,
    Failed(String),
}

impl TaskState {
    pub fn name(&self) -> &'static str {
        match self {
            TaskState::Running => "RUNNING",
            TaskState::Paused => "PAUSED",
            TaskState::Failed(_) => "FAILED",
        }
    }
}

pub struct TaskControl {
    target: AtomicU8,
    state: Mutex<TaskState>,
}

impl TaskControl {
    pub fn new(paused: bool) -> TaskControl {
        let (t, s) = if paused {
            (Target::Pause, TaskState::Paused)
        } else {
            (Target::Run, TaskState::Running)
        };
        TaskControl {
            target: AtomicU8::new(t as u8),
            state: Mutex::new(s),
        }
    }

    pub fn target(&self) -> Target {
        match self.target.load(Ordering::Acquire) {
            0 => Target::Run,
            1 => Target::Pause,
            _ => Target::Stop,
        }
    }

    pub fn set_target(&self, t: Target) {
        // A stop is final: a late pause or resume must not undo it.
        if self.target() != Target::Stop {
            self.target.store(t as u8, Ordering::Release);
        }
    }

    pub fn stopping(&self) -> bool {
        self.target() == Target::Stop
    }

    pub fn state(&self) -> TaskState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_state(&self, s: TaskState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }

    /// Sleeps `d` in steps, returning early (true) once a stop is asked for.
    pub fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.stopping() {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(TASK_WAIT_STEP));
        }
    }

    /// While paused: reports PAUSED and waits; returns once running again or stopping.
    /// `idle` runs every step (a sink keeps its group membership alive with it).
    pub fn wait_while_paused(&self, mut idle: impl FnMut()) {
        let mut reported = false;
        while self.target() == Target::Pause {
            if !reported {
                self.set_state(TaskState::Paused);
                reported = true;
            }
            idle();
            std::thread::sleep(TASK_WAIT_STEP);
        }
        if reported && self.target() == Target::Run {
            self.set_state(TaskState::Running);
        }
    }
}

/// Doubling retry delays, reset after a success.
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: RETRY_BACKOFF_FIRST,
        }
    }
}

impl Backoff {
    /// The delay before the next attempt.
    pub fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(RETRY_BACKOFF_MAX);
        d
    }

    pub fn reset(&mut self) {
        self.next = RETRY_BACKOFF_FIRST;
    }
}

pub enum SendError {
    /// Worth retrying: the broker is unreachable or its leaders are moving.
    Transient(String),
    /// The task cannot go on (a record the broker refuses, a bad topic name, ...).
    Fatal(String),
}

/// Kafka error codes after which a client retries: the broker is starting, leaders or
/// coordinators move, a topic is still being created, a rebalance is under way.
const RETRIABLE_CODES: [i16; 13] = [3, 5, 6, 7, 13, 14, 15, 16, 22, 25, 27, 75, 19];

pub fn classify(e: TopicError) -> SendError {
    match &e {
        TopicError::Client(c) => SendError::Transient(describe_client_error(c)),
        TopicError::Refused(_) => SendError::Transient(e.to_string()),
        TopicError::Broker { code, .. } if RETRIABLE_CODES.contains(code) => {
            SendError::Transient(e.to_string())
        }
        _ => SendError::Fatal(e.to_string()),
    }
}

/// A client error in the worker's words (the toolbox's own advice names its flags).
pub fn describe_client_error(e: &ClientError) -> String {
    match e {
        ClientError::Connect { bootstrap, source } => format!(
            "cannot connect to {bootstrap}: {source} (is the broker up? the worker's bootstrap.servers names it)"
        ),
        other => other.to_string(),
    }
}

/// For the status of a task that ended with an error.
pub fn failed(name: &str, why: String, control: &TaskControl) {
    tracing::error!(
        "{name}: task failed: {why} (fix the cause, then POST /connectors/{name}/restart)"
    );
    control.set_state(TaskState::Failed(why));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_bound() {
        let mut b = Backoff::default();
        let steps: Vec<u128> = (0..6).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, vec![200, 400, 800, 1600, 2000, 2000]);
        b.reset();
        assert_eq!(b.step(), RETRY_BACKOFF_FIRST);
    }

    #[test]
    fn stop_is_final_and_ends_sleeps() {
        let c = TaskControl::new(false);
        c.set_target(Target::Pause);
        assert_eq!(c.target(), Target::Pause);
        c.set_target(Target::Stop);
        c.set_target(Target::Run);
        assert!(c.stopping());
        assert!(c.sleep(Duration::from_secs(60)));
    }
}
