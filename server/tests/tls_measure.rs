//! Measurements for the TLS notes (ignored by default: they open 10k connections and take tens
//! of seconds; run with
//! `cargo nextest run --cargo-profile fast -p gev --test tls_measure --run-ignored only --no-capture`).
//!
//! `idle_memory_per_connection`: the RSS of a one-loop `gev-echo` before and after 10,000
//! connections that each exchanged one 16-byte message and then stay idle, plain TCP and TLS
//! (TLS 1.3, ECDSA P-256, X25519) in the same run; the difference per connection is the cost of
//! TLS: rustls's session state (the unbuffered connection, its handshake-finished state with the
//! traffic keys and AEAD contexts) and gev's `TlsSession` around it. Since gev drives rustls's
//! unbuffered API no input or output buffer stays per idle connection (the carry of an
//! incomplete record is freed once empty, the record buffer goes back to the loop's pool once
//! written): 7,975 B per connection with the buffered `ServerConnection` (its ~4 KiB input
//! buffer and output buffers included), 3,869 B after, on the same machine; the test fails if
//! the TLS share per connection grows past 6,000 B again.
//!
//! `handshakes_per_second`: full and resumed handshakes per second of a one-loop `gev-echo`
//! with one blocking rustls client thread (so the figure includes the client's own CPU; both
//! pinned by the caller with taskset if wanted).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::tls::{client_config, CertFiles, TlsClient};
use common::{rss_kib, ServerProcess};

const CONNECTIONS: usize = 10_000;

/// Raises this process's open-file limit to its hard limit (children inherit it).
fn raise_nofile() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we pass; no other preconditions.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

fn start_echo(extra: &[String]) -> ServerProcess {
    let mut args: Vec<String> = ["--host", "127.0.0.1", "--port", "0", "--loops", "1"]
        .map(String::from)
        .to_vec();
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServerProcess::start_with("gev-echo", &args, &[("RUST_LOG", "warn")])
}

/// Waits until the RSS stops changing (the loop finished registering and answering).
fn settled_rss(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = rss_kib(pid);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

#[test]
#[ignore = "measurement: 2 x 10k connections"]
fn idle_memory_per_connection() {
    let limit = raise_nofile();
    assert!(
        limit as usize > CONNECTIONS + 100,
        "RLIMIT_NOFILE hard limit {limit} too low"
    );
    let message = b"0123456789abcdef";

    let plain = start_echo(&[]);
    let before = settled_rss(plain.pid());
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut s = TcpStream::connect(plain.addr()).expect("connect");
        s.write_all(message).unwrap();
        let mut back = [0u8; 16];
        s.read_exact(&mut back).unwrap();
        conns.push(s);
    }
    let after = settled_rss(plain.pid());
    drop(conns);
    drop(plain);
    let plain_per_conn = (after - before) as f64 * 1024.0 / CONNECTIONS as f64;

    let certs = CertFiles::new();
    let tls = start_echo(&certs.args());
    let config = client_config(&[certs.cert.cert_der()], &[]);
    let tls_before = settled_rss(tls.pid());
    let started = Instant::now();
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut client = TlsClient::connect(tls.addr(), &config).expect("handshake");
        client.tls.writer().write_all(message).unwrap();
        client.flush();
        assert_eq!(client.recv_exact(16), message);
        clients.push(client);
    }
    let connect_time = started.elapsed();
    let tls_after = settled_rss(tls.pid());
    let tls_per_conn = (tls_after - tls_before) as f64 * 1024.0 / CONNECTIONS as f64;
    println!(
        "idle memory, {CONNECTIONS} connections, one loop:\n  plain TCP: RSS {before} -> {after} KiB = {plain_per_conn:.0} B/connection\n  TLS 1.3:   RSS {tls_before} -> {tls_after} KiB = {tls_per_conn:.0} B/connection (opened in {connect_time:.1?})\n  TLS share: {:.0} B/connection ({:.0}% of the TLS figure); size_of::<rustls::server::UnbufferedServerConnection>() = {} B",
        tls_per_conn - plain_per_conn,
        100.0 * (tls_per_conn - plain_per_conn) / tls_per_conn,
        std::mem::size_of::<gev::tls::rustls::server::UnbufferedServerConnection>(),
    );
    assert!(tls_per_conn > 0.0 && plain_per_conn > 0.0);
    assert!(
        tls_per_conn - plain_per_conn < 6000.0,
        "an idle TLS connection costs {:.0} B more than a TCP one: are per-connection TLS buffers back?",
        tls_per_conn - plain_per_conn
    );
}

#[test]
#[ignore = "measurement: thousands of handshakes"]
fn handshakes_per_second() {
    let certs = CertFiles::new();
    let server = start_echo(&certs.args());
    let config = client_config(&[certs.cert.cert_der()], &[]);
    for (label, resumed) in [("full", false), ("resumed", true)] {
        // A fresh client configuration per run: its session store is what resumption uses.
        let config = if resumed {
            config.clone()
        } else {
            client_config(&[certs.cert.cert_der()], &[])
        };
        let deadline = Duration::from_secs(5);
        let started = Instant::now();
        let mut count = 0u64;
        let mut resumed_count = 0u64;
        while started.elapsed() < deadline {
            let run_config = if resumed {
                config.clone()
            } else {
                client_config(&[certs.cert.cert_der()], &[])
            };
            let mut client = TlsClient::connect(server.addr(), &run_config).expect("handshake");
            // Read the tickets (TLS 1.3 sends them after the handshake) with one round trip.
            client.tls.writer().write_all(b"x").unwrap();
            client.flush();
            assert_eq!(client.recv_exact(1), b"x");
            if client.tls.handshake_kind() == Some(gev::tls::rustls::HandshakeKind::Resumed) {
                resumed_count += 1;
            }
            count += 1;
        }
        let rate = count as f64 / started.elapsed().as_secs_f64();
        println!("{label}: {count} handshakes (+1 echo round trip each) in {deadline:?} = {rate:.0}/s, {resumed_count} resumed");
        if resumed {
            assert!(resumed_count + 1 >= count, "resumption did not take");
        } else {
            assert_eq!(resumed_count, 0);
        }
    }
}
