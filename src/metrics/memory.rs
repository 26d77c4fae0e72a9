//! The memory families of `/metrics`: each shard's bounded structures
//! (`broker::memory`), and the process' resident set and glibc malloc's own view, so
//! that RSS minus the accounted bytes can be split into allocator overhead (free bytes
//! malloc keeps, `corelog_malloc_free_bytes`) and what no gauge names yet.
//!
//! Rendered whether or not `metrics.enable` records (they are read at the scrape).

use std::fmt::Write;

use super::prometheus::{family, sample};
use crate::broker::memory::ShardMemory;

/// The process as the kernel and the allocator see it, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessMemory {
    /// Resident set (`/proc/self/statm`), 0 if it could not be read.
    pub resident_bytes: u64,
    /// glibc `mallinfo2`, summed over every arena: bytes handed out from the arenas
    /// and not freed ...
    pub malloc_in_use_bytes: u64,
    /// ... free bytes kept in the arenas (fragmentation, or not yet trimmed) ...
    pub malloc_free_bytes: u64,
    /// ... and live blocks malloc mmapped on their own (large allocations, not in the
    /// arenas).
    pub malloc_mmapped_bytes: u64,
}

impl ProcessMemory {
    pub fn read() -> ProcessMemory {
        let mut m = ProcessMemory {
            resident_bytes: resident_bytes().unwrap_or(0),
            ..ProcessMemory::default()
        };
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallinfo2 takes no arguments and returns a plain struct; it only
            // takes each arena's lock while summing.
            let info = unsafe { libc::mallinfo2() };
            m.malloc_in_use_bytes = info.uordblks as u64;
            m.malloc_free_bytes = info.fordblks as u64;
            m.malloc_mmapped_bytes = info.hblkhd as u64;
        }
        m
    }
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096))
}

/// Appends the memory families for `shards` (in shard order) and `process`.
pub fn render(out: &mut String, shards: &[ShardMemory], process: &ProcessMemory) {
    let name = "corelog_memory_bytes";
    family(
        out,
        name,
        "Bytes a shard holds in each bounded structure (pending_batches and read_ahead exactly; batch_cache as charged against its bound, batch bytes plus 160 per batch; indexes, producer_state, groups and fetch_sessions estimated).",
        "gauge",
    );
    for s in shards {
        let shard = s.shard.to_string();
        for (structure, bytes, _) in s.structures() {
            sample(
                out,
                name,
                &[("shard", &shard), ("structure", structure)],
                bytes as u64,
            );
        }
    }
    let name = "corelog_memory_bound_bytes";
    family(
        out,
        name,
        "The bound of a structure of corelog_memory_bytes on this shard, for those with one.",
        "gauge",
    );
    for s in shards {
        let shard = s.shard.to_string();
        for (structure, _, bound) in s.structures() {
            if let Some(bound) = bound {
                sample(
                    out,
                    name,
                    &[("shard", &shard), ("structure", structure)],
                    bound as u64,
                );
            }
        }
    }
    let name = "corelog_memory_entries";
    family(
        out,
        name,
        "Items a shard holds: partitions, cached batches, producer ids (summed over partitions), groups, group members, committed offsets, transactional ids, fetch sessions and their partitions.",
        "gauge",
    );
    for s in shards {
        let shard = s.shard.to_string();
        for (structure, n) in s.entries() {
            sample(
                out,
                name,
                &[("shard", &shard), ("structure", structure)],
                n as u64,
            );
        }
    }
    let total: usize = shards.iter().map(ShardMemory::accounted_bytes).sum();
    for (name, help, value) in [
        (
            "corelog_memory_accounted_bytes",
            "Sum of corelog_memory_bytes over shards and structures.",
            total as u64,
        ),
        (
            "corelog_process_resident_bytes",
            "The broker process' resident set size.",
            process.resident_bytes,
        ),
        (
            "corelog_malloc_in_use_bytes",
            "Bytes allocated from glibc malloc's arenas and not freed (mallinfo2 uordblks, all arenas; large blocks malloc mmapped on their own are corelog_malloc_mmapped_bytes).",
            process.malloc_in_use_bytes,
        ),
        (
            "corelog_malloc_free_bytes",
            "Free bytes glibc malloc keeps in its arenas (mallinfo2 fordblks): allocator overhead in RSS where those pages are touched.",
            process.malloc_free_bytes,
        ),
        (
            "corelog_malloc_mmapped_bytes",
            "Bytes of live allocations glibc malloc mmapped on their own (mallinfo2 hblkhd), beside corelog_malloc_in_use_bytes.",
            process.malloc_mmapped_bytes,
        ),
    ] {
        family(out, name, help, "gauge");
        let _ = writeln!(out, "{name} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LogMemory;

    #[test]
    fn renders_each_shards_structures_bounds_and_the_process() {
        let shard = |id, cache| ShardMemory {
            shard: id,
            partitions: 3,
            logs: LogMemory {
                cache_bytes: cache,
                cache_bytes_max: 24 << 20,
                index_bytes: 10,
                ..LogMemory::default()
            },
            read_ahead_bytes_max: 96 << 20,
            ..ShardMemory::default()
        };
        let process = ProcessMemory {
            resident_bytes: 1000,
            malloc_in_use_bytes: 600,
            malloc_free_bytes: 300,
            malloc_mmapped_bytes: 50,
        };
        let mut out = String::new();
        render(&mut out, &[shard(0, 100), shard(1, 200)], &process);
        let has = |line: &str| out.lines().any(|l| l == line);
        assert!(has(
            r#"corelog_memory_bytes{shard="0",structure="batch_cache"} 100"#
        ));
        assert!(has(
            r#"corelog_memory_bytes{shard="1",structure="batch_cache"} 200"#
        ));
        assert!(has(
            r#"corelog_memory_bytes{shard="1",structure="indexes"} 10"#
        ));
        assert!(has(
            r#"corelog_memory_bound_bytes{shard="0",structure="batch_cache"} 25165824"#
        ));
        assert!(has(
            r#"corelog_memory_bound_bytes{shard="0",structure="read_ahead"} 100663296"#
        ));
        assert!(!out.contains(r#"corelog_memory_bound_bytes{shard="0",structure="indexes"}"#));
        assert!(has(
            r#"corelog_memory_entries{shard="0",structure="partitions"} 3"#
        ));
        assert!(has("corelog_memory_accounted_bytes 320"));
        assert!(has("corelog_process_resident_bytes 1000"));
        assert!(has("corelog_malloc_free_bytes 300"));
        assert_eq!(out.matches("# TYPE corelog_memory_bytes gauge").count(), 1);
    }

    #[test]
    fn reads_this_process() {
        let m = ProcessMemory::read();
        assert!(m.resident_bytes > 0);
        let _keep = vec![1u8; 1 << 16];
        assert!(
            ProcessMemory::read().malloc_in_use_bytes + ProcessMemory::read().malloc_mmapped_bytes
                > 0
        );
    }
}
