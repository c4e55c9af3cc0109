//! gev-loadgen: a load generator for TCP, WebSocket and HTTP/1.1 servers that is honest about
//! latency. It replaces tcpkali, wrk2, oha and memtier for the gev benchmarks.
//!
//! The data path, one file per step: [`schedule`] (when each request is due: closed loop with
//! `--pipeline`, or open loop at `-R` with intended send times) -> [`framing`] (encode) ->
//! [`worker`] (write, read, one `mio::Poll` per thread) -> [`framing`] (decode) -> [`record`]
//! (HdrHistograms per thread, merged at the end) -> [`summary`] / [`printer`] (report).
//! Around it: [`cli`] and [`config`] (arguments), [`target`], [`payload`], [`conn`] (one
//! connection's state), [`tls`] (TLS client settings and the TLS stream; the handshake steps are
//! in `worker_tls.rs`), [`error_kind`] (what is counted when things fail), [`monitor`] (live
//! progress), [`hdr_log`] (`--hdr-log`), [`mod@env`] (machine description), [`sys`] (rlimit, timerfd,
//! thread CPU time) and [`run`] (threads and collection).
//!
//! The harness reads one thing from this crate: [`Summary`], the typed form of `loadgen --json`.
//!
//! ```
//! use gev_loadgen::{Summary, SCHEMA};
//! // What the harness does with `loadgen --json` output:
//! let text = r#"{"schema":"gev-loadgen/0"}"#;
//! assert!(Summary::from_json(text).is_err());
//! assert_eq!(SCHEMA, "gev-loadgen/1");
//! ```
//!
//! # Dependencies
//! `mio` (event loops), `socket2`/`libc` (socket options, rlimit, timerfd, thread CPU time),
//! `hdrhistogram` (latency recording and V2 encoding), `clap`/`humantime` (arguments),
//! `serde`/`serde_json` (the summary), `thiserror`/`anyhow` (errors), `httparse` (HTTP responses
//! and the WebSocket handshake), `sha1`/`base64` (WebSocket accept key, histogram encoding),
//! `rand` (payload choice and WebSocket masks), `indicatif` (live progress), `core_affinity`
//! (`--pin`), `signal-hook` (stop cleanly on Ctrl-C with a summary), `rustls` with the `ring`
//! provider (`tls://`, `https://`, `wss://`: the same TLS stack as gev and the tokio-rustls
//! reference, driven from the mio loop without blocking). Tests and benches:
//! `proptest` (decoders under arbitrary fragmentation), `tempfile`, `criterion`
//! (`benches/hot_path.rs`).

pub mod cli;
pub mod config;
pub mod conn;
pub mod env;
pub mod error_kind;
pub mod framing;
pub mod hdr_log;
pub mod misbehave;
pub mod monitor;
pub mod payload;
pub mod printer;
pub mod record;
pub mod run;
pub mod schedule;
pub mod summary;
pub mod sys;
pub mod target;
pub mod tls;
pub mod tls_sessions;
pub mod udp;
pub mod unix;
pub mod worker;

pub use summary::{
    Connections, Env, MisbehaveKind, Misbehaving, Percentiles, Requests, RunConfig, Summary,
    SummaryError, Throughput, TimePoint, TlsSummary, SCHEMA,
};
