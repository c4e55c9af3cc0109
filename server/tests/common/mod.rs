//! Helpers shared by the end-to-end tests of every crate area (echo, protocol, WebSocket, HTTP,
//! metrics): start a workspace binary and learn its address from its `listening on ADDR` line,
//! stop it with SIGINT within a deadline, and always kill it on drop (even when a test fails).
//!
//! Binaries are found next to the test executable's profile directory
//! (`target/<profile>/deps/<test>` -> `target/<profile>/<bin>`), see docs/design.md.
#![allow(dead_code)]

pub mod echo;
pub mod tls;
pub mod udp;

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a starting binary may take to print its `listening on` line (the machine is shared
/// and may be busy compiling).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// The path of workspace binary `name` for the profile the tests were built with.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary is in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "binary {} not found; run `cargo build --profile fast --workspace --bins` first",
        path.display()
    );
    path
}

/// A running server process started from a workspace binary. Killed (SIGKILL) on drop unless
/// it already exited.
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// What followed `listening on ` (e.g. `127.0.0.1:4242` or `unix:/tmp/x.sock`).
    listen_line: String,
    name: String,
    exited: Option<ExitStatus>,
}

impl ServerProcess {
    /// Starts workspace binary `name` on an ephemeral loopback port with `--loops LOOPS` and
    /// `extra` flags (`--host 127.0.0.1 --port 0 --loops LOOPS EXTRA…`).
    pub fn on_loopback(name: &str, loops: &str, extra: &[&str]) -> ServerProcess {
        let mut args = vec!["--host", "127.0.0.1", "--port", "0", "--loops", loops];
        args.extend_from_slice(extra);
        ServerProcess::start(name, &args)
    }

    /// Starts `target/<profile>/<name> ARGS...` (pass `--port 0` to get a free port) and waits
    /// for its `listening on ADDR` stdout line. Stderr is inherited (the test's captured output).
    pub fn start(name: &str, args: &[&str]) -> ServerProcess {
        Self::start_with(name, args, &[])
    }

    /// Like [`start`](Self::start), with extra environment variables (e.g. `RUST_LOG`).
    pub fn start_with(name: &str, args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        Self::start_configured(name, args, |command| {
            for (key, value) in env {
                command.env(key, value);
            }
        })
    }

    /// Like [`start`](Self::start), letting `configure` adjust the command before it is spawned
    /// (environment, stderr redirection, `pre_exec` limits). Stdout stays piped.
    pub fn start_configured(
        name: &str,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> ServerProcess {
        let path = bin_path(name);
        let mut command = Command::new(&path);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        configure(&mut command);
        command.stdout(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { return };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                    break;
                }
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let mut guard = ServerProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            listen_line: String::new(),
            name: name.to_string(),
            exited: None,
        };
        let line = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let status = guard.child.try_wait().ok().flatten();
                panic!("{name} {args:?} printed no `listening on ADDR` line within {STARTUP_TIMEOUT:?} (exit status: {status:?})");
            }
        };
        guard.listen_line = line.clone();
        if line.starts_with("unix:") {
            return guard;
        }
        let mut addr: SocketAddr = line
            .parse()
            .unwrap_or_else(|e| panic!("{name} printed a bad address {line:?}: {e}"));
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        guard.addr = addr;
        guard
    }

    /// Starts `name` with at most `nofile` open descriptors (`RLIMIT_NOFILE`), logging at info
    /// level to `log`: the descriptor-exhaustion tests.
    pub fn start_with_nofile_limit(
        name: &str,
        args: &[&str],
        nofile: u64,
        log: std::fs::File,
    ) -> ServerProcess {
        use std::os::unix::process::CommandExt;
        Self::start_configured(name, args, move |command| {
            command.stderr(log).env("RUST_LOG", "info");
            // SAFETY: the closure runs in the forked child before exec and only calls
            // setrlimit, which is async-signal-safe, with a valid pointer.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: nofile,
                        rlim_max: nofile,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        })
    }

    /// Where to connect (an unspecified listening address is replaced by loopback).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address as printed on the `listening on` line (`unix:/path` for Unix sockets, whose
    /// [`addr`](Self::addr) is a placeholder).
    pub fn listen_line(&self) -> &str {
        &self.listen_line
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGINT`) to the process.
    pub fn signal(&self, signal: i32) {
        send_signal(self.child.id(), signal);
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        self.exited = wait_child(&mut self.child, timeout);
        self.exited
    }

    /// Sends SIGINT and waits up to `timeout` for the exit; `Err` says what happened instead.
    pub fn interrupt_and_wait(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let started = Instant::now();
        self.signal(libc::SIGINT);
        self.wait_timeout(timeout).ok_or_else(|| {
            format!(
                "{} did not exit within {timeout:?} of SIGINT (waited {:?})",
                self.name,
                started.elapsed()
            )
        })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.exited.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; a stale pid at worst signals nothing.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// Waits up to `timeout` for `child` to exit (polling every 10 ms).
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// CPU time (user + system, in clock ticks) used so far by the threads of `pid` whose name
/// starts with `prefix` (e.g. `gev-loop`), from `/proc/PID/task/*/stat`.
pub fn thread_cpu_ticks(pid: u32, prefix: &str) -> u64 {
    let mut total = 0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read /proc/PID/task");
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // Format: pid (comm) state ppid ... ; comm may contain spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // After the comm: state is field 0, utime is field 11, stime field 12.
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        total += utime + stime;
    }
    total
}

/// Clock ticks per second for [`thread_cpu_ticks`].
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// Resident set size of `pid` in KiB, from `/proc/PID/status` (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// A client process (e.g. `openssl s_client`) killed on drop unless taken back with
/// [`ChildGuard::take`], so a failing test never leaves it running.
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child taken")
    }

    /// The child, no longer killed on drop (wait for it yourself).
    pub fn take(mut self) -> Child {
        self.0.take().expect("child taken")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes 64 KiB chunks of `byte` to `stream` (made non-blocking) until writes have would-block
/// for half a second on end: every buffer on the way is full, the server has stopped reading
/// this client. Fails the test if that takes longer than `limit`. Returns the bytes accepted.
pub fn write_until_stalled(stream: &mut TcpStream, byte: u8, limit: Duration) -> usize {
    stream.set_nonblocking(true).expect("non-blocking");
    let chunk = vec![byte; 64 * 1024];
    let mut sent = 0usize;
    let mut stalled_since: Option<Instant> = None;
    let deadline = Instant::now() + limit;
    while stalled_since.is_none_or(|t| t.elapsed() < Duration::from_millis(500)) {
        assert!(
            Instant::now() < deadline,
            "the never-reading client never stalled ({sent} bytes sent)"
        );
        match stream.write(&chunk) {
            Ok(n) => {
                sent += n;
                stalled_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalled_since.get_or_insert_with(Instant::now);
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("hog write: {e}"),
        }
    }
    sent
}
