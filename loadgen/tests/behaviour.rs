//! End-to-end behaviour of the generator against in-process test servers: open-loop rate
//! accuracy, a stall that coordinated-omission correction must expose, resets and corrupted
//! replies counted (not crashing), the summary's timeseries and the HdrHistogram interval log.

mod common;

use std::time::Duration;

use common::{loadgen, Behaviour, TestServer};

const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn open_loop_achieves_the_target_rate() {
    let server = TestServer::start(Behaviour::Echo);
    let target = server.target();
    let out = loadgen(
        &[
            &target, "-c", "10", "-R", "2000", "-d", "3s", "--warmup", "1s", "--verify", "--json",
        ],
        DEADLINE,
    );
    let s = out.summary();
    assert_eq!(s.target_rate, Some(2000.0));
    let error = (s.throughput.rps - 2000.0).abs() / 2000.0;
    assert!(
        error < 0.02,
        "achieved {} req/s, {:.2}% off",
        s.throughput.rps,
        error * 100.0
    );
    assert_eq!(s.total_errors(), 0, "{:?}", s.requests.errors);
    assert!(
        s.warnings.iter().all(|w| !w.contains("fell short")),
        "{:?}",
        s.warnings
    );
    assert!(s.timeseries.len() >= 2, "{:?}", s.timeseries);
}

#[test]
fn open_loop_shortfall_is_reported() {
    // One connection, one outstanding request, a server that takes 5 ms per reply: at most
    // 200 req/s of the 1000 asked for, and the summary must say so.
    let server = TestServer::start(Behaviour::Delay(Duration::from_millis(5)));
    let target = server.target();
    let out = loadgen(
        &[&target, "-c", "1", "-R", "1000", "-d", "2s", "--json"],
        DEADLINE,
    );
    let s = out.summary();
    assert!(s.throughput.rps < 300.0, "{}", s.throughput.rps);
    assert!(
        s.warnings.iter().any(|w| w.contains("fell short")),
        "{:?}",
        s.warnings
    );
    // Every request waited for its predecessors: the corrected latency grows towards the run
    // length while the uncorrected one stays near the 5 ms service time.
    assert!(s.latency_us.max > 1_000_000.0, "{:?}", s.latency_us);
    assert!(
        s.latency_uncorrected_us.p50 < 100_000.0,
        "{:?}",
        s.latency_uncorrected_us
    );
}

#[test]
fn stall_shows_in_corrected_open_loop_latency_but_not_in_closed_loop_p999() {
    let stall = Duration::from_millis(500);
    let open_server = TestServer::start(Behaviour::StallOnce {
        after: Duration::from_millis(1500),
        stall,
    });
    let target = open_server.target();
    let open = loadgen(
        &[
            &target, "-c", "2", "-R", "1000", "-d", "3s", "--warmup", "500ms", "--json",
        ],
        DEADLINE,
    )
    .summary();
    // About 500 of ~3000 requests were due during the stall: the corrected tail shows it.
    assert!(open.latency_us.p999 >= 300_000.0, "{:?}", open.latency_us);
    assert!(open.latency_us.max >= 400_000.0, "{:?}", open.latency_us);
    assert!(open.latency_us.p99 >= 100_000.0, "{:?}", open.latency_us);

    let closed_server = TestServer::start(Behaviour::StallOnce {
        after: Duration::from_millis(1500),
        stall,
    });
    let target = closed_server.target();
    let closed = loadgen(
        &[
            &target, "-c", "1", "-d", "3s", "--warmup", "500ms", "--json",
        ],
        DEADLINE,
    )
    .summary();
    // A closed loop sends nothing while it waits, so only one request sees the stall.
    assert!(closed.requests.completed > 2000, "{:?}", closed.requests);
    assert!(
        closed.latency_us.max >= 400_000.0,
        "{:?}",
        closed.latency_us
    );
    assert!(
        closed.latency_us.p999 < 100_000.0,
        "{:?}",
        closed.latency_us
    );
}

#[test]
fn resets_are_counted_and_the_run_completes() {
    let server = TestServer::start(Behaviour::Reset);
    let target = server.target();
    let out = loadgen(&[&target, "-c", "4", "-d", "2s", "--json"], DEADLINE);
    let s = out.summary();
    let resets = s.requests.errors.get("reset").copied().unwrap_or(0);
    let closed = s.requests.errors.get("closed").copied().unwrap_or(0);
    assert!(resets > 0, "{:?}", s.requests.errors);
    assert!(resets + closed >= 4, "{:?}", s.requests.errors);
    assert_eq!(s.requests.completed, 0);
    // The human form prints the counts too.
    let human = loadgen(&[&target, "-c", "2", "-d", "1s"], DEADLINE);
    assert!(human.status.success(), "{}", human.stderr);
    assert!(human.stdout.contains("reset"), "{}", human.stdout);
}

#[test]
fn corrupted_replies_are_verify_mismatches() {
    let server = TestServer::start(Behaviour::Corrupt { every: 10 });
    let target = server.target();
    let s = loadgen(
        &[&target, "-c", "2", "-n", "2000", "--verify", "--json"],
        DEADLINE,
    )
    .summary();
    let mismatches = s
        .requests
        .errors
        .get("verify_mismatch")
        .copied()
        .unwrap_or(0);
    assert!(mismatches >= 50, "{:?}", s.requests);
    assert_eq!(s.requests.completed, 2000);
    // Without --verify nothing is checked.
    let unchecked = loadgen(&[&target, "-c", "1", "-n", "500", "--json"], DEADLINE).summary();
    assert_eq!(unchecked.total_errors(), 0);
}

#[test]
fn request_count_run_and_pipeline() {
    let server = TestServer::start(Behaviour::Echo);
    let target = server.target();
    let s = loadgen(
        &[
            &target,
            "-c",
            "3",
            "-t",
            "2",
            "-n",
            "3001",
            "--pipeline",
            "8",
            "--size-range",
            "1..300",
            "--verify",
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    assert_eq!(s.requests.sent, 3001);
    assert_eq!(s.requests.completed, 3001);
    assert_eq!(s.total_errors(), 0, "{:?}", s.requests.errors);
    assert_eq!(s.connections.opened, 3);
    assert_eq!(s.generator_cpu_percent.len(), 2);
    assert!(s.latency_us.count == 3001);
}

#[test]
fn hdr_log_and_histograms_are_readable() {
    use base64::Engine;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::Histogram;

    let server = TestServer::start(Behaviour::Echo);
    let target = server.target();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("latency.hlog");
    let log_arg = log.to_string_lossy().to_string();
    let s = loadgen(
        &[
            &target,
            "-c",
            "2",
            "-R",
            "500",
            "-d",
            "2500ms",
            "--hdr-log",
            &log_arg,
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    let decode = |text: &str| -> Histogram<u64> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("base64");
        Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .expect("V2 histogram")
    };
    let latency = decode(&s.histograms["latency"]);
    assert_eq!(latency.len(), s.requests.completed);
    for name in ["latency_uncorrected", "connect", "loop_lag"] {
        decode(&s.histograms[name]);
    }
    let text = std::fs::read(&log).expect("log written");
    let mut total = 0;
    let mut intervals = 0;
    for entry in IntervalLogIterator::new(&text) {
        if let LogEntry::Interval(interval) = entry.expect("log parses") {
            if interval.tag().is_none() {
                total += decode(interval.encoded_histogram()).len();
                intervals += 1;
            }
        }
    }
    assert_eq!(total, s.requests.completed);
    assert!(intervals >= 3, "{intervals}");
}

#[test]
fn server_gone_mid_run_is_counted() {
    let server = TestServer::start(Behaviour::Echo);
    let target = server.target();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        drop(server);
    });
    // The test server's connection threads keep echoing after the listener closes, so this
    // checks the run survives the listener going away and reconnects being refused.
    let out = loadgen(
        &[
            &target,
            "-c",
            "2",
            "-d",
            "2s",
            "--timeout",
            "500ms",
            "--json",
        ],
        DEADLINE,
    );
    killer.join().expect("killer");
    let s = out.summary();
    assert!(s.requests.completed > 0);
}

#[test]
fn silent_server_gives_timeouts() {
    let server = TestServer::start(Behaviour::Silent);
    let target = server.target();
    let s = loadgen(
        &[
            &target,
            "-c",
            "2",
            "-d",
            "2s",
            "--timeout",
            "300ms",
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    let timeouts = s.requests.errors.get("timeout").copied().unwrap_or(0);
    // Each connection times out, reconnects after 100 ms, and times out again.
    assert!(timeouts >= 4, "{:?}", s.requests.errors);
    assert_eq!(s.requests.completed, 0);
    assert!(s.connections.opened >= 4, "{:?}", s.connections);
}

#[test]
fn request_count_run_ends_when_the_server_resets_everything() {
    // Every connection is reset before it answers; each slot gives up after 10 tries in a
    // row, so the run ends (about a second of 100 ms reconnect delays) instead of retrying
    // forever, and says how many requests never completed.
    let server = TestServer::start(Behaviour::Reset);
    let target = server.target();
    let s = loadgen(&[&target, "-c", "2", "-n", "100", "--json"], DEADLINE).summary();
    assert_eq!(s.requests.completed, 0);
    assert!(s.total_errors() >= 20, "{:?}", s.requests.errors);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("0 of the 100 requests")),
        "{:?}",
        s.warnings
    );
}
