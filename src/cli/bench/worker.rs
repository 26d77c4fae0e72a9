//! One bench worker: a thread pinned to one core that owns its connections, each a
//! blocking socket. Requests are written with one `write` each (the kernel's socket
//! buffer absorbs them); responses are read only when `poll` says a socket is readable,
//! so one thread keeps up to `max_in_flight` Produce requests pipelined on every
//! connection, a Fetch outstanding on every fetch connection, and still wakes on time
//! for the next paced send. Nothing is shared between workers on the hot path except
//! three counters; results leave as per-second buckets once a second.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::{ApiKey, FetchResponse, ProduceResponse};
use kafka_protocol::protocol::Decodable;

use super::pacing::Pacer;
use super::payload::{read_stamp, stamp, Pool, Template, STAMP_BYTES};
use super::stats::{Bucket, Buckets};
use super::{Mode, NS_PER_SEC};
use crate::cli::client::{encode_frame, read_frame, FrameError};
use crate::cli::consume::{fetch_request, FETCH_VERSION};
use crate::cli::produce::PRODUCE_VERSION;
use crate::cli::records;

/// After the run's end, how long in-flight requests and the e2e consumers may take.
pub const DRAIN_NS: u64 = 10 * NS_PER_SEC;
/// How often a worker hands its buckets to the main thread.
const FLUSH_INTERVAL_NS: u64 = NS_PER_SEC / 2;
/// The longest a worker sleeps in poll, so it notices the stop flag promptly.
const POLL_TIMEOUT_MAX_MS: i32 = 50;
/// Sends per connection per loop turn with acks=0 (nothing to wait for).
const SENDS_PER_TURN_MAX: usize = 16;

/// What every worker sees.
pub struct Shared {
    pub mode: Mode,
    pub topic: String,
    pub run_id: u64,
    pub epoch: OnceLock<Instant>,
    pub start: Barrier,
    pub stop: AtomicBool,
    /// --count: measured records still to send (produce, e2e) or receive (consume).
    pub count_left: Option<AtomicI64>,
    pub measure_start_ns: u64,
    /// e2e: records acknowledged and records received, so consumers know when to stop.
    pub acked: AtomicU64,
    pub received: AtomicU64,
    /// Workers whose producers still have requests in flight.
    pub producing: AtomicUsize,
    pub acks: i16,
    pub max_in_flight: usize,
    pub fetch_wait_ms: i32,
    pub message_size: usize,
}

pub enum Msg {
    Buckets(Buckets),
    Done(Result<(), String>),
}

/// A produce connection: its templates (one per partition it writes) and its schedule.
pub struct ProducerSpec {
    pub addr: String,
    pub templates: Vec<Template>,
    pub pacer_rate: Option<f64>,
    pub linger: Duration,
}

pub struct FetcherSpec {
    pub addr: String,
    pub positions: BTreeMap<i32, i64>,
    /// consume: stop each partition here (its log end at the start).
    pub ends: Option<BTreeMap<i32, i64>>,
}

struct Sent {
    correlation_id: i32,
    sent_ns: u64,
    /// Index of the batch's first record in the pacer's schedule.
    first: u64,
    records: usize,
}

struct Producer {
    addr: String,
    stream: TcpStream,
    templates: Vec<Template>,
    next_template: usize,
    pacer: Option<Pacer>,
    pacer_rate: Option<f64>,
    linger: Duration,
    next_record: u64,
    correlation_id: i32,
    inflight: VecDeque<Sent>,
}

struct Fetcher {
    addr: String,
    stream: TcpStream,
    positions: BTreeMap<i32, i64>,
    ends: Option<BTreeMap<i32, i64>>,
    correlation_id: i32,
    inflight: Option<(i32, u64)>,
}

impl Fetcher {
    fn done(&self) -> bool {
        self.ends.as_ref().is_some_and(|ends| {
            ends.iter()
                .all(|(p, end)| self.positions.get(p).is_some_and(|pos| pos >= end))
        })
    }
}

pub struct Worker {
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    producers: Vec<Producer>,
    fetchers: Vec<Fetcher>,
    buckets: Buckets,
    tx: mpsc::Sender<Msg>,
}

fn connect(addr: &str) -> Result<TcpStream, String> {
    crate::cli::client::Client::connect(addr)
        .map(crate::cli::client::Client::into_stream)
        .and_then(|s| {
            s.ok_or_else(|| crate::cli::client::ClientError::Protocol {
                broker: addr.to_string(),
                why: "corelog bench does not speak TLS yet (SASL_PLAINTEXT works); measure TLS with kload".into(),
            })
        })
        .map_err(|e| e.to_string())
}

fn now_ns(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

fn second_of(ns: u64) -> u32 {
    (ns / NS_PER_SEC) as u32
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Worker {
    /// Connects everything; the clock starts only after every worker is connected.
    pub fn start(
        shared: Arc<Shared>,
        pool: Arc<Pool>,
        producers: Vec<ProducerSpec>,
        fetchers: Vec<FetcherSpec>,
        tx: mpsc::Sender<Msg>,
    ) -> Result<Worker, String> {
        let producers = producers
            .into_iter()
            .map(|p| {
                Ok(Producer {
                    stream: connect(&p.addr)?,
                    addr: p.addr,
                    templates: p.templates,
                    next_template: 0,
                    pacer: None,
                    pacer_rate: p.pacer_rate,
                    linger: p.linger,
                    next_record: 0,
                    correlation_id: 0,
                    inflight: VecDeque::new(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let fetchers = fetchers
            .into_iter()
            .map(|f| {
                Ok(Fetcher {
                    stream: connect(&f.addr)?,
                    addr: f.addr,
                    positions: f.positions,
                    ends: f.ends,
                    correlation_id: 0,
                    inflight: None,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Worker {
            shared,
            pool,
            producers,
            fetchers,
            buckets: Buckets::new(),
            tx,
        })
    }

    fn bucket(&mut self, ns: u64) -> &mut Bucket {
        self.buckets.entry(second_of(ns)).or_default()
    }

    /// The run: until the stop flag (or --count, or consume caught up), then drain.
    pub fn run(mut self) -> Result<(), String> {
        let epoch = *self
            .shared
            .epoch
            .get()
            .expect("set before the start barrier");
        let start_ns = now_ns(epoch);
        for p in &mut self.producers {
            if let Some(rate) = p.pacer_rate {
                let records_max = p.templates[0].records_max;
                p.pacer = Some(Pacer::new(start_ns, rate, records_max, p.linger));
            }
        }
        let mut next_flush = start_ns + FLUSH_INTERVAL_NS;
        let mut stopped_at: Option<u64> = None;
        let mut producing = !self.producers.is_empty();
        loop {
            let now = now_ns(epoch);
            if stopped_at.is_none() && self.shared.stop.load(Ordering::Relaxed) {
                stopped_at = Some(now);
            }
            if stopped_at.is_none() {
                self.send_produce(now)?;
            }
            let idle = self.producers.iter().all(|p| p.inflight.is_empty());
            if producing && stopped_at.is_some() && idle {
                producing = false;
                self.shared.producing.fetch_sub(1, Ordering::Relaxed);
            }
            if self.consumers_finished(stopped_at.is_some()) && !producing {
                break;
            }
            if stopped_at.is_some_and(|s| now > s + DRAIN_NS) {
                let lost: usize = self.producers.iter().map(|p| p.inflight.len()).sum();
                self.bucket(now).errors += lost as u64;
                if producing {
                    self.shared.producing.fetch_sub(1, Ordering::Relaxed);
                }
                break;
            }
            self.send_fetches()?;
            self.wait_and_read(now, stopped_at.is_some())?;
            if now >= next_flush {
                next_flush = now + FLUSH_INTERVAL_NS;
                let _ = self
                    .tx
                    .send(Msg::Buckets(std::mem::take(&mut self.buckets)));
            }
        }
        let _ = self
            .tx
            .send(Msg::Buckets(std::mem::take(&mut self.buckets)));
        Ok(())
    }

    fn consumers_finished(&self, stopping: bool) -> bool {
        match self.shared.mode {
            Mode::Produce => true,
            Mode::Consume => stopping || self.fetchers.iter().all(Fetcher::done),
            Mode::E2e => {
                stopping
                    && self.shared.producing.load(Ordering::Relaxed) == 0
                    && self.shared.received.load(Ordering::Relaxed)
                        >= self.shared.acked.load(Ordering::Relaxed)
            }
        }
    }

    /// Takes `records` from the --count budget once the warm-up is over; false when
    /// the budget is spent (and the run is told to stop).
    fn claim(&self, now: u64, records: usize) -> bool {
        let Some(left) = &self.shared.count_left else {
            return true;
        };
        if now < self.shared.measure_start_ns {
            return true;
        }
        if left.fetch_sub(records as i64, Ordering::Relaxed) <= 0 {
            self.shared.stop.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn send_produce(&mut self, now: u64) -> Result<(), String> {
        let window = if self.shared.acks == 0 {
            SENDS_PER_TURN_MAX
        } else {
            self.shared.max_in_flight
        };
        for i in 0..self.producers.len() {
            let mut sent = 0;
            while self.producers[i].inflight.len() < window && sent < SENDS_PER_TURN_MAX {
                let p = &self.producers[i];
                let records = match &p.pacer {
                    None => p.templates[p.next_template].records_max,
                    Some(pacer) => match pacer.batch_at(p.next_record, now) {
                        Some(k) => k,
                        None => break,
                    },
                };
                if !self.claim(now, records) {
                    return Ok(());
                }
                self.send_batch(i, records, now)?;
                sent += 1;
            }
        }
        Ok(())
    }

    fn send_batch(&mut self, i: usize, records: usize, now: u64) -> Result<(), String> {
        let e2e = self.shared.mode == Mode::E2e;
        let run_id = self.shared.run_id;
        let pool = Arc::clone(&self.pool);
        let p = &mut self.producers[i];
        p.correlation_id = p.correlation_id.wrapping_add(1);
        let first = p.next_record;
        let pacer = p.pacer;
        let due = move |j: usize| pacer.map_or(now, |pc| pc.due_ns(first + j as u64));
        let stamp_of = move |j: usize| stamp(run_id, due(j));
        let values = move |j: usize| pool.value(j);
        let t = p.next_template;
        p.next_template = (t + 1) % p.templates.len();
        let frame = p.templates[t]
            .prepare(
                p.correlation_id,
                records,
                wall_ms(),
                e2e.then_some(&stamp_of as &dyn Fn(usize) -> [u8; STAMP_BYTES]),
                &values,
            )
            .map_err(|e| format!("building a batch: {e}"))?;
        p.stream
            .write_all(frame)
            .map_err(|e| format!("{}: {e}", p.addr))?;
        p.next_record += records as u64;
        if self.shared.acks == 0 {
            // Written is all acks=0 can know; in e2e the consumers count what arrives.
            let size = self.shared.message_size;
            if e2e {
                self.shared
                    .acked
                    .fetch_add(records as u64, Ordering::Relaxed);
            }
            let b = self.bucket(due(0));
            b.requests += 1;
            if !e2e {
                b.records += records as u64;
                b.bytes += (records * size) as u64;
            }
            return Ok(());
        }
        let p = &mut self.producers[i];
        p.inflight.push_back(Sent {
            correlation_id: p.correlation_id,
            sent_ns: now,
            first,
            records,
        });
        Ok(())
    }

    fn send_fetches(&mut self) -> Result<(), String> {
        for f in &mut self.fetchers {
            if f.inflight.is_some() || f.done() {
                continue;
            }
            let parts: Vec<(i32, i64)> = f
                .positions
                .iter()
                .filter(|(p, pos)| {
                    f.ends
                        .as_ref()
                        .is_none_or(|e| e.get(p).is_some_and(|end| *pos < end))
                })
                .map(|(p, pos)| (*p, *pos))
                .collect();
            let req = fetch_request(&self.shared.topic, &parts, self.shared.fetch_wait_ms);
            f.correlation_id = f.correlation_id.wrapping_add(1);
            let frame = encode_frame(ApiKey::Fetch, FETCH_VERSION, f.correlation_id, &req)?;
            f.stream
                .write_all(&frame)
                .map_err(|e| format!("{}: {e}", f.addr))?;
            let epoch = *self.shared.epoch.get().expect("set");
            f.inflight = Some((f.correlation_id, now_ns(epoch)));
        }
        Ok(())
    }

    /// Sleeps in poll until a response is readable or the next paced send is due, then
    /// reads one response from every readable socket.
    fn wait_and_read(&mut self, now: u64, stopping: bool) -> Result<(), String> {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        for p in &self.producers {
            if !p.inflight.is_empty() {
                fds.push(pollfd(&p.stream));
            }
        }
        let producer_fds = fds.len();
        for f in &self.fetchers {
            if f.inflight.is_some() {
                fds.push(pollfd(&f.stream));
            }
        }
        let mut timeout_ms = POLL_TIMEOUT_MAX_MS;
        if !stopping {
            for p in &self.producers {
                let can_send =
                    self.shared.acks == 0 || p.inflight.len() < self.shared.max_in_flight;
                let wake = match (&p.pacer, can_send) {
                    (_, false) => continue,
                    (None, true) => now,
                    (Some(pc), true) => pc.wake_ns(p.next_record),
                };
                let ms = wake.saturating_sub(now).div_ceil(1_000_000);
                timeout_ms = timeout_ms.min(ms as i32);
            }
        }
        // SAFETY: fds is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n <= 0 {
            return Ok(());
        }
        let ready: Vec<(usize, bool)> = fds
            .iter()
            .enumerate()
            .filter(|(_, fd)| fd.revents != 0)
            .map(|(i, _)| (i, i < producer_fds))
            .collect();
        let busy_producers: Vec<usize> = (0..self.producers.len())
            .filter(|i| !self.producers[*i].inflight.is_empty())
            .collect();
        let busy_fetchers: Vec<usize> = (0..self.fetchers.len())
            .filter(|i| self.fetchers[*i].inflight.is_some())
            .collect();
        for (i, is_producer) in ready {
            if is_producer {
                self.read_produce(busy_producers[i])?;
            } else {
                self.read_fetch(busy_fetchers[i - producer_fds])?;
            }
        }
        Ok(())
    }

    fn read_produce(&mut self, i: usize) -> Result<(), String> {
        let epoch = *self.shared.epoch.get().expect("set");
        let p = &mut self.producers[i];
        let (correlation_id, mut body) =
            read_frame(&mut p.stream, ApiKey::Produce, PRODUCE_VERSION)
                .map_err(|e| frame_error(&p.addr, e))?;
        let now = now_ns(epoch);
        let sent = p
            .inflight
            .pop_front()
            .expect("a response answers a request");
        if correlation_id != sent.correlation_id {
            return Err(format!(
                "{}: correlation id {correlation_id} for request {}",
                p.addr, sent.correlation_id
            ));
        }
        let resp = ProduceResponse::decode(&mut body, PRODUCE_VERSION)
            .map_err(|e| format!("{}: unreadable Produce response: {e}", p.addr))?;
        let failed = resp
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .any(|r| r.error_code != 0);
        let pacer = p.pacer;
        let due = |j: usize| pacer.map_or(sent.sent_ns, |pc| pc.due_ns(sent.first + j as u64));
        let e2e = self.shared.mode == Mode::E2e;
        let size = self.shared.message_size as u64;
        let b = self.bucket(due(0));
        b.requests += 1;
        if failed {
            b.errors += 1;
            return Ok(());
        }
        // In e2e the consumers count records and bytes: a record counts once it is read.
        if !e2e {
            b.records += sent.records as u64;
            b.bytes += sent.records as u64 * size;
        }
        let h = if e2e { &mut b.delivery } else { &mut b.latency };
        match pacer {
            None => h.saturating_record_n((now - sent.sent_ns) / 1000, sent.records as u64),
            Some(_) => {
                for j in 0..sent.records {
                    h.saturating_record(now.saturating_sub(due(j)) / 1000);
                }
            }
        }
        if e2e {
            self.shared
                .acked
                .fetch_add(sent.records as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    fn read_fetch(&mut self, i: usize) -> Result<(), String> {
        let epoch = *self.shared.epoch.get().expect("set");
        let f = &mut self.fetchers[i];
        let (correlation_id, mut body) = read_frame(&mut f.stream, ApiKey::Fetch, FETCH_VERSION)
            .map_err(|e| frame_error(&f.addr, e))?;
        let now = now_ns(epoch);
        let (expected, sent_ns) = f.inflight.take().expect("a response answers a request");
        if correlation_id != expected {
            return Err(format!(
                "{}: correlation id {correlation_id} for request {expected}",
                f.addr
            ));
        }
        let resp = FetchResponse::decode(&mut body, FETCH_VERSION)
            .map_err(|e| format!("{}: unreadable Fetch response: {e}", f.addr))?;
        let mut errors = u64::from(resp.error_code != 0);
        let mut counted = Vec::new();
        for pd in resp.responses.iter().flat_map(|t| &t.partitions) {
            let Some(pos) = f.positions.get_mut(&pd.partition_index) else {
                continue;
            };
            if pd.error_code != 0 {
                errors += 1;
                continue;
            }
            let Some(data) = pd.records.as_ref() else {
                continue;
            };
            for (head, batch) in records::batches(data) {
                if head.last_offset < *pos {
                    continue;
                }
                counted.push((head, batch.len() as u64, *pos, data.slice_ref(batch)));
                *pos = head.last_offset + 1;
            }
        }
        self.account_fetch(now, sent_ns, errors, counted)
    }

    fn account_fetch(
        &mut self,
        now: u64,
        sent_ns: u64,
        errors: u64,
        counted: Vec<(records::BatchHead, u64, i64, bytes::Bytes)>,
    ) -> Result<(), String> {
        let consume = self.shared.mode == Mode::Consume;
        let b = self.bucket(now);
        b.requests += 1;
        b.errors += errors;
        if consume {
            b.latency.saturating_record((now - sent_ns) / 1000);
            let mut got = 0u64;
            for (head, len, pos, _) in &counted {
                let skipped = if head.compressed {
                    0
                } else {
                    (pos - head.base_offset).max(0)
                };
                got += (i64::from(head.records) - skipped).max(0) as u64;
                b.bytes += len;
            }
            b.records += got;
            if let Some(left) = &self.shared.count_left {
                if left.fetch_sub(got as i64, Ordering::Relaxed) <= got as i64 {
                    self.shared.stop.store(true, Ordering::Relaxed);
                }
            }
            return Ok(());
        }
        let run_id = self.shared.run_id;
        let mut received = 0u64;
        for (_, _, pos, batch) in &counted {
            let mut stamps = Vec::new();
            records::for_each_value(batch, |offset, value| {
                if offset >= *pos {
                    if let Some(t) = read_stamp(run_id, value) {
                        stamps.push((t, value.len() as u64));
                    }
                }
            })
            .map_err(|e| format!("unreadable fetched batch: {e}"))?;
            for (intended, len) in stamps {
                let b = self.bucket(intended);
                b.records += 1;
                b.bytes += len;
                b.latency
                    .saturating_record(now.saturating_sub(intended) / 1000);
                received += 1;
            }
        }
        self.shared.received.fetch_add(received, Ordering::Relaxed);
        Ok(())
    }
}

fn pollfd(s: &TcpStream) -> libc::pollfd {
    libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

fn frame_error(addr: &str, e: FrameError) -> String {
    match e {
        FrameError::Io(e) => format!("{addr}: {e}"),
        FrameError::Protocol(why) => format!("{addr}: {why}"),
    }
}
