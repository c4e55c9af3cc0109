//! `udp://host:port` targets: the load generator's data path for datagrams (schedule -> stamp
//! -> send -> receive -> match -> record -> report), beside the stream worker rather than inside
//! it, because a datagram has no connection, no framing and no ordering to lean on.
//!
//! Each of `-c` flows is one connected UDP socket. Closed loop: a flow keeps `--pipeline`
//! datagrams outstanding. Open loop (`-R`): each flow sends on its own timetable and latency is
//! measured from the intended send time (no coordinated omission). Every datagram starts with
//! its 8-byte big-endian sequence number (the rest is the payload), so replies are matched
//! without state on the server:
//!
//! - **received**: a reply to an outstanding datagram, within the loss deadline: one latency
//!   sample (corrected and uncorrected);
//! - **lost**: no reply within the loss deadline (`--timeout`): counted, never a latency sample;
//! - **late**: a reply to a datagram already counted lost: counted apart (`late`), not a latency
//!   sample, and the datagram stays counted as lost;
//! - **duplicated**: a second (or later) reply to a datagram already received;
//! - **reordered**: a reply whose sequence number is lower than one already received on the
//!   same flow (it arrived after a later datagram's reply).
//!
//! Only datagrams intended for the measured window (after warm-up) are counted. The result is
//! the usual [`Summary`] plus its `datagrams` section.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::config::Config;
use crate::payload::{PayloadRef, Payloads};
use crate::record::{self, new_histogram};
use crate::run::RunError;
use crate::summary::{self, DatagramSummary, Summary, TimePoint};

/// Bytes of the sequence number at the front of every datagram.
pub const SEQ_BYTES: usize = 8;
/// Datagram states kept per flow beyond the outstanding ones (to tell a duplicate or a late
/// reply from an unknown one).
const HISTORY: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Outstanding,
    Received,
    Lost,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    state: State,
    intended: u64,
    sent: u64,
    payload: PayloadRef,
    measured: bool,
}

/// What one flow (or a whole run, merged) counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub late: u64,
    /// Replies whose bytes differ from what was sent (`--verify`).
    pub corrupted: u64,
    /// Sends the kernel refused (e.g. ICMP port unreachable reported on the socket).
    pub send_errors: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Counters {
    fn merge(&mut self, o: &Counters) {
        self.sent += o.sent;
        self.received += o.received;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.late += o.late;
        self.corrupted += o.corrupted;
        self.send_errors += o.send_errors;
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
    }
}

/// The sequence-number bookkeeping of one flow (socket-free, so it is unit-tested alone).
#[derive(Debug, Default)]
pub struct Tracker {
    /// Sequence number of `window[0]`.
    base: u64,
    window: VecDeque<Slot>,
    highest_received: Option<u64>,
    outstanding: usize,
    pub counters: Counters,
}

/// What a reply turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// In time: latencies from intended and actual send, in ns (`measured` false: warm-up).
    OnTime {
        corrected: u64,
        uncorrected: u64,
        measured: bool,
    },
    Late,
    Duplicate,
    /// Not a sequence number this flow sent (or one too old to remember).
    Unknown,
}

impl Tracker {
    fn next_seq(&self) -> u64 {
        self.base + self.window.len() as u64
    }

    /// Records a send; returns its sequence number.
    fn sent(
        &mut self,
        intended: u64,
        now: u64,
        payload: PayloadRef,
        measured: bool,
        bytes: usize,
    ) -> u64 {
        let seq = self.next_seq();
        self.window.push_back(Slot {
            state: State::Outstanding,
            intended,
            sent: now,
            payload,
            measured,
        });
        self.outstanding += 1;
        if measured {
            self.counters.sent += 1;
            self.counters.bytes_sent += bytes as u64;
        }
        // Forget the oldest settled datagrams beyond the history.
        while self.window.len() > HISTORY && self.window[0].state != State::Outstanding {
            self.window.pop_front();
            self.base += 1;
        }
        seq
    }

    /// A send that failed: the datagram never left, so it is neither sent nor lost.
    fn unsend(&mut self) {
        if let Some(slot) = self.window.pop_back() {
            self.outstanding -= 1;
            if slot.measured {
                self.counters.sent -= 1;
                self.counters.bytes_sent -= u64::from(slot.payload.len);
            }
        }
    }

    /// Classifies the reply carrying `seq` that arrived at `now`.
    pub fn reply(&mut self, seq: u64, now: u64, bytes: usize) -> Reply {
        if seq < self.base || seq >= self.next_seq() {
            return Reply::Unknown;
        }
        let slot = &mut self.window[(seq - self.base) as usize];
        let measured = slot.measured;
        let outcome = match slot.state {
            State::Outstanding => {
                slot.state = State::Received;
                self.outstanding -= 1;
                Reply::OnTime {
                    corrected: now.saturating_sub(slot.intended),
                    uncorrected: now.saturating_sub(slot.sent),
                    measured,
                }
            }
            State::Received => Reply::Duplicate,
            State::Lost => Reply::Late,
        };
        if measured {
            match outcome {
                Reply::OnTime { .. } => {
                    self.counters.received += 1;
                    self.counters.bytes_received += bytes as u64;
                    if self.highest_received.is_some_and(|h| seq < h) {
                        self.counters.reordered += 1;
                    }
                }
                Reply::Duplicate => self.counters.duplicated += 1,
                Reply::Late => self.counters.late += 1,
                Reply::Unknown => {}
            }
        }
        if matches!(outcome, Reply::OnTime { .. }) {
            self.highest_received = Some(self.highest_received.map_or(seq, |h| h.max(seq)));
        }
        outcome
    }

    /// Marks every outstanding datagram sent at or before `cutoff` as lost.
    pub fn expire(&mut self, cutoff: u64) {
        for slot in self.window.iter_mut() {
            if slot.sent > cutoff {
                break;
            }
            if slot.state == State::Outstanding {
                slot.state = State::Lost;
                self.outstanding -= 1;
                if slot.measured {
                    self.counters.lost += 1;
                }
            }
        }
    }

    /// Send time of the oldest outstanding datagram.
    fn oldest_outstanding(&self) -> Option<u64> {
        self.window
            .iter()
            .find(|s| s.state == State::Outstanding)
            .map(|s| s.sent)
    }

    fn payload_of(&self, seq: u64) -> Option<PayloadRef> {
        seq.checked_sub(self.base)
            .and_then(|i| self.window.get(i as usize))
            .map(|s| s.payload)
    }
}

struct Flow {
    socket: UdpSocket,
    tracker: Tracker,
    /// Open loop: the next intended send time (ns).
    next_send_at: u64,
    /// Datagrams this flow may still send (`-n`).
    quota: Option<u64>,
}

struct ThreadResult {
    counters: Counters,
    latency: Histogram<u64>,
    uncorrected: Histogram<u64>,
    /// Replies received on time per second of the measured window.
    per_second: Vec<u64>,
    cpu_percent: f64,
    finished_ns: u64,
}

/// Runs a `udp://` target and summarises it (called by `run::run` for UDP targets).
pub fn run(config: Config, stop: Arc<AtomicBool>) -> Result<Summary, RunError> {
    let mut rng = SmallRng::seed_from_u64(0x0d9a_7a9e);
    let payloads = Arc::new(Payloads::new(&config.payload, &mut rng));
    if payloads.min_len() < SEQ_BYTES {
        // cli refuses this already; keep the invariant visible here.
        return Err(RunError::Worker {
            worker: 0,
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "UDP payloads need at least 8 bytes (the sequence number)",
            ),
        });
    }
    let config = Arc::new(config);
    let origin = Instant::now();
    let threads = config.threads.max(1).min(config.connections.max(1));
    let mut handles = Vec::with_capacity(threads);
    let mut first = 0;
    for id in 0..threads {
        let count = config.connections / threads + usize::from(id < config.connections % threads);
        let (config, payloads, stop) = (config.clone(), payloads.clone(), stop.clone());
        let flows = first..first + count;
        first += count;
        let handle = std::thread::Builder::new()
            .name(format!("udp-worker-{id}"))
            .spawn(move || worker(&config, &payloads, flows, origin, &stop))
            .map_err(RunError::Spawn)?;
        handles.push(handle);
    }
    let mut results = Vec::with_capacity(threads);
    for (id, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(source)) => return Err(RunError::Worker { worker: id, source }),
            Err(_) => return Err(RunError::Panicked(id)),
        }
    }
    Ok(summarize(&config, &results))
}

fn worker(
    config: &Config,
    payloads: &Payloads,
    flows: std::ops::Range<usize>,
    origin: Instant,
    stop: &AtomicBool,
) -> io::Result<ThreadResult> {
    let cpu_start = crate::sys::thread_cpu_time();
    let now_ns = || origin.elapsed().as_nanos() as u64;
    let measure_start = config.warmup.as_nanos() as u64;
    let end = config.duration.map(|d| measure_start + d.as_nanos() as u64);
    let deadline_ns = config.timeout.as_nanos() as u64;
    let interval_ns = config
        .rate
        .map(|r| (1e9 * config.connections as f64 / r).max(1.0) as u64);
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let bind: SocketAddr = if config.addr.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let mut state: Vec<Flow> = Vec::with_capacity(flows.len());
    for (i, index) in flows.clone().enumerate() {
        let mut socket = UdpSocket::bind(bind)?;
        socket.connect(config.addr)?;
        poll.registry()
            .register(&mut socket, Token(i), Interest::READABLE)?;
        let quota = config.requests.map(|n| {
            n / config.connections as u64
                + u64::from((index as u64) < n % config.connections as u64)
        });
        // Spread the flows' open-loop timetables over one interval.
        let offset =
            interval_ns.map_or(0, |iv| iv * index as u64 / config.connections.max(1) as u64);
        state.push(Flow {
            socket,
            tracker: Tracker::default(),
            next_send_at: offset,
            quota,
        });
    }
    let mut rng = SmallRng::seed_from_u64(0x5eed ^ flows.start as u64);
    let mut latency = new_histogram();
    let mut uncorrected = new_histogram();
    let mut per_second: Vec<u64> = Vec::new();
    let mut send_buf = vec![0u8; payloads.max_len().max(SEQ_BYTES)];
    let mut recv_buf = vec![0u8; 65_536];
    // A request-count run measures from the first datagram (no warm-up window to wait for).
    let measure_from = if config.requests.is_some() {
        0
    } else {
        measure_start
    };
    loop {
        let now = now_ns();
        let sending = !stop.load(Ordering::Relaxed) && end.is_none_or(|e| now < e);
        let mut any_left = false;
        for flow in state.iter_mut() {
            let may_send = sending && flow.quota != Some(0);
            any_left |= may_send || flow.tracker.outstanding > 0;
            if !may_send {
                continue;
            }
            loop {
                if flow.quota == Some(0) {
                    break;
                }
                let intended = match interval_ns {
                    None if flow.tracker.outstanding < config.pipeline => now,
                    Some(_)
                        if flow.next_send_at <= now
                            && flow.tracker.outstanding < config.pipeline.max(1) * 1024 =>
                    {
                        flow.next_send_at
                    }
                    _ => break,
                };
                let payload = payloads.pick(&mut rng);
                let bytes = payloads.get(payload);
                let len = bytes.len();
                let measured = intended >= measure_from;
                let seq = flow.tracker.sent(intended, now, payload, measured, len);
                send_buf[..SEQ_BYTES].copy_from_slice(&seq.to_be_bytes());
                send_buf[SEQ_BYTES..len].copy_from_slice(&bytes[SEQ_BYTES..]);
                match flow.socket.send(&send_buf[..len]) {
                    Ok(_) => {
                        if let Some(iv) = interval_ns {
                            flow.next_send_at += iv;
                        }
                        if let Some(q) = flow.quota.as_mut() {
                            *q -= 1;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        flow.tracker.unsend();
                        break;
                    }
                    Err(_) => {
                        // ICMP unreachable reported on this socket, or similar: the datagram
                        // did not leave; count it and move on (open loop keeps its timetable).
                        flow.tracker.unsend();
                        if measured {
                            flow.tracker.counters.send_errors += 1;
                        }
                        if let Some(iv) = interval_ns {
                            flow.next_send_at += iv;
                        }
                        break;
                    }
                }
            }
        }
        if !any_left {
            break;
        }
        // Sleep until the next send, the next loss deadline, or 10 ms.
        let mut wake = now + 10_000_000;
        for flow in &state {
            if let Some(oldest) = flow.tracker.oldest_outstanding() {
                wake = wake.min(oldest + deadline_ns);
            }
            if interval_ns.is_some() && sending {
                wake = wake.min(flow.next_send_at);
            }
        }
        let timeout = Duration::from_nanos(wake.saturating_sub(now_ns()));
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            let Some(flow) = state.get_mut(event.token().0) else {
                continue;
            };
            loop {
                let n = match flow.socket.recv(&mut recv_buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // ECONNREFUSED from an earlier send: nothing to read, keep going.
                    Err(_) => break,
                };
                let at = now_ns();
                if n < SEQ_BYTES {
                    flow.tracker.counters.corrupted += 1;
                    continue;
                }
                let mut seq_bytes = [0u8; SEQ_BYTES];
                seq_bytes.copy_from_slice(&recv_buf[..SEQ_BYTES]);
                let seq = u64::from_be_bytes(seq_bytes);
                if config.verify {
                    let intact = flow.tracker.payload_of(seq).is_some_and(|p| {
                        let sent = payloads.get(p);
                        sent.len() == n && sent[SEQ_BYTES..] == recv_buf[SEQ_BYTES..n]
                    });
                    if !intact {
                        flow.tracker.counters.corrupted += 1;
                        continue;
                    }
                }
                if let Reply::OnTime {
                    corrected,
                    uncorrected: actual,
                    measured: true,
                } = flow.tracker.reply(seq, at, n)
                {
                    let _ = latency.record(corrected.max(1));
                    let _ = uncorrected.record(actual.max(1));
                    let second = (at.saturating_sub(measure_from) / 1_000_000_000) as usize;
                    if per_second.len() <= second {
                        per_second.resize(second + 1, 0);
                    }
                    per_second[second] += 1;
                }
            }
        }
        let now = now_ns();
        for flow in state.iter_mut() {
            flow.tracker.expire(now.saturating_sub(deadline_ns));
        }
    }
    let finished_ns = now_ns();
    let window_ns = finished_ns.saturating_sub(measure_from).max(1);
    let cpu = crate::sys::thread_cpu_time().saturating_sub(cpu_start);
    let mut counters = Counters::default();
    for flow in &state {
        counters.merge(&flow.tracker.counters);
    }
    Ok(ThreadResult {
        counters,
        latency,
        uncorrected,
        per_second,
        cpu_percent: 100.0 * cpu.as_nanos() as f64 / window_ns as f64,
        finished_ns,
    })
}

fn summarize(config: &Config, results: &[ThreadResult]) -> Summary {
    let mut counters = Counters::default();
    let mut latency = new_histogram();
    let mut uncorrected = new_histogram();
    let mut per_second: Vec<u64> = Vec::new();
    for r in results {
        counters.merge(&r.counters);
        let _ = latency.add(&r.latency);
        let _ = uncorrected.add(&r.uncorrected);
        if per_second.len() < r.per_second.len() {
            per_second.resize(r.per_second.len(), 0);
        }
        for (i, n) in r.per_second.iter().enumerate() {
            per_second[i] += n;
        }
    }
    let measure_from = if config.requests.is_some() {
        0
    } else {
        config.warmup.as_nanos() as u64
    };
    let finished = results.iter().map(|r| r.finished_ns).max().unwrap_or(0);
    // The window ends when sending ended (the final wait for replies is not part of it).
    let window_ns = match config.duration {
        Some(d) => d.as_nanos() as u64,
        None => finished.saturating_sub(measure_from),
    }
    .max(1);
    let duration_secs = window_ns as f64 / 1e9;
    let rps = counters.received as f64 / duration_secs;
    let mut errors = BTreeMap::new();
    if counters.send_errors > 0 {
        errors.insert("udp_send".to_string(), counters.send_errors);
    }
    if counters.corrupted > 0 {
        errors.insert("verify".to_string(), counters.corrupted);
    }
    let mut warnings = Vec::new();
    if counters.lost > 0 {
        warnings.push(format!(
            "{} of {} datagrams lost (no reply within the loss deadline --timeout {:?}); lost datagrams are not latency samples",
            counters.lost, counters.sent, config.timeout
        ));
    }
    let timeseries = per_second
        .iter()
        .enumerate()
        .map(|(i, n)| TimePoint {
            t: (i + 1) as f64,
            rps: *n as f64,
            p99_us: 0.0,
        })
        .collect();
    let histograms = BTreeMap::from([
        ("latency".to_string(), record::encode_base64(&latency)),
        (
            "latency_uncorrected".to_string(),
            record::encode_base64(&uncorrected),
        ),
    ]);
    Summary {
        schema: summary::SCHEMA.to_string(),
        config: config.run_config(),
        env: crate::env::detect(),
        connections: summary::Connections {
            opened: config.connections as u64,
            failed: 0,
        },
        requests: summary::Requests {
            sent: counters.sent,
            completed: counters.received,
            errors,
        },
        throughput: summary::Throughput {
            rps,
            bytes_per_sec: counters.bytes_received as f64 / duration_secs,
            bytes_sent: counters.bytes_sent,
            bytes_received: counters.bytes_received,
        },
        target_rate: config.rate,
        latency_us: record::percentiles(&latency),
        latency_uncorrected_us: record::percentiles(&uncorrected),
        connect_us: Default::default(),
        loop_lag_us: Default::default(),
        histograms,
        timeseries,
        warnings,
        duration_secs,
        generator_cpu_percent: results.iter().map(|r| r.cpu_percent).collect(),
        tls: None,
        window_start_unix_ns: None,
        datagrams: Some(DatagramSummary {
            sent: counters.sent,
            received: counters.received,
            lost: counters.lost,
            duplicated: counters.duplicated,
            reordered: counters.reordered,
            late: counters.late,
            loss_deadline_ms: config.timeout.as_millis() as u64,
        }),
        misbehaving: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: PayloadRef = PayloadRef { offset: 0, len: 64 };

    #[test]
    fn on_time_duplicate_reorder_lost_late() {
        let mut t = Tracker::default();
        for i in 0..5 {
            assert_eq!(t.sent(i * 10, i * 10, P, true, 64), i);
        }
        // 1 before 0: one reordering.
        assert!(matches!(
            t.reply(1, 100, 64),
            Reply::OnTime { corrected: 90, .. }
        ));
        assert!(matches!(t.reply(0, 101, 64), Reply::OnTime { .. }));
        assert_eq!(t.reply(0, 102, 64), Reply::Duplicate);
        // 2 and 3 pass their deadline (sent at 20 and 30; cutoff 35); 4 does not.
        t.expire(35);
        assert_eq!(t.reply(2, 200, 64), Reply::Late);
        assert!(matches!(t.reply(4, 201, 64), Reply::OnTime { .. }));
        assert_eq!(t.reply(99, 202, 64), Reply::Unknown);
        let c = t.counters;
        assert_eq!(
            (
                c.sent,
                c.received,
                c.lost,
                c.duplicated,
                c.reordered,
                c.late
            ),
            (5, 3, 2, 1, 1, 1)
        );
        assert_eq!(t.outstanding, 0);
    }

    #[test]
    fn warm_up_datagrams_are_not_counted() {
        let mut t = Tracker::default();
        t.sent(0, 0, P, false, 64);
        t.sent(1, 1, P, true, 64);
        t.reply(0, 5, 64);
        t.expire(10);
        assert_eq!(
            (t.counters.sent, t.counters.received, t.counters.lost),
            (1, 0, 1)
        );
    }

    #[test]
    fn history_is_bounded() {
        let mut t = Tracker::default();
        for i in 0..(HISTORY as u64 + 100) {
            let seq = t.sent(i, i, P, true, 64);
            t.reply(seq, i + 1, 64);
        }
        assert!(t.window.len() <= HISTORY);
        assert_eq!(t.counters.received, HISTORY as u64 + 100);
    }
}
