//! The first step of the data path: accepting connections. [`AcceptCore`] is the accept logic
//! itself, in one place: accept until `WouldBlock`, enforce `max_connections` before anything is
//! allocated for a connection, give it the listener's inherited socket options, skip errors
//! about one pending connection, back off when descriptors run out, count in
//! [`AcceptorStats`]. Two drivers run it:
//! - with one event loop (the default for `loops(1)`), that loop owns the listener and accepts
//!   itself (`event_loop.rs` calls [`InlineAcceptor`], token `LISTENER_TOKEN`) and registers each
//!   connection directly, the way gnet's single reactor does: no acceptor thread, no task
//!   queue, no waker write and context switch per accept batch;
//! - with several loops (or [`ServerOptions::dedicated_acceptor`](crate::ServerOptions::dedicated_acceptor)),
//!   one thread (`gev-acceptor`, [`Acceptor`]) accepts, asks the [`Balancer`] for a loop and
//!   hands the socket over through that loop's task queue (one waker write when the loop sleeps).
//!
//! `TCP_NODELAY` and `TCP_NOTSENT_LOWAT` are set once on the listener and inherited by every
//! accepted socket ([`crate::inherited_options`]), so a connection costs `accept4` alone.
//!
//! Running out of file descriptors (`EMFILE`/`ENFILE`) is logged once per episode; accepting
//! then stops for a short back-off and is retried (no exit, no spin), and recovery is logged.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::transport::{Listener, Stream};
use mio::{Events, Interest, Poll, Registry, Token};

use crate::balance::Balancer;
use crate::inherited_options::InheritedOptions;
use crate::loop_handle::{LoopShared, Task};
use crate::protocol::Protocol;

const LISTENER: Token = Token(0);
pub(crate) const ACCEPTOR_WAKER: Token = Token(1);

/// How long to stop accepting after running out of descriptors or memory.
const RESOURCE_BACKOFF: Duration = Duration::from_millis(100);
/// Minimum time between two warnings about running out of descriptors (episodes in between are
/// logged at debug level, so a server hovering at its limit does not flood the log).
const EXHAUSTION_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Minimum time between two "connection refused: max_connections" log lines.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(1);
/// Connections a loop that accepts for itself takes per iteration: the rest wait for the next
/// iteration (the loop polls without sleeping then), so a connect flood cannot hold up the
/// reads of the connections it already serves for longer than one batch of registrations.
const INLINE_ACCEPT_BATCH: usize = 128;

/// Where one [`AcceptCore::accept_all`] call stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptEnd {
    /// The queue is empty (`WouldBlock`): the listener's next edge says when there is more.
    Drained,
    /// `max` connections were taken; more may be pending, and no new edge will say so.
    Limited,
    /// Accepting must pause until this instant (descriptors ran out): the caller calls again
    /// then, since connections already pending produce no new edge.
    BackOff(Instant),
}

/// Counters the accepting side shares with the server handle.
#[derive(Debug, Default)]
pub(crate) struct AcceptorStats {
    /// Connections open in the whole server (decremented by the loops when they close one).
    pub(crate) active: Arc<AtomicUsize>,
    /// Connections refused because of `max_connections`.
    pub(crate) refused: AtomicU64,
    /// Connections accepted and handed to a loop.
    pub(crate) accepted: AtomicU64,
}

/// The listener and the accept logic, whichever thread drives it.
pub(crate) struct AcceptCore {
    listener: Listener,
    max_connections: usize,
    /// `TCP_NODELAY` / `TCP_NOTSENT_LOWAT`, inherited from the listener.
    connection_options: InheritedOptions,
    stats: Arc<AcceptorStats>,
    /// Accepting resumes at this instant (set after EMFILE/ENFILE or another accept failure).
    backoff_until: Option<Instant>,
    /// Set while backing off from EMFILE/ENFILE; cleared (and logged) on the next success.
    resource_exhausted: bool,
    last_exhaustion_warning: Option<Instant>,
    last_refusal_log: Option<Instant>,
    refused_since_log: u64,
}

impl AcceptCore {
    /// Takes the bound listener and sets the options accepted connections inherit.
    pub(crate) fn new(
        listener: Listener,
        max_connections: usize,
        tcp_nodelay: bool,
        tcp_notsent_lowat: Option<u32>,
        stats: Arc<AcceptorStats>,
    ) -> Self {
        let connection_options =
            InheritedOptions::apply_to_listener(&listener, tcp_nodelay, tcp_notsent_lowat);
        AcceptCore {
            listener,
            max_connections,
            connection_options,
            stats,
            backoff_until: None,
            resource_exhausted: false,
            last_exhaustion_warning: None,
            last_refusal_log: None,
            refused_since_log: 0,
        }
    }

    /// Registers the listener for readable edges with `token`.
    pub(crate) fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut self.listener, token, Interest::READABLE)
    }

    /// Accepts pending connections, at most `max` of them, and hands each admitted one
    /// (counted in `active` and `accepted`, options applied) to `deliver`. While a back-off
    /// runs, returns its end at once without accepting.
    pub(crate) fn accept_all(
        &mut self,
        max: usize,
        mut deliver: impl FnMut(Stream, SocketAddr),
    ) -> AcceptEnd {
        if let Some(until) = self.backoff_until {
            if Instant::now() < until {
                return AcceptEnd::BackOff(until);
            }
            self.backoff_until = None;
        }
        let mut taken = 0;
        loop {
            if taken == max {
                return AcceptEnd::Limited;
            }
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    taken += 1;
                    if self.resource_exhausted {
                        self.resource_exhausted = false;
                        tracing::debug!("accepting connections again");
                    }
                    if self.admit(&stream) {
                        deliver(stream, peer);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return AcceptEnd::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_transient_peer_error(&e) => continue,
                Err(e) if is_resource_exhaustion(&e) => {
                    if !self.resource_exhausted {
                        self.resource_exhausted = true;
                        let now = Instant::now();
                        let warn_due = self
                            .last_exhaustion_warning
                            .is_none_or(|last| now.duration_since(last) >= EXHAUSTION_LOG_INTERVAL);
                        if warn_due {
                            self.last_exhaustion_warning = Some(now);
                            tracing::warn!(error = %e, backoff_ms = RESOURCE_BACKOFF.as_millis() as u64,
                                "cannot accept: out of file descriptors or memory; backing off and retrying (raise `ulimit -n`); not logged again for 60 s");
                        } else {
                            tracing::debug!(error = %e, "cannot accept: out of file descriptors or memory; backing off");
                        }
                    }
                    return AcceptEnd::BackOff(self.back_off());
                }
                Err(e) => {
                    tracing::error!(error = %e, "accept failed; backing off");
                    return AcceptEnd::BackOff(self.back_off());
                }
            }
        }
    }

    fn back_off(&mut self) -> Instant {
        let until = Instant::now() + RESOURCE_BACKOFF;
        self.backoff_until = Some(until);
        until
    }

    /// Applies `max_connections` (checked before anything is allocated for the connection: a
    /// refused one is closed by dropping it) and counts an admitted one.
    fn admit(&mut self, stream: &Stream) -> bool {
        if self.stats.active.load(Ordering::Relaxed) >= self.max_connections {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            self.log_refusal();
            return false;
        }
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.connection_options.on_accept(stream);
        true
    }

    fn log_refusal(&mut self) {
        self.refused_since_log += 1;
        let now = Instant::now();
        let due = self
            .last_refusal_log
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_LOG_INTERVAL);
        if due {
            tracing::warn!(
                max_connections = self.max_connections,
                refused = self.refused_since_log,
                refused_total = self.stats.refused.load(Ordering::Relaxed),
                "connection(s) refused: max_connections reached"
            );
            self.last_refusal_log = Some(now);
            self.refused_since_log = 0;
        }
    }
}

/// The accept state of a loop that accepts for itself (one loop, no acceptor thread). The loop
/// marks it ready when the listener fires or a back-off timer expires, and runs
/// [`accept`](Self::accept) once per iteration.
pub(crate) struct InlineAcceptor {
    core: AcceptCore,
    /// The listener fired (or a back-off ended) since the last accept.
    ready: bool,
    /// The back-off end a loop timer is armed for, so one back-off arms one timer however many
    /// edges arrive meanwhile.
    retry_at: Option<Instant>,
    /// Connections taken per call ([`INLINE_ACCEPT_BATCH`]).
    batch: usize,
}

impl InlineAcceptor {
    /// Registers the listener in the loop's poll with `token` (epoll reports connections that
    /// queued before the registration as a first edge).
    pub(crate) fn new(mut core: AcceptCore, registry: &Registry, token: Token) -> io::Result<Self> {
        core.register(registry, token)?;
        Ok(InlineAcceptor {
            core,
            ready: false,
            retry_at: None,
            batch: INLINE_ACCEPT_BATCH,
        })
    }

    /// The listener reported readable.
    pub(crate) fn on_readable(&mut self) {
        self.ready = true;
    }

    /// The back-off timer armed by [`accept`](Self::accept) expired: accept again (pending
    /// connections produce no new edge).
    pub(crate) fn on_retry_timer(&mut self) {
        self.retry_at = None;
        self.ready = true;
    }

    /// When ready, accepts up to [`INLINE_ACCEPT_BATCH`] pending connections into `deliver`
    /// (see [`AcceptCore::accept_all`]); after a full batch it stays ready, and the loop polls
    /// without sleeping ([`is_ready`](Self::is_ready)) and takes the next batch in its next
    /// iteration. Returns a deadline for which the loop must arm a timer and then call
    /// [`on_retry_timer`](Self::on_retry_timer); `None` when no new timer is needed.
    pub(crate) fn accept(&mut self, deliver: impl FnMut(Stream, SocketAddr)) -> Option<Instant> {
        if !std::mem::take(&mut self.ready) {
            return None;
        }
        match self.core.accept_all(self.batch, deliver) {
            AcceptEnd::Drained => None,
            AcceptEnd::Limited => {
                self.ready = true;
                None
            }
            AcceptEnd::BackOff(until) if self.retry_at == Some(until) => None, // timer armed
            AcceptEnd::BackOff(until) => {
                self.retry_at = Some(until);
                Some(until)
            }
        }
    }

    /// More connections may be pending than the last batch took: the loop must not sleep.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready
    }

    /// Graceful stop: removes the listener from the loop's poll and closes it (a Unix socket
    /// file is removed with it), so new connections are refused from now on.
    pub(crate) fn close(mut self, registry: &Registry) {
        if let Err(e) = registry.deregister(&mut self.core.listener) {
            tracing::debug!(error = %e, "cannot deregister the listener");
        }
    }
}

/// The dedicated acceptor thread (`gev-acceptor`) of a server with several loops: its own poll,
/// the [`AcceptCore`], and the balancer that picks each connection's loop.
pub(crate) struct Acceptor<P: Protocol> {
    poll: Poll,
    core: AcceptCore,
    loops: Vec<Arc<LoopShared<P>>>,
    balancer: Box<dyn Balancer>,
    stop: Arc<AtomicBool>,
    /// Reused per accept: connection counts handed to the balancer.
    loads: Vec<usize>,
}

impl<P: Protocol> Acceptor<P> {
    pub(crate) fn new(
        poll: Poll,
        mut core: AcceptCore,
        loops: Vec<Arc<LoopShared<P>>>,
        balancer: Box<dyn Balancer>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        core.register(poll.registry(), LISTENER)?;
        let loads = Vec::with_capacity(loops.len());
        Ok(Acceptor {
            poll,
            core,
            loops,
            balancer,
            stop,
            loads,
        })
    }

    /// Accepts until `stop` is set (and the acceptor's waker is woken). Dropping the acceptor
    /// closes the listener.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(16);
        let mut backoff_until: Option<Instant> = None;
        loop {
            let timeout = backoff_until.map(|t| t.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if self.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            // Edge-triggered: accept until WouldBlock, whether or not the listener fired (after
            // a back-off the pending connections produce no new edge). During a back-off this
            // returns its end without accepting.
            let Acceptor {
                core,
                loops,
                balancer,
                loads,
                ..
            } = &mut self;
            let end = core.accept_all(usize::MAX, |stream, peer| {
                dispatch(loops, &**balancer, loads, stream, peer);
            });
            backoff_until = match end {
                AcceptEnd::BackOff(until) => Some(until),
                AcceptEnd::Drained | AcceptEnd::Limited => None,
            };
        }
    }
}

/// Hands an admitted connection to the loop the balancer picks, through its task queue.
fn dispatch<P: Protocol>(
    loops: &[Arc<LoopShared<P>>],
    balancer: &dyn Balancer,
    loads: &mut Vec<usize>,
    stream: Stream,
    peer: SocketAddr,
) {
    loads.clear();
    loads.extend(loops.iter().map(|l| l.connections.load(Ordering::Relaxed)));
    let index = balancer.pick(&peer, loads) % loops.len();
    let target = &loops[index];
    target.connections.fetch_add(1, Ordering::Relaxed);
    target.push(Task::Register { stream, peer });
}

/// Errors about one pending connection (it was reset before we accepted it): skip it.
fn is_transient_peer_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED) | Some(libc::EPROTO) | Some(libc::EPERM)
    ) || e.kind() == io::ErrorKind::ConnectionAborted
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream as StdStream;

    fn listener() -> (Listener, SocketAddr) {
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std.set_nonblocking(true).unwrap();
        let addr = std.local_addr().unwrap();
        (Listener::Tcp(mio::net::TcpListener::from_std(std)), addr)
    }

    /// Calls `accept_all` until `want` connections were delivered (connects on loopback reach
    /// the accept queue at once, but a loaded machine gets a generous deadline).
    fn accept_until(core: &mut AcceptCore, want: usize) -> Vec<Stream> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut delivered = Vec::new();
        while delivered.len() < want && Instant::now() < deadline {
            let end = core.accept_all(usize::MAX, |stream, _| delivered.push(stream));
            assert_eq!(end, AcceptEnd::Drained);
            std::thread::sleep(Duration::from_millis(1));
        }
        delivered
    }

    #[test]
    fn admits_up_to_max_connections_and_counts_the_rest_as_refused() {
        let (listener, addr) = listener();
        let stats = Arc::new(AcceptorStats::default());
        let mut core = AcceptCore::new(listener, 2, true, None, stats.clone());
        let _clients: Vec<StdStream> = (0..2).map(|_| StdStream::connect(addr).unwrap()).collect();
        let admitted = accept_until(&mut core, 2);
        assert_eq!(admitted.len(), 2);
        // A third is accepted and closed at once: never delivered, counted as refused.
        let _third = StdStream::connect(addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats.refused.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            core.accept_all(usize::MAX, |_, _| panic!("delivered above max_connections"));
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(stats.refused.load(Ordering::Relaxed), 1);
        assert_eq!(stats.accepted.load(Ordering::Relaxed), 2);
        assert_eq!(stats.active.load(Ordering::Relaxed), 2);
        // A loop closing one (it decrements `active`) makes room again.
        stats.active.fetch_sub(1, Ordering::Relaxed);
        let _fourth = StdStream::connect(addr).unwrap();
        assert_eq!(accept_until(&mut core, 1).len(), 1);
        assert_eq!(stats.accepted.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_loop_acceptor_accepts_only_when_marked_ready() {
        let (listener, addr) = listener();
        let poll = Poll::new().unwrap();
        let core = AcceptCore::new(listener, usize::MAX, false, None, Default::default());
        let mut acceptor = InlineAcceptor::new(core, poll.registry(), Token(5)).unwrap();
        let _client = StdStream::connect(addr).unwrap();
        let mut delivered = 0;
        assert!(acceptor.accept(|_, _| delivered += 1).is_none());
        assert_eq!(delivered, 0, "not ready: the listener is not touched");
        let deadline = Instant::now() + Duration::from_secs(10);
        while delivered == 0 && Instant::now() < deadline {
            acceptor.on_readable();
            assert!(acceptor.accept(|_, _| delivered += 1).is_none());
        }
        assert_eq!(delivered, 1);
        acceptor.close(poll.registry());
        assert!(
            StdStream::connect(addr).is_err(),
            "the listener is closed by close()"
        );
    }

    #[test]
    fn a_batch_stops_at_max_and_says_more_may_be_pending() {
        let (listener, addr) = listener();
        let mut core = AcceptCore::new(listener, usize::MAX, false, None, Default::default());
        let _clients: Vec<StdStream> = (0..5).map(|_| StdStream::connect(addr).unwrap()).collect();
        let mut delivered = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        // The first batches take 2 each and report `Limited`; once fewer than 2 remain, the
        // queue drains. Loopback connects reach the queue at once, but allow a loaded machine.
        let mut ends = Vec::new();
        while delivered.len() < 5 && Instant::now() < deadline {
            let end = core.accept_all(2, |stream, _| delivered.push(stream));
            if end == AcceptEnd::Limited {
                assert_eq!(delivered.len() % 2, 0, "a limited batch took exactly 2");
            }
            ends.push(end);
        }
        assert_eq!(delivered.len(), 5);
        assert!(
            ends.starts_with(&[AcceptEnd::Limited, AcceptEnd::Limited]),
            "{ends:?}"
        );
        assert_eq!(
            core.accept_all(2, |_, _| panic!("nothing is pending")),
            AcceptEnd::Drained
        );
    }

    #[test]
    fn a_loop_acceptor_stays_ready_after_a_full_batch() {
        let (listener, addr) = listener();
        let poll = Poll::new().unwrap();
        let core = AcceptCore::new(listener, usize::MAX, false, None, Default::default());
        let mut acceptor = InlineAcceptor::new(core, poll.registry(), Token(5)).unwrap();
        acceptor.batch = 4; // the real batch (128) would need a deeper listen backlog here
        let _clients: Vec<StdStream> = (0..6).map(|_| StdStream::connect(addr).unwrap()).collect();
        // A loopback connect returns once the handshake is done; the server side joins the
        // accept queue when the final ACK is processed, at once unless softirqs are deferred.
        std::thread::sleep(Duration::from_millis(300));
        let mut delivered = 0;
        acceptor.on_readable();
        assert!(acceptor.accept(|_, _| delivered += 1).is_none());
        assert_eq!(delivered, 4, "one batch per call");
        assert!(
            acceptor.is_ready(),
            "a full batch leaves the acceptor ready"
        );
        // Without a new edge, the next call takes the rest and the acceptor is idle again.
        assert!(acceptor.accept(|_, _| delivered += 1).is_none());
        assert_eq!(delivered, 6);
        assert!(!acceptor.is_ready());
        assert!(acceptor.accept(|_, _| delivered += 1).is_none());
        assert_eq!(delivered, 6, "not ready: the listener is not touched");
    }
}
