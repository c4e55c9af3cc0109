//! End-to-end tests of UDP on a stream server's loops (`Server::with_udp`) over loopback: TCP
//! and UDP echo at once on 1 and 2 loops, every byte of both verified, the datagram handler
//! running on the `gev-loop-N` threads, and the `gev_udp_*` counters on the Prometheus endpoint
//! equal to what the clients sent; `UdpHandle::send_to` from another thread; a stop with
//! connections and datagrams in flight (every datagram received is accounted for); the
//! standalone `UdpServer`'s endpoint; and `gev-echo --udp`.

mod common;

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::udp::{client, echo_each, scrape_udp, Blasters, Echo};
use gev::udp::{DatagramCtx, DatagramHandler, UdpOptions, UdpSendError, UdpServer};
use gev::{Conn, Handler, Raw, Server, ServerOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const TIMEOUT: Duration = Duration::from_secs(10);

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// TCP echo (Raw).
struct TcpEcho;

impl Handler<Raw> for TcpEcho {
    fn on_message<'a>(&self, _: &mut Conn<'_, Raw>, msg: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        Some(Cow::Borrowed(msg))
    }
}

/// UDP echo that counts any datagram handled off a `gev-loop-N` thread.
struct LoopEcho(Arc<AtomicU64>);

impl DatagramHandler for LoopEcho {
    fn on_datagram<'a>(
        &self,
        _: &mut DatagramCtx<'_>,
        _: SocketAddr,
        data: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        let on_loop = thread::current()
            .name()
            .is_some_and(|name| name.starts_with("gev-loop-"));
        if !on_loop {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Some(Cow::Borrowed(data))
    }
}

/// Writes `total` random bytes in random pieces and reads the echo back, byte for byte.
fn tcp_echo(addr: SocketAddr, seed: u64, total: usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let data: Vec<u8> = (0..total).map(|_| rng.random()).collect();
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut echoed = vec![0u8; total];
    let mut sent = 0;
    let mut received = 0;
    while received < total {
        if sent < total {
            let piece = rng.random_range(1..=16_384).min(total - sent);
            stream.write_all(&data[sent..sent + piece]).expect("write");
            sent += piece;
        }
        // Read what is there for this piece before writing more (keeps both buffers bounded).
        while received < sent {
            let n = stream.read(&mut echoed[received..sent]).expect("read");
            assert!(n > 0, "seed {seed}: server closed after {received} bytes");
            received += n;
        }
    }
    assert!(echoed == data, "seed {seed}: TCP echo differs");
}

fn tcp_and_udp_on_the_same_loops(loops: i32) {
    let off_loop = Arc::new(AtomicU64::new(0));
    let options = ServerOptions::new(local())
        .loops(loops)
        .metrics(local(), "/metrics");
    let server = Server::new(options, Raw, TcpEcho)
        .unwrap()
        .with_udp(UdpOptions::new(local()), LoopEcho(off_loop.clone()))
        .unwrap();
    assert_eq!(server.udp_handles().len(), loops as usize);
    let udp_addr = server.udp_addr().expect("UDP address");
    assert_ne!(udp_addr.port(), 0);
    let running = server.start().unwrap();
    let tcp_addr = running.local_addr();
    assert_eq!(running.udp().map(|u| u.addr()), Some(udp_addr));

    let tcp: Vec<_> = (0..4)
        .map(|c| thread::spawn(move || tcp_echo(tcp_addr, 10 + c, 300_000)))
        .collect();
    let udp: Vec<_> = (0..6)
        .map(|c| thread::spawn(move || echo_each(&client(), udp_addr, 200 + c, 150)))
        .collect();
    for t in tcp {
        t.join().expect("TCP client");
    }
    let (mut datagrams, mut bytes) = (0, 0);
    for u in udp {
        let (d, b) = u.join().expect("UDP client");
        datagrams += d;
        bytes += b;
    }
    assert_eq!(
        off_loop.load(Ordering::Relaxed),
        0,
        "datagrams handled off the stream loops"
    );

    // The endpoint's counters equal what the clients sent (each datagram echoed once).
    let metrics = scrape_udp(running.metrics_addr().expect("metrics"));
    let get = |name: &str| {
        *metrics
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {metrics:?}"))
    };
    assert_eq!(
        get("gev_udp_datagrams_received_total"),
        datagrams,
        "{metrics:?}"
    );
    assert_eq!(get("gev_udp_bytes_received_total"), bytes, "{metrics:?}");
    assert_eq!(
        get("gev_udp_datagrams_sent_total"),
        datagrams,
        "{metrics:?}"
    );
    assert_eq!(get("gev_udp_bytes_sent_total"), bytes, "{metrics:?}");
    assert_eq!(get("gev_udp_dropped_output_full_total"), 0);
    assert_eq!(get("gev_udp_dropped_oversized_total"), 0);
    assert_eq!(get("gev_udp_send_errors_total"), 0);
    let recv_batches = get("gev_udp_recv_batches_total");
    let send_batches = get("gev_udp_send_batches_total");
    assert!(recv_batches >= 1 && send_batches >= 1, "{metrics:?}");
    assert!(send_batches <= datagrams, "{metrics:?}");
    let counters = running.udp().unwrap().counters();
    assert_eq!(counters.datagrams_in, datagrams);
    assert_eq!(counters.recv_calls, recv_batches);
    running.stop().unwrap();
}

#[test]
fn tcp_and_udp_echo_on_one_loop() {
    tcp_and_udp_on_the_same_loops(1);
}

#[test]
fn tcp_and_udp_echo_on_two_loops() {
    tcp_and_udp_on_the_same_loops(2);
}

#[test]
fn send_to_from_another_thread_then_closed_after_stop() {
    let server = Server::new(ServerOptions::new(local()).loops(2), Raw, TcpEcho)
        .unwrap()
        .with_udp(UdpOptions::new(local()), Echo)
        .unwrap();
    assert!(
        matches!(
            Server::new(ServerOptions::new(local()).loops(1), Raw, TcpEcho)
                .unwrap()
                .with_udp(UdpOptions::new(local()), Echo)
                .unwrap()
                .with_udp(UdpOptions::new(local()), Echo),
            Err(gev::Error::Config(_))
        ),
        "a second with_udp is refused"
    );
    let running = server.start().unwrap();
    let udp = running.udp().unwrap();
    let handles = udp.handles();
    assert_eq!(handles.len(), 2);
    let receiver = client();
    let me = receiver.local_addr().unwrap();
    let sender = {
        let handles = handles.clone();
        thread::spawn(move || {
            for i in 0..200u32 {
                let mut datagram = i.to_be_bytes().to_vec();
                datagram.extend(std::iter::repeat_n(i as u8, (i % 97) as usize));
                handles[i as usize % 2]
                    .send_to(me, datagram)
                    .expect("queued");
            }
        })
    };
    sender.join().unwrap();
    let mut seen = [false; 200];
    let mut buf = [0u8; 256];
    for _ in 0..200 {
        let (n, from) = receiver
            .recv_from(&mut buf)
            .expect("datagram from a handle");
        assert_eq!(from, udp.addr());
        let i = u32::from_be_bytes(buf[..4].try_into().unwrap());
        assert!(
            i < 200 && !seen[i as usize],
            "datagram {i} unexpected or twice"
        );
        seen[i as usize] = true;
        assert_eq!(n, 4 + (i % 97) as usize);
        assert!(
            buf[4..n].iter().all(|&b| b == i as u8),
            "datagram {i} differs"
        );
    }
    running.stop().unwrap();
    let counters = udp.counters();
    assert_eq!(counters.datagrams_out, 200, "{counters:?}");
    assert_eq!(
        handles[0].send_to(me, b"late".to_vec()),
        Err(UdpSendError::Closed)
    );
}

#[test]
fn stop_with_connections_and_datagrams_in_flight() {
    let options = ServerOptions::new(local())
        .loops(2)
        .stop_timeout(Duration::from_millis(800));
    let server = Server::new(options, Raw, TcpEcho)
        .unwrap()
        .with_udp(UdpOptions::new(local()), Echo)
        .unwrap();
    let udp_addr = server.udp_addr().unwrap();
    let running = server.start().unwrap();
    let udp = running.udp().unwrap();
    let mut conn = TcpStream::connect_timeout(&running.local_addr(), TIMEOUT).unwrap();
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    conn.write_all(b"hello").unwrap();
    let mut reply = [0u8; 5];
    conn.read_exact(&mut reply).unwrap();
    let blasters = Blasters::start(3, udp_addr, 7);
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    running.stop().unwrap();
    let took = started.elapsed();
    let sent = blasters.stop();
    assert!(took < Duration::from_secs(3), "stop took {took:?}");
    let c = udp.counters();
    assert!(
        c.datagrams_in > 0 && c.datagrams_in <= sent,
        "{c:?} sent {sent}"
    );
    // Every datagram the handler saw left as a reply or was counted as dropped.
    assert_eq!(
        c.datagrams_in,
        c.datagrams_out + c.dropped_output_full + c.send_errors,
        "{c:?}"
    );
    // The connection was closed by the stop (EOF, or a reset).
    let mut rest = [0u8; 16];
    assert!(matches!(conn.read(&mut rest), Ok(0) | Err(_)));
}

#[test]
fn standalone_udp_server_exports_counters() {
    let options = UdpOptions::new(local())
        .loops(2)
        .metrics(local(), "/metrics");
    let server = UdpServer::new(options, Echo).unwrap();
    let addr = server.local_addr();
    let running = server.start().unwrap();
    let (datagrams, bytes) = echo_each(&client(), addr, 77, 100);
    let metrics = scrape_udp(running.metrics_addr().expect("metrics endpoint"));
    assert_eq!(
        metrics.get("gev_udp_datagrams_received_total"),
        Some(&datagrams),
        "{metrics:?}"
    );
    assert_eq!(metrics.get("gev_udp_bytes_received_total"), Some(&bytes));
    assert_eq!(
        metrics.get("gev_udp_datagrams_sent_total"),
        Some(&datagrams)
    );
    assert_eq!(metrics.get("gev_udp_bytes_sent_total"), Some(&bytes));
    assert_eq!(metrics.get("gev_udp_dropped_output_full_total"), Some(&0));
    let counters = running.stop().unwrap();
    assert_eq!(counters.datagrams_in, datagrams);
}

#[test]
fn gev_echo_serves_udp_on_its_loops() {
    let mut command = Command::new(common::bin_path("gev-echo"));
    command
        .args(["--host", "127.0.0.1", "--port", "0", "--loops", "1"])
        .args(["--udp", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut guard = common::ChildGuard::new(command.spawn().expect("start gev-echo"));
    let stdout = guard.child().stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(common::STARTUP_TIMEOUT)
        .expect("first line");
    let second = rx
        .recv_timeout(common::STARTUP_TIMEOUT)
        .expect("second line");
    let tcp: SocketAddr = first
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("TCP line unchanged: {first:?}"));
    let udp: SocketAddr = second
        .strip_prefix("listening on udp://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("UDP line: {second:?}"));
    tcp_echo(tcp, 5, 50_000);
    let socket: UdpSocket = client();
    echo_each(&socket, udp, 6, 50);
    common::send_signal(guard.child().id(), libc::SIGINT);
    let status = common::wait_child(guard.child(), TIMEOUT).expect("gev-echo exits on SIGINT");
    assert!(status.success(), "{status:?}");
}
