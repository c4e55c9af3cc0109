//! End-to-end tests of `harness compare`: real gev-echo servers, real loadgen runs, short points.
//!
//! They check the gate's two promises on this (shared, noisy) machine at a scale a test can
//! afford, and only as far as that scale guarantees them: a server compared with itself in 3
//! rounds passes (exit 0, nothing `regressed` or `improved`: fewer than the 6 rounds a verdict
//! needs, so this holds whatever the machine does), and a server made grossly slower
//! (`gev-echo --work-ns`, several-fold) fails in 6 rounds (exit 1, throughput `regressed`)
//! whether the two run side by side (the default) or alternating. Also: stored baselines round-trip and are labelled
//! weaker evidence, and bad flags are one-line errors.
//! Every harness process is bounded by a timeout and killed on failure.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Generous: each comparison below takes ~10-20 s on an idle 2-core machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// Short points so the whole file stays well under two minutes.
const SHORT_POINT: &[&str] = &[
    "--loops",
    "1",
    "--connections",
    "8",
    "--duration",
    "1s",
    "--warmup",
    "300ms",
];

/// Shorter still, for the 6-round comparisons (the fewest a verdict may come from).
const SHORTER_POINT: &[&str] = &[
    "--loops",
    "1",
    "--connections",
    "8",
    "--duration",
    "500ms",
    "--warmup",
    "200ms",
];

fn echo_cmd(extra: &str) -> String {
    format!(
        "{} --host 127.0.0.1 --port {{port}} --loops {{loops}}{extra}",
        common::binary("gev-echo").display()
    )
}

fn harness<S: AsRef<str> + std::fmt::Debug>(args: &[S]) -> Output {
    let mut command = Command::new(common::binary("harness"));
    command.arg("compare").args(args.iter().map(AsRef::as_ref));
    let finished = common::run_within(
        command,
        &format!("harness compare {args:?}"),
        RUN_TIMEOUT,
        false,
    );
    Output {
        status: finished.status,
        stdout: finished.stdout.into_bytes(),
        stderr: finished.stderr.into_bytes(),
    }
}

/// `--baseline-cmd BASELINE --candidate-cmd CANDIDATE --repeats REPEATS`, then `extra`, then
/// the load point's flags.
fn same_run(
    baseline: &str,
    candidate: &str,
    repeats: &str,
    extra: &[&str],
    point: &[&str],
) -> Vec<String> {
    ["--baseline-cmd", baseline, "--candidate-cmd", candidate]
        .into_iter()
        .chain(["--repeats", repeats])
        .chain(extra.iter().copied())
        .chain(point.iter().copied())
        .map(String::from)
        .collect()
}

/// The exit code must be `code`; `context` and the harness's stderr say which run failed.
fn assert_exit(output: &Output, code: i32, context: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{context}stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `--json` report (schema gev-compare/1), read as plain JSON so this test checks the
/// format a CI job sees, not the Rust types.
fn report_of(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a compare report ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(report["schema"], "gev-compare/1", "{report}");
    report
}

/// (metric, verdict) of every reading of every point.
fn verdicts(report: &Value) -> Vec<(String, String)> {
    let mut readings = Vec::new();
    for point in report["points"].as_array().expect("points") {
        for metric in point["metrics"].as_array().expect("metrics") {
            readings.push((
                metric["metric"].as_str().expect("metric name").to_string(),
                metric["verdict"].as_str().expect("verdict").to_string(),
            ));
        }
    }
    readings
}

fn runs(point: &Value, side: &str) -> Vec<f64> {
    point[side]
        .as_array()
        .expect("runs")
        .iter()
        .map(|run| run["throughput_rps"].as_f64().expect("throughput"))
        .collect()
}

#[test]
fn gev_echo_against_itself_passes() {
    let same = echo_cmd("");
    let output = harness(&same_run(&same, &same, "3", &["--json"], SHORT_POINT));
    let report = report_of(&output);
    assert_exit(&output, 0, "");
    assert_eq!(report["regressed"], false);
    assert_eq!(report["evidence"], "same_run_paired");
    // Side by side is the default: both servers at once, sharing the server cores.
    assert_eq!(report["schedule"], "side-by-side");
    assert_eq!(report["repeats"], 3);
    let readings = verdicts(&report);
    let metrics: Vec<&str> = readings.iter().map(|(m, _)| m.as_str()).collect();
    // Server CPU per request joins them where /proc schedstat is readable (Linux).
    assert!(
        metrics == ["throughput", "p50", "p99"]
            || metrics == ["throughput", "p50", "p99", "server_cpu"],
        "{metrics:?}"
    );
    // Three rounds cannot support a verdict: nothing is regressed or improved, and the report
    // says why.
    assert!(
        readings
            .iter()
            .all(|(_, v)| v == "no change" || v == "inconclusive"),
        "{readings:?}"
    );
    let notes = report["notes"].to_string();
    assert!(
        notes.contains("fewer than the 6 a verdict needs"),
        "{notes}"
    );
    for point in report["points"].as_array().expect("points") {
        assert_eq!(runs(point, "baseline_runs").len(), 3);
        let candidate = runs(point, "candidate_runs");
        assert_eq!(candidate.len(), 3);
        assert!(candidate.iter().all(|rps| *rps > 0.0), "{candidate:?}");
    }
}

#[test]
fn a_much_slower_candidate_is_regressed_and_fails_the_gate_on_either_schedule() {
    let fast = echo_cmd("");
    // 200 µs of spinning per message caps one loop near 5 000 req/s, far below plain echo.
    let slow = echo_cmd(" --work-ns 200000");
    for schedule in ["side-by-side", "alternating"] {
        let extra = ["--schedule", schedule, "--json"];
        let output = harness(&same_run(&fast, &slow, "6", &extra, SHORTER_POINT));
        let report = report_of(&output);
        assert_exit(&output, 1, &format!("{schedule}: "));
        assert_eq!(report["regressed"], true);
        assert_eq!(report["schedule"], schedule);
        let readings = verdicts(&report);
        for metric in ["throughput", "p50"] {
            let reading = readings
                .iter()
                .find(|(m, _)| m == metric)
                .unwrap_or_else(|| panic!("{schedule}: no {metric} reading in {readings:?}"));
            assert_eq!(reading.1, "regressed", "{schedule}: {readings:?}");
        }
    }
}

#[test]
fn markdown_is_the_default_output() {
    let same = echo_cmd("");
    let output = harness(&same_run(&same, &same, "2", &[], SHORT_POINT));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("## gev performance gate"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("| point | metric | baseline | candidate | ratio (95% CI) | verdict |"));
    assert_eq!(stdout.matches("throughput (req/s)").count(), 1);
}

#[test]
fn a_stored_baseline_round_trips_and_is_weaker_evidence() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let dir_arg = dir.path().to_str().expect("utf-8 temp path").to_string();
    let echo = echo_cmd("");
    // `--candidate-cmd ECHO FLAG main --baselines-dir DIR --repeats 2 --json` at the short point.
    let stored = |flag: &'static str| -> Vec<&str> {
        [
            "--candidate-cmd",
            echo.as_str(),
            flag,
            "main",
            "--baselines-dir",
        ]
        .into_iter()
        .chain([dir_arg.as_str(), "--repeats", "2", "--json"])
        .chain(SHORT_POINT.iter().copied())
        .collect()
    };
    let saved = harness(&stored("--save-baseline"));
    assert_exit(&saved, 0, "");
    assert!(dir.path().join("main.json").exists());

    let against = stored("--baseline");
    let output = harness(&against);
    let report = report_of(&output);
    assert_eq!(report["evidence"], "stored_baseline");
    assert!(report["baseline"]
        .as_str()
        .expect("baseline label")
        .contains("stored baseline `main`"));
    assert_eq!(runs(&report["points"][0], "baseline_runs").len(), 2);
    assert_eq!(runs(&report["points"][0], "candidate_runs").len(), 2);
    assert_ne!(output.status.code(), None);

    // Other load settings have no stored runs to compare with: refused before running.
    let mut other_point = against.clone();
    let position = other_point
        .iter()
        .position(|a| *a == "--connections")
        .expect("connections flag");
    other_point[position + 1] = "4";
    let refused = harness(&other_point);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("main"), "{stderr}");
}

#[test]
fn bad_flags_are_one_line_errors() {
    let echo = echo_cmd("");
    // compare runs its two commands over TCP: a spec with other transports is refused.
    let dir = tempfile::tempdir().expect("temporary directory");
    let spec = dir.path().join("transports.toml");
    std::fs::write(
        &spec,
        "servers = [\"gev-echo\"]\ntransports = [\"tcp\", \"udp\"]\nloops = [1]\n",
    )
    .expect("spec written");
    let spec = spec.to_str().expect("utf-8 temp path");
    for (args, needle) in [
        (
            vec![
                "--candidate-cmd",
                echo.as_str(),
                "--baseline-cmd",
                echo.as_str(),
                "--spec",
                spec,
            ],
            "`transports` has udp, but compare runs --baseline-cmd and --candidate-cmd over TCP only",
        ),
        (
            vec!["--candidate-cmd", echo.as_str()],
            "--baseline-cmd or --baseline",
        ),
        (
            vec!["--candidate-cmd", echo.as_str(), "--baseline", "../escape"],
            "not allowed",
        ),
        (
            vec![
                "--candidate-cmd",
                echo.as_str(),
                "--baseline-cmd",
                echo.as_str(),
                "--max-regression",
                "0",
            ],
            "--max-regression",
        ),
        (
            vec![
                "--candidate-cmd",
                echo.as_str(),
                "--baseline-cmd",
                echo.as_str(),
                "--save-baseline",
                "main",
            ],
            "--schedule alternating",
        ),
        (
            vec![
                "--candidate-cmd",
                echo.as_str(),
                "--baseline-cmd",
                echo.as_str(),
                "--schedule",
                "sideways",
            ],
            "sideways",
        ),
    ] {
        let output = harness(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

/// Whether valgrind can be run here (the callgrind companion needs it).
fn valgrind_available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn callgrind_counts_are_deterministic_for_the_same_build() {
    assert!(
        valgrind_available(),
        "valgrind is not installed: run scripts/setup-test-deps.sh (it installs it with apt-get)"
    );
    let echo = echo_cmd("");
    let extra = ["--callgrind", "--callgrind-messages", "3000", "--json"];
    let output = harness(&same_run(&echo, &echo, "2", &extra, SHORT_POINT));
    let report = report_of(&output);
    let counts = &report["callgrind"];
    let per_message = |side: &str| {
        counts[side]["instructions_per_message"]
            .as_f64()
            .unwrap_or_else(|| panic!("no {side} count in {counts}"))
    };
    let (baseline, candidate) = (per_message("baseline"), per_message("candidate"));
    // An echo costs hundreds to thousands of instructions, not zero and not millions.
    assert!((100.0..1_000_000.0).contains(&baseline), "{baseline}");
    let delta = counts["delta_percent"].as_f64().expect("delta");
    assert!(
        (delta - 100.0 * (candidate / baseline - 1.0)).abs() < 1e-6,
        "{counts}"
    );
    // The same binary twice: only time-driven work (a 2 s log timer) may differ.
    assert!(
        delta.abs() < 3.0,
        "same build differs by {delta}%: {counts}"
    );
}
