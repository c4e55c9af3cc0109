//! End to end: a tiny TLS sweep over real processes. `tls = [false, true]` runs the plain
//! reference at the plain point and the tokio-rustls reference at the TLS point;
//! `tls_handshakes` adds handshake-only points with and without resumption. Checks the one
//! throwaway certificate in the output directory, that loadgen verified it (`--ca`), that
//! resumption shows only where it is on, and that the TLS plots are drawn.

mod common;

use std::time::Duration;

use gev_reports::results::PointTls;

const SWEEP_LIMIT: Duration = Duration::from_secs(120);

const TLS_SPEC: &str = r#"
servers = ["ref-tokio-echo", "ref-tokio-tls-echo"]
loops = [1]
connections = [4]
payload_sizes = [64]
tls = [false, true]
tls_handshakes = ["resumed", "full"]
duration = "1s"
warmup = "200ms"
repeats = 1
"#;

#[test]
fn tls_sweep_runs_plain_tls_and_handshake_points_with_one_certificate() {
    let work = tempfile::tempdir().expect("temp dir");
    let common::Swept { results, dir, .. } = common::sweep(
        work.path(),
        ("tls.toml", TLS_SPEC),
        &[],
        SWEEP_LIMIT,
        &["harness", "loadgen", "ref-tokio-echo", "ref-tokio-tls-echo"],
    );
    let cert = dir.join("tls-cert.pem");
    assert!(cert.is_file() && dir.join("tls-key.pem").is_file());
    assert!(results.failures.is_empty(), "{:?}", results.failures);
    let modes: Vec<(String, PointTls)> = results
        .runs
        .iter()
        .map(|r| (r.server.clone(), r.point.tls))
        .collect();
    assert_eq!(
        modes,
        vec![
            ("ref-tokio-echo".to_string(), PointTls::Off),
            ("ref-tokio-tls-echo".to_string(), PointTls::On),
            (
                "ref-tokio-tls-echo".to_string(),
                PointTls::HandshakesResumed
            ),
            ("ref-tokio-tls-echo".to_string(), PointTls::HandshakesFull),
        ]
    );
    common::assert_clean_runs(&results);
    for run in &results.runs {
        assert!(run.summary.requests.completed > 0);
        match (&run.summary.tls, run.point.tls) {
            (None, PointTls::Off) => {}
            (Some(tls), mode) if !mode.is_off() => {
                assert_eq!(tls.verification, "ca");
                assert_eq!(tls.ca_file.as_deref(), Some(cert.to_str().unwrap()));
                assert_eq!(tls.handshake_only, mode.is_handshakes());
                match mode {
                    PointTls::HandshakesResumed => assert!(tls.resumed > 0, "{tls:?}"),
                    PointTls::HandshakesFull => assert_eq!(tls.resumed, 0, "{tls:?}"),
                    _ => assert_eq!(tls.handshakes, 4),
                }
            }
            (tls, mode) => panic!("{mode:?} with tls section {tls:?}"),
        }
    }
    let plots = common::plot_files(&dir);
    for stem in [
        "tls-throughput-raw-64-b-4-conns-l1",
        "tls-handshakes-raw-0-b-4-conns-l1",
    ] {
        assert!(
            plots.contains(&format!("{stem}.png")) && plots.contains(&format!("{stem}.svg")),
            "{stem} missing from {plots:?}"
        );
    }
}
