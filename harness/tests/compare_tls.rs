//! `harness compare --tls`: gev-echo against the tokio-rustls reference side by side, both
//! serving the session's throwaway certificate through their `{tls}` placeholder and loadgen
//! verifying it (`--ca`); the report's point says TLS and both sides completed requests over it.
//! And the flag's one-line errors: a command without `{tls}`, `--tls` with `--callgrind`.

mod common;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

fn server_cmd(name: &str, loops_flag: &str, tls: bool) -> String {
    format!(
        "{} --host 127.0.0.1 --port {{port}} {loops_flag} {{loops}}{}",
        common::binary(name).display(),
        if tls { " {tls}" } else { "" }
    )
}

fn compare(args: &[&str]) -> common::Finished {
    let mut command = Command::new(common::binary("harness"));
    command.arg("compare").args(args);
    common::run_within(
        command,
        &format!("harness compare {args:?}"),
        RUN_TIMEOUT,
        false,
    )
}

#[test]
fn gev_echo_against_tokio_rustls_over_tls_side_by_side() {
    let gev = server_cmd("gev-echo", "--loops", true);
    let reference = server_cmd("ref-tokio-tls-echo", "--workers", true);
    let finished = compare(&[
        "--tls",
        "--baseline-cmd",
        &reference,
        "--candidate-cmd",
        &gev,
        "--repeats",
        "2",
        "--loops",
        "1",
        "--connections",
        "8",
        "--size",
        "16384",
        "--duration",
        "700ms",
        "--warmup",
        "300ms",
        "--json",
    ]);
    // Two rounds cannot give a verdict, so the gate passes whatever the machine does.
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    let report: Value = serde_json::from_str(&finished.stdout).unwrap_or_else(|e| {
        panic!(
            "not a report ({e}): {}\n{}",
            finished.stdout, finished.stderr
        )
    });
    let point = &report["points"][0];
    let label = point["point"].as_str().expect("point label");
    assert!(label.contains("TLS"), "{label}");
    for side in ["baseline_runs", "candidate_runs"] {
        let runs = point[side].as_array().expect("runs");
        assert_eq!(runs.len(), 2, "{side}: {point}");
        for run in runs {
            assert!(
                run["throughput_rps"].as_f64().expect("throughput") > 0.0,
                "{side}: {run}"
            );
            assert!(
                run["server_cpu_us_per_request"].as_f64().is_some(),
                "{side}: {run}"
            );
        }
    }
    assert!(
        report["baseline"]
            .as_str()
            .is_some_and(|b| b.contains("{tls}")),
        "{report}"
    );
}

#[test]
fn tls_flag_errors_are_one_line() {
    let with = server_cmd("gev-echo", "--loops", true);
    let without = server_cmd("gev-echo", "--loops", false);
    for (args, needle) in [
        (
            vec![
                "--tls",
                "--baseline-cmd",
                &with,
                "--candidate-cmd",
                &without,
            ],
            "--candidate-cmd",
        ),
        (
            vec![
                "--tls",
                "--baseline-cmd",
                &without,
                "--candidate-cmd",
                &with,
            ],
            "--baseline-cmd",
        ),
        (
            vec![
                "--tls",
                "--callgrind",
                "--baseline-cmd",
                &with,
                "--candidate-cmd",
                &with,
            ],
            "--callgrind",
        ),
    ] {
        let finished = compare(&args);
        assert_eq!(
            finished.status.code(),
            Some(2),
            "{args:?}: {}",
            finished.stderr
        );
        assert!(
            finished.stderr.contains(needle),
            "{args:?}: {}",
            finished.stderr
        );
        assert!(finished.stderr.contains("{tls}") || needle == "--callgrind");
        assert_eq!(
            finished.stderr.trim().lines().count(),
            1,
            "{}",
            finished.stderr
        );
        assert!(finished.stdout.is_empty(), "{args:?}");
    }
}
