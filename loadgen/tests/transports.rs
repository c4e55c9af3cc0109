//! loadgen over the other transports: `unix:/path` targets with every stream framing against
//! the gev example servers listening on Unix sockets (`--verify`, so every byte is checked), and
//! `udp://` targets against `gev-udp-echo` and against a test peer that drops, duplicates,
//! delays and reorders datagrams on purpose, so the `datagrams` counters are checked against
//! known truth.

mod common;

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{loadgen, ServerProcess};

const DEADLINE: Duration = Duration::from_secs(60);

fn socket_path(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-unix-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("socket dir");
    dir.join("s.sock")
}

fn unix_run(server: &str, framing: &str, extra: &[&str]) {
    let path = socket_path(framing);
    let listen = format!("unix:{}", path.display());
    let mut args = vec!["--listen", listen.as_str(), "--loops", "1"];
    args.extend_from_slice(extra);
    let srv = ServerProcess::start(server, &args);
    assert_eq!(srv.listen_line(), listen);
    let s = loadgen(
        &[
            &listen,
            "--framing",
            framing,
            "-c",
            "8",
            "-t",
            "2",
            "-d",
            "1s",
            "--verify",
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    assert_eq!(s.total_errors(), 0, "{framing}: {:?}", s.requests.errors);
    assert!(s.requests.completed > 100, "{framing}: {:?}", s.requests);
    assert_eq!(s.connections.opened, 8);
    assert_eq!(s.config.target, listen);
    assert!(s.datagrams.is_none());
    drop(srv);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn unix_raw_against_gev_echo() {
    unix_run("gev-echo", "raw", &[]);
}

#[test]
fn unix_length_against_gev_protocol() {
    unix_run("gev-protocol", "length", &[]);
}

#[test]
fn unix_websocket_against_gev_websocket() {
    unix_run("gev-websocket", "websocket", &[]);
}

#[test]
fn unix_http_against_gev_http() {
    unix_run("gev-http", "http", &[]);
}

#[test]
fn unix_target_with_tls_is_refused() {
    let out = loadgen(&["unix:/nonexistent.sock", "--tls", "-n", "1"], DEADLINE);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("TLS runs over TCP only"),
        "{}",
        out.stderr
    );
}

#[test]
fn udp_against_gev_udp_echo_loses_nothing_in_closed_loop() {
    let srv = ServerProcess::start("gev-udp-echo", &["--loops", "1"]);
    let target = format!("udp://{}", srv.addr());
    let s = loadgen(
        &[
            &target, "-c", "8", "-t", "2", "-d", "1s", "--size", "64", "--verify", "--json",
        ],
        DEADLINE,
    )
    .summary();
    let d = s.datagrams.clone().expect("datagrams section");
    assert!(d.sent > 100, "{d:?}");
    assert_eq!(d.received + d.lost, d.sent, "{d:?}");
    assert_eq!(
        (d.lost, d.duplicated, d.reordered, d.late),
        (0, 0, 0, 0),
        "{d:?}"
    );
    assert_eq!(s.requests.completed, d.received);
    assert_eq!(s.latency_us.count, d.received);
    assert_eq!(s.total_errors(), 0, "{:?}", s.requests.errors);
}

#[test]
fn udp_rejects_payloads_shorter_than_the_sequence_number() {
    let out = loadgen(&["udp://127.0.0.1:9", "--size", "4", "-n", "1"], DEADLINE);
    assert!(!out.status.success());
    assert!(out.stderr.contains("at least 8 bytes"), "{}", out.stderr);
}

/// A UDP peer that misbehaves by the datagram's sequence number (its first 8 bytes): `% 10 ==
/// 3` dropped, `== 5` answered twice, `== 7` held back and answered after the next datagram
/// (reordered), `== 9` below `delay_below` answered after `delay` (late, past the loss
/// deadline); everything else echoed at once.
fn misbehaving_peer(
    stop: Arc<AtomicBool>,
    delay: Duration,
    delay_below: u64,
) -> (std::net::SocketAddr, thread::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind peer");
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut held: Option<(Vec<u8>, std::net::SocketAddr)> = None;
        let mut delayed: Vec<(Instant, Vec<u8>, std::net::SocketAddr)> = Vec::new();
        let give_up = Instant::now() + Duration::from_secs(30);
        while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
            let now = Instant::now();
            delayed.retain(|(due, data, to)| {
                if *due <= now {
                    let _ = socket.send_to(data, to);
                    false
                } else {
                    true
                }
            });
            let (n, from) = match socket.recv_from(&mut buf) {
                Ok(x) => x,
                Err(_) => continue,
            };
            let data = buf[..n].to_vec();
            let seq = u64::from_be_bytes(data[..8].try_into().unwrap());
            match seq % 10 {
                3 => {}
                5 => {
                    socket.send_to(&data, from).unwrap();
                    socket.send_to(&data, from).unwrap();
                }
                7 => held = Some((data, from)),
                9 if seq < delay_below => delayed.push((now + delay, data, from)),
                _ => {
                    socket.send_to(&data, from).unwrap();
                    if let Some((h, to)) = held.take() {
                        socket.send_to(&h, to).unwrap();
                    }
                }
            }
        }
    });
    (addr, handle)
}

#[test]
fn udp_counters_match_a_peer_that_drops_duplicates_reorders_and_delays() {
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, peer) = misbehaving_peer(stop.clone(), Duration::from_millis(600), 500);
    let target = format!("udp://{addr}");
    // One flow, 1000 datagrams at 1000/s, loss deadline 250 ms.
    let s = loadgen(
        &[
            &target,
            "-c",
            "1",
            "-t",
            "1",
            "-n",
            "1000",
            "-R",
            "1000",
            "--timeout",
            "250ms",
            "--size",
            "32",
            "--verify",
            "--json",
        ],
        DEADLINE,
    )
    .summary();
    stop.store(true, Ordering::Relaxed);
    peer.join().expect("peer thread");
    let d = s.datagrams.clone().expect("datagrams section");
    let mut got = HashMap::new();
    got.insert("sent", d.sent);
    got.insert("lost", d.lost);
    got.insert("duplicated", d.duplicated);
    got.insert("reordered", d.reordered);
    got.insert("late", d.late);
    got.insert("received", d.received);
    // 100 dropped + 50 delayed past the deadline = 150 lost; the 50 delayed ones come back late.
    let want = HashMap::from([
        ("sent", 1000),
        ("lost", 150),
        ("duplicated", 100),
        ("reordered", 100),
        ("late", 50),
        ("received", 850),
    ]);
    assert_eq!(got, want, "{d:?}");
    // Lost and late datagrams are not latency samples.
    assert_eq!(s.latency_us.count, 850);
    assert_eq!(s.total_errors(), 0, "{:?}", s.requests.errors);
}
