//! Errors of the metrics endpoint: what went wrong starting or stopping the scrape server.

use std::net::SocketAddr;
use std::time::Duration;

/// An error from [`MetricsServer`](super::MetricsServer).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The scrape path must be an absolute URL path such as `/metrics`.
    #[error("metrics path {path:?} must start with '/' and contain no spaces, '?' or '#'")]
    InvalidPath {
        /// The rejected path.
        path: String,
    },
    /// The listening socket could not be bound.
    #[error("cannot bind the metrics endpoint to {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Setting up the poller, waker or server thread failed.
    #[error("cannot start the metrics server: {0}")]
    Io(#[from] std::io::Error),
    /// The server thread did not finish within the stop timeout (it is left detached).
    #[error("the metrics server thread did not stop within {0:?}")]
    StopTimeout(Duration),
    /// The server thread panicked.
    #[error("the metrics server thread panicked")]
    ThreadPanicked,
}
