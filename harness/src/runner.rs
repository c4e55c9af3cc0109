//! One run: start a server process on a free port, run `loadgen --json` against it, stop the
//! server with SIGINT and check that it exited, and return everything as a [`RunRecord`].
//!
//! Where it sits: sweep (`sweep.rs`) or compare session -> **runner** -> processes (server and
//! loadgen, pinned to disjoint cores by `pinning.rs`) -> `gev_loadgen::Summary` -> record. This is
//! the harness's only code that starts processes; `harness sweep` and `harness compare` both run
//! points through [`run_point`]. No child outlives a run: every child is held by a guard that
//! kills it on drop, including on error paths.
//!
//! A server is started from its command template with `{port}` = 0 and `{loops}` substituted,
//! split on whitespace (no shell quoting: wrap anything fancier in a script). It must print
//! `listening on <ip:port>` on stdout once bound (docs/design.md); an unspecified bind address is
//! reached over loopback. A template with `{path}` (a Unix-socket server, `transport_run.rs`)
//! gets a socket path in a temporary directory of its own, removed when the server is stopped,
//! and must print `listening on unix:<path>`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gev_loadgen::Summary;
use gev_reports::results::{Placement, PointParams, PointTls, RunRecord, ServerExit};

use crate::framing::Framing;
use crate::pinning::Pinning;
use crate::{tls_run, transport_run};

/// Default wait for a server's `listening on` line (a cold start on a loaded machine).
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Default wait for a server to exit after SIGINT (the contract is one second).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time loadgen may take beyond warm-up plus duration (connecting, reporting).
pub const DEFAULT_LOADGEN_GRACE: Duration = Duration::from_secs(30);
/// How long the start-up check keeps a server running before stopping it.
const PROBE_HOLD: Duration = Duration::from_millis(300);
/// How often a run checks on its loadgens.
const POLL: Duration = Duration::from_millis(10);
/// How much of a failing process's stderr an error message quotes.
const STDERR_TAIL: usize = 2048;

/// A server as a sweep or comparison runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    /// The name in results.
    pub name: String,
    /// The command template with `{port}` and `{loops}` placeholders.
    pub command: String,
    /// What it speaks (loadgen's `--framing`).
    pub framing: Framing,
    /// Whether other servers are compared against it.
    pub reference: bool,
    /// Start it with `--metrics 127.0.0.1:PORT` and scrape `/metrics` before and after the run.
    pub metrics: bool,
}

/// How runs are made, the same for every run of a sweep.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The loadgen binary.
    pub loadgen: PathBuf,
    /// Core placement of server and loadgen.
    pub pinning: Pinning,
    /// loadgen worker threads (`-t`).
    pub loadgen_threads: u32,
    /// Wait for the `listening on` line.
    pub startup_timeout: Duration,
    /// Wait for exit after SIGINT before killing.
    pub stop_timeout: Duration,
    /// Time loadgen may take beyond warm-up plus duration.
    pub loadgen_grace: Duration,
    /// When set, `pinning` and `loadgen_threads` are planned per point over these cores
    /// instead ([`Pinning::for_loops`]: the server on as many cores as it has loops, loadgen on
    /// every other core with one thread per core).
    pub per_point_cores: Option<Vec<usize>>,
    /// The sweep's TLS certificate, for TLS points (`tls_run.rs`); `None` without TLS.
    pub tls_cert: Option<crate::tls_cert::CertFiles>,
}

impl RunOptions {
    /// Options with the default timeouts, one loadgen thread and the given pinning.
    pub fn new(loadgen: PathBuf, pinning: Pinning) -> RunOptions {
        RunOptions {
            loadgen,
            pinning,
            loadgen_threads: 1,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            loadgen_grace: DEFAULT_LOADGEN_GRACE,
            per_point_cores: None,
            tls_cert: None,
        }
    }

    /// The options one point runs with: `self`, or with `per_point_cores` the pinning and
    /// loadgen threads planned for `loops`.
    pub fn for_point(&self, loops: u32) -> RunOptions {
        match &self.per_point_cores {
            None => self.clone(),
            Some(cores) => {
                let (pinning, loadgen_threads) = Pinning::for_loops(cores, loops);
                RunOptions {
                    pinning,
                    loadgen_threads,
                    ..self.clone()
                }
            }
        }
    }
}

/// Why a run produced no record.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start server `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error(
        "server `{command}` did not print `listening on <addr>` within {timeout:?}{exited}{stderr}"
    )]
    NeverListened {
        command: String,
        timeout: Duration,
        exited: String,
        stderr: String,
    },
    #[error("cannot start loadgen {path}: {source}")]
    LoadgenSpawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("loadgen against {target} did not finish within {limit:?} (killed)")]
    LoadgenTimeout { target: String, limit: Duration },
    #[error("loadgen against {target} failed ({status}){server}: {stderr}")]
    LoadgenFailed {
        target: String,
        status: String,
        server: String,
        stderr: String,
    },
    #[error("loadgen against {target} printed no readable summary: {reason}")]
    BadSummary { target: String, reason: String },
    #[error("{path} is missing: build it with `cargo build --release --workspace --bins` (or --profile fast)")]
    MissingLoadgen { path: PathBuf },
    #[error("cannot locate the harness binary: {0}")]
    CurrentExe(std::io::Error),
    #[error("waiting for a child process: {0}")]
    Wait(std::io::Error),
    #[error("server `{command}`: {message}")]
    WrongListener { command: String, message: String },
}

/// The directory of the running binary, where the workspace's other binaries are built.
pub fn bin_dir() -> Result<PathBuf, RunError> {
    let exe = std::env::current_exe().map_err(RunError::CurrentExe)?;
    // Test executables live in target/<profile>/deps; the binaries one level up.
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(if dir.ends_with("deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    })
}

/// The `loadgen` binary in `bin_dir`, which must exist.
pub fn loadgen_in(bin_dir: &Path) -> Result<PathBuf, RunError> {
    let path = bin_dir.join("loadgen");
    if path.is_file() {
        Ok(path)
    } else {
        Err(RunError::MissingLoadgen { path })
    }
}

/// Kills the child if it is still running when dropped, so no process outlives a failed run.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Where a started server listens, from its `listening on` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listening {
    /// An IP address and port (TCP or UDP); an unspecified address is already made loopback.
    Ip(SocketAddr),
    /// A Unix stream socket's path.
    Unix(PathBuf),
}

impl Listening {
    /// The address of a `listening on` line: `unix:/path` or `ip:port`.
    pub fn parse(text: &str) -> Option<Listening> {
        let text = text.trim();
        match text.strip_prefix("unix:") {
            Some(path) if !path.is_empty() => Some(Listening::Unix(PathBuf::from(path))),
            Some(_) => None,
            None => text
                .parse::<SocketAddr>()
                .ok()
                .map(|a| Listening::Ip(reachable(a))),
        }
    }
}

impl std::fmt::Display for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listening::Ip(addr) => write!(f, "{addr}"),
            Listening::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A server started and listening.
pub struct ServerProcess {
    child: ChildGuard,
    command: String,
    listening: Listening,
    metrics_addr: Option<SocketAddr>,
    stderr: StderrTail,
    /// A Unix-socket server's own directory for its socket; dropped (removed) after the child,
    /// which is declared first.
    _socket_dir: Option<tempfile::TempDir>,
}

impl ServerProcess {
    /// Starts `server` with `loops` loops and waits for its `listening on` line.
    pub fn start(
        server: &ServerSpec,
        loops: u32,
        options: &RunOptions,
    ) -> Result<ServerProcess, RunError> {
        // A `{tls}` placeholder not filled for a TLS point yet (start-up check): plain.
        let command = tls_run::command_at(server, PointTls::Off, options.tls_cert.as_ref());
        // A Unix-socket server: a fresh directory per process, so servers started side by side
        // never share a path, and a short one (a socket path has at most 107 bytes).
        let socket_dir = if command.contains(transport_run::PATH_PLACEHOLDER) {
            Some(
                tempfile::Builder::new()
                    .prefix("gev-sock-")
                    .tempdir()
                    .map_err(|source| RunError::Spawn {
                        command: command.clone(),
                        source,
                    })?,
            )
        } else {
            None
        };
        let socket_path = socket_dir
            .as_ref()
            .map(|dir| dir.path().join("server.sock").display().to_string())
            .unwrap_or_default();
        let mut argv: Vec<String> = command
            .replace("{port}", "0")
            .replace(transport_run::PATH_PLACEHOLDER, &socket_path)
            .replace("{loops}", &loops.to_string())
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let metrics_addr = if server.metrics {
            let addr = free_loopback_addr().map_err(|source| RunError::Spawn {
                command: server.command.clone(),
                source,
            })?;
            argv.push("--metrics".into());
            argv.push(addr.to_string());
            Some(addr)
        } else {
            None
        };
        let shown = argv.join(" ");
        let Some((program, args)) = argv.split_first() else {
            return Err(RunError::Spawn {
                command: shown,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
            });
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        options.pinning.apply_server(&mut command);
        let mut child = ChildGuard(command.spawn().map_err(|source| RunError::Spawn {
            command: shown.clone(),
            source,
        })?);
        let stderr = StderrTail::collect(child.0.stderr.take());
        let stdout = child.0.stdout.take();
        let Some(listening) =
            stdout.and_then(|out| wait_for_listening(out, options.startup_timeout))
        else {
            let exited = match child.0.try_wait() {
                Ok(Some(status)) => format!(" (it exited: {status})"),
                _ => String::new(),
            };
            // Give a process that just died a moment to finish writing its reason.
            thread::sleep(Duration::from_millis(50));
            return Err(RunError::NeverListened {
                command: shown,
                timeout: options.startup_timeout,
                exited,
                stderr: stderr.quoted(),
            });
        };
        Ok(ServerProcess {
            child,
            command: shown,
            listening,
            metrics_addr,
            stderr,
            _socket_dir: socket_dir,
        })
    }

    /// Where clients reach it over IP; `0.0.0.0:0` for a Unix-socket server (see
    /// [`ServerProcess::listening`]).
    pub fn addr(&self) -> SocketAddr {
        match &self.listening {
            Listening::Ip(addr) => *addr,
            Listening::Unix(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        }
    }

    /// Where clients reach it: an IP address or a Unix socket path.
    pub fn listening(&self) -> &Listening {
        &self.listening
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The command line it was started with.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Its Prometheus text, if it was started with metrics and answers.
    pub fn scrape_metrics(&self) -> Option<String> {
        self.metrics_addr.and_then(|addr| scrape(addr).ok())
    }

    /// If it has already exited, how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.0.try_wait().ok().flatten()
    }

    /// Sends SIGINT and waits up to `timeout` for it to exit; kills it after that.
    pub fn stop(mut self, timeout: Duration) -> ServerExit {
        if let Some(status) = self.exited() {
            return ServerExit::Early {
                status: status.to_string(),
            };
        }
        let asked = Instant::now();
        // SAFETY: the pid is our own child, not yet reaped (the guard holds the `Child`), so it
        // cannot name an unrelated process; kill(2) has no memory effects.
        unsafe {
            libc::kill(self.child.0.id() as libc::pid_t, libc::SIGINT);
        }
        loop {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                return if status.success() {
                    ServerExit::Clean {
                        after_secs: asked.elapsed().as_secs_f64(),
                    }
                } else {
                    ServerExit::Failed {
                        status: status.to_string(),
                    }
                };
            }
            if asked.elapsed() >= timeout {
                let _ = self.child.0.kill();
                let _ = self.child.0.wait();
                return ServerExit::Killed {
                    timeout_secs: timeout.as_secs_f64(),
                };
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last lines the server wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        self.stderr.text()
    }
}

/// Starts the server once and stops it: proves before a long sweep that it starts, opens its
/// port and stops cleanly.
pub fn probe(
    server: &ServerSpec,
    loops: u32,
    options: &RunOptions,
) -> Result<ServerExit, RunError> {
    let process = ServerProcess::start(server, loops, &options.for_point(loops))?;
    // Servers may print their line a moment before their signal handlers are in place; a real
    // run is always longer than this, so the check waits as long before asking it to stop.
    thread::sleep(PROBE_HOLD);
    Ok(process.stop(options.stop_timeout))
}

/// Runs one server at one point: start it, drive it with loadgen, stop it.
pub fn run_point(
    server: &ServerSpec,
    point: &PointParams,
    repeat: u32,
    options: &RunOptions,
) -> Result<RunRecord, RunError> {
    let mut records = run_side_by_side(std::slice::from_ref(server), point, repeat, options)?;
    Ok(records.remove(0))
}

/// Runs several servers at one point **at the same time**: all are started (pinned to the
/// server cores, so they share them), each gets its own loadgen with the same settings (pinned
/// to the loadgen cores), the loadgens start together, and each server's CPU time is read over
/// the same measured window. Whatever else the machine does during the window weighs on every
/// server alike, which is what `harness compare --schedule side-by-side` builds on. One record
/// per server, in the order given; any failed run fails the whole call.
pub fn run_side_by_side(
    servers: &[ServerSpec],
    point: &PointParams,
    repeat: u32,
    options: &RunOptions,
) -> Result<Vec<RunRecord>, RunError> {
    let options = &options.for_point(point.loops);
    let placement = options.pinning.cores().map(|(server, loadgen)| Placement {
        server_cores: server.to_vec(),
        loadgen_cores: loadgen.to_vec(),
        loadgen_threads: options.loadgen_threads.max(1),
    });
    // `{tls}` filled for this point: certificate flags at TLS points.
    let servers_at: Vec<ServerSpec> = servers
        .iter()
        .map(|server| ServerSpec {
            command: tls_run::command_at(server, point.tls, options.tls_cert.as_ref()),
            ..server.clone()
        })
        .collect();
    let servers = &servers_at[..];
    let mut processes = servers
        .iter()
        .map(|server| ServerProcess::start(server, point.loops, options))
        .collect::<Result<Vec<_>, _>>()?;
    let targets: Vec<String> = servers
        .iter()
        .zip(&processes)
        .map(|(server, process)| {
            transport_run::target(server.framing, point.transport, process.listening()).map_err(
                |message| RunError::WrongListener {
                    command: process.command().to_string(),
                    message,
                },
            )
        })
        .collect::<Result<_, _>>()?;
    let metrics_before: Vec<Option<String>> = processes
        .iter()
        .map(ServerProcess::scrape_metrics)
        .collect();

    let mut loadgens = Vec::with_capacity(servers.len());
    for (server, target) in servers.iter().zip(&targets) {
        let mut command = Command::new(&options.loadgen);
        command
            .arg(target)
            .args(loadgen_args(server.framing, point, options.loadgen_threads))
            .args(tls_run::loadgen_args(point, options.tls_cert.as_ref()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        options.pinning.apply_loadgen(&mut command);
        let mut child = ChildGuard(command.spawn().map_err(|source| RunError::LoadgenSpawn {
            path: options.loadgen.clone(),
            source,
        })?);
        let stdout = drain(child.0.stdout.take());
        let stderr = drain(child.0.stderr.take());
        loadgens.push((child, stdout, stderr));
    }

    let started = Instant::now();
    let warmup = Duration::from_secs_f64(point.warmup_secs.max(0.0));
    let limit =
        warmup + Duration::from_secs_f64(point.duration_secs.max(0.0)) + options.loadgen_grace;
    let mut cpu_at_warmup_end: Option<Vec<Option<u64>>> = None;
    let mut window_start: Option<Instant> = None;
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; loadgens.len()];
    loop {
        for ((child, _, _), status) in loadgens.iter_mut().zip(statuses.iter_mut()) {
            if status.is_none() {
                *status = child.0.try_wait().map_err(RunError::Wait)?;
            }
        }
        if statuses.iter().all(Option::is_some) {
            break;
        }
        let elapsed = started.elapsed();
        if cpu_at_warmup_end.is_none() && elapsed >= warmup {
            cpu_at_warmup_end = Some(processes.iter().map(|p| server_cpu_ns(p.pid())).collect());
            window_start = Some(Instant::now());
        }
        if elapsed >= limit {
            let waiting = statuses.iter().position(Option::is_none).unwrap_or(0);
            return Err(RunError::LoadgenTimeout {
                target: targets[waiting].clone(),
                limit,
            });
        }
        // Wake right at the end of the warm-up, so the CPU window matches loadgen's.
        let nap = match cpu_at_warmup_end {
            None => warmup.saturating_sub(elapsed).min(POLL),
            Some(_) => POLL,
        };
        thread::sleep(nap.max(Duration::from_millis(1)));
    }
    let cpu_at_end: Vec<Option<u64>> = processes.iter().map(|p| server_cpu_ns(p.pid())).collect();
    let window_secs = window_start.map(|start| start.elapsed().as_secs_f64());
    let metrics_after: Vec<Option<String>> = processes
        .iter()
        .map(ServerProcess::scrape_metrics)
        .collect();
    let early_exits: Vec<Option<ExitStatus>> =
        processes.iter_mut().map(ServerProcess::exited).collect();
    let server_exits: Vec<ServerExit> = processes
        .into_iter()
        .map(|process| process.stop(options.stop_timeout))
        .collect();

    let mut records = Vec::with_capacity(servers.len());
    for (index, ((_child, stdout, stderr), status)) in
        loadgens.into_iter().zip(statuses).enumerate()
    {
        let target = targets[index].clone();
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        let status =
            status.ok_or_else(|| RunError::Wait(std::io::Error::other("no exit status")))?;
        if !status.success() {
            return Err(RunError::LoadgenFailed {
                target,
                status: status.to_string(),
                server: early_exits[index]
                    .map_or(String::new(), |s| format!("; the server had exited ({s})")),
                stderr: last_line(&String::from_utf8_lossy(&stderr)),
            });
        }
        let summary =
            Summary::from_json(String::from_utf8_lossy(&stdout).trim()).map_err(|error| {
                RunError::BadSummary {
                    target: target.clone(),
                    reason: error.to_string(),
                }
            })?;
        let start = cpu_at_warmup_end.as_ref().and_then(|cpu| cpu[index]);
        let server_cpu_secs = match (start, cpu_at_end[index]) {
            (Some(start), Some(end)) if end >= start => Some((end - start) as f64 / 1e9),
            _ => None,
        };
        records.push(RunRecord {
            server: servers[index].name.clone(),
            point: point.clone(),
            repeat,
            addr: target,
            summary,
            server_cpu_secs,
            server_cpu_window_secs: server_cpu_secs.and(window_secs),
            placement: placement.clone(),
            metrics_before: metrics_before[index].clone(),
            metrics_after: metrics_after[index].clone(),
            server_exit: server_exits[index].clone(),
            hosts: Vec::new(),
        });
    }
    Ok(records)
}

/// loadgen's flags for a point (the target comes first, separately).
pub fn loadgen_args(framing: Framing, point: &PointParams, threads: u32) -> Vec<String> {
    let mut args = vec![
        "--framing".to_string(),
        framing.as_str().to_string(),
        "-c".to_string(),
        point.connections.to_string(),
        "-t".to_string(),
        threads.max(1).to_string(),
        "-d".to_string(),
        millis(point.duration_secs),
        "--warmup".to_string(),
        millis(point.warmup_secs),
        "--pipeline".to_string(),
        point.pipeline.to_string(),
        "--json".to_string(),
    ];
    // HTTP GET requests carry no payload; every other framing echoes one of this size.
    if framing != Framing::Http {
        args.push("--size".into());
        args.push(point.payload_size.to_string());
    }
    if let Some(rate) = point.rate {
        args.push("-R".into());
        args.push(rate.to_string());
    }
    args
}

fn millis(secs: f64) -> String {
    format!("{}ms", (secs.max(0.0) * 1000.0).round() as u64)
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("(no output)")
        .trim()
        .to_string()
}

/// Reads a child's pipe to the end on a helper thread, so the child never blocks on it.
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// The last [`STDERR_TAIL`] bytes a server wrote to stderr, read continuously so a chatty server
/// never blocks on a full pipe.
#[derive(Clone, Default)]
struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    fn collect(pipe: Option<impl Read + Send + 'static>) -> StderrTail {
        let tail = StderrTail::default();
        let shared = Arc::clone(&tail.0);
        if let Some(mut pipe) = pipe {
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(read) = pipe.read(&mut chunk) {
                    if read == 0 {
                        break;
                    }
                    if let Ok(mut bytes) = shared.lock() {
                        bytes.extend_from_slice(&chunk[..read]);
                        let excess = bytes.len().saturating_sub(STDERR_TAIL);
                        bytes.drain(..excess);
                    }
                }
            });
        }
        tail
    }

    fn text(&self) -> String {
        self.0
            .lock()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    fn quoted(&self) -> String {
        let text = self.text();
        let line = last_line(&text);
        if text.trim().is_empty() {
            String::new()
        } else {
            format!("; its stderr ends: {line}")
        }
    }
}

/// Waits for `listening on <addr>` (`ip:port` or `unix:/path`); keeps reading afterwards so the
/// server never blocks on stdout.
fn wait_for_listening(stdout: ChildStdout, timeout: Duration) -> Option<Listening> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                let _ = sender.send(Listening::parse(addr));
            }
        }
    });
    receiver.recv_timeout(timeout).ok().flatten()
}

/// An unspecified bind address (0.0.0.0, ::) is reached over loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if !addr.ip().is_unspecified() {
        return addr;
    }
    let ip = match addr {
        SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    };
    SocketAddr::new(ip, addr.port())
}

/// A loopback address with a port that was free a moment ago (for the metrics endpoint, whose
/// port the server does not announce).
fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()
}

/// GET /metrics over plain HTTP/1.0; the body if the status is 200.
fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if head
        .lines()
        .next()
        .is_some_and(|status| status.contains(" 200"))
    {
        Ok(body.to_string())
    } else {
        Err(std::io::Error::other(format!(
            "metrics endpoint {addr} answered `{}`",
            head.lines().next().unwrap_or("")
        )))
    }
}

/// CPU time of every thread of process `pid` so far, in nanoseconds, from
/// `/proc/PID/task/TID/schedstat` (first field: time on CPU); `None` where not readable.
fn server_cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(rate: Option<f64>) -> PointParams {
        PointParams {
            loops: 2,
            framing: "raw".into(),
            connections: 8,
            payload_size: 64,
            pipeline: 1,
            rate,
            duration_secs: 1.5,
            warmup_secs: 0.25,
            tls: Default::default(),
            transport: Default::default(),
        }
    }

    #[test]
    fn loadgen_args_carry_the_point() {
        let args = loadgen_args(Framing::Raw, &point(Some(5000.0)), 1).join(" ");
        assert_eq!(
            args,
            "--framing raw -c 8 -t 1 -d 1500ms --warmup 250ms --pipeline 1 --json --size 64 -R 5000"
        );
        let http = loadgen_args(Framing::Http, &point(None), 2).join(" ");
        assert!(!http.contains("--size") && !http.contains("-R") && http.contains("-t 2"));
    }

    #[test]
    fn listening_lines_name_an_address_or_a_socket_path() {
        assert_eq!(
            Listening::parse(" 0.0.0.0:7 "),
            Some(Listening::Ip("127.0.0.1:7".parse().unwrap()))
        );
        assert_eq!(
            Listening::parse("unix:/tmp/x/s.sock"),
            Some(Listening::Unix(PathBuf::from("/tmp/x/s.sock")))
        );
        assert_eq!(Listening::parse("unix:"), None);
        assert_eq!(Listening::parse("somewhere"), None);
        assert_eq!(Listening::Unix(PathBuf::from("/a")).to_string(), "unix:/a");
    }

    #[test]
    fn a_unix_server_gets_its_own_socket_directory_removed_at_stop() {
        // Prints the path it was given (`{path}`) as a Unix listening line.
        let server = ServerSpec {
            command:
                "sh -c echo${IFS}listening${IFS}on${IFS}unix:$0;exec${IFS}sleep${IFS}30 {path}"
                    .into(),
            ..shell("unix", "exit")
        };
        let first = ServerProcess::start(&server, 1, &options()).unwrap();
        let second = ServerProcess::start(&server, 1, &options()).unwrap();
        let (Listening::Unix(a), Listening::Unix(b)) =
            (first.listening().clone(), second.listening().clone())
        else {
            panic!("expected Unix listeners");
        };
        assert_ne!(
            a.parent(),
            b.parent(),
            "servers side by side share a directory"
        );
        assert!(a.ends_with("server.sock") && a.parent().unwrap().is_dir());
        assert_eq!(first.addr(), "0.0.0.0:0".parse::<SocketAddr>().unwrap());
        let dir = a.parent().unwrap().to_path_buf();
        first.stop(Duration::from_millis(300));
        assert!(!dir.exists(), "{} left behind", dir.display());
        second.stop(Duration::from_millis(300));
    }

    #[test]
    fn unspecified_addresses_become_loopback() {
        assert_eq!(
            reachable("0.0.0.0:80".parse().unwrap()),
            "127.0.0.1:80".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            reachable("[::]:80".parse().unwrap()),
            "[::1]:80".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            reachable("10.0.0.1:80".parse().unwrap()),
            "10.0.0.1:80".parse::<SocketAddr>().unwrap()
        );
    }

    fn options() -> RunOptions {
        let mut options = RunOptions::new(
            PathBuf::from("/nonexistent/loadgen"),
            Pinning::Unpinned("test".into()),
        );
        options.startup_timeout = Duration::from_secs(2);
        options
    }

    fn shell(name: &str, script: &str) -> ServerSpec {
        ServerSpec {
            name: name.into(),
            command: format!("sh -c {script} {{port}}"),
            framing: Framing::Raw,
            reference: false,
            metrics: false,
        }
    }

    #[test]
    fn a_server_that_never_listens_is_a_clear_error() {
        // `sh -c SCRIPT` with a one-word script: the script exits without printing the line.
        let error = match ServerProcess::start(&shell("silent", "exit"), 1, &options()) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("a silent server was accepted"),
        };
        assert!(
            error.contains("did not print `listening on <addr>`"),
            "{error}"
        );
    }

    #[test]
    fn a_server_that_hangs_silently_times_out_and_is_killed() {
        let server = ServerSpec {
            // `sleep 30 0` sleeps 30 s and never prints the line.
            command: "sleep 30 {port}".into(),
            ..shell("hanging", "exit")
        };
        let mut options = options();
        options.startup_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let error = match ServerProcess::start(&server, 1, &options) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("a silent server was accepted"),
        };
        assert!(error.contains("within 300ms"), "{error}");
        // The guard killed and reaped it rather than waiting out the sleep.
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let server = ServerSpec {
            command: "/nonexistent/server --port {port}".into(),
            ..shell("missing", "exit")
        };
        assert!(matches!(
            ServerProcess::start(&server, 1, &options()),
            Err(RunError::Spawn { .. })
        ));
    }

    /// A server script in a temp dir; `body` runs after the listening line is printed.
    fn script_server(dir: &Path, trap: &str) -> ServerSpec {
        let path = dir.join("server.sh");
        std::fs::write(
            &path,
            format!("#!/bin/sh\n{trap}\necho \"listening on 127.0.0.1:$1\"\nwhile :; do sleep 0.05; done\n"),
        )
        .unwrap();
        let mut permissions = std::fs::metadata(&path).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&path, permissions).unwrap();
        ServerSpec {
            command: format!("{} {{port}}", path.display()),
            ..shell("script", "exit")
        }
    }

    #[test]
    fn stop_records_how_the_server_ended() {
        let dir = tempfile::tempdir().unwrap();
        // Ignores SIGINT: killed at the timeout.
        let stubborn =
            ServerProcess::start(&script_server(dir.path(), "trap '' INT"), 1, &options()).unwrap();
        assert_eq!(
            stubborn.addr(),
            "127.0.0.1:0".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            stubborn.stop(Duration::from_millis(300)),
            ServerExit::Killed { timeout_secs: 0.3 }
        );
        // Exits 3 on SIGINT: a failed stop, with its status.
        let failing = ServerProcess::start(
            &script_server(dir.path(), "trap 'exit 3' INT"),
            1,
            &options(),
        )
        .unwrap();
        match failing.stop(Duration::from_secs(5)) {
            ServerExit::Failed { status } => assert!(status.contains('3'), "{status}"),
            other => panic!("expected a failed stop, got {other:?}"),
        }
        // Exits 0 on SIGINT: clean.
        let clean = ServerProcess::start(
            &script_server(dir.path(), "trap 'exit 0' INT"),
            1,
            &options(),
        )
        .unwrap();
        assert!(clean.stop(Duration::from_secs(5)).is_clean());
    }
}
