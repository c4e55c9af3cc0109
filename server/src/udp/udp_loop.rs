//! One UDP loop: its socket, its receive and send batches, its bounded output queue and its
//! task queue (sends from other threads, stop). Iteration: poll -> drain tasks -> read up to
//! `READS_PER_ITERATION` batches (replies queued) -> flush the queue with `sendmmsg` until it is
//! empty or the socket would block (then the writable edge resumes it). Edge-triggered like the
//! stream loops: a read pass that stopped at its cap polls again with a zero timeout instead of
//! waiting for an edge that already came.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::batch::{RecvBatch, SendBatch};
use super::server::UdpHandle;
use super::{DatagramCtx, DatagramHandler, UdpOptions, UdpStats};
use crate::task_queue::TaskQueue;

pub(crate) const SOCKET: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);

/// Receive batches per iteration before the loop flushes and polls again (fairness between
/// reading and writing under a flood).
const READS_PER_ITERATION: usize = 16;

/// Work sent to a loop from other threads.
pub(crate) enum UdpTask {
    Send(SocketAddr, Vec<u8>),
    Stop { deadline: Instant },
}

/// State shared between a loop and its handles.
pub(crate) struct UdpShared {
    pub(crate) queue: TaskQueue<UdpTask>,
    /// Handle sends queued and not yet taken by the loop (bounds the task queue).
    pub(crate) pending_sends: AtomicUsize,
    pub(crate) stopped: AtomicBool,
    pub(crate) max_pending: usize,
}

pub(crate) struct UdpLoop<H: DatagramHandler> {
    pub(crate) index: usize,
    pub(crate) poll: Poll,
    pub(crate) socket: mio::net::UdpSocket,
    pub(crate) handler: Arc<H>,
    pub(crate) shared: Arc<UdpShared>,
    pub(crate) handle: UdpHandle,
    pub(crate) stats: Arc<UdpStats>,
    pub(crate) options: UdpOptions,
}

impl<H: DatagramHandler> UdpLoop<H> {
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        let mut recv = RecvBatch::new(
            if self.options.batching {
                self.options.batch
            } else {
                1
            },
            // One byte more than the limit: a datagram that fills the slot is over it.
            self.options.max_datagram + 1,
        );
        let mut send = SendBatch::new(self.options.batch);
        let mut out: VecDeque<(SocketAddr, Vec<u8>)> = VecDeque::new();
        let mut pool: Vec<Vec<u8>> = Vec::new();
        let mut extra: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        let mut tasks = Vec::new();
        let mut more_to_read = true;
        let mut blocked = false;
        let mut stop_deadline: Option<Instant> = None;
        self.poll.registry().register(
            &mut self.socket,
            SOCKET,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let fd = self.socket.as_raw_fd();
        loop {
            let timeout = if more_to_read && stop_deadline.is_none() {
                Some(Duration::ZERO)
            } else if let Some(deadline) = stop_deadline {
                Some(
                    deadline
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(10)),
                )
            } else {
                None
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    SOCKET => {
                        if event.is_readable() {
                            more_to_read = true;
                        }
                        if event.is_writable() {
                            blocked = false;
                        }
                    }
                    _ => {}
                }
            }
            // Tasks: handle sends and stop.
            if self.shared.queue.is_notified() {
                self.shared.queue.drain(&mut tasks);
                for task in tasks.drain(..) {
                    match task {
                        UdpTask::Send(peer, data) => {
                            self.shared.pending_sends.fetch_sub(1, Ordering::Relaxed);
                            self.enqueue(&mut out, peer, data);
                        }
                        UdpTask::Stop { deadline } => stop_deadline = Some(deadline),
                    }
                }
            }
            if more_to_read && stop_deadline.is_none() {
                more_to_read = self.read(fd, &mut recv, &mut out, &mut pool, &mut extra);
            }
            if !blocked && !out.is_empty() {
                blocked = self.flush(fd, &mut send, &mut out, &mut pool);
            }
            if let Some(deadline) = stop_deadline {
                if out.is_empty() || Instant::now() >= deadline {
                    let left = out.len() as u64;
                    if left > 0 {
                        self.stats.dropped_output_full(left);
                        tracing::warn!(
                            loop_index = self.index,
                            left,
                            "UDP stop: output not flushed in time; dropped"
                        );
                    }
                    return Ok(());
                }
            }
        }
    }

    fn enqueue(&self, out: &mut VecDeque<(SocketAddr, Vec<u8>)>, peer: SocketAddr, data: Vec<u8>) {
        if out.len() >= self.options.max_output_datagrams {
            self.stats.dropped_output_full(1);
        } else {
            out.push_back((peer, data));
        }
    }

    /// Reads up to `READS_PER_ITERATION` batches; returns true when it stopped at the cap (more
    /// may be waiting), false when the socket said `WouldBlock`.
    fn read(
        &self,
        fd: std::os::fd::RawFd,
        recv: &mut RecvBatch,
        out: &mut VecDeque<(SocketAddr, Vec<u8>)>,
        pool: &mut Vec<Vec<u8>>,
        extra: &mut Vec<(SocketAddr, Vec<u8>)>,
    ) -> bool {
        for _ in 0..READS_PER_ITERATION {
            self.stats.recv_calls(1);
            let n = match recv.recv(fd) {
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
                let Some(datagram) = recv.get(i) else {
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
                    extra,
                };
                let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.handler
                        .on_datagram(&mut ctx, peer, datagram.data)
                        .map(|reply| {
                            let mut buf = pool.pop().unwrap_or_default();
                            buf.clear();
                            buf.extend_from_slice(&reply);
                            buf
                        })
                }));
                match reply {
                    Ok(Some(buf)) => self.enqueue(out, peer, buf),
                    Ok(None) => {}
                    Err(_) => {
                        tracing::error!(loop_index = self.index, %peer, "on_datagram panicked; datagram dropped")
                    }
                }
                for (to, data) in extra.drain(..) {
                    self.enqueue(out, to, data);
                }
            }
        }
        true
    }

    /// Sends queued datagrams until the queue is empty (false) or the socket would block (true).
    fn flush(
        &self,
        fd: std::os::fd::RawFd,
        send: &mut SendBatch,
        out: &mut VecDeque<(SocketAddr, Vec<u8>)>,
        pool: &mut Vec<Vec<u8>>,
    ) -> bool {
        while !out.is_empty() {
            self.stats.send_calls(1);
            let result = if self.options.batching {
                let (front, back) = out.as_slices();
                let items = front.iter().chain(back.iter()).map(|(p, d)| (p, &d[..]));
                send.send(fd, items.take(send.capacity()))
            } else {
                let (peer, data) = &out[0];
                self.socket.send_to(data, *peer).map(|_| 1)
            };
            match result {
                Ok(sent) => {
                    for _ in 0..sent {
                        if let Some((_, buf)) = out.pop_front() {
                            self.stats.datagrams_out(1);
                            self.stats.bytes_out(buf.len() as u64);
                            if pool.len() < 1024 {
                                pool.push(buf);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The first datagram was refused (too big, unreachable peer): drop it only.
                    let dropped = out.pop_front();
                    self.stats.send_errors(1);
                    tracing::debug!(loop_index = self.index, error = %e, peer = ?dropped.map(|d| d.0), "UDP send refused; datagram dropped");
                }
            }
        }
        false
    }
}
