//! UDP helpers shared by the UDP end-to-end tests (`udp.rs`, `udp_loops.rs`): an echo
//! handler, a client socket with a read timeout, a stop-and-wait echo check byte for byte,
//! senders that keep datagrams in flight, and a scrape of the `gev_udp_*` metric families.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gev::udp::{DatagramCtx, DatagramHandler};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Every datagram back to its sender.
pub struct Echo;
impl DatagramHandler for Echo {
    fn on_datagram<'a>(
        &self,
        _: &mut DatagramCtx<'_>,
        _: SocketAddr,
        data: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        Some(Cow::Borrowed(data))
    }
}

/// A loopback socket with a 500 ms read timeout.
pub fn client() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    socket
}

/// Sends `count` random datagrams one at a time and checks each reply byte for byte; a
/// datagram lost on the way (rare on loopback) is resent up to 5 times. Returns the datagrams
/// and bytes sent (resends included).
pub fn echo_each(socket: &UdpSocket, to: SocketAddr, seed: u64, count: usize) -> (u64, u64) {
    let mut sent = (0u64, 0u64);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut buf = vec![0u8; 70_000];
    for i in 0..count {
        let size = if rng.random_ratio(1, 20) {
            rng.random_range(1..=60_000)
        } else {
            rng.random_range(1..=1400)
        };
        let mut datagram: Vec<u8> = (0..size).map(|_| rng.random()).collect();
        datagram[..8.min(size)].copy_from_slice(&(i as u64).to_be_bytes()[..8.min(size)]);
        let mut ok = false;
        for _attempt in 0..5 {
            socket.send_to(&datagram, to).unwrap();
            sent.0 += 1;
            sent.1 += size as u64;
            match socket.recv(&mut buf) {
                Ok(n) => {
                    assert_eq!(
                        &buf[..n],
                        &datagram[..],
                        "seed {seed} datagram {i} ({size} B) came back different"
                    );
                    ok = true;
                    break;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
        assert!(ok, "seed {seed}: datagram {i} never echoed");
    }
    sent
}

/// Threads each sending 64-byte datagrams to one address as fast as they can, for at most 5 s,
/// until stopped: datagrams in flight while a server stops.
pub struct Blasters {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl Blasters {
    /// `count` senders of datagrams filled with `fill` to `to`.
    pub fn start(count: usize, to: SocketAddr, fill: u8) -> Blasters {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..count)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || {
                    let socket = client();
                    let deadline = Instant::now() + Duration::from_secs(5);
                    let mut sent = 0u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        if socket.send_to(&[fill; 64], to).is_ok() {
                            sent += 1;
                        }
                    }
                    sent
                })
            })
            .collect();
        Blasters { stop, threads }
    }

    /// Stops every sender; the datagrams they sent in all.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().map(|t| t.join().unwrap()).sum()
    }
}

/// The `gev_udp_*` series of the endpoint at `addr`, summed over loops: family -> value.
pub fn scrape_udp(addr: SocketAddr) -> HashMap<String, u64> {
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).expect("connect to metrics");
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read metrics");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let mut sums = HashMap::new();
    for line in response.lines().filter(|l| l.starts_with("gev_udp_")) {
        let (series, value) = line.rsplit_once(' ').expect("series and value");
        let family = series.split('{').next().unwrap_or(series);
        let value: u64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value of {line:?}"));
        *sums.entry(family.to_string()).or_insert(0) += value;
    }
    sums
}
