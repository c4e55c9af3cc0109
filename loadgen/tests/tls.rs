//! loadgen over TLS against real TLS peers: the tokio-rustls reference (`ref-tokio-tls-echo`,
//! raw and length framings with `--verify`, 64 B and 16 KiB), Python's `ssl` module under
//! `http.server` (https) and under `websockets` (wss), and the failures a TLS client must count
//! rather than crash on: an unknown CA, a wrong name, a plaintext server, a server that stalls
//! in the handshake. Handshake-only runs are checked for consistent counts (handshakes ==
//! connections opened) and for resumption (on: resumed handshakes; off: none). Against gev over
//! TLS: gev-echo (`--tls-cert`/`--tls-key`, and `--tls-self-signed --tls-write-cert`),
//! gev-websocket (wss) and gev-http (https). Certificates are made per test with rcgen (valid
//! for localhost, 127.0.0.1 and ::1).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{loadgen, ChildGuard, ServerProcess, STARTUP_TIMEOUT};
use gev_loadgen::Summary;

const DEADLINE: Duration = Duration::from_secs(60);

/// A certificate and key for localhost/127.0.0.1/::1 written into `dir` as `NAME-cert.pem` and
/// `NAME-key.pem`.
fn cert_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names).expect("rcgen");
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// The reference TLS echo server with the given certificate.
fn tls_ref(cert: &Path, key: &Path) -> ServerProcess {
    ServerProcess::start(
        "ref-tokio-tls-echo",
        &["--workers", "1", "--tls-cert", s(cert), "--tls-key", s(key)],
    )
}

fn run(args: &[&str]) -> Summary {
    loadgen(args, DEADLINE).summary()
}

fn tls(summary: &Summary) -> &gev_loadgen::TlsSummary {
    summary.tls.as_ref().expect("a TLS run has a tls section")
}

/// How a run trusts the server: a CA file, or `--insecure`.
#[derive(Clone, Copy)]
enum Trust<'a> {
    Ca(&'a Path),
    Insecure,
}

/// `loadgen TARGET <trust> -c CONNECTIONS -d DURATION EXTRA... --json`.
fn run_tls(
    target: &str,
    trust: Trust<'_>,
    connections: &str,
    duration: &str,
    extra: &[&str],
) -> Summary {
    let mut args = vec![target];
    match trust {
        Trust::Ca(ca) => args.extend(["--ca", s(ca)]),
        Trust::Insecure => args.push("--insecure"),
    }
    args.extend(["-c", connections, "-d", duration]);
    args.extend_from_slice(extra);
    args.push("--json");
    run(&args)
}

/// No errors and more than `more_than` requests completed; `what` names the run on failure.
fn assert_served(summary: &Summary, more_than: u64, what: &str) {
    assert_eq!(summary.total_errors(), 0, "{what}: {:?}", summary.requests);
    assert!(
        summary.requests.completed > more_than,
        "{what}: {:?}",
        summary.requests
    );
}

/// The count of error `kind` in a run.
fn errors(summary: &Summary, kind: &str) -> u64 {
    summary.requests.errors.get(kind).copied().unwrap_or(0)
}

#[test]
fn raw_and_length_over_tls_against_tokio_rustls_with_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(dir.path(), "server");
    let server = tls_ref(&cert, &key);
    let target = format!("tls://{}", server.addr());
    for extra in [
        &["--size", "64"][..],
        &["--size", "16384"][..],
        &["--framing", "length", "--size-range", "1..20000"][..],
    ] {
        let mut args = vec!["-t", "2", "--verify"];
        args.extend_from_slice(extra);
        let summary = run_tls(&target, Trust::Ca(&cert), "4", "2s", &args);
        assert_served(&summary, 50, &format!("{extra:?}"));
        let t = tls(&summary);
        assert_eq!(t.verification, "ca");
        assert_eq!(t.server_name, "127.0.0.1");
        assert_eq!(t.handshakes, summary.connections.opened);
        assert_eq!(summary.connections.opened, 4);
        assert_eq!(t.versions.get("TLSv1.3"), Some(&4), "{t:?}");
        assert_eq!(t.handshake_us.count, 4);
        assert_eq!(summary.connect_us.count, 4);
        assert!(t.handshake_us.p50 > 0.0);
        assert!(summary.histograms.contains_key("tls_handshake"));
    }
}

#[test]
fn insecure_skips_verification_and_a_wrong_ca_or_name_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(dir.path(), "server");
    let (other, _) = cert_pair(dir.path(), "other");
    let server = ServerProcess::start(
        "ref-tokio-tls-echo",
        &["--workers", "1", "--tls-self-signed"],
    );
    let target = format!("tls://{}", server.addr());
    let ok = run_tls(&target, Trust::Insecure, "2", "1s", &["--verify"]);
    assert_served(&ok, 10, "insecure");
    assert_eq!(tls(&ok).verification, "insecure");

    // The self-signed server's certificate is not signed by `other`.
    let bad = run_tls(&target, Trust::Ca(&other), "2", "1s", &[]);
    assert_eq!(bad.requests.completed, 0);
    assert!(
        errors(&bad, "tls_bad_certificate") > 0,
        "{:?}",
        bad.requests
    );
    assert_eq!(tls(&bad).handshakes, 0);
    assert_eq!(tls(&bad).failed, bad.connections.failed);
    assert!(
        bad.warnings
            .iter()
            .any(|w| w.contains("every TLS handshake failed")),
        "{:?}",
        bad.warnings
    );

    // The right CA, but a name the certificate is not valid for.
    let server = tls_ref(&cert, &key);
    let target = format!("tls://{}", server.addr());
    let name = run_tls(
        &target,
        Trust::Ca(&cert),
        "1",
        "1s",
        &["--sni", "example.com"],
    );
    assert!(
        errors(&name, "tls_certificate_name") > 0,
        "{:?}",
        name.requests
    );
    assert_eq!(tls(&name).server_name, "example.com");
    // And with the name it is valid for, via SNI to an IP target.
    let named = run_tls(
        &target,
        Trust::Ca(&cert),
        "1",
        "1s",
        &["--sni", "localhost"],
    );
    assert_eq!(named.total_errors(), 0, "{:?}", named.requests);
}

#[test]
fn handshake_only_counts_agree_and_resumption_shows() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(dir.path(), "server");
    let server = tls_ref(&cert, &key);
    let target = format!("tls://{}", server.addr());
    let on = run_tls(&target, Trust::Ca(&cert), "4", "2s", &["--handshake-only"]);
    let t = tls(&on);
    assert_eq!(on.total_errors(), 0, "{:?}", on.requests);
    assert_eq!(t.handshakes, on.connections.opened);
    assert!(
        on.requests.completed > 10 && on.requests.completed <= t.handshakes,
        "{:?} {t:?}",
        on.requests
    );
    assert_eq!(on.requests.sent, on.requests.completed);
    assert!(t.resume && t.resumed > 0, "{t:?}");
    assert_eq!(t.full + t.resumed, t.handshakes);
    assert_eq!(t.tickets_missing, 0);
    assert_eq!(on.latency_us.count, on.requests.completed);
    let per_sec = t
        .handshakes_per_sec
        .expect("handshake-only reports handshakes/s");
    assert!((per_sec - on.throughput.rps).abs() < 1e-6);
    assert_eq!(on.throughput.bytes_sent, 0);

    let off = run_tls(
        &target,
        Trust::Ca(&cert),
        "4",
        "2s",
        &["--handshake-only", "--tls-resume", "off"],
    );
    let t = tls(&off);
    assert_eq!(off.total_errors(), 0, "{:?}", off.requests);
    assert_eq!(t.handshakes, off.connections.opened);
    assert!(!t.resume);
    assert_eq!(t.resumed, 0);
    assert_eq!(t.full, t.handshakes);

    // Open loop: 100 handshakes/s for 2 s, latency from each handshake's intended start.
    let open = run_tls(
        &target,
        Trust::Ca(&cert),
        "4",
        "2s",
        &["--handshake-only", "-R", "100"],
    );
    let t = tls(&open);
    assert_eq!(open.total_errors(), 0, "{:?}", open.requests);
    assert!(
        (150..=205).contains(&open.requests.completed),
        "{:?}",
        open.requests
    );
    assert_eq!(open.target_rate, Some(100.0));
    assert!(open.latency_us.p50 >= open.latency_uncorrected_us.p50 * 0.99);
    assert!(t.handshakes >= open.requests.completed);
}

/// A Python peer from the test venv that prints `listening on ADDR`.
struct PythonServer {
    _guard: ChildGuard,
    addr: SocketAddr,
}

fn venv_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv-test/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/setup-test-deps.sh",
        python.display()
    );
    python
}

impl PythonServer {
    fn start(script: &str, cert: &Path, key: &Path) -> PythonServer {
        let mut child = Command::new(venv_python())
            .arg("-c")
            .arg(script)
            .arg(cert)
            .arg(key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python");
        let stdout = child.stdout.take().expect("stdout");
        let guard = ChildGuard(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let line = rx
            .recv_timeout(STARTUP_TIMEOUT)
            .expect("python server printed no `listening on` line");
        PythonServer {
            _guard: guard,
            addr: line.parse().expect("address"),
        }
    }
}

const HTTPS_SERVER: &str = r#"
import http.server, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"hello over tls"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
context.set_alpn_protocols(["http/1.1"])
server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
"#;

const WSS_SERVER: &str = r#"
import asyncio, ssl, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for message in ws:
        await ws.send(message)
async def main():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[1], sys.argv[2])
    async with serve(echo, "127.0.0.1", 0, ssl=context, compression=None, max_size=None) as server:
        port = list(server.sockets)[0].getsockname()[1]
        print("listening on 127.0.0.1:%d" % port, flush=True)
        await asyncio.Future()
asyncio.run(main())
"#;

#[test]
fn https_against_python_ssl() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(dir.path(), "server");
    let server = PythonServer::start(HTTPS_SERVER, &cert, &key);
    let target = format!("https://localhost:{}/", server.addr.port());
    let summary = run_tls(&target, Trust::Ca(&cert), "2", "1s", &["--verify"]);
    assert_served(&summary, 10, "https");
    let t = tls(&summary);
    assert_eq!(t.server_name, "localhost");
    assert_eq!(t.alpn_offered, vec!["http/1.1".to_string()]);
    assert_eq!(
        t.alpn.get("http/1.1"),
        Some(&summary.connections.opened),
        "{t:?}"
    );
}

#[test]
fn wss_against_python_websockets() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(dir.path(), "server");
    let server = PythonServer::start(WSS_SERVER, &cert, &key);
    let target = format!("wss://{}/", server.addr);
    for message in ["text", "binary"] {
        let summary = run_tls(
            &target,
            Trust::Ca(&cert),
            "2",
            "1s",
            &["--verify", "--ws-message", message, "--size", "3000"],
        );
        assert_served(&summary, 10, message);
        assert_eq!(tls(&summary).handshakes, 2);
        assert_eq!(summary.config.framing, "websocket");
    }
}

#[test]
fn plaintext_server_and_stalled_handshake_are_counted() {
    // A plaintext echo server answers the ClientHello with the ClientHello: not TLS.
    let plain = ServerProcess::start("ref-tokio-echo", &["--workers", "1"]);
    let target = format!("tls://{}", plain.addr());
    let summary = run_tls(&target, Trust::Insecure, "2", "1s", &[]);
    assert_eq!(summary.requests.completed, 0);
    assert!(
        errors(&summary, "tls_handshake") > 0,
        "{:?}",
        summary.requests
    );

    // A listener that never accepts: TCP completes in the kernel, the handshake never does.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tls://{}", silent.local_addr().unwrap());
    let summary = run_tls(&target, Trust::Insecure, "2", "2s", &["--timeout", "300ms"]);
    assert!(
        errors(&summary, "tls_handshake_timeout") > 0,
        "{:?}",
        summary.requests
    );
    assert_eq!(summary.connections.opened, 0);
}

#[test]
fn bad_tls_flag_combinations_exit_2_with_one_line() {
    let cases: &[&[&str]] = &[
        &["127.0.0.1:9", "--insecure"],
        &["127.0.0.1:9", "--handshake-only"],
        &["tls://127.0.0.1:9", "--insecure", "--ca", "x.pem"],
        &["tls://127.0.0.1:9", "--ca", "/nonexistent/ca.pem"],
        &["https://127.0.0.1:9/", "--insecure", "--alpn", "h2"],
        &[
            "tls://127.0.0.1:9",
            "--insecure",
            "--tls-resume",
            "sometimes",
        ],
        &[
            "tls://127.0.0.1:9",
            "--insecure",
            "--handshake-only",
            "--verify",
        ],
        &["ftps://127.0.0.1:9"],
    ];
    for args in cases {
        let out = loadgen(args, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.starts_with("loadgen: error: "),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn raw_and_handshakes_against_gev_echo_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(dir.path(), "server");
    let server = ServerProcess::start(
        "gev-echo",
        &["--loops", "1", "--tls-cert", s(&cert), "--tls-key", s(&key)],
    );
    let target = format!("tls://{}", server.addr());
    for size in ["64", "16384"] {
        let summary = run_tls(
            &target,
            Trust::Ca(&cert),
            "4",
            "2s",
            &["--verify", "--size", size],
        );
        assert_served(&summary, 50, size);
        assert_eq!(tls(&summary).handshakes, 4);
    }
    let on = run_tls(&target, Trust::Ca(&cert), "4", "2s", &["--handshake-only"]);
    let t = tls(&on);
    assert_eq!(on.total_errors(), 0, "{:?}", on.requests);
    assert_eq!(t.handshakes, on.connections.opened);
    assert!(t.resumed > 0, "gev resumes sessions by default: {t:?}");
    let off = run_tls(
        &target,
        Trust::Ca(&cert),
        "4",
        "1s",
        &["--handshake-only", "--tls-resume", "off"],
    );
    assert_eq!(off.total_errors(), 0, "{:?}", off.requests);
    assert_eq!(tls(&off).resumed, 0);
}

#[test]
fn gev_echo_self_signed_with_its_written_certificate_and_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let written = dir.path().join("gev-cert.pem");
    let server = ServerProcess::start(
        "gev-echo",
        &[
            "--loops",
            "1",
            "--tls-self-signed",
            "--tls-write-cert",
            s(&written),
        ],
    );
    let target = format!("tls://{}", server.addr());
    let trusted = run_tls(&target, Trust::Ca(&written), "2", "1s", &["--verify"]);
    assert_eq!(trusted.total_errors(), 0, "{:?}", trusted.requests);
    let insecure = run_tls(&target, Trust::Insecure, "2", "1s", &["--verify"]);
    assert_served(&insecure, 10, "insecure");
}

#[test]
fn wss_and_https_against_gev_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(dir.path(), "server");
    let tls_args = ["--loops", "1", "--tls-cert", s(&cert), "--tls-key", s(&key)];
    let ws = ServerProcess::start("gev-websocket", &tls_args);
    let wss = format!("wss://{}/", ws.addr());
    let summary = run_tls(&wss, Trust::Ca(&cert), "2", "1s", &["--verify"]);
    assert_served(&summary, 10, &wss);
    let http = ServerProcess::start("gev-http", &tls_args);
    let https = format!("https://localhost:{}/", http.addr().port());
    let summary = run_tls(&https, Trust::Ca(&cert), "2", "1s", &["--verify"]);
    assert_served(&summary, 10, &https);
}
