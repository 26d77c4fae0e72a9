//! DescribeLogDirs (kafka-log-dirs.sh): each log dir with its state, its partitions'
//! sizes (offset lag is always 0: there is no future replica to catch up), and in v4
//! the file system's total and usable bytes. An offline dir answers
//! KAFKA_STORAGE_ERROR with no partitions, as Kafka does.

use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;

use bytes::BytesMut;
use futures::future::{join_all, FutureExt};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::{decode, respond, str_bytes, topic_name, Outcome, RequestError};
use crate::broker::shard::Shard;
use crate::protocol::errors as ec;
use crate::security::acl::{Access, Operation};

/// (dir index, topic, partition, size in bytes) of one partition.
type Sized = (usize, String, i32, u64);

pub async fn handle(
    shard: Rc<Shard>,
    version: i16,
    body: BytesMut,
    access: Access,
) -> Result<Outcome, RequestError> {
    let req: DescribeLogDirsRequest = decode(ApiKey::DescribeLogDirs, version, body)?;
    if !access.cluster(Operation::Describe) {
        // Kafka: DESCRIBE on the cluster, else the top-level error (v3+) and no dirs.
        let mut resp = DescribeLogDirsResponse::default();
        resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
        return respond(ApiKey::DescribeLogDirs, version, &resp);
    }
    let wanted: Option<HashSet<(String, i32)>> = req.topics.as_ref().map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.0.to_string(), p)))
            .collect()
    });
    let asks = (0..shard.broker.shard_count).map(|id| {
        shard.run_on(id, |s| {
            async move {
                s.owned_logs_with_dirs()
                    .into_iter()
                    .map(|(t, p, d, log)| (d, t, p, log.size_bytes()))
                    .collect::<Vec<Sized>>()
            }
            .boxed_local()
        })
    });
    let sized: Vec<Sized> = join_all(asks)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    let broker = &shard.broker;
    // Paths and file-system sizes need syscalls that can stall on a sick disk: off the
    // shard thread, on the blocking pool.
    let dirs = broker.log_dirs.clone();
    let fs: Vec<(String, Option<(i64, i64)>)> =
        crate::runtime::blocking(move || dirs.iter().map(|d| (absolute(d), fs_space(d))).collect())
            .await;
    let mut resp = DescribeLogDirsResponse::default();
    for (i, (path, space)) in fs.into_iter().enumerate() {
        let mut r = DescribeLogDirsResult::default();
        r.log_dir = str_bytes(&path);
        if broker.dirs.is_offline(i) {
            r.error_code = ec::KAFKA_STORAGE_ERROR;
            r.total_bytes = -1;
            r.usable_bytes = -1;
            resp.results.push(r);
            continue;
        }
        let mut topics: BTreeMap<String, Vec<(i32, u64)>> = BTreeMap::new();
        for (d, t, p, size) in &sized {
            let included = wanted.as_ref().is_none_or(|w| w.contains(&(t.clone(), *p)));
            if *d == i && included {
                topics.entry(t.clone()).or_default().push((*p, *size));
            }
        }
        r.topics = topics
            .into_iter()
            .map(|(name, mut parts)| {
                parts.sort_unstable();
                let mut t = DescribeLogDirsTopic::default();
                t.name = topic_name(&name);
                t.partitions = parts
                    .into_iter()
                    .map(|(p, size)| {
                        let mut e = DescribeLogDirsPartition::default();
                        e.partition_index = p;
                        e.partition_size = size as i64;
                        e.offset_lag = 0;
                        e.is_future_key = false;
                        e
                    })
                    .collect();
                t
            })
            .collect();
        let (total, usable) = space.unwrap_or((-1, -1));
        r.total_bytes = total;
        r.usable_bytes = usable;
        resp.results.push(r);
    }
    respond(ApiKey::DescribeLogDirs, version, &resp)
}

/// The dir as an absolute path, as Kafka reports it.
fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// Total and available bytes of the file system holding `path` (statvfs: a cheap
/// metadata call).
fn fs_space(path: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as i64;
    Some((st.f_blocks as i64 * frsize, st.f_bavail as i64 * frsize))
}
