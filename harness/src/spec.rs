//! The sweep spec: a TOML file saying which servers to run at which loop counts and loads, read
//! and checked completely before anything long starts.
//!
//! Where it sits: **sweep spec** -> points (`sweep.rs`) -> runs (`runner.rs`) -> results. Every
//! key is optional except that at least one server must be named; unknown keys are errors (a
//! typo must not silently fall back to a default). Every rejection is one line naming the file,
//! the key and the fix.
//!
//! ```toml
//! servers = ["gev-echo", "ref-tokio-echo", "ref-mio-echo"]   # built-ins by name
//! loops = [1, 2]              # default 1..=cores
//! connections = [32]          # default [32]
//! payload_sizes = [64]        # bytes, default [64]
//! framings = ["raw"]          # default: every framing the servers speak
//! closed_loop = true          # a closed-loop point (default true)
//! rates = [20000, 40000]      # open-loop points, requests per second (default none)
//! pipeline = 1                # requests in flight per connection, closed loop (default 1)
//! duration = "4s"             # measured time per run (default 5s)
//! warmup = "1s"               # warm-up per run (default 1s)
//! repeats = 3                 # runs per point per server (default 3)
//! metrics = ["gev-echo"]      # servers started with --metrics and scraped (default none), at
//!                             # every transport (their unix/udp variants take --metrics too)
//! loadgen_threads = 1         # loadgen worker threads (default: per point, one per core the
//!                             # server does not use; the server gets one core per loop)
//! pin = true                  # pin server and loadgen to disjoint cores (default true)
//! schedule = "alternating"    # or "side-by-side": every server of a point at once (default
//!                             # alternating; `harness sweep --schedule` overrides it)
//! tls = [false, true]         # plain and TLS points (default [false]); TLS points run the
//!                             # servers that speak TLS, with one throwaway certificate
//! tls_handshakes = ["resumed", "full"]  # handshake-only points (default none)
//! transports = ["tcp", "unix", "udp"]   # (default ["tcp"]) each server runs at the transports
//!                             # it has a variant for (`builtin.rs`, `transport_run.rs`); udp
//!                             # takes framing raw only, payloads of 8 B or more, and no TLS;
//!                             # unix takes no TLS
//!
//! [[command]]                 # any other server, started from a command line
//! name = "gev-old"
//! command = "/path/to/gev-echo --host 127.0.0.1 --port {port} --loops {loops}"
//! framing = "raw"             # default raw
//! reference = false           # default false
//! unix_command = "/path/to/gev-echo --listen unix:{path} --loops {loops}"  # optional
//! udp_command = "/path/to/udp-echo --port {port} --loops {loops}"          # optional
//!
//! [hosts]                     # optional: server and client hosts over ssh (`hosts::table`,
//!                             # docs/hosts.md); without it everything runs on this machine
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::builtin;
pub use crate::compare::session::Schedule;
use crate::framing::Framing;
use crate::runner::ServerSpec;
use crate::transport_run::{self, TransportCommands, Variants};
use gev_reports::results::{PointTls, PointTransport};

/// Default connections per point.
pub const DEFAULT_CONNECTIONS: u64 = 32;
/// Default request payload in bytes.
pub const DEFAULT_PAYLOAD_SIZE: u64 = 64;
/// Default measured time per run.
pub const DEFAULT_DURATION: &str = "5s";
/// Default warm-up per run.
pub const DEFAULT_WARMUP: &str = "1s";
/// Default runs per point per server.
pub const DEFAULT_REPEATS: u32 = 3;

/// The spec file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub command: Vec<CommandTable>,
    pub loops: Option<Vec<u32>>,
    pub connections: Option<Vec<u64>>,
    pub payload_sizes: Option<Vec<u64>>,
    pub framings: Option<Vec<String>>,
    pub closed_loop: Option<bool>,
    #[serde(default)]
    pub rates: Vec<f64>,
    pub pipeline: Option<u64>,
    pub duration: Option<String>,
    pub warmup: Option<String>,
    pub repeats: Option<u32>,
    #[serde(default)]
    pub metrics: Vec<String>,
    pub loadgen_threads: Option<u32>,
    pub pin: Option<bool>,
    pub schedule: Option<String>,
    /// Server and client hosts of a multi-host sweep (`hosts::table`); none: this machine.
    pub hosts: Option<crate::hosts::HostsFile>,
    pub tls: Option<Vec<bool>>,
    pub tls_handshakes: Option<Vec<String>>,
    pub transports: Option<Vec<String>>,
}

/// A `[[command]]` table: a [`CommandEntry`] plus its commands at the other transports.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandTable {
    pub name: String,
    pub command: String,
    pub framing: Option<String>,
    #[serde(default)]
    pub reference: bool,
    /// Its command over a Unix socket, with a `{path}` placeholder (issue 15).
    pub unix_command: Option<String>,
    /// Its datagram variant's command, with a `{port}` placeholder (issue 15).
    pub udp_command: Option<String>,
}

impl CommandTable {
    fn entry(&self) -> CommandEntry {
        CommandEntry {
            name: self.name.clone(),
            command: self.command.clone(),
            framing: self.framing.clone(),
            reference: self.reference,
        }
    }
}

/// A server given by its command line (`[[command]]` in the spec, `--server-cmd` on the CLI).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandEntry {
    pub name: String,
    pub command: String,
    pub framing: Option<String>,
    #[serde(default)]
    pub reference: bool,
}

/// A checked sweep: servers resolved to commands, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub servers: Vec<ServerSpec>,
    pub loops: Vec<u32>,
    pub connections: Vec<u64>,
    pub payload_sizes: Vec<u64>,
    pub framings: Vec<Framing>,
    /// `None` is the closed-loop point, `Some(rate)` an open-loop one.
    pub rates: Vec<Option<f64>>,
    pub pipeline: u64,
    pub duration: Duration,
    pub warmup: Duration,
    pub repeats: u32,
    /// loadgen worker threads; with `per_point_placement`, only what a point without pinning
    /// uses (1).
    pub loadgen_threads: u32,
    pub pin: bool,
    /// True when the spec leaves `loadgen_threads` out (and pins): each point then gives the
    /// server one core per loop (at most all but one) and loadgen every other core, one worker
    /// thread per core.
    pub per_point_placement: bool,
    /// How the servers of a point are placed in time.
    pub schedule: Schedule,
    /// The TLS modes of request points: `Off` and/or `On` (issue 14).
    pub tls: Vec<PointTls>,
    /// Handshake-only points: `HandshakesResumed` and/or `HandshakesFull`.
    pub tls_handshakes: Vec<PointTls>,
    /// The file the spec came from and its text, if it came from a file.
    pub source: Option<(PathBuf, String)>,
    /// The hosts of a multi-host sweep; `None` runs everything on this machine.
    pub hosts: Option<crate::hosts::Hosts>,
    /// The transports of the points (issue 15), `[Tcp]` unless the spec says otherwise.
    pub transports: Vec<PointTransport>,
    /// Each server's commands at the transports other than TCP (`transport_run.rs`); only
    /// the transports of the sweep are filled.
    pub variants: Variants,
}

/// A spec that cannot be run; each message is one line naming the key and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read sweep spec {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}: {message}")]
    Toml {
        path: String,
        line: usize,
        message: String,
    },
    #[error(
        "{path}: `loops` is empty: list at least one loop count, or remove the key for 1..=cores"
    )]
    EmptyLoops { path: String },
    #[error("{path}: `loops` contains 0: loop counts start at 1")]
    ZeroLoops { path: String },
    #[error(
        "{path}: `{key}` is empty: list at least one value, or remove the key for the default"
    )]
    EmptyList { path: String, key: &'static str },
    #[error("{path}: `{key}` contains {value}, which is not a positive number")]
    NotPositive {
        path: String,
        key: &'static str,
        value: String,
    },
    #[error("{path}: no servers: name built-ins in `servers = [...]` ({known}) or add a [[command]] table")]
    NoServers { path: String, known: String },
    #[error("{path}: unknown server {name:?} in `servers` (built-ins: {known}); use a [[command]] table or --server-cmd for other servers")]
    UnknownServer {
        path: String,
        name: String,
        known: String,
    },
    #[error("{path}: server {name:?} is listed twice")]
    DuplicateServer { path: String, name: String },
    #[error("{path}: server {name:?}: command {command:?} has no {{port}} placeholder; the harness must choose the port")]
    NoPortPlaceholder {
        path: String,
        name: String,
        command: String,
    },
    #[error("{path}: server {name:?}: the command is empty")]
    EmptyCommand { path: String, name: String },
    #[error("{path}: server {name:?}: binary {binary} not found{hint}")]
    MissingBinary {
        path: String,
        name: String,
        binary: String,
        hint: String,
    },
    #[error("{path}: `{key}`: {message}")]
    BadValue {
        path: String,
        key: &'static str,
        message: String,
    },
    #[error("{path}: no load: set `closed_loop = true` or list open-loop `rates`")]
    NoLoad { path: String },
    #[error("{path}: server {name:?} speaks {framing}, which is not in `framings` ({framings}); add it or drop the server")]
    FramingNotServed {
        path: String,
        name: String,
        framing: Framing,
        framings: String,
    },
    #[error("{path}: framing {framing} is in `framings` but no server speaks it")]
    FramingUnused { path: String, framing: Framing },
    #[error("{path}: `metrics` names {name:?}, which is not a server of this sweep")]
    MetricsUnknownServer { path: String, name: String },
    #[error("{path}: `metrics` names {name:?}, which has no metrics endpoint")]
    MetricsUnsupported { path: String, name: String },
    #[error(transparent)]
    Hosts(#[from] crate::hosts::HostsError),
}

/// What the spec is checked against.
#[derive(Debug, Clone)]
pub struct Context {
    /// Where built-in servers live (the harness binary's directory).
    pub bin_dir: PathBuf,
    /// Cores available, for the default loop list.
    pub cores: u32,
}

impl Spec {
    /// Read, parse and check the spec at `path`, with `extra` servers from the command line.
    pub fn load(path: &Path, extra: &[CommandEntry], context: &Context) -> Result<Spec, SpecError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| SpecError::Read {
            path: shown.clone(),
            message: error.to_string(),
        })?;
        let mut spec = Spec::parse(&text, &shown, extra, context)?;
        spec.source = Some((path.to_path_buf(), text));
        Ok(spec)
    }

    /// Parse and check spec text; `path` only names it in errors.
    pub fn parse(
        text: &str,
        path: &str,
        extra: &[CommandEntry],
        context: &Context,
    ) -> Result<Spec, SpecError> {
        let file: SpecFile = toml::from_str(text).map_err(|error| SpecError::Toml {
            path: path.to_string(),
            line: error.span().map_or(1, |span| {
                1 + text[..span.start.min(text.len())].matches('\n').count()
            }),
            message: error.message().trim().replace('\n', " "),
        })?;
        Spec::check(file, path, extra, context)
    }

    /// Apply defaults and check every rule.
    pub fn check(
        file: SpecFile,
        path: &str,
        extra: &[CommandEntry],
        context: &Context,
    ) -> Result<Spec, SpecError> {
        let p = || path.to_string();
        let loops = match file.loops {
            None => (1..=context.cores.max(1)).collect(),
            Some(loops) if loops.is_empty() => return Err(SpecError::EmptyLoops { path: p() }),
            Some(loops) if loops.contains(&0) => return Err(SpecError::ZeroLoops { path: p() }),
            Some(loops) => loops,
        };
        let connections =
            positive_list(file.connections, DEFAULT_CONNECTIONS, "connections", path)?;
        let payload_sizes = match file.payload_sizes {
            None => vec![DEFAULT_PAYLOAD_SIZE],
            Some(sizes) if sizes.is_empty() => {
                return Err(SpecError::EmptyList {
                    path: p(),
                    key: "payload_sizes",
                })
            }
            Some(sizes) => sizes,
        };
        let pipeline = file.pipeline.unwrap_or(1);
        if pipeline == 0 {
            return Err(SpecError::NotPositive {
                path: p(),
                key: "pipeline",
                value: "0".into(),
            });
        }
        let duration =
            parse_duration(file.duration.as_deref(), DEFAULT_DURATION, "duration", path)?;
        if duration.is_zero() {
            return Err(SpecError::BadValue {
                path: p(),
                key: "duration",
                message: "a run must measure for some time".into(),
            });
        }
        let warmup = parse_duration(file.warmup.as_deref(), DEFAULT_WARMUP, "warmup", path)?;
        let repeats = file.repeats.unwrap_or(DEFAULT_REPEATS);
        if repeats == 0 {
            return Err(SpecError::NotPositive {
                path: p(),
                key: "repeats",
                value: "0".into(),
            });
        }
        let per_point_placement = file.loadgen_threads.is_none() && file.pin.unwrap_or(true);
        let loadgen_threads = file.loadgen_threads.unwrap_or(1);
        let schedule = match file.schedule.as_deref() {
            None => Schedule::Alternating,
            Some(text) => <Schedule as clap::ValueEnum>::from_str(text, false).map_err(|_| {
                SpecError::BadValue {
                    path: p(),
                    key: "schedule",
                    message: format!(
                        "{text:?} is not a schedule; write \"alternating\" or \"side-by-side\""
                    ),
                }
            })?,
        };
        if loadgen_threads == 0 {
            return Err(SpecError::NotPositive {
                path: p(),
                key: "loadgen_threads",
                value: "0".into(),
            });
        }
        let mut rates: Vec<Option<f64>> = Vec::new();
        if file.closed_loop.unwrap_or(true) {
            rates.push(None);
        }
        for rate in &file.rates {
            if !(rate.is_finite() && *rate > 0.0) {
                return Err(SpecError::NotPositive {
                    path: p(),
                    key: "rates",
                    value: rate.to_string(),
                });
            }
            rates.push(Some(*rate));
        }
        if rates.is_empty() {
            return Err(SpecError::NoLoad { path: p() });
        }

        let commands: Vec<CommandEntry> = file.command.iter().map(CommandTable::entry).collect();
        let servers = resolve_servers(
            &file.servers,
            &commands,
            extra,
            &file.metrics,
            path,
            context,
        )?;
        let framings = resolve_framings(file.framings, &servers, path)?;
        let hosts = file
            .hosts
            .map(|hosts| crate::hosts::Hosts::check(hosts, path))
            .transpose()?;
        let (tls, tls_handshakes) = resolve_tls(file.tls, file.tls_handshakes, &servers, path)?;
        let transports = resolve_transports(file.transports, path)?;
        let variants = resolve_variants(&file.servers, &file.command, &transports, path, context)?;
        check_transports(
            &TransportChecks {
                transports: &transports,
                servers: &servers,
                variants: &variants,
                framings: &framings,
                payload_sizes: &payload_sizes,
                tls_on: tls.iter().chain(&tls_handshakes).any(|t| !t.is_off()),
                hosts: hosts.is_some(),
            },
            path,
        )?;

        Ok(Spec {
            servers,
            loops,
            connections,
            payload_sizes,
            framings,
            rates,
            pipeline,
            duration,
            warmup,
            repeats,
            loadgen_threads,
            pin: file.pin.unwrap_or(true),
            per_point_placement,
            schedule,
            tls,
            tls_handshakes,
            source: None,
            hosts,
            transports,
            variants,
        })
    }

    /// `server` as it runs at a point of `transport` (`transport_run::server_at`).
    pub fn server_at(&self, server: &ServerSpec, transport: PointTransport) -> Option<ServerSpec> {
        transport_run::server_at(server, transport, &self.variants)
    }
}

/// The spec's `transports`, deduplicated in the order given.
fn resolve_transports(
    listed: Option<Vec<String>>,
    path: &str,
) -> Result<Vec<PointTransport>, SpecError> {
    let Some(listed) = listed else {
        return Ok(vec![PointTransport::Tcp]);
    };
    if listed.is_empty() {
        return Err(SpecError::EmptyList {
            path: path.to_string(),
            key: "transports",
        });
    }
    let mut transports = Vec::new();
    for text in listed {
        let transport: PointTransport = text.parse().map_err(|message| SpecError::BadValue {
            path: path.to_string(),
            key: "transports",
            message,
        })?;
        if !transports.contains(&transport) {
            transports.push(transport);
        }
    }
    Ok(transports)
}

/// Each server's commands at the sweep's transports other than TCP: a built-in's variants
/// (`builtin.rs`), a `[[command]]`'s `unix_command`/`udp_command`. Each must name an existing
/// program, and carry `{path}` (Unix) or `{port}` (UDP).
fn resolve_variants(
    builtins: &[String],
    tables: &[CommandTable],
    transports: &[PointTransport],
    path: &str,
    context: &Context,
) -> Result<Variants, SpecError> {
    let wants = |t: PointTransport| transports.contains(&t);
    let mut variants = Variants::new();
    for name in builtins {
        let Some(builtin) = builtin::find(name) else {
            continue;
        };
        let commands = TransportCommands {
            unix: builtin
                .unix
                .filter(|_| wants(PointTransport::Unix))
                .map(|v| v.unix_command(&context.bin_dir)),
            udp: builtin
                .udp
                .filter(|_| wants(PointTransport::Udp))
                .map(|v| v.udp_command(&context.bin_dir)),
        };
        variants.insert(name.clone(), commands);
    }
    for table in tables {
        let commands = TransportCommands {
            unix: table
                .unix_command
                .clone()
                .filter(|_| wants(PointTransport::Unix)),
            udp: table
                .udp_command
                .clone()
                .filter(|_| wants(PointTransport::Udp)),
        };
        variants.insert(table.name.clone(), commands);
    }
    for (name, commands) in &variants {
        for (transport, command, placeholder) in [
            (
                PointTransport::Unix,
                &commands.unix,
                transport_run::PATH_PLACEHOLDER,
            ),
            (PointTransport::Udp, &commands.udp, "{port}"),
        ] {
            let Some(command) = command else { continue };
            if !command.contains(placeholder) {
                return Err(SpecError::BadValue {
                    path: path.to_string(),
                    key: "transports",
                    message: format!(
                        "server {name:?}: its {transport} command {command:?} has no {placeholder} placeholder; the harness must choose it"
                    ),
                });
            }
            let variant = ServerSpec {
                name: format!("{name} over {transport}"),
                command: command.clone(),
                framing: Framing::Raw,
                reference: false,
                metrics: false,
            };
            check_program(&variant, builtin::find(name).is_some(), path, context)?;
        }
    }
    Ok(variants)
}

/// What [`check_transports`] checks the transports against.
struct TransportChecks<'a> {
    transports: &'a [PointTransport],
    servers: &'a [ServerSpec],
    variants: &'a Variants,
    framings: &'a [Framing],
    payload_sizes: &'a [u64],
    tls_on: bool,
    hosts: bool,
}

/// The combinations that make no sense, each refused in one line: UDP with a framing other than
/// raw, payloads too short for loadgen's sequence number, TLS over anything but TCP, transports
/// other than TCP across hosts, a server that runs at none of the transports and a transport no
/// server runs at.
fn check_transports(checks: &TransportChecks<'_>, path: &str) -> Result<(), SpecError> {
    let bad = |message: String| SpecError::BadValue {
        path: path.to_string(),
        key: "transports",
        message,
    };
    let has = |t: PointTransport| checks.transports.contains(&t);
    let others: Vec<&str> = checks
        .transports
        .iter()
        .filter(|t| !t.is_tcp())
        .map(|t| t.as_str())
        .collect();
    if has(PointTransport::Udp) {
        if let Some(framing) = checks.framings.iter().find(|f| **f != Framing::Raw) {
            return Err(bad(format!(
                "udp carries raw datagrams only, but `framings` has {framing}: run {framing} in a sweep without udp"
            )));
        }
        let least = gev_loadgen::udp::SEQ_BYTES as u64;
        if let Some(size) = checks.payload_sizes.iter().find(|s| **s < least) {
            return Err(bad(format!(
                "udp needs payloads of at least {least} B (each datagram starts with loadgen's sequence number), but `payload_sizes` has {size}"
            )));
        }
    }
    if checks.tls_on && !others.is_empty() {
        return Err(bad(format!(
            "TLS runs over TCP only, but `transports` has {}: run TLS points in a sweep with transports = [\"tcp\"]",
            others.join(" and ")
        )));
    }
    if checks.hosts && !others.is_empty() {
        return Err(bad(format!(
            "{} points run on this machine only, but the spec has [hosts]: drop one of them",
            others.join(" and ")
        )));
    }
    for server in checks.servers {
        if !checks
            .transports
            .iter()
            .any(|&t| transport_run::runs_at(server, t, checks.variants))
        {
            return Err(bad(format!(
                "server {:?} runs at none of {}: it has no {} variant; add \"tcp\" or drop the server",
                server.name,
                others.join(", "),
                others.join(" or ")
            )));
        }
    }
    for &transport in checks.transports {
        if !checks
            .servers
            .iter()
            .any(|server| transport_run::runs_at(server, transport, checks.variants))
        {
            return Err(bad(format!(
                "no server runs over {transport} (built-ins with a Unix-socket variant: gev's examples and ref-tokio-echo; with a UDP one: gev-echo and ref-tokio-echo; a [[command]] adds unix_command or udp_command)"
            )));
        }
    }
    Ok(())
}

/// The TLS modes of the spec, checked against the servers: every server must run at some point
/// (a plain-only server needs `false` in `tls`; a TLS-only one needs `true` or handshakes).
fn resolve_tls(
    tls: Option<Vec<bool>>,
    handshakes: Option<Vec<String>>,
    servers: &[ServerSpec],
    path: &str,
) -> Result<(Vec<PointTls>, Vec<PointTls>), SpecError> {
    let bad = |key: &'static str, message: String| SpecError::BadValue {
        path: path.to_string(),
        key,
        message,
    };
    let modes: Vec<PointTls> = match tls {
        None => vec![PointTls::Off],
        Some(list) if list.is_empty() => {
            return Err(SpecError::EmptyList {
                path: path.to_string(),
                key: "tls",
            })
        }
        Some(list) => {
            let mut modes: Vec<PointTls> = Vec::new();
            for on in list {
                let mode = if on { PointTls::On } else { PointTls::Off };
                if !modes.contains(&mode) {
                    modes.push(mode);
                }
            }
            modes
        }
    };
    let mut handshake_modes = Vec::new();
    for name in handshakes.unwrap_or_default() {
        let mode = match name.as_str() {
            "resumed" => PointTls::HandshakesResumed,
            "full" => PointTls::HandshakesFull,
            other => {
                return Err(bad(
                    "tls_handshakes",
                    format!("{other:?} is not a handshake mode; write \"resumed\" and/or \"full\""),
                ))
            }
        };
        if !handshake_modes.contains(&mode) {
            handshake_modes.push(mode);
        }
    }
    let all: Vec<PointTls> = modes.iter().chain(&handshake_modes).copied().collect();
    for server in servers {
        if !all
            .iter()
            .any(|&mode| crate::tls_run::runs_at(server, mode))
        {
            let fix = if crate::tls_run::runs_at(server, PointTls::Off) {
                "it speaks only plain TCP: add false to `tls`, or drop the server"
            } else {
                "it speaks only TLS: add true to `tls` or list `tls_handshakes`, or drop the server"
            };
            return Err(bad(
                "tls",
                format!("server {:?} has no point: {fix}", server.name),
            ));
        }
    }
    Ok((modes, handshake_modes))
}

fn positive_list(
    values: Option<Vec<u64>>,
    default: u64,
    key: &'static str,
    path: &str,
) -> Result<Vec<u64>, SpecError> {
    match values {
        None => Ok(vec![default]),
        Some(values) if values.is_empty() => Err(SpecError::EmptyList {
            path: path.to_string(),
            key,
        }),
        Some(values) if values.contains(&0) => Err(SpecError::NotPositive {
            path: path.to_string(),
            key,
            value: "0".into(),
        }),
        Some(values) => Ok(values),
    }
}

fn parse_duration(
    value: Option<&str>,
    default: &str,
    key: &'static str,
    path: &str,
) -> Result<Duration, SpecError> {
    let text = value.unwrap_or(default);
    humantime::parse_duration(text).map_err(|error| SpecError::BadValue {
        path: path.to_string(),
        key,
        message: format!("{text:?} is not a duration ({error}); write e.g. \"5s\" or \"500ms\""),
    })
}

fn resolve_servers(
    names: &[String],
    commands: &[CommandEntry],
    extra: &[CommandEntry],
    metrics: &[String],
    path: &str,
    context: &Context,
) -> Result<Vec<ServerSpec>, SpecError> {
    let p = || path.to_string();
    let mut servers: Vec<ServerSpec> = Vec::new();
    for name in names {
        let builtin = builtin::find(name).ok_or_else(|| SpecError::UnknownServer {
            path: p(),
            name: name.clone(),
            known: builtin::names(),
        })?;
        servers.push(ServerSpec {
            name: builtin.name.to_string(),
            command: builtin.command(&context.bin_dir),
            framing: builtin.framing,
            reference: builtin.reference,
            metrics: false,
        });
    }
    for entry in commands.iter().chain(extra) {
        let framing = match &entry.framing {
            None => Framing::Raw,
            Some(text) => text.parse().map_err(|error| SpecError::BadValue {
                path: p(),
                key: "framing",
                message: format!("server {:?}: {error}", entry.name),
            })?,
        };
        servers.push(ServerSpec {
            name: entry.name.clone(),
            command: entry.command.clone(),
            framing,
            reference: entry.reference,
            metrics: false,
        });
    }
    if servers.is_empty() {
        return Err(SpecError::NoServers {
            path: p(),
            known: builtin::names(),
        });
    }
    let mut seen = BTreeSet::new();
    for server in &servers {
        if !seen.insert(server.name.as_str()) {
            return Err(SpecError::DuplicateServer {
                path: p(),
                name: server.name.clone(),
            });
        }
        check_command(server, path, context)?;
    }
    for name in metrics {
        let server = servers
            .iter_mut()
            .find(|server| &server.name == name)
            .ok_or_else(|| SpecError::MetricsUnknownServer {
                path: p(),
                name: name.clone(),
            })?;
        if builtin::find(name).is_some_and(|builtin| !builtin.has_metrics) {
            return Err(SpecError::MetricsUnsupported {
                path: p(),
                name: name.clone(),
            });
        }
        server.metrics = true;
    }
    Ok(servers)
}

/// The command must choose no port of its own and its program must exist.
fn check_command(server: &ServerSpec, path: &str, context: &Context) -> Result<(), SpecError> {
    if !server.command.contains("{port}") {
        return Err(SpecError::NoPortPlaceholder {
            path: path.to_string(),
            name: server.name.clone(),
            command: server.command.clone(),
        });
    }
    check_program(server, builtin::find(&server.name).is_some(), path, context)
}

/// The command's program must exist; `built_in` picks the hint (build the workspace, or give a
/// path).
fn check_program(
    server: &ServerSpec,
    built_in: bool,
    path: &str,
    context: &Context,
) -> Result<(), SpecError> {
    let Some(program) = server.command.split_whitespace().next() else {
        return Err(SpecError::EmptyCommand {
            path: path.to_string(),
            name: server.name.clone(),
        });
    };
    if find_program(program, &context.bin_dir).is_none() {
        let hint = if built_in || program.starts_with(&*context.bin_dir.to_string_lossy()) {
            "; build the workspace binaries with `cargo build --release --workspace --bins` (or --profile fast)".to_string()
        } else {
            "; give a path to an executable or a program on PATH".to_string()
        };
        return Err(SpecError::MissingBinary {
            path: path.to_string(),
            name: server.name.clone(),
            binary: program.to_string(),
            hint,
        });
    }
    Ok(())
}

/// Where `program` resolves: as a path if it has a slash, else in `bin_dir`, else on PATH.
pub fn find_program(program: &str, bin_dir: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    std::iter::once(bin_dir.to_path_buf())
        .chain(
            std::env::var_os("PATH")
                .map_or_else(Vec::new, |paths| std::env::split_paths(&paths).collect()),
        )
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn resolve_framings(
    listed: Option<Vec<String>>,
    servers: &[ServerSpec],
    path: &str,
) -> Result<Vec<Framing>, SpecError> {
    let spoken: Vec<Framing> = servers.iter().fold(Vec::new(), |mut all, server| {
        if !all.contains(&server.framing) {
            all.push(server.framing);
        }
        all
    });
    let Some(listed) = listed else {
        return Ok(spoken);
    };
    if listed.is_empty() {
        return Err(SpecError::EmptyList {
            path: path.to_string(),
            key: "framings",
        });
    }
    let mut framings = Vec::new();
    for text in listed {
        let framing: Framing = text.parse().map_err(|error| SpecError::BadValue {
            path: path.to_string(),
            key: "framings",
            message: format!("{error}"),
        })?;
        if !spoken.contains(&framing) {
            return Err(SpecError::FramingUnused {
                path: path.to_string(),
                framing,
            });
        }
        if !framings.contains(&framing) {
            framings.push(framing);
        }
    }
    let shown = framings
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(server) = servers.iter().find(|s| !framings.contains(&s.framing)) {
        return Err(SpecError::FramingNotServed {
            path: path.to_string(),
            name: server.name.clone(),
            framing: server.framing,
            framings: shown,
        });
    }
    Ok(framings)
}

/// Parses `--server-cmd [NAME=]COMMAND`: the name is the text before `=` when it has no
/// whitespace, else the command's program file name.
pub fn parse_server_cmd(text: &str) -> Result<CommandEntry, String> {
    let text = text.trim();
    let (name, command) = match text.split_once('=') {
        Some((name, command)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
            (name.to_string(), command.trim().to_string())
        }
        _ => {
            let program = text
                .split_whitespace()
                .next()
                .ok_or("the command is empty")?;
            let name = Path::new(program)
                .file_name()
                .map_or(program.to_string(), |name| {
                    name.to_string_lossy().into_owned()
                });
            (name, text.to_string())
        }
    };
    if command.is_empty() {
        return Err(format!("--server-cmd {text:?}: the command is empty"));
    }
    Ok(CommandEntry {
        name,
        command,
        framing: None,
        reference: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context whose bin dir holds every built-in (empty files stand in for binaries).
    fn context() -> (tempfile::TempDir, Context) {
        let dir = tempfile::tempdir().unwrap();
        for builtin in builtin::BUILT_INS {
            std::fs::write(dir.path().join(builtin.name), b"").unwrap();
            for variant in builtin.unix.iter().chain(&builtin.udp) {
                std::fs::write(dir.path().join(variant.binary), b"").unwrap();
            }
        }
        let context = Context {
            bin_dir: dir.path().to_path_buf(),
            cores: 2,
        };
        (dir, context)
    }

    fn parse(text: &str) -> Result<Spec, SpecError> {
        let (_dir, context) = context();
        Spec::parse(text, "t.toml", &[], &context)
    }

    #[test]
    fn defaults_fill_a_minimal_spec() {
        let spec = parse(r#"servers = ["gev-echo", "ref-mio-echo"]"#).unwrap();
        assert_eq!(spec.loops, vec![1, 2]);
        assert_eq!(spec.connections, vec![DEFAULT_CONNECTIONS]);
        assert_eq!(spec.payload_sizes, vec![DEFAULT_PAYLOAD_SIZE]);
        assert_eq!(spec.framings, vec![Framing::Raw]);
        assert_eq!(spec.rates, vec![None]);
        assert_eq!(spec.duration, Duration::from_secs(5));
        assert_eq!(spec.repeats, DEFAULT_REPEATS);
        assert!(spec.servers[1].reference && !spec.servers[0].reference);
        assert!(spec.servers[0].command.contains("--loops {loops}"));
    }

    #[test]
    fn schedule_and_placement_keys() {
        let spec = parse("servers = [\"gev-echo\"]\nschedule = \"side-by-side\"").unwrap();
        assert_eq!(spec.schedule, Schedule::SideBySide);
        assert!(spec.per_point_placement);
        let fixed = parse("servers = [\"gev-echo\"]\nloadgen_threads = 2").unwrap();
        assert_eq!(fixed.schedule, Schedule::Alternating);
        assert!(!fixed.per_point_placement);
        let unpinned = parse("servers = [\"gev-echo\"]\npin = false").unwrap();
        assert!(!unpinned.per_point_placement);
        let bad = parse("servers = [\"gev-echo\"]\nschedule = \"sideways\"").unwrap_err();
        assert!(bad.to_string().contains("`schedule`"), "{bad}");
    }

    #[test]
    fn rates_add_open_loop_points() {
        let spec = parse(
            "servers = [\"gev-echo\"]\nclosed_loop = false\nrates = [1000, 2000.5]\nmetrics = [\"gev-echo\"]",
        )
        .unwrap();
        assert_eq!(spec.rates, vec![Some(1000.0), Some(2000.5)]);
        assert!(spec.servers[0].metrics);
    }

    #[test]
    fn tls_modes_and_the_servers_they_fit() {
        let spec = parse(
            "servers = [\"gev-echo\", \"ref-tokio-tls-echo\"]\ntls = [false, true, true]\ntls_handshakes = [\"resumed\", \"full\"]",
        )
        .unwrap();
        assert_eq!(spec.tls, vec![PointTls::Off, PointTls::On]);
        assert_eq!(
            spec.tls_handshakes,
            vec![PointTls::HandshakesResumed, PointTls::HandshakesFull]
        );
        assert!(spec.servers[1].command.ends_with("{tls}"));
        let plain = parse("servers = [\"gev-echo\"]").unwrap();
        assert_eq!(plain.tls, vec![PointTls::Off]);
        assert!(plain.tls_handshakes.is_empty());
        for (text, needle) in [
            ("servers = [\"ref-tokio-tls-echo\"]", "speaks only TLS"),
            (
                "servers = [\"ref-tokio-echo\"]\ntls = [true]",
                "speaks only plain TCP",
            ),
            ("servers = [\"gev-echo\"]\ntls = []", "`tls` is empty"),
            (
                "servers = [\"gev-echo\"]\ntls_handshakes = [\"half\"]",
                "\"half\"",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn transports_and_their_variants() {
        let spec = parse(
            "servers = [\"gev-echo\", \"ref-tokio-echo\", \"ref-mio-echo\"]\ntransports = [\"tcp\", \"unix\", \"udp\", \"unix\"]",
        )
        .unwrap();
        assert_eq!(
            spec.transports,
            vec![
                PointTransport::Tcp,
                PointTransport::Unix,
                PointTransport::Udp
            ]
        );
        let [gev, tokio, mio] = [0, 1, 2].map(|i| spec.servers[i].clone());
        let udp = spec.server_at(&gev, PointTransport::Udp).unwrap();
        assert!(udp
            .command
            .contains("/gev-udp-echo --host 127.0.0.1 --port {port}"));
        assert_eq!(udp.name, "gev-echo");
        let unix = spec.server_at(&tokio, PointTransport::Unix).unwrap();
        assert!(unix
            .command
            .contains("/ref-tokio-unix-echo --listen unix:{path} --workers {loops}"));
        assert!(spec.server_at(&mio, PointTransport::Unix).is_none());
        assert!(spec.server_at(&mio, PointTransport::Tcp).is_some());
        // Default: TCP only, no variants filled.
        let plain = parse("servers = [\"gev-echo\"]").unwrap();
        assert_eq!(plain.transports, vec![PointTransport::Tcp]);
        assert!(plain
            .server_at(&plain.servers[0], PointTransport::Udp)
            .is_none());
        // A [[command]] joins with its own commands.
        let custom = parse(
            "transports = [\"unix\"]\n[[command]]\nname = \"x\"\ncommand = \"sh {port}\"\nunix_command = \"sh {path}\"",
        )
        .unwrap();
        let x = custom
            .server_at(&custom.servers[0], PointTransport::Unix)
            .unwrap();
        assert_eq!(x.command, "sh {path}");
    }

    #[test]
    fn nonsense_transport_combinations_are_refused_in_one_line() {
        for (text, needle) in [
            ("servers = [\"gev-echo\"]\ntransports = []", "`transports` is empty"),
            ("servers = [\"gev-echo\"]\ntransports = [\"sctp\"]", "\"sctp\" is not a transport"),
            (
                "servers = [\"gev-echo\", \"gev-http\"]\ntransports = [\"tcp\", \"udp\"]",
                "udp carries raw datagrams only, but `framings` has http",
            ),
            (
                "servers = [\"gev-echo\"]\ntransports = [\"udp\"]\npayload_sizes = [4]",
                "at least 8 B",
            ),
            (
                "servers = [\"gev-echo\"]\ntransports = [\"tcp\", \"udp\"]\ntls = [false, true]",
                "TLS runs over TCP only, but `transports` has udp",
            ),
            (
                "servers = [\"gev-echo\"]\ntransports = [\"unix\"]\ntls_handshakes = [\"full\"]",
                "TLS runs over TCP only",
            ),
            (
                "servers = [\"gev-echo\", \"ref-mio-echo\"]\ntransports = [\"unix\"]",
                "server \"ref-mio-echo\" runs at none of unix",
            ),
            (
                "servers = [\"gev-http\"]\ntransports = [\"tcp\", \"udp\"]",
                "udp carries raw datagrams only",
            ),
            (
                "servers = [\"ref-mio-echo\", \"gev-protocol\"]\nframings = [\"raw\", \"length\"]\ntransports = [\"tcp\", \"unix\", \"udp\"]",
                "`framings` has length",
            ),
            (
                "transports = [\"unix\"]\n[[command]]\nname = \"x\"\ncommand = \"sh {port}\"\nunix_command = \"sh --listen here\"",
                "has no {path} placeholder",
            ),
            (
                "transports = [\"tcp\", \"udp\"]\n[[command]]\nname = \"x\"\ncommand = \"sh {port}\"\nudp_command = \"/nonexistent/u {port}\"",
                "binary /nonexistent/u not found",
            ),
        ] {
            let message = parse(text).unwrap_err().to_string();
            assert!(message.contains(needle), "{text:?} gave {message:?}");
            assert!(!message.contains('\n'), "{message}");
        }
        // A transport no server runs at.
        let unused = parse("servers = [\"ref-mio-echo\"]\ntransports = [\"tcp\", \"udp\"]")
            .unwrap_err()
            .to_string();
        assert!(unused.contains("no server runs over udp"), "{unused}");
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let error = parse("servers = [\"gev-echo\"]\nconections = [1]").unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("t.toml:2: unknown field `conections`"),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn each_rule_is_enforced() {
        let cases: [(&str, &str); 13] = [
            ("servers = [\"gev-echo\"]\nloops = []", "`loops` is empty"),
            ("servers = [\"gev-echo\"]\nloops = [0]", "contains 0"),
            ("servers = [\"gnet\"]", "unknown server \"gnet\""),
            ("servers = []", "no servers"),
            ("servers = [\"gev-echo\", \"gev-echo\"]", "listed twice"),
            (
                "servers = [\"gev-echo\"]\nconnections = []",
                "`connections` is empty",
            ),
            (
                "servers = [\"gev-echo\"]\nrepeats = 0",
                "`repeats` contains 0",
            ),
            (
                "servers = [\"gev-echo\"]\nduration = \"soon\"",
                "not a duration",
            ),
            ("servers = [\"gev-echo\"]\nclosed_loop = false", "no load"),
            (
                "servers = [\"gev-echo\"]\nrates = [-1]",
                "`rates` contains -1",
            ),
            (
                "servers = [\"gev-echo\", \"gev-http\"]\nframings = [\"raw\"]",
                "speaks http",
            ),
            (
                "servers = [\"gev-echo\"]\nframings = [\"http\"]",
                "no server speaks it",
            ),
            (
                "servers = [\"ref-mio-echo\"]\nmetrics = [\"ref-mio-echo\"]",
                "no metrics endpoint",
            ),
        ];
        for (text, expected) in cases {
            let message = parse(text).unwrap_err().to_string();
            assert!(message.contains(expected), "{text:?} gave {message:?}");
        }
    }

    #[test]
    fn commands_need_a_port_placeholder_and_a_binary() {
        let no_port = "[[command]]\nname = \"x\"\ncommand = \"/bin/sh --loops {loops}\"";
        assert!(parse(no_port)
            .unwrap_err()
            .to_string()
            .contains("no {port} placeholder"));
        let missing = "[[command]]\nname = \"x\"\ncommand = \"/nonexistent/srv --port {port}\"";
        assert!(parse(missing)
            .unwrap_err()
            .to_string()
            .contains("binary /nonexistent/srv not found"));
        let ok = "[[command]]\nname = \"x\"\ncommand = \"sh -c true {port}\"\nframing = \"length\"";
        let spec = parse(ok).unwrap();
        assert_eq!(spec.servers[0].framing, Framing::Length);
    }

    #[test]
    fn missing_builtin_binary_says_how_to_build() {
        let context = Context {
            bin_dir: PathBuf::from("/nonexistent-bin-dir"),
            cores: 1,
        };
        let error = Spec::parse("servers = [\"gev-echo\"]", "t.toml", &[], &context).unwrap_err();
        assert!(error.to_string().contains("cargo build"), "{error}");
    }

    #[test]
    fn server_cmd_flag_names_the_server() {
        let named = parse_server_cmd("mine=/bin/srv --port {port}").unwrap();
        assert_eq!(
            (named.name.as_str(), named.command.as_str()),
            ("mine", "/bin/srv --port {port}")
        );
        let unnamed = parse_server_cmd("/opt/x/gnet-echo --port={port}").unwrap();
        assert_eq!(unnamed.name, "gnet-echo");
        assert_eq!(unnamed.command, "/opt/x/gnet-echo --port={port}");
        assert!(parse_server_cmd("  ").is_err());
    }

    #[test]
    fn the_shipped_sweeps_are_valid() {
        let (_dir, context) = context();
        let sweeps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sweeps");
        let quick = Spec::load(&sweeps.join("quick.toml"), &[], &context).unwrap();
        assert_eq!(quick.servers.len(), 3);
        assert_eq!(quick.loops, vec![1, 2]);
        let full = Spec::load(&sweeps.join("full.toml"), &[], &context).unwrap();
        assert_eq!(full.framings.len(), 4);
        assert!(full.servers.iter().any(|s| s.metrics));
        assert!(full.source.is_some());
        let cost = Spec::load(&sweeps.join("cost.toml"), &[], &context).unwrap();
        assert_eq!(cost.connections, vec![50, 500]);
        assert!(cost.per_point_placement);
        let transports = Spec::load(&sweeps.join("transports.toml"), &[], &context).unwrap();
        assert_eq!(transports.transports, PointTransport::ALL.to_vec());
        assert_eq!(
            (transports.connections.clone(), transports.loops.clone()),
            (vec![50], vec![1, 2])
        );
        let scraped: Vec<&str> = transports
            .servers
            .iter()
            .filter(|s| s.metrics)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(scraped, ["gev-echo"]);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_parsed_or_rejected_in_one_line(text in "\\PC{0,200}") {
            let (_dir, context) = context();
            if let Err(error) = Spec::parse(&text, "p.toml", &[], &context) {
                let message = error.to_string();
                proptest::prop_assert!(!message.contains('\n'), "{}", message);
                proptest::prop_assert!(message.starts_with("p.toml"), "{}", message);
            }
        }

        #[test]
        fn server_cmd_names_never_hold_whitespace(text in "[a-z=/ {}.-]{1,40}") {
            if let Ok(entry) = parse_server_cmd(&text) {
                proptest::prop_assert!(!entry.name.contains(char::is_whitespace));
                proptest::prop_assert!(!entry.command.is_empty());
            }
        }
    }
}
