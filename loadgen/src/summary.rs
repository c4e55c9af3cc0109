//! The run summary: the one plain-data result of a load generator run (schema `gev-loadgen/1`).
//!
//! This is the last step of the data path (schedule -> encode -> write -> read -> decode ->
//! record -> **report**): `run` merges the per-thread recorders (`record`) into a [`Summary`],
//! and `printer` renders it as text or `main` prints it as one JSON object (`--json`). The harness
//! runs `loadgen --json` and deserialises stdout into this type, so every field here is a
//! contract (docs/design.md, "Load generator JSON"). Add fields with `#[serde(default)]` so older
//! files still read (and tell the crates that build `Summary` values in their tests); change the
//! meaning of a field only together with [`SCHEMA`].
//!
//! Units are in the field names: `_us` is microseconds (fractional, converted from the
//! nanosecond histograms), `_secs` seconds, `_per_sec` per second of the measured window (after
//! warm-up).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The value of [`Summary::schema`] this version writes.
pub const SCHEMA: &str = "gev-loadgen/1";

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Always [`SCHEMA`] for this layout.
    pub schema: String,
    /// The options the run used (after defaults were applied).
    pub config: RunConfig,
    /// The machine and program that produced the figures.
    pub env: Env,
    /// How many connections were opened and how many attempts failed.
    pub connections: Connections,
    /// Requests sent, replies completed and errors by kind.
    pub requests: Requests,
    /// Completed requests and received bytes per second of the measured window.
    pub throughput: Throughput,
    /// The open-loop target in requests per second (`-R`); `null` for a closed-loop run.
    pub target_rate: Option<f64>,
    /// Latency measured from each request's *intended* send time (open loop; no coordinated
    /// omission). In a closed-loop run the intended time is the actual send time, so this equals
    /// `latency_uncorrected_us`.
    pub latency_us: Percentiles,
    /// Latency measured from the moment the request was actually written.
    pub latency_uncorrected_us: Percentiles,
    /// TCP connect time (plus the WebSocket handshake for `--framing websocket`).
    pub connect_us: Percentiles,
    /// How late the generator itself sent requests relative to their intended time. High values
    /// mean the generator, not the server, limited the run.
    pub loop_lag_us: Percentiles,
    /// The merged histograms by name (`latency`, `latency_uncorrected`, `connect`, `loop_lag`),
    /// values in nanoseconds, each an HdrHistogram V2 compressed (deflate) encoding in base64 —
    /// the form HdrHistogram's own tools decode, readable with
    /// `hdrhistogram::serialization::Deserializer`.
    pub histograms: BTreeMap<String, String>,
    /// One point per second of the measured window.
    pub timeseries: Vec<TimePoint>,
    /// Human-readable caveats about the figures, e.g. that the generator was the bottleneck or
    /// that the achieved rate fell short of the target.
    pub warnings: Vec<String>,
    /// Length of the measured window (warm-up excluded), in seconds.
    pub duration_secs: f64,
    /// CPU use of each generator worker thread during the measured window, in percent of one
    /// core (100.0 = that thread never slept).
    #[serde(default)]
    pub generator_cpu_percent: Vec<f64>,
    /// The misbehaving connections of a `--misbehave` run, reported apart; `null` (absent)
    /// otherwise. Every other field of the summary counts well-behaved connections only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misbehaving: Option<Misbehaving>,
    /// Wall-clock start of the measured window, nanoseconds since the Unix epoch (the
    /// generator's clock). `timeseries[i].t` counts from this instant, so runs on several hosts
    /// can be aligned on wall-clock seconds. Absent in summaries of older loadgens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_start_unix_ns: Option<u64>,
    /// TLS options and handshake figures; absent (`null`) for a plaintext run. With TLS,
    /// `connect_us` is the TCP connect alone (plus the WebSocket upgrade for `wss://`) and the
    /// TLS handshake is `tls.handshake_us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSummary>,
    /// Datagram accounting of a `udp://` run (absent for stream targets); see `udp.rs`.
    /// `requests.sent`/`requests.completed` are then datagrams sent and replies received in
    /// time, and `latency_us` covers only those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datagrams: Option<DatagramSummary>,
}

/// What a UDP run counted (datagrams intended for the measured window only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatagramSummary {
    /// Datagrams the kernel accepted for sending.
    pub sent: u64,
    /// Replies received within the loss deadline (each one latency sample).
    pub received: u64,
    /// Datagrams with no reply within the loss deadline (never latency samples).
    pub lost: u64,
    /// Extra replies to a datagram already received.
    pub duplicated: u64,
    /// Replies that arrived after the reply to a later datagram of the same flow.
    pub reordered: u64,
    /// Replies that arrived after their datagram was counted lost (still counted lost).
    #[serde(default)]
    pub late: u64,
    /// The loss deadline (`--timeout`), ms.
    #[serde(default)]
    pub loss_deadline_ms: u64,
}

/// What a TLS run used and measured about handshakes.
///
/// In a handshake-only run (`--handshake-only`) one "request" is one connection opened,
/// handshaked and closed: `requests.completed` counts measured handshakes, `throughput.rps` is
/// handshakes per second and `latency_us` runs from each handshake's intended start (open loop:
/// its slot in the `-R` timetable) to its completion, so it is free of coordinated omission.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsSummary {
    /// Whether this was a handshake-only run.
    #[serde(default)]
    pub handshake_only: bool,
    /// How the certificate was checked: `ca` (`--ca`), `system` (the system bundle) or
    /// `insecure` (`--insecure`, no check).
    #[serde(default)]
    pub verification: String,
    /// The trust-anchor file used (`--ca` or the system bundle); `null` with `--insecure`.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Name sent as SNI and checked against the certificate (an IP address sends no SNI).
    #[serde(default)]
    pub server_name: String,
    /// ALPN protocols offered, in preference order.
    #[serde(default)]
    pub alpn_offered: Vec<String>,
    /// Whether session resumption was on (`--tls-resume`).
    #[serde(default)]
    pub resume: bool,
    /// Handshakes completed (all of the run, warm-up included, like `connections.opened`).
    #[serde(default)]
    pub handshakes: u64,
    /// Of those, handshakes that resumed an earlier session.
    #[serde(default)]
    pub resumed: u64,
    /// Of those, full handshakes (`handshakes - resumed`).
    #[serde(default)]
    pub full: u64,
    /// Connections lost to a TLS error (the `tls_*` kinds in `requests.errors`).
    #[serde(default)]
    pub failed: u64,
    /// Measured handshakes per second of the measured window (handshake-only runs).
    #[serde(default)]
    pub handshakes_per_sec: Option<f64>,
    /// TLS handshake time alone: from TCP connected to handshake complete.
    #[serde(default)]
    pub handshake_us: Percentiles,
    /// Handshakes by protocol version (`TLSv1.3`, `TLSv1.2`).
    #[serde(default)]
    pub versions: BTreeMap<String, u64>,
    /// Handshakes by cipher suite.
    #[serde(default)]
    pub cipher_suites: BTreeMap<String, u64>,
    /// Handshakes by negotiated ALPN protocol (`none` when the server chose none).
    #[serde(default)]
    pub alpn: BTreeMap<String, u64>,
    /// Handshake-only with resumption: connections that waited `--timeout` for a TLS 1.3
    /// session ticket that never came (their next handshake could not resume).
    #[serde(default)]
    pub tickets_missing: u64,
}

/// What the misbehaving connections of a `--misbehave` run did (`loadgen/src/misbehave/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Misbehaving {
    /// The `--misbehave` value as applied.
    pub mix: String,
    /// Connections that ran the normal workload (`-c` minus the misbehaving ones).
    pub well_behaved_connections: u64,
    /// Misbehaving connection slots over all kinds.
    pub connections: u64,
    /// One entry per kind, in the order given.
    pub kinds: Vec<MisbehaveKind>,
}

/// One misbehaviour kind's figures over the whole run (warm-up included: misbehaving clients
/// start with the run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MisbehaveKind {
    /// The kind as given, e.g. `never-read` or `slow-read=100`.
    pub kind: String,
    /// Connection slots of this kind (kept filled: a closed connection is opened again).
    pub connections: u64,
    /// Connections established (reconnects included).
    pub connects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Messages (or garbage blobs, or halves for `reset`) started.
    pub messages_sent: u64,
    /// Whole replies read (`churn` and `half-close`, which decode them).
    pub replies: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Connections the server ended (end of stream or reset seen by the client).
    pub closed_by_server: u64,
    /// Connections the client ended by design (`reset`, `churn`) or after a timeout.
    pub closed_by_client: u64,
    /// Mean and longest time from connect to the server closing, milliseconds (0 when the server
    /// closed none).
    pub server_close_after_ms_mean: f64,
    pub server_close_after_ms_max: f64,
    /// Connections still open when the run ended.
    pub open_at_end: u64,
}

/// The run's options as they were applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The target as given on the command line.
    pub target: String,
    /// `raw`, `length`, `websocket` or `http`.
    pub framing: String,
    /// Connections to open (`-c`).
    pub connections: u64,
    /// Worker threads (`-t`).
    pub threads: u64,
    /// Measured duration (`-d`), if the run was time bounded.
    pub duration_secs: Option<f64>,
    /// Warm-up before measuring (`--warmup`).
    pub warmup_secs: f64,
    /// Request count (`-n`), if the run was count bounded.
    pub requests: Option<u64>,
    /// Requests outstanding per connection in a closed-loop run (`--pipeline`).
    pub pipeline: u64,
    /// Open-loop rate (`-R`), requests per second over all connections.
    pub rate: Option<f64>,
    /// Smallest request payload in bytes.
    pub size_min: u64,
    /// Largest request payload in bytes (equal to `size_min` for a fixed size).
    pub size_max: u64,
    /// Whether replies were checked byte by byte (`--verify`).
    pub verify: bool,
    /// Per-request timeout in milliseconds (`--timeout`).
    pub timeout_ms: u64,
    /// Connections opened per second (`--connect-rate`), if limited.
    pub connect_rate: Option<f64>,
    /// Whether worker threads were pinned to cores (`--pin`).
    pub pin: bool,
    /// HTTP method for `--framing http` (`GET` or `POST`); `null` otherwise.
    #[serde(default)]
    pub http_method: Option<String>,
    /// WebSocket message type for `--framing websocket` (`text` or `binary`); `null` otherwise.
    #[serde(default)]
    pub ws_message: Option<String>,
}

/// Where the figures came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Env {
    /// CPU model name (from /proc/cpuinfo), or `unknown`.
    pub cpu_model: String,
    /// Logical cores available to the process.
    pub cores: u64,
    /// Kernel release (`uname -r`), or `unknown`.
    pub kernel: String,
    /// Version of the loadgen that produced the summary.
    pub version: String,
}

/// Connection counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Connections {
    /// Connections that completed connect (and handshake, for WebSocket).
    pub opened: u64,
    /// Connection attempts that failed (refused, timed out, handshake rejected).
    pub failed: u64,
}

/// Request counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Requests {
    /// Requests whose intended send time fell in the measured window.
    pub sent: u64,
    /// Replies to those requests. After the window the generator sends nothing new but waits up
    /// to `--timeout` for the outstanding ones, so slow replies at the end are not dropped.
    pub completed: u64,
    /// Errors by kind: `connect_refused`, `connect_timeout`, `connect_other`, `reset`, `closed`,
    /// `timeout`, `protocol`, `verify_mismatch`, `io`, and for TLS the `tls_*` kinds of
    /// `error_kind::ErrorKind`.
    pub errors: BTreeMap<String, u64>,
}

/// Rates over the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// `requests.completed / duration_secs`.
    pub rps: f64,
    /// Reply bytes received per second (as wrk's Transfer/sec).
    pub bytes_per_sec: f64,
    /// Request bytes written in the measured window.
    #[serde(default)]
    pub bytes_sent: u64,
    /// Reply bytes read in the measured window.
    #[serde(default)]
    pub bytes_received: u64,
}

/// Summary statistics of one histogram, in microseconds. All zero when nothing was recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    /// How many values the histogram holds.
    #[serde(default)]
    pub count: u64,
}

/// One second of the measured window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimePoint {
    /// End of the interval, seconds since the measured window began.
    pub t: f64,
    /// Replies completed per second in the interval.
    pub rps: f64,
    /// Corrected latency p99 of replies completed in the interval, microseconds.
    pub p99_us: f64,
}

impl Summary {
    /// Parse a summary from the JSON `loadgen --json` printed, checking the schema.
    pub fn from_json(text: &str) -> Result<Summary, SummaryError> {
        let summary: Summary = serde_json::from_str(text)?;
        if summary.schema != SCHEMA {
            return Err(SummaryError::Schema {
                found: summary.schema,
            });
        }
        Ok(summary)
    }

    /// The JSON form, one object on one line.
    pub fn to_json(&self) -> String {
        // Serialising plain structs with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Total errors of every kind.
    pub fn total_errors(&self) -> u64 {
        self.requests.errors.values().sum()
    }
}

/// Why a summary could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("summary is not valid gev-loadgen JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("summary schema is {found:?}, this reader understands {SCHEMA:?}")]
    Schema { found: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Summary {
        let p = Percentiles {
            p50: 41.5,
            p90: 60.0,
            p99: 120.25,
            p999: 500.0,
            max: 900.0,
            mean: 45.0,
            count: 1000,
        };
        Summary {
            schema: SCHEMA.to_string(),
            config: RunConfig {
                target: "127.0.0.1:1833".into(),
                framing: "raw".into(),
                connections: 10,
                threads: 1,
                duration_secs: Some(5.0),
                warmup_secs: 1.0,
                requests: None,
                pipeline: 1,
                rate: Some(1000.0),
                size_min: 64,
                size_max: 64,
                verify: true,
                timeout_ms: 5000,
                connect_rate: None,
                pin: false,
                http_method: None,
                ws_message: None,
            },
            env: Env {
                cpu_model: "Test CPU".into(),
                cores: 2,
                kernel: "6.1.0".into(),
                version: "0.1.0".into(),
            },
            connections: Connections {
                opened: 10,
                failed: 0,
            },
            requests: Requests {
                sent: 5000,
                completed: 4999,
                errors: BTreeMap::from([("timeout".to_string(), 1)]),
            },
            throughput: Throughput {
                rps: 999.8,
                bytes_per_sec: 63987.2,
                bytes_sent: 320000,
                bytes_received: 319936,
            },
            target_rate: Some(1000.0),
            latency_us: p,
            latency_uncorrected_us: p,
            connect_us: p,
            loop_lag_us: Percentiles::default(),
            histograms: BTreeMap::from([("latency".to_string(), "HISTFAA=".to_string())]),
            timeseries: vec![TimePoint {
                t: 1.0,
                rps: 1000.0,
                p99_us: 120.0,
            }],
            warnings: vec!["achieved rate fell short".into()],
            duration_secs: 5.0,
            generator_cpu_percent: vec![12.5],
            misbehaving: None,
            window_start_unix_ns: Some(1_700_000_000_000_000_000),
            tls: None,
            datagrams: None,
        }
    }

    #[test]
    fn round_trips_through_json() {
        let summary = sample();
        let back = Summary::from_json(&summary.to_json()).unwrap();
        assert_eq!(back, summary);
    }

    #[test]
    fn closed_loop_target_rate_is_null() {
        let mut summary = sample();
        summary.target_rate = None;
        let value: serde_json::Value = serde_json::from_str(&summary.to_json()).unwrap();
        assert!(value["target_rate"].is_null());
        assert_eq!(value["schema"], "gev-loadgen/1");
        assert_eq!(value["latency_us"]["p999"], 500.0);
        assert_eq!(value["requests"]["errors"]["timeout"], 1);
        assert_eq!(value["timeseries"][0]["p99_us"], 120.0);
    }

    #[test]
    fn misbehaving_is_optional_and_round_trips() {
        let mut summary = sample();
        assert!(!summary.to_json().contains("misbehaving"));
        summary.misbehaving = Some(Misbehaving {
            mix: "abandon=0.1".into(),
            well_behaved_connections: 9,
            connections: 1,
            kinds: vec![MisbehaveKind {
                kind: "abandon".into(),
                connections: 1,
                connects: 3,
                closed_by_server: 2,
                server_close_after_ms_mean: 1000.0,
                server_close_after_ms_max: 1200.0,
                ..MisbehaveKind::default()
            }],
        });
        let back = Summary::from_json(&summary.to_json()).unwrap();
        assert_eq!(back, summary);
    }

    #[test]
    fn tls_section_round_trips_and_is_optional() {
        let mut summary = sample();
        let plain: serde_json::Value = serde_json::from_str(&summary.to_json()).unwrap();
        assert!(plain.get("tls").is_none());
        summary.tls = Some(TlsSummary {
            handshakes: 3,
            resumed: 2,
            full: 1,
            handshakes_per_sec: Some(1.5),
            ..TlsSummary::default()
        });
        let back = Summary::from_json(&summary.to_json()).unwrap();
        assert_eq!(back, summary);
    }

    #[test]
    fn rejects_other_schema() {
        let mut summary = sample();
        summary.schema = "gev-loadgen/0".into();
        assert!(matches!(
            Summary::from_json(&summary.to_json()),
            Err(SummaryError::Schema { .. })
        ));
    }
}
