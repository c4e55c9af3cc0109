//! UDP on a stream server's loops ([`Server::with_udp`](crate::Server::with_udp)): one
//! `SO_REUSEPORT` socket per `gev-loop-N`, registered in that loop's `mio::Poll` beside its
//! connections, so one set of threads serves TCP/Unix streams and datagrams.
//!
//! The event loop only dispatches: the socket's readiness goes to [`UdpPort::on_event`], each
//! iteration runs one [`UdpPort::turn`] (the same datagram path a standalone loop runs), and its
//! graceful stop waits for the port's output as it waits for connections. Sends from other
//! threads ([`UdpHandle::send_to`]) queue on the port and wake the loop with a no-op task on the
//! loop's own task queue (a `mio::Poll` takes one waker; the no-op closure is zero-sized, so the
//! wakeup allocates nothing).

use std::net::SocketAddr;
use std::sync::Arc;

use super::port::{UdpPort, UdpShared};
use super::server::{bind_sockets, UdpHandle};
use super::{sum_counters, DatagramHandler, UdpCounters, UdpOptions, UdpStats};
use crate::error::Error;
use crate::event_loop::EventLoop;
use crate::handler::Handler;
use crate::loop_handle::Task;
use crate::metrics::LoopMetrics;
use crate::protocol::Protocol;

/// The UDP sockets on a stream server's loops, as [`ServerHandle::udp`](crate::ServerHandle::udp)
/// gives them: the bound address, one handle and the counters per loop (Clone; readable after
/// the server stopped).
#[derive(Clone)]
pub struct UdpLoops {
    addr: SocketAddr,
    handles: Vec<UdpHandle>,
    stats: Vec<Arc<UdpStats>>,
}

impl UdpLoops {
    /// The bound address (the real port when the options asked for 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// One handle per loop, in index order.
    pub fn handles(&self) -> Vec<UdpHandle> {
        self.handles.clone()
    }

    /// The counters summed over the loops.
    pub fn counters(&self) -> UdpCounters {
        sum_counters(&self.stats)
    }
}

/// Binds one socket per loop to `options.addr` (`options.loops` is ignored: one per stream
/// loop) and gives each loop its port; with metrics on, each loop's metrics carry its counters.
impl std::fmt::Debug for UdpLoops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpLoops")
            .field("addr", &self.addr)
            .field("loops", &self.handles.len())
            .finish()
    }
}

pub(crate) fn attach<P: Protocol, H: Handler<P>>(
    loops: &mut [EventLoop<P, H>],
    metrics: &[Arc<LoopMetrics>],
    options: UdpOptions,
    handler: Arc<dyn DatagramHandler>,
) -> Result<UdpLoops, Error> {
    let (addr, sockets) = bind_sockets(&options, loops.len())?;
    let mut handles = Vec::with_capacity(loops.len());
    let mut stats = Vec::with_capacity(loops.len());
    for (index, (event_loop, socket)) in loops.iter_mut().zip(sockets).enumerate() {
        let loop_shared = event_loop.shared().clone();
        let wake = Box::new(move || loop_shared.tasks.push(Task::Run(Box::new(|| {}))));
        let shared = Arc::new(UdpShared::new(options.max_output_datagrams, wake));
        let loop_stats = Arc::new(UdpStats::default());
        if let Some(m) = metrics.get(index) {
            m.attach_udp(loop_stats.clone());
        }
        let port = UdpPort::new(
            index,
            socket,
            handler.clone(),
            shared,
            loop_stats.clone(),
            options.clone(),
        );
        handles.push(port.handle().clone());
        stats.push(loop_stats);
        event_loop.attach_udp(port).map_err(|source| Error::Io {
            context: "registering a UDP socket in an event loop",
            source,
        })?;
    }
    tracing::debug!(%addr, loops = loops.len(), "UDP sockets attached to the stream loops");
    Ok(UdpLoops {
        addr,
        handles,
        stats,
    })
}
