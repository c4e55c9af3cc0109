//! End-to-end tests of `gev::udp` over loopback: every datagram of random size echoed byte for
//! byte on 1 and 2 `SO_REUSEPORT` loops (batched and unbatched), oversized datagrams dropped and
//! counted, a peer that vanished (sends to it fail or vanish, the server keeps serving), a full
//! output queue (drops counted, no growth), sends from another thread through a handle, and a
//! stop with datagrams in flight.

mod common;

use common::udp::{client, echo_each, Blasters, Echo};

use std::borrow::Cow;
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use gev::udp::{DatagramCtx, DatagramHandler, UdpOptions, UdpSendError, UdpServer};

fn options() -> UdpOptions {
    UdpOptions::new("127.0.0.1:0".parse().unwrap()).stop_timeout(Duration::from_millis(500))
}

fn echo_on(loops: i32, batching: bool) {
    let server = UdpServer::new(options().loops(loops).batching(batching), Echo).unwrap();
    let addr = server.local_addr();
    let running = server.start().unwrap();
    let clients: Vec<_> = (0..8)
        .map(|c| thread::spawn(move || echo_each(&client(), addr, 100 + c, 200)))
        .collect();
    for c in clients {
        c.join().expect("client");
    }
    let counters = running.stop().unwrap();
    assert!(counters.datagrams_in >= 1600, "{counters:?}");
    assert!(counters.datagrams_out >= 1600, "{counters:?}");
    assert_eq!(counters.dropped_output_full, 0);
}

#[test]
fn echo_every_byte_one_loop_batched() {
    echo_on(1, true);
}

#[test]
fn echo_every_byte_two_reuseport_loops_batched() {
    echo_on(2, true);
}

#[test]
fn echo_every_byte_one_loop_unbatched() {
    echo_on(1, false);
}

#[test]
fn oversized_datagrams_are_dropped_and_counted() {
    let server = UdpServer::new(options().loops(1).max_datagram(100), Echo).unwrap();
    let addr = server.local_addr();
    let running = server.start().unwrap();
    let socket = client();
    socket.send_to(&[1u8; 101], addr).unwrap();
    socket.send_to(&[2u8; 5000], addr).unwrap();
    let mut buf = [0u8; 200];
    // The next (fitting) datagram is echoed; nothing came back for the oversized ones.
    socket.send_to(&[3u8; 100], addr).unwrap();
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[3u8; 100][..]);
    let counters = running.stop().unwrap();
    assert_eq!(counters.dropped_oversized, 2, "{counters:?}");
}

#[test]
fn vanished_peer_does_not_disturb_the_others() {
    let server = UdpServer::new(options().loops(1), Echo).unwrap();
    let addr = server.local_addr();
    let running = server.start().unwrap();
    // A peer that sends and vanishes before its reply: the reply meets a closed port (ICMP
    // port unreachable on loopback).
    for _ in 0..50 {
        let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
        gone.send_to(b"bye", addr).unwrap();
        drop(gone);
    }
    // And sends from a handle to a port nobody listens on.
    let dead: SocketAddr = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    for _ in 0..50 {
        running.handles()[0]
            .send_to(dead, b"anyone?".to_vec())
            .unwrap();
    }
    echo_each(&client(), addr, 9, 100);
    running.stop().unwrap();
}

/// Answers each datagram with `fanout` datagrams to the sender: more than the output queue
/// holds, so the surplus must be dropped and counted, not queued without bound.
struct Flood {
    fanout: usize,
}
impl DatagramHandler for Flood {
    fn on_datagram<'a>(
        &self,
        ctx: &mut DatagramCtx<'_>,
        peer: SocketAddr,
        data: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        for _ in 0..self.fanout {
            ctx.send_to(peer, data);
        }
        None
    }
}

#[test]
fn full_output_queue_drops_and_counts() {
    let server = UdpServer::new(
        options()
            .loops(1)
            .max_output_datagrams(64)
            .socket_buffer(Some(4096)),
        Flood { fanout: 10_000 },
    )
    .unwrap();
    let addr = server.local_addr();
    let running = server.start().unwrap();
    let socket = client();
    socket.send_to(&[0u8; 1000], addr).unwrap();
    // Wait (bounded) for the loop to handle it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while running.counters().datagrams_in == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    thread::sleep(Duration::from_millis(100));
    let counters = running.stop().unwrap();
    assert_eq!(counters.datagrams_in, 1);
    assert!(counters.dropped_output_full > 0, "{counters:?}");
    assert_eq!(
        counters.datagrams_out + counters.dropped_output_full + counters.send_errors,
        10_000,
        "every reply is sent, dropped or refused: {counters:?}"
    );
}

#[test]
fn handle_sends_from_another_thread_and_is_bounded() {
    let server = UdpServer::new(options().loops(1).max_output_datagrams(1_000_000), Echo).unwrap();
    let running = server.start().unwrap();
    let socket = client();
    let me = socket.local_addr().unwrap();
    let handle = running.handles()[0].clone();
    thread::spawn(move || handle.send_to(me, b"from afar".to_vec()).unwrap())
        .join()
        .unwrap();
    let mut buf = [0u8; 32];
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"from afar");
    let handle = running.handles()[0].clone();
    running.stop().unwrap();
    assert_eq!(
        handle.send_to(me, b"late".to_vec()),
        Err(UdpSendError::Closed)
    );
}

#[test]
fn stop_with_datagrams_in_flight() {
    let server = UdpServer::new(options().loops(2), Echo).unwrap();
    let addr = server.local_addr();
    let running = server.start().unwrap();
    let blasters = Blasters::start(4, addr, 9);
    thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let counters = running.stop().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        started.elapsed()
    );
    let sent = blasters.stop();
    assert!(
        counters.datagrams_in > 0 && counters.datagrams_in <= sent,
        "{counters:?} sent {sent}"
    );
}

#[test]
fn gev_udp_echo_binary_echoes_and_exits_on_sigint() {
    let mut server = common::ServerProcess::start(
        "gev-udp-echo",
        &["--host", "127.0.0.1", "--port", "0", "--loops", "2"],
    );
    echo_each(&client(), server.addr(), 11, 50);
    let status = server
        .interrupt_and_wait(Duration::from_secs(1))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "exit status after SIGINT: {status}");
}
