//! The example servers over TLS against real peers: `openssl s_client` and Python's `ssl`
//! module against `gev-echo` over TLS 1.3 and TLS 1.2 (every byte of randomly fragmented writes
//! echoed; session resumption and close_notify with Python, by ticket and, for TLS 1.2, by
//! session id, counted by the server's metrics), Python `websockets` over wss against
//! `gev-websocket`, `curl --http1.1` over https against `gev-http` (ALPN, keep-alive, POST), and
//! real clients that reject the certificate or speak plaintext, counted by the metrics while a
//! good client keeps being served.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::tls::{closes, free_local_addr, wait_for_closes, CertFiles};
use common::ServerProcess;
use rand::{Rng, SeedableRng};

/// The venv's Python (websockets lives there), else the system python3 for plain `ssl`.
fn python() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = root.join(".venv-test/bin/python");
    assert!(
        venv.exists(),
        "{} missing: run scripts/setup-test-deps.sh",
        venv.display()
    );
    venv
}

/// Runs `script` with `args`; returns stdout, panicking with both streams on failure.
fn run_python(script: &str, args: &[String]) -> String {
    let output = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("running python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "python failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn start_echo(certs: &CertFiles, extra: &[String]) -> ServerProcess {
    let mut args: Vec<String> = ["--host", "127.0.0.1", "--port", "0", "--loops", "1"]
        .map(String::from)
        .to_vec();
    args.extend(certs.args());
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServerProcess::start_with("gev-echo", &args, &[("RUST_LOG", "warn")])
}

const PYTHON_ECHO: &str = r#"
import random, socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
max_version = sys.argv[3] if len(sys.argv) > 3 else "default"
resume_with = sys.argv[4] if len(sys.argv) > 4 else "tickets"
ctx = ssl.create_default_context(cafile=cafile)
if max_version == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
if resume_with == "session-ids":
    ctx.options |= ssl.OP_NO_TICKET  # the server must resume from its session-id cache
rng = random.Random(7)

def roundtrips(sock, rounds):
    for _ in range(rounds):
        data = rng.randbytes(rng.randrange(1, 200_000))
        sent = 0
        while sent < len(data):  # random fragments, each its own record
            n = rng.randrange(1, 30_000)
            sock.sendall(data[sent:sent + n])
            sent += n
        got = bytearray()
        while len(got) < len(data):
            chunk = sock.recv(65536)
            assert chunk, f"EOF after {len(got)} of {len(data)}"
            got += chunk
        assert bytes(got) == data, "echo differs"

with socket.create_connection(("127.0.0.1", port)) as raw:
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    roundtrips(s, 20)
    session = s.session
    assert not s.session_reused
    s.unwrap()  # sends close_notify and waits for the server's
with socket.create_connection(("127.0.0.1", port)) as raw:
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    roundtrips(s, 3)
    assert s.session_reused, "session not resumed"
    print("version", s.version(), "resumed", s.session_reused, "cipher", s.cipher()[0])
    s.unwrap()
print("ok")
"#;

#[test]
fn python_ssl_echo_resumption_and_close_notify() {
    let certs = CertFiles::new();
    let server = start_echo(&certs, &[]);
    let out = run_python(
        PYTHON_ECHO,
        &[
            server.addr().port().to_string(),
            certs.cert_path.display().to_string(),
        ],
    );
    assert!(out.contains("version TLSv1.3 resumed True"), "{out}");
    assert!(out.trim_end().ends_with("ok"), "{out}");
}

/// Echo through `openssl s_client` (trusting `cafile`, with `extra` flags such as `-tls1_2`):
/// 200 random text lines (s_client is line oriented) written to its stdin in random fragments
/// must come back byte for byte; then stdin is closed and s_client ends the session. Returns
/// s_client's stderr (its `-brief` summary: verification, protocol version, cipher).
fn s_client_echo(addr: std::net::SocketAddr, cafile: &std::path::Path, extra: &[&str]) -> String {
    let child = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-brief",
            "-nocommands",
        ])
        .args(extra)
        .arg("-CAfile")
        .arg(cafile)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client (apt install openssl)");
    let mut guard = common::ChildGuard::new(child);
    let mut stdin = guard.child().stdin.take().unwrap();
    let mut stdout = guard.child().stdout.take().unwrap();
    // Random text lines (s_client is line oriented), written in random fragments.
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut expected = Vec::new();
    for _ in 0..200 {
        let len = rng.random_range(0..3000);
        expected.extend((0..len).map(|_| rng.random_range(b'!'..=b'~')));
        expected.push(b'\n');
    }
    let writer_data = expected.clone();
    let writer = std::thread::spawn(move || {
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        let mut sent = 0;
        while sent < writer_data.len() {
            let n = rng.random_range(1..=(writer_data.len() - sent).min(5000));
            stdin.write_all(&writer_data[sent..sent + n]).unwrap();
            stdin.flush().unwrap();
            sent += n;
        }
        stdin // closed once the echo is checked
    });
    let (tx, rx) = mpsc::channel();
    let total = expected.len();
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while got.len() < total {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(got);
    });
    let got = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("echo within 30 s");
    assert!(
        got == expected,
        "echo differs: {} of {} bytes",
        got.len(),
        expected.len()
    );
    drop(writer.join().unwrap()); // EOF on stdin: s_client closes the session
    let output = guard.take().wait_with_output().expect("s_client exit");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn openssl_s_client_echo_with_self_signed_certificate() {
    // gev-echo generates the certificate and writes it for the client to trust.
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("self-signed.pem");
    let args = [
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--loops",
        "1",
        "--tls-self-signed",
        "--tls-write-cert",
        cert_path.to_str().unwrap(),
    ];
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let server = ServerProcess::start_configured("gev-echo", &args, |command| {
        command.env("RUST_LOG", "warn").stderr(log);
    });
    // The fingerprint printed is the one openssl computes from the written certificate.
    let printed = std::fs::read_to_string(&log_path).unwrap();
    let printed = printed
        .lines()
        .find_map(|l| l.strip_prefix("TLS certificate SHA-256 fingerprint: "))
        .unwrap_or_else(|| panic!("no fingerprint line in {printed:?}"))
        .to_owned();
    let x509 = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert_path)
        .output()
        .expect("openssl x509");
    let expected_fingerprint = String::from_utf8_lossy(&x509.stdout);
    assert_eq!(
        expected_fingerprint.trim().rsplit('=').next(),
        Some(printed.as_str())
    );
    let stderr = s_client_echo(server.addr(), &cert_path, &[]);
    assert!(stderr.contains("Verification: OK"), "{stderr}");
    assert!(stderr.contains("Protocol version: TLSv1.3"), "{stderr}");
}

/// `gev_tls_handshakes_total` and `gev_tls_resumed_handshakes_total`, summed over loops.
fn handshakes(metrics: std::net::SocketAddr) -> (u64, u64) {
    let text = common::tls::scrape(metrics);
    let sum = |name: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    (
        sum("gev_tls_handshakes_total"),
        sum("gev_tls_resumed_handshakes_total"),
    )
}

#[test]
fn openssl_s_client_echo_over_tls_1_2() {
    let certs = CertFiles::new();
    let server = start_echo(&certs, &[]);
    let stderr = s_client_echo(server.addr(), &certs.cert_path, &["-tls1_2"]);
    assert!(stderr.contains("Verification: OK"), "{stderr}");
    assert!(stderr.contains("Protocol version: TLSv1.2"), "{stderr}");
    // TLS 1.2 with forward secrecy: an ECDHE suite (the certificate is ECDSA).
    assert!(stderr.contains("Ciphersuite: ECDHE-ECDSA-"), "{stderr}");
}

#[test]
fn python_ssl_tls_1_2_echo_and_resumption_by_ticket_and_by_session_id() {
    let certs = CertFiles::new();
    let metrics = free_local_addr();
    let server = start_echo(&certs, &["--metrics".into(), metrics.to_string()]);
    // Tickets (Python offers them by default), then session ids (OP_NO_TICKET: the server's
    // session cache); each run is a full handshake, echo and close_notify, then a resumed one.
    for (run, resume_with) in ["tickets", "session-ids"].into_iter().enumerate() {
        let out = run_python(
            PYTHON_ECHO,
            &[
                server.addr().port().to_string(),
                certs.cert_path.display().to_string(),
                "1.2".into(),
                resume_with.into(),
            ],
        );
        assert!(
            out.contains("version TLSv1.2 resumed True"),
            "{resume_with}: {out}"
        );
        assert!(out.contains("cipher ECDHE-ECDSA-"), "{resume_with}: {out}");
        assert!(out.trim_end().ends_with("ok"), "{resume_with}: {out}");
        // The server counts it too: one full and one resumed handshake per run.
        let expected = (2 * (run as u64 + 1), run as u64 + 1);
        let deadline = std::time::Instant::now() + common::tls::IO_TIMEOUT;
        let mut seen = handshakes(metrics);
        while seen != expected && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            seen = handshakes(metrics);
        }
        assert_eq!(seen, expected, "{resume_with}: (handshakes, resumed)");
    }
}

const PYTHON_WSS: &str = r#"
import asyncio, random, ssl, sys
import websockets
port, cafile = int(sys.argv[1]), sys.argv[2]

async def main():
    ctx = ssl.create_default_context(cafile=cafile)
    rng = random.Random(3)
    async with websockets.connect(f"wss://localhost:{port}/echo", ssl=ctx, max_size=None) as ws:
        for i in range(60):
            if i % 3 == 0:
                msg = "".join(rng.choice("aé€𝄞z ") for _ in range(rng.randrange(0, 5000)))
            else:
                msg = rng.randbytes(rng.randrange(0, 300_000))
            await ws.send(msg)
            assert await ws.recv() == msg, f"message {i} differs"
    print("wss ok")

asyncio.run(main())
"#;

#[test]
fn wss_echo_with_python_websockets() {
    let certs = CertFiles::new();
    let mut args: Vec<String> = ["--host", "127.0.0.1", "--port", "0", "--loops", "2"]
        .map(String::from)
        .to_vec();
    args.extend(certs.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start_with("gev-websocket", &args, &[("RUST_LOG", "warn")]);
    let out = run_python(
        PYTHON_WSS,
        &[
            server.addr().port().to_string(),
            certs.cert_path.display().to_string(),
        ],
    );
    assert!(out.contains("wss ok"), "{out}");
}

#[test]
fn https_with_curl_alpn_keep_alive_and_post() {
    let certs = CertFiles::new();
    let mut args: Vec<String> = ["--host", "127.0.0.1", "--port", "0", "--loops", "1"]
        .map(String::from)
        .to_vec();
    args.extend(certs.args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start_with("gev-http", &args, &[("RUST_LOG", "warn")]);
    let base = format!("https://localhost:{}", server.addr().port());
    let output = Command::new("curl")
        .args(["--http1.1", "-sS", "-v", "--max-time", "20", "--cacert"])
        .arg(&certs.cert_path)
        .arg(format!("{base}/a"))
        .arg(format!("{base}/b"))
        .args(["-d", "some body", &format!("{base}/post")])
        .output()
        .expect("curl (apt install curl)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "curl failed: {stderr}");
    assert_eq!(stdout, "Hello, World!".repeat(3), "{stderr}");
    assert!(
        stderr.contains("ALPN: server accepted http/1.1"),
        "{stderr}"
    );
    assert!(stderr.contains("Re-using existing connection"), "{stderr}");
    // A method the module does not serve: 405 over TLS as over TCP.
    let output = Command::new("curl")
        .args([
            "--http1.1",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "BREW",
        ])
        .arg("--cacert")
        .arg(&certs.cert_path)
        .arg(format!("{base}/pot"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "405");
}

const PYTHON_REJECTS: &str = r#"
import socket, ssl, sys
port, mode = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context()  # system roots: our certificate is unknown (and expired)
with socket.create_connection(("127.0.0.1", port)) as raw:
    try:
        ctx.wrap_socket(raw, server_hostname="localhost")
        print("handshake succeeded")
    except ssl.SSLCertVerificationError as e:
        print("rejected:", e.verify_message)
"#;

const PYTHON_INSECURE_ECHO: &str = r#"
import socket, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", port)) as raw:
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    for i in range(3):
        s.sendall(b"ping %d" % i)
        assert s.recv(100) == b"ping %d" % i
print("served")
"#;

#[test]
fn real_clients_rejecting_the_certificate_or_speaking_plaintext_are_counted() {
    let certs = CertFiles::expired();
    let metrics = free_local_addr();
    let server = start_echo(&certs, &["--metrics".into(), metrics.to_string()]);
    let port = server.addr().port().to_string();
    // Python: unknown and expired certificate -> alert.
    let out = run_python(PYTHON_REJECTS, &[port.clone(), "verify".into()]);
    assert!(out.starts_with("rejected:"), "{out}");
    wait_for_closes(metrics, "tls", 1);
    // openssl s_client trusting the certificate: still expired -> alert.
    let status = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &server.addr().to_string(),
            "-verify_return_error",
        ])
        .arg("-CAfile")
        .arg(&certs.cert_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("openssl");
    assert!(!status.status.success());
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("certificate has expired"),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    wait_for_closes(metrics, "tls", 2);
    // curl speaking plain HTTP to the TLS port.
    let output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .output()
        .expect("curl");
    assert!(!output.status.success());
    wait_for_closes(metrics, "tls", 3);
    // Everyone else is served (a client that does not verify).
    let out = run_python(PYTHON_INSECURE_ECHO, &[port]);
    assert!(out.contains("served"), "{out}");
    assert_eq!(closes(metrics, "handshake_timeout"), 0);
}

#[test]
fn every_example_binary_serves_tls_with_the_shared_flags() {
    let certs = CertFiles::new();
    let config = common::tls::client_config(&[certs.cert.cert_der()], &[]);
    for name in [
        "gev-echo",
        "gev-protocol",
        "gev-push",
        "gev-maxconn",
        "gev-http",
        "gev-websocket",
    ] {
        let mut args: Vec<String> = ["--host", "127.0.0.1", "--port", "0", "--loops", "1"]
            .map(String::from)
            .to_vec();
        args.extend(certs.args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut server = ServerProcess::start_with(name, &args, &[("RUST_LOG", "warn")]);
        let client = common::tls::TlsClient::connect(server.addr(), &config)
            .unwrap_or_else(|e| panic!("{name}: TLS handshake failed: {e}"));
        drop(client);
        let status = server
            .interrupt_and_wait(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(status.success(), "{name} exited with {status}");
    }
}
