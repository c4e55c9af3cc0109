//! gev-loadgen: a load generator for TCP, WebSocket and HTTP/1.1 servers that is honest about
//! latency (work in progress: the summary types are final, the generator follows).
//!
//! The harness reads one thing from this crate: [`Summary`], the typed form of `loadgen --json`.
//!
//! ```
//! let text = r#"{"schema":"gev-loadgen/0"}"#;
//! assert!(gev_loadgen::Summary::from_json(text).is_err());
//! ```

pub mod summary;

pub use summary::{
    Connections, Env, Percentiles, Requests, RunConfig, Summary, SummaryError, Throughput,
    TimePoint, SCHEMA,
};
pub mod framing;
