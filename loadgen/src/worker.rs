//! The work loop: one thread, one `mio::Poll`, a share of the connections. It runs the data path
//! schedule -> encode -> write -> read -> decode -> record for every connection it owns, and
//! ships one-second [`IntervalReport`]s to the main thread. It never prints.
//!
//! Hot path, per reply: one `read` into a per-thread 64 KiB buffer (no per-connection read
//! buffer; only a partial reply's tail is copied to the connection), decode in place, one clock
//! read per `read`, and for the next request a copy of the payload into the connection's output
//! buffer followed by one `write` for the whole batch. No allocation once buffers have grown.
//! A short read means the socket was drained, so the worker does not spend a second `read` just
//! to see `WouldBlock` (safe with edge-triggered epoll, which reports every new arrival).
//! `benches/hot_path.rs` measures the non-syscall part: encode 8-20 ns, decode 4-10 ns
//! (~200 ns for an HTTP response head), recording 15 ns for a 64-byte request, against the
//! microseconds of the read and write syscalls.
//!
//! Open-loop sends are timed with a `timerfd` (see `sys`) so a request leaves within
//! microseconds of its intended time rather than at epoll's millisecond granularity; whatever
//! lateness remains is recorded as loop lag.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::SeedableRng;

use crate::config::{
    Config, MAX_CONNECTING_PER_THREAD, MAX_CONSECUTIVE_CONNECT_FAILURES, RECONNECT_DELAY,
};
use crate::conn::{Conn, Pending, Phase};
use crate::error_kind::ErrorKind;
use crate::framing::{Codec, Decoded, FramingKind};
use crate::payload::{PayloadRef, Payloads};
use crate::record::{IntervalReport, Recorder};
use crate::schedule::{Schedule, Timetable};
use crate::sys::{self, SendTimer};
use crate::tls::TlsRecorder;

// TLS handshakes and the handshake-only mode: more `impl Worker`, kept in their own file.
#[path = "worker_tls.rs"]
mod worker_tls;

const TIMER_TOKEN: Token = Token(usize::MAX);
/// How often outstanding requests and connects are checked against `--timeout`.
const TIMEOUT_SCAN_NS: u64 = 50_000_000;
const SECOND_NS: u64 = 1_000_000_000;
/// Size of the per-thread read buffer.
const READ_BUFFER: usize = 64 * 1024;

/// What every worker of a run shares (read-only).
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub payloads: Payloads,
    pub schedule: Schedule,
    /// Zero of the run clock.
    pub origin: Instant,
    /// Start of the measured window (after warm-up), ns on the run clock.
    pub measure_start: u64,
    /// End of the measured window for a timed run.
    pub end: Option<u64>,
    /// Set to stop early (SIGINT).
    pub stop: Arc<AtomicBool>,
}

impl Shared {
    #[inline]
    pub fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    /// Whether connections keep each outstanding request's payload: only to check replies
    /// against them (`--verify`) or to know their lengths (raw framing with varying sizes).
    #[inline]
    fn keeps_payloads(&self) -> bool {
        self.config.verify || self.payloads.min_len() != self.payloads.max_len()
    }
}

/// One worker's share of the run.
#[derive(Debug, Clone)]
pub struct WorkerPlan {
    pub id: usize,
    /// Global index of this worker's first connection (for the open-loop stagger).
    pub first_index: usize,
    pub connections: usize,
    /// Per-connection request quotas for a `-n` run.
    pub quotas: Option<Vec<u64>>,
    pub core: Option<core_affinity::CoreId>,
}

/// What a worker hands back when it ends.
#[derive(Debug)]
pub struct WorkerResult {
    pub recorder: Recorder,
    /// CPU use of the thread during the measured window, percent of one core.
    pub cpu_percent: f64,
    /// When the worker stopped, ns on the run clock.
    pub finished_ns: u64,
    /// TLS handshake figures (empty without TLS).
    pub tls: TlsRecorder,
}

/// One connection slot: a connection (when up) and the state that survives reconnects.
#[derive(Debug)]
struct Slot {
    conn: Option<Conn>,
    index: usize,
    timetable: Timetable,
    /// Measured requests this slot may still send (`-n` runs).
    quota: Option<u64>,
    /// In the send heap.
    armed: bool,
    /// When the connection last became able to send (opened, or got a reply).
    ready_since: u64,
    /// Connections in a row that ended before any reply.
    failures: u32,
}

/// What decoding one read produced.
#[derive(Debug, Default)]
struct Progress {
    /// The WebSocket handshake completed.
    opened: bool,
    replies: usize,
    /// The bytes broke the framing; the connection must close (after `opened` is handled).
    error: Option<ErrorKind>,
}

struct Worker {
    id: usize,
    shared: Arc<Shared>,
    reports: Sender<IntervalReport>,
    poll: Poll,
    events: Events,
    slots: Vec<Slot>,
    /// Slots waiting to (re)connect, by time.
    connect_queue: BinaryHeap<Reverse<(u64, usize)>>,
    /// Open-loop slots waiting for their next intended send time.
    send_queue: BinaryHeap<Reverse<(u64, usize)>>,
    timer: SendTimer,
    timer_armed_for: Option<u64>,
    connecting: usize,
    next_connect_at: u64,
    connect_interval_ns: Option<u64>,
    scratch: Vec<u8>,
    recorder: Recorder,
    rng: SmallRng,
    next_timeout_scan: u64,
    next_interval: u64,
    count_run: bool,
    /// Requests of the measured window sent and not yet answered (or dropped with their
    /// connection), so the end-of-window drain knows when it is done without a scan.
    measured_in_flight: usize,
    /// Measured requests the slots may still send in a `-n` run (0 otherwise).
    quota_left: u64,
    tls: TlsRecorder,
}

/// Run one worker until the window ends, its quota is done, or `stop` is set.
pub fn run_worker(
    plan: WorkerPlan,
    shared: Arc<Shared>,
    reports: Sender<IntervalReport>,
) -> io::Result<WorkerResult> {
    if let Some(core) = plan.core {
        core_affinity::set_for_current(core);
    }
    sys::set_precise_timer_slack();
    let poll = Poll::new()?;
    let timer = SendTimer::new()?;
    poll.registry().register(
        &mut SourceFd(&timer.raw_fd()),
        TIMER_TOKEN,
        Interest::READABLE,
    )?;
    let slots = (0..plan.connections)
        .map(|i| Slot {
            conn: None,
            index: plan.first_index + i,
            timetable: Timetable::default(),
            quota: plan.quotas.as_ref().map(|q| q[i]),
            armed: false,
            ready_since: 0,
            failures: 0,
        })
        .collect();
    let connect_interval_ns = shared
        .config
        .connect_rate
        .map(|rate| (shared.config.threads as f64 * 1e9 / rate) as u64);
    let worker = Worker {
        id: plan.id,
        reports,
        poll,
        events: Events::with_capacity(1024),
        slots,
        connect_queue: (0..plan.connections).map(|i| Reverse((0, i))).collect(),
        send_queue: BinaryHeap::new(),
        timer,
        timer_armed_for: None,
        connecting: 0,
        next_connect_at: 0,
        connect_interval_ns,
        scratch: vec![0; READ_BUFFER],
        recorder: Recorder::default(),
        rng: SmallRng::seed_from_u64(0x5eed ^ plan.id as u64),
        next_timeout_scan: 0,
        next_interval: 0,
        count_run: plan.quotas.is_some(),
        measured_in_flight: 0,
        quota_left: plan.quotas.as_ref().map_or(0, |q| q.iter().sum()),
        tls: TlsRecorder::default(),
        shared,
    };
    worker.run()
}

impl Worker {
    fn run(mut self) -> io::Result<WorkerResult> {
        let measure_start = self.shared.measure_start;
        // Thread CPU time and clock when the window began and ended (the drain after it, mostly
        // waiting, is left out).
        let mut cpu_start: Option<(Duration, u64)> = None;
        let mut cpu_end: Option<(Duration, u64)> = None;
        let mut events = Events::with_capacity(0);
        let grace = self.shared.config.timeout.as_nanos() as u64;
        loop {
            let now = self.shared.now();
            if self.shared.stop.load(Ordering::Relaxed) || (self.count_run && self.all_done()) {
                break;
            }
            // After the window nothing new is sent, but requests sent in it are waited for
            // (up to --timeout): dropping the slowest replies at the end would bias the tail.
            let draining = self.shared.end.is_some_and(|end| now >= end);
            if draining && cpu_end.is_none() {
                cpu_end = Some((sys::thread_cpu_time(), now));
            }
            if draining
                && (self.measured_in_flight == 0
                    || self.shared.end.is_some_and(|end| now >= end + grace))
            {
                break;
            }
            if cpu_start.is_none() && now >= measure_start {
                cpu_start = Some((sys::thread_cpu_time(), now));
            }
            if !draining {
                self.open_due_connections(now);
            }
            // Fresh time: opening connections above may have taken a while. (Only open-loop
            // sends wait in the queue: a closed loop saves the clock read.)
            if !self.send_queue.is_empty() {
                self.send_due(self.shared.now());
            }
            if now >= self.next_timeout_scan {
                self.expire(now);
                self.next_timeout_scan = now + TIMEOUT_SCAN_NS;
            }
            self.report_intervals(now);
            let timeout = self.poll_timeout(now)?;
            std::mem::swap(&mut events, &mut self.events);
            let polled = self.poll.poll(&mut events, Some(timeout));
            if let Err(e) = polled {
                std::mem::swap(&mut events, &mut self.events);
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let wake = self.shared.now();
            for event in events.iter() {
                if event.token() == TIMER_TOKEN {
                    // No read to reset the expiration count: the registration is
                    // edge-triggered and every expiry wakes epoll anew, and re-arming resets
                    // the count. That saves a syscall per timed wake-up.
                    self.timer_armed_for = None;
                    continue;
                }
                let id = event.token().0;
                self.handle(
                    id,
                    event.is_readable(),
                    event.is_read_closed(),
                    event.is_error(),
                    event.is_writable(),
                    wake,
                );
            }
            std::mem::swap(&mut events, &mut self.events);
        }
        let finished = self.shared.now();
        let finished_ns = self.shared.end.map_or(finished, |end| finished.min(end));
        if finished_ns > measure_start {
            let index = self.next_interval;
            let report = self.recorder.take_interval(
                self.id,
                index,
                index * SECOND_NS,
                finished_ns - measure_start,
            );
            let _ = self.reports.send(report);
        }
        let (cpu_stop, wall_stop) = cpu_end.unwrap_or_else(|| (sys::thread_cpu_time(), finished));
        let cpu_percent = match cpu_start {
            Some((cpu, wall)) if wall_stop > wall => {
                let used = cpu_stop.saturating_sub(cpu);
                100.0 * used.as_nanos() as f64 / (wall_stop - wall) as f64
            }
            _ => 0.0,
        };
        Ok(WorkerResult {
            recorder: self.recorder,
            cpu_percent,
            finished_ns,
            tls: self.tls,
        })
    }

    /// A `-n` run is done when every slot has sent its quota (or given up) and every measured
    /// request is answered or lost.
    fn all_done(&self) -> bool {
        self.quota_left == 0 && self.measured_in_flight == 0
    }

    /// How long to sleep in `poll`: until the next coarse deadline, with the send timer armed
    /// for the next intended send.
    fn poll_timeout(&mut self, now: u64) -> io::Result<Duration> {
        let measure_start = self.shared.measure_start;
        let end = self.shared.end;
        let mut until = self.next_timeout_scan;
        let next_boundary = if now >= measure_start {
            measure_start + (self.next_interval + 1) * SECOND_NS
        } else {
            measure_start
        };
        if end.is_none_or(|end| next_boundary < end) {
            until = until.min(next_boundary);
        }
        if let Some(end) = end {
            if now < end {
                until = until.min(end);
            }
        }
        if let Some(Reverse((at, _))) = self.connect_queue.peek() {
            if self.connecting < MAX_CONNECTING_PER_THREAD {
                until = until.min((*at).max(self.next_connect_at));
            }
        }
        if let Some(Reverse((due, _))) = self.send_queue.peek() {
            if *due <= now {
                return Ok(Duration::ZERO);
            }
            // Re-arm only for an earlier deadline: a later one is armed when the pending
            // expiry has been seen (one syscall per distinct wake-up, not per send).
            if self.timer_armed_for.is_none_or(|armed| *due < armed) {
                self.timer.arm(Duration::from_nanos(due - now))?;
                self.timer_armed_for = Some(*due);
            }
        }
        Ok(Duration::from_nanos(until.saturating_sub(now)))
    }

    fn open_due_connections(&mut self, now: u64) {
        while let Some(&Reverse((at, id))) = self.connect_queue.peek() {
            if at > now
                || self.connecting >= MAX_CONNECTING_PER_THREAD
                || now < self.next_connect_at
            {
                return;
            }
            self.connect_queue.pop();
            let handshake_only = self.shared.config.handshake_only();
            let intended = if handshake_only {
                match self.handshake_due(id, now) {
                    Some(intended) => intended,
                    None => continue,
                }
            } else {
                now
            };
            if let Some(interval) = self.connect_interval_ns {
                self.next_connect_at = self.next_connect_at.max(now) + interval;
            }
            let seed = (self.slots[id].index as u64) << 20 ^ now;
            let codec = Codec::new(&self.shared.config.framing, seed);
            let connected = match &self.shared.config.target.transport {
                crate::target::Transport::Unix(path) => {
                    Conn::connect_unix(path, self.poll.registry(), Token(id), codec, now)
                }
                _ => Conn::connect(
                    self.shared.config.addr,
                    self.shared.config.tls.as_ref(),
                    self.poll.registry(),
                    Token(id),
                    codec,
                    now,
                ),
            };
            match connected {
                Ok(conn) => {
                    self.slots[id].conn = Some(conn);
                    self.connecting += 1;
                    if handshake_only {
                        self.handshake_begun(id, intended, now);
                    }
                }
                Err(e) => {
                    self.recorder.connect_failed(ErrorKind::from_connect(&e));
                    self.retry_later(id, now, true);
                }
            }
        }
    }

    fn retry_later(&mut self, id: usize, now: u64, failed: bool) {
        let slot = &mut self.slots[id];
        if failed {
            slot.failures += 1;
        }
        if self.count_run && slot.failures >= MAX_CONSECUTIVE_CONNECT_FAILURES {
            self.quota_left -= slot.quota.take().unwrap_or(0);
            slot.quota = Some(0);
            return;
        }
        self.connect_queue
            .push(Reverse((now + RECONNECT_DELAY.as_nanos() as u64, id)));
    }

    /// Drop a connection, count why, and schedule a new one in its slot.
    fn close(&mut self, id: usize, kind: ErrorKind, now: u64) {
        let Some(conn) = self.slots[id].conn.take() else {
            return;
        };
        let dropped = conn.pending.measured();
        self.measured_in_flight -= dropped;
        if conn.phase == Phase::Open {
            self.recorder.error(kind);
        } else {
            self.connecting -= 1;
            self.recorder.connect_failed(kind);
        }
        // A connection that never got a reply counts towards giving up (count runs only).
        self.retry_later(id, now, true);
        drop(conn);
    }

    fn handle(
        &mut self,
        id: usize,
        readable: bool,
        read_closed: bool,
        error: bool,
        writable: bool,
        wake: u64,
    ) {
        let Some(conn) = self.slots.get_mut(id).and_then(|s| s.conn.as_mut()) else {
            return;
        };
        if conn.phase == Phase::Connecting {
            match conn.check_connected() {
                Ok(false) => return,
                Ok(true) => self.on_tcp_connected(id, wake),
                Err(e) => {
                    let now = self.shared.now();
                    self.close(id, ErrorKind::from_connect(&e), now);
                    return;
                }
            }
        }
        if self.tls_owns_event(id) {
            self.tls_event(id, wake);
            return;
        }
        if readable || read_closed || error {
            self.read(id, read_closed || error, wake);
        }
        if writable {
            self.flush(id);
        }
    }

    fn on_tcp_connected(&mut self, id: usize, wake: u64) {
        let Some(conn) = self.slots[id].conn.as_mut() else {
            return;
        };
        if let Some(tls) = conn.stream.tls_mut().filter(|t| t.handshaking()) {
            // The TLS handshake comes first; `tls_event` resumes here when it is done.
            tls.handshake_started = self.shared.now();
            conn.phase = Phase::Handshaking;
            return;
        }
        if conn.codec.write_handshake(&mut conn.output) {
            conn.phase = Phase::Handshaking;
            self.flush(id);
        } else {
            self.on_open(id, wake);
        }
    }

    fn on_open(&mut self, id: usize, wake: u64) {
        let now = self.shared.now();
        let slot = &mut self.slots[id];
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        conn.phase = Phase::Open;
        self.connecting -= 1;
        self.recorder.connected(now.saturating_sub(conn.started));
        slot.timetable.start(&self.shared.schedule, slot.index, now);
        slot.ready_since = now;
        self.send_requests(id, wake, now);
    }

    fn read(&mut self, id: usize, drain: bool, wake: u64) {
        loop {
            let Some(conn) = self.slots[id].conn.as_mut() else {
                return;
            };
            let n = match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    let now = self.shared.now();
                    self.close(id, ErrorKind::Closed, now);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let now = self.shared.now();
                    self.close(id, ErrorKind::from_io(&e), now);
                    return;
                }
            };
            let now = self.shared.now();
            if now >= self.shared.measure_start {
                self.recorder.received_bytes(n as u64);
            }
            let progress = self.decode(id, n, now);
            if progress.opened {
                self.on_open(id, wake);
            }
            if let Some(kind) = progress.error {
                self.close(id, kind, now);
                return;
            }
            if progress.replies > 0 {
                let slot = &mut self.slots[id];
                slot.failures = 0;
                slot.ready_since = now;
                self.send_requests(id, wake, now);
            } else {
                self.flush(id);
            }
            if n < self.scratch.len() && !drain {
                return;
            }
        }
    }

    /// Decode the `n` bytes just read into the scratch buffer (after any buffered tail).
    fn decode(&mut self, id: usize, n: usize, now: u64) -> Progress {
        let Worker {
            slots,
            scratch,
            recorder,
            shared,
            measured_in_flight,
            ..
        } = self;
        let Some(conn) = slots[id].conn.as_mut() else {
            return Progress::default();
        };
        let Conn {
            input,
            codec,
            pending,
            output,
            phase,
            ..
        } = conn;
        let from_scratch = input.is_empty();
        if !from_scratch {
            input.extend_from_slice(&scratch[..n]);
        }
        let mut progress = Progress::default();
        let consumed = {
            let data: &[u8] = if from_scratch { &scratch[..n] } else { input };
            let mut pos = 0;
            let mut open = *phase == Phase::Open;
            if *phase == Phase::Handshaking {
                match codec.read_handshake(data) {
                    Ok(None) => {}
                    Ok(Some(used)) => {
                        pos = used;
                        progress.opened = true;
                        open = true;
                    }
                    Err(e) => progress.error = Some(ErrorKind::from_frame(&e)),
                }
            }
            let verify = shared.config.verify;
            let echo = shared.config.framing.kind.is_echo();
            let keeps_payloads = shared.keeps_payloads();
            let fixed_len = shared.payloads.max_len();
            if open && !keeps_payloads && matches!(codec, Codec::Raw(_)) {
                // Raw echo of one fixed size, nothing checked: the whole replies are simply the
                // next `whole` outstanding requests, taken run by run with one record each
                // instead of decoding and recording reply by reply. A partial reply, or bytes
                // nobody asked for, are left to the loop below as usual.
                let whole = ((data.len() - pos) / fixed_len).min(pending.len());
                pos += whole * fixed_len;
                pending.pop_runs(whole, |run| {
                    if run.measured {
                        *measured_in_flight -= run.count as usize;
                        recorder.reply_n(
                            now.saturating_sub(run.intended),
                            now.saturating_sub(run.sent),
                            run.count,
                        );
                    }
                });
                progress.replies += whole;
            }
            while open && progress.error.is_none() && pos < data.len() {
                let expected = if keeps_payloads {
                    pending.front_payload().map(|p| p.len as usize)
                } else if pending.is_empty() {
                    None
                } else {
                    Some(fixed_len)
                };
                match codec.decode(&data[pos..], expected, output) {
                    Ok(Decoded::Incomplete) => break,
                    Ok(Decoded::Skip { consumed }) => pos += consumed,
                    Ok(Decoded::Reply { consumed, body, ok }) => {
                        pos += consumed;
                        let Some(request) = pending.pop() else {
                            progress.error = Some(ErrorKind::Protocol);
                            break;
                        };
                        if verify {
                            let matches = if echo {
                                request
                                    .payload
                                    .is_some_and(|p| body == shared.payloads.get(p))
                            } else {
                                ok
                            };
                            if !matches {
                                recorder.error(ErrorKind::VerifyMismatch);
                            }
                        } else if !ok {
                            recorder.error(ErrorKind::HttpStatus);
                        }
                        if request.measured {
                            *measured_in_flight -= 1;
                            recorder.reply(
                                now.saturating_sub(request.intended),
                                now.saturating_sub(request.sent),
                            );
                        }
                        progress.replies += 1;
                    }
                    Err(e) => progress.error = Some(ErrorKind::from_frame(&e)),
                }
            }
            pos
        };
        if from_scratch {
            input.extend_from_slice(&scratch[consumed..n]);
        } else {
            input.drain(..consumed);
        }
        progress
    }

    /// Encode every request this connection may send now, then write them in one go.
    ///
    /// `t` is the current time, read by the caller just before (after the `read` that freed
    /// the connection, or at the top of the loop): no extra clock read per send. `wake` is when
    /// the poll that led here returned; in a closed loop `t - wake` is the loop lag.
    fn send_requests(&mut self, id: usize, wake: u64, t: u64) {
        let Worker {
            slots,
            shared,
            recorder,
            rng,
            send_queue,
            measured_in_flight,
            quota_left,
            ..
        } = self;
        let slot = &mut slots[id];
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        // Nothing new leaves after the window, not even requests that fell due in it but
        // could not be sent (they would inflate the rate the server sustained).
        if conn.phase != Phase::Open || shared.end.is_some_and(|end| t >= end) {
            return;
        }
        let schedule = &shared.schedule;
        let pipeline = schedule.pipeline();
        if !schedule.is_open() {
            // Closed loop: every request of the batch is intended and sent at `t`, is measured
            // or not alike and has the same loop lag, so per request only pick, encode and
            // queue remain; counting and recording happen once per batch (~2x fewer
            // instructions per request at --pipeline 64; loadgen/bench/baseline.sh).
            let mut batch = pipeline.saturating_sub(conn.pending.len());
            let measured = t >= shared.measure_start;
            if measured {
                if let Some(quota) = slot.quota.as_mut() {
                    batch = batch.min(usize::try_from(*quota).unwrap_or(usize::MAX));
                    *quota -= batch as u64;
                    *quota_left -= batch as u64;
                }
            }
            // Set when the batch went to the socket straight from the payload pool.
            let mut direct = None;
            if batch > 0 {
                let keeps_payloads = shared.keeps_payloads();
                let raw = shared.config.framing.kind == FramingKind::Raw;
                let mut encoded = 0;
                let mut left = batch;
                while left > 0 {
                    // Raw requests are the payloads back to back: with a fixed size, runs of
                    // them that lie back to back in the pool go in one copy, or none at all
                    // when the whole batch is one run and nothing is queued before it.
                    if let Some((first, covered)) =
                        raw.then(|| shared.payloads.pick_run(rng, left)).flatten()
                    {
                        let bytes = shared.payloads.get_run(first, covered);
                        encoded += bytes.len();
                        if covered == batch && conn.output.is_empty() {
                            direct = Some(conn.send(bytes));
                        } else {
                            conn.codec.encode(bytes, &mut conn.output);
                        }
                        if keeps_payloads {
                            for i in 0..covered as u32 {
                                conn.pending.push_payload(PayloadRef {
                                    offset: first.offset + i * first.len,
                                    len: first.len,
                                });
                            }
                        }
                        left -= covered;
                        continue;
                    }
                    let payload = shared.payloads.pick(rng);
                    let before = conn.output.len();
                    conn.codec
                        .encode(shared.payloads.get(payload), &mut conn.output);
                    encoded += conn.output.len() - before;
                    if keeps_payloads {
                        conn.pending.push_payload(payload);
                    }
                    left -= 1;
                }
                conn.pending.push(Pending {
                    intended: t,
                    sent: t,
                    measured,
                    count: batch as u64,
                });
                slot.timetable.advance_by(batch as u64);
                if measured {
                    *measured_in_flight += batch;
                    recorder.sent_n(batch as u64, encoded as u64);
                    recorder.lag_n(t.saturating_sub(wake), batch as u64);
                }
            }
            match direct {
                None => self.flush(id),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let now = self.shared.now();
                    self.close(id, ErrorKind::from_io(&e), now);
                }
            }
            return;
        }
        while conn.pending.len() < pipeline {
            let intended = if schedule.is_open() {
                match slot.timetable.next_due(schedule) {
                    Some(due) if due <= t => due,
                    Some(due) => {
                        if !slot.armed {
                            send_queue.push(Reverse((due, id)));
                            slot.armed = true;
                        }
                        break;
                    }
                    None => break,
                }
            } else {
                t
            };
            if shared.end.is_some_and(|end| intended >= end) {
                break;
            }
            let measured = intended >= shared.measure_start;
            if measured {
                match slot.quota {
                    Some(0) => break,
                    Some(q) => {
                        slot.quota = Some(q - 1);
                        *quota_left -= 1;
                    }
                    None => {}
                }
            }
            let payload = shared.payloads.pick(rng);
            let before = conn.output.len();
            conn.codec
                .encode(shared.payloads.get(payload), &mut conn.output);
            conn.pending.push(Pending {
                intended,
                sent: t,
                measured,
                count: 1,
            });
            if shared.keeps_payloads() {
                conn.pending.push_payload(payload);
            }
            slot.timetable.advance();
            if measured {
                *measured_in_flight += 1;
                recorder.sent((conn.output.len() - before) as u64);
                let could_send = if schedule.is_open() {
                    intended.max(slot.ready_since)
                } else {
                    wake
                };
                recorder.lag(t.saturating_sub(could_send));
            }
        }
        self.flush(id);
    }

    fn flush(&mut self, id: usize) {
        let Some(conn) = self.slots[id].conn.as_mut() else {
            return;
        };
        if conn.output.is_empty() && !conn.stream.wants_write() {
            return;
        }
        if let Err(e) = conn.flush() {
            let now = self.shared.now();
            self.close(id, ErrorKind::from_io(&e), now);
        }
    }

    /// Send for every open-loop slot whose intended time has come.
    fn send_due(&mut self, now: u64) {
        while let Some(&Reverse((due, id))) = self.send_queue.peek() {
            if due > now {
                return;
            }
            self.send_queue.pop();
            self.slots[id].armed = false;
            self.send_requests(id, now, now);
        }
    }

    /// Close connections whose connect or oldest request exceeded `--timeout`.
    fn expire(&mut self, now: u64) {
        let timeout = self.shared.config.timeout.as_nanos() as u64;
        for id in 0..self.slots.len() {
            let Some(conn) = self.slots[id].conn.as_ref() else {
                continue;
            };
            let kind = match conn.phase {
                Phase::Handshaking
                    if conn.stream.tls_handshaking()
                        && now.saturating_sub(conn.started) > timeout =>
                {
                    ErrorKind::TlsHandshakeTimeout
                }
                Phase::Connecting | Phase::Handshaking
                    if now.saturating_sub(conn.started) > timeout =>
                {
                    ErrorKind::ConnectTimeout
                }
                Phase::Open if self.shared.config.handshake_only() => {
                    if now.saturating_sub(conn.started) > timeout {
                        self.ticket_wait_expired(id, now);
                    }
                    continue;
                }
                Phase::Open
                    if conn
                        .pending
                        .oldest_sent()
                        .is_some_and(|sent| now.saturating_sub(sent) > timeout) =>
                {
                    ErrorKind::Timeout
                }
                _ => continue,
            };
            self.close(id, kind, now);
        }
    }

    /// Ship every whole second of the measured window that has passed.
    fn report_intervals(&mut self, now: u64) {
        let measure_start = self.shared.measure_start;
        // Seconds that end before the window does; the last (possibly partial) one, with the
        // replies drained after the window, is reported when the worker stops.
        loop {
            let boundary = measure_start + (self.next_interval + 1) * SECOND_NS;
            if now < boundary || self.shared.end.is_some_and(|end| boundary >= end) {
                return;
            }
            let index = self.next_interval;
            let report = self.recorder.take_interval(
                self.id,
                index,
                index * SECOND_NS,
                (index + 1) * SECOND_NS,
            );
            let _ = self.reports.send(report);
            self.next_interval += 1;
        }
    }
}
