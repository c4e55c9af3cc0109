//! gev over UDP: datagrams in the reactor's style. N loops, each owning one `SO_REUSEPORT`
//! socket bound to the same address, so the kernel spreads peers over the loops by their address
//! hash and no lock sits between a datagram and its loop. The loops are either a stream
//! server's own (`gev-loop-N`: [`Server::with_udp`](crate::Server::with_udp) registers one socket
//! in each loop's poll beside its connections, `stream_loops.rs`) or a standalone
//! [`UdpServer`]'s threads (`gev-udp-N`); both run the same datagram path (`port.rs`).
//!
//! Data path of one socket (`port.rs`): readable -> `recvmmsg` of up to
//! [`UdpOptions::batch`] datagrams (`batch.rs`) -> [`DatagramHandler::on_datagram`] per datagram
//! -> the reply joins the loop's bounded output queue -> `sendmmsg` of up to `batch` replies ->
//! on `EAGAIN` wait for the writable edge (never a busy loop). A reply that finds the output
//! queue full ([`UdpOptions::max_output_datagrams`]) is dropped and counted
//! ([`UdpCounters::dropped_output_full`]); a datagram longer than
//! [`UdpOptions::max_datagram`] is dropped and counted ([`UdpCounters::dropped_oversized`]).
//! [`UdpHandle::send_to`] sends to any peer from any thread through the loop's task queue.
//! Counters ([`UdpCounters`]) are on the Prometheus endpoint as `gev_udp_*` when metrics are on
//! ([`ServerOptions::metrics`](crate::ServerOptions::metrics) or [`UdpOptions::metrics`]).
//!
//! With [`UdpOptions::batching`] off the loop uses one `recvfrom`/`sendto` per datagram (for
//! measuring what batching saves).
//!
//! ```
//! use std::borrow::Cow;
//! use std::net::SocketAddr;
//! use gev::udp::{DatagramCtx, DatagramHandler, UdpOptions, UdpServer};
//!
//! struct Echo;
//! impl DatagramHandler for Echo {
//!     fn on_datagram<'a>(&self, _: &mut DatagramCtx<'_>, _peer: SocketAddr, data: &'a [u8]) -> Option<Cow<'a, [u8]>> {
//!         Some(Cow::Borrowed(data))
//!     }
//! }
//!
//! let server = UdpServer::new(UdpOptions::new("127.0.0.1:0".parse().unwrap()).loops(1), Echo)?;
//! let addr = server.local_addr();
//! let running = server.start()?;
//! let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
//! client.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
//! client.send_to(b"ping", addr).unwrap();
//! let mut buf = [0; 16];
//! assert_eq!(client.recv(&mut buf).unwrap(), 4);
//! assert_eq!(&buf[..4], b"ping");
//! running.stop()?;
//! # Ok::<(), gev::Error>(())
//! ```

mod batch;
mod port;
mod server;
mod stream_loops;

pub use server::{UdpHandle, UdpServer, UdpServerHandle};
pub(crate) use stream_loops::attach;
pub use stream_loops::UdpLoops;

/// The UDP port a stream server's loop owns (the handler behind a trait object, so the stream
/// server's type does not change).
pub(crate) type LoopUdp = port::UdpPort<dyn DatagramHandler>;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The application's side of a UDP server: called on the loop that received the datagram.
pub trait DatagramHandler: Send + Sync + 'static {
    /// One datagram from `peer`. A returned reply is sent to `peer` from the same socket.
    fn on_datagram<'a>(
        &'a self,
        ctx: &mut DatagramCtx<'_>,
        peer: SocketAddr,
        datagram: &'a [u8],
    ) -> Option<Cow<'a, [u8]>>;
}

/// The loop as the handler sees it during [`DatagramHandler::on_datagram`].
pub struct DatagramCtx<'l> {
    pub(crate) loop_index: usize,
    pub(crate) handle: &'l UdpHandle,
    pub(crate) extra: &'l mut Vec<(SocketAddr, Vec<u8>)>,
}

impl DatagramCtx<'_> {
    /// The index of the loop (and socket) that received the datagram.
    pub fn loop_index(&self) -> usize {
        self.loop_index
    }

    /// Queues a datagram to any peer on this loop's socket (sent with the replies of this batch).
    pub fn send_to(&mut self, peer: SocketAddr, datagram: &[u8]) {
        self.extra.push((peer, datagram.to_vec()));
    }

    /// A handle for sending from other threads.
    pub fn handle(&self) -> UdpHandle {
        self.handle.clone()
    }
}

/// Why [`UdpHandle::send_to`] did not queue a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UdpSendError {
    /// The server stopped.
    #[error("the UDP server is stopped")]
    Closed,
    /// The loop's queue of datagrams from other threads is at `max_output_datagrams`.
    #[error("the UDP loop's output queue is full")]
    Full,
}

/// Every knob of a UDP server, with documented defaults.
#[derive(Debug, Clone)]
pub struct UdpOptions {
    /// Address to bind (every loop's socket binds it with `SO_REUSEPORT`). Default `0.0.0.0:1833`.
    pub addr: SocketAddr,
    /// Loops (one socket each); `<= 0`: one per core. Default `-1`.
    pub loops: i32,
    /// Datagrams per `recvmmsg`/`sendmmsg`. Default 32.
    pub batch: usize,
    /// Use `recvmmsg`/`sendmmsg` (else one `recvfrom`/`sendto` per datagram). Default `true`.
    pub batching: bool,
    /// Longest datagram delivered to the handler; longer ones are dropped and counted. The
    /// receive slots are this size (`batch` of them per loop). Default 65 507 (the UDP maximum).
    pub max_datagram: usize,
    /// Replies (and handle sends) waiting for the socket per loop; more are dropped and
    /// counted. Default 4096.
    pub max_output_datagrams: usize,
    /// `SO_RCVBUF`/`SO_SNDBUF` to ask for (`None`: the system default). Default `None`.
    pub socket_buffer: Option<usize>,
    /// How long `stop` waits for queued output to go out. Default 1 s. (On a stream server's
    /// loops the server's `stop_timeout` applies instead.)
    pub stop_timeout: Duration,
    /// Standalone servers: serve the Prometheus endpoint on this address and path (`gev_udp_*`
    /// counters per loop). Default `None`. (On a stream server's loops the server's
    /// `ServerOptions::metrics` endpoint carries them.)
    pub metrics: Option<(SocketAddr, String)>,
}

impl Default for UdpOptions {
    fn default() -> Self {
        UdpOptions {
            addr: SocketAddr::from(([0, 0, 0, 0], 1833)),
            loops: -1,
            batch: 32,
            batching: true,
            max_datagram: 65_507,
            max_output_datagrams: 4096,
            socket_buffer: None,
            stop_timeout: Duration::from_secs(1),
            metrics: None,
        }
    }
}

impl UdpOptions {
    /// Defaults, bound to `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        UdpOptions {
            addr,
            ..UdpOptions::default()
        }
    }
    /// Sets [`loops`](Self::loops).
    pub fn loops(mut self, loops: i32) -> Self {
        self.loops = loops;
        self
    }
    /// Sets [`batch`](Self::batch).
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }
    /// Sets [`batching`](Self::batching).
    pub fn batching(mut self, on: bool) -> Self {
        self.batching = on;
        self
    }
    /// Sets [`max_datagram`](Self::max_datagram).
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes;
        self
    }
    /// Sets [`max_output_datagrams`](Self::max_output_datagrams).
    pub fn max_output_datagrams(mut self, n: usize) -> Self {
        self.max_output_datagrams = n;
        self
    }
    /// Sets [`socket_buffer`](Self::socket_buffer).
    pub fn socket_buffer(mut self, bytes: Option<usize>) -> Self {
        self.socket_buffer = bytes;
        self
    }
    /// Sets [`stop_timeout`](Self::stop_timeout).
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Sets [`metrics`](Self::metrics).
    pub fn metrics(mut self, addr: SocketAddr, path: impl Into<String>) -> Self {
        self.metrics = Some((addr, path.into()));
        self
    }

    pub(crate) fn resolved_loops(&self) -> usize {
        if self.loops > 0 {
            self.loops as usize
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

/// Counters of one loop (single writer: the loop; any reader, e.g. the metrics scrape).
#[derive(Debug, Default)]
pub(crate) struct UdpStats {
    datagrams_in: AtomicU64,
    datagrams_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    dropped_output_full: AtomicU64,
    dropped_oversized: AtomicU64,
    send_errors: AtomicU64,
    recv_calls: AtomicU64,
    send_calls: AtomicU64,
}

/// A snapshot of a UDP server's counters (summed over its loops).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpCounters {
    /// Datagrams delivered to the handler.
    pub datagrams_in: u64,
    /// Datagrams the kernel accepted for sending.
    pub datagrams_out: u64,
    /// Bytes of `datagrams_in`.
    pub bytes_in: u64,
    /// Bytes of `datagrams_out`.
    pub bytes_out: u64,
    /// Replies and handle sends dropped because the output queue was full (the socket buffer
    /// stayed full).
    pub dropped_output_full: u64,
    /// Received datagrams longer than `max_datagram`, dropped.
    pub dropped_oversized: u64,
    /// Datagrams the kernel refused (e.g. `EMSGSIZE`, an unreachable peer), dropped.
    pub send_errors: u64,
    /// Receive syscalls (`recvmmsg` or `recvfrom`), including the one that found nothing.
    pub recv_calls: u64,
    /// Send syscalls (`sendmmsg` or `sendto`).
    pub send_calls: u64,
}

macro_rules! bump {
    ($($name:ident),*) => {
        impl UdpStats {
            $(
                #[inline]
                pub(crate) fn $name(&self, n: u64) {
                    // Single writer: a relaxed load + store is enough and avoids a locked add.
                    let c = &self.$name;
                    c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
                }
            )*
            fn add_to(&self, total: &mut UdpCounters) {
                $( total.$name += self.$name.load(Ordering::Relaxed); )*
            }
            /// This loop's counters now.
            pub fn snapshot(&self) -> UdpCounters {
                let mut counters = UdpCounters::default();
                self.add_to(&mut counters);
                counters
            }
        }
    };
}
bump!(
    datagrams_in,
    datagrams_out,
    bytes_in,
    bytes_out,
    dropped_output_full,
    dropped_oversized,
    send_errors,
    recv_calls,
    send_calls
);

pub(crate) fn sum_counters(stats: &[std::sync::Arc<UdpStats>]) -> UdpCounters {
    let mut total = UdpCounters::default();
    for s in stats {
        s.add_to(&mut total);
    }
    total
}
