//! Prometheus metrics for the reactor: per-loop counters recorded on the event loops' hot path,
//! and a small HTTP endpoint that renders them in the Prometheus text format 0.0.4.
//!
//! Data path: each event loop records into its own [`LoopMetrics`] (single writer, no contended
//! atomics, see `counter.rs`); [`MetricsServer`] runs on its own thread and, for each scrape,
//! takes a [`LoopSnapshot`] of every loop and renders it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gev::metrics::{LoopMetrics, MetricsServer};
//!
//! let loops: Vec<Arc<LoopMetrics>> = (0..2).map(|i| Arc::new(LoopMetrics::new(i))).collect();
//! let mut server = MetricsServer::start("127.0.0.1:9091".parse().unwrap(), "/metrics", loops.clone())?;
//! loops[0].on_accept();
//! println!("metrics on http://{}/metrics", server.local_addr());
//! server.stop()?;
//! # Ok::<(), gev::metrics::MetricsError>(())
//! ```

mod close_kind;
mod counter;
mod error;
mod histogram;
mod http;
mod loop_metrics;
mod process;
mod render;
mod server;
mod udp;

pub use close_kind::CloseKind;
pub use error::MetricsError;
pub use histogram::{ITERATION_BUCKETS, ITERATION_BUCKET_BOUNDS_NS};
pub use loop_metrics::{LoopMetrics, LoopSnapshot};
pub use server::{MetricsServer, MetricsServerOptions};
