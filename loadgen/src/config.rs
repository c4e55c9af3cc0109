//! The validated options of one run: what the command line asked for, checked and with defaults
//! applied. Workers read it, never the raw arguments. `cli` builds it; the summary echoes it as
//! [`RunConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::framing::{FramingOptions, HttpMethod, WsMessage};
use crate::payload::PayloadSpec;
use crate::summary::RunConfig;
use crate::target::Target;

/// Default largest reply accepted (`--max-reply`): 64 MiB.
pub const DEFAULT_MAX_REPLY: usize = 64 << 20;
/// Delay before a worker reopens a connection that failed or was closed by the server.
pub const RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// Connections a worker keeps in the connecting state at once when `--connect-rate` is not set
/// (opening 10 000 at once overflows the server's accept backlog and costs 1 s SYN retries).
pub const MAX_CONNECTING_PER_THREAD: usize = 256;
/// In a request-count run, a connection slot gives up after this many consecutive failed
/// connects (so a dead server ends the run instead of retrying forever).
pub const MAX_CONSECUTIVE_CONNECT_FAILURES: u32 = 10;

/// One run's options.
#[derive(Debug, Clone)]
pub struct Config {
    /// The target as the user wrote it.
    pub target_text: String,
    pub target: Target,
    /// The address workers connect to: the first resolved one until [`crate::run::probe`]
    /// picks the first that accepts.
    pub addr: SocketAddr,
    /// Every address the target resolved to (e.g. `::1` and `127.0.0.1` for `localhost`).
    pub candidates: Vec<SocketAddr>,
    pub framing: FramingOptions,
    pub connections: usize,
    pub threads: usize,
    pub pin: bool,
    /// Connections opened per second over all threads.
    pub connect_rate: Option<f64>,
    pub timeout: Duration,
    /// Length of the measured window; `None` for a request-count run.
    pub duration: Option<Duration>,
    pub warmup: Duration,
    /// Requests to complete in the measured window (`-n`).
    pub requests: Option<u64>,
    pub payload: PayloadSpec,
    /// Closed loop: requests outstanding per connection. Open loop: the most a connection may
    /// have outstanding before it waits for a reply (its next send is then late, and the lateness
    /// shows in the corrected latency).
    pub pipeline: usize,
    /// Open-loop target, requests per second over all connections.
    pub rate: Option<f64>,
    pub verify: bool,
    pub json: bool,
    pub hdr_log: Option<PathBuf>,
    /// `--misbehave`: how many of `connections` misbehave, and how (`misbehave/`).
    pub misbehave: Option<crate::misbehave::Plan>,
    /// Wall-clock instant to start at (`--start-at`), nanoseconds since the Unix epoch.
    pub start_at: Option<u64>,
    /// TLS client settings; `None` for plain TCP.
    pub tls: Option<crate::tls::TlsSettings>,
}

impl Config {
    /// Open, TLS-handshake and close connections instead of sending requests
    /// (`--handshake-only`).
    pub fn handshake_only(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.options.handshake_only)
    }
}

impl Config {
    /// The summary's echo of these options.
    pub fn run_config(&self) -> RunConfig {
        let (size_min, size_max) = match &self.payload {
            PayloadSpec::Generated { min, max } => (*min as u64, *max as u64),
            PayloadSpec::Fixed(bytes) => (bytes.len() as u64, bytes.len() as u64),
        };
        let is_http = matches!(self.framing.kind, crate::framing::FramingKind::Http);
        let is_ws = matches!(self.framing.kind, crate::framing::FramingKind::Websocket);
        RunConfig {
            target: self.target_text.clone(),
            framing: self.framing.kind.as_str().to_string(),
            connections: self.connections as u64,
            threads: self.threads as u64,
            duration_secs: self.duration.map(|d| d.as_secs_f64()),
            warmup_secs: self.warmup.as_secs_f64(),
            requests: self.requests,
            pipeline: self.pipeline as u64,
            rate: self.rate,
            size_min,
            size_max,
            verify: self.verify,
            timeout_ms: self.timeout.as_millis() as u64,
            connect_rate: self.connect_rate,
            pin: self.pin,
            http_method: is_http.then(|| {
                match self.framing.http_method {
                    HttpMethod::Get => "GET",
                    HttpMethod::Post => "POST",
                }
                .to_string()
            }),
            ws_message: is_ws.then(|| {
                match self.framing.ws_message {
                    WsMessage::Text => "text",
                    WsMessage::Binary => "binary",
                }
                .to_string()
            }),
        }
    }

    /// Connections that run the normal workload: `connections` minus the misbehaving ones.
    pub fn well_behaved_connections(&self) -> usize {
        self.connections - self.misbehave.as_ref().map_or(0, |p| p.connections())
    }

    /// Descriptors the run needs: one per connection plus each worker's poll and timer, the
    /// standard streams and some slack for the log file and the resolver.
    pub fn descriptors_needed(&self) -> u64 {
        self.connections as u64 + 3 * self.threads as u64 + 64
    }
}
