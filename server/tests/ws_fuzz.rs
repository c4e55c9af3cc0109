//! Runs the cargo-fuzz targets of `server/fuzz` for a short bounded time each. `cargo fuzz` is
//! installed (pinned) by `scripts/setup-test-deps.sh`; without it the test fails and names that
//! script. The decoder's proptest `never_panics_on_arbitrary_bytes` is the always-on companion. cargo-fuzz wants nightly
//! flags; `RUSTC_BOOTSTRAP=1` lets the stable compiler take them.

use std::path::Path;
use std::process::Command;

/// Seconds each target runs (libFuzzer's `-max_total_time`).
const SECONDS_PER_TARGET: u64 = 20;

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

#[test]
fn fuzz_targets_run_without_crashing() {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let installed = Command::new(cargo())
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "cargo-fuzz is not installed: run scripts/setup-test-deps.sh (it installs the pinned version)"
    );
    for target in ["ws_handshake", "ws_frame_decoder"] {
        let started = std::time::Instant::now();
        let output = Command::new(cargo())
            .current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "-O", target, "--"])
            .arg(format!("-max_total_time={SECONDS_PER_TARGET}"))
            .arg("-rss_limit_mb=1024")
            .output()
            .expect("running cargo fuzz");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "fuzz target {target} failed (artifacts in server/fuzz/artifacts/{target}/):\n{}",
            stderr
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
        let runs = stderr
            .lines()
            .rev()
            .find(|l| l.contains("Done "))
            .unwrap_or("(no summary)");
        eprintln!("{target}: {runs} in {:.0?}", started.elapsed());
    }
}
