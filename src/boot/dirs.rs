//! Log dirs at start-up (main thread, before any shard runs, so std::fs is fine here):
//! create each dir, take an exclusive lock on it so two brokers never share a dir, and
//! check or write `meta.properties` (node.id, cluster.id, version) as Kafka does.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const META_PROPERTIES: &str = "meta.properties";
pub const LOCK_FILE: &str = ".lock";

#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("log dir {dir}: {what}: {source}")]
    Io {
        dir: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("log dir {dir} is in use by another broker (lock held on {dir}/.lock)")]
    Locked { dir: String },
    #[error(
        "log dir {dir} belongs to node.id {found}, not {expected}: \
         point log.dirs elsewhere or set node.id={found}"
    )]
    WrongNode {
        dir: String,
        found: i32,
        expected: i32,
    },
    #[error("log dirs disagree on cluster.id ({a} in one, {b} in another)")]
    ClusterMismatch { a: String, b: String },
}

/// Open log dirs: the lock files stay open (and locked) for the broker's lifetime.
pub struct LogDirs {
    pub dirs: Vec<PathBuf>,
    pub cluster_id: String,
    /// Per dir: why it is unusable (an I/O error at start-up), if it is. The broker
    /// starts without it, as Kafka does (KIP-112); the first dir, which holds the
    /// topic metadata, must be usable.
    pub offline: Vec<Option<String>>,
    _locks: Vec<File>,
}

/// Prepares every log dir. `cluster_id` from the config wins when the dirs have none.
/// A dir that fails with an I/O error is reported offline (not fatal) unless it is
/// the first one; a dir of another node or cluster, or locked by another broker, is a
/// configuration error and stops the start.
pub fn prepare(dirs: &[PathBuf], node_id: i32, cluster_id: &str) -> Result<LogDirs, DirError> {
    let mut locks = Vec::new();
    let mut offline: Vec<Option<String>> = vec![None; dirs.len()];
    let mut found_cluster: Option<String> = None;
    for (i, d) in dirs.iter().enumerate() {
        let io = |what| {
            move |source| DirError::Io {
                dir: d.display().to_string(),
                what,
                source,
            }
        };
        let checked = fs::create_dir_all(d)
            .map_err(io("cannot create"))
            .and_then(|()| crate::storage::fault::check_blocking(d).map_err(io("cannot use")))
            .and_then(|()| lock(d))
            .and_then(|l| {
                read_meta(d)
                    .map_err(io("cannot read meta.properties"))
                    .map(|m| (l, m))
            });
        let (lock_file, meta) = match checked {
            Ok(ok) => ok,
            Err(e @ DirError::Io { .. }) if i > 0 => {
                tracing::error!("{e}; starting without this log dir (its partitions are offline)");
                offline[i] = Some(e.to_string());
                continue;
            }
            Err(e) => return Err(e),
        };
        locks.push(lock_file);
        if let Some((node, cluster)) = meta {
            if node != node_id {
                return Err(DirError::WrongNode {
                    dir: d.display().to_string(),
                    found: node,
                    expected: node_id,
                });
            }
            match &found_cluster {
                Some(c) if *c != cluster => {
                    return Err(DirError::ClusterMismatch {
                        a: c.clone(),
                        b: cluster,
                    })
                }
                _ => found_cluster = Some(cluster),
            }
        }
    }
    let cluster_id = found_cluster.unwrap_or_else(|| {
        if cluster_id.is_empty() {
            crate::util::cluster_id()
        } else {
            cluster_id.to_string()
        }
    });
    for (i, d) in dirs.iter().enumerate() {
        if offline[i].is_some() {
            continue;
        }
        let written = write_meta(d, node_id, &cluster_id).map_err(|source| DirError::Io {
            dir: d.display().to_string(),
            what: "cannot write meta.properties",
            source,
        });
        match written {
            Err(e) if i > 0 => {
                tracing::error!("{e}; starting without this log dir (its partitions are offline)");
                offline[i] = Some(e.to_string());
            }
            other => other?,
        }
    }
    Ok(LogDirs {
        dirs: dirs.to_vec(),
        cluster_id,
        offline,
        _locks: locks,
    })
}

fn lock(dir: &Path) -> Result<File, DirError> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(|source| DirError::Io {
            dir: dir.display().to_string(),
            what: "cannot open lock file",
            source,
        })?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(DirError::Locked {
            dir: dir.display().to_string(),
        });
    }
    Ok(f)
}

fn read_meta(dir: &Path) -> std::io::Result<Option<(i32, String)>> {
    let text = match fs::read_to_string(dir.join(META_PROPERTIES)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut node = None;
    let mut cluster = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        match line.split_once('=') {
            Some(("node.id" | "broker.id", v)) => node = v.trim().parse().ok(),
            Some(("cluster.id", v)) => cluster = Some(v.trim().to_string()),
            _ => {}
        }
    }
    match (node, cluster) {
        (Some(n), Some(c)) => Ok(Some((n, c))),
        _ => Err(std::io::Error::other(
            "meta.properties lacks node.id or cluster.id",
        )),
    }
}

/// Writes meta.properties unless it already says exactly this: a rewrite needs a new
/// file (write, sync, rename), which fails on a full disk, and a dir whose disk filled
/// up must still come up so its records can be read.
fn write_meta(dir: &Path, node_id: i32, cluster_id: &str) -> std::io::Result<()> {
    let text = format!("#corelog\nnode.id={node_id}\ncluster.id={cluster_id}\nversion=1\n");
    let path = dir.join(META_PROPERTIES);
    if fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    crate::util::write_file_atomic_blocking(&path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_meta_and_refuses_another_node() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d0");
        let first = prepare(std::slice::from_ref(&d), 1, "").unwrap();
        let cluster = first.cluster_id.clone();
        assert_eq!(cluster.len(), 22);
        // A second broker on the same dir is refused while the first holds it.
        assert!(matches!(
            prepare(std::slice::from_ref(&d), 1, ""),
            Err(DirError::Locked { .. })
        ));
        drop(first);
        let again = prepare(std::slice::from_ref(&d), 1, "").unwrap();
        assert_eq!(again.cluster_id, cluster);
        drop(again);
        assert!(matches!(
            prepare(&[d], 2, ""),
            Err(DirError::WrongNode {
                found: 1,
                expected: 2,
                ..
            })
        ));
    }

    #[test]
    fn meta_already_right_is_not_rewritten() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d0");
        let first = prepare(std::slice::from_ref(&d), 1, "").unwrap();
        let cluster = first.cluster_id.clone();
        drop(first);
        let meta = d.join(META_PROPERTIES);
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let before = inode(&meta);
        // Same node and cluster: the file is left as it is (no write-and-rename, which
        // would need free space).
        drop(prepare(std::slice::from_ref(&d), 1, "").unwrap());
        assert_eq!(inode(&meta), before);
        // A file that says something else (an older format) is rewritten.
        fs::write(&meta, format!("broker.id=1\ncluster.id={cluster}\n")).unwrap();
        let again = prepare(std::slice::from_ref(&d), 1, "").unwrap();
        assert_eq!(again.cluster_id, cluster);
        assert_eq!(
            fs::read_to_string(&meta).unwrap(),
            format!("#corelog\nnode.id=1\ncluster.id={cluster}\nversion=1\n")
        );
    }
}
