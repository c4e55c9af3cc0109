//! The generator's floor and the hot paths measured against it: `pingpong-baseline` runs against
//! gev-echo and reports sane figures, and loadgen's closed-loop raw batches (runs of outstanding
//! requests, back-to-back payloads written straight from the pool) deliver every reply intact at
//! the depths `loadgen/bench/baseline.sh` measures, with and without `--verify`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{bin_path, loadgen, wait_child, ServerProcess};

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn baseline_reports_requests_and_its_cpu_time() {
    let server = ServerProcess::start("gev-echo", &["--loops", "1"]);
    let addr = server.addr().to_string();
    let mut child = Command::new(bin_path("pingpong-baseline"))
        .args([
            &addr,
            "-c",
            "4",
            "--pipeline",
            "16",
            "-d",
            "1",
            "--warmup",
            "0.2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pingpong-baseline");
    let status = wait_child(&mut child, DEADLINE);
    let output = child.wait_with_output().expect("output");
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON line on stdout");
    assert_eq!(json["schema"], "gev-pingpong-baseline/1");
    let requests = json["requests"].as_u64().unwrap();
    let cpu = json["cpu_secs"].as_f64().unwrap();
    let wall = json["wall_secs"].as_f64().unwrap();
    assert!(requests > 100, "{json}");
    assert!(cpu > 0.0 && cpu <= wall * 1.1, "{json}");
    let per_cpu = json["requests_per_cpu_sec"].as_f64().unwrap();
    assert!(
        (per_cpu - requests as f64 / cpu).abs() < 1e-6 * per_cpu,
        "{json}"
    );
}

#[test]
fn baseline_rejects_bad_arguments_in_one_line() {
    let output = Command::new(bin_path("pingpong-baseline"))
        .args(["127.0.0.1:9", "--pipeline", "0"])
        .output()
        .expect("run pingpong-baseline");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--pipeline"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// A closed-loop raw run with `extra` arguments: no errors, every request answered.
fn closed_raw(addr: &str, extra: &[&str]) -> gev_loadgen::Summary {
    let mut args = vec![addr, "-c", "4", "-d", "1s", "--json"];
    args.extend_from_slice(extra);
    let s = loadgen(&args, DEADLINE).summary();
    assert_eq!(s.total_errors(), 0, "{extra:?}: {:?}", s.requests.errors);
    assert!(s.requests.completed > 100, "{extra:?}: {:?}", s.requests);
    assert!(s.latency_us.p50 > 0.0, "{extra:?}");
    // Closed loop: the intended time is the send time, so both latencies agree.
    assert_eq!(s.latency_us.p99, s.latency_uncorrected_us.p99, "{extra:?}");
    assert_eq!(s.latency_us.count, s.requests.completed, "{extra:?}");
    s
}

#[test]
fn raw_batches_come_back_whole_at_every_depth() {
    let server = ServerProcess::start("gev-echo", &["--loops", "1"]);
    let addr = server.addr().to_string();
    for pipeline in ["1", "16", "64"] {
        // Bulk path (nothing checked), then the same batches with every reply checked.
        closed_raw(&addr, &["--pipeline", pipeline]);
        closed_raw(&addr, &["--pipeline", pipeline, "--verify"]);
    }
    // Batches larger than one back-to-back run of the pool, and one-byte payloads.
    closed_raw(&addr, &["--pipeline", "64", "--size", "8192", "--verify"]);
    closed_raw(&addr, &["--pipeline", "64", "--size", "8192"]);
    closed_raw(&addr, &["--pipeline", "64", "--size", "1", "--verify"]);
    // A -n run stops at its quota exactly, batch by batch.
    let s = loadgen(
        &[
            &addr,
            "-c",
            "3",
            "-n",
            "10000",
            "--pipeline",
            "64",
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    assert_eq!(s.requests.completed, 10_000);
    assert_eq!(s.total_errors(), 0);
}
