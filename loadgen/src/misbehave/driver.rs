//! The misbehaving clients' work loop: one thread, one `mio::Poll`, every misbehaving connection
//! of the run. It is deliberately apart from the well-behaved workers (`worker.rs`): nothing it
//! does is recorded in their histograms, and its pace (ticks of [`TICK`]) does not need their
//! microsecond timing. Each slot keeps one connection of its kind alive for the whole run: when
//! the server (or the kind itself) ends a connection, the slot connects again after a pause.
//!
//! Per tick the loop walks every slot once for what is due by time (reconnects, the next
//! `slow-write` byte, the `slow-read` budget, the `reset`, a `churn` timeout); readiness events
//! drive the rest. The walk is O(slots) per tick, a few hundred slots at 100 ticks a second.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::{garbage, Kind, Mix};
use crate::framing::{Codec, Decoded, FramingKind};
use crate::summary::{MisbehaveKind, Misbehaving};
use crate::worker::Shared;

/// How often time-driven actions are checked.
pub const TICK: Duration = Duration::from_millis(10);
/// Pause before a slot reconnects after its connection ended.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(100);
/// Pause between two `churn` cycles of one slot (bounds the connect rate at 10/s per slot).
pub const CHURN_PAUSE: Duration = Duration::from_millis(100);
/// How long a `reset` client waits after writing half a message before it resets, so the server
/// has read the half.
pub const RESET_AFTER: Duration = Duration::from_millis(20);
/// How often a `garbage` client the server did not close sends its garbage again.
pub const GARBAGE_REPEAT: Duration = Duration::from_secs(1);
/// Receive buffer of `slow-read` and `never-read` sockets: small, so the client kernel does
/// not absorb what the client refuses to read and the pressure lands on the server.
const SMALL_RECEIVE_BUFFER: usize = 4096;
/// Bytes per second a flooding (`never-read`, `slow-read`) connection offers the server. Enough
/// to fill a server's per-connection output bound within seconds, low enough that a few hundred
/// flooding clients do not take the generator's core from the well-behaved load.
pub const FLOOD_BYTES_PER_SEC: u64 = 256 * 1024;
/// The flood's credit per tick.
const FLOOD_PER_TICK: u64 = FLOOD_BYTES_PER_SEC / 100;
const READ_BUFFER: usize = 64 * 1024;
const SECOND_NS: u64 = 1_000_000_000;

/// Where a misbehaving connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    /// Connected; the kind's behaviour runs.
    Active,
}

#[derive(Debug)]
struct BadConn {
    stream: TcpStream,
    phase: Phase,
    codec: Codec,
    /// When connect started, ns on the run clock.
    started: u64,
    /// Bytes to write, from `written` on.
    output: Vec<u8>,
    written: usize,
    /// The socket refused more output; wait for a writable event.
    write_blocked: bool,
    /// Bytes read and not yet decoded (`churn`, `half-close`, `garbage` on WebSocket).
    input: Vec<u8>,
    /// The WebSocket upgrade was answered (or there is none).
    upgraded: bool,
    /// The time-driven step of this kind is due at (ns): next drip byte, reset, repeat.
    next_step: u64,
    /// `slow-read`: bytes it may still read now.
    read_budget: u64,
    /// `never-read`, `slow-read`: bytes it may still write now.
    flood_credit: u64,
    /// Payload length of the message sent, for decoding the raw echo.
    expected: usize,
    /// `half-close` shut its write side; `churn`/`half-close` sent their message.
    shut: bool,
    sent_message: bool,
}

#[derive(Debug)]
struct Slot {
    kind: Kind,
    /// Index into the per-kind figures.
    figures: usize,
    conn: Option<BadConn>,
    /// When to connect again, ns on the run clock.
    reconnect_at: u64,
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The server closed or reset it.
    Server,
    /// The kind closed it on purpose (reset, churn, a timeout).
    Client,
    /// Connect failed.
    ConnectFailed,
}

/// The misbehaving clients of one run.
pub struct Driver {
    shared: Arc<Shared>,
    done: Arc<AtomicBool>,
    poll: Poll,
    slots: Vec<Slot>,
    figures: Vec<MisbehaveKind>,
    /// Sum of connect-to-server-close times per kind, ms.
    close_after_sum_ms: Vec<f64>,
    scratch: Vec<u8>,
    rng: SmallRng,
    framing: FramingKind,
    mix: String,
    well_behaved: u64,
}

impl Driver {
    /// Slots for `counts` (kind, connections); `done` ends the loop early (set by `run` when the
    /// well-behaved workers of a count-bounded run have finished).
    pub fn new(
        mix: &Mix,
        counts: &[(Kind, usize)],
        shared: Arc<Shared>,
        done: Arc<AtomicBool>,
    ) -> io::Result<Driver> {
        let mut slots = Vec::new();
        let mut figures = Vec::new();
        for (i, &(kind, n)) in counts.iter().enumerate() {
            figures.push(MisbehaveKind {
                kind: kind.to_string(),
                connections: n as u64,
                ..MisbehaveKind::default()
            });
            for j in 0..n {
                // Spread the first connects over the first 100 ms so they do not all arrive in
                // the server's backlog at once.
                let stagger = (j as u64 * 100_000_000) / n.max(1) as u64;
                slots.push(Slot {
                    kind,
                    figures: i,
                    conn: None,
                    reconnect_at: stagger,
                });
            }
        }
        let misbehaving: usize = counts.iter().map(|(_, n)| n).sum();
        Ok(Driver {
            framing: shared.config.framing.kind,
            well_behaved: (shared.config.connections - misbehaving) as u64,
            shared,
            done,
            poll: Poll::new()?,
            close_after_sum_ms: vec![0.0; figures.len()],
            figures,
            slots,
            scratch: vec![0; READ_BUFFER],
            rng: SmallRng::seed_from_u64(0xbad_c11e),
            mix: mix.describe(),
        })
    }

    /// Run until the window ends (timed runs), `stop` (SIGINT) or `done`; return the figures.
    pub fn run(mut self) -> io::Result<Misbehaving> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = self.shared.now();
            if self.shared.stop.load(Ordering::Relaxed)
                || self.done.load(Ordering::Relaxed)
                || self.shared.end.is_some_and(|end| now >= end)
            {
                break;
            }
            for id in 0..self.slots.len() {
                self.tick(id, now);
            }
            match self.poll.poll(&mut events, Some(TICK)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                let id = event.token().0;
                let closed = event.is_read_closed() || event.is_error();
                self.on_event(id, event.is_readable(), closed, event.is_writable());
            }
        }
        for slot in &self.slots {
            if slot.conn.as_ref().is_some_and(|c| c.phase == Phase::Active) {
                self.figures[slot.figures].open_at_end += 1;
            }
        }
        for (figures, sum) in self.figures.iter_mut().zip(&self.close_after_sum_ms) {
            if figures.closed_by_server > 0 {
                figures.server_close_after_ms_mean = sum / figures.closed_by_server as f64;
            }
        }
        Ok(Misbehaving {
            mix: self.mix,
            well_behaved_connections: self.well_behaved,
            connections: self.slots.len() as u64,
            kinds: self.figures,
        })
    }

    /// The time-driven part of slot `id`'s behaviour.
    fn tick(&mut self, id: usize, now: u64) {
        let slot = &self.slots[id];
        let kind = slot.kind;
        let Some(conn) = slot.conn.as_ref() else {
            if now >= slot.reconnect_at {
                self.connect(id, now);
            }
            return;
        };
        if conn.phase != Phase::Active {
            if now.saturating_sub(conn.started) > self.shared.config.timeout.as_nanos() as u64 {
                self.end(id, End::ConnectFailed, now);
            }
            return;
        }
        let due = now >= conn.next_step;
        if matches!(kind, Kind::NeverRead | Kind::SlowRead { .. }) {
            if let Some(conn) = self.conn(id) {
                conn.flood_credit = (conn.flood_credit + FLOOD_PER_TICK).min(2 * FLOOD_PER_TICK);
            }
        }
        match kind {
            Kind::NeverRead => self.flood(id),
            Kind::SlowRead { bytes_per_sec } => {
                if due {
                    if let Some(conn) = self.conn(id) {
                        // Refill ten times a second; never bank more than a second's worth.
                        conn.read_budget =
                            (conn.read_budget + bytes_per_sec / 10).min(bytes_per_sec);
                        conn.next_step = now + SECOND_NS / 10;
                    }
                    self.read(id, now);
                }
                self.flood(id);
            }
            Kind::SlowWrite { interval } if due => {
                let payload = self.pick_payload();
                let framing_ws = self.framing == FramingKind::Websocket;
                let Some(conn) = self.conn(id) else { return };
                if conn.written >= conn.output.len() {
                    conn.output.clear();
                    conn.written = 0;
                    if framing_ws && !conn.sent_message && !conn.upgraded {
                        conn.codec.write_handshake(&mut conn.output);
                    }
                    conn.codec.encode(&payload, &mut conn.output);
                    conn.sent_message = true;
                    self.figures[self.slots[id].figures].messages_sent += 1;
                }
                let Some(conn) = self.conn(id) else { return };
                conn.next_step = now + interval.as_nanos() as u64;
                let end = conn.written + 1;
                self.write_upto(id, end, now);
            }
            Kind::Reset if due => self.end(id, End::Client, now),
            Kind::Garbage if due => {
                let bytes = garbage::bytes(self.framing);
                let Some(conn) = self.conn(id) else { return };
                if !conn.upgraded {
                    return;
                }
                conn.output.extend_from_slice(&bytes);
                conn.next_step = now + GARBAGE_REPEAT.as_nanos() as u64;
                self.figures[self.slots[id].figures].messages_sent += 1;
                self.flush(id, now);
            }
            Kind::Churn if due => {
                // No reply within --timeout: give up on this cycle.
                self.end(id, End::Client, now);
            }
            _ => {}
        }
    }

    fn conn(&mut self, id: usize) -> Option<&mut BadConn> {
        self.slots[id].conn.as_mut()
    }

    fn pick_payload(&mut self) -> Vec<u8> {
        let payload = self.shared.payloads.pick(&mut self.rng);
        self.shared.payloads.get(payload).to_vec()
    }

    fn connect(&mut self, id: usize, now: u64) {
        let kind = self.slots[id].kind;
        let figures = self.slots[id].figures;
        let addr = self.shared.config.addr;
        let small_buffer = matches!(kind, Kind::NeverRead | Kind::SlowRead { .. });
        let stream = match open_socket(addr, small_buffer) {
            Ok(stream) => stream,
            Err(_) => {
                self.figures[figures].connect_failures += 1;
                self.slots[id].reconnect_at = now + RECONNECT_PAUSE.as_nanos() as u64;
                return;
            }
        };
        let mut stream = stream;
        if self
            .poll
            .registry()
            .register(
                &mut stream,
                Token(id),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            self.figures[figures].connect_failures += 1;
            self.slots[id].reconnect_at = now + RECONNECT_PAUSE.as_nanos() as u64;
            return;
        }
        let seed = (id as u64) << 24 ^ now;
        self.slots[id].conn = Some(BadConn {
            stream,
            phase: Phase::Connecting,
            codec: Codec::new(&self.shared.config.framing, seed),
            started: now,
            output: Vec::new(),
            written: 0,
            write_blocked: false,
            input: Vec::new(),
            upgraded: self.framing != FramingKind::Websocket,
            next_step: u64::MAX,
            read_budget: 0,
            flood_credit: 0,
            expected: 0,
            shut: false,
            sent_message: false,
        });
    }

    /// End slot `id`'s connection and schedule the next one.
    fn end(&mut self, id: usize, how: End, now: u64) {
        let slot = &mut self.slots[id];
        let Some(conn) = slot.conn.take() else {
            return;
        };
        let figures = &mut self.figures[slot.figures];
        match how {
            End::Server => {
                figures.closed_by_server += 1;
                let after_ms = now.saturating_sub(conn.started) as f64 / 1e6;
                self.close_after_sum_ms[slot.figures] += after_ms;
                figures.server_close_after_ms_max = figures.server_close_after_ms_max.max(after_ms);
            }
            End::Client => figures.closed_by_client += 1,
            End::ConnectFailed => figures.connect_failures += 1,
        }
        if how == End::Client && slot.kind == Kind::Reset {
            // SO_LINGER 0: close sends RST instead of FIN, and the server's next read fails
            // with ECONNRESET.
            let _ = SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
        }
        let pause = if slot.kind == Kind::Churn && how == End::Client {
            CHURN_PAUSE
        } else {
            RECONNECT_PAUSE
        };
        slot.reconnect_at = now + pause.as_nanos() as u64;
        let mut stream = conn.stream;
        let _ = self.poll.registry().deregister(&mut stream);
        drop(stream);
    }

    fn on_event(&mut self, id: usize, readable: bool, closed: bool, writable: bool) {
        let now = self.shared.now();
        let Some(conn) = self.slots.get_mut(id).and_then(|s| s.conn.as_mut()) else {
            return;
        };
        if conn.phase == Phase::Connecting {
            match connected(&conn.stream) {
                Ok(false) => return,
                Ok(true) => self.on_connected(id, now),
                Err(_) => {
                    self.end(id, End::ConnectFailed, now);
                    return;
                }
            }
        }
        let kind = self.slots[id].kind;
        if writable {
            if let Some(conn) = self.conn(id) {
                conn.write_blocked = false;
            }
            match kind {
                Kind::NeverRead | Kind::SlowRead { .. } => self.flood(id),
                Kind::SlowWrite { .. } => {}
                _ => self.flush(id, now),
            }
        }
        match kind {
            // Never reads: learns of the server's close from the event flags alone.
            Kind::NeverRead => {
                if closed {
                    self.end(id, End::Server, now);
                }
            }
            // Reads only within its budget, from the tick; a reset must still end the slot.
            Kind::SlowRead { .. } => {
                if closed && !readable {
                    self.end(id, End::Server, now);
                }
            }
            _ => {
                if readable || closed {
                    self.read(id, now);
                }
            }
        }
    }

    fn on_connected(&mut self, id: usize, now: u64) {
        let kind = self.slots[id].kind;
        let figures = self.slots[id].figures;
        self.figures[figures].connects += 1;
        let framing = self.framing;
        let payload = self.pick_payload();
        let timeout = self.shared.config.timeout.as_nanos() as u64;
        let Some(conn) = self.conn(id) else { return };
        conn.phase = Phase::Active;
        let ws = framing == FramingKind::Websocket;
        match kind {
            Kind::Abandon => {}
            Kind::NeverRead | Kind::SlowRead { .. } => {
                if ws {
                    conn.codec.write_handshake(&mut conn.output);
                }
                conn.next_step = now;
            }
            Kind::SlowWrite { .. } => conn.next_step = now,
            Kind::Reset => {
                if ws {
                    conn.codec.write_handshake(&mut conn.output);
                }
                let mut message = Vec::new();
                conn.codec.encode(&payload, &mut message);
                let half = (message.len() / 2).max(1);
                conn.output.extend_from_slice(&message[..half]);
                conn.next_step = now + RESET_AFTER.as_nanos() as u64;
                self.figures[figures].messages_sent += 1;
            }
            Kind::HalfClose | Kind::Churn => {
                if ws {
                    conn.codec.write_handshake(&mut conn.output);
                }
                conn.codec.encode(&payload, &mut conn.output);
                conn.expected = payload.len();
                conn.sent_message = true;
                if kind == Kind::Churn {
                    conn.next_step = now + timeout;
                }
                self.figures[figures].messages_sent += 1;
            }
            Kind::Garbage => {
                if ws {
                    // The upgrade first; the bad frame follows once it is answered.
                    conn.codec.write_handshake(&mut conn.output);
                } else {
                    conn.next_step = now;
                }
            }
        }
        self.flush(id, now);
        if kind == Kind::HalfClose {
            if let Some(conn) = self.conn(id) {
                if conn.written >= conn.output.len() {
                    let _ = conn.stream.shutdown(Shutdown::Write);
                    conn.shut = true;
                }
            }
        }
    }

    /// Write the pending output; a failed write means the server is gone.
    fn flush(&mut self, id: usize, now: u64) {
        let end = self.conn(id).map_or(0, |c| c.output.len());
        self.write_upto(id, end, now);
        let kind = self.slots[id].kind;
        if kind == Kind::HalfClose {
            if let Some(conn) = self.conn(id) {
                if !conn.shut && conn.written >= conn.output.len() {
                    let _ = conn.stream.shutdown(Shutdown::Write);
                    conn.shut = true;
                }
            }
        }
    }

    /// Write the output up to byte `end` (slow-write drips one byte at a time).
    fn write_upto(&mut self, id: usize, end: usize, now: u64) {
        let figures = self.slots[id].figures;
        let drips = matches!(self.slots[id].kind, Kind::SlowWrite { .. });
        let Some(conn) = self.conn(id) else { return };
        let end = end.min(conn.output.len());
        let mut sent = 0u64;
        let mut failed = false;
        while conn.written < end {
            match conn.stream.write(&conn.output[conn.written..end]) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => {
                    conn.written += n;
                    sent += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.write_blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if conn.written == conn.output.len() && !drips {
            conn.output.clear();
            conn.written = 0;
        }
        self.figures[figures].bytes_sent += sent;
        if failed {
            self.end(id, End::Server, now);
        }
    }

    /// `never-read` and `slow-read`: write requests at [`FLOOD_BYTES_PER_SEC`] for as long as
    /// the socket takes them.
    fn flood(&mut self, id: usize) {
        let now = self.shared.now();
        let figures = self.slots[id].figures;
        let payload = self.pick_payload();
        let Some(conn) = self.conn(id) else { return };
        if conn.write_blocked || conn.phase != Phase::Active || conn.flood_credit == 0 {
            return;
        }
        let mut added = 0;
        while ((conn.output.len() - conn.written) as u64) < conn.flood_credit {
            conn.codec.encode(&payload, &mut conn.output);
            added += 1;
        }
        self.figures[figures].messages_sent += added;
        let before = self.figures[figures].bytes_sent;
        self.flush(id, now);
        let written = self.figures[figures].bytes_sent - before;
        if let Some(conn) = self.conn(id) {
            conn.flood_credit = conn.flood_credit.saturating_sub(written);
        }
    }

    /// Read what the kind reads; an end of stream or a reset is the server closing.
    fn read(&mut self, id: usize, now: u64) {
        let kind = self.slots[id].kind;
        let figures = self.slots[id].figures;
        loop {
            let Some(conn) = self.slots[id].conn.as_mut() else {
                return;
            };
            let limit = match kind {
                Kind::SlowRead { .. } => (conn.read_budget as usize).min(self.scratch.len()),
                _ => self.scratch.len(),
            };
            if limit == 0 {
                return;
            }
            let n = match conn.stream.read(&mut self.scratch[..limit]) {
                Ok(0) => {
                    self.end(id, End::Server, now);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.end(id, End::Server, now);
                    return;
                }
            };
            self.figures[figures].bytes_received += n as u64;
            if let Kind::SlowRead { .. } = kind {
                conn.read_budget -= n as u64;
                continue;
            }
            if matches!(kind, Kind::Churn | Kind::HalfClose | Kind::Garbage) {
                conn.input.extend_from_slice(&self.scratch[..n]);
                if self.decode(id, now) {
                    return;
                }
            }
        }
    }

    /// Decode the buffered input of a `churn`, `half-close` or `garbage` connection; returns
    /// true when the connection was ended.
    fn decode(&mut self, id: usize, now: u64) -> bool {
        let kind = self.slots[id].kind;
        let figures = self.slots[id].figures;
        let Some(conn) = self.slots[id].conn.as_mut() else {
            return true;
        };
        if !conn.upgraded {
            match conn.codec.read_handshake(&conn.input) {
                Ok(None) => return false,
                Ok(Some(used)) => {
                    conn.input.drain(..used);
                    conn.upgraded = true;
                    if kind == Kind::Garbage {
                        conn.next_step = now;
                    }
                }
                Err(_) => {
                    self.end(id, End::Server, now);
                    return true;
                }
            }
        }
        if kind == Kind::Garbage {
            // Whatever the server answers (an echo, a 400, a close frame) is only counted.
            conn.input.clear();
            return false;
        }
        let mut replied = false;
        let mut control = Vec::new();
        let expected = Some(conn.expected);
        let outcome = conn.codec.decode(&conn.input, expected, &mut control);
        match outcome {
            Ok(Decoded::Reply { consumed, .. }) => {
                conn.input.drain(..consumed);
                replied = true;
            }
            Ok(Decoded::Skip { consumed }) => {
                conn.input.drain(..consumed);
            }
            Ok(Decoded::Incomplete) => {}
            Err(_) => {
                self.end(id, End::Server, now);
                return true;
            }
        }
        if replied {
            self.figures[figures].replies += 1;
            if kind == Kind::Churn {
                self.end(id, End::Client, now);
                return true;
            }
        }
        false
    }
}

/// A non-blocking socket with its connect started. `small_receive_buffer` keeps the client
/// kernel from absorbing the replies a never- or slow-reading client refuses.
fn open_socket(addr: SocketAddr, small_receive_buffer: bool) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if small_receive_buffer {
        socket.set_recv_buffer_size(SMALL_RECEIVE_BUFFER)?;
    }
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Whether a non-blocking connect has completed (`Err` when it failed).
fn connected(stream: &TcpStream) -> io::Result<bool> {
    if let Some(error) = stream.take_error()? {
        return Err(error);
    }
    match stream.peer_addr() {
        Ok(_) => {
            stream.set_nodelay(true)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}
