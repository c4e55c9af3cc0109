//! One run of one server at one load point, for `harness compare`: start the server on a free
//! port, run `loadgen --json` against it, stop the server with SIGINT and check it exited, and
//! hand back the loadgen summary.
//!
//! Where it sits: `session.rs` asks for a run -> **this** -> processes (server pinned to core 0,
//! loadgen to core 1 with `taskset` when the machine has two cores or more and `taskset` exists;
//! otherwise unpinned) -> `gev_loadgen::Summary`.
//!
//! This is the seam to the harness's shared runner (`runner.rs`, issue 5): when it offers a
//! public run-a-point call, this file shrinks to a call into it.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use gev_loadgen::Summary;

use super::ComparePoint;

/// How long a server may take to print `listening on` (a cold start under a loaded machine).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to exit after SIGINT (the contract is within a second).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long loadgen may run beyond its measured duration (connect, warm-up, report).
const LOADGEN_GRACE: Duration = Duration::from_secs(30);

/// Kills the process if it is still running when dropped, so no server outlives a failed run.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What one run measured.
pub struct PointRun {
    /// loadgen's summary of the measured window.
    pub summary: Summary,
    /// CPU time the server spent (all threads) over the measured window, when readable.
    pub server_cpu: Option<Duration>,
}

/// Runs `command` (with `{port}` = 0 and `{loops}` substituted, split on whitespace) at `point`.
pub fn run(command: &str, point: &ComparePoint) -> anyhow::Result<PointRun> {
    let argv: Vec<String> = command
        .replace("{port}", "0")
        .replace("{loops}", &point.loops.to_string())
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pinning = Pinning::detect();
    let mut server = Command::new(pinning.program(0, &argv[0]));
    server
        .args(pinning.args(0, &argv[0]))
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = ChildGuard(
        server
            .spawn()
            .with_context(|| format!("cannot start server `{}`", argv.join(" ")))?,
    );
    let stdout = server.0.stdout.take().context("server stdout")?;
    let addr = match wait_for_listening(stdout, STARTUP_TIMEOUT) {
        Some(addr) => addr,
        None => {
            let status = server.0.try_wait().ok().flatten();
            bail!(
                "server `{}` did not print `listening on <addr>` within {STARTUP_TIMEOUT:?}{}",
                argv.join(" "),
                status
                    .map(|s| format!(" (it exited: {s})"))
                    .unwrap_or_default()
            )
        }
    };

    let loadgen = loadgen_path()?;
    let mut client = Command::new(pinning.program(1, &loadgen.display().to_string()));
    client
        .args(pinning.args(1, &loadgen.display().to_string()))
        .arg(addr.to_string())
        .args(["-c", &point.connections.to_string()])
        .args([
            "-d",
            &humantime::format_duration(point.duration).to_string(),
        ])
        .args([
            "--warmup",
            &humantime::format_duration(point.warmup).to_string(),
        ])
        .args(["--size", &point.size.to_string()])
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut client = ChildGuard(
        client
            .spawn()
            .with_context(|| format!("cannot run {}", loadgen.display()))?,
    );
    let stdout_reader = drain(client.0.stdout.take());
    let stderr_reader = drain(client.0.stderr.take());
    // The server's CPU is read when loadgen's warm-up ends and after loadgen exits (the server
    // is idle from then on), so the window matches the measured one to within connect time.
    thread::sleep(point.warmup);
    let server_pid = server.0.id();
    let cpu_at_start = server_cpu_ns(server_pid);
    let deadline = Instant::now() + point.duration + LOADGEN_GRACE;
    let status = loop {
        if let Some(status) = client.0.try_wait().context("waiting for loadgen")? {
            break status;
        }
        if Instant::now() >= deadline {
            bail!(
                "loadgen against {addr} did not finish within {:?} of a {:?} run (killed)",
                LOADGEN_GRACE,
                point.duration
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let cpu_at_end = server_cpu_ns(server_pid);
    stop(&mut server.0, &argv.join(" "))?;
    let stdout = stdout_reader.join().unwrap_or_default();
    let stderr = stderr_reader.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "loadgen against {addr} failed ({status}): {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&stdout);
    let summary =
        Summary::from_json(text.trim()).context("loadgen printed an unreadable summary")?;
    let server_cpu = match (cpu_at_start, cpu_at_end) {
        (Some(start), Some(end)) if end >= start => Some(Duration::from_nanos(end - start)),
        _ => None,
    };
    Ok(PointRun {
        summary,
        server_cpu,
    })
}

/// Reads a child's pipe to the end on a helper thread, so the child never blocks on it.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// CPU time of every thread of process `pid` so far, in nanoseconds, from the scheduler's
/// `/proc/PID/task/TID/schedstat` (first field: time on CPU). `None` where that is not readable
/// (no procfs, or a kernel without schedstats).
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

/// Server and loadgen on disjoint cores when `taskset` and two cores are available.
struct Pinning {
    taskset: bool,
}

impl Pinning {
    fn detect() -> Pinning {
        let cores = thread::available_parallelism().map_or(1, usize::from);
        let taskset = cores >= 2
            && Command::new("taskset")
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        Pinning { taskset }
    }

    fn program(&self, _core: usize, program: &str) -> String {
        if self.taskset {
            "taskset".to_string()
        } else {
            program.to_string()
        }
    }

    fn args(&self, core: usize, program: &str) -> Vec<String> {
        if self.taskset {
            vec!["-c".to_string(), core.to_string(), program.to_string()]
        } else {
            Vec::new()
        }
    }
}

/// `loadgen` next to the running harness binary (both are workspace binaries of one profile).
fn loadgen_path() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the harness executable")?;
    let path = exe
        .parent()
        .map(|dir| dir.join("loadgen"))
        .context("the harness executable has no directory")?;
    if !path.exists() {
        bail!(
            "{} is missing: build it with `cargo build --profile fast -p gev-loadgen` (or --release)",
            path.display()
        );
    }
    Ok(path)
}

fn wait_for_listening(stdout: std::process::ChildStdout, timeout: Duration) -> Option<SocketAddr> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        // Keep reading after the line so the server never blocks on a full pipe.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(addr) = line.trim().strip_prefix("listening on ") {
                let _ = sender.send(addr.trim().parse::<SocketAddr>().ok());
            }
        }
    });
    let addr = receiver.recv_timeout(timeout).ok().flatten()?;
    let ip = if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        }
    } else {
        addr.ip()
    };
    Some(SocketAddr::new(ip, addr.port()))
}

fn stop(child: &mut Child, command: &str) -> anyhow::Result<()> {
    // SAFETY: the pid is our own child, not yet reaped (we hold the `Child`), so it cannot name
    // an unrelated process; kill(2) has no memory effects.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("waiting for the server")? {
            if !status.success() {
                bail!("server `{command}` exited with {status} after SIGINT");
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("server `{command}` did not exit within {STOP_TIMEOUT:?} of SIGINT (killed)");
        }
        thread::sleep(Duration::from_millis(20));
    }
}
