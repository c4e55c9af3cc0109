//! What other threads hold of a loop: [`LoopShared`] (its task queue, counters and settings
//! handles need) and the public [`LoopHandle`] built on it. Every operation becomes a [`Task`]
//! run on the loop thread, so connection state is only ever touched by its loop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::connection::{Conn, ConnId};
use crate::handler::CloseReason;
use crate::metrics::LoopMetrics;
use crate::options::Backpressure;
use crate::protocol::Protocol;
use crate::task_queue::TaskQueue;
use crate::timer::{TimerCallback, TimerId};

/// A callback applied to every connection of a loop.
pub(crate) type ConnVisitor<P> = Box<dyn FnMut(&mut Conn<'_, P>) + Send>;

/// Work sent to a loop through its queue.
pub(crate) enum Task<P: Protocol> {
    /// A connection accepted for this loop.
    Register {
        stream: crate::transport::Stream,
        peer: SocketAddr,
    },
    Send {
        id: ConnId,
        reply: P::Reply<'static>,
    },
    ShutdownWrite(ConnId),
    Close(ConnId, CloseReason),
    Timer {
        id: TimerId,
        deadline: Instant,
        callback: TimerCallback,
    },
    Cancel(TimerId),
    ForEachConn(ConnVisitor<P>),
    Run(Box<dyn FnOnce() + Send>),
    /// Graceful stop: flush, close everything with `Shutdown` by `deadline`, exit.
    Stop {
        deadline: Instant,
    },
}

/// The state of a loop shared with other threads.
pub(crate) struct LoopShared<P: Protocol> {
    pub(crate) index: usize,
    pub(crate) tasks: TaskQueue<Task<P>>,
    pub(crate) next_timer: AtomicU64,
    /// Open connections (incremented by the acceptor when it hands one over).
    pub(crate) connections: AtomicUsize,
    pub(crate) loop_thread: OnceLock<ThreadId>,
    /// Set when the loop thread has exited; later tasks are dropped.
    pub(crate) exited: AtomicBool,
    pub(crate) metrics: Option<Arc<LoopMetrics>>,
    pub(crate) output_high_watermark: usize,
    pub(crate) backpressure: Backpressure,
}

impl<P: Protocol> LoopShared<P> {
    /// Queues a task, waking the loop only when called from another thread.
    pub(crate) fn push(&self, task: Task<P>) {
        if self.exited.load(Ordering::Acquire) {
            return;
        }
        if self.is_loop_thread() {
            self.tasks.push_local(task);
        } else {
            self.tasks.push(task);
        }
    }

    pub(crate) fn is_loop_thread(&self) -> bool {
        self.loop_thread.get() == Some(&std::thread::current().id())
    }
}

/// A handle to one event loop, usable from any thread: timers and closures that run on the loop
/// thread.
///
/// ```
/// use std::time::Duration;
/// use std::borrow::Cow;
/// use gev::{Conn, Handler, Raw, Server, ServerOptions};
///
/// struct Quiet;
/// impl Handler<Raw> for Quiet {
///     fn on_message<'a>(&self, _: &mut Conn<'_, Raw>, _: &'a [u8]) -> Option<Cow<'a, [u8]>> { None }
/// }
/// let server = Server::new(ServerOptions::new("127.0.0.1:0".parse().unwrap()).loops(1), Raw, Quiet)?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// server.loops()[0].run_after(Duration::from_millis(10), move || tx.send(()).unwrap());
/// let handle = server.start()?;
/// rx.recv_timeout(Duration::from_secs(5)).unwrap();
/// handle.stop()?;
/// # Ok::<(), gev::Error>(())
/// ```
pub struct LoopHandle<P: Protocol> {
    pub(crate) shared: Arc<LoopShared<P>>,
}

impl<P: Protocol> Clone for LoopHandle<P> {
    fn clone(&self) -> Self {
        LoopHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<P: Protocol> std::fmt::Debug for LoopHandle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopHandle")
            .field("index", &self.shared.index)
            .finish()
    }
}

impl<P: Protocol> LoopHandle<P> {
    /// The loop's index (its thread is `gev-loop-INDEX`).
    pub fn index(&self) -> usize {
        self.shared.index
    }

    /// Connections currently owned by the loop.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// True when called on this loop's thread.
    pub fn is_loop_thread(&self) -> bool {
        self.shared.is_loop_thread()
    }

    fn next_timer_id(&self) -> TimerId {
        TimerId(self.shared.next_timer.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs `f` once on the loop thread after `delay` (measured from this call).
    pub fn run_after<F>(&self, delay: Duration, f: F) -> TimerId
    where
        F: FnOnce() + Send + 'static,
    {
        let id = self.next_timer_id();
        self.shared.push(Task::Timer {
            id,
            deadline: Instant::now() + delay,
            callback: TimerCallback::Once(Box::new(f)),
        });
        id
    }

    /// Runs `f` on the loop thread every `interval` (at least 1 ms), first after one interval,
    /// until cancelled. A late run does not cause a burst of catch-up runs.
    pub fn run_every<F>(&self, interval: Duration, f: F) -> TimerId
    where
        F: FnMut() + Send + 'static,
    {
        let interval = interval.max(Duration::from_millis(1));
        let id = self.next_timer_id();
        self.shared.push(Task::Timer {
            id,
            deadline: Instant::now() + interval,
            callback: TimerCallback::Every {
                interval,
                callback: Box::new(f),
            },
        });
        id
    }

    /// Cancels a timer of this loop; a no-op if it already ran (`run_after`) or was cancelled.
    pub fn cancel(&self, id: TimerId) {
        self.shared.push(Task::Cancel(id));
    }

    /// Calls `f` on the loop thread for every open connection of the loop (e.g. to push a
    /// message to all of them).
    pub fn for_each_conn<F>(&self, f: F)
    where
        F: FnMut(&mut Conn<'_, P>) + Send + 'static,
    {
        self.shared.push(Task::ForEachConn(Box::new(f)));
    }

    /// Runs `f` once on the loop thread, as soon as possible.
    pub fn execute<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.shared.push(Task::Run(Box::new(f)));
    }
}
