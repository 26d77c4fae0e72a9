//! FileStreamSource: follows a file's appended lines and produces each line as one
//! record (null key, value through the value converter) to `topic`, `batch.size` lines
//! per batch.
//!
//! Delivery: the file position moves only after the broker acknowledged the batch, so
//! a broker outage loses nothing (the batch is sent again once it answers). The
//! position reaches the offset file every `offset.flush.interval.ms` and on a clean
//! stop; after a clean stop a restart resumes exactly after the last acknowledged line
//! (after a crash, lines since the last flush are sent again: at-least-once, as Kafka).
//!
//! Positions count bytes (Kafka's task counts Java chars); a line ends at `\n`, `\r\n`
//! or a lone `\r`, as in Kafka. A last line without its line end waits for it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::client::Cluster;
use crate::cli::produce::{send_records, Partitioner, ProduceOptions, ProduceSummary};
use crate::cli::records::Message;
use crate::cli::topic::leaders;

use super::config::ConnectorConfig;
use super::offsets::source_key;
use super::task::{classify, describe_client_error, Backoff, SendError, TaskControl};
use super::worker::TaskEnv;

/// How long the source waits for more lines when it reached the end of the file.
const SOURCE_IDLE_WAIT: Duration = Duration::from_millis(200);
/// How often a missing file is looked for again (Kafka's task waits 1 s too).
const MISSING_FILE_RETRY: Duration = Duration::from_secs(1);
/// How often the "file does not exist" warning repeats while it stays missing.
const MISSING_FILE_WARN_INTERVAL: Duration = Duration::from_secs(30);
/// Bytes read from the file per read call.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// Bytes held of one line before the source gives up on it (a file with no newlines).
const LINE_BYTES_MAX: usize = 16 << 20;

/// An open file, read from the position after the last line handed out.
struct LineReader {
    file: File,
    /// Bytes read but not yet handed out as lines.
    buf: Vec<u8>,
    /// File position of `buf[0]`.
    buf_start: u64,
}

impl LineReader {
    fn open(path: &Path, position: u64) -> std::io::Result<LineReader> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let start = if position > len {
            tracing::warn!(
                "{}: the file is shorter ({len} bytes) than the stored position {position}: it was truncated or replaced; reading it from the start",
                path.display()
            );
            0
        } else {
            position
        };
        file.seek(SeekFrom::Start(start))?;
        Ok(LineReader {
            file,
            buf: Vec::new(),
            buf_start: start,
        })
    }

    /// Up to `max` complete lines and the file position after the last of them.
    fn read_lines(&mut self, max: usize) -> std::io::Result<(Vec<String>, u64)> {
        // Read on unless `max` lines are already buffered (a trailing `\r` may be half
        // of a line end, so it never counts as complete).
        if self.buf.last() == Some(&b'\r')
            || self.buf.iter().filter(|b| is_line_end(**b)).count() < max
        {
            let mut chunk = vec![0u8; READ_CHUNK_BYTES];
            let n = self.file.read(&mut chunk)?;
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let mut lines = Vec::new();
        let mut used = 0;
        while lines.len() < max {
            let Some(end) = self.buf[used..].iter().position(|b| is_line_end(*b)) else {
                break;
            };
            let at = used + end;
            // As Kafka's task: `\n`, `\r\n` and a lone `\r` end a line; a `\r` that is
            // the last byte read so far waits, in case its `\n` is still being written.
            let next = match (self.buf[at], self.buf.get(at + 1)) {
                (b'\n', _) => at + 1,
                (_, Some(b'\n')) => at + 2,
                (_, Some(_)) => at + 1,
                (_, None) => break,
            };
            lines.push(String::from_utf8_lossy(&self.buf[used..at]).into_owned());
            used = next;
        }
        if used == 0 && self.buf.len() > LINE_BYTES_MAX {
            return Err(std::io::Error::other(format!(
                "a line longer than {LINE_BYTES_MAX} bytes at position {}",
                self.buf_start
            )));
        }
        self.buf.drain(..used);
        self.buf_start += used as u64;
        Ok((lines, self.buf_start))
    }
}

fn is_line_end(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

/// The broker side: a connection and the topic's leaders.
struct Link {
    cluster: Cluster,
    leader_of: BTreeMap<i32, i32>,
}

struct Source<'a> {
    cfg: &'a ConnectorConfig,
    env: &'a TaskEnv,
    control: &'a TaskControl,
    path: PathBuf,
    key: String,
    opts: ProduceOptions,
    /// Position after the last acknowledged line.
    position: u64,
    reader: Option<LineReader>,
    link: Option<Link>,
    /// Lines read and not yet acknowledged, and the position after them.
    pending: Vec<String>,
    pending_end: u64,
    batches_sent: u64,
    /// A send failed and has not succeeded since (the next connection is logged).
    retrying: bool,
    last_flush: Instant,
    missing_since: Option<Instant>,
    missing_warned: Option<Instant>,
}

/// Runs the task until it is stopped or fails; the caller reports a failure.
pub fn run(cfg: &ConnectorConfig, env: &TaskEnv, control: &TaskControl) -> Result<(), String> {
    let path = cfg.file.clone().expect("config checks a source has a file");
    let key = source_key(&cfg.name, &path);
    let position = env.offsets.get(&key).unwrap_or(0);
    tracing::info!(
        "{}: reading {} from position {position} into topic {}",
        cfg.name,
        path.display(),
        cfg.topic
    );
    let mut s = Source {
        cfg,
        env,
        control,
        path,
        key,
        opts: ProduceOptions {
            topic: cfg.topic.clone(),
            key_separator: None,
            headers: Vec::new(),
            acks: env.clients.acks,
            compression: env.clients.compression,
            linger: Duration::ZERO,
            batch_bytes: usize::MAX,
            partition: None,
            partitioner: Partitioner::Murmur2,
        },
        position,
        reader: None,
        link: None,
        pending: Vec::new(),
        pending_end: position,
        batches_sent: 0,
        retrying: false,
        last_flush: Instant::now(),
        missing_since: None,
        missing_warned: None,
    };
    let result = s.run_loop();
    s.flush_offsets();
    result
}

impl Source<'_> {
    fn run_loop(&mut self) -> Result<(), String> {
        let mut backoff = Backoff::default();
        loop {
            self.control.wait_while_paused(|| {});
            if self.control.stopping() {
                return Ok(());
            }
            if self.last_flush.elapsed() >= self.env.offset_flush_interval {
                self.flush_offsets();
            }
            if self.pending.is_empty() && !self.read_more()? {
                continue;
            }
            match self.send_pending() {
                Ok(()) => {
                    backoff.reset();
                    self.retrying = false;
                }
                Err(SendError::Transient(why)) => {
                    let wait = backoff.step();
                    self.retrying = true;
                    tracing::warn!(
                        "{}: {} lines not yet delivered to {}: {why}; retrying in {} ms (nothing is skipped)",
                        self.cfg.name,
                        self.pending.len(),
                        self.cfg.topic,
                        wait.as_millis()
                    );
                    self.link = None;
                    self.control.sleep(wait);
                }
                Err(SendError::Fatal(why)) => return Err(why),
            }
        }
    }

    /// Reads the next lines into `pending`; false when there were none (after waiting).
    fn read_more(&mut self) -> Result<bool, String> {
        if self.reader.is_none() {
            match LineReader::open(&self.path, self.position) {
                Ok(r) => {
                    if self.missing_since.take().is_some() {
                        tracing::info!(
                            "{}: {} exists now; reading it",
                            self.cfg.name,
                            self.path.display()
                        );
                    }
                    self.reader = Some(r);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.note_missing();
                    self.control.sleep(MISSING_FILE_RETRY);
                    return Ok(false);
                }
                Err(e) => {
                    return Err(format!("cannot open {}: {e}", self.path.display()));
                }
            }
        }
        let reader = self.reader.as_mut().expect("opened above");
        let (lines, end) = reader
            .read_lines(self.cfg.batch_lines)
            .map_err(|e| format!("reading {}: {e}", self.path.display()))?;
        if lines.is_empty() {
            self.control.sleep(SOURCE_IDLE_WAIT);
            return Ok(false);
        }
        self.pending = lines;
        self.pending_end = end;
        Ok(true)
    }

    fn note_missing(&mut self) {
        let now = Instant::now();
        self.missing_since.get_or_insert(now);
        if self
            .missing_warned
            .is_none_or(|t| now.duration_since(t) >= MISSING_FILE_WARN_INTERVAL)
        {
            tracing::warn!(
                "{}: source file {} does not exist; waiting for it to be created (looking again every {} s)",
                self.cfg.name,
                self.path.display(),
                MISSING_FILE_RETRY.as_secs()
            );
            self.missing_warned = Some(now);
        }
    }

    fn send_pending(&mut self) -> Result<(), SendError> {
        if self.link.is_none() {
            let mut cluster = Cluster::connect(&self.env.bootstrap)
                .map_err(|e| SendError::Transient(describe_client_error(&e)))?;
            let leader_of = leaders(&mut cluster, &self.cfg.topic, true).map_err(classify)?;
            if self.retrying {
                tracing::info!(
                    "{}: connected to {}; sending the {} lines that waited",
                    self.cfg.name,
                    self.env.bootstrap,
                    self.pending.len()
                );
            }
            self.link = Some(Link { cluster, leader_of });
        }
        let link = self.link.as_mut().expect("connected above");
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let messages: Vec<Message> = self
            .pending
            .iter()
            .map(|line| Message {
                offset: 0,
                timestamp,
                key: None,
                value: Some(self.cfg.value_converter.line_to_bytes(line)),
                headers: Vec::new(),
            })
            .collect();
        // Keyless records: one partition per batch, the next one for the next batch.
        let partitions: Vec<i32> = link.leader_of.keys().copied().collect();
        let partition = partitions[(self.batches_sent % partitions.len() as u64) as usize];
        let mut summary = ProduceSummary::default();
        send_records(
            &mut link.cluster,
            &self.opts,
            &mut link.leader_of,
            BTreeMap::from([(partition, messages)]),
            &mut summary,
        )
        .map_err(classify)?;
        self.batches_sent += 1;
        self.position = self.pending_end;
        self.pending.clear();
        self.env.offsets.set(&self.key, self.position);
        Ok(())
    }

    fn flush_offsets(&mut self) {
        self.last_flush = Instant::now();
        self.env.offsets.set(&self.key, self.position);
        if let Err(e) = self.env.offsets.flush() {
            tracing::warn!(
                "{}: cannot write the offset file: {e} (position {} is kept in memory and written at the next flush)",
                self.cfg.name,
                self.position
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn hands_out_complete_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        let mut f = File::create(&path).unwrap();
        f.write_all(b"one\r\ntwo\nthr").unwrap();
        let mut r = LineReader::open(&path, 0).unwrap();
        let (lines, end) = r.read_lines(1).unwrap();
        assert_eq!((lines, end), (vec!["one".to_string()], 5));
        let (lines, end) = r.read_lines(10).unwrap();
        assert_eq!((lines, end), (vec!["two".to_string()], 9));
        assert_eq!(r.read_lines(10).unwrap(), (vec![], 9));
        f.write_all(b"ee\n").unwrap();
        assert_eq!(r.read_lines(10).unwrap(), (vec!["three".to_string()], 15));
        // A restart at a stored position reads on from there.
        let mut again = LineReader::open(&path, 5).unwrap();
        assert_eq!(
            again.read_lines(10).unwrap(),
            (vec!["two".to_string(), "three".to_string()], 15)
        );
        // A lone \r ends a line too, once the byte after it shows it is not \r\n.
        f.write_all(b"four\rfive\r").unwrap();
        assert_eq!(r.read_lines(10).unwrap(), (vec!["four".to_string()], 20));
        f.write_all(b"\n").unwrap();
        assert_eq!(r.read_lines(10).unwrap(), (vec!["five".to_string()], 26));
        let mut one = LineReader::open(&path, 20).unwrap();
        assert_eq!(one.read_lines(1).unwrap(), (vec!["five".to_string()], 26));
        // A position past the end (the file was replaced) starts over.
        let mut past = LineReader::open(&path, 1000).unwrap();
        assert_eq!(past.read_lines(1).unwrap().1, 5);
    }
}
