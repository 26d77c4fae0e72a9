//! The standalone worker: the running connectors, each with one task thread, and the
//! operations the REST API and the command line ask of them (start, reconfigure, pause,
//! resume, restart, delete, stop all).
//!
//! Concurrency: `connectors` is one Mutex, held for each operation but never while a
//! task thread is joined (a task may be inside a broker request or a JoinGroup for
//! seconds, and the REST API must keep answering meanwhile). A replaced or restarted
//! task is told to stop and its handle goes to the new task's thread, which joins it
//! before it starts: the two never touch the file or the group at the same time.
//! Task threads never take the lock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::config::{ClientOverrides, ConnectorConfig, ConnectorKind, WorkerConfig};
use super::offsets::OffsetStore;
use super::task::{failed, Target, TaskControl};

/// What every task thread reads: where the broker is and how to talk to it.
pub struct TaskEnv {
    pub bootstrap: String,
    pub clients: ClientOverrides,
    pub offsets: OffsetStore,
    pub offset_flush_interval: Duration,
}

struct Running {
    cfg: ConnectorConfig,
    control: Arc<TaskControl>,
    thread: Option<JoinHandle<()>>,
}

pub struct Worker {
    pub config: WorkerConfig,
    env: Arc<TaskEnv>,
    connectors: Mutex<BTreeMap<String, Running>>,
}

/// A connector's and its task's state, for GET /connectors/{name}/status.
pub struct Status {
    pub kind: ConnectorKind,
    pub connector_state: &'static str,
    pub task_state: &'static str,
    pub task_trace: Option<String>,
}

impl Worker {
    pub fn new(config: WorkerConfig) -> Result<Worker, String> {
        let offsets = OffsetStore::open(&config.offset_file)?;
        let env = TaskEnv {
            bootstrap: config.bootstrap.clone(),
            clients: config.clients.clone(),
            offsets,
            offset_flush_interval: config.offset_flush_interval,
        };
        Ok(Worker {
            config,
            env: Arc::new(env),
            connectors: Mutex::new(BTreeMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Running>> {
        self.connectors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `cfg`, replacing (stopping first) a connector of that name; a paused one
    /// stays paused, as Kafka keeps the target state across a reconfiguration.
    /// Returns true when the connector is new.
    pub fn put(&self, cfg: ConnectorConfig) -> bool {
        let mut all = self.lock();
        let (paused, predecessor) = match all.remove(&cfg.name) {
            Some(old) => (Some(old.control.target() == Target::Pause), retire(old)),
            None => (None, None),
        };
        let name = cfg.name.clone();
        all.insert(name, self.spawn(cfg, paused.unwrap_or(false), predecessor));
        paused.is_none()
    }

    /// Starts a task thread; it first waits for `predecessor` (the task it replaces).
    fn spawn(
        &self,
        cfg: ConnectorConfig,
        paused: bool,
        predecessor: Option<JoinHandle<()>>,
    ) -> Running {
        let control = Arc::new(TaskControl::new(paused));
        let env = Arc::clone(&self.env);
        let task_cfg = cfg.clone();
        let task_control = Arc::clone(&control);
        let thread = std::thread::Builder::new()
            .name(format!("connect-{}", cfg.name))
            .spawn(move || {
                if let Some(p) = predecessor {
                    let _ = p.join();
                }
                run_task(&task_cfg, &env, &task_control)
            })
            .map_err(|e| {
                control.set_state(super::task::TaskState::Failed(format!(
                    "cannot start the task thread: {e}"
                )))
            })
            .ok();
        Running {
            cfg,
            control,
            thread,
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    pub fn config(&self, name: &str) -> Option<ConnectorConfig> {
        self.lock().get(name).map(|r| r.cfg.clone())
    }

    pub fn status(&self, name: &str) -> Option<Status> {
        self.lock().get(name).map(|r| {
            let task = r.control.state();
            Status {
                kind: r.cfg.kind,
                connector_state: if r.control.target() == Target::Pause {
                    "PAUSED"
                } else {
                    "RUNNING"
                },
                task_state: task.name(),
                task_trace: match task {
                    super::task::TaskState::Failed(t) => Some(t),
                    _ => None,
                },
            }
        })
    }

    /// Pause or resume; false when there is no such connector.
    pub fn set_target(&self, name: &str, target: Target) -> bool {
        match self.lock().get(name) {
            Some(r) => {
                r.control.set_target(target);
                tracing::info!(
                    "{name}: {}",
                    if target == Target::Pause {
                        "paused"
                    } else {
                        "resumed"
                    }
                );
                true
            }
            None => false,
        }
    }

    /// Stops the task and starts it again with the same config (a failed task runs
    /// again); false when there is no such connector.
    pub fn restart(&self, name: &str) -> bool {
        let mut all = self.lock();
        let Some(old) = all.remove(name) else {
            return false;
        };
        let paused = old.control.target() == Target::Pause;
        let cfg = old.cfg.clone();
        let predecessor = retire(old);
        tracing::info!("{name}: restarting");
        all.insert(name.to_string(), self.spawn(cfg, paused, predecessor));
        true
    }

    pub fn delete(&self, name: &str) -> bool {
        let removed = self.lock().remove(name);
        match removed {
            Some(r) => {
                stop(r);
                tracing::info!("{name}: deleted");
                true
            }
            None => false,
        }
    }

    /// Stops every connector (sources store their positions, sinks commit and leave),
    /// then writes the offset file.
    pub fn stop_all(&self) {
        let all = std::mem::take(&mut *self.lock());
        for r in all.values() {
            r.control.set_target(Target::Stop);
        }
        for (_, r) in all {
            stop(r);
        }
        if let Err(e) = self.env.offsets.flush() {
            tracing::error!(
                "cannot write the offset file {}: {e}",
                self.config.offset_file.display()
            );
        }
    }
}

/// Tells the task to stop and hands back its thread, to be joined without the lock.
fn retire(mut r: Running) -> Option<JoinHandle<()>> {
    r.control.set_target(Target::Stop);
    r.thread.take()
}

fn stop(r: Running) {
    if let Some(t) = retire(r) {
        let _ = t.join();
    }
}

/// A task thread's body: the connector's loop; an error or a panic marks it FAILED.
fn run_task(cfg: &ConnectorConfig, env: &TaskEnv, control: &TaskControl) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cfg.kind {
        ConnectorKind::FileSource => super::file_source::run(cfg, env, control),
        ConnectorKind::FileSink => super::file_sink::run(cfg, env, control),
    }));
    match result {
        Ok(Ok(())) => tracing::info!("{}: task stopped", cfg.name),
        Ok(Err(why)) => failed(&cfg.name, why, control),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".to_string());
            failed(&cfg.name, format!("task panicked: {why}"), control);
        }
    }
}
