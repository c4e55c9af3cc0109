//! A server with one loop accepts on that loop (no `gev-acceptor` thread; `acceptor.rs`), over
//! real loopback sockets: connections are served and no acceptor thread exists (read from
//! `/proc/self/task/*/comm`) while `dedicated_acceptor(true)` and two loops bring it back;
//! `max_connections` refuses and recovers; a graceful stop closes the listener (a connect is
//! refused after it, a Unix socket file is removed); and running out of descriptors
//! (`gev-echo --loops 1` under `RLIMIT_NOFILE` 64) backs off without spinning the loop, is
//! logged once, and accepts connections that queued meanwhile once descriptors are free (the
//! back-off retries from a loop timer, since connections already pending produce no new edge).

mod common;

use std::borrow::Cow;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{clock_ticks_per_second, thread_cpu_ticks, ServerProcess};
use gev::{Conn, Handler, ListenAddr, Raw, Server, ServerHandle, ServerOptions};

const WAIT: Duration = Duration::from_secs(10);

struct Echo;

impl Handler<Raw> for Echo {
    fn on_message<'a>(&self, _: &mut Conn<'_, Raw>, msg: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        Some(Cow::Borrowed(msg))
    }
}

fn options(loops: i32) -> ServerOptions {
    ServerOptions::new("127.0.0.1:0".parse().unwrap()).loops(loops)
}

fn start(options: ServerOptions) -> (ServerHandle<Raw>, SocketAddr) {
    let server = Server::new(options, Raw, Echo).expect("server");
    let addr = server.local_addr();
    (server.start().expect("start"), addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// Sends `message` and reads the echo; false if the connection was closed or reset instead.
fn echoes(stream: &mut TcpStream, message: &[u8]) -> bool {
    if stream.write_all(message).is_err() {
        return false;
    }
    let mut reply = vec![0u8; message.len()];
    stream.read_exact(&mut reply).is_ok() && reply == message
}

/// Names of the threads of process `pid` (`self` for this one).
fn thread_names_of(pid: &str) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("read /proc/PID/task")
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim_end().to_string())
        .collect()
}

fn thread_names() -> Vec<String> {
    thread_names_of("self")
}

fn acceptor_threads() -> usize {
    thread_names()
        .iter()
        .filter(|name| *name == "gev-acceptor")
        .count()
}

/// Waits until `condition` holds, polling every 10 ms; false after `WAIT`.
fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    condition()
}

/// One test, so that under `cargo test` (threads of one process) no other test of this file
/// starts a `gev-acceptor` thread while the single-loop server is looked at: the other tests
/// here all run one loop without the option.
#[test]
fn one_loop_accepts_itself_and_the_option_or_more_loops_bring_the_acceptor_back() {
    let (server, addr) = start(options(1));
    let mut clients: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        assert!(echoes(client, format!("hello {i}").as_bytes()));
    }
    let names = thread_names();
    assert!(
        names.iter().any(|n| n == "gev-loop-0"),
        "the loop thread runs: {names:?}"
    );
    assert_eq!(acceptor_threads(), 0, "no acceptor thread: {names:?}");
    assert_eq!(server.accepted_count(), 20);
    assert_eq!(server.connection_count(), 20);
    drop(clients);
    server.stop().expect("stop");

    for options in [options(1).dedicated_acceptor(true), options(2)] {
        let (server, addr) = start(options);
        // Waits, because a thread joined by the previous stop may linger in /proc a moment.
        assert!(
            wait_until(|| acceptor_threads() == 1),
            "one acceptor thread: {:?}",
            thread_names()
        );
        let mut client = connect(addr);
        assert!(echoes(&mut client, b"through the acceptor thread"));
        assert_eq!(server.accepted_count(), 1);
        drop(client);
        server.stop().expect("stop");
    }
}

#[test]
fn one_loop_refuses_above_max_connections_and_recovers() {
    let (server, addr) = start(options(1).max_connections(3));
    let mut admitted: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
    for client in &mut admitted {
        assert!(echoes(client, b"in"));
    }
    // The fourth is accepted by the kernel and closed by the loop at once.
    let mut refused = connect(addr);
    let _ = refused.write_all(b"hello");
    let mut buf = [0u8; 16];
    match refused.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("a refused connection got {n} bytes"),
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
            "{e}"
        ),
    }
    assert_eq!(server.refused_count(), 1);
    assert_eq!(server.accepted_count(), 3);
    // Closing an admitted connection makes room once the loop has seen the close.
    drop(admitted.pop());
    assert!(
        wait_until(|| server.connection_count() == 2),
        "the loop never saw the close"
    );
    let mut again = connect(addr);
    assert!(echoes(&mut again, b"room again"));
    assert_eq!(server.accepted_count(), 4);
    assert_eq!(server.refused_count(), 1);
    server.stop().expect("stop");
}

#[test]
fn one_loop_stop_closes_the_listener_first() {
    let (server, addr) = start(options(1));
    let mut client = connect(addr);
    assert!(echoes(&mut client, b"before stop"));
    server.stop().expect("stop");
    // The open connection was closed by the stop and the listener is gone.
    let mut buf = [0u8; 8];
    assert!(matches!(client.read(&mut buf), Ok(0) | Err(_)));
    match TcpStream::connect_timeout(&addr, WAIT) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("a connect to {addr} succeeded after stop"),
    }
}

#[test]
fn one_loop_unix_listener_serves_and_its_file_is_removed_on_stop() {
    let dir = std::env::temp_dir().join(format!("gev-accept-on-loop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create socket dir");
    let path = dir.join("gev.sock");
    let server =
        Server::new(options(1).listen(ListenAddr::Unix(path.clone())), Raw, Echo).expect("server");
    let handle = server.start().expect("start");
    assert_eq!(handle.listen_addr(), &ListenAddr::Unix(path.clone()));
    let mut client = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    client.set_read_timeout(Some(WAIT)).unwrap();
    client.write_all(b"over unix").unwrap();
    let mut reply = [0u8; 9];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"over unix");
    handle.stop().expect("stop");
    let removed = !path.exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(removed, "the socket file is removed on stop");
}

/// `gev-echo --loops 1` with 64 descriptors: the loop accepts until it runs out, backs off on
/// a timer (CPU of all the server's threads stays low), logs once, keeps serving, and accepts
/// again once descriptors are free.
#[test]
fn one_loop_backs_off_when_out_of_descriptors_and_recovers() {
    let log_path = std::env::temp_dir().join(format!("gev-loop-emfile-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = ServerProcess::start_with_nofile_limit(
        "gev-echo",
        &["--host", "127.0.0.1", "--port", "0", "--loops", "1"],
        64,
        log,
    );
    let addr = server.addr();
    let mut first = connect(addr);
    assert!(echoes(&mut first, b"hi"));
    // 120 more: the kernel queues them all (backlog), the server runs out partway through.
    let mut extra: Vec<TcpStream> = (0..120).map(|_| connect(addr)).collect();
    thread::sleep(Duration::from_millis(300));
    // Every thread of the server (there is no acceptor thread: the loop backs off).
    let ticks_before = thread_cpu_ticks(server.pid(), "");
    let window = Instant::now();
    thread::sleep(Duration::from_secs(1));
    let ticks = thread_cpu_ticks(server.pid(), "") - ticks_before;
    let cpu_share = ticks as f64 / clock_ticks_per_second() as f64 / window.elapsed().as_secs_f64();
    assert!(
        cpu_share < 0.2,
        "the server used {:.0}% of a core while out of descriptors",
        cpu_share * 100.0
    );
    // Connections it has are still served by the backing-off loop.
    assert!(echoes(&mut first, b"ok"));
    let names = thread_names_of(&server.pid().to_string());
    assert!(
        names.iter().any(|n| n == "gev-loop-0") && !names.iter().any(|n| n == "gev-acceptor"),
        "the loop accepts, no acceptor thread: {names:?}"
    );
    // Free descriptors without a new connect: the first 100 close (the server sees EOF on those
    // it accepted), the last 20 stay queued in the listen backlog. No new edge comes for them,
    // so only the loop's back-off retry timer can accept them.
    let mut queued = extra.split_off(100);
    drop(extra);
    let last = queued.last_mut().expect("20 queued connections");
    assert!(
        echoes(last, b"queued"),
        "a connection queued during the back-off was never accepted"
    );
    drop(queued);
    // And a new connection is served.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut s = connect(addr);
        if echoes(&mut s, b"back") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not recover after descriptors were freed"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let exit = server.interrupt_and_wait(Duration::from_secs(5));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        exit.as_ref().is_ok_and(|status| status.success()),
        "{exit:?}"
    );
    assert_eq!(
        log.matches("out of file descriptors").count(),
        1,
        "expected the exhaustion logged once, log:\n{log}"
    );
}
