//! `harness soak` end to end, on loopback: every misbehaviour kind against gev-echo (which must
//! pass) and against `fragile-echo` with the matching flaw (which must fail, on the check that
//! flaw breaks: a verdict that cannot fail is a defect); a 60 s soak of gev-echo with the whole
//! mix, plots included; and bad specs or flags exiting 2 with one line. Every run is bounded in
//! time and runs in its own process group, killed if the test fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{binary, run_within, Finished};
use gev_harness::soak::record::SoakFile;

/// A short soak for one kind: 40 connections, 10 of them misbehaving, 20 s per server. Limits
/// are loose because the machine is shared; the flaws break them by far.
fn kind_spec(kind: &str) -> String {
    format!(
        r#"servers = []
connections = 40
misbehaving = 0.25
rate = 400
mix = ["{kind}"]
duration = "20s"
[phases]
clean = 0.25
mixed = 0.45
alone = 0.15
recovery = 0.15
[limits]
p99_ratio = 20.0
throughput_ratio = 0.7
memory_slope_mib_per_min = 20.0
fd_slack = 4
cpu_alone_percent = 30.0
"#
    )
}

fn gev_cmd() -> String {
    format!(
        "gev-echo={} --host 127.0.0.1 --port {{port}} --loops {{loops}}",
        binary("gev-echo").display()
    )
}

fn fragile_cmd(flaw: &str) -> String {
    format!(
        "fragile={} --port {{port}} --flaw {flaw}",
        binary("fragile-echo").display()
    )
}

/// Run `harness soak` on `spec` with the given servers; returns what it printed and the
/// soak.json it wrote.
fn soak(
    dir: &Path,
    spec: &str,
    servers: &[String],
    extra: &[&str],
    limit: Duration,
) -> (Finished, Option<SoakFile>) {
    let spec_path = dir.join("soak.toml");
    std::fs::write(&spec_path, spec).unwrap();
    let out = dir.join("out");
    let mut command = Command::new(binary("harness"));
    command
        .arg("soak")
        .arg(&spec_path)
        .arg("--out")
        .arg(&out)
        .arg("--no-pin")
        .args(extra);
    for server in servers {
        command.arg("--server-cmd").arg(server);
    }
    let finished = run_within(command, "harness soak", limit, true);
    let file = soak_dir(&out).and_then(|d| SoakFile::read(&d.join("soak.json")).ok());
    (finished, file)
}

fn soak_dir(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("soak-"))
        })
}

fn failed_checks(file: &SoakFile, server: &str) -> Vec<String> {
    let server = file
        .servers
        .iter()
        .find(|s| s.name == server)
        .expect("server soaked");
    server
        .verdict
        .checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.name.clone())
        .collect()
}

/// gev-echo passes `kind`; fragile-echo with the same flaw fails `expected` (one of its checks).
/// One retry, only when gev-echo failed nothing but p99 while the well-behaved loadgen itself
/// reported sending late (a busy machine: that p99 measures the generator, not the server).
fn kind_case(kind: &str, flaw: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut attempt = 0;
    let (finished, file) = loop {
        attempt += 1;
        let (finished, file) = soak(
            dir.path(),
            &kind_spec(kind),
            &[gev_cmd(), fragile_cmd(flaw)],
            &["--no-render"],
            Duration::from_secs(240),
        );
        let file = file.unwrap_or_else(|| panic!("no soak.json: {}", finished.stderr));
        let generator_late = file.servers[0]
            .well_behaved_warnings
            .iter()
            .any(|w| w.contains("sent late"));
        if attempt == 1 && generator_late && failed_checks(&file, "gev-echo") == ["p99"] {
            eprintln!("retrying {kind}: gev-echo failed p99 only, with a late generator");
            std::fs::remove_dir_all(dir.path().join("out")).unwrap();
            continue;
        }
        break (finished, file);
    };
    let gev_failed = failed_checks(&file, "gev-echo");
    assert!(
        gev_failed.is_empty(),
        "gev-echo failed {gev_failed:?} against {kind}:\n{}",
        finished.stdout
    );
    let gev = &file.servers[0];
    let figures = &gev.misbehaving.as_ref().expect("misbehaving figures").kinds[0];
    assert!(figures.connects >= 10, "{figures:?}");
    let fragile_failed = failed_checks(&file, "fragile");
    assert!(
        expected.iter().any(|e| fragile_failed.iter().any(|f| f == e)),
        "fragile-echo --flaw {flaw} should fail one of {expected:?}, failed {fragile_failed:?}:\n{}",
        finished.stdout
    );
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stdout);
    assert!(
        finished.stdout.contains("fragile: FAIL"),
        "{}",
        finished.stdout
    );
}

#[test]
fn never_read_stalls_a_blocking_writer() {
    kind_case("never-read", "never-read", &["throughput", "p99"]);
}

#[test]
fn slow_read_grows_an_unbounded_buffer() {
    kind_case("slow-read=100", "slow-read", &["memory"]);
}

#[test]
fn slow_write_stalls_a_server_waiting_for_whole_messages() {
    kind_case("slow-write", "slow-write", &["throughput", "p99"]);
}

#[test]
fn reset_leaks_descriptors_of_a_careless_server() {
    kind_case("reset", "reset", &["descriptors"]);
}

#[test]
fn half_close_spins_a_server_that_ignores_end_of_input() {
    kind_case("half-close", "half-close", &["cpu_alone", "descriptors"]);
}

#[test]
fn garbage_kills_a_server_that_trusts_its_input() {
    kind_case("garbage", "garbage", &["alive"]);
}

#[test]
fn abandon_stalls_a_server_waiting_for_the_first_byte() {
    kind_case("abandon", "abandon", &["throughput", "p99"]);
}

#[test]
fn churn_shows_a_leak_per_connection() {
    kind_case("churn", "churn", &["memory"]);
}

#[test]
fn a_60s_soak_of_gev_echo_with_the_whole_mix() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"servers = []
connections = 200
misbehaving = 0.3
rate = 1000
duration = "60s"
# The clean window's p99 here is often below a millisecond, so a busy machine moves the ratio by
# several times (6.3x seen with p99 2.4 ms vs 0.37 ms); a real stall moves it by hundreds. The
# 2x goal is for the 10-minute soak (sweeps/soak.toml).
[limits]
p99_ratio = 10.0
"#;
    let (finished, file) = soak(
        dir.path(),
        spec,
        &[gev_cmd()],
        &[],
        Duration::from_secs(180),
    );
    let file = file.unwrap_or_else(|| panic!("no soak.json: {}", finished.stderr));
    assert_eq!(
        finished.status.code(),
        Some(0),
        "{}\n{}",
        finished.stdout,
        finished.stderr
    );
    let server = &file.servers[0];
    assert!(server.verdict.pass, "{}", finished.stdout);
    // The misbehaving loadgen yields the loadgen core to the well-behaved one (session.rs).
    assert!(file.pinning.contains("nice +10"), "{}", file.pinning);
    // Batch means over the mixed window after its first quarter.
    let memory = server
        .verdict
        .figures
        .memory_slope_mib_per_min
        .expect("a memory fit");
    assert!(memory.n >= 3 && memory.n <= 10, "{memory:?}");
    assert!(server.samples.len() >= 55, "{}", server.samples.len());
    assert!(
        server.well_behaved.len() >= 35,
        "{}",
        server.well_behaved.len()
    );
    let kinds = &server
        .misbehaving
        .as_ref()
        .expect("misbehaving figures")
        .kinds;
    assert_eq!(kinds.len(), 8);
    for kind in kinds {
        assert!(kind.connects >= kind.connections, "{kind:?}");
    }
    // gev answers and closes every half-closed connection.
    let half = kinds.iter().find(|k| k.kind == "half-close").unwrap();
    assert!(half.closed_by_server >= 100, "{half:?}");
    let out = soak_dir(&dir.path().join("out")).unwrap();
    let png = std::fs::read(out.join("soak-gev-echo.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let svg = std::fs::read_to_string(out.join("soak-gev-echo.svg")).unwrap();
    assert!(svg.contains("well-behaved p99") && svg.contains("recovery"));
}

#[test]
fn bad_specs_and_flags_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (spec, extra, needle) in [
        ("misbehaving = 2.0", &[][..], "misbehaving"),
        ("mix = [\"bogus\"]", &[][..], "mix"),
        ("servers = [\"nonesuch\"]", &[][..], "nonesuch"),
        ("servers = []", &[][..], "no server"),
        ("", &["--duration", "5s"][..], "--duration"),
    ] {
        let (finished, _) = soak(dir.path(), spec, &[], extra, Duration::from_secs(30));
        assert_eq!(
            finished.status.code(),
            Some(2),
            "{spec}: {}",
            finished.stderr
        );
        let lines: Vec<&str> = finished.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{spec}: {:?}", finished.stderr);
        assert!(lines[0].contains(needle), "{spec}: {}", lines[0]);
    }
}
