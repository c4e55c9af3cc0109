//! The standalone UDP server: N sockets bound to one address with `SO_REUSEPORT` (the first
//! binds, so port 0 resolves to one real port the others then share), one thread per socket
//! (`gev-udp-N`) whose loop is a thin driver around the shared datagram path (`port.rs`: the
//! same code a stream server's loops run with [`Server::with_udp`](crate::Server::with_udp)),
//! and [`UdpHandle`]s that queue datagrams onto a loop from any thread.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};

use super::port::{UdpPort, UdpShared, UdpTask};
use super::{sum_counters, DatagramHandler, UdpCounters, UdpOptions, UdpSendError, UdpStats};
use crate::error::Error;
use crate::metrics::{LoopMetrics, MetricsServer};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);

/// Sends datagrams from any thread through one loop's socket (Send + Sync + Clone).
#[derive(Clone)]
pub struct UdpHandle {
    pub(crate) shared: Arc<UdpShared>,
}

impl std::fmt::Debug for UdpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpHandle").finish_non_exhaustive()
    }
}

impl UdpHandle {
    /// Queues `datagram` for `peer` on this loop. `Full` when
    /// [`UdpOptions::max_output_datagrams`] handle sends are already waiting for the loop.
    pub fn send_to(&self, peer: SocketAddr, datagram: Vec<u8>) -> Result<(), UdpSendError> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(UdpSendError::Closed);
        }
        if self.shared.pending_sends.fetch_add(1, Ordering::AcqRel) >= self.shared.max_pending {
            self.shared.pending_sends.fetch_sub(1, Ordering::AcqRel);
            return Err(UdpSendError::Full);
        }
        self.shared.push(UdpTask::Send(peer, datagram));
        Ok(())
    }
}

/// A standalone UDP server that is bound but not running yet (to serve UDP on a stream
/// server's loops instead, see [`Server::with_udp`](crate::Server::with_udp)).
pub struct UdpServer<H: DatagramHandler> {
    options: UdpOptions,
    local_addr: SocketAddr,
    loops: Vec<StandaloneLoop<H>>,
    stats: Vec<Arc<UdpStats>>,
}

/// A standalone loop: its own poll and one port.
struct StandaloneLoop<H: DatagramHandler> {
    index: usize,
    poll: Poll,
    port: UdpPort<H>,
}

impl<H: DatagramHandler> UdpServer<H> {
    /// Binds one socket per loop (`SO_REUSEPORT`) and prepares the loops (no thread yet).
    pub fn new(options: UdpOptions, handler: H) -> Result<Self, Error> {
        let count = options.resolved_loops();
        let (addr, sockets) = bind_sockets(&options, count)?;
        let handler = Arc::new(handler);
        let mut loops = Vec::with_capacity(count);
        let mut stats = Vec::with_capacity(count);
        for (index, socket) in sockets.into_iter().enumerate() {
            let io = |context| move |source| Error::Io { context, source };
            let poll = Poll::new().map_err(io("creating a UDP loop poller"))?;
            let waker =
                Waker::new(poll.registry(), WAKER).map_err(io("creating a UDP loop waker"))?;
            let wake = Box::new(move || {
                if let Err(e) = waker.wake() {
                    tracing::error!(error = %e, "cannot wake a UDP loop");
                }
            });
            let shared = Arc::new(UdpShared::new(options.max_output_datagrams, wake));
            let loop_stats = Arc::new(UdpStats::default());
            stats.push(loop_stats.clone());
            let mut port = UdpPort::new(
                index,
                socket,
                handler.clone(),
                shared,
                loop_stats,
                options.clone(),
            );
            port.register(poll.registry(), SOCKET)
                .map_err(io("registering a UDP socket"))?;
            loops.push(StandaloneLoop { index, poll, port });
        }
        Ok(UdpServer {
            options,
            local_addr: addr,
            loops,
            stats,
        })
    }

    /// The bound address (the real port when the options asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// One handle per loop, in index order.
    pub fn handles(&self) -> Vec<UdpHandle> {
        self.loops.iter().map(|l| l.port.handle().clone()).collect()
    }

    /// Starts one thread per loop (`gev-udp-N`), and the metrics endpoint when
    /// [`UdpOptions::metrics`] is set.
    pub fn start(self) -> Result<UdpServerHandle, Error> {
        let handles = self.handles();
        let metrics = match &self.options.metrics {
            Some((addr, path)) => {
                let loop_metrics = self
                    .stats
                    .iter()
                    .enumerate()
                    .map(|(index, stats)| {
                        let metrics = LoopMetrics::new(index);
                        metrics.attach_udp(stats.clone());
                        Arc::new(metrics)
                    })
                    .collect();
                let server = MetricsServer::start(*addr, path, loop_metrics)?;
                tracing::info!(addr = %server.local_addr(), path = %path, "UDP metrics endpoint started");
                Some(server)
            }
            None => None,
        };
        let mut threads = Vec::with_capacity(self.loops.len());
        for udp_loop in self.loops {
            let name = format!("gev-udp-{}", udp_loop.index);
            let thread = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    if let Err(e) = run_standalone(udp_loop) {
                        tracing::error!(error = %e, "UDP loop failed");
                    }
                })
                .map_err(|source| Error::Io {
                    context: "spawning a UDP loop thread",
                    source,
                })?;
            threads.push((name, thread));
        }
        tracing::info!(addr = %self.local_addr, loops = threads.len(), batching = self.options.batching, "UDP server started");
        Ok(UdpServerHandle {
            local_addr: self.local_addr,
            handles,
            threads,
            stats: self.stats,
            stop_timeout: self.options.stop_timeout,
            metrics,
            stopped: false,
        })
    }
}

/// A running UDP server. Dropping it stops it (like [`stop`](Self::stop), ignoring errors).
pub struct UdpServerHandle {
    local_addr: SocketAddr,
    handles: Vec<UdpHandle>,
    threads: Vec<(String, JoinHandle<()>)>,
    stats: Vec<Arc<UdpStats>>,
    stop_timeout: Duration,
    metrics: Option<MetricsServer>,
    stopped: bool,
}

impl UdpServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// One handle per loop, in index order.
    pub fn handles(&self) -> Vec<UdpHandle> {
        self.handles.clone()
    }

    /// The metrics endpoint's address, when [`UdpOptions::metrics`] is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr())
    }

    /// The counters summed over the loops (see [`UdpCounters`]).
    pub fn counters(&self) -> UdpCounters {
        sum_counters(&self.stats)
    }

    /// Stops every loop: no more reads; queued output is sent until it is empty or
    /// `stop_timeout` passes (what is left is dropped and counted), then the threads are joined.
    pub fn stop(mut self) -> Result<UdpCounters, Error> {
        self.stop_inner()?;
        Ok(self.counters())
    }

    fn stop_inner(&mut self) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let deadline = Instant::now() + self.stop_timeout;
        for handle in &self.handles {
            handle.shared.stopped.store(true, Ordering::Release);
            handle.shared.push(UdpTask::Stop { deadline });
        }
        let join_deadline = deadline + Duration::from_secs(1);
        let mut unfinished = 0;
        for (name, thread) in self.threads.drain(..) {
            while !thread.is_finished() && Instant::now() < join_deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if thread.is_finished() {
                if thread.join().is_err() {
                    return Err(Error::ThreadFailed {
                        thread: name,
                        reason: "panicked".into(),
                    });
                }
            } else {
                unfinished += 1;
            }
        }
        if let Some(mut metrics) = self.metrics.take() {
            metrics.stop().map_err(Error::Metrics)?;
        }
        if unfinished > 0 {
            return Err(Error::StopTimeout {
                unfinished,
                timeout: self.stop_timeout,
            });
        }
        Ok(())
    }
}

impl Drop for UdpServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// A standalone loop: poll -> readiness -> one turn of the datagram path -> until stopped.
fn run_standalone<H: DatagramHandler>(mut udp_loop: StandaloneLoop<H>) -> std::io::Result<()> {
    let mut events = Events::with_capacity(64);
    loop {
        let timeout = if udp_loop.port.wants_poll_now() {
            Some(Duration::ZERO)
        } else {
            // While stopping, wake by the deadline even if no writable edge comes.
            udp_loop
                .port
                .stop_deadline()
                .map(|deadline| deadline.saturating_duration_since(Instant::now()))
        };
        match udp_loop.poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == SOCKET {
                udp_loop
                    .port
                    .on_event(event.is_readable(), event.is_writable());
            }
        }
        udp_loop.port.turn();
        if udp_loop.port.stop_finished(Instant::now()) {
            tracing::debug!(loop_index = udp_loop.index, "UDP loop stopped");
            return Ok(());
        }
    }
}

/// Checks the options and binds `count` sockets to one address with `SO_REUSEPORT` (the first
/// resolves port 0); returns the bound address and the sockets.
pub(crate) fn bind_sockets(
    options: &UdpOptions,
    count: usize,
) -> Result<(SocketAddr, Vec<mio::net::UdpSocket>), Error> {
    if options.batch == 0 || options.max_datagram == 0 || options.max_datagram > 65_507 {
        return Err(Error::Config(format!(
            "UDP: batch must be >= 1 and max_datagram in 1..=65507 (got batch {}, max_datagram {})",
            options.batch, options.max_datagram
        )));
    }
    let mut addr = options.addr;
    let mut sockets = Vec::with_capacity(count);
    for index in 0..count {
        let socket = bind(addr, options)?;
        if index == 0 {
            addr = socket.local_addr().map_err(|source| Error::Io {
                context: "reading the UDP socket's address",
                source,
            })?;
        }
        sockets.push(socket);
    }
    Ok((addr, sockets))
}

fn bind(addr: SocketAddr, options: &UdpOptions) -> Result<mio::net::UdpSocket, Error> {
    use socket2::{Domain, Socket, Type};
    let err = |source| Error::Bind { addr, source };
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(err)?;
    socket.set_reuse_port(true).map_err(err)?;
    if let Some(bytes) = options.socket_buffer {
        socket.set_recv_buffer_size(bytes).map_err(err)?;
        socket.set_send_buffer_size(bytes).map_err(err)?;
    }
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    Ok(mio::net::UdpSocket::from_std(socket.into()))
}
