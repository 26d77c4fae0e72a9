//! The crash-state generator: replays a recorder journal onto a model of the disk and
//! builds the file states a power cut at that point allows.
//!
//! ```text
//!  inode: durable bytes (as of its last fdatasync) + pending data ops since
//!         each pending write: dropped | kept | torn (a random subset of its 512-byte
//!         sectors); each pending length change (truncate, fallocate): dropped | kept
//!  dir:   durable entries (as of its last directory fsync) + pending entry ops since
//!         a crash keeps a prefix of each directory's pending ops (0..=n of them)
//! ```
//!
//! Directory operations keep their order within a directory because journaling
//! filesystems (ext4, xfs) commit metadata in order; across directories they are
//! independent here, which is more than ext4 allows. Data of different files, and the
//! pending writes of one file, land independently of each other and of metadata, so a
//! renamed file may keep its new name with none of its unsynced data. A directory
//! removed with its parent's entry keeps nothing below it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::storage::recorder::Op;

/// The unit a disk writes atomically: a torn write keeps some of these and not others.
pub const SECTOR_BYTES: u64 = 512;

#[derive(Debug, Clone)]
enum DataOp {
    Write { pos: u64, data: Vec<u8> },
    SetLen(u64),
    Allocate(u64),
}

#[derive(Debug, Clone, Default)]
struct Inode {
    durable: Vec<u8>,
    pending: Vec<DataOp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    File(usize),
    Dir,
}

#[derive(Debug, Clone)]
enum EntryOp {
    Link(PathBuf, Node),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf),
}

/// What a power cut may do to one pending operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Keep a prefix of this many pending entry ops of a directory (choice 0..=n).
    DirPrefix { dir: usize, ops: usize },
    /// A pending write: 0 dropped, 1 kept, 2 torn (only for writes of 2+ sectors).
    Write { inode: usize, op: usize, torn: bool },
    /// A pending length change: 0 dropped, 1 kept.
    Resize { inode: usize, op: usize },
}

impl Decision {
    fn arity(&self) -> u64 {
        match self {
            Decision::DirPrefix { ops, .. } => *ops as u64 + 1,
            Decision::Write { torn: true, .. } => 3,
            Decision::Write { torn: false, .. } | Decision::Resize { .. } => 2,
        }
    }
}

/// The disk after a journal prefix: what is durable and what is still pending.
pub struct Disk {
    /// Directories that existed (durably) before the journal starts.
    roots: Vec<PathBuf>,
    inodes: Vec<Inode>,
    /// The names the running process saw.
    live: BTreeMap<PathBuf, Node>,
    /// The names a power cut keeps for sure.
    durable: BTreeMap<PathBuf, Node>,
    /// Per directory, its entry operations since its last fsync.
    pending: BTreeMap<PathBuf, Vec<EntryOp>>,
}

/// One crash state: every file and directory a power cut left, with file contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashState {
    pub entries: BTreeMap<PathBuf, Option<Vec<u8>>>,
}

fn parent(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("/")).to_owned()
}

/// Removes `path` and everything below it from `names`.
fn remove_tree(names: &mut BTreeMap<PathBuf, Node>, path: &Path) {
    names.retain(|name, _| !name.starts_with(path));
}

fn apply_entry_op(names: &mut BTreeMap<PathBuf, Node>, op: &EntryOp) {
    match op {
        EntryOp::Link(path, node) => {
            names.insert(path.clone(), *node);
        }
        EntryOp::Unlink(path) => remove_tree(names, path),
        EntryOp::Rename(from, to) => {
            if let Some(node) = names.remove(from) {
                names.insert(to.clone(), node);
            }
        }
    }
}

/// A small, seedable generator (splitmix64): sampling must replay from a printed seed.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

impl Disk {
    /// A disk on which `roots` exist (durably) and nothing else.
    pub fn new(roots: &[PathBuf]) -> Disk {
        let mut durable = BTreeMap::new();
        for root in roots {
            durable.insert(root.clone(), Node::Dir);
        }
        Disk {
            roots: roots.to_vec(),
            inodes: Vec::new(),
            live: durable.clone(),
            durable,
            pending: BTreeMap::new(),
        }
    }

    fn file(&self, path: &Path) -> usize {
        match self.live.get(path) {
            Some(Node::File(inode)) => *inode,
            other => panic!(
                "the journal touches {} which the model holds as {other:?}",
                path.display()
            ),
        }
    }

    fn entry_op(&mut self, dir: PathBuf, op: EntryOp) {
        self.pending.entry(dir).or_default().push(op);
    }

    /// Applies one journaled operation (acks and marks change no file).
    pub fn apply(&mut self, op: Op) {
        match op {
            Op::Create { path } => {
                let node = Node::File(self.inodes.len());
                self.inodes.push(Inode::default());
                self.live.insert(path.clone(), node);
                self.entry_op(parent(&path), EntryOp::Link(path, node));
            }
            Op::Mkdir { path } => {
                self.live.insert(path.clone(), Node::Dir);
                self.entry_op(parent(&path), EntryOp::Link(path, Node::Dir));
            }
            Op::Write { path, pos, data } => {
                let inode = self.file(&path);
                self.inodes[inode].pending.push(DataOp::Write { pos, data });
            }
            Op::SetLen { path, size } => {
                let inode = self.file(&path);
                self.inodes[inode].pending.push(DataOp::SetLen(size));
            }
            Op::Allocate { path, size } => {
                let inode = self.file(&path);
                self.inodes[inode].pending.push(DataOp::Allocate(size));
            }
            Op::SyncFile { path } => {
                let inode = self.file(&path);
                let inode = &mut self.inodes[inode];
                for op in std::mem::take(&mut inode.pending) {
                    apply_data_op(&mut inode.durable, &op, None);
                }
            }
            Op::SyncDir { path } => {
                for op in self.pending.remove(&path).unwrap_or_default() {
                    apply_entry_op(&mut self.durable, &op);
                }
            }
            Op::Rename { from, to } => {
                assert_eq!(parent(&from), parent(&to), "renames stay in one directory");
                let node = self.live.remove(&from).expect("renamed file exists");
                self.live.insert(to.clone(), node);
                self.entry_op(parent(&to), EntryOp::Rename(from, to));
            }
            Op::Unlink { path } => {
                self.live.remove(&path);
                self.entry_op(parent(&path), EntryOp::Unlink(path));
            }
            Op::RemoveTree { path } => {
                remove_tree(&mut self.live, &path);
                // Whatever was pending inside is moot once the tree's entry goes, and a
                // crash that undoes the removal may show the tree as last synced.
                self.pending.retain(|dir, _| !dir.starts_with(&path));
                self.entry_op(parent(&path), EntryOp::Unlink(path));
            }
            Op::Ack { .. } | Op::Mark { .. } => {}
        }
    }

    /// Inodes a crash state can show: named durably or by a pending entry op.
    fn reachable(&self) -> BTreeSet<usize> {
        let mut inodes = BTreeSet::new();
        let linked = self.pending.values().flatten().filter_map(|op| match op {
            EntryOp::Link(_, Node::File(inode)) => Some(*inode),
            _ => None,
        });
        inodes.extend(linked);
        inodes.extend(self.durable.values().filter_map(|node| match node {
            Node::File(inode) => Some(*inode),
            Node::Dir => None,
        }));
        inodes
    }

    fn decisions(&self) -> Vec<Decision> {
        let mut decisions: Vec<Decision> = self
            .pending
            .values()
            .enumerate()
            .filter(|(_, ops)| !ops.is_empty())
            .map(|(dir, ops)| Decision::DirPrefix {
                dir,
                ops: ops.len(),
            })
            .collect();
        for inode in self.reachable() {
            for (op, data_op) in self.inodes[inode].pending.iter().enumerate() {
                decisions.push(match data_op {
                    DataOp::Write { pos, data } => Decision::Write {
                        inode,
                        op,
                        torn: sectors(*pos, data.len() as u64) > 1,
                    },
                    DataOp::SetLen(_) | DataOp::Allocate(_) => Decision::Resize { inode, op },
                });
            }
        }
        decisions
    }

    /// Up to `budget` crash states for a power cut now: all of them when that many
    /// cover every combination, else `budget` sampled from `rng` (the first two always
    /// "nothing pending reached the disk" and "everything did").
    pub fn crash_states(&self, budget: u64, rng: &mut Rng) -> Vec<CrashState> {
        let decisions = self.decisions();
        let combinations = decisions
            .iter()
            .try_fold(1u64, |n, d| n.checked_mul(d.arity()))
            .unwrap_or(u64::MAX);
        let choices: Vec<Vec<u64>> = if combinations <= budget {
            (0..combinations)
                .map(|mut n| {
                    let arities = decisions.iter().map(Decision::arity);
                    arities
                        .map(|a| {
                            let c = n % a;
                            n /= a;
                            c
                        })
                        .collect()
                })
                .collect()
        } else {
            let none = vec![0; decisions.len()];
            let all: Vec<u64> = decisions.iter().map(|d| d.arity().min(2) - 1).collect();
            let all = decisions
                .iter()
                .zip(all)
                .map(|(d, c)| match d {
                    Decision::DirPrefix { ops, .. } => *ops as u64,
                    _ => c,
                })
                .collect();
            let sampled = (2..budget).map(|_| {
                let arities = decisions.iter().map(Decision::arity);
                arities.map(|a| rng.below(a)).collect()
            });
            [none, all]
                .into_iter()
                .chain(sampled)
                .take(budget as usize)
                .collect()
        };
        choices
            .iter()
            .map(|c| self.build(&decisions, c, rng))
            .collect()
    }

    fn build(&self, decisions: &[Decision], choices: &[u64], rng: &mut Rng) -> CrashState {
        let mut names = self.durable.clone();
        let dirs: Vec<&Vec<EntryOp>> = self.pending.values().collect();
        let mut data_choice: BTreeMap<(usize, usize), Option<Vec<bool>>> = BTreeMap::new();
        let mut dropped: BTreeSet<(usize, usize)> = BTreeSet::new();
        for (decision, &choice) in decisions.iter().zip(choices) {
            match *decision {
                Decision::DirPrefix { dir, .. } => {
                    for op in &dirs[dir][..choice as usize] {
                        apply_entry_op(&mut names, op);
                    }
                }
                Decision::Write { inode, op, .. } if choice == 2 => {
                    let DataOp::Write { pos, data } = &self.inodes[inode].pending[op] else {
                        unreachable!("a write decision names a write");
                    };
                    let mask = torn_mask(sectors(*pos, data.len() as u64), rng);
                    data_choice.insert((inode, op), Some(mask));
                }
                Decision::Write { inode, op, .. } | Decision::Resize { inode, op } => {
                    if choice == 0 {
                        dropped.insert((inode, op));
                    }
                }
            }
        }
        let mut entries = BTreeMap::new();
        for (path, node) in &names {
            let parent_kept = self.roots.contains(path)
                || self.roots.contains(&parent(path))
                || names.get(&parent(path)) == Some(&Node::Dir);
            if !parent_kept || self.roots.contains(path) {
                continue;
            }
            let content = match node {
                Node::Dir => None,
                Node::File(inode) => {
                    let inode_state = &self.inodes[*inode];
                    let mut bytes = inode_state.durable.clone();
                    for (i, op) in inode_state.pending.iter().enumerate() {
                        if dropped.contains(&(*inode, i)) {
                            continue;
                        }
                        let mask = data_choice.get(&(*inode, i)).and_then(|m| m.as_deref());
                        apply_data_op(&mut bytes, op, mask);
                    }
                    Some(bytes)
                }
            };
            entries.insert(path.clone(), content);
        }
        // A directory whose own entry went keeps nothing below it.
        let kept: Vec<PathBuf> = entries.keys().cloned().collect();
        entries.retain(|path, _| {
            let p = parent(path);
            self.roots.contains(&p) || kept.contains(&p)
        });
        CrashState { entries }
    }
}

/// Sectors a write of `len` bytes at `pos` touches.
fn sectors(pos: u64, len: u64) -> u64 {
    if len == 0 {
        return 0;
    }
    (pos + len).div_ceil(SECTOR_BYTES) - pos / SECTOR_BYTES
}

/// A random subset of `n` sectors, neither empty nor all of them (n >= 2).
fn torn_mask(n: u64, rng: &mut Rng) -> Vec<bool> {
    loop {
        let mask: Vec<bool> = (0..n).map(|_| rng.below(2) == 1).collect();
        if mask.iter().any(|&k| k) && !mask.iter().all(|&k| k) {
            return mask;
        }
    }
}

/// Applies a data op to file contents; `mask` keeps only some sectors of a write.
fn apply_data_op(bytes: &mut Vec<u8>, op: &DataOp, mask: Option<&[bool]>) {
    match op {
        DataOp::SetLen(size) => bytes.resize(*size as usize, 0),
        DataOp::Allocate(size) => {
            if bytes.len() < *size as usize {
                bytes.resize(*size as usize, 0);
            }
        }
        DataOp::Write { pos, data } => {
            let first_sector = pos / SECTOR_BYTES;
            let end = pos + data.len() as u64;
            let mut sector = first_sector;
            while sector * SECTOR_BYTES < end {
                let keep = mask.is_none_or(|m| m[(sector - first_sector) as usize]);
                let from = (sector * SECTOR_BYTES).max(*pos);
                let to = ((sector + 1) * SECTOR_BYTES).min(end);
                if keep {
                    if bytes.len() < to as usize {
                        bytes.resize(to as usize, 0);
                    }
                    bytes[from as usize..to as usize]
                        .copy_from_slice(&data[(from - pos) as usize..(to - pos) as usize]);
                }
                sector += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn write(path: &str, pos: u64, data: &[u8]) -> Op {
        Op::Write {
            path: p(path),
            pos,
            data: data.to_vec(),
        }
    }

    fn all_states(disk: &Disk) -> Vec<CrashState> {
        disk.crash_states(1_000, &mut Rng(1))
    }

    #[test]
    fn synced_data_survives_and_unsynced_writes_drop_keep_or_tear() {
        let mut disk = Disk::new(&[p("/r")]);
        disk.apply(Op::Create { path: p("/r/f") });
        disk.apply(Op::SyncDir { path: p("/r") });
        disk.apply(write("/r/f", 0, &[1; 100]));
        disk.apply(Op::SyncFile { path: p("/r/f") });
        assert_eq!(all_states(&disk).len(), 1);
        disk.apply(write("/r/f", 0, &[2; 1024]));
        let states = all_states(&disk);
        let contents: Vec<Vec<u8>> = states
            .iter()
            .map(|s| s.entries[&p("/r/f")].clone().unwrap())
            .collect();
        assert_eq!(contents.len(), 3, "dropped, kept, torn");
        assert_eq!(contents[0], vec![1; 100]);
        assert_eq!(contents[1], vec![2; 1024]);
        // Torn: the first sector alone (the file ends there), or the second alone
        // (the first keeps the old bytes, then zeros up to the second).
        let first_only = vec![2; 512];
        let second_only = [vec![1; 100], vec![0; 412], vec![2; 512]].concat();
        assert!(contents[2] == first_only || contents[2] == second_only);
    }

    #[test]
    fn unsynced_directory_ops_are_undone_in_order() {
        let mut disk = Disk::new(&[p("/r")]);
        disk.apply(Op::Create {
            path: p("/r/a.tmp"),
        });
        disk.apply(write("/r/a.tmp", 0, b"new"));
        disk.apply(Op::SyncFile {
            path: p("/r/a.tmp"),
        });
        disk.apply(Op::Rename {
            from: p("/r/a.tmp"),
            to: p("/r/a"),
        });
        let names: Vec<Vec<PathBuf>> = all_states(&disk)
            .iter()
            .map(|s| s.entries.keys().cloned().collect())
            .collect();
        assert_eq!(names, vec![vec![], vec![p("/r/a.tmp")], vec![p("/r/a")]]);
        disk.apply(Op::SyncDir { path: p("/r") });
        disk.apply(Op::Unlink { path: p("/r/a") });
        let states = all_states(&disk);
        assert_eq!(states.len(), 2, "the unlink may be undone");
        assert_eq!(states[0].entries[&p("/r/a")], Some(b"new".to_vec()));
        assert!(states[1].entries.is_empty());
    }

    #[test]
    fn files_in_a_lost_directory_are_lost() {
        let mut disk = Disk::new(&[p("/r")]);
        disk.apply(Op::Mkdir { path: p("/r/d") });
        disk.apply(Op::Create { path: p("/r/d/f") });
        disk.apply(Op::SyncDir { path: p("/r/d") });
        let states = all_states(&disk);
        assert_eq!(states.len(), 2);
        assert!(states[0].entries.is_empty());
        assert_eq!(states[1].entries.len(), 2);
    }

    #[test]
    fn sampling_replays_from_its_seed() {
        let mut disk = Disk::new(&[p("/r")]);
        disk.apply(Op::Create { path: p("/r/f") });
        for i in 0..20 {
            disk.apply(write("/r/f", i * 4096, &[i as u8 + 1; 4096]));
        }
        let a = disk.crash_states(50, &mut Rng(7));
        let b = disk.crash_states(50, &mut Rng(7));
        assert_eq!(a.len(), 50);
        assert_eq!(a, b);
        assert!(
            a[0].entries.is_empty(),
            "first sample: nothing pending landed"
        );
        assert_eq!(a[1].entries[&p("/r/f")].as_ref().unwrap().len(), 20 * 4096);
    }
}
