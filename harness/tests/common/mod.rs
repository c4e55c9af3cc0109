//! Helpers shared by the harness's end-to-end tests: finding the workspace binaries and running
//! the `harness` binary with a time limit (a child that overruns is killed, never left behind).

#![allow(dead_code)] // Each test file uses a different subset.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// `target/<profile>/`: the test executable is `target/<profile>/deps/<test>`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// A workspace binary, which must have been built.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --profile fast --workspace --bins` first",
        path.display()
    );
    path
}

/// What a finished `harness` run printed.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Kills the child on drop if it is still running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `harness ARGS` in `dir`, failing the test if it takes longer than `limit`.
pub fn harness(args: &[&str], dir: &Path, limit: Duration) -> Finished {
    // Every binary the harness needs sits next to it.
    for name in [
        "harness",
        "loadgen",
        "gev-echo",
        "ref-mio-echo",
        "ref-tokio-echo",
    ] {
        binary(name);
    }
    let mut child = Guard(
        Command::new(binary("harness"))
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("harness starts"),
    );
    let stdout = read_all(child.0.stdout.take());
    let stderr = read_all(child.0.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("waiting for harness") {
            break status;
        }
        assert!(
            started.elapsed() < limit,
            "harness {args:?} ran longer than {limit:?} (killed)"
        );
        thread::sleep(Duration::from_millis(50));
    };
    Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}
