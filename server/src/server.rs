//! Assembling and running a server: [`Server::new`] binds the listener and prepares the loops
//! (so [`Server::local_addr`] and [`Server::loops`] work before anything runs);
//! [`Server::start`] spawns the loop threads, the acceptor thread (with several loops; a single
//! loop accepts itself, see `acceptor.rs`) and the metrics endpoint and returns a
//! [`ServerHandle`] whose [`stop`](ServerHandle::stop) is the graceful shutdown: stop accepting,
//! flush pending output, close every connection with
//! [`CloseReason::Shutdown`](crate::CloseReason::Shutdown), join all threads within
//! [`ServerOptions::stop_timeout`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;

use crate::transport::{ListenAddr, Listener};
use mio::Poll;

use crate::acceptor::{AcceptCore, Acceptor, AcceptorStats, ACCEPTOR_WAKER};
use crate::balance::{Balancer, LeastConnections, RoundRobin};
use crate::error::Error;
use crate::event_loop::EventLoop;
use crate::handler::Handler;
use crate::loop_handle::{LoopHandle, LoopShared, Task};
use crate::metrics::{LoopMetrics, MetricsServer};
use crate::options::{LoadBalance, ServerOptions};
use crate::protocol::Protocol;

/// A server that is built but not running yet.
///
/// ```
/// use std::borrow::Cow;
/// use std::io::{Read, Write};
/// use gev::{Conn, Handler, Raw, Server, ServerOptions};
///
/// struct Echo;
/// impl Handler<Raw> for Echo {
///     fn on_message<'a>(&self, _: &mut Conn<'_, Raw>, msg: &'a [u8]) -> Option<Cow<'a, [u8]>> {
///         Some(Cow::Borrowed(msg))
///     }
/// }
///
/// let options = ServerOptions::new("127.0.0.1:0".parse().unwrap()).loops(1);
/// let server = Server::new(options, Raw, Echo)?;
/// let addr = server.local_addr();
/// let handle = server.start()?;
///
/// let mut client = std::net::TcpStream::connect(addr).unwrap();
/// client.write_all(b"hello").unwrap();
/// let mut reply = [0; 5];
/// client.read_exact(&mut reply).unwrap();
/// assert_eq!(&reply, b"hello");
///
/// handle.stop()?;
/// # Ok::<(), gev::Error>(())
/// ```
pub struct Server<P: Protocol, H: Handler<P>> {
    options: ServerOptions,
    local_addr: SocketAddr,
    listener: Listener,
    loops: Vec<EventLoop<P, H>>,
    loop_metrics: Vec<Arc<LoopMetrics>>,
    stats: Arc<AcceptorStats>,
    udp: Option<crate::udp::UdpLoops>,
}

impl<P: Protocol, H: Handler<P>> Server<P, H> {
    /// Validates `options`, binds the listener and prepares the loops (no thread yet).
    pub fn new(options: ServerOptions, protocol: P, handler: H) -> Result<Self, Error> {
        options.validate()?;
        let listener = bind(&options)?;
        let local_addr = listener.local_addr().map_err(|source| Error::Io {
            context: "reading the listener's address",
            source,
        })?;
        let protocol = Arc::new(protocol);
        let handler = Arc::new(handler);
        let stats = Arc::new(AcceptorStats::default());
        let loop_count = options.resolved_loops();
        let loop_metrics: Vec<Arc<LoopMetrics>> = if options.metrics.is_some() {
            (0..loop_count)
                .map(|i| Arc::new(LoopMetrics::new(i)))
                .collect()
        } else {
            Vec::new()
        };
        let mut loops = Vec::with_capacity(loop_count);
        for index in 0..loop_count {
            let event_loop = EventLoop::new(
                index,
                &options,
                protocol.clone(),
                handler.clone(),
                loop_metrics.get(index).cloned(),
                stats.active.clone(),
            )
            .map_err(|source| Error::Io {
                context: "creating an event loop poller",
                source,
            })?;
            loops.push(event_loop);
        }
        Ok(Server {
            options,
            local_addr,
            listener,
            loops,
            loop_metrics,
            stats,
            udp: None,
        })
    }

    /// Serves UDP on this server's loops too: one `SO_REUSEPORT` socket per loop bound to
    /// `udp.addr`, registered in that loop's poll, `handler` called on the loop that received
    /// the datagram (see [`crate::udp`]). `udp.loops` and `udp.stop_timeout` are ignored (the
    /// server's loops and stop apply); its counters join the server's metrics endpoint.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use std::net::SocketAddr;
    /// use gev::udp::{DatagramCtx, DatagramHandler, UdpOptions};
    /// use gev::{Conn, Handler, Raw, Server, ServerOptions};
    ///
    /// struct Echo;
    /// impl Handler<Raw> for Echo {
    ///     fn on_message<'a>(&self, _: &mut Conn<'_, Raw>, msg: &'a [u8]) -> Option<Cow<'a, [u8]>> {
    ///         Some(Cow::Borrowed(msg))
    ///     }
    /// }
    /// impl DatagramHandler for Echo {
    ///     fn on_datagram<'a>(&self, _: &mut DatagramCtx<'_>, _: SocketAddr, data: &'a [u8]) -> Option<Cow<'a, [u8]>> {
    ///         Some(Cow::Borrowed(data))
    ///     }
    /// }
    ///
    /// let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    /// let server = Server::new(ServerOptions::new(local).loops(1), Raw, Echo)?
    ///     .with_udp(UdpOptions::new(local), Echo)?;
    /// let udp_addr = server.udp_addr().unwrap();
    /// let running = server.start()?;
    /// let client = std::net::UdpSocket::bind(local).unwrap();
    /// client.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    /// client.send_to(b"ping", udp_addr).unwrap();
    /// let mut buf = [0; 8];
    /// assert_eq!(client.recv(&mut buf).unwrap(), 4);
    /// running.stop()?;
    /// # Ok::<(), gev::Error>(())
    /// ```
    pub fn with_udp<D: crate::udp::DatagramHandler>(
        mut self,
        udp: crate::udp::UdpOptions,
        handler: D,
    ) -> Result<Self, Error> {
        if self.udp.is_some() {
            return Err(Error::Config(
                "with_udp: this server already serves UDP on its loops".into(),
            ));
        }
        let handler: Arc<dyn crate::udp::DatagramHandler> = Arc::new(handler);
        self.udp = Some(crate::udp::attach(
            &mut self.loops,
            &self.loop_metrics,
            udp,
            handler,
        )?);
        Ok(self)
    }

    /// The UDP address served on the loops (the real port), when [`with_udp`](Self::with_udp)
    /// was called.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().map(|udp| udp.addr())
    }

    /// One UDP handle per loop, in index order (empty without [`with_udp`](Self::with_udp)).
    pub fn udp_handles(&self) -> Vec<crate::udp::UdpHandle> {
        self.udp.as_ref().map_or_else(Vec::new, |udp| udp.handles())
    }

    /// The address the listener is bound to (the real port when the options asked for 0).
    /// `0.0.0.0:0` for a Unix socket: see [`listen_addr`](Self::listen_addr).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the server listens: TCP (with the real port) or the Unix socket.
    pub fn listen_addr(&self) -> ListenAddr {
        listen_addr(&self.options, self.local_addr)
    }

    /// Handles to the loops, in index order (timers, closures and `for_each_conn` queued now
    /// run once the server starts).
    pub fn loops(&self) -> Vec<LoopHandle<P>> {
        self.loops
            .iter()
            .map(|l| LoopHandle {
                shared: l.shared().clone(),
            })
            .collect()
    }

    /// Starts the loops, the acceptor and (if configured) the metrics endpoint in background
    /// threads. With one loop (and no [`ServerOptions::dedicated_acceptor`]) that loop accepts
    /// itself and there is no acceptor thread.
    pub fn start(self) -> Result<ServerHandle<P>, Error> {
        let Server {
            options,
            local_addr,
            listener,
            mut loops,
            loop_metrics,
            stats,
            udp,
        } = self;
        let metrics = match &options.metrics {
            Some((addr, path)) => {
                let server = MetricsServer::start(*addr, path, loop_metrics)?;
                tracing::info!(addr = %server.local_addr(), path = %path, "metrics endpoint started");
                Some(server)
            }
            None => None,
        };
        let (exit_tx, exit_rx) = mpsc::channel();
        let shared: Vec<Arc<LoopShared<P>>> = loops.iter().map(|l| l.shared().clone()).collect();
        let core = AcceptCore::new(
            listener,
            options.max_connections,
            options.tcp_nodelay,
            options.tcp_notsent_lowat,
            stats.clone(),
        );
        // One loop accepts for itself (no thread, no waker write per accept batch); with
        // several, one acceptor thread balances over them.
        let dedicated = if loops.len() == 1 && !options.dedicated_acceptor {
            loops[0].accept_inline(core).map_err(|source| Error::Io {
                context: "registering the listener",
                source,
            })?;
            None
        } else {
            Some(core)
        };
        let mut threads = Vec::with_capacity(loops.len() + 1);
        for event_loop in loops {
            let name = format!("gev-loop-{}", event_loop.shared().index);
            let exit = ExitNotice::new(name.clone(), exit_tx.clone());
            let thread = spawn(&name, move || {
                let mut exit = exit;
                exit.result = event_loop.run().map_err(|e| e.to_string());
            })?;
            threads.push((name, thread));
        }

        let acceptor = match dedicated {
            Some(core) => Some(spawn_acceptor(core, &options, shared.clone(), exit_tx)?),
            None => None,
        };
        let listen_addr = listen_addr(&options, local_addr);
        tracing::info!(addr = %listen_addr, loops = shared.len(), acceptor_thread = acceptor.is_some(), "server started");
        Ok(ServerHandle {
            local_addr,
            listen_addr,
            loops: shared,
            acceptor,
            threads,
            exits: exit_rx,
            stop_timeout: options.stop_timeout,
            metrics,
            stats,
            udp,
            exited: Vec::new(),
            stopped: false,
        })
    }

    /// Starts the server and blocks until one of its threads ends (which only happens on a
    /// fatal error: to stop a server, use [`start`](Self::start) and [`ServerHandle::stop`]).
    pub fn run(self) -> Result<(), Error> {
        self.start()?.wait()
    }
}

/// The dedicated acceptor thread, its waker and stop flag.
type AcceptorThread = (JoinHandle<()>, mio::Waker, Arc<AtomicBool>);

/// Starts the `gev-acceptor` thread over `core`, balancing over `loops`.
fn spawn_acceptor<P: Protocol>(
    core: AcceptCore,
    options: &ServerOptions,
    loops: Vec<Arc<LoopShared<P>>>,
    exit_tx: mpsc::Sender<(String, Result<(), String>)>,
) -> Result<AcceptorThread, Error> {
    let poll = Poll::new().map_err(|source| Error::Io {
        context: "creating the acceptor poller",
        source,
    })?;
    let waker = mio::Waker::new(poll.registry(), ACCEPTOR_WAKER).map_err(|source| Error::Io {
        context: "creating the acceptor waker",
        source,
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let balancer: Box<dyn Balancer> = match &options.load_balance {
        LoadBalance::RoundRobin => Box::new(RoundRobin::default()),
        LoadBalance::LeastConnections => Box::new(LeastConnections),
        LoadBalance::Custom(b) => Box::new(SharedBalancer(b.clone())),
    };
    let acceptor =
        Acceptor::new(poll, core, loops, balancer, stop.clone()).map_err(|source| Error::Io {
            context: "registering the listener",
            source,
        })?;
    let exit = ExitNotice::new("gev-acceptor".into(), exit_tx);
    let thread = spawn("gev-acceptor", move || {
        let mut exit = exit;
        exit.result = acceptor.run().map_err(|e| e.to_string());
    })?;
    Ok((thread, waker, stop))
}

/// Adapts the user's shared balancer to the acceptor's boxed one.
struct SharedBalancer(Arc<dyn Balancer>);

impl Balancer for SharedBalancer {
    fn pick(&self, peer: &SocketAddr, connections_per_loop: &[usize]) -> usize {
        self.0.pick(peer, connections_per_loop)
    }
}

/// Sends the thread's name and result when the thread ends, even by a panic.
struct ExitNotice {
    name: String,
    result: Result<(), String>,
    tx: mpsc::Sender<(String, Result<(), String>)>,
}

impl ExitNotice {
    fn new(name: String, tx: mpsc::Sender<(String, Result<(), String>)>) -> Self {
        ExitNotice {
            name,
            result: Err("panicked".into()),
            tx,
        }
    }
}

impl Drop for ExitNotice {
    fn drop(&mut self) {
        let result = std::mem::replace(&mut self.result, Ok(()));
        let _ = self.tx.send((std::mem::take(&mut self.name), result));
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|source| Error::Io {
            context: "spawning a server thread",
            source,
        })
}

/// The options' listen address, with the bound TCP port.
fn listen_addr(options: &ServerOptions, local_addr: SocketAddr) -> ListenAddr {
    match &options.listen {
        Some(unix) if unix.is_unix() => unix.clone(),
        _ => ListenAddr::Tcp(local_addr),
    }
}

fn bind(options: &ServerOptions) -> Result<Listener, Error> {
    match &options.listen {
        Some(ListenAddr::Unix(path)) => crate::transport::bind_unix_path(path, options.backlog),
        Some(ListenAddr::UnixAbstract(name)) => {
            crate::transport::bind_unix_abstract(name, options.backlog)
        }
        Some(ListenAddr::Tcp(_)) | None => bind_tcp(options).map(Listener::Tcp),
    }
}

fn bind_tcp(options: &ServerOptions) -> Result<TcpListener, Error> {
    use socket2::{Domain, Socket, Type};
    let addr = options.addr;
    let err = |source| Error::Bind { addr, source };
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    if options.reuse_port {
        socket.set_reuse_port(true).map_err(err)?;
    }
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(options.backlog).map_err(err)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// A running server. Dropping it stops the server (like [`stop`](Self::stop), ignoring errors).
pub struct ServerHandle<P: Protocol> {
    local_addr: SocketAddr,
    listen_addr: ListenAddr,
    loops: Vec<Arc<LoopShared<P>>>,
    /// The `gev-acceptor` thread; `None` when the single loop accepts itself.
    acceptor: Option<AcceptorThread>,
    threads: Vec<(String, JoinHandle<()>)>,
    exits: mpsc::Receiver<(String, Result<(), String>)>,
    stop_timeout: Duration,
    metrics: Option<MetricsServer>,
    stats: Arc<AcceptorStats>,
    udp: Option<crate::udp::UdpLoops>,
    /// Threads whose exit notice was already received.
    exited: Vec<String>,
    stopped: bool,
}

impl<P: Protocol> ServerHandle<P> {
    /// The listening address (`0.0.0.0:0` for a Unix socket, see
    /// [`listen_addr`](Self::listen_addr)).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the server listens: TCP (with the real port) or the Unix socket.
    pub fn listen_addr(&self) -> &ListenAddr {
        &self.listen_addr
    }

    /// Handles to the loops, in index order.
    pub fn loops(&self) -> Vec<LoopHandle<P>> {
        self.loops
            .iter()
            .map(|shared| LoopHandle {
                shared: shared.clone(),
            })
            .collect()
    }

    /// Connections currently open (all loops).
    pub fn connection_count(&self) -> usize {
        self.stats.active.load(Ordering::Relaxed)
    }

    /// Connections refused so far because of `max_connections`.
    pub fn refused_count(&self) -> u64 {
        self.stats.refused.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn accepted_count(&self) -> u64 {
        self.stats.accepted.load(Ordering::Relaxed)
    }

    /// The metrics endpoint's address, when metrics are enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.local_addr())
    }

    /// The UDP address served on the loops, when [`Server::with_udp`] was called.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().map(|udp| udp.addr())
    }

    /// The UDP sockets on the loops (address, handles, counters), when [`Server::with_udp`] was
    /// called. The value outlives the server: take it before [`stop`](Self::stop) to read the
    /// final counters after.
    pub fn udp(&self) -> Option<crate::udp::UdpLoops> {
        self.udp.clone()
    }

    /// Graceful stop: stops accepting, lets every loop flush its pending output and close its
    /// connections with `CloseReason::Shutdown`, and joins all threads, all within the stop
    /// timeout. Threads still running then are detached and reported as
    /// [`Error::StopTimeout`].
    pub fn stop(mut self) -> Result<(), Error> {
        self.stop_inner()
    }

    /// Blocks until a server thread ends on its own (a fatal error), then stops the rest.
    pub fn wait(mut self) -> Result<(), Error> {
        let failure = match self.exits.recv() {
            Ok((thread, result)) => {
                self.exited.push(thread.clone());
                result
                    .err()
                    .map(|reason| Error::ThreadFailed { thread, reason })
            }
            Err(_) => None,
        };
        let stopped = self.stop_inner();
        match failure {
            Some(e) => Err(e),
            None => stopped,
        }
    }

    fn stop_inner(&mut self) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let deadline = Instant::now() + self.stop_timeout;
        let mut failure: Option<Error> = None;
        let mut unfinished = 0;

        // 1. Stop accepting: the listener closes when the acceptor returns. A loop that accepts
        //    itself closes its listener first thing when it takes the `Stop` task (step 2).
        if let Some((thread, waker, stop)) = self.acceptor.take() {
            stop.store(true, Ordering::Release);
            if let Err(e) = waker.wake() {
                tracing::error!(error = %e, "cannot wake the acceptor");
            }
            if join_by(
                &self.exits,
                &mut self.exited,
                "gev-acceptor",
                deadline,
                &mut failure,
            ) {
                let _ = thread.join();
            } else {
                unfinished += 1;
            }
        }
        // 2. Every loop flushes and closes its connections, then exits.
        for shared in &self.loops {
            shared.tasks.push(Task::Stop { deadline });
        }
        for (name, thread) in self.threads.drain(..) {
            if join_by(
                &self.exits,
                &mut self.exited,
                &name,
                deadline + Duration::from_millis(200),
                &mut failure,
            ) {
                let _ = thread.join();
            } else {
                unfinished += 1;
            }
        }
        // 3. The metrics endpoint.
        if let Some(mut metrics) = self.metrics.take() {
            if let Err(e) = metrics.stop() {
                failure.get_or_insert(Error::Metrics(e));
            }
        }
        if unfinished > 0 {
            return Err(Error::StopTimeout {
                timeout: self.stop_timeout,
                unfinished,
            });
        }
        tracing::info!(addr = %self.local_addr, "server stopped");
        failure.map_or(Ok(()), Err)
    }
}

/// Waits until the thread `name` has reported its exit (notices of other threads that arrive
/// first are recorded in `exited`); false if the deadline passed.
fn join_by(
    exits: &mpsc::Receiver<(String, Result<(), String>)>,
    exited: &mut Vec<String>,
    name: &str,
    deadline: Instant,
    failure: &mut Option<Error>,
) -> bool {
    if let Some(pos) = exited.iter().position(|n| n == name) {
        exited.swap_remove(pos);
        return true;
    }
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match exits.recv_timeout(wait) {
            Ok((thread, result)) => {
                if let Err(reason) = result {
                    tracing::error!(thread = %thread, reason = %reason, "server thread failed");
                    failure.get_or_insert(Error::ThreadFailed {
                        thread: thread.clone(),
                        reason,
                    });
                }
                if thread == name {
                    return true;
                }
                exited.push(thread);
            }
            Err(_) => return false,
        }
    }
}

impl<P: Protocol> Drop for ServerHandle<P> {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            tracing::warn!(error = %e, "stopping the server on drop");
        }
    }
}

impl<P: Protocol> std::fmt::Debug for ServerHandle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("loops", &self.loops.len())
            .finish()
    }
}
