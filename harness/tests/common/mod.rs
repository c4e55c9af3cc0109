//! Helpers shared by the harness's end-to-end tests: finding the workspace binaries, running
//! the `harness` binary (or a script) with a time limit (a child that overruns is killed, never
//! left behind), and running a sweep from a spec text to its parsed results.

#![allow(dead_code)] // Each test file uses a different subset.

use std::collections::BTreeSet;
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
    for name in SWEEP_BINARIES {
        binary(name);
    }
    let mut command = Command::new(binary("harness"));
    command.args(args).current_dir(dir);
    run_within(command, &format!("harness {args:?}"), limit, false)
}

/// The binaries of a TCP sweep of gev-echo and the references.
pub const SWEEP_BINARIES: [&str; 5] = [
    "harness",
    "loadgen",
    "gev-echo",
    "ref-mio-echo",
    "ref-tokio-echo",
];

/// Every binary a sweep over all transports may start (the TCP servers and their Unix-socket
/// and UDP variants).
pub const TRANSPORT_BINARIES: [&str; 7] = [
    "harness",
    "loadgen",
    "gev-echo",
    "gev-udp-echo",
    "ref-tokio-echo",
    "ref-tokio-unix-echo",
    "ref-tokio-udp-echo",
];

/// Runs `harness ARGS` in `dir` in a process group of its own (killed whole if it overruns
/// `limit`, servers included) after checking that every one of `binaries` was built.
pub fn harness_with(args: &[&str], dir: &Path, limit: Duration, binaries: &[&str]) -> Finished {
    for name in binaries {
        binary(name);
    }
    let mut command = Command::new(binary("harness"));
    command.args(args).current_dir(dir);
    run_within(command, &format!("harness {args:?}"), limit, true)
}

/// The run must have exited 0; else the failure shows its status and output.
pub fn assert_succeeded(run: &Finished, what: &str) {
    assert!(
        run.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

/// A finished sweep: what it printed, its parsed results and its output directory.
pub struct Swept {
    pub run: Finished,
    pub results: gev_reports::Results,
    pub dir: PathBuf,
}

/// Writes `spec` to `<work>/<file>`, runs `harness sweep <file> --out <work>/out EXTRA…` in
/// `work` (bounded by `limit`, needing `binaries`), and returns it; the sweep must succeed and
/// write one output directory with a results.json that parses.
pub fn sweep(
    work: &Path,
    (file, spec): (&str, &str),
    extra: &[&str],
    limit: Duration,
    binaries: &[&str],
) -> Swept {
    let path = work.join(file);
    std::fs::write(&path, spec).expect("spec written");
    let out = work.join("out");
    let (path, out_arg) = (path.to_string_lossy(), out.to_string_lossy());
    let mut args = vec!["sweep", &path, "--out", &out_arg];
    args.extend_from_slice(extra);
    let run = harness_with(&args, work, limit, binaries);
    assert_succeeded(&run, "sweep");
    let dir = only_subdir(&out);
    Swept {
        results: read_results(&dir),
        run,
        dir,
    }
}

/// The one directory a sweep wrote under `root`.
pub fn only_subdir(root: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("output root exists")
        .map(|entry| entry.expect("readable entry").path())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "expected one output directory, found {dirs:?}"
    );
    dirs.into_iter().next().unwrap_or_default()
}

/// `<dir>/results.json`, parsed into the harness's result types.
pub fn read_results(dir: &Path) -> gev_reports::Results {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    gev_reports::Results::from_json(&text).expect("results.json parses into Results")
}

/// The file names under `<dir>/plots`.
pub fn plot_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("plots"))
        .expect("plots/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// The run's server stopped cleanly (exit 0 within the stop timeout).
pub fn assert_stopped_cleanly(run: &gev_reports::results::RunRecord) {
    assert!(
        run.server_exit.is_clean(),
        "{} {:?}",
        run.server,
        run.server_exit
    );
}

/// Every run's server stopped cleanly and loadgen counted no error.
pub fn assert_clean_runs(results: &gev_reports::Results) {
    for run in &results.runs {
        assert_stopped_cleanly(run);
        assert_eq!(run.summary.total_errors(), 0, "{:?}", run.summary.requests);
    }
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
