//! One client connection: its socket, its codec, the bytes waiting to be written or decoded,
//! and the requests it has outstanding ([`Outstanding`]: oldest first, because every framing
//! answers in order).
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

/// Requests written (or queued for writing) together and not yet answered: `count` requests
/// that share their intended and send times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// When they should have been sent, ns on the run clock.
    pub intended: u64,
    /// When they were handed to the socket, ns on the run clock.
    pub sent: u64,
    /// Whether their replies belong to the measured window.
    pub measured: bool,
    /// How many requests (at least 1).
    pub count: u64,
}

/// One answered request, as [`Outstanding::pop`] hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    pub intended: u64,
    pub sent: u64,
    pub measured: bool,
    /// Its payload, if payloads are kept ([`Outstanding::push_payload`]).
    pub payload: Option<PayloadRef>,
}

/// The requests a connection has outstanding, oldest first (every framing answers in order).
///
/// Hot path: requests written together have the same send time, and in a closed loop the same
/// intended time, so a closed-loop batch is one [`Pending`] run instead of one entry per
/// request; payloads are kept (one `PayloadRef` each) only when the worker needs them back: to
/// check a reply (`--verify`) or to know its length (raw framing with varying sizes). Answering
/// a reply then touches one hot cache line rather than a new line every other reply, which at 64
/// in flight on 50 connections was a cache miss per line (see `loadgen/bench/baseline.sh`).
#[derive(Debug, Default)]
pub struct Outstanding {
    runs: VecDeque<Pending>,
    payloads: VecDeque<PayloadRef>,
    len: usize,
}

impl Outstanding {
    /// Requests outstanding.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queue `run.count` more requests (merged with the newest run when times and window agree).
    #[inline]
    pub fn push(&mut self, run: Pending) {
        debug_assert!(run.count > 0);
        self.len += run.count as usize;
        if let Some(last) = self.runs.back_mut() {
            if (last.intended, last.sent, last.measured) == (run.intended, run.sent, run.measured) {
                last.count += run.count;
                return;
            }
        }
        self.runs.push_back(run);
    }

    /// Keep the payload of the request just queued (all requests of a connection, or none).
    #[inline]
    pub fn push_payload(&mut self, payload: PayloadRef) {
        self.payloads.push_back(payload);
    }

    /// Payload of the oldest outstanding request, if payloads are kept.
    #[inline]
    pub fn front_payload(&self) -> Option<PayloadRef> {
        self.payloads.front().copied()
    }

    /// Take the oldest outstanding request.
    #[inline]
    pub fn pop(&mut self) -> Option<Answered> {
        let run = self.runs.front_mut()?;
        let answered = Answered {
            intended: run.intended,
            sent: run.sent,
            measured: run.measured,
            payload: self.payloads.pop_front(),
        };
        run.count -= 1;
        if run.count == 0 {
            self.runs.pop_front();
        }
        self.len -= 1;
        Some(answered)
    }

    /// Take the `n` oldest outstanding requests (at most `len()`) and hand them to `each` as
    /// runs (one call per run, or part of one, with its `count` taken). Their payloads, if kept,
    /// are dropped: for the bulk path of the raw framing, which checks none.
    #[inline]
    pub fn pop_runs(&mut self, mut n: usize, mut each: impl FnMut(Pending)) {
        n = n.min(self.len);
        self.len -= n;
        self.payloads.drain(..n.min(self.payloads.len()));
        while n > 0 {
            let Some(run) = self.runs.front_mut() else {
                return;
            };
            let taken = run.count.min(n as u64);
            each(Pending {
                count: taken,
                ..*run
            });
            run.count -= taken;
            if run.count == 0 {
                self.runs.pop_front();
            }
            n -= taken as usize;
        }
    }

    /// When the oldest outstanding request was sent.
    pub fn oldest_sent(&self) -> Option<u64> {
        self.runs.front().map(|run| run.sent)
    }

    /// Outstanding requests whose replies belong to the measured window.
    pub fn measured(&self) -> usize {
        self.runs
            .iter()
            .filter(|run| run.measured)
            .map(|run| run.count as usize)
            .sum()
    }
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
    pub pending: Outstanding,
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
            pending: Outstanding::default(),
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

    /// Write `bytes`, encoded requests that follow everything queued. When nothing is queued
    /// they go to the socket straight from the caller's buffer (no copy into `output`; the raw
    /// bulk path writes a batch straight from the payload pool) and only what the socket does
    /// not take is queued. Returns the bytes the socket took.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if !self.output.is_empty() {
            self.output.extend_from_slice(bytes);
            return self.flush();
        }
        let mut done = 0;
        while done < bytes.len() {
            match self.stream.write(&bytes[done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.written = 0;
        self.output.extend_from_slice(&bytes[done..]);
        Ok(done)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(intended: u64, sent: u64, measured: bool, count: u64) -> Pending {
        Pending {
            intended,
            sent,
            measured,
            count,
        }
    }

    #[test]
    fn a_batch_is_one_run_and_answers_in_order() {
        let mut o = Outstanding::default();
        o.push(run(5, 5, true, 3));
        o.push(run(5, 5, true, 2));
        o.push(run(7, 9, false, 1));
        assert_eq!((o.len(), o.runs.len()), (6, 2));
        assert_eq!(o.measured(), 5);
        assert_eq!(o.oldest_sent(), Some(5));
        for _ in 0..5 {
            let a = o.pop().unwrap();
            assert_eq!(
                (a.intended, a.sent, a.measured, a.payload),
                (5, 5, true, None)
            );
        }
        assert_eq!(o.oldest_sent(), Some(9));
        assert_eq!(o.pop().unwrap().intended, 7);
        assert!(o.is_empty());
        assert_eq!(o.pop(), None);
        assert_eq!(o.oldest_sent(), None);
    }

    /// A connected non-blocking client `Conn` and the server's end of the socket.
    fn connected_pair() -> (Conn, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        let options = crate::framing::FramingOptions {
            kind: crate::framing::FramingKind::Raw,
            host: String::new(),
            path: String::new(),
            http_method: crate::framing::HttpMethod::Get,
            ws_message: crate::framing::WsMessage::Binary,
            max_reply: 1 << 20,
        };
        let conn = Conn {
            stream: Stream::Plain(mio::net::TcpStream::from_std(client)),
            phase: Phase::Open,
            codec: Codec::new(&options, 1),
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            pending: Outstanding::default(),
            started: 0,
        };
        (conn, server)
    }

    /// Read exactly `len` bytes from the server's end, flushing the client's queue as it goes.
    fn receive(conn: &mut Conn, server: &mut std::net::TcpStream, len: usize) -> Vec<u8> {
        use std::io::Read;
        server
            .set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0; 1 << 16];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while got.len() < len && std::time::Instant::now() < deadline {
            conn.flush().unwrap();
            match server.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    #[test]
    fn send_writes_directly_and_keeps_order_behind_a_queue() {
        let (mut conn, mut server) = connected_pair();
        // Nothing queued: straight to the socket, nothing left in `output`.
        assert_eq!(conn.send(b"abc").unwrap(), 3);
        assert!(conn.output.is_empty());
        // Something queued: appended behind it.
        conn.output.extend_from_slice(b"def");
        conn.send(b"ghi").unwrap();
        assert_eq!(receive(&mut conn, &mut server, 9), b"abcdefghi");
        // More than the socket takes at once: the rest is queued and follows in order.
        let big: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        let taken = conn.send(&big).unwrap();
        assert_eq!(taken + conn.output.len() - conn.written, big.len());
        conn.send(b"tail").unwrap();
        let mut expected = big.clone();
        expected.extend_from_slice(b"tail");
        assert!(receive(&mut conn, &mut server, expected.len()) == expected);
        assert!(conn.output.is_empty());
    }

    proptest! {
        /// Runs and kept payloads hand back exactly what a queue of one entry per request would.
        #[test]
        fn runs_answer_as_one_entry_per_request_would(
            ops in proptest::collection::vec((any::<bool>(), 0u64..3, 0u64..3, 1u64..5), 0..200),
            keep in any::<bool>(),
        ) {
            let mut o = Outstanding::default();
            let mut model = VecDeque::new();
            let mut next_payload = 0u32;
            for (push, intended, late, count) in ops {
                if push {
                    let sent = intended + late;
                    let measured = intended > 0;
                    o.push(run(intended, sent, measured, count));
                    for _ in 0..count {
                        let payload = PayloadRef { offset: next_payload, len: 64 };
                        next_payload += 1;
                        if keep {
                            o.push_payload(payload);
                        }
                        model.push_back(Answered {
                            intended,
                            sent,
                            measured,
                            payload: keep.then_some(payload),
                        });
                    }
                } else if late == 0 {
                    // Several at once, as the raw bulk path takes them.
                    let mut taken = Vec::new();
                    o.pop_runs(count as usize, |run| {
                        taken.extend(std::iter::repeat_n((run.intended, run.sent, run.measured), run.count as usize))
                    });
                    let expected: Vec<_> = model
                        .drain(..(count as usize).min(model.len()))
                        .map(|a| (a.intended, a.sent, a.measured))
                        .collect();
                    prop_assert_eq!(taken, expected);
                } else {
                    prop_assert_eq!(o.front_payload(), model.front().and_then(|a| a.payload));
                    prop_assert_eq!(o.pop(), model.pop_front());
                }
                prop_assert_eq!(o.len(), model.len());
                prop_assert_eq!(o.measured(), model.iter().filter(|a| a.measured).count());
                prop_assert_eq!(o.oldest_sent(), model.front().map(|a| a.sent));
            }
        }
    }
}
