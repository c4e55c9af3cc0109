//! End to end: tiny transports sweeps over real processes (issue 15). gev-echo and the tokio
//! echo reference run over TCP, a Unix socket and UDP (as their variants: gev-echo with
//! `--listen unix:PATH` and as gev-udp-echo, the reference as ref-tokio-unix-echo and
//! ref-tokio-udp-echo). Side by side, each server of a group must get its own socket path; the
//! results must carry every transport with non-zero throughput, the UDP points' datagram
//! counters and each non-TCP point's ratio to TCP; the per-transport and the transports plots
//! must be drawn; the alternating schedule runs the same variants; a nonsense combination is
//! refused before anything runs.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gev_reports::results::{PointTransport, Results};

const SWEEP_LIMIT: Duration = Duration::from_secs(90);

/// Runs `harness ARGS` in `dir` (in a process group of its own, killed whole on failure) after
/// checking that every binary the transports need was built.
fn harness(args: &[&str], dir: &Path) -> common::Finished {
    common::harness_with(args, dir, SWEEP_LIMIT, &common::TRANSPORT_BINARIES)
}

/// Writes `spec`, runs `harness sweep` on it with `extra` flags, and returns the results and the
/// output directory; the sweep must succeed.
fn sweep(work: &Path, spec: &str, extra: &[&str]) -> (Results, PathBuf) {
    let swept = common::sweep(
        work,
        ("transports.toml", spec),
        extra,
        SWEEP_LIMIT,
        &common::TRANSPORT_BINARIES,
    );
    (swept.results, swept.dir)
}

const SIDE_BY_SIDE: &str = r#"
servers = ["gev-echo", "ref-tokio-echo"]
transports = ["tcp", "unix", "udp"]
loops = [1]
connections = [4]
payload_sizes = [64]
duration = "1s"
warmup = "300ms"
repeats = 2
schedule = "side-by-side"
metrics = ["gev-echo"]
"#;

#[test]
fn side_by_side_transports_sweep_carries_every_transport_and_the_datagram_counters() {
    let work = tempfile::tempdir().expect("temp dir");
    let swept = common::sweep(
        work.path(),
        ("transports.toml", SIDE_BY_SIDE),
        &[],
        SWEEP_LIMIT,
        &common::TRANSPORT_BINARIES,
    );
    let (results, dir) = (swept.results, swept.dir);
    // The terminal table names what ran, with the server's own UDP figures.
    for text in [
        "gev-udp-echo (gev-echo)",
        "ref-tokio-unix-echo (ref-tokio-echo)",
        "server datagrams per recv / send syscall",
    ] {
        assert!(
            swept.run.stdout.contains(text),
            "{text}: {}",
            swept.run.stdout
        );
    }
    assert!(results.failures.is_empty(), "{:?}", results.failures);
    assert_eq!(results.spec.transports, PointTransport::ALL.to_vec());

    // Every server at every transport, twice, stopped cleanly, without errors.
    let ran: BTreeSet<(String, PointTransport, u32)> = results
        .runs
        .iter()
        .map(|r| (r.server.clone(), r.point.transport, r.repeat))
        .collect();
    assert_eq!(ran.len(), 2 * 3 * 2, "{ran:?}");
    common::assert_clean_runs(&results);
    for run in &results.runs {
        // gev-echo is scraped at every transport (its UDP variant, gev-udp-echo, too); the
        // reference has no metrics endpoint.
        assert_eq!(
            run.metrics_after.is_some(),
            run.server == "gev-echo",
            "{} {}",
            run.server,
            run.point
        );
        let expected_prefix = match run.point.transport {
            PointTransport::Tcp => "127.0.0.1:",
            PointTransport::Unix => "unix:/",
            PointTransport::Udp => "udp://127.0.0.1:",
        };
        assert!(run.addr.starts_with(expected_prefix), "{}", run.addr);
        assert_eq!(
            run.summary.datagrams.is_some(),
            run.point.transport == PointTransport::Udp,
            "{} {}",
            run.server,
            run.point
        );
        // The socket directory went with the server.
        if let Some(path) = run.addr.strip_prefix("unix:") {
            let dir = Path::new(path).parent().expect("a socket directory");
            assert!(!dir.exists(), "{} left behind", dir.display());
        }
    }
    // Side by side, the two servers of a group each had their own socket.
    for repeat in 0..2 {
        let paths: BTreeSet<&str> = results
            .runs
            .iter()
            .filter(|r| r.point.transport == PointTransport::Unix && r.repeat == repeat)
            .map(|r| r.addr.as_str())
            .collect();
        assert_eq!(paths.len(), 2, "{paths:?}");
    }

    // Summaries: non-zero throughput everywhere; UDP has its counters; gev-echo's Unix and UDP
    // points have their ratio to TCP and to the reference.
    assert_eq!(results.summaries.len(), 6);
    for summary in &results.summaries {
        assert!(summary.throughput_rps.median > 0.0, "{summary:?}");
        let udp = summary.point.transport == PointTransport::Udp;
        match &summary.datagrams {
            Some(d) => {
                assert!(udp);
                assert!(d.sent > 0 && d.received > 0, "{d:?}");
                assert!(d.received + d.lost <= d.sent, "{d:?}");
            }
            None => assert!(!udp, "{summary:?}"),
        }
        assert_eq!(
            summary.vs_tcp.is_some(),
            !summary.point.transport.is_tcp(),
            "{summary:?}"
        );
        if summary.server == "gev-echo" {
            assert_eq!(summary.ratios.len(), 1, "{summary:?}");
            assert_eq!(summary.ratios[0].reference, "ref-tokio-echo");
        }
        // gev-udp-echo's own counters: every datagram loadgen got a reply to in the measured
        // windows was received and sent by the server (which also counts the warm-up), in
        // at least one datagram per syscall.
        match (&summary.server_udp, &summary.datagrams) {
            (Some(server), Some(d)) => {
                assert!(udp && summary.server == "gev-echo", "{summary:?}");
                assert!(server.datagrams_received >= d.received, "{server:?} {d:?}");
                assert!(server.datagrams_sent >= d.received, "{server:?} {d:?}");
                assert!(
                    server.recv_batches > 0 && server.send_batches > 0,
                    "{server:?}"
                );
                let per_recv = server.datagrams_per_recv_call.expect("per recv call");
                let per_send = server.datagrams_per_send_call.expect("per send call");
                assert!(per_recv > 0.0 && per_send >= 1.0, "{server:?}");
            }
            (None, _) => assert!(!udp || summary.server != "gev-echo", "{summary:?}"),
            (Some(server), None) => panic!("server counters {server:?} at {summary:?}"),
        }
    }
    let tokio = results
        .spec
        .servers
        .iter()
        .find(|s| s.name == "ref-tokio-echo")
        .expect("the reference");
    assert!(tokio.transport_commands["unix"].contains("ref-tokio-unix-echo --listen unix:{path}"));
    assert!(tokio.transport_commands["udp"].contains("ref-tokio-udp-echo"));

    // The CSV carries the transport and the counters; the pages the counters' column.
    let csv = std::fs::read_to_string(dir.join("results.csv")).expect("results.csv");
    let header = csv.lines().next().expect("a header");
    assert!(header.contains(",transport,datagrams_sent,"), "{header}");
    assert!(csv.lines().any(|l| l.contains(",udp,")), "{csv}");
    assert!(
        header.ends_with(",server_datagrams_per_recv_call,server_datagrams_per_send_call"),
        "{header}"
    );
    // gev-echo's UDP rows carry its counters; every other row leaves them empty.
    for line in csv.lines().skip(1) {
        let scraped = line.starts_with("gev-echo,") && line.contains(",udp,");
        assert_eq!(!line.ends_with(",,,,,,,"), scraped, "{line}");
    }
    let report = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    assert!(report.contains("datagrams lost (%)"), "{report}");
    assert!(
        report.contains("server datagrams per recv / send syscall"),
        "{report}"
    );
    // The table names what ran: the UDP variants beside the servers' names.
    for ran_as in [
        "gev-udp-echo (gev-echo)",
        "ref-tokio-udp-echo (ref-tokio-echo)",
    ] {
        assert!(report.contains(ran_as), "{ran_as}: {report}");
    }
    assert!(
        report.contains("over Unix socket gev-echo does"),
        "{report}"
    );

    // One throughput and one CPU plot per transport, and gev across transports.
    let plots = common::plot_files(&dir);
    for stem in [
        "throughput-raw-64-b-4-conns-tcp",
        "throughput-raw-64-b-4-conns-unix-socket",
        "throughput-raw-64-b-4-conns-udp",
        "server-cost-raw-64-b-4-conns-udp",
        "transports-gev-echo-raw-64-b-4-conns",
    ] {
        assert!(
            plots.contains(&format!("{stem}.png")),
            "{stem} missing from {plots:?}"
        );
    }
    // Their legends name what ran over UDP.
    for (stem, legend) in [
        ("throughput-raw-64-b-4-conns-udp", "gev-udp-echo (gev-echo)"),
        ("transports-gev-echo-raw-64-b-4-conns", "UDP (gev-udp-echo)"),
    ] {
        let svg = std::fs::read_to_string(dir.join("plots").join(format!("{stem}.svg")))
            .expect("the plot's SVG");
        assert!(svg.contains(legend), "{stem}: no {legend}");
    }
}

const ALTERNATING: &str = r#"
servers = ["gev-echo", "ref-tokio-echo", "ref-mio-echo"]
transports = ["unix", "udp"]
loops = [1]
connections = [2]
payload_sizes = [64]
duration = "500ms"
warmup = "200ms"
repeats = 1
"#;

#[test]
fn alternating_transports_sweep_runs_each_variant_and_skips_servers_without_one() {
    let work = tempfile::tempdir().expect("temp dir");
    // ref-mio-echo has no Unix or UDP variant: the spec is refused rather than run half.
    let refused = {
        let path = work.path().join("refused.toml");
        std::fs::write(&path, ALTERNATING).expect("spec written");
        harness(
            &["sweep", &path.to_string_lossy(), "--out", "out"],
            work.path(),
        )
    };
    assert_eq!(refused.status.code(), Some(2), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("server \"ref-mio-echo\" runs at none of unix, udp"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        refused.stderr.trim().lines().count(),
        1,
        "{}",
        refused.stderr
    );

    let spec = ALTERNATING.replace(", \"ref-mio-echo\"", "");
    let (results, _) = sweep(work.path(), &spec, &["--no-render"]);
    assert!(results.failures.is_empty(), "{:?}", results.failures);
    let ran: Vec<(String, PointTransport)> = results
        .runs
        .iter()
        .map(|r| (r.server.clone(), r.point.transport))
        .collect();
    assert_eq!(
        ran,
        [
            ("gev-echo".to_string(), PointTransport::Unix),
            ("ref-tokio-echo".to_string(), PointTransport::Unix),
            ("gev-echo".to_string(), PointTransport::Udp),
            ("ref-tokio-echo".to_string(), PointTransport::Udp),
        ]
    );
    assert!(results
        .runs
        .iter()
        .all(|r| r.summary.throughput.rps > 0.0 && r.server_exit.is_clean()));
    // No TCP point, so no ratio to TCP.
    assert!(results.summaries.iter().all(|s| s.vs_tcp.is_none()));
}

#[test]
fn nonsense_transport_combinations_are_refused_before_anything_runs() {
    let work = tempfile::tempdir().expect("temp dir");
    for (spec, message) in [
        (
            "servers = [\"gev-echo\"]\ntransports = [\"udp\"]\ntls = [true]",
            "TLS runs over TCP only, but `transports` has udp",
        ),
        (
            "servers = [\"gev-echo\", \"gev-protocol\"]\ntransports = [\"tcp\", \"udp\"]",
            "udp carries raw datagrams only, but `framings` has length",
        ),
    ] {
        let path = work.path().join("bad.toml");
        std::fs::write(&path, spec).expect("spec written");
        let run = harness(
            &["sweep", &path.to_string_lossy(), "--out", "out"],
            work.path(),
        );
        assert_eq!(run.status.code(), Some(2), "{spec}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{spec}: {}", run.stderr);
        assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
        assert!(!work.path().join("out").exists(), "{spec}: something ran");
    }
}
