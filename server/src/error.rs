//! The errors of the reactor, one enum per kind of caller: [`Error`] for building, starting and
//! stopping a server, [`ProtocolError`] for a frame that broke a protocol rule (it closes that
//! connection only), and [`SendError`] for a [`ConnHandle::send`](crate::ConnHandle::send) that
//! could not be queued.

use std::net::SocketAddr;
use std::time::Duration;

/// What went wrong while building, starting or stopping a [`Server`](crate::Server).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be created, bound or put into listening state.
    #[error("cannot listen on {addr}: {source} (is the port in use, or the address not local?)")]
    Bind {
        /// The address from [`ServerOptions::addr`](crate::ServerOptions::addr).
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A Unix socket could not be bound.
    #[error("cannot listen on {path}: {source}")]
    BindUnix {
        /// `unix:/path` or `unix:@name`.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The Unix socket path is taken (a live server, or a file that is not a socket).
    #[error("cannot listen on {path}: {reason}")]
    UnixPathInUse {
        /// `unix:/path` or `unix:@name`.
        path: String,
        /// Why the path cannot be used.
        reason: &'static str,
    },
    /// A [`ServerOptions`](crate::ServerOptions) value breaks a rule (the message names it).
    #[error("invalid server options: {0}")]
    Config(String),
    /// An I/O call of the reactor itself failed (creating a poller, a waker, a thread).
    #[error("{context}: {source}")]
    Io {
        /// What the reactor was doing.
        context: &'static str,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The metrics endpoint could not be started or stopped.
    #[error("metrics endpoint: {0}")]
    Metrics(#[from] crate::metrics::MetricsError),
    /// Some server threads had not finished when the stop timeout expired; they were detached.
    #[error("{unfinished} server thread(s) still running after the stop timeout of {timeout:?}")]
    StopTimeout {
        /// [`ServerOptions::stop_timeout`](crate::ServerOptions::stop_timeout).
        timeout: Duration,
        /// How many threads were left running.
        unfinished: usize,
    },
    /// A server thread (acceptor or loop) ended with an error or a panic.
    #[error("server thread {thread} failed: {reason}")]
    ThreadFailed {
        /// The thread name (`gev-acceptor`, `gev-loop-N`).
        thread: String,
        /// The error or panic message.
        reason: String,
    },
}

/// Which framing rule an input broke. Returned by [`Protocol::unpack`](crate::Protocol::unpack);
/// the loop logs it, flushes what the protocol already wrote to the output and closes the
/// connection with [`CloseReason::Protocol`](crate::CloseReason::Protocol).
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// A frame announced a size above the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The announced size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The bytes do not follow the protocol's grammar (the message says how).
    #[error("malformed input: {0}")]
    Malformed(String),
    /// Any other reason, from a protocol implemented outside this crate.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// Why [`ConnHandle::send`](crate::ConnHandle::send) did not queue a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection is closed (or closing); the handle will never reach it again.
    #[error("connection is closed")]
    Closed,
    /// The connection's pending output is above its high watermark; retry after it drains.
    #[error("connection output is above its high watermark")]
    WouldBlock,
}
