//! `--tls-resume on` resumes (almost) every reconnect: a handshake-only run with 50 connections
//! against gev-echo and against the tokio-rustls reference must have only about the first
//! handshake of each connection full. With rustls's own client cache (8 TLS 1.3 tickets per
//! server name) about a third to a half of these handshakes resumed; loadgen's `TicketStore`
//! keeps every ticket (loadgen/src/tls_sessions.rs).

mod common;

use common::{loadgen, ServerProcess};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);
const CONNECTIONS: u64 = 50;

/// Runs a handshake-only run with resumption on and checks that at most the first handshake of
/// each connection (plus 2% of all, for tickets a server may decline) was full.
fn check_resumes_almost_all(server: &ServerProcess) {
    let target = format!("tls://localhost:{}", server.addr().port());
    let connections = CONNECTIONS.to_string();
    let summary = loadgen(
        &[
            &target,
            "--insecure",
            "--handshake-only",
            "-c",
            &connections,
            "-d",
            "2s",
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    let t = summary.tls.as_ref().expect("a TLS run has a tls section");
    assert_eq!(summary.total_errors(), 0, "{:?}", summary.requests);
    assert_eq!(t.full + t.resumed, t.handshakes);
    assert!(
        t.handshakes >= 4 * CONNECTIONS,
        "too few handshakes to tell: {t:?}"
    );
    assert!(
        t.full <= CONNECTIONS + t.handshakes / 50,
        "only the first handshake per connection may be full: {t:?}"
    );
    eprintln!(
        "{}: {} handshakes, {} resumed, {} full",
        server.listen_line(),
        t.handshakes,
        t.resumed,
        t.full
    );
}

#[test]
fn handshake_only_resumes_nearly_every_reconnect_against_gev_and_tokio_rustls() {
    let gev = ServerProcess::start("gev-echo", &["--loops", "1", "--tls-self-signed"]);
    check_resumes_almost_all(&gev);
    drop(gev);
    let reference = ServerProcess::start(
        "ref-tokio-tls-echo",
        &["--workers", "1", "--tls-self-signed"],
    );
    check_resumes_almost_all(&reference);
}
