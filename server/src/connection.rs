//! The connection: what a loop keeps per socket ([`Connection`], never leaves its loop) and the
//! two views users get of it. [`Conn`] is the connection inside a callback on its loop thread
//! (sends pack straight into the output buffer); [`ConnHandle`] is a cloneable reference usable
//! from any thread (its operations travel through the loop's task queue, and the [`ConnId`]'s
//! generation makes sure they never reach a later connection that reused the slab slot).

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::SendError;
use crate::handler::CloseReason;
use crate::loop_handle::{LoopHandle, LoopShared, Task};
use crate::options::Backpressure;
use crate::output_buffer::OutputBuffer;
use crate::protocol::Protocol;
use crate::ring_buffer::RingBuffer;
use crate::tls::session::TlsSession;
pub use crate::tls::TlsInfo;

/// Identifies one connection for the server's lifetime: its loop, its slab slot and a
/// generation unique within the loop (so a reused slot gets a different id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub(crate) loop_index: u16,
    pub(crate) key: u32,
    pub(crate) generation: u64,
}

impl ConnId {
    /// Index of the owning loop.
    pub fn loop_index(&self) -> usize {
        self.loop_index as usize
    }

    pub(crate) fn key(&self) -> usize {
        self.key as usize
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.loop_index, self.key, self.generation)
    }
}

/// The part of a connection that handles on other threads can observe. Allocated only when a
/// handle is first taken.
#[derive(Debug, Default)]
pub(crate) struct ConnShared {
    pub(crate) closed: AtomicBool,
    pub(crate) pending_output: AtomicUsize,
    /// Set when the output went above the high watermark, cleared when it drained to the low
    /// watermark: handle sends fail in between (hysteresis, like reading).
    pub(crate) blocked: AtomicBool,
}

/// Whether `shutdown_write` was asked for / done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum WriteShutdown {
    #[default]
    No,
    Requested,
    Done,
}

/// One socket on a loop: the stream, the protocol state and the buffers.
pub(crate) struct Connection<P: Protocol> {
    pub(crate) stream: crate::transport::Stream,
    pub(crate) decoder: P::Decoder,
    /// Bytes of an incomplete frame (empty and unallocated most of the time).
    pub(crate) input: RingBuffer,
    pub(crate) core: ConnCore<P>,
    /// The TLS session when the server speaks TLS (boxed: one pointer on plain TCP).
    pub(crate) tls: Option<Box<TlsSession>>,
}

impl<P: Protocol> Connection<P> {
    /// True while something waits to be written: packed output, or TLS records (handshake,
    /// sealed data, alerts) rustls holds.
    #[inline]
    pub(crate) fn has_unsent(&self) -> bool {
        !self.core.output.is_empty() || self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }
}

/// The connection state a [`Conn`] may touch while the input is borrowed by a message.
pub(crate) struct ConnCore<P: Protocol> {
    pub(crate) id: ConnId,
    pub(crate) peer_addr: SocketAddr,
    pub(crate) encoder: P::Encoder,
    pub(crate) output: OutputBuffer,
    pub(crate) context: Option<Box<dyn Any + Send>>,
    pub(crate) shared: Option<Arc<ConnShared>>,
    pub(crate) last_active: Instant,
    /// Set once the connection is closing: no more reads; closes when the output is flushed or
    /// the linger expires.
    pub(crate) closing: Option<CloseReason>,
    pub(crate) write_shutdown: WriteShutdown,
    pub(crate) reading_paused: bool,
    /// The poller reported the peer's hang-up (or an error): read until EOF instead of
    /// stopping at a short read, since no further edge will come.
    pub(crate) peer_hung_up: bool,
    pub(crate) in_flush_list: bool,
    pub(crate) linger_armed: bool,
    /// The loop iteration this connection last had a read turn in (`EventLoop::read_deferred`).
    pub(crate) read_in_iteration: u64,
    /// What the TLS handshake agreed (set when it completed; `None` on plain TCP).
    pub(crate) tls_info: Option<Box<TlsInfo>>,
}

impl<P: Protocol> ConnCore<P> {
    pub(crate) fn new(id: ConnId, peer_addr: SocketAddr, now: Instant) -> Self {
        ConnCore {
            id,
            peer_addr,
            encoder: P::Encoder::default(),
            output: OutputBuffer::default(),
            context: None,
            shared: None,
            last_active: now,
            closing: None,
            write_shutdown: WriteShutdown::No,
            reading_paused: false,
            peer_hung_up: false,
            in_flush_list: false,
            linger_armed: false,
            read_in_iteration: 0,
            tls_info: None,
        }
    }

    /// Publishes the pending output size to handles (only if one was taken), and whether they
    /// must stop sending (above `high` until drained to `low`).
    #[inline]
    pub(crate) fn publish_pending(&self, high: usize, low: usize) {
        if let Some(shared) = &self.shared {
            let pending = self.output.pending();
            shared.pending_output.store(pending, Ordering::Relaxed);
            if pending > high {
                shared.blocked.store(true, Ordering::Relaxed);
            } else if pending <= low {
                shared.blocked.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Starts closing (keeps the first reason).
    pub(crate) fn begin_close(&mut self, reason: CloseReason) {
        if self.closing.is_none() {
            self.closing = Some(reason);
        }
    }
}

/// The connection as a handler sees it on its loop thread.
pub struct Conn<'c, P: Protocol> {
    pub(crate) core: &'c mut ConnCore<P>,
    pub(crate) protocol: &'c P,
    pub(crate) shared: &'c Arc<LoopShared<P>>,
}

impl<'c, P: Protocol> Conn<'c, P> {
    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.core.id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.core.peer_addr
    }

    /// A handle usable from any thread.
    pub fn handle(&mut self) -> ConnHandle<P> {
        let state = self
            .core
            .shared
            .get_or_insert_with(|| Arc::new(ConnShared::default()))
            .clone();
        state
            .pending_output
            .store(self.core.output.pending(), Ordering::Relaxed);
        ConnHandle {
            id: self.core.id,
            peer_addr: self.core.peer_addr,
            state,
            owner: self.shared.clone(),
        }
    }

    /// Packs `reply` into the output buffer now; it is written at the end of this loop
    /// iteration (also after [`close`](Self::close): closing flushes first).
    pub fn send(&mut self, reply: P::Reply<'_>) {
        self.protocol
            .pack(&mut self.core.encoder, reply, self.core.output.vec_mut());
        if let Some(metrics) = &self.shared.metrics {
            metrics.on_messages_out(1);
        }
    }

    /// Shuts down the writing half once the pending output is flushed (the peer reads EOF);
    /// reading continues.
    pub fn shutdown_write(&mut self) {
        if self.core.write_shutdown == WriteShutdown::No {
            self.core.write_shutdown = WriteShutdown::Requested;
        }
    }

    /// Closes the connection after its pending output is flushed (at most
    /// [`ServerOptions::close_linger`](crate::ServerOptions::close_linger)); no more messages
    /// are delivered.
    pub fn close(&mut self) {
        self.core.begin_close(CloseReason::Local);
    }

    /// True once the connection is closing (no more input will be delivered).
    pub fn is_closing(&self) -> bool {
        self.core.closing.is_some()
    }

    /// What the TLS handshake agreed (ALPN protocol, server name, version, resumption), or
    /// `None` on plain TCP. Set before `on_connect` runs.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.core.tls_info.as_deref()
    }

    /// Bytes packed but not yet written to the socket.
    pub fn pending_output(&self) -> usize {
        self.core.output.pending()
    }

    /// Stores per-connection state, replacing any previous value.
    pub fn set_context<T: Any + Send>(&mut self, value: T) {
        self.core.context = Some(Box::new(value));
    }

    /// The stored state, if it is a `T`.
    pub fn context<T: Any + Send>(&self) -> Option<&T> {
        self.core.context.as_ref()?.downcast_ref()
    }

    /// The stored state, mutably, if it is a `T`.
    pub fn context_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.core.context.as_mut()?.downcast_mut()
    }

    /// Removes and returns the stored state if it is a `T` (otherwise leaves it).
    pub fn take_context<T: Any + Send>(&mut self) -> Option<T> {
        let boxed = self.core.context.take()?;
        match boxed.downcast::<T>() {
            Ok(value) => Some(*value),
            Err(other) => {
                self.core.context = Some(other);
                None
            }
        }
    }

    /// The owning loop (for timers on this connection's thread).
    pub fn loop_handle(&self) -> LoopHandle<P> {
        LoopHandle {
            shared: self.shared.clone(),
        }
    }
}

/// A reference to a connection usable from any thread. Operations are queued to the owning loop
/// and applied in order; once the connection is closed they fail with [`SendError::Closed`]
/// (or are ignored for `close`/`shutdown_write`), and never reach another connection.
pub struct ConnHandle<P: Protocol> {
    id: ConnId,
    peer_addr: SocketAddr,
    state: Arc<ConnShared>,
    owner: Arc<LoopShared<P>>,
}

impl<P: Protocol> Clone for ConnHandle<P> {
    fn clone(&self) -> Self {
        ConnHandle {
            id: self.id,
            peer_addr: self.peer_addr,
            state: self.state.clone(),
            owner: self.owner.clone(),
        }
    }
}

impl<P: Protocol> fmt::Debug for ConnHandle<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnHandle")
            .field("id", &self.id)
            .field("peer_addr", &self.peer_addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<P: Protocol> ConnHandle<P> {
    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// True once the loop closed the connection.
    pub fn is_closed(&self) -> bool {
        self.state.closed.load(Ordering::Acquire)
    }

    /// Queues `reply` to be packed and sent by the owning loop (in its next iteration).
    ///
    /// Fails with [`SendError::Closed`] if the connection is closed, and with
    /// [`SendError::WouldBlock`] once its pending output went above the high watermark, until
    /// it drained to the low watermark (with
    /// [`Backpressure::Close`] the connection is closed instead and `Closed` is returned).
    pub fn send(&self, reply: P::Reply<'static>) -> Result<(), SendError> {
        if self.is_closed() {
            return Err(SendError::Closed);
        }
        if self.state.blocked.load(Ordering::Relaxed)
            || self.state.pending_output.load(Ordering::Relaxed) > self.owner.output_high_watermark
        {
            return match self.owner.backpressure {
                Backpressure::PauseReading => Err(SendError::WouldBlock),
                Backpressure::Close => {
                    self.owner
                        .push(Task::Close(self.id, CloseReason::Backpressure));
                    Err(SendError::Closed)
                }
            };
        }
        self.owner.push(Task::Send { id: self.id, reply });
        Ok(())
    }

    /// Shuts down the writing half after the output queued so far is flushed.
    pub fn shutdown_write(&self) {
        if !self.is_closed() {
            self.owner.push(Task::ShutdownWrite(self.id));
        }
    }

    /// Closes the connection after its pending output is flushed (bounded linger).
    pub fn close(&self) {
        if !self.is_closed() {
            self.owner.push(Task::Close(self.id, CloseReason::Local));
        }
    }

    /// The owning loop.
    pub fn loop_handle(&self) -> LoopHandle<P> {
        LoopHandle {
            shared: self.owner.clone(),
        }
    }
}
