//! The scrape endpoint: a small HTTP/1.1 server on its own thread serving Prometheus text.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{LoopMetrics, MetricsError};

/// The running metrics endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` and serves `path` from a new thread.
    pub fn start(
        addr: SocketAddr,
        path: &str,
        loops: Vec<Arc<LoopMetrics>>,
    ) -> Result<MetricsServer, MetricsError> {
        let _ = (path, loops);
        Err(MetricsError::Bind {
            addr,
            source: std::io::Error::new(std::io::ErrorKind::Unsupported, "not written yet"),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the server thread and waits for it.
    pub fn stop(&mut self) -> Result<(), MetricsError> {
        Ok(())
    }
}
