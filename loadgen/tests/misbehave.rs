//! `--misbehave`: bad values are one line and exit 2; each kind does what it says against the
//! gev example servers (and what a robust server does about it is visible in the per-kind
//! figures), while the well-behaved connections keep their own, unpolluted figures.

mod common;

use std::time::Duration;

use common::{loadgen, ServerProcess};
use gev_loadgen::{MisbehaveKind, Summary};

const DEADLINE: Duration = Duration::from_secs(60);

fn assert_rejected(args: &[&str], needle: &str) {
    let out = loadgen(args, DEADLINE);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: {:?}", out.stderr);
    assert!(lines[0].contains(needle), "{args:?}: {}", lines[0]);
    assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
}

#[test]
fn bad_misbehave_values_are_one_line_and_exit_2() {
    // No server needed: arguments are checked before the target is probed.
    let t = "127.0.0.1:9";
    for (value, needle) in [
        ("nope=0.1", "unknown --misbehave kind"),
        ("never-read", "no fraction"),
        ("never-read=lots", "not a number"),
        ("never-read=0", "out of range"),
        ("never-read=2", "out of range"),
        ("slow-read=0.1", "needs a rate"),
        ("slow-write=whenever=0.1", "not a time"),
        ("reset=0.7,churn=0.7", "add up to"),
        ("reset=0.1,reset=0.1", "twice"),
        ("reset=0.1,,churn=0.1", "empty entry"),
        ("abandon=9=0.1", "takes no parameter"),
    ] {
        assert_rejected(&[t, "--misbehave", value], needle);
    }
    assert_rejected(
        &[
            t,
            "-c",
            "2",
            "--misbehave",
            "reset=0.2,churn=0.2,abandon=0.2",
        ],
        "-c is 2",
    );
    assert_rejected(&[t, "-n", "10", "--misbehave", "abandon=1"], "-n");
}

/// Run `loadgen` with `-c 20`, half of them misbehaving as `kind`, for `secs` seconds.
fn run(target: &str, kind: &str, secs: u32, extra: &[&str]) -> (Summary, MisbehaveKind) {
    let duration = format!("{secs}s");
    let misbehave = format!("{kind}=0.5");
    let mut args = vec![
        target,
        "-c",
        "20",
        "-R",
        "200",
        "-d",
        &duration,
        "--json",
        "--misbehave",
        &misbehave,
    ];
    args.extend_from_slice(extra);
    let summary = loadgen(&args, DEADLINE).summary();
    let misbehaving = summary.misbehaving.clone().expect("misbehaving figures");
    assert_eq!(misbehaving.well_behaved_connections, 10);
    assert_eq!(misbehaving.connections, 10);
    let figures = misbehaving.kinds[0].clone();
    assert_eq!(figures.connections, 10);
    assert!(figures.connects >= 10, "{figures:?}");
    (summary, figures)
}

/// The well-behaved half is served as if alone: every request answered, no error.
fn assert_well_behaved_served(summary: &Summary, kind: &str) {
    assert_eq!(summary.connections.opened, 10, "{kind}: {summary:?}");
    assert!(
        summary.requests.completed > 100,
        "{kind}: {:?}",
        summary.requests
    );
    assert_eq!(summary.total_errors(), 0, "{kind}: {:?}", summary.requests);
    assert!(
        summary.requests.completed + 20 >= summary.requests.sent,
        "{kind}: {:?}",
        summary.requests
    );
}

#[test]
fn every_kind_against_gev_echo() {
    // A short idle timeout so the abandon and never-read clients see gev close them.
    let server = ServerProcess::start("gev-echo", &["--loops", "1", "--idle-timeout-ms", "1000"]);
    let target = server.addr().to_string();

    // (gev closes a never-reading client once its socket send buffer (up to 4 MiB) and its
    // output bound (1 MiB) are full and the idle timeout passes: ~20 s at the flood's pace, which
    // the soak shows; here only the client's side is checked.)
    let (s, f) = run(&target, "never-read", 3, &[]);
    assert_well_behaved_served(&s, "never-read");
    assert!(f.bytes_sent > 100_000 && f.bytes_received == 0, "{f:?}");

    let (s, f) = run(&target, "slow-read=500", 4, &[]);
    assert_well_behaved_served(&s, "slow-read");
    // At most 500 B/s each (plus one second of banked budget).
    assert!(
        f.bytes_received > 0 && f.bytes_received <= 10 * 500 * 6,
        "{f:?}"
    );
    assert!(f.bytes_sent > 10 * f.bytes_received, "{f:?}");

    let (s, f) = run(&target, "slow-write=200ms", 3, &[]);
    assert_well_behaved_served(&s, "slow-write");
    // One byte per 200 ms each: about 15 bytes in 3 s, echoed.
    assert!((50..=250).contains(&f.bytes_sent), "{f:?}");
    assert!(f.bytes_received > 0, "{f:?}");

    let (s, f) = run(&target, "reset", 3, &[]);
    assert_well_behaved_served(&s, "reset");
    assert!(f.closed_by_client >= 50 && f.connects >= 50, "{f:?}");

    let (s, f) = run(&target, "half-close", 3, &[]);
    assert_well_behaved_served(&s, "half-close");
    // gev answers the message, then closes its side.
    assert!(f.replies >= 50 && f.closed_by_server >= 50, "{f:?}");

    let (s, f) = run(&target, "garbage", 3, &[]);
    assert_well_behaved_served(&s, "garbage");
    // Raw TCP has no framing to break: the noise is echoed.
    assert!(f.bytes_received >= 64 * 10, "{f:?}");

    let (s, f) = run(&target, "abandon", 3, &[]);
    assert_well_behaved_served(&s, "abandon");
    assert_eq!(f.bytes_sent, 0, "{f:?}");
    assert!(f.closed_by_server >= 10, "{f:?}");
    assert!(f.server_close_after_ms_mean >= 900.0, "{f:?}");

    let (s, f) = run(&target, "churn", 3, &[]);
    assert_well_behaved_served(&s, "churn");
    assert!(f.replies >= 100 && f.closed_by_client >= 100, "{f:?}");
}

#[test]
fn garbage_breaks_each_framing_and_the_server_closes() {
    for (server, scheme, extra) in [
        ("gev-protocol", "", &["--framing", "length"][..]),
        ("gev-websocket", "ws://", &[][..]),
        ("gev-http", "http://", &[][..]),
    ] {
        let process = ServerProcess::start(server, &["--loops", "1"]);
        let target = format!("{scheme}{}", process.addr());
        let (s, f) = run(&target, "garbage", 3, extra);
        assert_well_behaved_served(&s, server);
        assert!(f.closed_by_server >= 10, "{server}: {f:?}");
        assert!(f.messages_sent >= 10, "{server}: {f:?}");
    }
}

#[test]
fn misbehaving_connections_do_not_count_in_the_well_behaved_figures() {
    let server = ServerProcess::start("gev-echo", &["--loops", "1"]);
    let target = server.addr().to_string();
    // Resets and churn would show up as errors and reconnects if they were mixed in.
    let summary = loadgen(
        &[
            &target,
            "-c",
            "20",
            "-R",
            "400",
            "-d",
            "3s",
            "--json",
            "--misbehave",
            "reset=0.25,churn=0.25",
        ],
        DEADLINE,
    )
    .summary();
    assert_eq!(summary.connections.opened, 10);
    assert_eq!(summary.total_errors(), 0, "{:?}", summary.requests);
    assert!(summary
        .warnings
        .iter()
        .all(|w| !w.contains("connections requested")));
    let m = summary.misbehaving.expect("misbehaving figures");
    assert_eq!(m.kinds.len(), 2);
    assert!(m.kinds.iter().all(|k| k.connections == 5 && k.connects > 5));
    // The whole misbehaving half, with nothing well-behaved, still runs for the window.
    let alone = loadgen(
        &[
            &target,
            "-c",
            "4",
            "-d",
            "2s",
            "--json",
            "--misbehave",
            "abandon=1",
        ],
        DEADLINE,
    )
    .summary();
    assert!(alone.duration_secs >= 1.9, "{}", alone.duration_secs);
    assert_eq!(alone.misbehaving.expect("figures").kinds[0].open_at_end, 4);
}
