//! Injected I/O faults, for testing what a failing disk does to the broker (KIP-112)
//! on machines where a real failing device cannot be made.
//!
//! Off unless the broker starts with `CORELOG_FAULT_INJECTION=<control file>`: a
//! watcher thread then re-reads that file every [`POLL_INTERVAL`]; each non-empty line
//! names a directory, and every storage operation on a path inside one fails with EIO
//! from then on. Disarmed, a check is one relaxed atomic load.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Duration;

/// The environment variable that arms fault injection.
pub const CONTROL_FILE_ENV: &str = "CORELOG_FAULT_INJECTION";
/// How often the control file is re-read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

static ARMED: AtomicBool = AtomicBool::new(false);
static FAILING: RwLock<Vec<PathBuf>> = RwLock::new(Vec::new());

/// Starts the watcher if the environment asks for it. Called once at start-up.
pub fn arm_from_env() {
    let Some(control) = std::env::var_os(CONTROL_FILE_ENV) else {
        return;
    };
    let control = PathBuf::from(control);
    tracing::warn!(control = %control.display(), "I/O fault injection is armed (testing only)");
    ARMED.store(true, Ordering::Release);
    reload(&control);
    let spawned = std::thread::Builder::new()
        .name("fault-injection".into())
        .spawn(move || loop {
            std::thread::sleep(POLL_INTERVAL);
            reload(&control);
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the fault injection watcher: {e}");
    }
}

fn reload(control: &Path) {
    let dirs: Vec<PathBuf> = std::fs::read_to_string(control)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    *FAILING.write().unwrap_or_else(|e| e.into_inner()) = dirs;
}

/// EIO if `path` is inside a directory made to fail.
pub fn check_blocking(path: &Path) -> std::io::Result<()> {
    if !ARMED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let failing = FAILING.read().unwrap_or_else(|e| e.into_inner());
    if failing.iter().any(|d| path.starts_with(d)) {
        return Err(std::io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
}

/// [`check_blocking`] as a storage error naming the file.
pub fn check(path: &Path) -> Result<(), super::StorageError> {
    check_blocking(path).map_err(|e| super::StorageError::io(path, e))
}
