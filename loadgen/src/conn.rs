//! One client connection: its socket, its codec, the bytes waiting to be written or decoded,
//! and the requests it has outstanding (oldest first, because every framing answers in order).
//!
//! A connection owns no timers and never records anything; the worker drives it and records what
//! it reports.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;

use mio::{Interest, Registry, Token};

use crate::framing::Codec;
use crate::payload::PayloadRef;
use crate::tls::{Stream, TlsSettings};

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Non-blocking connect in progress.
    Connecting,
    /// TCP is up; the TLS handshake (when [`Stream::tls_handshaking`]) or the WebSocket
    /// upgrade is in flight.
    Handshaking,
    /// Requests flow.
    Open,
}

/// A request written (or queued for writing) and not yet answered.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    /// When it should have been sent, ns on the run clock.
    pub intended: u64,
    /// When it was handed to the socket, ns on the run clock.
    pub sent: u64,
    /// Its payload, for `--verify`.
    pub payload: PayloadRef,
    /// Whether its reply belongs to the measured window.
    pub measured: bool,
}

/// A client connection.
#[derive(Debug)]
pub struct Conn {
    /// Plain TCP, or TCP under TLS (see `tls`).
    pub stream: Stream,
    pub phase: Phase,
    pub codec: Codec,
    /// Bytes read but not yet decoded (a partial reply). Usually empty: replies are decoded
    /// straight from the worker's read buffer and only a tail is copied here.
    pub input: Vec<u8>,
    /// Bytes encoded but not yet accepted by the socket, from `written` on.
    pub output: Vec<u8>,
    pub written: usize,
    pub pending: VecDeque<Pending>,
    /// When connect started, ns on the run clock.
    pub started: u64,
}

impl Conn {
    /// Start a non-blocking connect and register for both readiness directions once
    /// (edge-triggered, so interest never needs changing).
    pub fn connect(
        addr: SocketAddr,
        tls: Option<&TlsSettings>,
        registry: &Registry,
        token: Token,
        codec: Codec,
        now: u64,
    ) -> io::Result<Conn> {
        let mut stream = Stream::connect(addr, tls)?;
        registry.register(
            stream.tcp_mut(),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        Ok(Conn {
            stream,
            phase: Phase::Connecting,
            codec,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            pending: VecDeque::new(),
            started: now,
        })
    }

    /// After a writable event during connect: `Ok(true)` once connected, `Ok(false)` if still in
    /// progress, `Err` with the reason it failed.
    pub fn check_connected(&mut self) -> io::Result<bool> {
        if let Stream::Unix(unix) = &self.stream {
            return crate::unix::check_connected(unix);
        }
        let tcp = self.stream.tcp();
        if let Some(error) = tcp.take_error()? {
            return Err(error);
        }
        match tcp.peer_addr() {
            Ok(_) => {
                // Small requests must leave at once, not wait for Nagle.
                tcp.set_nodelay(true)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Write as much of the output as the socket takes; returns the bytes written. The rest
    /// waits for the next writable event.
    pub fn flush(&mut self) -> io::Result<usize> {
        let mut total = 0;
        while self.written < self.output.len() {
            match self.stream.write(&self.output[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.written += n;
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.written == self.output.len() {
            self.output.clear();
            self.written = 0;
        }
        // TLS records rustls holds beyond what the socket took (no-op for plain TCP).
        self.stream.write_pending()?;
        Ok(total)
    }
}
