//! The less central options end to end: Ctrl-C mid-run still prints the summary and exits 0,
//! the open-file limit is raised (or the run refused with a clear line), connection pacing,
//! pinning, fixed payloads, and more threads than connections.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin_path, loadgen, wait_child, Behaviour, ChildGuard, TestServer};

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn sigint_prints_the_summary_and_exits_zero() {
    let server = TestServer::start(Behaviour::Echo);
    let child = Command::new(bin_path("loadgen"))
        .args([&server.target(), "-c", "2", "-d", "60s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let mut guard = ChildGuard(child);
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is our live child.
    unsafe {
        libc::kill(guard.0.id() as libc::pid_t, libc::SIGINT);
    }
    let status = wait_child(&mut guard.0, Duration::from_secs(10)).expect("exit after SIGINT");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(status.success(), "{status}");
    let mut stdout = String::new();
    guard
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read");
    let s = gev_loadgen::Summary::from_json(stdout.trim()).expect("summary");
    assert!(
        s.duration_secs > 0.5 && s.duration_secs < 10.0,
        "{}",
        s.duration_secs
    );
    assert!(s.requests.completed > 0);
}

fn with_nofile(limit: u32, args: &[&str]) -> common::Output {
    let script = format!("ulimit -Sn {limit} && exec \"$0\" \"$@\"");
    let child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(bin_path("loadgen"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bash");
    let mut guard = ChildGuard(child);
    let status = wait_child(&mut guard.0, DEADLINE).expect("finished");
    let mut stdout = String::new();
    let mut stderr = String::new();
    let _ = guard
        .0
        .stdout
        .take()
        .expect("out")
        .read_to_string(&mut stdout);
    let _ = guard
        .0
        .stderr
        .take()
        .expect("err")
        .read_to_string(&mut stderr);
    common::Output {
        status,
        stdout,
        stderr,
    }
}

#[test]
fn open_file_limit_is_raised_and_reported() {
    let server = TestServer::start(Behaviour::Echo);
    let target = server.target();
    // A soft limit of 128 is too low for 300 connections; loadgen raises it and says so.
    let out = with_nofile(
        128,
        &[
            &target, "-c", "300", "-R", "600", "--warmup", "3s", "-d", "1s",
        ],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stderr.contains("raised the open-file limit from 128"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("opened 300"), "{}", out.stdout);
}

#[test]
fn hard_open_file_limit_too_low_is_one_clear_line() {
    let server = TestServer::start(Behaviour::Echo);
    let target = server.target();
    let script = "ulimit -n 100 && exec \"$0\" \"$@\"";
    let child = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(bin_path("loadgen"))
        .args([&target, "-c", "5000", "-d", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bash");
    let mut guard = ChildGuard(child);
    let status = wait_child(&mut guard.0, DEADLINE).expect("finished");
    let mut stderr = String::new();
    let _ = guard
        .0
        .stderr
        .take()
        .expect("err")
        .read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("hard limit is 100") && stderr.contains("-c 5000"),
        "{stderr}"
    );
}

#[test]
fn connect_rate_paces_connections() {
    let server = TestServer::start(Behaviour::Echo);
    let target = server.target();
    // 20 connections at 20 per second take about a second to open; with a 300 ms window
    // starting at once, only the first few can be open.
    let s = loadgen(
        &[
            &target,
            "-c",
            "20",
            "--connect-rate",
            "20",
            "-d",
            "300ms",
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    assert!(s.connections.opened < 15, "{:?}", s.connections);
    assert!(s
        .warnings
        .iter()
        .any(|w| w.contains("connections requested were opened")));
    let all = loadgen(
        &[
            &target,
            "-c",
            "20",
            "--connect-rate",
            "200",
            "--warmup",
            "500ms",
            "-d",
            "300ms",
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    assert_eq!(all.connections.opened, 20);
}

#[test]
fn pinned_threads_fixed_payloads_and_spare_threads() {
    let server = TestServer::start(Behaviour::Echo);
    let target = server.target();
    let s = loadgen(
        &[
            &target,
            "-c",
            "4",
            "-t",
            "2",
            "--pin",
            "-n",
            "400",
            "--payload",
            "ping",
            "--verify",
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    assert_eq!(s.requests.completed, 400);
    assert_eq!(s.total_errors(), 0);
    assert_eq!((s.config.size_min, s.config.size_max), (4, 4));
    assert!(s.config.pin);

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("payload.bin");
    std::fs::write(&file, (0..=255u8).collect::<Vec<u8>>()).expect("write payload");
    let file = file.to_string_lossy().to_string();
    let s = loadgen(
        &[
            &target,
            "-c",
            "2",
            "-t",
            "8",
            "-n",
            "100",
            "--payload-file",
            &file,
            "--verify",
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    assert_eq!(s.requests.completed, 100);
    assert_eq!(s.total_errors(), 0);
    // More threads than connections: one thread per connection.
    assert_eq!(s.config.threads, 2);
    assert_eq!(s.throughput.bytes_received, 100 * 256);
}
