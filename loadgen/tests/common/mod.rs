//! Helpers shared by the loadgen end-to-end tests: run the `loadgen` binary with a deadline and
//! parse its JSON summary; start workspace servers (gev-echo, gev-protocol, gev-websocket,
//! gev-http) and learn their port from the `listening on ADDR` line; and small in-process test
//! servers on std threads for behaviour no real server should have on purpose (stall once, reset
//! every connection, corrupt replies). Every process and thread started here stops when its guard
//! drops, even when a test fails.
//!
//! Binaries are found next to the test executable's profile directory
//! (`target/<profile>/deps/<test>` -> `target/<profile>/<bin>`), see docs/design.md.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use gev_loadgen::Summary;

/// How long a starting server may take to print `listening on` (the machine is shared).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// The path of workspace binary `name` for the profile the tests were built with.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
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

/// Waits up to `timeout` for `child` to exit.
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

/// A child process killed on drop unless it already exited.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A server process started from a workspace binary.
pub struct ServerProcess {
    guard: ChildGuard,
    addr: SocketAddr,
    /// What followed `listening on ` (`unix:/path` for a Unix socket, whose `addr` is a
    /// placeholder).
    listen_line: String,
}

impl ServerProcess {
    /// Start `target/<profile>/<name> --host 127.0.0.1 --port 0 ARGS...` and wait for its
    /// `listening on ADDR` line.
    pub fn start(name: &str, args: &[&str]) -> ServerProcess {
        Self::start_command(name, Command::new(bin_path(name)), args)
    }

    /// Like [`start`](Self::start) but under `taskset -c CPUS`.
    pub fn start_pinned(name: &str, cpus: &str, args: &[&str]) -> ServerProcess {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(cpus).arg(bin_path(name));
        Self::start_command(name, command, args)
    }

    fn start_command(name: &str, mut command: Command, args: &[&str]) -> ServerProcess {
        command
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let guard = ChildGuard(child);
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
            for _ in lines {}
        });
        let line = rx.recv_timeout(STARTUP_TIMEOUT).unwrap_or_else(|_| {
            panic!("{name} printed no `listening on ADDR` line within {STARTUP_TIMEOUT:?}")
        });
        if line.starts_with("unix:") {
            return ServerProcess {
                guard,
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                listen_line: line,
            };
        }
        let addr: SocketAddr = line
            .parse()
            .unwrap_or_else(|e| panic!("{name} printed a bad address {line:?}: {e}"));
        ServerProcess {
            guard,
            addr,
            listen_line: line,
        }
    }

    /// The address as printed (`unix:/path` for Unix sockets).
    pub fn listen_line(&self) -> &str {
        &self.listen_line
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.guard.0.id()
    }

    /// SIGINT, then wait up to `timeout` for the exit status.
    pub fn interrupt(&mut self, timeout: Duration) -> Option<ExitStatus> {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is our live child.
        unsafe {
            libc::kill(self.guard.0.id() as libc::pid_t, libc::SIGINT);
        }
        wait_child(&mut self.guard.0, timeout)
    }
}

/// What a loadgen run printed.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The JSON summary (asserts a zero exit first).
    pub fn summary(&self) -> Summary {
        assert!(
            self.status.success(),
            "loadgen failed ({}): {}",
            self.status,
            self.stderr
        );
        Summary::from_json(self.stdout.trim())
            .unwrap_or_else(|e| panic!("bad summary ({e}): {}", self.stdout))
    }
}

/// Run `loadgen ARGS...` (optionally under `taskset -c CPUS`), killing it after `deadline`.
pub fn loadgen_with(args: &[&str], deadline: Duration, cpus: Option<&str>) -> Output {
    let mut command = match cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpus).arg(bin_path("loadgen"));
            c
        }
        None => Command::new(bin_path("loadgen")),
    };
    let child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let mut guard = ChildGuard(child);
    let mut stdout = guard.0.stdout.take().expect("stdout");
    let mut stderr = guard.0.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_child(&mut guard.0, deadline)
        .unwrap_or_else(|| panic!("loadgen {args:?} did not finish within {deadline:?}"));
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Run `loadgen ARGS...` with a deadline.
pub fn loadgen(args: &[&str], deadline: Duration) -> Output {
    loadgen_with(args, deadline, None)
}

/// How an in-process test server treats its connections.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Echo every byte back (valid for raw and length-prefixed framing).
    Echo,
    /// Echo, but once, `after` the server started, hold every reply for `stall`.
    StallOnce { after: Duration, stall: Duration },
    /// Echo every read after holding it for this long (a server slower than the offered load).
    Delay(Duration),
    /// Read everything, answer nothing.
    Silent,
    /// Read the first bytes of each connection, then reset it (SO_LINGER 0).
    Reset,
    /// Echo, but flip one byte of every `every`-th read.
    Corrupt { every: u64 },
}

/// A std-thread TCP server for behaviour the real servers must not have. Stops accepting on
/// drop; connection threads end when their client goes away.
pub struct TestServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept_thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(behaviour: Behaviour) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        // One lock every connection takes before echoing, so a stall holds the whole server.
        let gate = Arc::new(Mutex::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let accept_stop = Arc::clone(&stop);
        let accept_thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let gate = Arc::clone(&gate);
                let reads = Arc::clone(&reads);
                std::thread::spawn(move || serve(stream, behaviour, started, &gate, &reads));
            }
        });
        TestServer {
            addr,
            stop,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    started: Instant,
    gate: &Mutex<bool>,
    reads: &AtomicU64,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        match behaviour {
            Behaviour::Echo => {}
            Behaviour::Delay(delay) => std::thread::sleep(delay),
            Behaviour::Silent => continue,
            Behaviour::StallOnce { after, stall } => {
                let mut stalled = gate.lock().unwrap_or_else(|e| e.into_inner());
                if !*stalled && started.elapsed() >= after {
                    *stalled = true;
                    std::thread::sleep(stall);
                }
            }
            Behaviour::Reset => {
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                return;
            }
            Behaviour::Corrupt { every } => {
                if reads.fetch_add(1, Ordering::Relaxed) % every == every - 1 {
                    buffer[0] ^= 0xFF;
                }
            }
        }
        if stream.write_all(&buffer[..n]).is_err() {
            return;
        }
    }
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
