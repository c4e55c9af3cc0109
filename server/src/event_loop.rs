//! One event loop: a `mio::Poll` on its own thread (`gev-loop-N`) owning a slab of connections.
//!
//! One iteration: poll -> for each readable connection, read into the loop's scratch buffer and
//! unpack/handle messages in place (only an incomplete tail is copied into the connection's ring
//! buffer) -> expired timers -> accept (when this loop owns the listener: a single loop) ->
//! queued tasks (new connections, cross-thread sends, timers) -> flush every connection that has
//! output, once. Hot-path choices, each saving syscalls or
//! copies (counted with `strace -c`, see the crate README):
//! - sockets are registered once, edge-triggered, for both directions (no `epoll_ctl` per
//!   message, no re-arming);
//! - a read shorter than the scratch buffer means the socket was drained, so the extra read
//!   that would only return `EAGAIN` is skipped (unless the peer hung up, to see the EOF);
//! - replies are appended to the output buffer and written once per read turn (all replies of
//!   one read go out in one write, right after it, so the loop reuses one pooled buffer); output
//!   produced elsewhere (handles, timers) is written once at the end of the iteration; a short
//!   write means the send buffer is full, so the next write waits for the writable edge.

use std::io::{self, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::acceptor::{AcceptCore, InlineAcceptor};
use crate::connection::{Conn, ConnCore, ConnId, Connection, WriteShutdown};
use crate::handler::{CloseReason, Handler};
use crate::loop_handle::{LoopShared, Task};
use crate::metrics::LoopMetrics;
use crate::options::{Backpressure, ServerOptions};
use crate::output_buffer::{BufferPool, OutputBuffer};
use crate::protocol::{Protocol, Unpacked};
use crate::ring_buffer::RingBuffer;
use crate::timer::{TimerCallback, TimerKind, Timers};
use crate::tls::session::{Fed, TlsSession};

/// Token of the loop's waker (connection tokens are slab keys, far below it).
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Token of the loop's UDP socket, when the server serves UDP on its loops (`crate::udp`).
const UDP_TOKEN: Token = Token(usize::MAX - 1);

/// Token of the listener, when this loop accepts its own connections (one loop: see
/// `acceptor.rs`).
const LISTENER_TOKEN: Token = Token(usize::MAX - 2);

/// Reads made for one connection before the loop moves on to others (the rest is read in the
/// next iteration), so one fast sender cannot starve the loop's other connections.
const MAX_READS_PER_TURN: usize = 16;

/// Drained output buffers a loop keeps for reuse, and the largest capacity kept: at most
/// 8 x 128 KiB per loop, whatever the number of connections.
const OUTPUT_POOL_BUFFERS: usize = 8;
const OUTPUT_POOL_MAX_CAPACITY: usize = 128 * 1024;

/// Plaintext sealed into TLS records per step of a flush (four full records): the next chunk is
/// sealed only once the connection's records are written, so its record buffer never holds
/// more than one chunk and the output buffer remains the measure of its pending output.
const TLS_SEAL_CHUNK: usize = 64 * 1024;

/// The limits a loop enforces, copied from [`ServerOptions`].
#[derive(Debug, Clone)]
struct LoopSettings {
    output_high_watermark: usize,
    output_low_watermark: usize,
    backpressure: Backpressure,
    idle_timeout: Option<Duration>,
    close_linger: Duration,
    events_capacity: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
    tls_handshake_timeout: Duration,
}

/// Connections to visit later in this or the next iteration, by key and generation.
type ConnList = Vec<(usize, u64)>;

/// A loop and everything it owns.
pub(crate) struct EventLoop<P: Protocol, H: Handler<P>> {
    poll: Poll,
    shared: Arc<LoopShared<P>>,
    protocol: Arc<P>,
    handler: Arc<H>,
    settings: LoopSettings,
    conns: Slab<Connection<P>>,
    /// The per-loop read buffer every connection reads into.
    scratch: Box<[u8]>,
    /// With TLS: the per-loop buffer each read's decrypted records are gathered into and
    /// delivered from, as large as `scratch` (empty without TLS).
    tls_plaintext: Box<[u8]>,
    /// Drained output buffers lent to the next connection with output.
    buffer_pool: BufferPool,
    /// Connections with output to write (or a close/shutdown to carry out) this iteration.
    flush_list: ConnList,
    /// Connections with unread input left (read budget exhausted, or just resumed): read in
    /// the next iteration, after that iteration's events.
    read_again: ConnList,
    /// The emptied list of the previous iteration, swapped with `read_again` so that queueing
    /// connections to read again does not allocate in every iteration of a streaming load.
    read_spare: ConnList,
    /// Counts loop iterations: a connection read through an event in this iteration is not
    /// read again from `read_again` in the same one (`ConnCore::read_in_iteration`).
    iteration: u64,
    task_batch: Vec<Task<P>>,
    timers: Timers,
    next_generation: u64,
    /// Connections open in the whole server (max_connections is enforced by the acceptor).
    active_total: Arc<AtomicUsize>,
    stop_deadline: Option<Instant>,
    /// This loop's UDP socket and datagram path (`Server::with_udp`), driven from `run`.
    udp: Option<Box<crate::udp::LoopUdp>>,
    /// The listener and accept logic, when this loop accepts for itself (a server with one loop
    /// and no dedicated acceptor thread); closed when a graceful stop begins.
    acceptor: Option<Box<InlineAcceptor>>,
    /// Time of the current iteration (one clock read per iteration).
    now: Instant,
}

/// What the read path asks the loop to do with a connection.
enum ReadOutcome {
    Keep,
    /// Stopped reading because the output reached one read's worth: write it, then go on.
    OutputFull,
    /// The read budget of this turn is used up; input may be left.
    BudgetUsed,
    CloseNow(CloseReason),
}

impl<P: Protocol, H: Handler<P>> EventLoop<P, H> {
    pub(crate) fn new(
        index: usize,
        options: &ServerOptions,
        protocol: Arc<P>,
        handler: Arc<H>,
        metrics: Option<Arc<crate::metrics::LoopMetrics>>,
        active_total: Arc<AtomicUsize>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        // With TLS the read buffer must hold a carried incomplete record plus a whole record.
        let read_buffer_size = match options.tls {
            Some(_) => options
                .read_buffer_size
                .max(crate::tls::session::MIN_READ_BUFFER),
            None => options.read_buffer_size,
        };
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let shared = Arc::new(LoopShared {
            index,
            tasks: crate::task_queue::TaskQueue::new(waker),
            next_timer: Default::default(),
            connections: AtomicUsize::new(0),
            loop_thread: Default::default(),
            exited: Default::default(),
            metrics,
            output_high_watermark: options.output_high_watermark,
            backpressure: options.backpressure,
        });
        Ok(EventLoop {
            poll,
            shared,
            protocol,
            handler,
            settings: LoopSettings {
                output_high_watermark: options.output_high_watermark,
                output_low_watermark: options.output_low_watermark,
                backpressure: options.backpressure,
                idle_timeout: options.idle_timeout,
                close_linger: options.close_linger,
                events_capacity: options.events_capacity,
                // Wrapped once per loop so sessions can report the SNI (tls/session.rs).
                tls: options.tls.as_ref().map(crate::tls::session::loop_config),
                tls_handshake_timeout: options.tls_handshake_timeout,
            },
            conns: Slab::new(),
            scratch: vec![0u8; read_buffer_size].into_boxed_slice(),
            tls_plaintext: match options.tls {
                Some(_) => vec![0u8; read_buffer_size].into_boxed_slice(),
                None => Box::default(),
            },
            buffer_pool: BufferPool::new(
                OUTPUT_POOL_BUFFERS,
                OUTPUT_POOL_MAX_CAPACITY.max(2 * options.read_buffer_size),
            ),
            flush_list: Vec::new(),
            read_again: Vec::new(),
            read_spare: Vec::new(),
            iteration: 0,
            task_batch: Vec::new(),
            timers: Timers::default(),
            next_generation: 0,
            active_total,
            stop_deadline: None,
            udp: None,
            acceptor: None,
            now: Instant::now(),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<LoopShared<P>> {
        &self.shared
    }

    /// Gives this loop a UDP socket to serve beside its connections (before it runs).
    pub(crate) fn attach_udp(&mut self, mut udp: crate::udp::LoopUdp) -> io::Result<()> {
        udp.register(self.poll.registry(), UDP_TOKEN)?;
        self.udp = Some(Box::new(udp));
        Ok(())
    }

    /// Makes this loop accept its own connections from the listener in `core` (before it runs).
    pub(crate) fn accept_inline(&mut self, core: AcceptCore) -> io::Result<()> {
        let acceptor = InlineAcceptor::new(core, self.poll.registry(), LISTENER_TOKEN)?;
        self.acceptor = Some(Box::new(acceptor));
        Ok(())
    }

    /// Runs until a graceful stop completes (or polling fails).
    pub(crate) fn run(mut self) -> io::Result<()> {
        let _ = self.shared.loop_thread.set(std::thread::current().id());
        let mut events = Events::with_capacity(self.settings.events_capacity);
        self.now = Instant::now();
        if let Some(idle) = self.settings.idle_timeout {
            self.timers
                .schedule(self.now + idle_sweep_interval(idle), TimerKind::IdleSweep);
        }
        let result = loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(e);
            }
            self.now = Instant::now();
            let started = self.now;
            self.iteration += 1;
            // What the previous iteration left to read; what this one leaves goes to the next.
            let spare = std::mem::take(&mut self.read_spare);
            let deferred = std::mem::replace(&mut self.read_again, spare);
            for event in events.iter() {
                if event.token() == WAKER_TOKEN {
                    continue; // tasks are drained below whenever the queue is notified
                }
                if event.token() == UDP_TOKEN {
                    if let Some(udp) = &mut self.udp {
                        udp.on_event(event.is_readable(), event.is_writable());
                    }
                    continue;
                }
                if event.token() == LISTENER_TOKEN {
                    if let Some(acceptor) = &mut self.acceptor {
                        acceptor.on_readable(); // accepted after the events (see accept_pending)
                    }
                    continue;
                }
                let key = event.token().0;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    let hung_up = event.is_read_closed() || event.is_error();
                    self.read_connection(key, hung_up);
                }
                if event.is_writable() {
                    self.queue_flush_if_pending(key);
                }
            }
            self.read_deferred(deferred);
            self.run_timers();
            self.accept_pending();
            self.run_tasks();
            if let Some(udp) = &mut self.udp {
                udp.turn();
            }
            self.flush_all();
            if let Some(metrics) = &self.shared.metrics {
                metrics.on_iteration(started.elapsed());
            }
            if let Some(deadline) = self.stop_deadline {
                let udp_done = self
                    .udp
                    .as_mut()
                    .is_none_or(|udp| udp.stop_finished(Instant::now()));
                if self.conns.is_empty() && udp_done {
                    break Ok(());
                }
                if Instant::now() >= deadline {
                    self.close_all(CloseReason::Shutdown);
                    break Ok(());
                }
            }
        };
        self.shared.exited.store(true, Ordering::Release);
        if result.is_err() {
            self.close_all(CloseReason::Error);
        }
        result
    }

    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.read_again.is_empty()
            || self.shared.tasks.is_notified()
            || self.udp.as_ref().is_some_and(|udp| udp.wants_poll_now())
            || self.acceptor.as_ref().is_some_and(|a| a.is_ready())
        {
            return Some(Duration::ZERO);
        }
        let mut deadline = self.timers.next_deadline();
        if let Some(stop) = self.stop_deadline {
            deadline = Some(deadline.map_or(stop, |d| d.min(stop)));
        }
        // Round up to the next millisecond (epoll's resolution) so a timer never wakes the loop
        // just before its deadline and makes it spin.
        deadline.map(|d| {
            let wait = d.saturating_duration_since(Instant::now());
            let millis = wait.as_nanos().div_ceil(1_000_000) as u64;
            Duration::from_millis(millis)
        })
    }

    // ----- read path -------------------------------------------------------------------------

    /// Gives each connection the previous iteration left unread its read turn, unless an event
    /// already gave it one in this iteration (then it is queued again only if that turn left
    /// input). Without the check a streaming peer got two or three turns per iteration to
    /// everyone else's one.
    fn read_deferred(&mut self, mut list: ConnList) {
        for &(key, generation) in &list {
            let Some(conn) = self.conns.get(key) else {
                continue;
            };
            if conn.core.id.generation == generation
                && conn.core.read_in_iteration != self.iteration
            {
                self.read_connection(key, false);
            }
        }
        // Keep the allocation for the next iteration's list.
        list.clear();
        self.read_spare = list;
    }

    /// Reads what the socket has (up to the per-turn budget) and delivers it. `hung_up`: the
    /// event reported the peer's hang-up or an error.
    fn read_connection(&mut self, key: usize, hung_up: bool) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.core.read_in_iteration = self.iteration;
            if hung_up {
                conn.core.peer_hung_up = true;
            }
        }
        let mut budget = MAX_READS_PER_TURN;
        loop {
            let outcome = self.read_and_deliver(key, &mut budget);
            let generation = match self.conns.get(key) {
                Some(conn) => conn.core.id.generation,
                None => return,
            };
            match outcome {
                ReadOutcome::Keep | ReadOutcome::OutputFull | ReadOutcome::BudgetUsed => {
                    // The replies of this read turn go out now, in one write: the output buffer
                    // is back in the pool before the next connection is read, so a loop serving
                    // many connections reuses one warm buffer instead of allocating (and
                    // faulting in) one per connection. Output from elsewhere waits for the end
                    // of the iteration.
                    if self.conns[key].has_unsent() {
                        self.flush_connection(key);
                    } else {
                        self.after_callback(key);
                    }
                }
                ReadOutcome::CloseNow(reason) => {
                    self.close_now(key, reason);
                    return;
                }
            }
            let Some(conn) = self.conns.get(key) else {
                return;
            };
            let can_continue = !conn.has_unsent();
            let core = &conn.core;
            let can_continue =
                can_continue && core.closing.is_none() && !core.reading_paused && budget > 0;
            match outcome {
                // A streaming peer whose output was written in full: keep reading it.
                ReadOutcome::OutputFull if can_continue => continue,
                // Input may be left: read it next iteration (a paused or closing connection is
                // read again when it resumes, or never).
                ReadOutcome::OutputFull | ReadOutcome::BudgetUsed
                    if core.closing.is_none() && !core.reading_paused =>
                {
                    self.read_again.push((key, generation));
                }
                _ => {}
            }
            return;
        }
    }

    fn read_and_deliver(&mut self, key: usize, budget: &mut usize) -> ReadOutcome {
        let EventLoop {
            conns,
            scratch,
            tls_plaintext,
            buffer_pool,
            protocol,
            handler,
            shared,
            settings,
            now,
            ..
        } = self;
        let Some(conn) = conns.get_mut(key) else {
            return ReadOutcome::Keep;
        };
        let metrics = shared.metrics.as_deref();
        while *budget > 0 {
            *budget -= 1;
            if conn.core.closing.is_some() || conn.core.reading_paused {
                return ReadOutcome::Keep;
            }
            // With TLS, the incomplete record the last read ended with goes first, so the read
            // completes it in place.
            let carried = conn
                .tls
                .as_ref()
                .map_or(0, |tls| tls.restore_carry(scratch));
            let n = match (&conn.stream).read(&mut scratch[carried..]) {
                Ok(0) => {
                    if let Some(m) = metrics {
                        m.on_read(0);
                    }
                    // The peer finished sending: flush what we owe it, then close.
                    conn.input.retrieve_all();
                    conn.core.begin_close(CloseReason::Peer);
                    return ReadOutcome::Keep;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(m) = metrics {
                        m.on_read(0);
                    }
                    return ReadOutcome::Keep;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(conn = %conn.core.id, error = %e, "read failed");
                    return ReadOutcome::CloseNow(read_error_reason(&e));
                }
            };
            if let Some(m) = metrics {
                m.on_read(n);
            }
            conn.core.last_active = *now;
            // Lend a pooled buffer for the replies; taken back below if none were produced.
            if conn.core.output.capacity() == 0 {
                conn.core.output.install(buffer_pool.take());
            }
            let Connection {
                decoder,
                input,
                core,
                tls,
                ..
            } = conn;
            let delivered = match tls {
                None => deliver_input(
                    &**protocol,
                    &**handler,
                    shared,
                    core,
                    decoder,
                    input,
                    &mut scratch[..n],
                ),
                Some(tls) => deliver_tls(
                    &**protocol,
                    &**handler,
                    shared,
                    core,
                    decoder,
                    input,
                    tls,
                    &mut scratch[..carried + n],
                    tls_plaintext,
                    buffer_pool,
                ),
            };
            if conn.core.output.is_empty() {
                buffer_pool.give(conn.core.output.release());
            }
            if let Some(m) = metrics {
                if delivered.messages > 0 {
                    m.on_messages_in(delivered.messages);
                    m.on_messages_out(delivered.replies);
                }
            }
            match delivered.failure {
                // Close once the error reply (or TLS alert) is flushed.
                Some(reason @ (CloseReason::Protocol | CloseReason::Tls)) => {
                    conn.input.retrieve_all();
                    conn.core.begin_close(reason);
                    return ReadOutcome::Keep;
                }
                Some(reason) => return ReadOutcome::CloseNow(reason),
                None => {}
            }
            if conn.core.output.pending() > settings.output_high_watermark {
                match settings.backpressure {
                    Backpressure::PauseReading => {
                        conn.core.reading_paused = true;
                        if let Some(m) = metrics {
                            m.on_pause();
                        }
                        return ReadOutcome::Keep;
                    }
                    Backpressure::Close => {
                        return ReadOutcome::CloseNow(CloseReason::Backpressure);
                    }
                }
            }
            if carried + n < scratch.len() && !conn.core.peer_hung_up {
                // Short read: the socket is drained; skip the read that would return EAGAIN.
                return ReadOutcome::Keep;
            }
            if conn.core.output.pending() >= scratch.len() {
                // A streaming peer: write what is pending before reading more, so output stays
                // about one read in size (no buffer growth, no reallocation copies, in cache).
                return ReadOutcome::OutputFull;
            }
        }
        // Budget used up with data possibly left: continue next iteration.
        ReadOutcome::BudgetUsed
    }

    // ----- write path ------------------------------------------------------------------------

    fn queue_flush_if_pending(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.has_unsent() && !conn.core.in_flush_list {
                conn.core.in_flush_list = true;
                self.flush_list.push((key, conn.core.id.generation));
            }
        }
    }

    /// After any callback or read on `key`: queue a flush if there is something to write or to
    /// carry out (close, shutdown), and apply backpressure to output produced outside reads.
    fn after_callback(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let has_unsent = conn.has_unsent();
        let core = &mut conn.core;
        let needs_flush =
            has_unsent || core.closing.is_some() || core.write_shutdown == WriteShutdown::Requested;
        if needs_flush && !core.in_flush_list {
            core.in_flush_list = true;
            self.flush_list.push((key, core.id.generation));
        }
        if core.closing.is_none()
            && !core.reading_paused
            && core.output.pending() > self.settings.output_high_watermark
        {
            match self.settings.backpressure {
                Backpressure::PauseReading => {
                    core.reading_paused = true;
                    if let Some(m) = &self.shared.metrics {
                        m.on_pause();
                    }
                }
                Backpressure::Close => self.close_now(key, CloseReason::Backpressure),
            }
        }
    }

    fn flush_all(&mut self) {
        if self.flush_list.is_empty() {
            return;
        }
        let mut list = std::mem::take(&mut self.flush_list);
        for &(key, generation) in &list {
            if self.is_live(key, generation) {
                self.flush_connection(key);
            }
        }
        list.clear();
        // Flushing never queues flushes, but keep anything queued (e.g. by on_close) anyway.
        list.append(&mut self.flush_list);
        self.flush_list = list;
    }

    fn flush_connection(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.core.in_flush_list = false;
        let metrics = self.shared.metrics.as_deref();
        let pool = &mut self.buffer_pool;
        let written = match &mut conn.tls {
            None => write_plain(&conn.stream, &mut conn.core, pool, metrics, self.now),
            Some(tls) => write_tls(&conn.stream, tls, &mut conn.core, pool, metrics, self.now),
        };
        if let Err(e) = written {
            tracing::debug!(conn = %conn.core.id, error = %e, "write failed");
            let reason = conn.core.closing.unwrap_or(CloseReason::Error);
            self.close_now(key, reason);
            return;
        }
        let all_sent = !conn.has_unsent();
        let core = &mut conn.core;
        core.publish_pending(
            self.settings.output_high_watermark,
            self.settings.output_low_watermark,
        );
        let pending = core.output.pending();
        if all_sent {
            if core.write_shutdown == WriteShutdown::Requested {
                core.write_shutdown = WriteShutdown::Done;
                if let Err(e) = conn.stream.shutdown(std::net::Shutdown::Write) {
                    tracing::debug!(conn = %core.id, error = %e, "shutdown(write) failed");
                }
            }
            if let Some(reason) = core.closing {
                self.close_now(key, reason);
                return;
            }
        }
        if core.reading_paused && pending <= self.settings.output_low_watermark {
            core.reading_paused = false;
            if let Some(m) = metrics {
                m.on_resume();
            }
            // Edges that arrived while paused were ignored: read again to catch up.
            self.read_again.push((key, core.id.generation));
        }
        if !all_sent && core.closing.is_some() && !core.linger_armed {
            core.linger_armed = true;
            let mut deadline = self.now + self.settings.close_linger;
            if let Some(stop) = self.stop_deadline {
                deadline = deadline.min(stop);
            }
            self.timers.schedule(deadline, TimerKind::Linger(core.id));
        }
    }

    // ----- closing ---------------------------------------------------------------------------

    fn is_live(&self, key: usize, generation: u64) -> bool {
        self.conns
            .get(key)
            .is_some_and(|c| c.core.id.generation == generation)
    }

    /// Closes at once (pending output is dropped), calls `on_close` and frees the slot.
    fn close_now(&mut self, key: usize, reason: CloseReason) {
        let Some(conn) = self.conns.try_remove(key) else {
            return;
        };
        let Connection {
            stream,
            mut core,
            tls,
            ..
        } = conn;
        // A TLS connection whose handshake never completed was never shown to the handler.
        let connected = tls.as_ref().is_none_or(|tls| tls.connected);
        drop(tls);
        // Closing the descriptor also removes it from the epoll set (it is never duplicated),
        // so no deregister syscall is needed.
        drop(stream);
        if let Some(state) = &core.shared {
            state.closed.store(true, Ordering::Release);
        }
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        self.active_total.fetch_sub(1, Ordering::Relaxed);
        if let Some(m) = &self.shared.metrics {
            if core.reading_paused {
                m.on_resume();
            }
            m.on_close(reason);
        }
        tracing::debug!(conn = %core.id, peer = %core.peer_addr, reason = reason.as_str(), "connection closed");
        core.closing = Some(reason);
        if !connected {
            return;
        }
        let mut view = Conn {
            core: &mut core,
            protocol: &self.protocol,
            shared: &self.shared,
        };
        let handler = &self.handler;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| handler.on_close(&mut view, reason))) {
            tracing::error!(conn = %core.id, panic = panic_message(&panic), "on_close panicked");
        }
    }

    fn close_all(&mut self, reason: CloseReason) {
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.close_now(key, reason);
        }
    }

    // ----- timers ----------------------------------------------------------------------------

    fn run_timers(&mut self) {
        while let Some((deadline, kind)) = self.timers.pop_expired(self.now) {
            match kind {
                TimerKind::User(id) => match self.timers.take_user(id) {
                    Some(TimerCallback::Once(f)) => {
                        if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
                            tracing::error!(
                                timer = id.0,
                                panic = panic_message(&panic),
                                "timer callback panicked"
                            );
                        }
                    }
                    Some(TimerCallback::Every {
                        interval,
                        mut callback,
                    }) => match catch_unwind(AssertUnwindSafe(&mut callback)) {
                        Ok(()) => {
                            // Next run one interval after this one was due, or after now if the
                            // loop fell behind (no catch-up burst).
                            let mut next = deadline + interval;
                            if next <= self.now {
                                next = self.now + interval;
                            }
                            self.timers.add_user(
                                id,
                                next,
                                TimerCallback::Every { interval, callback },
                            );
                        }
                        Err(panic) => {
                            tracing::error!(
                                timer = id.0,
                                panic = panic_message(&panic),
                                "periodic timer panicked; it is cancelled"
                            );
                        }
                    },
                    None => {}
                },
                TimerKind::IdleSweep => self.sweep_idle(),
                TimerKind::AcceptRetry => {
                    if let Some(acceptor) = &mut self.acceptor {
                        acceptor.on_retry_timer();
                    }
                }
                TimerKind::Handshake(id) => {
                    let stalled = self.is_live(id.key(), id.generation)
                        && self.conns[id.key()]
                            .tls
                            .as_ref()
                            .is_some_and(|tls| tls.is_handshaking());
                    if stalled {
                        tracing::debug!(conn = %id, "TLS handshake timed out");
                        self.close_now(id.key(), CloseReason::HandshakeTimeout);
                    }
                }
                TimerKind::Linger(id) => {
                    if self.is_live(id.key(), id.generation) {
                        let reason = self.conns[id.key()]
                            .core
                            .closing
                            .unwrap_or(CloseReason::Local);
                        tracing::debug!(conn = %id, "close linger expired with output pending");
                        self.close_now(id.key(), reason);
                    }
                }
            }
        }
    }

    fn sweep_idle(&mut self) {
        let Some(idle) = self.settings.idle_timeout else {
            return;
        };
        let now = self.now;
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| now.saturating_duration_since(c.core.last_active) >= idle)
            .map(|(key, _)| key)
            .collect();
        for key in expired {
            self.close_now(key, CloseReason::Idle);
        }
        self.timers
            .schedule(now + idle_sweep_interval(idle), TimerKind::IdleSweep);
    }

    // ----- tasks -----------------------------------------------------------------------------

    fn run_tasks(&mut self) {
        // A task may queue more tasks for this loop (e.g. a timer calling for_each_conn); run a
        // few rounds, then let polling happen (the timeout is zero while tasks wait).
        for _ in 0..4 {
            if !self.shared.tasks.is_notified() {
                return;
            }
            let mut batch = std::mem::take(&mut self.task_batch);
            self.shared.tasks.drain(&mut batch);
            if let Some(m) = &self.shared.metrics {
                m.set_task_queue_depth(batch.len());
            }
            for task in batch.drain(..) {
                self.run_task(task);
            }
            self.task_batch = batch;
        }
    }

    fn run_task(&mut self, task: Task<P>) {
        match task {
            Task::Register { stream, peer } => self.register(stream, peer),
            Task::Send { id, reply } => {
                if !self.is_live(id.key(), id.generation) {
                    return;
                }
                let conn = &mut self.conns[id.key()];
                if conn.core.closing.is_some() {
                    return;
                }
                self.protocol
                    .pack(&mut conn.core.encoder, reply, conn.core.output.vec_mut());
                conn.core.publish_pending(
                    self.settings.output_high_watermark,
                    self.settings.output_low_watermark,
                );
                if let Some(m) = &self.shared.metrics {
                    m.on_messages_out(1);
                }
                self.after_callback(id.key());
            }
            Task::ShutdownWrite(id) => {
                if self.is_live(id.key(), id.generation) {
                    let core = &mut self.conns[id.key()].core;
                    if core.write_shutdown == WriteShutdown::No {
                        core.write_shutdown = WriteShutdown::Requested;
                    }
                    self.after_callback(id.key());
                }
            }
            Task::Close(id, reason) => {
                if self.is_live(id.key(), id.generation) {
                    self.conns[id.key()].core.begin_close(reason);
                    self.after_callback(id.key());
                }
            }
            Task::Timer {
                id,
                deadline,
                callback,
            } => self.timers.add_user(id, deadline, callback),
            Task::Cancel(id) => self.timers.cancel(id),
            Task::ForEachConn(mut f) => self.for_each_conn(&mut *f),
            Task::Run(f) => {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
                    tracing::error!(panic = panic_message(&panic), "loop task panicked");
                }
            }
            Task::Stop { deadline } => self.begin_stop(deadline),
        }
    }

    /// With an inline acceptor: accepts what the listener has and registers each connection
    /// here, as `Task::Register` would, without the queue and the waker. After the events, so
    /// a slot freed and reused in this iteration never receives a stale event.
    fn accept_pending(&mut self) {
        let Some(mut acceptor) = self.acceptor.take() else {
            return;
        };
        let retry = acceptor.accept(|stream, peer| {
            self.shared.connections.fetch_add(1, Ordering::Relaxed);
            self.register(stream, peer);
        });
        if let Some(deadline) = retry {
            self.timers.schedule(deadline, TimerKind::AcceptRetry);
        }
        self.acceptor = Some(acceptor);
    }

    fn register(&mut self, mut stream: crate::transport::Stream, peer: std::net::SocketAddr) {
        if self.stop_deadline.is_some() {
            drop(stream);
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            self.active_total.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let tls = match &self.settings.tls {
            None => None,
            Some(config) => match TlsSession::new(config) {
                Ok(session) => Some(Box::new(session)),
                Err(e) => {
                    tracing::warn!(peer = %peer, error = %e, "cannot start a TLS session; closing the connection");
                    self.shared.connections.fetch_sub(1, Ordering::Relaxed);
                    self.active_total.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
            },
        };
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let Ok(key32) = u32::try_from(key) else {
            tracing::error!("more than u32::MAX connections on one loop; refusing");
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            self.active_total.fetch_sub(1, Ordering::Relaxed);
            return;
        };
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(peer = %peer, error = %e, "cannot register connection; closing it");
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            self.active_total.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.next_generation += 1;
        let id = ConnId {
            loop_index: self.shared.index as u16,
            key: key32,
            generation: self.next_generation,
        };
        let is_tls = tls.is_some();
        entry.insert(Connection {
            stream,
            decoder: P::Decoder::default(),
            input: RingBuffer::new(),
            core: ConnCore::new(id, peer, self.now),
            tls,
        });
        if let Some(m) = &self.shared.metrics {
            m.on_accept();
        }
        tracing::trace!(conn = %id, peer = %peer, "connection registered");
        if is_tls {
            // The handler meets the connection once the handshake is done (see deliver_tls).
            self.timers.schedule(
                self.now + self.settings.tls_handshake_timeout,
                TimerKind::Handshake(id),
            );
            return;
        }
        let conn = &mut self.conns[key];
        match announce(
            &*self.handler,
            &*self.protocol,
            &self.shared,
            &mut conn.core,
        ) {
            Ok(()) => self.after_callback(key),
            Err(reason) => self.close_now(key, reason),
        }
    }

    fn for_each_conn(&mut self, f: &mut (dyn FnMut(&mut Conn<'_, P>) + Send)) {
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let handshaking = conn.tls.as_ref().is_some_and(|tls| !tls.connected);
            if conn.core.closing.is_some() || handshaking {
                continue;
            }
            let mut view = Conn {
                core: &mut conn.core,
                protocol: &self.protocol,
                shared: &self.shared,
            };
            match catch_unwind(AssertUnwindSafe(|| f(&mut view))) {
                Ok(()) => self.after_callback(key),
                Err(panic) => {
                    tracing::error!(conn = %conn.core.id, panic = panic_message(&panic), "for_each_conn callback panicked; closing the connection");
                    self.close_now(key, CloseReason::Panic);
                }
            }
        }
    }

    fn begin_stop(&mut self, deadline: Instant) {
        // Stop accepting first, as the acceptor thread does when it exits.
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.close(self.poll.registry());
        }
        self.stop_deadline = Some(deadline);
        if let Some(udp) = &mut self.udp {
            udp.begin_stop(deadline);
        }
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.conns[key].core.begin_close(CloseReason::Shutdown);
            self.after_callback(key);
        }
    }
}

/// Result of delivering one buffer of input.
struct Delivered {
    consumed: usize,
    messages: usize,
    replies: usize,
    /// Set when delivery stopped because the connection must close: `Protocol` (close after
    /// flushing) or `Panic` (close now).
    failure: Option<CloseReason>,
}

/// Unpacks messages from `data` and hands each to the handler, packing returned replies.
/// Stops at an incomplete frame, a protocol error, a handler panic or a close request.
#[inline]
fn deliver<P: Protocol, H: Handler<P>>(
    protocol: &P,
    handler: &H,
    shared: &Arc<LoopShared<P>>,
    core: &mut ConnCore<P>,
    decoder: &mut P::Decoder,
    data: &mut [u8],
) -> Delivered {
    let mut result = Delivered {
        consumed: 0,
        messages: 0,
        replies: 0,
        failure: None,
    };
    let len = data.len();
    while result.consumed < len && core.closing.is_none() {
        let input = &mut data[result.consumed..];
        let unpacked = protocol.unpack(
            &mut *decoder,
            &mut core.encoder,
            input,
            core.output.vec_mut(),
        );
        match unpacked {
            Ok(Unpacked::Incomplete) => break,
            Ok(Unpacked::Skip { consumed }) => {
                if consumed == 0 {
                    break; // a protocol that skips nothing would loop forever
                }
                result.consumed += consumed;
            }
            Ok(Unpacked::Message { consumed, message }) => {
                result.messages += 1;
                let mut view = Conn {
                    core: &mut *core,
                    protocol,
                    shared,
                };
                let handled =
                    catch_unwind(AssertUnwindSafe(|| handler.on_message(&mut view, message)));
                match handled {
                    Ok(Some(reply)) => {
                        // Packed even if the handler just called close(): close flushes first.
                        protocol.pack(&mut core.encoder, reply, core.output.vec_mut());
                        result.replies += 1;
                    }
                    Ok(None) => {}
                    Err(panic) => {
                        tracing::error!(conn = %core.id, panic = panic_message(&panic), "on_message panicked; closing the connection");
                        result.failure = Some(CloseReason::Panic);
                        return result;
                    }
                }
                // At least one byte, so a buggy protocol cannot make this loop spin.
                result.consumed += consumed.clamp(1, len - result.consumed);
            }
            Err(error) => {
                tracing::info!(conn = %core.id, peer = %core.peer_addr, %error, "protocol error; closing the connection");
                result.failure = Some(CloseReason::Protocol);
                return result;
            }
        }
    }
    result
}

/// Delivers bytes just read (`data`, in the loop's scratch or plaintext buffer): unpacked in
/// place when no partial frame is buffered (only an incomplete tail is copied into `input`),
/// else appended to `input` and unpacked from there.
#[inline]
fn deliver_input<P: Protocol, H: Handler<P>>(
    protocol: &P,
    handler: &H,
    shared: &Arc<LoopShared<P>>,
    core: &mut ConnCore<P>,
    decoder: &mut P::Decoder,
    input: &mut RingBuffer,
    data: &mut [u8],
) -> Delivered {
    if input.is_empty() {
        // Common path: frames are unpacked straight from the loop's buffer.
        let delivered = deliver(protocol, handler, shared, core, decoder, data);
        if delivered.failure.is_none() && delivered.consumed < data.len() {
            input.write(&data[delivered.consumed..]);
        }
        delivered
    } else {
        input.write(data);
        let delivered = deliver(
            protocol,
            handler,
            shared,
            core,
            decoder,
            input.make_contiguous(),
        );
        input.retrieve(delivered.consumed);
        delivered
    }
}

/// Feeds the ciphertext in the loop's scratch buffer (carried bytes and one read) to the
/// connection's TLS session and delivers the plaintext through [`deliver_input`]; calls
/// `on_connect` once the handshake completed (before the first message). A TLS failure is
/// returned as `CloseReason::Tls` (close after the alert is flushed), the peer's
/// `close_notify` starts an orderly close.
#[allow(clippy::too_many_arguments)]
fn deliver_tls<P: Protocol, H: Handler<P>>(
    protocol: &P,
    handler: &H,
    shared: &Arc<LoopShared<P>>,
    core: &mut ConnCore<P>,
    decoder: &mut P::Decoder,
    input: &mut RingBuffer,
    tls: &mut TlsSession,
    ciphertext: &mut [u8],
    plaintext: &mut [u8],
    pool: &mut BufferPool,
) -> Delivered {
    let mut total = Delivered {
        consumed: 0,
        messages: 0,
        replies: 0,
        failure: None,
    };
    let fed = tls.feed(ciphertext, plaintext, pool, |data, session| {
        if !session.connected {
            // The handshake completed in this read and application data followed it.
            if let Err(reason) = tls_connected(handler, protocol, shared, core, session) {
                total.failure = Some(reason);
                return false;
            }
        }
        let delivered = deliver_input(protocol, handler, shared, core, decoder, input, data);
        total.messages += delivered.messages;
        total.replies += delivered.replies;
        total.failure = delivered.failure;
        delivered.failure.is_none() && core.closing.is_none()
    });
    match fed {
        Fed::Open | Fed::Stopped => {}
        Fed::PeerClosed => {
            input.retrieve_all();
            core.begin_close(CloseReason::Peer);
        }
        Fed::Failed(failure) => {
            tracing::info!(conn = %core.id, peer = %core.peer_addr, %failure, "TLS failed; closing the connection");
            tls.suppress_close_notify();
            total.failure.get_or_insert(CloseReason::Tls);
        }
    }
    if !tls.connected && total.failure.is_none() && !tls.is_handshaking() {
        if let Err(reason) = tls_connected(handler, protocol, shared, core, tls) {
            total.failure = Some(reason);
        }
    }
    total
}

/// The handshake completed: counts it, records what it agreed and calls `on_connect`.
fn tls_connected<P: Protocol, H: Handler<P>>(
    handler: &H,
    protocol: &P,
    shared: &Arc<LoopShared<P>>,
    core: &mut ConnCore<P>,
    tls: &mut TlsSession,
) -> Result<(), CloseReason> {
    tls.connected = true;
    let info = tls.info();
    if let Some(m) = &shared.metrics {
        m.on_tls_handshake(info.resumed);
    }
    core.tls_info = Some(Box::new(info));
    announce(handler, protocol, shared, core)
}

/// Calls `on_connect`; a panic is logged and returned as the reason to close.
fn announce<P: Protocol, H: Handler<P>>(
    handler: &H,
    protocol: &P,
    shared: &Arc<LoopShared<P>>,
    core: &mut ConnCore<P>,
) -> Result<(), CloseReason> {
    let id = core.id;
    let mut view = Conn {
        core,
        protocol,
        shared,
    };
    catch_unwind(AssertUnwindSafe(|| handler.on_connect(&mut view))).map_err(|panic| {
        tracing::error!(conn = %id, panic = panic_message(&panic), "on_connect panicked; closing the connection");
        CloseReason::Panic
    })
}

/// Writes the output buffer to the socket until it is empty or the send buffer is full (a
/// short write: wait for the writable edge). Drained storage goes back to the pool.
fn write_plain<P: Protocol>(
    stream: &crate::transport::Stream,
    core: &mut ConnCore<P>,
    pool: &mut BufferPool,
    metrics: Option<&LoopMetrics>,
    now: Instant,
) -> io::Result<()> {
    let mut stream = stream;
    while !core.output.is_empty() {
        let pending = core.output.unwritten();
        match stream.write(pending) {
            Ok(n) => {
                if let Some(m) = metrics {
                    m.on_write(n);
                }
                let short = n < pending.len();
                core.output.advance(n);
                core.last_active = now;
                if core.output.is_empty() {
                    pool.give(core.output.release());
                } else if short {
                    // The send buffer is full: wait for the writable edge.
                    core.output.compact();
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Some(m) = metrics {
                    m.on_write(0);
                }
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The TLS write path: writes the records the session holds (handshake, tickets, alerts,
/// sealed data) with one `write`, then encrypts the next chunk of the output buffer (once the
/// handshake is done) straight into the session's record buffer and writes it, until everything
/// is written or the socket would block. A closing connection (or one asked to shut down
/// writing) queues `close_notify` after its last data.
fn write_tls<P: Protocol>(
    stream: &crate::transport::Stream,
    tls: &mut TlsSession,
    core: &mut ConnCore<P>,
    pool: &mut BufferPool,
    metrics: Option<&LoopMetrics>,
    now: Instant,
) -> io::Result<()> {
    loop {
        while tls.wants_write() {
            match tls.write_to(stream, pool) {
                Ok(n) => {
                    if let Some(m) = metrics {
                        m.on_write(n);
                    }
                    core.last_active = now;
                    if tls.wants_write() {
                        return Ok(()); // a short write: wait for the writable edge
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(m) = metrics {
                        m.on_write(0);
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if !core.output.is_empty() && tls.has_failed() {
            // After a TLS failure only the alert goes out; the close follows it.
            pool.give(core.output.release());
        }
        if !core.output.is_empty() && tls.may_seal() {
            let pending = core.output.unwritten();
            let taken = tls
                .seal(&pending[..pending.len().min(TLS_SEAL_CHUNK)], pool)
                .map_err(io::Error::other)?;
            if taken == 0 {
                return Ok(()); // rustls cannot send application data now; do not spin
            }
            release_written(&mut core.output, taken, pool);
            continue;
        }
        let finishing = core.closing.is_some() || core.write_shutdown == WriteShutdown::Requested;
        if core.output.is_empty() && finishing && !tls.close_notify_queued() {
            tls.queue_close_notify(pool);
            continue;
        }
        return Ok(());
    }
}

/// `n` bytes of `output` were taken; its storage goes back to the pool once all are.
#[inline]
fn release_written(output: &mut OutputBuffer, n: usize, pool: &mut BufferPool) {
    output.advance(n);
    if output.is_empty() {
        pool.give(output.release());
    }
}

/// How often the idle sweep runs for a given timeout.
fn idle_sweep_interval(idle: Duration) -> Duration {
    (idle / 8).max(Duration::from_millis(1))
}

fn read_error_reason(error: &io::Error) -> CloseReason {
    match error.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => CloseReason::Peer,
        _ => CloseReason::Error,
    }
}

/// The message of a caught panic, for the log.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
