//! The first step of the data path: one thread (`gev-acceptor`) accepts connections, enforces
//! `max_connections` before anything is allocated for them, asks the [`Balancer`] for a loop and
//! hands the socket over through that loop's task queue. `TCP_NODELAY` and `TCP_NOTSENT_LOWAT`
//! are set once on the listener and inherited by every accepted socket
//! ([`crate::inherited_options`]), so a connection costs the acceptor `accept4` and, when the
//! loop sleeps, one waker write.
//!
//! Running out of file descriptors (`EMFILE`/`ENFILE`) is logged once per episode; the acceptor
//! then stops accepting for a short back-off and retries (no exit, no spin), and logs when it
//! recovers.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::transport::{Listener, Stream};
use mio::{Events, Interest, Poll, Token};

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

/// Counters the acceptor shares with the server handle.
#[derive(Debug, Default)]
pub(crate) struct AcceptorStats {
    /// Connections open in the whole server (decremented by the loops when they close one).
    pub(crate) active: Arc<AtomicUsize>,
    /// Connections refused because of `max_connections`.
    pub(crate) refused: AtomicU64,
    /// Connections accepted and handed to a loop.
    pub(crate) accepted: AtomicU64,
}

pub(crate) struct Acceptor<P: Protocol> {
    poll: Poll,
    listener: Listener,
    loops: Vec<Arc<LoopShared<P>>>,
    balancer: Box<dyn Balancer>,
    max_connections: usize,
    /// `TCP_NODELAY` / `TCP_NOTSENT_LOWAT`, inherited from the listener.
    connection_options: InheritedOptions,
    stats: Arc<AcceptorStats>,
    stop: Arc<AtomicBool>,
    /// Reused per accept: connection counts handed to the balancer.
    loads: Vec<usize>,
    /// Set while backing off from EMFILE/ENFILE; cleared (and logged) on the next success.
    resource_exhausted: bool,
    last_exhaustion_warning: Option<Instant>,
    last_refusal_log: Option<Instant>,
    refused_since_log: u64,
}

impl<P: Protocol> Acceptor<P> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        poll: Poll,
        mut listener: Listener,
        loops: Vec<Arc<LoopShared<P>>>,
        balancer: Box<dyn Balancer>,
        max_connections: usize,
        tcp_nodelay: bool,
        tcp_notsent_lowat: Option<u32>,
        stats: Arc<AcceptorStats>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        let connection_options =
            InheritedOptions::apply_to_listener(&listener, tcp_nodelay, tcp_notsent_lowat);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let loads = Vec::with_capacity(loops.len());
        Ok(Acceptor {
            poll,
            listener,
            loops,
            balancer,
            max_connections,
            connection_options,
            stats,
            stop,
            loads,
            resource_exhausted: false,
            last_exhaustion_warning: None,
            last_refusal_log: None,
            refused_since_log: 0,
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
            if backoff_until.is_some_and(|until| Instant::now() < until) {
                continue; // still backing off; the listener is re-checked after it
            }
            // Edge-triggered: accept until WouldBlock, whether or not the listener fired (after
            // a back-off the pending connections produce no new edge).
            backoff_until = self.accept_all();
        }
    }

    /// Accepts every pending connection; returns a back-off deadline if resources ran out.
    fn accept_all(&mut self) -> Option<Instant> {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if self.resource_exhausted {
                        self.resource_exhausted = false;
                        tracing::debug!("accepting connections again");
                    }
                    self.dispatch(stream, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
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
                    return Some(Instant::now() + RESOURCE_BACKOFF);
                }
                Err(e) => {
                    tracing::error!(error = %e, "accept failed; backing off");
                    return Some(Instant::now() + RESOURCE_BACKOFF);
                }
            }
        }
    }

    fn dispatch(&mut self, stream: Stream, peer: SocketAddr) {
        // The limit is checked before anything is allocated for the connection.
        if self.stats.active.load(Ordering::Relaxed) >= self.max_connections {
            drop(stream);
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            self.log_refusal();
            return;
        }
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.connection_options.on_accept(&stream);
        self.loads.clear();
        self.loads.extend(
            self.loops
                .iter()
                .map(|l| l.connections.load(Ordering::Relaxed)),
        );
        let index = self.balancer.pick(&peer, &self.loads) % self.loops.len();
        let target = &self.loops[index];
        target.connections.fetch_add(1, Ordering::Relaxed);
        target.push(Task::Register { stream, peer });
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
