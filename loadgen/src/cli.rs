//! The command line: `loadgen TARGET [options]`, parsed with clap and checked into a
//! [`Config`]. Every rejection is one line that names the flag and says how to fix it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::config::{Config, DEFAULT_MAX_REPLY};
use crate::framing::{FramingKind, FramingOptions, HttpMethod, WsMessage};
use crate::payload::PayloadSpec;
use crate::target::Target;
use crate::tls::{system_bundle, TlsOptions, TlsSettings, Verification};

/// A load generator for TCP, WebSocket and HTTP/1.1 servers with honest (coordinated-omission
/// free) latency.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
pub struct Args {
    /// host:port (raw TCP), ws://host:port/path or http://host:port/path; over TLS:
    /// tls://host:port, wss://host:port/path or https://host:port/path
    pub target: String,

    /// Connections to open and keep open
    #[arg(short = 'c', long, default_value_t = 10)]
    pub connections: usize,

    /// Worker threads, each with its own event loop; connections are spread across them
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,

    /// Pin worker threads to cores (worker i on core i)
    #[arg(long)]
    pub pin: bool,

    /// Connections opened per second (default: as fast as the server accepts)
    #[arg(long, value_name = "PER_SEC", allow_negative_numbers = true)]
    pub connect_rate: Option<f64>,

    /// Per-request (and per-connect) timeout, e.g. 5s or 500ms
    #[arg(long, default_value = "5s")]
    pub timeout: String,

    /// Measured duration, e.g. 10s, 1m (default 10s unless -n is given)
    #[arg(short = 'd', long, conflicts_with = "requests")]
    pub duration: Option<String>,

    /// Warm-up before measuring, e.g. 2s
    #[arg(long, default_value = "0s")]
    pub warmup: String,

    /// Stop after this many requests have completed (instead of -d)
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,

    /// Request payload size in bytes (default 64)
    #[arg(long, conflicts_with_all = ["size_range", "payload", "payload_file"])]
    pub size: Option<usize>,

    /// Payload size range in bytes, chosen uniformly per request, e.g. 16..1024
    #[arg(long, value_name = "A..B", conflicts_with_all = ["payload", "payload_file"])]
    pub size_range: Option<String>,

    /// Send exactly this string as every payload
    #[arg(long, conflicts_with = "payload_file")]
    pub payload: Option<String>,

    /// Send the contents of this file as every payload
    #[arg(long, value_name = "FILE")]
    pub payload_file: Option<PathBuf>,

    /// raw | length | websocket | http (default from TARGET: ws:// -> websocket, http:// -> http, else raw)
    #[arg(long)]
    pub framing: Option<String>,

    /// HTTP method for --framing http: get | post (post sends the payload as the body)
    #[arg(long, default_value = "get")]
    pub method: String,

    /// WebSocket message type: text | binary
    #[arg(long, default_value = "binary")]
    pub ws_message: String,

    /// Requests outstanding per connection (closed loop); with -R, the most a connection may
    /// have outstanding
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,

    /// Open loop: total requests per second, spread evenly over connections
    #[arg(
        short = 'R',
        long,
        value_name = "PER_SEC",
        allow_negative_numbers = true
    )]
    pub rate: Option<f64>,

    /// Check every reply against its request (echo framings) or for a 2xx status (http)
    #[arg(long)]
    pub verify: bool,

    /// Print one JSON object (schema gev-loadgen/1) on stdout instead of the human summary
    #[arg(long)]
    pub json: bool,

    /// Write an HdrHistogram interval log (one histogram per second) to FILE
    #[arg(long, value_name = "FILE")]
    pub hdr_log: Option<PathBuf>,

    /// Largest reply accepted, in bytes
    #[arg(long, default_value_t = DEFAULT_MAX_REPLY)]
    pub max_reply: usize,

    /// Make a fraction of the -c connections misbehave while the rest run the normal workload:
    /// KIND=FRACTION[,...] with KIND one of never-read, slow-read=BYTES_PER_S, slow-write[=INTERVAL],
    /// reset, half-close, garbage, abandon, churn (see README "Misbehaving clients")
    #[arg(long, value_name = "KIND=FRACTION,...")]
    pub misbehave: Option<String>,
    /// Wait until this wall-clock instant (nanoseconds since the Unix epoch) before connecting,
    /// so generators on several hosts start together; an instant already past starts at once
    #[arg(long, value_name = "UNIX_TIME_NS")]
    pub start_at: Option<u64>,
    /// Speak TLS to a host:port, ws:// or http:// TARGET (the same as tls://, wss://, https://)
    #[arg(long)]
    pub tls: bool,

    /// TLS: do not verify the server's certificate (chain and name); signatures are still checked
    #[arg(long, conflicts_with = "ca")]
    pub insecure: bool,

    /// TLS: trust the CA certificate(s) in this PEM file (default: the system bundle)
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// TLS: server name sent as SNI and checked against the certificate (default: the TARGET
    /// host; an IP address sends no SNI)
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,

    /// TLS: ALPN protocols to offer, comma separated in preference order, e.g. h2,http/1.1, or
    /// `none` (default: http/1.1 for https:// and wss://, none for tls://)
    #[arg(long, value_name = "LIST")]
    pub alpn: Option<String>,

    /// TLS: cache sessions and resume them on new connections: on | off (default on)
    #[arg(long, value_name = "on|off")]
    pub tls_resume: Option<String>,

    /// TLS: open, handshake and close connections (at -R per second, or as fast as -c slots
    /// allow) and report handshakes/s and the handshake latency; no requests are sent
    #[arg(long)]
    pub handshake_only: bool,
}

/// A rejected option: one line naming the flag and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn bad(message: impl Into<String>) -> ConfigError {
    ConfigError(message.into())
}

fn parse_time(flag: &str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        bad(format!(
            "invalid {flag} {text:?}: write a time such as 10s, 500ms or 2m"
        ))
    })
}

fn parse_size_range(text: &str) -> Result<(usize, usize), ConfigError> {
    let usage = || {
        bad(format!(
            "invalid --size-range {text:?}: write MIN..MAX in bytes, e.g. 16..1024"
        ))
    };
    let (a, b) = text.split_once("..").ok_or_else(usage)?;
    let b = b.strip_prefix('=').unwrap_or(b);
    let min: usize = a.trim().parse().map_err(|_| usage())?;
    let max: usize = b.trim().parse().map_err(|_| usage())?;
    if min > max {
        return Err(bad(format!(
            "invalid --size-range {text:?}: the range is reversed; write the smaller size first ({max}..{min})"
        )));
    }
    Ok((min, max))
}

impl Args {
    /// Check every option and resolve the target.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let target = Target::parse(&self.target).map_err(|e| bad(e.to_string()))?;
        let kind = match &self.framing {
            Some(text) => text
                .parse::<FramingKind>()
                .map_err(|e| bad(format!("invalid --framing: {e}")))?,
            None => target.default_framing(),
        };
        match (target.scheme, kind) {
            (crate::target::Scheme::Ws, k) if k != FramingKind::Websocket => {
                return Err(bad(format!(
                    "--framing {k} does not fit a ws:// TARGET; drop --framing or write the target as host:port"
                )))
            }
            (crate::target::Scheme::Http, k) if k != FramingKind::Http => {
                return Err(bad(format!(
                    "--framing {k} does not fit an http:// TARGET; drop --framing or write the target as host:port"
                )))
            }
            _ => {}
        }
        if self.connections == 0 {
            return Err(bad("--connections must be at least 1"));
        }
        if self.threads == 0 {
            return Err(bad("--threads must be at least 1"));
        }
        let threads = self.threads.min(self.connections);
        if self.pipeline == 0 {
            return Err(bad("--pipeline must be at least 1"));
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(bad(format!(
                    "invalid --rate {rate}: give a positive number of requests per second (e.g. -R 10000), or omit -R for a closed-loop run"
                )));
            }
        }
        if let Some(rate) = self.connect_rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(bad(format!(
                    "invalid --connect-rate {rate}: give a positive number of connections per second, or omit it"
                )));
            }
        }
        let timeout = parse_time("--timeout", &self.timeout)?;
        if timeout.is_zero() {
            return Err(bad("--timeout must be longer than 0, e.g. 5s"));
        }
        let warmup = parse_time("--warmup", &self.warmup)?;
        let duration = match (&self.duration, self.requests) {
            (_, Some(0)) => return Err(bad("--requests must be at least 1")),
            (_, Some(_)) => None,
            (Some(text), None) => {
                let d = parse_time("--duration", text)?;
                if d.is_zero() {
                    return Err(bad("--duration must be longer than 0, e.g. 10s"));
                }
                Some(d)
            }
            (None, None) => Some(Duration::from_secs(10)),
        };
        let http_method = match self.method.to_ascii_lowercase().as_str() {
            "get" => HttpMethod::Get,
            "post" => HttpMethod::Post,
            other => return Err(bad(format!("invalid --method {other:?}: use get or post"))),
        };
        let ws_message = match self.ws_message.as_str() {
            "text" => WsMessage::Text,
            "binary" => WsMessage::Binary,
            other => {
                return Err(bad(format!(
                    "invalid --ws-message {other:?}: use text or binary"
                )))
            }
        };
        let payload = if let Some(text) = &self.payload {
            PayloadSpec::Fixed(text.as_bytes().to_vec())
        } else if let Some(path) = &self.payload_file {
            let bytes = std::fs::read(path).map_err(|e| {
                bad(format!(
                    "cannot read --payload-file {}: {e}",
                    path.display()
                ))
            })?;
            PayloadSpec::Fixed(bytes)
        } else if let Some(text) = &self.size_range {
            let (min, max) = parse_size_range(text)?;
            PayloadSpec::Generated { min, max }
        } else {
            let size = self.size.unwrap_or(64);
            PayloadSpec::Generated {
                min: size,
                max: size,
            }
        };
        let (min, max) = match &payload {
            PayloadSpec::Generated { min, max } => (*min, *max),
            PayloadSpec::Fixed(b) => (b.len(), b.len()),
        };
        // A raw echo of zero bytes is no reply at all; every other framing frames empty
        // payloads.
        // (A handshake-only run sends no payload at all.)
        if kind == FramingKind::Raw && min == 0 && !self.handshake_only {
            return Err(bad(
                "raw framing needs a payload of at least 1 byte; give --size 1 or more, a --size-range starting at 1, or a non-empty --payload",
            ));
        }
        if max > self.max_reply || max > u32::MAX as usize {
            return Err(bad(format!(
                "payload of {max} bytes is larger than --max-reply {}; lower --size or raise --max-reply",
                self.max_reply
            )));
        }
        if kind == FramingKind::Websocket && ws_message == WsMessage::Text {
            if let PayloadSpec::Fixed(bytes) = &payload {
                if std::str::from_utf8(bytes).is_err() {
                    return Err(bad(
                        "--ws-message text needs a UTF-8 payload; use --ws-message binary for this --payload-file",
                    ));
                }
            }
        }
        let misbehave = match &self.misbehave {
            Some(text) => {
                let mix = crate::misbehave::Mix::parse(text).map_err(|e| bad(e.0))?;
                let plan =
                    crate::misbehave::Plan::new(mix, self.connections).map_err(|e| bad(e.0))?;
                if plan.connections() == self.connections && self.requests.is_some() {
                    return Err(bad(
                        "--misbehave leaves no well-behaved connection to complete -n requests; use -d, or lower the fractions",
                    ));
                }
                Some(plan)
            }
            None => None,
        };
        let mut target = target;
        target.tls |= self.tls;
        if target.transport == crate::target::Transport::Udp {
            if kind != FramingKind::Raw {
                return Err(bad(format!(
                    "--framing {kind} does not fit a udp:// TARGET: every datagram is one request; drop --framing"
                )));
            }
            let min = match &payload {
                PayloadSpec::Generated { min, .. } => *min,
                PayloadSpec::Fixed(bytes) => bytes.len(),
            };
            if min < crate::udp::SEQ_BYTES {
                return Err(bad(format!(
                    "a udp:// TARGET needs payloads of at least {} bytes (each datagram starts with its sequence number); raise --size",
                    crate::udp::SEQ_BYTES
                )));
            }
        }
        if target.tls && target.transport != crate::target::Transport::Tcp {
            return Err(bad(format!(
                "--tls does not fit TARGET {target}: TLS runs over TCP only; drop --tls"
            )));
        }
        let tls = self.tls_settings(&target, kind)?;
        if misbehave.is_some() && (target.tls || target.transport != crate::target::Transport::Tcp)
        {
            return Err(bad(format!(
                "--misbehave runs over plain TCP only, not TARGET {target}; drop --misbehave or use a host:port, ws:// or http:// target"
            )));
        }
        let candidates = target.resolve().map_err(|e| bad(e.to_string()))?;
        let framing = FramingOptions {
            kind,
            host: target.host_header(),
            path: target.path.clone(),
            http_method,
            ws_message,
            max_reply: self.max_reply,
        };
        Ok(Config {
            target_text: self.target,
            target,
            addr: candidates[0],
            candidates,
            framing,
            connections: self.connections,
            threads,
            pin: self.pin,
            connect_rate: self.connect_rate,
            timeout,
            duration,
            warmup,
            requests: self.requests,
            payload,
            pipeline: self.pipeline,
            rate: self.rate,
            verify: self.verify,
            json: self.json,
            hdr_log: self.hdr_log,
            misbehave,
            start_at: self.start_at,
            tls,
        })
    }

    /// Check the TLS flags against the target and build the rustls client (`None` without TLS).
    fn tls_settings(
        &self,
        target: &Target,
        kind: FramingKind,
    ) -> Result<Option<TlsSettings>, ConfigError> {
        if !target.tls {
            let given = [
                ("--insecure", self.insecure),
                ("--ca", self.ca.is_some()),
                ("--sni", self.sni.is_some()),
                ("--alpn", self.alpn.is_some()),
                ("--tls-resume", self.tls_resume.is_some()),
                ("--handshake-only", self.handshake_only),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
                return Err(bad(format!(
                    "{flag} needs a TLS target: write tls://, wss:// or https://, or add --tls"
                )));
            }
            return Ok(None);
        }
        let resume = match self.tls_resume.as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(bad(format!(
                    "invalid --tls-resume {other:?}: use on or off"
                )))
            }
        };
        // HTTP and the WebSocket upgrade are HTTP/1.1 here; a server must not switch to h2.
        let required_alpn = matches!(kind, FramingKind::Http | FramingKind::Websocket)
            .then(|| "http/1.1".to_string());
        let alpn = match self.alpn.as_deref() {
            None => required_alpn.iter().cloned().collect(),
            Some("none") => Vec::new(),
            Some(list) => {
                let protocols: Vec<String> =
                    list.split(',').map(|p| p.trim().to_string()).collect();
                if protocols.iter().any(|p| p.is_empty() || p.len() > 255) {
                    return Err(bad(format!(
                        "invalid --alpn {list:?}: give protocol names separated by commas, e.g. h2,http/1.1, or none"
                    )));
                }
                protocols
            }
        };
        if let Some(required) = &required_alpn {
            if !alpn.is_empty() && !alpn.contains(required) && !self.handshake_only {
                return Err(bad(format!(
                    "--alpn {} leaves out {required}, the only protocol --framing {kind} speaks; add it or drop --alpn",
                    alpn.join(",")
                )));
            }
        }
        if self.handshake_only {
            if self.verify {
                return Err(bad(
                    "--verify does not fit --handshake-only, which sends no requests; drop one",
                ));
            }
            if self.pipeline != 1 {
                return Err(bad(
                    "--pipeline does not fit --handshake-only: each of the -c connections does one handshake at a time; raise -c instead",
                ));
            }
            if self.connect_rate.is_some() {
                return Err(bad(
                    "--connect-rate does not fit --handshake-only; give the handshake rate with -R",
                ));
            }
        }
        let verification = if self.insecure {
            Verification::Insecure
        } else if let Some(path) = &self.ca {
            Verification::Ca(path.clone())
        } else {
            Verification::System(system_bundle().ok_or_else(|| {
                bad("no system CA bundle found (tried SSL_CERT_FILE and /etc/ssl/certs); pass --ca FILE or --insecure")
            })?)
        };
        let server_name = self.sni.clone().unwrap_or_else(|| target.host.clone());
        let options = TlsOptions {
            verification,
            server_name,
            alpn,
            resume,
            handshake_only: self.handshake_only,
            required_alpn: if self.handshake_only {
                None
            } else {
                required_alpn
            },
        };
        TlsSettings::new(options)
            .map(Some)
            .map_err(|e| bad(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let mut full = vec!["loadgen"];
        full.extend_from_slice(args);
        Args::try_parse_from(full).unwrap().into_config()
    }

    #[test]
    fn defaults() {
        let c = config(&["127.0.0.1:9"]).unwrap();
        assert_eq!(c.framing.kind, FramingKind::Raw);
        assert_eq!(c.duration, Some(Duration::from_secs(10)));
        assert_eq!(c.payload, PayloadSpec::Generated { min: 64, max: 64 });
        assert_eq!((c.connections, c.threads, c.pipeline), (10, 1, 1));
        assert_eq!(c.rate, None);
        assert_eq!(c.start_at, None);
    }

    #[test]
    fn start_at_takes_unix_nanoseconds() {
        let c = config(&["127.0.0.1:9", "--start-at", "1700000000123456789"]).unwrap();
        assert_eq!(c.start_at, Some(1_700_000_000_123_456_789));
        assert!(Args::try_parse_from(["loadgen", "127.0.0.1:9", "--start-at", "soon"]).is_err());
    }

    #[test]
    fn rejections_name_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["127.0.0.1:9", "--framing", "smtp"], "--framing"),
            (&["127.0.0.1:9", "-R", "0"], "--rate"),
            (&["127.0.0.1:9", "--size-range", "100..10"], "reversed"),
            (&["127.0.0.1:9", "-d", "ten"], "--duration"),
            (&["127.0.0.1:9", "--timeout", "0s"], "--timeout"),
            (&["127.0.0.1:9", "--size", "0"], "--size"),
            (&["ws://127.0.0.1:9/", "--framing", "raw"], "ws://"),
            (&["127.0.0.1", "--framing", "raw"], "port"),
            (&["127.0.0.1:9", "-c", "0"], "--connections"),
            (&["127.0.0.1:9", "--misbehave", "nope=0.1"], "--misbehave"),
            (
                &[
                    "127.0.0.1:9",
                    "-c",
                    "2",
                    "--misbehave",
                    "reset=0.1,churn=0.1,abandon=0.1",
                ],
                "-c is 2",
            ),
            (&["127.0.0.1:9", "-n", "5", "--misbehave", "reset=1"], "-n"),
        ];
        for (args, needle) in cases {
            let err = config(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
            assert!(!err.contains('\n'), "{args:?}: {err}");
        }
    }

    #[test]
    fn tls_targets_and_defaults() {
        let c = config(&["tls://127.0.0.1:9", "--insecure"]).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(c.framing.kind, FramingKind::Raw);
        assert!(tls.options.alpn.is_empty() && tls.options.resume);
        assert_eq!(tls.options.server_name, "127.0.0.1");
        let c = config(&["https://localhost:9/", "--insecure", "--tls-resume", "off"]).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.options.alpn, vec!["http/1.1".to_string()]);
        assert!(!tls.options.resume);
        let c = config(&[
            "ws://127.0.0.1:9/",
            "--tls",
            "--insecure",
            "--sni",
            "example.com",
        ])
        .unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.options.server_name, "example.com");
        assert_eq!(tls.options.required_alpn.as_deref(), Some("http/1.1"));
        let c = config(&[
            "tls://127.0.0.1:9",
            "--insecure",
            "--handshake-only",
            "--alpn",
            "h2,http/1.1",
        ])
        .unwrap();
        assert!(c.handshake_only());
        assert_eq!(c.tls.unwrap().options.alpn.len(), 2);
        assert!(config(&["127.0.0.1:9"]).unwrap().tls.is_none());
    }

    #[test]
    fn tls_rejections_name_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["127.0.0.1:9", "--insecure"],
                "--insecure needs a TLS target",
            ),
            (
                &["127.0.0.1:9", "--handshake-only"],
                "--handshake-only needs",
            ),
            (&["ws://127.0.0.1:9/", "--alpn", "h2"], "--alpn needs"),
            (
                &["tls://127.0.0.1:9", "--insecure", "--tls-resume", "maybe"],
                "--tls-resume",
            ),
            (
                &["https://127.0.0.1:9/", "--insecure", "--alpn", "h2"],
                "leaves out http/1.1",
            ),
            (
                &["tls://127.0.0.1:9", "--insecure", "--alpn", "a,,b"],
                "--alpn",
            ),
            (
                &[
                    "tls://127.0.0.1:9",
                    "--insecure",
                    "--handshake-only",
                    "--verify",
                ],
                "--verify",
            ),
            (
                &[
                    "tls://127.0.0.1:9",
                    "--insecure",
                    "--handshake-only",
                    "--pipeline",
                    "4",
                ],
                "--pipeline",
            ),
            (
                &["tls://127.0.0.1:9", "--ca", "/nonexistent/ca.pem"],
                "/nonexistent/ca.pem",
            ),
        ];
        for (args, needle) in cases {
            let err = config(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
            assert!(!err.contains('\n'), "{args:?}: {err}");
        }
    }

    #[test]
    fn size_range_and_open_loop() {
        let c = config(&["127.0.0.1:9", "--size-range", "16..=32", "-R", "1000"]).unwrap();
        assert_eq!(c.payload, PayloadSpec::Generated { min: 16, max: 32 });
        assert_eq!(c.rate, Some(1000.0));
        let http = config(&["http://127.0.0.1:9/x"]).unwrap();
        assert_eq!(http.framing.kind, FramingKind::Http);
        assert_eq!(http.framing.path, "/x");
    }
}
