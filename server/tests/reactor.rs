//! End-to-end tests of the library API with in-process servers over real loopback sockets:
//! sends from other threads (and handles to closed/reused slots), shutdown_write, timers, idle
//! timeout, handle backpressure, handler panics, graceful stop delivering pending output, and
//! load balancing.

use std::borrow::Cow;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use gev::{
    Backpressure, CloseReason, Conn, ConnHandle, Handler, LoadBalance, Raw, SendError, Server,
    ServerHandle, ServerOptions,
};

const WAIT: Duration = Duration::from_secs(10);

fn options(loops: i32) -> ServerOptions {
    ServerOptions::new("127.0.0.1:0".parse().unwrap()).loops(loops)
}

fn start<H: Handler<Raw>>(options: ServerOptions, handler: H) -> (ServerHandle<Raw>, SocketAddr) {
    let server = Server::new(options, Raw, handler).expect("server");
    let addr = server.local_addr();
    (server.start().expect("start"), addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// Reads until EOF (a reset also counts as the end).
fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("read: {e} after {} bytes", out.len()),
        }
    }
}

/// Records connects, messages and closes; replies according to `reply`.
struct Recorder {
    handles: Arc<Mutex<Vec<ConnHandle<Raw>>>>,
    closes: Mutex<Sender<CloseReason>>,
    messages: Mutex<Sender<Vec<u8>>>,
    behaviour: fn(&mut Conn<'_, Raw>, &[u8]) -> Option<Vec<u8>>,
}

struct Recorded {
    handles: Arc<Mutex<Vec<ConnHandle<Raw>>>>,
    closes: Receiver<CloseReason>,
    messages: Receiver<Vec<u8>>,
}

fn recorder(behaviour: fn(&mut Conn<'_, Raw>, &[u8]) -> Option<Vec<u8>>) -> (Recorder, Recorded) {
    let handles = Arc::new(Mutex::new(Vec::new()));
    let (close_tx, closes) = mpsc::channel();
    let (msg_tx, messages) = mpsc::channel();
    (
        Recorder {
            handles: handles.clone(),
            closes: Mutex::new(close_tx),
            messages: Mutex::new(msg_tx),
            behaviour,
        },
        Recorded {
            handles,
            closes,
            messages,
        },
    )
}

impl Handler<Raw> for Recorder {
    fn on_connect(&self, conn: &mut Conn<'_, Raw>) {
        self.handles.lock().unwrap().push(conn.handle());
    }

    fn on_message<'a>(&self, conn: &mut Conn<'_, Raw>, message: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        let _ = self.messages.lock().unwrap().send(message.to_vec());
        (self.behaviour)(conn, message).map(Cow::Owned)
    }

    fn on_close(&self, _conn: &mut Conn<'_, Raw>, reason: CloseReason) {
        let _ = self.closes.lock().unwrap().send(reason);
    }
}

fn echo(_: &mut Conn<'_, Raw>, m: &[u8]) -> Option<Vec<u8>> {
    Some(m.to_vec())
}

fn wait_for_handles(handles: &Mutex<Vec<ConnHandle<Raw>>>, n: usize) -> Vec<ConnHandle<Raw>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let h = handles.lock().unwrap().clone();
        if h.len() >= n {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} connections registered",
            h.len()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn send_from_another_thread() {
    let (handler, rec) = recorder(echo);
    let (server, addr) = start(options(2), handler);
    let mut client = connect(addr);
    let handle = wait_for_handles(&rec.handles, 1).remove(0);
    let sender = thread::spawn(move || {
        for i in 0..100u8 {
            handle.send(Cow::Owned(vec![i; 10])).expect("send");
        }
        handle
    });
    let handle = sender.join().unwrap();
    let mut got = vec![0u8; 1000];
    client.read_exact(&mut got).unwrap();
    let want: Vec<u8> = (0..100u8).flat_map(|i| [i; 10]).collect();
    assert_eq!(got, want, "sends arrive complete and in order");

    drop(client);
    assert_eq!(rec.closes.recv_timeout(WAIT).unwrap(), CloseReason::Peer);
    assert!(handle.is_closed());
    assert_eq!(handle.send(Cow::Borrowed(b"late")), Err(SendError::Closed));
    server.stop().unwrap();
}

#[test]
fn handle_to_closed_slot_never_reaches_the_new_connection() {
    let (handler, rec) = recorder(echo);
    let (server, addr) = start(options(1), handler);
    let first = connect(addr);
    let old = wait_for_handles(&rec.handles, 1).remove(0);
    drop(first);
    assert_eq!(rec.closes.recv_timeout(WAIT).unwrap(), CloseReason::Peer);
    // The new connection takes the freed slab slot.
    let mut second = connect(addr);
    let new = wait_for_handles(&rec.handles, 2).remove(1);
    assert_ne!(old.id(), new.id());
    assert_eq!(old.send(Cow::Borrowed(b"stale")), Err(SendError::Closed));
    old.close();
    new.send(Cow::Borrowed(b"fresh")).unwrap();
    let mut got = [0u8; 5];
    second.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"fresh", "only the new handle's data arrives");
    second.write_all(b"x").unwrap();
    let mut b = [0u8];
    second.read_exact(&mut b).unwrap();
    assert_eq!(
        &b, b"x",
        "the old handle's close did not close the new connection"
    );
    server.stop().unwrap();
}

#[test]
fn shutdown_write_flushes_then_sends_eof_and_keeps_reading() {
    fn bye(conn: &mut Conn<'_, Raw>, m: &[u8]) -> Option<Vec<u8>> {
        if m == b"bye" {
            conn.send(Cow::Borrowed(b"ok"));
            conn.shutdown_write();
        }
        None
    }
    let (handler, rec) = recorder(bye);
    let (server, addr) = start(options(1), handler);
    let mut client = connect(addr);
    client.write_all(b"bye").unwrap();
    assert_eq!(read_to_end(&mut client), b"ok");
    client.write_all(b"after").unwrap();
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !seen.ends_with(b"after") {
        let left = deadline.saturating_duration_since(Instant::now());
        seen.extend(
            rec.messages
                .recv_timeout(left)
                .expect("message after shutdown_write"),
        );
    }
    server.stop().unwrap();
}

#[test]
fn timers_run_on_the_loop_thread_and_cancel() {
    let (handler, _rec) = recorder(echo);
    let server = Server::new(options(2), Raw, handler).unwrap();
    let loops = server.loops();
    let running = server.start().unwrap();

    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    loops[1].run_after(Duration::from_millis(50), move || {
        let name = thread::current().name().unwrap_or("").to_string();
        tx.send((name, started.elapsed())).unwrap();
    });
    let (thread_name, elapsed) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(thread_name, "gev-loop-1");
    assert!(
        elapsed >= Duration::from_millis(50),
        "fired after {elapsed:?}"
    );

    let ticks = Arc::new(AtomicUsize::new(0));
    let counter = ticks.clone();
    let id = loops[0].run_every(Duration::from_millis(10), move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let deadline = Instant::now() + WAIT;
    while ticks.load(Ordering::SeqCst) < 5 {
        assert!(Instant::now() < deadline, "run_every did not repeat");
        thread::sleep(Duration::from_millis(5));
    }
    loops[0].cancel(id);
    thread::sleep(Duration::from_millis(50)); // let the cancel land
    let after_cancel = ticks.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        ticks.load(Ordering::SeqCst),
        after_cancel,
        "ran after cancel"
    );

    let cancelled = Arc::new(AtomicUsize::new(0));
    let flag = cancelled.clone();
    let once = loops[0].run_after(Duration::from_millis(100), move || {
        flag.fetch_add(1, Ordering::SeqCst);
    });
    loops[0].cancel(once);
    thread::sleep(Duration::from_millis(250));
    assert_eq!(
        cancelled.load(Ordering::SeqCst),
        0,
        "cancelled run_after ran"
    );
    running.stop().unwrap();
}

#[test]
fn idle_connections_are_closed_active_ones_kept() {
    let (handler, rec) = recorder(echo);
    let (server, addr) = start(
        options(1).idle_timeout(Some(Duration::from_millis(500))),
        handler,
    );
    let mut idle = connect(addr);
    let mut active = connect(addr);
    let started = Instant::now();
    // Keep `active` busy past several idle timeouts.
    while started.elapsed() < Duration::from_millis(1500) {
        active.write_all(b"p").unwrap();
        let mut b = [0u8];
        active.read_exact(&mut b).unwrap();
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(rec.closes.recv_timeout(WAIT).unwrap(), CloseReason::Idle);
    assert_eq!(read_to_end(&mut idle), b"");
    active.write_all(b"q").unwrap();
    let mut b = [0u8];
    active.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"q");
    server.stop().unwrap();
}

#[test]
fn handle_send_reports_would_block_above_high_watermark() {
    let (handler, rec) = recorder(echo);
    let opts = options(1)
        .output_high_watermark(256 * 1024)
        .output_low_watermark(64 * 1024);
    let (server, addr) = start(opts, handler);
    let client = connect(addr); // never reads
    let handle = wait_for_handles(&rec.handles, 1).remove(0);
    let chunk = vec![1u8; 64 * 1024];
    let deadline = Instant::now() + WAIT;
    let mut accepted = 0usize;
    loop {
        match handle.send(Cow::Owned(chunk.clone())) {
            Ok(()) => accepted += chunk.len(),
            Err(SendError::WouldBlock) => break,
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "never blocked after {accepted} bytes"
        );
        thread::sleep(Duration::from_millis(1));
    }
    assert!(handle.send(Cow::Borrowed(b"x")).is_err());
    // Once the client reads, the output drains below the low watermark and sends work again.
    let mut reader = client.try_clone().unwrap();
    let drain = thread::spawn(move || read_to_end(&mut reader).len());
    let deadline = Instant::now() + WAIT;
    while handle.send(Cow::Borrowed(b"again")).is_err() {
        assert!(
            Instant::now() < deadline,
            "sends never resumed after draining"
        );
        thread::sleep(Duration::from_millis(2));
    }
    handle.close();
    let drained = drain.join().unwrap();
    assert!(drained >= accepted, "read {drained} of {accepted} bytes");
    server.stop().unwrap();
}

#[test]
fn backpressure_close_policy_closes_the_connection() {
    let (handler, rec) = recorder(echo);
    let opts = options(1)
        .output_high_watermark(128 * 1024)
        .output_low_watermark(32 * 1024)
        .backpressure(Backpressure::Close);
    let (server, addr) = start(opts, handler);
    let mut client = connect(addr); // writes but never reads
    client.set_nonblocking(true).unwrap();
    let chunk = vec![2u8; 64 * 1024];
    let deadline = Instant::now() + WAIT;
    let reason = loop {
        let _ = client.write(&chunk);
        if let Ok(reason) = rec.closes.recv_timeout(Duration::from_millis(5)) {
            break reason;
        }
        assert!(Instant::now() < deadline, "never closed for backpressure");
    };
    assert_eq!(reason, CloseReason::Backpressure);
    server.stop().unwrap();
}

#[test]
fn handler_panic_closes_only_that_connection() {
    fn maybe_panic(_: &mut Conn<'_, Raw>, m: &[u8]) -> Option<Vec<u8>> {
        if m == b"panic" {
            panic!("handler asked to panic");
        }
        Some(m.to_vec())
    }
    let (handler, rec) = recorder(maybe_panic);
    let (server, addr) = start(options(1), handler);
    let mut victim = connect(addr);
    let mut bystander = connect(addr);
    victim.write_all(b"panic").unwrap();
    assert_eq!(read_to_end(&mut victim), b"");
    assert_eq!(rec.closes.recv_timeout(WAIT).unwrap(), CloseReason::Panic);
    bystander.write_all(b"still here").unwrap();
    let mut got = [0u8; 10];
    bystander.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still here");
    // The loop keeps accepting new connections too.
    let mut late = connect(addr);
    late.write_all(b"ok").unwrap();
    let mut b = [0u8; 2];
    late.read_exact(&mut b).unwrap();
    server.stop().unwrap();
}

#[test]
fn graceful_stop_delivers_pending_output() {
    fn big(_: &mut Conn<'_, Raw>, _m: &[u8]) -> Option<Vec<u8>> {
        Some(vec![7u8; 8 * 1024 * 1024])
    }
    let (handler, rec) = recorder(big);
    let (server, addr) = start(options(2).stop_timeout(Duration::from_secs(10)), handler);
    let mut client = connect(addr);
    client.write_all(b"go").unwrap();
    rec.messages.recv_timeout(WAIT).unwrap();
    // The reply is far larger than the socket buffers: most of it is still pending when stop
    // begins; the client starts reading only afterwards.
    let stopper = thread::spawn(move || server.stop());
    thread::sleep(Duration::from_millis(200));
    let got = read_to_end(&mut client);
    assert_eq!(
        got.len(),
        8 * 1024 * 1024,
        "all pending output delivered before the close"
    );
    assert!(got.iter().all(|&b| b == 7));
    stopper.join().unwrap().expect("stop");
    assert_eq!(
        rec.closes.recv_timeout(WAIT).unwrap(),
        CloseReason::Shutdown
    );
}

#[test]
fn stop_is_bounded_when_a_peer_never_reads() {
    fn big(_: &mut Conn<'_, Raw>, _m: &[u8]) -> Option<Vec<u8>> {
        Some(vec![7u8; 8 * 1024 * 1024])
    }
    let (handler, rec) = recorder(big);
    let (server, addr) = start(options(1).stop_timeout(Duration::from_millis(500)), handler);
    let mut client = connect(addr);
    client.write_all(b"go").unwrap();
    rec.messages.recv_timeout(WAIT).unwrap();
    let started = Instant::now();
    server.stop().expect("stop");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        started.elapsed()
    );
    assert_eq!(
        rec.closes.recv_timeout(WAIT).unwrap(),
        CloseReason::Shutdown
    );
}

#[test]
fn least_connections_and_custom_balancers_spread_connections() {
    for balance in [
        LoadBalance::LeastConnections,
        LoadBalance::Custom(Arc::new(|_: &SocketAddr, loads: &[usize]| loads.len() - 1)),
    ] {
        let custom = matches!(balance, LoadBalance::Custom(_));
        let (handler, rec) = recorder(echo);
        let (server, addr) = start(options(3).load_balance(balance), handler);
        let clients: Vec<TcpStream> = (0..6).map(|_| connect(addr)).collect();
        let handles = wait_for_handles(&rec.handles, 6);
        let mut per_loop = [0usize; 3];
        for h in &handles {
            per_loop[h.id().loop_index()] += 1;
        }
        if custom {
            assert_eq!(per_loop, [0, 0, 6]);
        } else {
            assert_eq!(per_loop, [2, 2, 2]);
        }
        let counts: Vec<usize> = server
            .loops()
            .iter()
            .map(|l| l.connection_count())
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 6);
        drop(clients);
        server.stop().unwrap();
    }
}

#[test]
fn close_from_handler_flushes_reply_first() {
    fn close_after_reply(conn: &mut Conn<'_, Raw>, _m: &[u8]) -> Option<Vec<u8>> {
        conn.close();
        Some(b"goodbye".to_vec())
    }
    let (handler, rec) = recorder(close_after_reply);
    let (server, addr) = start(options(1), handler);
    let mut client = connect(addr);
    client.write_all(b"hi").unwrap();
    assert_eq!(read_to_end(&mut client), b"goodbye");
    assert_eq!(rec.closes.recv_timeout(WAIT).unwrap(), CloseReason::Local);
    server.stop().unwrap();
}

#[test]
fn context_slot_keeps_per_connection_state() {
    struct Counter;
    impl Handler<Raw> for Counter {
        fn on_connect(&self, conn: &mut Conn<'_, Raw>) {
            conn.set_context(0u32);
        }
        fn on_message<'a>(&self, conn: &mut Conn<'_, Raw>, m: &'a [u8]) -> Option<Cow<'a, [u8]>> {
            let count = conn.context_mut::<u32>()?;
            *count += m.len() as u32;
            Some(Cow::Owned(count.to_string().into_bytes()))
        }
    }
    let (server, addr) = start(options(1), Counter);
    let mut a = connect(addr);
    let mut b = connect(addr);
    let mut buf = [0u8; 1];
    a.write_all(b"xyz").unwrap();
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"3");
    b.write_all(b"x").unwrap();
    b.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"1");
    server.stop().unwrap();
}

#[test]
fn large_upload_then_half_close_is_fully_echoed() {
    let (handler, rec) = recorder(echo);
    let (server, addr) = start(options(1), handler);
    let client = connect(addr);
    let mut writer = client.try_clone().unwrap();
    let total = 4 * 1024 * 1024;
    let upload = thread::spawn(move || {
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        writer.write_all(&data).unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut reader = client;
    let echoed = read_to_end(&mut reader);
    upload.join().unwrap();
    assert_eq!(echoed.len(), total);
    assert!(echoed
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
    assert_eq!(rec.closes.recv_timeout(WAIT).unwrap(), CloseReason::Peer);
    server.stop().unwrap();
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<ConnHandle<Raw>>();
    send_sync::<gev::LoopHandle<Raw>>();
    send::<ServerHandle<Raw>>();
    send_sync::<ServerOptions>();
}
