//! The typed `results.json` of a harness sweep (schema "gev-harness/1"): where the figures came
//! from, what was asked for, every run as loadgen reported it, and one summary per
//! server × loop count × load point.
//!
//! Data path: `harness sweep` -> runs (server + loadgen processes) -> **[`Results`]** ->
//! `results.json` -> plots and pages. The harness writes this file and the reports crate reads
//! it; neither calls into the other at run time, so a report can be re-rendered from the file
//! alone (`harness report DIR`). The types live here, in the reports crate, so the reader needs
//! no harness code. Add fields with `#[serde(default)]` so older files still read; change the
//! meaning of a field only together with [`SCHEMA`].
//!
//! Units are in the field names: `_us` microseconds, `_secs` seconds, `_rps` completed requests
//! per second of the measured window.
//!
//! ```
//! use gev_reports::results::{Results, SCHEMA};
//!
//! let text = format!(
//!     r#"{{"schema":"{SCHEMA}","created":"2026-01-01T00:00:00Z",
//!         "environment":{{"cpu":"x","cores":2,"kernel":"6","rustc":"1.85","git_commit":null}},
//!         "spec":{{"servers":[],"loops":[1],"connections":[8],"payload_sizes":[64],
//!                  "framings":["raw"],"rates":[null],"pipeline":1,"duration_secs":1.0,
//!                  "warmup_secs":0.5,"repeats":1}},
//!         "runs":[],"summaries":[]}}"#
//! );
//! let results = Results::from_json(&text).unwrap();
//! assert!(results.runs.is_empty());
//! ```

use std::fmt;

use gev_loadgen::Summary;
use serde::{Deserialize, Serialize};

/// The value of [`Results::schema`] this version writes.
pub const SCHEMA: &str = "gev-harness/1";

/// Everything one sweep produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA`] for this layout.
    pub schema: String,
    /// When the sweep started, RFC 3339 UTC (`2026-11-25T13:45:00Z`).
    pub created: String,
    /// The machine and build that produced the figures.
    pub environment: Environment,
    /// The sweep as it was run (defaults applied, servers resolved to commands).
    pub spec: SpecRecord,
    /// Every run that completed, in the order it ran (repeats interleaved across servers).
    pub runs: Vec<RunRecord>,
    /// One summary per server × loop count × load point, in spec order.
    pub summaries: Vec<PointSummary>,
    /// Runs that could not be measured (server did not start, loadgen failed), in run order.
    #[serde(default)]
    pub failures: Vec<RunFailure>,
    /// Caveats about the whole sweep (pinning fallback, machine load), for the report.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The hosts of a multi-host sweep (server and client hosts reached over SSH); absent when
    /// everything ran on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<HostsRecord>,
}

/// Where the figures came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// CPU model name (from /proc/cpuinfo), or `unknown`.
    pub cpu: String,
    /// Logical cores available to the harness.
    pub cores: u32,
    /// Kernel release (`uname -r`), or `unknown`.
    pub kernel: String,
    /// `rustc --version`, or `unknown`.
    pub rustc: String,
    /// `git rev-parse HEAD` of the workspace (with `-dirty` when the tree had changes), if known.
    pub git_commit: Option<String>,
    /// How server and loadgen were placed on cores, e.g. `server on cores 0, loadgen on 1
    /// (taskset)` or why they were not pinned.
    #[serde(default)]
    pub pinning: String,
    /// The 1-, 5- and 15-minute load averages when the sweep started (from /proc/loadavg).
    #[serde(default)]
    pub load_average: Option<[f64; 3]>,
    /// The harness version that wrote the file.
    #[serde(default)]
    pub harness_version: String,
}

/// The sweep as it was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecRecord {
    /// Servers in spec order; references included.
    pub servers: Vec<ServerRecord>,
    /// Loop counts (event loops, worker threads) every server ran with.
    pub loops: Vec<u32>,
    /// Client connection counts.
    pub connections: Vec<u64>,
    /// Request payload sizes in bytes.
    pub payload_sizes: Vec<u64>,
    /// loadgen framings (`raw`, `length`, `websocket`, `http`).
    pub framings: Vec<String>,
    /// Offered rates in requests per second; `null` is a closed-loop point.
    pub rates: Vec<Option<f64>>,
    /// Requests outstanding per connection in closed-loop points.
    pub pipeline: u64,
    /// Measured time of each run.
    pub duration_secs: f64,
    /// Warm-up before measuring, each run.
    pub warmup_secs: f64,
    /// Runs of each point per server.
    pub repeats: u32,
    /// The spec file, if the sweep was read from one.
    #[serde(default)]
    pub source: Option<String>,
    /// The spec file's text as given, so a sweep can be repeated exactly.
    #[serde(default)]
    pub text: Option<String>,
    /// How the servers' runs of a point were placed in time: `alternating` (one server at a
    /// time, repeats interleaved A B C A B C) or `side-by-side` (every server of the point at
    /// the same moment on the same server cores, each with its own loadgen). `None` in files
    /// written before the key existed, which were alternating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The transports of the sweep's points (`tcp`, `unix`, `udp`); empty in files written
    /// before transports, which were TCP only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<PointTransport>,
}

/// One server of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRecord {
    /// The name runs and summaries refer to.
    pub name: String,
    /// The command template, with `{port}` and `{loops}` placeholders.
    pub command: String,
    /// Whether this server is a reference others are compared against.
    pub reference: bool,
    /// Whether the server was started with `--metrics` and scraped before and after each run.
    #[serde(default)]
    pub metrics: bool,
    /// The command templates it ran with at the other transports' points (issue 15), by
    /// transport name (`unix`: with a `{path}` placeholder, `udp`: its datagram variant); empty
    /// when the sweep was TCP only.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub transport_commands: std::collections::BTreeMap<String, String>,
}

/// The load of one point, everything but the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointParams {
    /// Event loops (worker threads) the server ran with.
    pub loops: u32,
    /// loadgen framing.
    pub framing: String,
    /// Client connections.
    pub connections: u64,
    /// Request payload bytes.
    pub payload_size: u64,
    /// Requests outstanding per connection (closed loop).
    pub pipeline: u64,
    /// Offered rate in requests per second; `None` for closed loop.
    pub rate: Option<f64>,
    /// Measured time.
    pub duration_secs: f64,
    /// Warm-up before measuring.
    pub warmup_secs: f64,
    /// TLS at this point (issue 14); absent in results written before TLS, which were plain.
    #[serde(default, skip_serializing_if = "PointTls::is_off")]
    pub tls: PointTls,
    /// The transport of this point (issue 15): `tcp`, `unix` or `udp`; absent in results
    /// written before transports, which were TCP.
    #[serde(default)]
    pub transport: PointTransport,
}

/// How a point's requests travel: TCP, a Unix stream socket or UDP datagrams.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PointTransport {
    /// TCP over loopback (the server's `--host 127.0.0.1 --port P`).
    #[default]
    Tcp,
    /// A Unix stream socket (`--listen unix:PATH`, loadgen `unix:PATH`).
    Unix,
    /// UDP datagrams (the server's datagram variant, loadgen `udp://ADDR`): one request is one
    /// datagram, lost ones are counted apart and are not latency samples.
    Udp,
}

impl PointTransport {
    /// Every transport, in the order sweeps list them.
    pub const ALL: [PointTransport; 3] = [
        PointTransport::Tcp,
        PointTransport::Unix,
        PointTransport::Udp,
    ];

    /// The spec's and the JSON's name: `tcp`, `unix`, `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            PointTransport::Tcp => "tcp",
            PointTransport::Unix => "unix",
            PointTransport::Udp => "udp",
        }
    }

    /// How a label names it: `TCP`, `Unix socket`, `UDP`.
    pub fn label(self) -> &'static str {
        match self {
            PointTransport::Tcp => "TCP",
            PointTransport::Unix => "Unix socket",
            PointTransport::Udp => "UDP",
        }
    }

    pub fn is_tcp(&self) -> bool {
        *self == PointTransport::Tcp
    }
}

impl fmt::Display for PointTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PointTransport {
    type Err = String;

    fn from_str(text: &str) -> Result<PointTransport, String> {
        PointTransport::ALL
            .into_iter()
            .find(|t| t.as_str() == text)
            .ok_or_else(|| {
                format!("{text:?} is not a transport; write \"tcp\", \"unix\" or \"udp\"")
            })
    }
}

/// Whether a point runs over TLS, and whether it measures requests or handshakes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointTls {
    /// Plain TCP.
    #[default]
    Off,
    /// Requests over TLS connections (`loadgen --tls`).
    On,
    /// `loadgen --handshake-only --tls-resume on`: "requests" are handshakes, most resumed.
    HandshakesResumed,
    /// `loadgen --handshake-only --tls-resume off`: every handshake a full one.
    HandshakesFull,
}

impl PointTls {
    pub fn is_off(&self) -> bool {
        *self == PointTls::Off
    }

    /// A handshake-only point.
    pub fn is_handshakes(&self) -> bool {
        matches!(self, PointTls::HandshakesResumed | PointTls::HandshakesFull)
    }

    /// How a label names it (empty for plain TCP).
    pub fn label(&self) -> &'static str {
        match self {
            PointTls::Off => "",
            PointTls::On => "TLS",
            PointTls::HandshakesResumed => "TLS handshakes (resumed)",
            PointTls::HandshakesFull => "TLS handshakes (full)",
        }
    }
}

impl PointParams {
    /// Whether two points apply the same load at the same loop count (rates compared exactly:
    /// both come from the same spec).
    pub fn same_point(&self, other: &PointParams) -> bool {
        self == other
    }

    /// A short label of the load without the loop count: `raw 64 B, 50 conns, 20000 req/s`.
    pub fn load_label(&self) -> String {
        let mut label = format!(
            "{} {} B, {} conns",
            self.framing, self.payload_size, self.connections
        );
        if self.pipeline > 1 {
            label.push_str(&format!(", pipeline {}", self.pipeline));
        }
        match self.rate {
            Some(rate) => label.push_str(&format!(", {rate} req/s")),
            None => label.push_str(", closed loop"),
        }
        if !self.tls.is_off() {
            label.push_str(&format!(", {}", self.tls.label()));
        }
        if !self.transport.is_tcp() {
            label.push_str(&format!(", {}", self.transport.label()));
        }
        label
    }

    /// [`PointParams`]'s display form, naming TCP too when `name_tcp` (a sweep over several
    /// transports, where a label without one would be ambiguous).
    pub fn describe(&self, name_tcp: bool) -> String {
        if name_tcp && self.transport.is_tcp() {
            format!("{self}, {}", self.transport.label())
        } else {
            self.to_string()
        }
    }
}

impl fmt::Display for PointParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loops={} {}", self.loops, self.load_label())
    }
}

/// How the server process ended after the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerExit {
    /// Exited with status 0 within the stop timeout of SIGINT.
    Clean {
        /// Time from SIGINT to exit.
        after_secs: f64,
    },
    /// Exited within the timeout, but not with status 0.
    Failed {
        /// The exit status as the OS reports it (`exit status: 1`, `signal: 11`).
        status: String,
    },
    /// Still running at the stop timeout; killed with SIGKILL.
    Killed {
        /// The stop timeout that passed.
        timeout_secs: f64,
    },
    /// The server exited before it was asked to (during the run).
    Early {
        /// The exit status as the OS reports it.
        status: String,
    },
}

impl ServerExit {
    /// Whether the server stopped as the contract says (status 0 within the timeout).
    pub fn is_clean(&self) -> bool {
        matches!(self, ServerExit::Clean { .. })
    }
}

/// One run: one server, one point, one repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The server's name.
    pub server: String,
    /// The load.
    pub point: PointParams,
    /// Repeat index, from 0.
    pub repeat: u32,
    /// The address the server listened on.
    pub addr: String,
    /// loadgen's full `--json` summary of the measured window.
    pub summary: Summary,
    /// CPU time the server used (all threads) from the end of warm-up to the end of the run.
    #[serde(default)]
    pub server_cpu_secs: Option<f64>,
    /// The wall-clock time `server_cpu_secs` was read over (end of warm-up to loadgen's exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_window_secs: Option<f64>,
    /// Which cores the server and loadgen were confined to in this run, if they were pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// The server's Prometheus text just before loadgen started, if it was run with metrics.
    #[serde(default)]
    pub metrics_before: Option<String>,
    /// The server's Prometheus text just after loadgen finished.
    #[serde(default)]
    pub metrics_after: Option<String>,
    /// How the server stopped.
    pub server_exit: ServerExit,
    /// In a multi-host sweep, each client host's own part of the run; `summary` is then their
    /// lossless merge (histograms added, counts summed). Empty for a run from this machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostRun>,
}

/// One client host's share of a multi-host run, as its loadgen reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRun {
    /// The client host's name in the hosts table.
    pub host: String,
    /// Connections this host opened (its segment of the point's connections).
    pub connections: u64,
    /// Its segment of the offered rate, requests per second; `None` for closed loop.
    pub rate: Option<f64>,
    /// Its clock's offset from this machine's (remote - local), measured before the sweep, in
    /// microseconds; used to align the time series.
    pub clock_offset_us: f64,
    /// That host's loadgen `--json` summary, unmodified.
    pub summary: Summary,
}

/// The hosts a multi-host sweep ran on and what was checked before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostsRecord {
    /// Where the server ran.
    pub server: HostRecord,
    /// Where the load generators ran, in segment order.
    pub clients: Vec<HostRecord>,
    /// The largest clock offset a run accepts, microseconds; the sweep refuses to start beyond.
    pub max_clock_offset_us: f64,
    /// How the path RTT was measured.
    pub rtt_method: String,
    /// Wall time of the host checks (reachability, binaries, environment, server start-up
    /// check), seconds.
    pub check_secs: f64,
    /// Wall time of the clock-offset measurement, seconds.
    pub clock_secs: f64,
    /// Wall time of the RTT measurement, seconds.
    #[serde(default)]
    pub rtt_secs: f64,
}

/// One host of a multi-host sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// Its name in the hosts table.
    pub name: String,
    /// How it was reached: `local`, or `ssh user@host -p PORT`.
    pub reached_by: String,
    /// The address clients use (server) or the host's own address (clients).
    pub address: String,
    /// CPU model, or `unknown`.
    pub cpu: String,
    /// Online cores (`nproc`).
    pub cores: u32,
    /// Kernel release.
    pub kernel: String,
    /// Cores its process was pinned to (`taskset -c`), if any.
    #[serde(default)]
    pub cpus: Option<String>,
    /// Share of the load (clients; the segments are proportional to it).
    #[serde(default)]
    pub weight: u64,
    /// Clock offset remote - local, microseconds (NTP-style, from the lowest-RTT exchange).
    pub clock_offset_us: f64,
    /// Round trip of the exchange the offset came from, microseconds.
    pub clock_rtt_us: f64,
    /// How its binaries were made the same as the local build (`sha256 matched`, `copied`).
    pub binaries: String,
    /// Clients: the path RTT to the server measured before the sweep with `ping` on the client
    /// host (ICMP echo, the network path alone).
    #[serde(default)]
    pub rtt: Option<PathRtt>,
    /// Clients: TCP connect time to the server port measured by loadgen on the client host (the
    /// path plus the generator's own scheduling).
    #[serde(default)]
    pub tcp_connect: Option<PathRtt>,
}

/// The round trip from a client host to the server host, measured before the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PathRtt {
    /// Median, microseconds.
    pub median_us: f64,
    /// Smallest, microseconds.
    pub min_us: f64,
    /// Samples taken.
    pub samples: u64,
}

/// The cores a run's server and loadgen were confined to, and loadgen's thread count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Cores the server process could run on.
    pub server_cores: Vec<usize>,
    /// Cores the loadgen process could run on.
    pub loadgen_cores: Vec<usize>,
    /// loadgen worker threads (`-t`).
    pub loadgen_threads: u32,
}

impl RunRecord {
    /// The server's own UDP counters over this run, from its metrics scrapes (`None` unless it
    /// served UDP with a metrics endpoint).
    pub fn server_udp(&self) -> Option<ServerUdpCounters> {
        ServerUdpCounters::from_scrapes(
            self.metrics_before.as_deref(),
            self.metrics_after.as_deref()?,
        )
    }

    /// Completed requests in the measured window (throughput × window length).
    pub fn completed_in_window(&self) -> f64 {
        self.summary.throughput.rps * self.summary.duration_secs
    }

    /// Server CPU time per completed request in microseconds: the server process's CPU time
    /// over the measured window (every thread, including the softirq work the kernel charges to
    /// it) divided by the requests completed in it. `None` when the CPU time was not readable or
    /// nothing completed.
    pub fn server_cpu_us_per_request(&self) -> Option<f64> {
        let completed = self.completed_in_window();
        let cpu = self.server_cpu_secs?;
        (completed > 0.0 && cpu.is_finite()).then(|| cpu * 1e6 / completed)
    }

    /// loadgen's CPU time (its worker threads over the measured window, as loadgen reports it)
    /// in seconds; `None` when the summary carries no per-thread CPU figures.
    pub fn generator_cpu_secs(&self) -> Option<f64> {
        let percent = &self.summary.generator_cpu_percent;
        (!percent.is_empty())
            .then(|| percent.iter().sum::<f64>() / 100.0 * self.summary.duration_secs)
    }

    /// Generator CPU time per completed request in microseconds.
    pub fn generator_cpu_us_per_request(&self) -> Option<f64> {
        let completed = self.completed_in_window();
        let cpu = self.generator_cpu_secs()?;
        (completed > 0.0 && cpu.is_finite()).then(|| cpu * 1e6 / completed)
    }
}

/// A run that produced no summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFailure {
    /// The server's name.
    pub server: String,
    /// The load.
    pub point: PointParams,
    /// Repeat index, from 0.
    pub repeat: u32,
    /// What went wrong, one line.
    pub error: String,
}

/// A median with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The median over repeats.
    pub median: f64,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Nominal coverage, e.g. 0.95.
    pub confidence: f64,
}

/// Latency percentiles of a point in microseconds: each is the median over repeats of the runs'
/// corrected (intended-time) percentiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyPercentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// A server's throughput relative to a reference server at the same point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRatio {
    /// The reference server's name.
    pub reference: String,
    /// This server's throughput over the reference's, with its 95% interval: paired by repeat
    /// (geometric mean of the per-repeat ratios, Student-t interval on their logs) when both
    /// ran the same repeats, else the ratio of medians with a bootstrap interval.
    pub throughput: Interval,
    /// This server's CPU time per request over the reference's (lower is better), computed as
    /// `throughput`. Absent when either side's CPU time was not readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_per_request: Option<Interval>,
}

/// The summary of one server at one point over its repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSummary {
    /// The server's name.
    pub server: String,
    /// The load.
    pub point: PointParams,
    /// Completed runs summarised.
    pub runs: u32,
    /// Completed requests per second: median over repeats and its 95% bootstrap interval.
    pub throughput_rps: Interval,
    /// Latency percentiles.
    pub latency_us: LatencyPercentiles,
    /// Errors of every kind summed over the runs.
    pub errors: u64,
    /// Throughput ratio to every reference server that ran this point (empty for a reference
    /// compared with itself).
    pub ratios: Vec<ReferenceRatio>,
    /// Server CPU time per completed request, microseconds: median over repeats with its 95%
    /// bootstrap interval (see [`RunRecord::server_cpu_us_per_request`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_request: Option<Interval>,
    /// The same for the load generator (its worker threads' CPU time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_cpu_us_per_request: Option<Interval>,
    /// What limited the runs of this point, from measured CPU utilisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitReading>,
    /// UDP points: loadgen's datagram counters summed over the runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datagrams: Option<DatagramCounts>,
    /// Points over a Unix socket or UDP: this server here against the same server at the same
    /// load over TCP (what the kernel's TCP path costs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_tcp: Option<TransportRatio>,
    /// UDP points of a server scraped for metrics: its own `gev_udp_*` counters summed over the
    /// runs, with datagrams per receive and per send syscall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_udp: Option<ServerUdpCounters>,
}

/// A gev UDP server's own counters (its `gev_udp_*_total` Prometheus families, summed over its
/// loops) over runs: how much each grew between the scrape before loadgen started and the one
/// after it finished (so the warm-up is included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerUdpCounters {
    /// Datagrams received and handed to the handler.
    pub datagrams_received: u64,
    /// Datagrams the kernel accepted for sending.
    pub datagrams_sent: u64,
    /// Replies dropped because the loop's output queue was full (socket buffer full).
    pub dropped_output_full: u64,
    /// Datagrams longer than the server's `max_datagram`, dropped.
    pub dropped_oversized: u64,
    /// Datagrams the kernel refused to send.
    pub send_errors: u64,
    /// Receive syscalls (`recvmmsg`, or `recvfrom` without batching), empty ones included.
    pub recv_batches: u64,
    /// Send syscalls (`sendmmsg`, or `sendto` without batching).
    pub send_batches: u64,
    /// `datagrams_received / recv_batches` (absent when there was no receive call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datagrams_per_recv_call: Option<f64>,
    /// `datagrams_sent / send_batches` (absent when there was no send call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datagrams_per_send_call: Option<f64>,
}

impl ServerUdpCounters {
    /// The counters' growth from the `before` scrape to the `after` one; `None` when `after`
    /// has no `gev_udp_*` families (a stream server, or a server without metrics).
    pub fn from_scrapes(before: Option<&str>, after: &str) -> Option<ServerUdpCounters> {
        let delta = |name: &str| {
            crate::prometheus::counter_delta(before, after, &format!("gev_udp_{name}_total"))
        };
        Some(
            ServerUdpCounters {
                datagrams_received: delta("datagrams_received")?,
                datagrams_sent: delta("datagrams_sent")?,
                dropped_output_full: delta("dropped_output_full").unwrap_or(0),
                dropped_oversized: delta("dropped_oversized").unwrap_or(0),
                send_errors: delta("send_errors").unwrap_or(0),
                recv_batches: delta("recv_batches")?,
                send_batches: delta("send_batches")?,
                ..ServerUdpCounters::default()
            }
            .with_per_call(),
        )
    }

    /// Datagrams dropped by the server, for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_output_full + self.dropped_oversized + self.send_errors
    }

    fn with_per_call(self) -> ServerUdpCounters {
        let per = |n: u64, calls: u64| (calls > 0).then(|| n as f64 / calls as f64);
        ServerUdpCounters {
            datagrams_per_recv_call: per(self.datagrams_received, self.recv_batches),
            datagrams_per_send_call: per(self.datagrams_sent, self.send_batches),
            ..self
        }
    }
}

/// loadgen's datagram counters (`Summary::datagrams`) summed over a UDP point's runs: only
/// datagrams intended for the measured windows. A datagram is lost when no reply came within
/// loadgen's `--timeout`; a reply after that is `late` (the datagram stays lost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatagramCounts {
    /// Datagrams sent.
    pub sent: u64,
    /// Replies received in time (each a latency sample).
    pub received: u64,
    /// Datagrams without a reply in time.
    pub lost: u64,
    /// Extra replies to a datagram already answered.
    pub duplicated: u64,
    /// Replies that came after the reply to a later datagram of the same flow.
    pub reordered: u64,
    /// Replies that came after their datagram was counted lost.
    pub late: u64,
}

impl DatagramCounts {
    /// The counters of one loadgen summary, if it ran over UDP.
    pub fn of(summary: &Summary) -> Option<DatagramCounts> {
        summary.datagrams.as_ref().map(|d| DatagramCounts {
            sent: d.sent,
            received: d.received,
            lost: d.lost,
            duplicated: d.duplicated,
            reordered: d.reordered,
            late: d.late,
        })
    }

    /// Lost datagrams as a fraction of those sent (0 when none were sent).
    pub fn loss_fraction(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.lost as f64 / self.sent as f64
        }
    }
}

impl std::ops::Add for DatagramCounts {
    type Output = DatagramCounts;

    /// Both added up (a point's runs).
    fn add(self, other: DatagramCounts) -> DatagramCounts {
        DatagramCounts {
            sent: self.sent + other.sent,
            received: self.received + other.received,
            lost: self.lost + other.lost,
            duplicated: self.duplicated + other.duplicated,
            reordered: self.reordered + other.reordered,
            late: self.late + other.late,
        }
    }
}

impl std::ops::Add for ServerUdpCounters {
    type Output = ServerUdpCounters;

    /// Both counters summed (a point's runs), per-call figures recomputed.
    fn add(self, other: ServerUdpCounters) -> ServerUdpCounters {
        let mut sum = self;
        for (counter, more) in [
            (&mut sum.datagrams_received, other.datagrams_received),
            (&mut sum.datagrams_sent, other.datagrams_sent),
            (&mut sum.dropped_output_full, other.dropped_output_full),
            (&mut sum.dropped_oversized, other.dropped_oversized),
            (&mut sum.send_errors, other.send_errors),
            (&mut sum.recv_batches, other.recv_batches),
            (&mut sum.send_batches, other.send_batches),
        ] {
            *counter += more;
        }
        sum.with_per_call()
    }
}

/// A server at a Unix-socket or UDP point against itself at the TCP twin of the point (same
/// load and loop count). The two points ran one after the other, not paired, so each is the
/// ratio of medians with a bootstrap interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportRatio {
    /// Throughput here over throughput over TCP (above 1: this transport carries more).
    pub throughput: Interval,
    /// Server CPU per request here over that over TCP (below 1: cheaper); absent when either
    /// side's CPU time was not readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_per_request: Option<Interval>,
}

/// Utilisation at or above which a side counts as saturated (a fraction of the cores it could
/// use). Below 1 because a busy-polling-free server that is CPU-bound still sleeps between
/// readiness events, and other processes on a shared machine take slices of its cores.
pub const SATURATED_UTILISATION: f64 = 0.85;

/// What limited a point's throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The server's cores were saturated; the generator was not.
    Server,
    /// The generator was saturated; the server's cores were not.
    Generator,
    /// Both were saturated.
    Both,
    /// Neither was: round trips (latency), the offered rate, or the rest of the machine.
    Neither,
}

impl Limit {
    /// From the two utilisations and [`SATURATED_UTILISATION`].
    pub fn from_utilisation(server: f64, generator: f64) -> Limit {
        match (
            server >= SATURATED_UTILISATION,
            generator >= SATURATED_UTILISATION,
        ) {
            (true, true) => Limit::Both,
            (true, false) => Limit::Server,
            (false, true) => Limit::Generator,
            (false, false) => Limit::Neither,
        }
    }
}

/// A point's utilisations (medians over its repeats) and what they say limited it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LimitReading {
    /// Fraction of the server cores the run could use that were busy with server processes:
    /// server CPU time / (window × min(server cores, loops)). Side by side: every server of the
    /// point together, since they share the cores.
    pub server_utilisation: f64,
    /// The generator's: the larger of its busiest thread's busy fraction and the loadgen cores'
    /// busy fraction (every loadgen of the point together, side by side).
    pub generator_utilisation: f64,
    /// The reading of the two against [`SATURATED_UTILISATION`].
    pub limit: Limit,
}

/// Why a results file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("results are not valid gev-harness JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("results schema is {found:?}, this reader understands {SCHEMA:?}")]
    Schema { found: String },
}

impl Results {
    /// Parse results from JSON, checking the schema.
    pub fn from_json(text: &str) -> Result<Results, ResultsError> {
        let results: Results = serde_json::from_str(text)?;
        if results.schema != SCHEMA {
            return Err(ResultsError::Schema {
                found: results.schema,
            });
        }
        Ok(results)
    }

    /// The JSON form, pretty-printed.
    pub fn to_json(&self) -> String {
        // Plain structs with string keys; non-finite floats serialise as null, so this cannot
        // fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The completed runs of one server at one point, in repeat order.
    pub fn runs_of<'a>(
        &'a self,
        server: &'a str,
        point: &'a PointParams,
    ) -> impl Iterator<Item = &'a RunRecord> + 'a {
        self.runs
            .iter()
            .filter(move |run| run.server == server && run.point.same_point(point))
    }

    /// The names of the reference servers, in spec order.
    pub fn references(&self) -> Vec<&str> {
        self.spec
            .servers
            .iter()
            .filter(|server| server.reference)
            .map(|server| server.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> PointParams {
        PointParams {
            loops: 2,
            framing: "raw".into(),
            connections: 8,
            payload_size: 64,
            pipeline: 1,
            rate: None,
            duration_secs: 1.0,
            warmup_secs: 0.5,
            tls: PointTls::Off,
            transport: PointTransport::Tcp,
        }
    }

    #[test]
    fn tls_is_optional_in_points() {
        let plain = serde_json::to_value(point()).unwrap();
        assert!(plain.get("tls").is_none());
        let mut tls = point();
        tls.tls = PointTls::HandshakesResumed;
        let text = serde_json::to_string(&tls).unwrap();
        assert!(text.contains("\"tls\":\"handshakes_resumed\""), "{text}");
        let back: PointParams = serde_json::from_str(&text).unwrap();
        assert_eq!(back, tls);
        assert!(tls.load_label().ends_with("TLS handshakes (resumed)"));
        let old: PointParams = serde_json::from_value(plain).unwrap();
        assert!(old.tls.is_off());
    }

    #[test]
    fn transport_is_on_every_point_and_defaults_to_tcp() {
        let tcp = serde_json::to_value(point()).unwrap();
        assert_eq!(tcp["transport"], "tcp");
        let mut udp = point();
        udp.transport = PointTransport::Udp;
        assert!(udp.load_label().ends_with(", UDP"), "{}", udp.load_label());
        assert_eq!(udp.describe(true), udp.to_string());
        assert!(point().describe(true).ends_with(", TCP"));
        assert!(!point().describe(false).contains("TCP"));
        let mut old = tcp.clone();
        old.as_object_mut().unwrap().remove("transport");
        let parsed: PointParams = serde_json::from_value(old).unwrap();
        assert!(parsed.transport.is_tcp());
        assert_eq!("unix".parse::<PointTransport>(), Ok(PointTransport::Unix));
        assert!("sctp"
            .parse::<PointTransport>()
            .unwrap_err()
            .contains("\"sctp\""));
        let counts = DatagramCounts {
            sent: 100,
            received: 90,
            lost: 10,
            duplicated: 1,
            reordered: 2,
            late: 3,
        };
        assert_eq!((counts + counts).lost, 20);
        assert!((counts.loss_fraction() - 0.1).abs() < 1e-12);
        assert_eq!(DatagramCounts::default().loss_fraction(), 0.0);
    }

    fn empty() -> Results {
        Results {
            schema: SCHEMA.into(),
            created: "2026-11-25T13:45:00Z".into(),
            environment: Environment {
                cpu: "test cpu".into(),
                cores: 2,
                kernel: "6.1".into(),
                rustc: "rustc 1.85".into(),
                git_commit: Some("abc".into()),
                pinning: "none".into(),
                load_average: Some([0.5, 0.4, 0.3]),
                harness_version: "0.1.0".into(),
            },
            spec: SpecRecord {
                servers: vec![ServerRecord {
                    name: "ref-mio-echo".into(),
                    command: "ref-mio-echo --port {port} --threads {loops}".into(),
                    reference: true,
                    metrics: false,
                    transport_commands: Default::default(),
                }],
                loops: vec![1, 2],
                connections: vec![8],
                payload_sizes: vec![64],
                framings: vec!["raw".into()],
                rates: vec![None, Some(1000.0)],
                pipeline: 1,
                duration_secs: 1.0,
                warmup_secs: 0.5,
                repeats: 2,
                source: None,
                text: None,
                schedule: None,
                transports: Vec::new(),
            },
            runs: Vec::new(),
            summaries: vec![PointSummary {
                server: "ref-mio-echo".into(),
                point: point(),
                runs: 2,
                throughput_rps: Interval {
                    median: 10.0,
                    low: 9.0,
                    high: 11.0,
                    confidence: 0.95,
                },
                latency_us: LatencyPercentiles::default(),
                errors: 0,
                ratios: Vec::new(),
                server_cpu_us_per_request: None,
                generator_cpu_us_per_request: None,
                limit: None,
                datagrams: None,
                vs_tcp: None,
                server_udp: None,
            }],
            failures: vec![RunFailure {
                server: "ref-mio-echo".into(),
                point: point(),
                repeat: 1,
                error: "did not start".into(),
            }],
            notes: vec!["a note".into()],
            hosts: None,
        }
    }

    #[test]
    fn round_trips_through_json() {
        let results = empty();
        let parsed = Results::from_json(&results.to_json()).unwrap();
        assert_eq!(parsed, results);
        assert_eq!(parsed.references(), vec!["ref-mio-echo"]);
    }

    #[test]
    fn rejects_another_schema() {
        let mut results = empty();
        results.schema = "gev-harness/0".into();
        match Results::from_json(&results.to_json()) {
            Err(ResultsError::Schema { found }) => assert_eq!(found, "gev-harness/0"),
            other => panic!("expected a schema error, got {other:?}"),
        }
    }

    #[test]
    fn server_exit_is_tagged() {
        let json = serde_json::to_string(&ServerExit::Killed { timeout_secs: 5.0 }).unwrap();
        assert_eq!(json, r#"{"kind":"killed","timeout_secs":5.0}"#);
        assert!(ServerExit::Clean { after_secs: 0.1 }.is_clean());
    }

    #[test]
    fn labels_name_the_load() {
        let mut p = point();
        assert_eq!(p.load_label(), "raw 64 B, 8 conns, closed loop");
        p.rate = Some(5000.0);
        p.pipeline = 4;
        assert_eq!(
            p.to_string(),
            "loops=2 raw 64 B, 8 conns, pipeline 4, 5000 req/s"
        );
    }
}
