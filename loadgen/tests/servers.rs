//! loadgen against the real gev servers: every framing with `--verify` (gev-echo for raw,
//! gev-protocol for length, gev-websocket for WebSocket text and binary, gev-http for HTTP GET
//! and POST), and `wrk` beside `loadgen --framing http` on gev-http.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{loadgen, ServerProcess};

const DEADLINE: Duration = Duration::from_secs(60);

/// Run a short verified load and check every request came back intact.
fn verified_run(target: &str, extra: &[&str]) -> gev_loadgen::Summary {
    let mut args = vec![
        target, "-c", "8", "-t", "2", "-d", "2s", "--verify", "--json",
    ];
    args.extend_from_slice(extra);
    let s = loadgen(&args, DEADLINE).summary();
    assert_eq!(
        s.total_errors(),
        0,
        "{target} {extra:?}: {:?}",
        s.requests.errors
    );
    assert!(
        s.requests.completed > 100,
        "{target} {extra:?}: {:?}",
        s.requests
    );
    assert_eq!(s.connections.opened, 8, "{target} {extra:?}");
    assert!(s.latency_us.p50 > 0.0);
    s
}

#[test]
fn raw_against_gev_echo() {
    let server = ServerProcess::start("gev-echo", &["--loops", "1"]);
    let target = server.addr().to_string();
    verified_run(&target, &[]);
    verified_run(&target, &["--size-range", "1..4096", "--pipeline", "4"]);
    let s = verified_run(
        &target,
        &["-R", "2000", "--size", "512", "--warmup", "500ms"],
    );
    assert!(
        (s.throughput.rps - 2000.0).abs() < 40.0,
        "{}",
        s.throughput.rps
    );
}

#[test]
fn length_against_gev_protocol() {
    let server = ServerProcess::start("gev-protocol", &["--loops", "1"]);
    let target = server.addr().to_string();
    verified_run(&target, &["--framing", "length"]);
    verified_run(
        &target,
        &[
            "--framing",
            "length",
            "--size-range",
            "0..70000",
            "--pipeline",
            "3",
        ],
    );
}

#[test]
fn websocket_against_gev_websocket() {
    let server = ServerProcess::start("gev-websocket", &["--loops", "1"]);
    let target = format!("ws://{}/", server.addr());
    let s = verified_run(&target, &["--ws-message", "text"]);
    assert_eq!(s.config.framing, "websocket");
    verified_run(
        &target,
        &[
            "--ws-message",
            "binary",
            "--size-range",
            "1..70000",
            "--pipeline",
            "2",
        ],
    );
    verified_run(&target, &["-R", "1000"]);
}

#[test]
fn http_against_gev_http() {
    let server = ServerProcess::start("gev-http", &["--loops", "1"]);
    let target = format!("http://{}/plaintext", server.addr());
    let s = verified_run(&target, &[]);
    // "Hello, World!" plus the head, per reply.
    assert!(s.throughput.bytes_received >= s.requests.completed * 13);
    verified_run(
        &target,
        &["--method", "post", "--size", "100", "--pipeline", "8"],
    );
    verified_run(&target, &["-R", "1000"]);
}

#[test]
fn wrk_and_loadgen_both_complete_against_gev_http() {
    let wrk = which("wrk").unwrap_or_else(|| {
        panic!(
            "wrk is not installed; run scripts/setup-test-deps.sh (it installs the Debian package)"
        )
    });
    let server = ServerProcess::start("gev-http", &["--loops", "1"]);
    let url = format!("http://{}/", server.addr());
    let child = Command::new(wrk)
        .args(["-t1", "-c8", "-d2s", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start wrk");
    let mut guard = common::ChildGuard(child);
    let status = common::wait_child(&mut guard.0, DEADLINE).expect("wrk finished");
    let mut text = String::new();
    if let Some(mut out) = guard.0.stdout.take() {
        use std::io::Read;
        let _ = out.read_to_string(&mut text);
    }
    assert!(status.success(), "wrk failed: {text}");
    let wrk_rps =
        wrk_requests_per_sec(&text).unwrap_or_else(|| panic!("no Requests/sec in {text}"));
    assert!(wrk_rps > 100.0, "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    let s = verified_run(&url, &[]);
    assert!(s.throughput.rps > 100.0);
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// The `Requests/sec:` figure of wrk's report.
pub fn wrk_requests_per_sec(report: &str) -> Option<f64> {
    report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn server_stopping_mid_run_is_counted_not_fatal() {
    for (name, scheme) in [("gev-echo", ""), ("gev-websocket", "ws://")] {
        let mut server = ServerProcess::start(name, &["--loops", "1"]);
        let target = format!("{scheme}{}", server.addr());
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1000));
            let status = server.interrupt(Duration::from_secs(5));
            assert!(status.is_some_and(|s| s.success()), "{status:?}");
        });
        let out = loadgen(&[&target, "-c", "4", "-d", "3s", "--json"], DEADLINE);
        stopper.join().expect("stopper");
        let s = out.summary();
        assert!(s.requests.completed > 0, "{name}: {:?}", s.requests);
        let errors = &s.requests.errors;
        let lost =
            errors.get("closed").copied().unwrap_or(0) + errors.get("reset").copied().unwrap_or(0);
        assert!(lost >= 4, "{name}: {errors:?}");
        // Reconnects after the stop are refused and counted as failed connections.
        assert!(
            errors.get("connect_refused").copied().unwrap_or(0) > 0,
            "{name}: {errors:?}"
        );
        assert!(s.connections.failed > 0, "{name}: {:?}", s.connections);
    }
}
