//! What one misbehaving connection may cost the others, over real loopback sockets, asserted on
//! counts (bytes and order of deliveries), never on timing:
//! - a client that never reads its replies makes the server hold at most the default output high
//!   watermark plus one read of output for it, and the server stops reading it (issue 16: with
//!   the old 1 MiB default, each such client made the loop copy and hold 16 times as much per
//!   cycle, which `harness soak` showed as p99 spikes and an RSS saw-tooth), and the kernel
//!   takes at most `tcp_notsent_lowat` of unsent echo before that (it autotuned its send buffer
//!   to ~4 MiB, which the server read and echoed again after every reconnect);
//! - a client streaming as fast as it can is read at most one read budget per turn, so another
//!   client's message waits for at most two turns of the stream (the read turn of
//!   `event_loop.rs` and its ready list `read_again`), not for as long as the stream lasts.

mod common;

use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use gev::{Conn, Handler, Raw, Server, ServerHandle, ServerOptions};

const WAIT: Duration = Duration::from_secs(20);

fn start<H: Handler<Raw>>(options: ServerOptions, handler: H) -> (ServerHandle<Raw>, SocketAddr) {
    let server = Server::new(options, Raw, handler).expect("server");
    let addr = server.local_addr();
    (server.start().expect("start"), addr)
}

/// Echoes, and records per peer the most output the server held for it.
#[derive(Default)]
struct PendingRecorder {
    max_pending: Mutex<Vec<(SocketAddr, usize)>>,
}

impl Observe for PendingRecorder {
    fn observe(&self, conn: &mut Conn<'_, Raw>, message: &[u8]) {
        // Output held once this reply is appended.
        let held = conn.pending_output() + message.len();
        let peer = conn.peer_addr();
        let mut max = self.max_pending.lock().unwrap();
        match max.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, m)) => *m = (*m).max(held),
            None => max.push((peer, held)),
        }
    }
}

#[test]
fn a_client_that_never_reads_costs_at_most_the_default_high_watermark() {
    let defaults = ServerOptions::new("127.0.0.1:0".parse().unwrap());
    let (high, read_size) = (defaults.output_high_watermark, defaults.read_buffer_size);
    assert_eq!(high, 64 * 1024, "the default this test stands for");
    let recorder = Arc::new(PendingRecorder::default());
    let (server, addr) = start(defaults.loops(1), ArcHandler(recorder.clone()));

    let mut hog = TcpStream::connect(addr).unwrap();
    hog.set_nonblocking(true).unwrap();
    let hog_addr = hog.local_addr().unwrap();
    // Write until every buffer on the way is full: the server has stopped reading.
    common::write_until_stalled(&mut hog, 0x5a, WAIT);
    let held = recorder
        .max_pending
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| *p == hog_addr)
        .map(|(_, m)| *m)
        .expect("the hog's messages were delivered");
    // Pausing happens once a read turn leaves more than the watermark, so one read may overshoot.
    assert!(
        held > high && held <= high + read_size,
        "held {held} bytes of output for a client that never reads (watermark {high}, read {read_size})"
    );

    // Everyone else is still served.
    let mut other = TcpStream::connect(addr).unwrap();
    other.set_read_timeout(Some(WAIT)).unwrap();
    other.write_all(b"still here").unwrap();
    let mut reply = [0u8; 10];
    other.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"still here");
    let _ = server.stop();
    drop(hog);
}

/// Echoes, and counts the bytes delivered (each is echoed: what the server read and wrote).
#[derive(Default)]
struct ByteCounter {
    delivered: AtomicUsize,
}

impl Observe for ByteCounter {
    fn observe(&self, _conn: &mut Conn<'_, Raw>, message: &[u8]) {
        self.delivered.fetch_add(message.len(), Ordering::SeqCst);
    }
}

/// Connects a client with a 4 KiB receive buffer (as `loadgen --misbehave never-read` does) that
/// writes until every buffer on the way has been full for 500 ms; returns the bytes the server
/// read (and echoed) from it by then.
fn bytes_echoed_to_a_client_that_never_reads(options: ServerOptions) -> usize {
    let counter = Arc::new(ByteCounter::default());
    let (server, addr) = start(options.loops(1), ArcHandler(counter.clone()));
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let mut hog: TcpStream = socket.into();
    common::write_until_stalled(&mut hog, 0x5a, WAIT);
    let echoed = counter.delivered.load(Ordering::SeqCst);
    let _ = server.stop();
    echoed
}

/// The kernel's largest autotuned send buffer (`tcp_wmem` max), if readable.
fn tcp_wmem_max() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem").ok()?;
    text.split_whitespace().nth(2)?.parse().ok()
}

#[test]
fn a_client_that_never_reads_is_echoed_at_most_the_unsent_limit_before_backpressure() {
    // Issue 16: a never-reading client costs the server one read and one echo per message it
    // sends until backpressure starts, and again after each reconnect (the idle timeout closes
    // it). With the kernel's send buffer autotuned (~4 MiB on loopback) that was ~4 MiB per
    // cycle; TCP_NOTSENT_LOWAT bounds the unsent bytes the kernel takes.
    let defaults = ServerOptions::new("127.0.0.1:0".parse().unwrap());
    let lowat = defaults.tcp_notsent_lowat.expect("on by default") as usize;
    let (high, read_size) = (defaults.output_high_watermark, defaults.read_buffer_size);
    let bounded = bytes_echoed_to_a_client_that_never_reads(defaults);
    // Unsent limit plus the segment being filled (64 KiB on loopback), output up to the
    // watermark plus one read, and the client's small receive window.
    let bound = lowat + 64 * 1024 + high + read_size + 64 * 1024;
    assert!(
        bounded <= bound,
        "echoed {bounded} bytes to a client that never reads (bound {bound})"
    );
    // The bound is the option's doing: without it the kernel takes megabytes.
    if tcp_wmem_max().is_some_and(|max| max >= 4 * bound) {
        let unbounded = bytes_echoed_to_a_client_that_never_reads(
            ServerOptions::new("127.0.0.1:0".parse().unwrap()).tcp_notsent_lowat(None),
        );
        assert!(
            unbounded > 2 * bounded,
            "without TCP_NOTSENT_LOWAT: {unbounded} bytes echoed, with it: {bounded}"
        );
        eprintln!("echoed before backpressure: {bounded} bytes with TCP_NOTSENT_LOWAT {lowat}, {unbounded} without");
    }
}

/// What a test handler does with each message before it is echoed.
trait Observe: Send + Sync + 'static {
    fn observe(&self, conn: &mut Conn<'_, Raw>, message: &[u8]);
}

/// An echo handler sharing its observer with the test.
struct ArcHandler<O>(Arc<O>);

impl<O: Observe> Handler<Raw> for ArcHandler<O> {
    fn on_message<'a>(&self, conn: &mut Conn<'_, Raw>, message: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        self.0.observe(conn, message);
        Some(Cow::Borrowed(message))
    }
}

/// Echoes; once the streaming client has had `hold_after` bytes delivered, blocks the loop (in
/// the handler, once) until the test has written the other client's message, then counts the
/// streaming client's bytes delivered before that message.
struct Gate {
    streamer: Mutex<Option<SocketAddr>>,
    streamed: AtomicUsize,
    hold_after: usize,
    held: AtomicBool,
    at_hold: mpsc::SyncSender<()>,
    release: Mutex<mpsc::Receiver<()>>,
    /// Streamed bytes delivered when the other client's first message was.
    streamed_when_other_arrived: Mutex<Option<usize>>,
    streamed_at_release: AtomicUsize,
}

impl Observe for Gate {
    fn observe(&self, conn: &mut Conn<'_, Raw>, message: &[u8]) {
        let is_streamer = *self.streamer.lock().unwrap() == Some(conn.peer_addr());
        if is_streamer {
            let total = self.streamed.fetch_add(message.len(), Ordering::SeqCst) + message.len();
            if total >= self.hold_after && !self.held.swap(true, Ordering::SeqCst) {
                // The loop is stopped here: the other client's message and more of the stream
                // both arrive before it goes on.
                let _ = self.at_hold.send(());
                let _ = self.release.lock().unwrap().recv_timeout(WAIT);
                self.streamed_at_release.store(total, Ordering::SeqCst);
            }
        } else {
            let mut first = self.streamed_when_other_arrived.lock().unwrap();
            if first.is_none() {
                *first = Some(self.streamed.load(Ordering::SeqCst));
            }
        }
    }
}

#[test]
fn a_streaming_client_delays_another_by_at_most_two_read_turns() {
    // The read budget of one turn (MAX_READS_PER_TURN reads of read_buffer_size) in event_loop.rs.
    const READS_PER_TURN: usize = 16;
    let options = ServerOptions::new("127.0.0.1:0".parse().unwrap()).loops(1);
    let read_size = options.read_buffer_size;
    let (at_hold_tx, at_hold) = mpsc::sync_channel(1);
    let (release_tx, release_rx) = mpsc::channel();
    let gate = Arc::new(Gate {
        streamer: Mutex::new(None),
        streamed: AtomicUsize::new(0),
        hold_after: 4 * 1024 * 1024,
        held: AtomicBool::new(false),
        at_hold: at_hold_tx,
        release: Mutex::new(release_rx),
        streamed_when_other_arrived: Mutex::new(None),
        streamed_at_release: AtomicUsize::new(0),
    });
    let (server, addr) = start(options, ArcHandler(gate.clone()));

    let streamer = TcpStream::connect(addr).unwrap();
    *gate.streamer.lock().unwrap() = Some(streamer.local_addr().unwrap());
    let other = TcpStream::connect(addr).unwrap();
    other.set_read_timeout(Some(WAIT)).unwrap();
    // The streaming client writes 64 MiB as fast as it can and reads every reply, so it is never
    // paused for backpressure: only the read budget can make the loop leave it.
    let stop = Arc::new(AtomicBool::new(false));
    let total = 64 * 1024 * 1024;
    let writer = {
        let mut stream = streamer.try_clone().unwrap();
        let stop = stop.clone();
        thread::spawn(move || {
            let chunk = vec![0x33u8; 64 * 1024];
            let mut sent = 0;
            while sent < total && !stop.load(Ordering::Relaxed) {
                match stream.write(&chunk) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
        })
    };
    let reader = {
        let mut stream = streamer.try_clone().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let mut got = 0;
            while got < total {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
        })
    };

    at_hold
        .recv_timeout(WAIT)
        .expect("the stream reached the hold point");
    let mut other = other;
    other.write_all(b"ping").unwrap();
    // Let the stream refill the server's receive buffer too, then let the loop go on.
    thread::sleep(Duration::from_millis(100));
    release_tx.send(()).unwrap();
    let mut reply = [0u8; 4];
    other.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"ping");

    let at_release = gate.streamed_at_release.load(Ordering::SeqCst);
    let when_other = gate
        .streamed_when_other_arrived
        .lock()
        .unwrap()
        .expect("the other client's message was delivered");
    let delayed_by = when_other.saturating_sub(at_release);
    // At most two read turns of the stream: the rest of the turn the handler held, and one
    // more if the next poll reports the stream's readiness before the other client's (a
    // connection gets one turn per iteration: through its event or, when its last turn left
    // input, from the loop's ready list, never both). Reading until EAGAIN instead would keep
    // delivering the stream for as long as its writer keeps up (up to 64 MiB here).
    let bound = 2 * READS_PER_TURN * read_size;
    assert!(
        delayed_by <= bound,
        "the other client's message waited for {delayed_by} bytes of the stream (bound {bound})"
    );
    stop.store(true, Ordering::Relaxed);
    let _ = server.stop();
    let _ = writer.join();
    drop(streamer);
    let _ = reader.join();
}
