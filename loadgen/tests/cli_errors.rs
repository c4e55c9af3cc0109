//! Bad arguments and unusable targets: one clear line on stderr naming the flag or target and
//! the fix, a non-zero exit, nothing on stdout.

mod common;

use std::time::Duration;

use common::{closed_port, loadgen, Behaviour, TestServer};

const DEADLINE: Duration = Duration::from_secs(30);

fn assert_rejected(args: &[&str], needle: &str) {
    let out = loadgen(args, DEADLINE);
    assert!(!out.status.success(), "{args:?} was accepted");
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: {:?}", out.stderr);
    assert!(lines[0].contains(needle), "{args:?}: {}", lines[0]);
    assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
}

#[test]
fn bad_arguments_are_one_line_naming_the_flag() {
    let server = TestServer::start(Behaviour::Echo);
    let t = server.target();
    assert_rejected(&[&t, "--framing", "gopher"], "--framing");
    assert_rejected(&[&t, "-R", "0"], "--rate");
    assert_rejected(&[&t, "-R", "-5"], "--rate");
    assert_rejected(&[&t, "--size-range", "500..20"], "--size-range");
    assert_rejected(&[&t, "-d", "forever"], "--duration");
    assert_rejected(&[&t, "--warmup", "1 fortnight"], "--warmup");
    assert_rejected(&[&t, "-c", "many"], "--connections");
    assert_rejected(&[&t, "--method", "DELETE", "--framing", "http"], "--method");
    assert_rejected(&[&t, "--nonsense"], "--nonsense");
    assert_rejected(&["localhost"], "port");
    assert_rejected(&[&t, "-d", "1s", "-n", "5"], "--requests");
    assert_rejected(
        &[&t, "--payload-file", "/nonexistent/payload"],
        "--payload-file",
    );
}

#[test]
fn unreachable_target_fails_fast() {
    let target = format!("127.0.0.1:{}", closed_port());
    let out = loadgen(&[&target, "-d", "1s"], DEADLINE);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{:?}", out.stderr);
    assert!(
        lines[0].contains(&target) && lines[0].contains("refused"),
        "{}",
        lines[0]
    );
}

#[test]
fn help_exits_zero() {
    let out = loadgen(&["--help"], DEADLINE);
    assert!(out.status.success());
    assert!(out.stdout.contains("--rate"));
}

#[test]
fn unwritable_hdr_log_is_one_line() {
    let server = TestServer::start(Behaviour::Echo);
    let out = loadgen(
        &[
            &server.target(),
            "-d",
            "1s",
            "--hdr-log",
            "/nonexistent/dir/run.hlog",
        ],
        DEADLINE,
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("--hdr-log /nonexistent/dir/run.hlog"),
        "{}",
        out.stderr
    );
}
