//! One UDP socket's datagram path, the single copy both drivers use: a standalone
//! [`UdpServer`](super::UdpServer) loop (`gev-udp-N`, its own `mio::Poll`) and a stream
//! server's event loop (`gev-loop-N`, the socket registered in that loop's poll beside its
//! connections, see `stream_loops.rs`).
//!
//! A driver calls [`UdpPort::on_event`] for the socket's readiness, then [`UdpPort::turn`] once
//! per iteration: drain the tasks from other threads (handle sends) -> read up to
//! `READS_PER_ITERATION` batches, handler per datagram, replies into the bounded output queue ->
//! flush the queue with `sendmmsg` until it is empty or the socket would block (then the
//! writable edge resumes it: never a busy loop). Readiness is edge-triggered like the stream
//! loops: a read pass that stopped at its cap asks the driver to poll again with a zero timeout
//! ([`UdpPort::wants_poll_now`]) instead of waiting for an edge that already came.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mio::{Interest, Registry, Token};

use super::batch::{RecvBatch, SendBatch};
use super::server::UdpHandle;
use super::{DatagramCtx, DatagramHandler, UdpOptions, UdpStats};

/// Receive batches per turn before the port flushes and lets the driver poll again (fairness
/// between reading and writing under a flood, and with the stream loop's connections).
const READS_PER_ITERATION: usize = 16;

/// Drained reply buffers a port keeps for reuse.
const REPLY_POOL: usize = 1024;

/// Work sent to a port from other threads.
pub(crate) enum UdpTask {
    Send(SocketAddr, Vec<u8>),
    /// Standalone servers only: a stream loop's stop reaches its port through
    /// [`UdpPort::begin_stop`].
    Stop {
        deadline: Instant,
    },
}

/// State shared between a port and its handles: a multi-producer queue whose first push after a
/// drain wakes the driver's poll (`wake`: the standalone loop's `mio::Waker`, or a no-op task on
/// the stream loop's own queue, since a `mio::Poll` takes only one waker).
pub(crate) struct UdpShared {
    items: Mutex<Vec<UdpTask>>,
    notified: AtomicBool,
    wake: Box<dyn Fn() + Send + Sync>,
    /// Handle sends queued and not yet taken by the port (bounds the queue).
    pub(crate) pending_sends: AtomicUsize,
    pub(crate) stopped: AtomicBool,
    pub(crate) max_pending: usize,
}

impl UdpShared {
    pub(crate) fn new(max_pending: usize, wake: Box<dyn Fn() + Send + Sync>) -> Self {
        UdpShared {
            items: Mutex::new(Vec::new()),
            notified: AtomicBool::new(false),
            wake,
            pending_sends: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            max_pending,
        }
    }

    /// Push from any thread but the driver's; wakes the driver once per drain.
    pub(crate) fn push(&self, task: UdpTask) {
        // Nothing panics while the lock is held, so a poisoned lock still holds a valid Vec.
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
        if !self.notified.swap(true, Ordering::AcqRel) {
            (self.wake)();
        }
    }

    fn is_notified(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    fn drain(&self, into: &mut Vec<UdpTask>) {
        // Clear the flag before taking the items: a push landing after the take wakes again.
        self.notified.store(false, Ordering::SeqCst);
        std::mem::swap(
            &mut *self.items.lock().unwrap_or_else(|e| e.into_inner()),
            into,
        );
    }
}

/// One socket with its batches, output queue and handler (`D` is `dyn DatagramHandler` on a
/// stream loop, the concrete handler in a standalone server).
pub(crate) struct UdpPort<D: DatagramHandler + ?Sized> {
    index: usize,
    socket: mio::net::UdpSocket,
    fd: RawFd,
    handler: Arc<D>,
    shared: Arc<UdpShared>,
    handle: UdpHandle,
    stats: Arc<UdpStats>,
    options: UdpOptions,
    recv: RecvBatch,
    send: SendBatch,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    pool: Vec<Vec<u8>>,
    extra: Vec<(SocketAddr, Vec<u8>)>,
    tasks: Vec<UdpTask>,
    more_to_read: bool,
    blocked: bool,
    stop_deadline: Option<Instant>,
}

impl<D: DatagramHandler + ?Sized> UdpPort<D> {
    pub(crate) fn new(
        index: usize,
        socket: mio::net::UdpSocket,
        handler: Arc<D>,
        shared: Arc<UdpShared>,
        stats: Arc<UdpStats>,
        options: UdpOptions,
    ) -> Self {
        let recv = RecvBatch::new(
            if options.batching { options.batch } else { 1 },
            // One byte more than the limit: a datagram that fills the slot is over it.
            options.max_datagram + 1,
        );
        let send = SendBatch::new(options.batch);
        UdpPort {
            index,
            fd: socket.as_raw_fd(),
            socket,
            handler,
            handle: UdpHandle {
                shared: shared.clone(),
            },
            shared,
            stats,
            options,
            recv,
            send,
            out: VecDeque::new(),
            pool: Vec::new(),
            extra: Vec::new(),
            tasks: Vec::new(),
            more_to_read: true,
            blocked: false,
            stop_deadline: None,
        }
    }

    pub(crate) fn handle(&self) -> &UdpHandle {
        &self.handle
    }

    /// Registers the socket for both directions, edge-triggered, once.
    pub(crate) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut self.socket,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// The socket's readiness from the driver's poll.
    #[inline]
    pub(crate) fn on_event(&mut self, readable: bool, writable: bool) {
        if readable {
            self.more_to_read = true;
        }
        if writable {
            self.blocked = false;
        }
    }

    /// True when the driver must poll with a zero timeout: input may be waiting past the read
    /// cap, or tasks are queued.
    #[inline]
    pub(crate) fn wants_poll_now(&self) -> bool {
        (self.more_to_read && self.stop_deadline.is_none()) || self.shared.is_notified()
    }

    /// One turn of the datagram path: tasks, reads (not while stopping), flush.
    pub(crate) fn turn(&mut self) {
        if self.shared.is_notified() {
            let mut tasks = std::mem::take(&mut self.tasks);
            self.shared.drain(&mut tasks);
            for task in tasks.drain(..) {
                match task {
                    UdpTask::Send(peer, data) => {
                        self.shared.pending_sends.fetch_sub(1, Ordering::Relaxed);
                        self.enqueue(peer, data);
                    }
                    UdpTask::Stop { deadline } => self.begin_stop(deadline),
                }
            }
            self.tasks = tasks;
        }
        if self.more_to_read && self.stop_deadline.is_none() {
            self.more_to_read = self.read();
        }
        if !self.blocked && !self.out.is_empty() {
            self.blocked = self.flush();
        }
    }

    /// Stops reading; handle sends now fail with `Closed`. Queued output keeps going out until
    /// [`stop_finished`](Self::stop_finished) says it is done.
    pub(crate) fn begin_stop(&mut self, deadline: Instant) {
        self.shared.stopped.store(true, Ordering::Release);
        self.stop_deadline = Some(self.stop_deadline.map_or(deadline, |d| d.min(deadline)));
    }

    /// The stop deadline, once stopping.
    pub(crate) fn stop_deadline(&self) -> Option<Instant> {
        self.stop_deadline
    }

    /// While stopping: true once the output queue is empty, or at the deadline (what is left is
    /// dropped and counted as `dropped_output_full`). False when not stopping.
    pub(crate) fn stop_finished(&mut self, now: Instant) -> bool {
        let Some(deadline) = self.stop_deadline else {
            return false;
        };
        if self.out.is_empty() {
            return true;
        }
        if now < deadline {
            return false;
        }
        let left = self.out.len() as u64;
        self.stats.dropped_output_full(left);
        self.out.clear();
        tracing::warn!(
            loop_index = self.index,
            left,
            "UDP stop: output not flushed in time; dropped"
        );
        true
    }

    fn enqueue(&mut self, peer: SocketAddr, data: Vec<u8>) {
        if self.out.len() >= self.options.max_output_datagrams {
            self.stats.dropped_output_full(1);
        } else {
            self.out.push_back((peer, data));
        }
    }

    /// Reads up to `READS_PER_ITERATION` batches; returns true when it stopped at the cap (more
    /// may be waiting), false when the socket said `WouldBlock`. Hot path: one `recvmmsg` per
    /// batch into buffers allocated once; replies are copied into pooled buffers (no allocation
    /// once the pool is warm).
    fn read(&mut self) -> bool {
        for _ in 0..READS_PER_ITERATION {
            self.stats.recv_calls(1);
            let n = match self.recv.recv(self.fd) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors queued on the socket (a vanished peer) surface here once
                    // each; they concern one earlier datagram, not the socket.
                    tracing::debug!(loop_index = self.index, error = %e, "UDP receive error");
                    continue;
                }
            };
            for i in 0..n {
                let Some(datagram) = self.recv.get(i) else {
                    continue;
                };
                if datagram.truncated || datagram.data.len() > self.options.max_datagram {
                    self.stats.dropped_oversized(1);
                    continue;
                }
                self.stats.datagrams_in(1);
                self.stats.bytes_in(datagram.data.len() as u64);
                let peer = datagram.peer;
                let mut ctx = DatagramCtx {
                    loop_index: self.index,
                    handle: &self.handle,
                    extra: &mut self.extra,
                };
                let handler = &*self.handler;
                let pool = &mut self.pool;
                let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    handler
                        .on_datagram(&mut ctx, peer, datagram.data)
                        .map(|reply| {
                            let mut buf = pool.pop().unwrap_or_default();
                            buf.clear();
                            buf.extend_from_slice(&reply);
                            buf
                        })
                }));
                match reply {
                    Ok(Some(buf)) => self.enqueue(peer, buf),
                    Ok(None) => {}
                    Err(_) => {
                        tracing::error!(loop_index = self.index, %peer, "on_datagram panicked; datagram dropped")
                    }
                }
                if !self.extra.is_empty() {
                    let mut extra = std::mem::take(&mut self.extra);
                    for (to, data) in extra.drain(..) {
                        self.enqueue(to, data);
                    }
                    self.extra = extra;
                }
            }
        }
        true
    }

    /// Sends queued datagrams until the queue is empty (false) or the socket would block (true).
    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            self.stats.send_calls(1);
            let result = if self.options.batching {
                let (front, back) = self.out.as_slices();
                let items = front.iter().chain(back.iter()).map(|(p, d)| (p, &d[..]));
                let capacity = self.send.capacity();
                self.send.send(self.fd, items.take(capacity))
            } else {
                let (peer, data) = &self.out[0];
                self.socket.send_to(data, *peer).map(|_| 1)
            };
            match result {
                Ok(sent) => {
                    for _ in 0..sent {
                        if let Some((_, buf)) = self.out.pop_front() {
                            self.stats.datagrams_out(1);
                            self.stats.bytes_out(buf.len() as u64);
                            if self.pool.len() < REPLY_POOL {
                                self.pool.push(buf);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The first datagram was refused (too big, unreachable peer): drop it only.
                    let dropped = self.out.pop_front();
                    self.stats.send_errors(1);
                    tracing::debug!(loop_index = self.index, error = %e, peer = ?dropped.map(|d| d.0), "UDP send refused; datagram dropped");
                }
            }
        }
        false
    }
}
