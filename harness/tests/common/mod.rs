//! Helpers shared by the harness's end-to-end tests: finding the workspace binaries and running
//! the `harness` binary (or a script) with a time limit (a child that overruns is killed, never
//! left behind).

#![allow(dead_code)] // Each test file uses a different subset.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The workspace's root directory (scripts live in `scripts/` under it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate sits in the workspace")
        .to_path_buf()
}

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

/// Kills the child on drop if it is still running; with `group`, its whole process group (it was
/// started as the group's leader), so nothing it started is left behind either.
struct Guard {
    child: Child,
    group: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if self.group {
                // SAFETY: the child leads its own process group and is not yet reaped (the guard
                // holds it), so the negative pid names only that group; kill(2) touches no memory.
                unsafe {
                    libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
                }
            } else {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
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
    let mut command = Command::new(binary("harness"));
    command.args(args).current_dir(dir);
    run_within(command, &format!("harness {args:?}"), limit, false)
}

/// Runs `command` (stdin closed, stdout and stderr read to the end), failing the test if it takes
/// longer than `limit`; `what` names it in that failure. With `group`, the command runs in a
/// process group of its own, and a test that fails kills the whole group (for scripts that start
/// other programs).
pub fn run_within(mut command: Command, what: &str, limit: Duration, group: bool) -> Finished {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if group {
        command.process_group(0);
    }
    let mut guard = Guard {
        child: command
            .spawn()
            .unwrap_or_else(|e| panic!("{what} does not start: {e}")),
        group,
    };
    let stdout = read_all(guard.child.stdout.take());
    let stderr = read_all(guard.child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = guard.child.try_wait().expect("waiting for a child") {
            break status;
        }
        assert!(
            started.elapsed() < limit,
            "{what} ran longer than {limit:?} (killed)"
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
