//! Helpers shared by the WebSocket end-to-end tests (`ws_*.rs`): finding the workspace binaries
//! and the Python test virtualenv, and running a server process that is always killed.

#![allow(dead_code)] // Each test crate uses a different subset.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The workspace root (`server/..`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("server/ has a parent")
        .to_path_buf()
}

/// A workspace binary next to this test's profile directory (`target/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --profile fast --workspace --bins` first",
        path.display()
    );
    path
}

/// A program of the test virtualenv (`.venv-test/bin/<name>`).
pub fn venv_bin(name: &str) -> PathBuf {
    let path = workspace_root().join(".venv-test/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `scripts/setup-test-deps.sh` to create the test virtualenv",
        path.display()
    );
    path
}

/// A child process killed (and reaped) when dropped, so a failing test leaves nothing behind.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running server: its address and its process.
pub struct ServerProcess {
    pub addr: SocketAddr,
    pub child: ChildGuard,
}

impl ServerProcess {
    /// Starts `binary --host 127.0.0.1 --port 0 <args>` and waits (10 s at most) for its
    /// `listening on ADDR` line.
    pub fn start(binary: &Path, args: &[&str]) -> ServerProcess {
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut child = ChildGuard(child);
        let stdout = child.0.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| {
                panic!(
                    "{} printed no `listening on` line in 10 s",
                    binary.display()
                )
            });
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from {}: {line:?}", binary.display()));
        ServerProcess { addr, child }
    }

    /// Sends SIGINT and waits (5 s at most) for the exit status.
    pub fn interrupt(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
        unsafe { libc::kill(self.child.0.id() as libc::pid_t, libc::SIGINT) };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server did not exit within 5 s of SIGINT"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
