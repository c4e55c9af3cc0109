//! loadgen over TLS against real TLS peers: the tokio-rustls reference (`ref-tokio-tls-echo`,
//! raw and length framings with `--verify`, 64 B and 16 KiB), Python's `ssl` module under
//! `http.server` (https) and under `websockets` (wss), and the failures a TLS client must count
//! rather than crash on: an unknown CA, a wrong name, a plaintext server, a server that stalls
//! in the handshake. Handshake-only runs are checked for consistent counts (handshakes ==
//! connections opened) and for resumption (on: resumed handshakes; off: none). Certificates are
//! made per test with rcgen (valid for localhost, 127.0.0.1 and ::1).

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
        let mut args = vec![
            target.as_str(),
            "--ca",
            s(&cert),
            "-c",
            "4",
            "-t",
            "2",
            "-d",
            "2s",
            "--verify",
            "--json",
        ];
        args.extend_from_slice(extra);
        let summary = run(&args);
        assert_eq!(
            summary.total_errors(),
            0,
            "{extra:?}: {:?}",
            summary.requests
        );
        assert!(
            summary.requests.completed > 50,
            "{extra:?}: {:?}",
            summary.requests
        );
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
    let ok = run(&[
        &target,
        "--insecure",
        "-c",
        "2",
        "-d",
        "1s",
        "--verify",
        "--json",
    ]);
    assert_eq!(ok.total_errors(), 0, "{:?}", ok.requests);
    assert_eq!(tls(&ok).verification, "insecure");
    assert!(ok.requests.completed > 10);

    // The self-signed server's certificate is not signed by `other`.
    let bad = run(&[&target, "--ca", s(&other), "-c", "2", "-d", "1s", "--json"]);
    assert_eq!(bad.requests.completed, 0);
    assert!(
        bad.requests
            .errors
            .get("tls_bad_certificate")
            .copied()
            .unwrap_or(0)
            > 0,
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
    let name = run(&[
        &target,
        "--ca",
        s(&cert),
        "--sni",
        "example.com",
        "-c",
        "1",
        "-d",
        "1s",
        "--json",
    ]);
    assert!(
        name.requests
            .errors
            .get("tls_certificate_name")
            .copied()
            .unwrap_or(0)
            > 0,
        "{:?}",
        name.requests
    );
    assert_eq!(tls(&name).server_name, "example.com");
    // And with the name it is valid for, via SNI to an IP target.
    let named = run(&[
        &target,
        "--ca",
        s(&cert),
        "--sni",
        "localhost",
        "-c",
        "1",
        "-d",
        "1s",
        "--json",
    ]);
    assert_eq!(named.total_errors(), 0, "{:?}", named.requests);
}

#[test]
fn handshake_only_counts_agree_and_resumption_shows() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_pair(dir.path(), "server");
    let server = tls_ref(&cert, &key);
    let target = format!("tls://{}", server.addr());
    let common = [
        target.as_str(),
        "--ca",
        s(&cert),
        "--handshake-only",
        "-c",
        "4",
        "-d",
        "2s",
        "--json",
    ];

    let on = run(&common);
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

    let mut off_args = common.to_vec();
    off_args.extend_from_slice(&["--tls-resume", "off"]);
    let off = run(&off_args);
    let t = tls(&off);
    assert_eq!(off.total_errors(), 0, "{:?}", off.requests);
    assert_eq!(t.handshakes, off.connections.opened);
    assert!(!t.resume);
    assert_eq!(t.resumed, 0);
    assert_eq!(t.full, t.handshakes);

    // Open loop: 100 handshakes/s for 2 s, latency from each handshake's intended start.
    let open = run(&[
        &target,
        "--ca",
        s(&cert),
        "--handshake-only",
        "-c",
        "4",
        "-R",
        "100",
        "-d",
        "2s",
        "--json",
    ]);
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
    let summary = run(&[
        &target,
        "--ca",
        s(&cert),
        "-c",
        "2",
        "-d",
        "1s",
        "--verify",
        "--json",
    ]);
    assert_eq!(summary.total_errors(), 0, "{:?}", summary.requests);
    assert!(summary.requests.completed > 10, "{:?}", summary.requests);
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
        let summary = run(&[
            &target,
            "--ca",
            s(&cert),
            "-c",
            "2",
            "-d",
            "1s",
            "--verify",
            "--ws-message",
            message,
            "--size",
            "3000",
            "--json",
        ]);
        assert_eq!(
            summary.total_errors(),
            0,
            "{message}: {:?}",
            summary.requests
        );
        assert!(
            summary.requests.completed > 10,
            "{message}: {:?}",
            summary.requests
        );
        assert_eq!(tls(&summary).handshakes, 2);
        assert_eq!(summary.config.framing, "websocket");
    }
}

#[test]
fn plaintext_server_and_stalled_handshake_are_counted() {
    // A plaintext echo server answers the ClientHello with the ClientHello: not TLS.
    let plain = ServerProcess::start("ref-tokio-echo", &["--workers", "1"]);
    let target = format!("tls://{}", plain.addr());
    let summary = run(&[&target, "--insecure", "-c", "2", "-d", "1s", "--json"]);
    assert_eq!(summary.requests.completed, 0);
    assert!(
        summary
            .requests
            .errors
            .get("tls_handshake")
            .copied()
            .unwrap_or(0)
            > 0,
        "{:?}",
        summary.requests
    );

    // A listener that never accepts: TCP completes in the kernel, the handshake never does.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tls://{}", silent.local_addr().unwrap());
    let summary = run(&[
        &target,
        "--insecure",
        "-c",
        "2",
        "-d",
        "2s",
        "--timeout",
        "300ms",
        "--json",
    ]);
    assert!(
        summary
            .requests
            .errors
            .get("tls_handshake_timeout")
            .copied()
            .unwrap_or(0)
            > 0,
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
