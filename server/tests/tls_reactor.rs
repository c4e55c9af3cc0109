//! End-to-end tests of the reactor over TLS with in-process servers and a rustls client over
//! real loopback sockets: every byte echoed with records of random sizes cut at random points,
//! the handshake in the loop (on_connect only after it), ALPN, session resumption on by
//! default, close_notify on close and on shutdown_write; and the failures, each closing only its
//! connection with a reason the metrics count while other clients keep being served and the
//! loop stays idle: a client that rejects the certificate (unknown issuer, expired), plaintext
//! on the TLS port, a handshake that stops half way (timeout), a flood of forged records.

mod common;

use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tls::{
    client_config, client_config_with_versions, closes, free_local_addr, wait_for_closes,
    CertFiles, TlsClient,
};
use gev::tls::rustls::HandshakeKind;
use gev::{Conn, Handler, Raw, Server, ServerHandle, ServerOptions};
use rand::{Rng, SeedableRng};

/// Echoes; replies `bye` and shuts down writing on `shutdown`, closes on `close`.
struct Echo {
    connected: Arc<AtomicUsize>,
    resumed: Arc<AtomicUsize>,
}

impl Handler<Raw> for Echo {
    fn on_connect(&self, conn: &mut Conn<'_, Raw>) {
        // The handshake is done before the handler meets the connection.
        let info = conn.tls().expect("TLS details set before on_connect");
        assert_eq!(info.server_name.as_deref(), Some("localhost"));
        if info.resumed {
            self.resumed.fetch_add(1, Ordering::Relaxed);
        }
        self.connected.fetch_add(1, Ordering::Relaxed);
    }

    fn on_message<'a>(&'a self, conn: &mut Conn<'_, Raw>, msg: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        match msg {
            b"shutdown" => {
                conn.shutdown_write();
                Some(Cow::Borrowed(b"bye"))
            }
            b"close" => {
                conn.close();
                Some(Cow::Borrowed(b"bye"))
            }
            b"alpn?" => Some(Cow::Owned(
                conn.tls()
                    .and_then(|info| info.alpn_protocol.clone())
                    .unwrap_or_default(),
            )),
            _ => Some(Cow::Borrowed(msg)),
        }
    }
}

struct Running {
    handle: Option<ServerHandle<Raw>>,
    addr: SocketAddr,
    metrics: SocketAddr,
    connected: Arc<AtomicUsize>,
    resumed: Arc<AtomicUsize>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = handle.stop();
        }
    }
}

fn start(certs: &CertFiles, configure: impl FnOnce(ServerOptions) -> ServerOptions) -> Running {
    let metrics = free_local_addr();
    let mut config =
        gev::tls::server_config(vec![certs.cert.cert_der()], certs.cert.key_der()).unwrap();
    config.alpn_protocols = vec![b"echo/1".to_vec()];
    let options = ServerOptions::new("127.0.0.1:0".parse().unwrap())
        .loops(1)
        .metrics(metrics, "/metrics")
        .tls(Arc::new(config));
    let connected = Arc::new(AtomicUsize::new(0));
    let resumed = Arc::new(AtomicUsize::new(0));
    let server = Server::new(
        configure(options),
        Raw,
        Echo {
            connected: connected.clone(),
            resumed: resumed.clone(),
        },
    )
    .expect("server");
    let addr = server.local_addr();
    Running {
        handle: Some(server.start().expect("start")),
        addr,
        metrics,
        connected,
        resumed,
    }
}

fn ping(client: &mut TlsClient, payload: &[u8]) {
    client.tls.writer().write_all(payload).unwrap();
    client.flush();
    assert_eq!(client.recv_exact(payload.len()), payload);
}

#[test]
fn every_byte_is_echoed_with_random_records_and_fragments() {
    let certs = CertFiles::new();
    let server = start(&certs, |o| o);
    let config = client_config(&[certs.cert.cert_der()], &[b"echo/1"]);
    let threads: Vec<_> = (0..4u64)
        .map(|seed| {
            let config = config.clone();
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let mut client = TlsClient::connect(addr, &config).expect("handshake");
                assert_eq!(client.tls.alpn_protocol(), Some(&b"echo/1"[..]));
                // The handler sees the same ALPN protocol.
                client.tls.writer().write_all(b"alpn?").unwrap();
                client.flush();
                assert_eq!(client.recv_exact(6), b"echo/1");
                for _ in 0..30 {
                    let len = rng.random_range(1..120_000);
                    let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                    client.send_fragmented(&data, &mut rng);
                    let echoed = client.recv_exact(len);
                    assert!(echoed == data, "echo differs (seed {seed}, {len} bytes)");
                }
                // Our close_notify is answered with the server's before its TCP close.
                client.tls.send_close_notify();
                client.flush();
                assert_eq!(
                    client.read_until_closed(),
                    Ok(true),
                    "no close_notify from the server"
                );
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
    assert_eq!(server.connected.load(Ordering::Relaxed), 4);
    wait_for_closes(server.metrics, "peer", 4);
    assert_eq!(closes(server.metrics, "tls"), 0);
}

#[test]
fn close_and_shutdown_write_send_close_notify_after_the_data() {
    let certs = CertFiles::new();
    let server = start(&certs, |o| o);
    let config = client_config(&[certs.cert.cert_der()], &[]);
    for command in [&b"close"[..], b"shutdown"] {
        let mut client = TlsClient::connect(server.addr, &config).expect("handshake");
        ping(&mut client, b"before");
        client.tls.writer().write_all(command).unwrap();
        client.flush();
        assert_eq!(client.recv_exact(3), b"bye");
        assert_eq!(
            client.read_until_closed(),
            Ok(true),
            "{:?}",
            String::from_utf8_lossy(command)
        );
    }
    // After shutdown_write the server keeps reading: the loop closes it when we do (peer).
    wait_for_closes(server.metrics, "local", 1);
}

#[test]
fn resumption_is_on_by_default() {
    let certs = CertFiles::new();
    let server = start(&certs, |o| o);
    // One client configuration: its session store keeps the tickets.
    let config = client_config(&[certs.cert.cert_der()], &[]);
    let mut first = TlsClient::connect(server.addr, &config).expect("handshake");
    ping(&mut first, b"ticket please"); // the TLS 1.3 tickets arrive after the handshake
    assert_eq!(first.tls.handshake_kind(), Some(HandshakeKind::Full));
    let mut second = TlsClient::connect(server.addr, &config).expect("resumed handshake");
    assert_eq!(second.tls.handshake_kind(), Some(HandshakeKind::Resumed));
    ping(&mut second, b"resumed");
    assert_eq!(
        server.resumed.load(Ordering::Relaxed),
        1,
        "the handler sees the resumption"
    );
    let metrics = common::tls::scrape(server.metrics);
    assert!(
        metrics.contains("gev_tls_handshakes_total{loop=\"0\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gev_tls_resumed_handshakes_total{loop=\"0\"} 1"),
        "{metrics}"
    );

    // TLS 1.2 on the same server: a full handshake, then a resumed one (ticket), with the SNI
    // and ALPN reported to the handler as with TLS 1.3.
    let tls12 = client_config_with_versions(
        &[certs.cert.cert_der()],
        &[b"echo/1"],
        &[&gev::tls::rustls::version::TLS12],
    );
    for (round, kind) in [(0u8, HandshakeKind::Full), (1, HandshakeKind::Resumed)] {
        let mut client = TlsClient::connect(server.addr, &tls12).expect("TLS 1.2 handshake");
        assert_eq!(
            client.tls.protocol_version(),
            Some(gev::tls::rustls::ProtocolVersion::TLSv1_2)
        );
        assert_eq!(client.tls.handshake_kind(), Some(kind), "round {round}");
        ping(&mut client, &vec![round; 40_000]);
        client.tls.writer().write_all(b"alpn?").unwrap();
        client.flush();
        assert_eq!(client.recv_exact(6), b"echo/1");
    }
    assert_eq!(server.resumed.load(Ordering::Relaxed), 2);
}

/// CPU ticks of the server's loop threads (in this process).
fn loop_ticks() -> u64 {
    common::thread_cpu_ticks(std::process::id(), "gev-loop")
}

/// While `bad` runs against the server, a good client keeps being echoed.
fn served_alongside(
    server: &Running,
    config: &Arc<gev::tls::rustls::ClientConfig>,
    bad: impl FnOnce(),
) {
    let mut good = TlsClient::connect(server.addr, config).expect("good client");
    ping(&mut good, b"before");
    bad();
    ping(&mut good, b"after");
}

#[test]
fn a_client_that_rejects_the_certificate_is_counted_as_tls() {
    let certs = CertFiles::new();
    let server = start(&certs, |o| o);
    let trusted = client_config(&[certs.cert.cert_der()], &[]);
    served_alongside(&server, &trusted, || {
        // Trusts another certificate for the same name: the signature does not verify -> alert.
        let other = CertFiles::new();
        let stranger = client_config(&[other.cert.cert_der()], &[]);
        let err = TlsClient::connect(server.addr, &stranger)
            .err()
            .expect("must fail");
        assert!(
            err.to_string().contains("invalid peer certificate"),
            "{err}"
        );
        wait_for_closes(server.metrics, "tls", 1);
    });
    assert_eq!(
        server.connected.load(Ordering::Relaxed),
        1,
        "the handler never saw the failed one"
    );
}

#[test]
fn an_expired_certificate_is_rejected_by_the_client_and_counted() {
    let certs = CertFiles::expired();
    let server = start(&certs, |o| o);
    let config = client_config(&[certs.cert.cert_der()], &[]);
    let err = TlsClient::connect(server.addr, &config)
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("expired"), "{err}");
    wait_for_closes(server.metrics, "tls", 1);
}

#[test]
fn plaintext_on_the_tls_port_gets_an_alert_and_a_close() {
    let certs = CertFiles::new();
    let server = start(&certs, |o| o);
    let config = client_config(&[certs.cert.cert_der()], &[]);
    served_alongside(&server, &config, || {
        let mut plain = TcpStream::connect(server.addr).unwrap();
        plain
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        plain
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut reply = Vec::new();
        let _ = plain.read_to_end(&mut reply);
        // A TLS alert record (content type 21), then EOF.
        assert_eq!(reply.first(), Some(&21), "{reply:?}");
        wait_for_closes(server.metrics, "tls", 1);
    });
}

#[test]
fn a_handshake_that_stops_half_way_times_out_without_spinning() {
    let certs = CertFiles::new();
    let server = start(&certs, |o| {
        o.tls_handshake_timeout(Duration::from_millis(1500))
    });
    let config = client_config(&[certs.cert.cert_der()], &[]);
    served_alongside(&server, &config, || {
        // Half a ClientHello, and one connection that sends nothing at all.
        let name = gev::tls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut hello = Vec::new();
        let mut conn = gev::tls::rustls::ClientConnection::new(config.clone(), name).unwrap();
        conn.write_tls(&mut hello).unwrap();
        let mut half = TcpStream::connect(server.addr).unwrap();
        half.write_all(&hello[..hello.len() / 2]).unwrap();
        let silent = TcpStream::connect(server.addr).unwrap();
        let ticks_before = loop_ticks();
        let started = Instant::now();
        wait_for_closes(server.metrics, "handshake_timeout", 2);
        let waited = started.elapsed();
        let ticks = loop_ticks() - ticks_before;
        assert!(
            waited >= Duration::from_millis(1000),
            "closed too early: {waited:?}"
        );
        // An idle wait of ~1.5 s: a spinning loop would burn ~150 ticks.
        assert!(
            ticks < 30,
            "loop used {ticks} ticks while two handshakes stalled"
        );
        drop((half, silent));
    });
}

#[test]
fn a_flood_of_forged_records_closes_only_that_connection() {
    let certs = CertFiles::new();
    let server = start(&certs, |o| o);
    let config = client_config(&[certs.cert.cert_der()], &[]);
    served_alongside(&server, &config, || {
        let mut flooder = TlsClient::connect(server.addr, &config).expect("handshake");
        ping(&mut flooder, b"legit first");
        // 4 MiB of application-data records with garbage contents (bad MACs).
        let mut record = vec![0x17, 0x03, 0x03, 0x40, 0x00];
        record.extend((0..0x4000u32).map(|i| (i * 31 % 251) as u8));
        let ticks_before = loop_ticks();
        let mut sent = 0;
        for _ in 0..256 {
            match flooder.tcp.write_all(&record) {
                Ok(()) => sent += 1,
                Err(_) => break, // the server closed: the rest is refused
            }
        }
        assert!(sent >= 1);
        let closed = flooder.read_until_closed();
        assert!(
            closed.is_err() || closed == Ok(false),
            "expected an alert or EOF, got {closed:?}"
        );
        wait_for_closes(server.metrics, "tls", 1);
        let ticks = loop_ticks() - ticks_before;
        assert!(ticks < 100, "the loop used {ticks} ticks on one bad record");
    });
    // An idle second afterwards: the loop sleeps.
    let before = loop_ticks();
    std::thread::sleep(Duration::from_secs(1));
    assert!(loop_ticks() - before < 10, "the loop is busy while idle");
}

#[test]
fn a_flood_of_abandoned_handshakes_costs_only_its_work() {
    let certs = CertFiles::new();
    let server = start(&certs, |o| o);
    let config = client_config(&[certs.cert.cert_der()], &[]);
    served_alongside(&server, &config, || {
        // 300 connections that send a ClientHello and hang up without waiting for the answer.
        let name = gev::tls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
        for _ in 0..300 {
            let mut hello = Vec::new();
            let mut conn =
                gev::tls::rustls::ClientConnection::new(config.clone(), name.clone()).unwrap();
            conn.write_tls(&mut hello).unwrap();
            let mut socket = TcpStream::connect(server.addr).unwrap();
            let _ = socket.write_all(&hello);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while closes(server.metrics, "peer") + closes(server.metrics, "error") < 300 {
            assert!(
                Instant::now() < deadline,
                "abandoned handshakes were not all closed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    assert_eq!(closes(server.metrics, "handshake_timeout"), 0);
    assert_eq!(
        server.connected.load(Ordering::Relaxed),
        1,
        "only the good client connected"
    );
    let before = loop_ticks();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        loop_ticks() - before < 10,
        "the loop is busy after the flood"
    );
}

/// The wire form of `payloads`, one TLS record each (each at most 16 KiB).
fn records(client: &mut TlsClient, payloads: &[Vec<u8>]) -> Vec<u8> {
    for payload in payloads {
        client.tls.writer().write_all(payload).unwrap();
    }
    let mut wire = Vec::new();
    while client.tls.wants_write() {
        client.tls.write_tls(&mut wire).unwrap();
    }
    wire
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The record layer over real sockets now that records are decrypted in the loop's read
/// buffer and only an incomplete record is carried per connection: records cut into one-byte
/// reads, a 16 KiB record arriving in pieces, records ending exactly at (and one header
/// straddling) the 64 KiB read-buffer boundary, hundreds of records in one read, a record
/// header announcing an oversized record, a peer closing in the middle of a record, and key
/// updates.
#[test]
fn records_cut_anywhere_in_the_shared_read_buffer() {
    let certs = CertFiles::new();
    let server = start(&certs, |o| o);
    let config = client_config(&[certs.cert.cert_der()], &[]);
    let mut client = TlsClient::connect(server.addr, &config).expect("handshake");
    ping(&mut client, b"hello");

    // A 600-byte record, one byte per write (with pauses, so most are separate reads).
    let message = pattern(600, 1);
    let wire = records(&mut client, std::slice::from_ref(&message));
    for (i, byte) in wire.iter().enumerate() {
        client.tcp.write_all(std::slice::from_ref(byte)).unwrap();
        if i % 16 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(client.recv_exact(message.len()), message);

    // A full 16 KiB record in 17 pieces.
    let message = pattern(16 * 1024, 2);
    let wire = records(&mut client, std::slice::from_ref(&message));
    for piece in wire.chunks(1000) {
        client.tcp.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(client.recv_exact(message.len()), message);

    // Records whose wire bytes end exactly at the 64 KiB read buffer's end, then records
    // ending 2 bytes into the next record's header there. One write each, so the server
    // most likely reads exactly 64 KiB first.
    let one = records(&mut client, &[vec![0]]);
    client.tcp.write_all(&one).unwrap();
    let overhead = one.len() - 1;
    assert_eq!(client.recv_exact(1), [0]);
    for (seed, shift) in [(3u8, 0usize), (4, 2)] {
        let first = 3 * (16_384 + overhead);
        let last = 64 * 1024 - first - overhead - shift;
        let mut payloads: Vec<Vec<u8>> = (0..3).map(|i| pattern(16_384, seed + i)).collect();
        payloads.push(pattern(last, seed));
        payloads.push(pattern(700, seed.wrapping_add(9)));
        let wire = records(&mut client, &payloads);
        assert_eq!(wire.len(), 64 * 1024 - shift + 700 + overhead);
        client.tcp.write_all(&wire).unwrap();
        assert_eq!(
            client.recv_exact(payloads.concat().len()),
            payloads.concat()
        );
    }

    // 500 small records in one write (one or two reads).
    let payloads: Vec<Vec<u8>> = (0..500).map(|i| pattern(10, i as u8)).collect();
    let wire = records(&mut client, &payloads);
    client.tcp.write_all(&wire).unwrap();
    assert_eq!(client.recv_exact(5000), payloads.concat());
    assert_eq!(closes(server.metrics, "tls"), 0);

    // A record header announcing 65535 bytes: refused from the header alone (record_overflow),
    // that connection only.
    let mut oversized = TlsClient::connect(server.addr, &config).expect("handshake");
    ping(&mut oversized, b"ok");
    oversized
        .tcp
        .write_all(&[0x17, 0x03, 0x03, 0xff, 0xff, 0, 1, 2])
        .unwrap();
    let closed = oversized.read_until_closed();
    assert!(
        closed.is_err(),
        "expected the record_overflow alert, got {closed:?}"
    );
    wait_for_closes(server.metrics, "tls", 1);

    // The peer closes in the middle of a record: an orderly close (its data before is echoed),
    // answered with close_notify; nothing is counted as a TLS failure.
    let mut half = TlsClient::connect(server.addr, &config).expect("handshake");
    ping(&mut half, b"before");
    let peers_before = closes(server.metrics, "peer");
    let wire = records(&mut half, &[pattern(5000, 7)]);
    half.tcp.write_all(&wire[..2500]).unwrap();
    half.tcp.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(half.read_until_closed(), Ok(true), "no close_notify");
    wait_for_closes(server.metrics, "peer", peers_before + 1);
    assert_eq!(closes(server.metrics, "tls"), 1);

    // The first client is still served, also across key updates it asks for (the server
    // answers each with its own key_update before its next record).
    for round in 0..3u8 {
        client.tls.refresh_traffic_keys().unwrap();
        ping(&mut client, &[round; 3000]);
    }
    ping(&mut client, b"still here");
}
