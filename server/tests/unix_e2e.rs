//! End-to-end tests of gev over Unix stream sockets (`--listen unix:/path`): every byte of
//! random-size messages in random fragments echoed back by `gev-echo` on 1 and 2 loops with 50
//! concurrent connections, `gev-protocol` frames cut at random points, an abstract name, the
//! socket file removed on stop, a stale file reused, a live path refused (the second server
//! exits non-zero with a one-line reason and the first keeps serving), and a stop with
//! connections in flight.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use common::echo::{assert_exits_on_sigint, echo_client, run_clients, write_fragmented};
use common::{bin_path, ServerProcess};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A fresh socket path in a per-test directory (removed when dropped).
struct SocketDir(PathBuf);

impl SocketDir {
    fn new(test: &str) -> SocketDir {
        let dir = std::env::temp_dir().join(format!("gev-unix-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create socket dir");
        SocketDir(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.join("gev.sock")
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn connect(path: &Path) -> UnixStream {
    let stream =
        UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// `clients` connections to `path` at once, each echoing `messages` random messages.
fn echo_clients(path: &Path, clients: usize, messages: usize) -> usize {
    let path = path.to_path_buf();
    run_clients(clients, 5000, move |seed| {
        echo_client(connect(&path), seed, messages)
    })
}

fn start_echo(path: &Path, loops: &str) -> ServerProcess {
    let listen = format!("unix:{}", path.display());
    let server = ServerProcess::start("gev-echo", &["--listen", &listen, "--loops", loops]);
    assert_eq!(
        server.listen_line(),
        listen,
        "the listening line names the socket"
    );
    server
}

fn echo_on_loops(test: &str, loops: &str) {
    let dir = SocketDir::new(test);
    let path = dir.path();
    let mut server = start_echo(&path, loops);
    // 50 connections x 30 messages of random size in random fragments.
    let bytes = echo_clients(&path, 50, 30);
    assert!(bytes > 0);
    assert_exits_on_sigint(&mut server);
    assert!(!path.exists(), "the socket file is removed on stop");
}

#[test]
fn unix_echo_one_loop_50_clients_every_byte() {
    echo_on_loops("one", "1");
}

#[test]
fn unix_echo_two_loops_50_clients_every_byte() {
    echo_on_loops("two", "2");
}

#[test]
fn unix_protocol_frames_cut_at_random_points() {
    let dir = SocketDir::new("proto");
    let path = dir.path();
    let listen = format!("unix:{}", path.display());
    let mut server = ServerProcess::start("gev-protocol", &["--listen", &listen, "--loops", "1"]);
    let mut rng = SmallRng::seed_from_u64(77);
    let mut stream = connect(&path);
    for round in 0..50 {
        let payloads: Vec<Vec<u8>> = (0..rng.random_range(1..5))
            .map(|_| {
                (0..rng.random_range(0..3000))
                    .map(|_| rng.random())
                    .collect()
            })
            .collect();
        let mut wire = Vec::new();
        for p in &payloads {
            wire.extend_from_slice(&(p.len() as u32).to_be_bytes());
            wire.extend_from_slice(p);
        }
        write_fragmented(&mut stream, &wire, &mut rng).expect("write frames");
        let mut back = vec![0; wire.len()];
        stream
            .read_exact(&mut back)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(back, wire, "round {round}: frames echoed byte for byte");
    }
    assert_exits_on_sigint(&mut server);
}

#[cfg(target_os = "linux")]
#[test]
fn unix_abstract_name_serves() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("gev-test-{}", std::process::id());
    let listen = format!("unix:@{name}");
    let mut server = ServerProcess::start("gev-echo", &["--listen", &listen, "--loops", "1"]);
    assert_eq!(server.listen_line(), listen);
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    run_clients(10, 5000, move |seed| {
        let s = UnixStream::connect_addr(&addr).expect("connect abstract");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        echo_client(s, seed, 10)
    });
    assert_exits_on_sigint(&mut server);
}

#[test]
fn stale_socket_file_is_reused() {
    let dir = SocketDir::new("stale");
    let path = dir.path();
    // A socket file nobody listens on any more (what a crashed server leaves behind).
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind stale"));
    assert!(path.exists());
    let mut server = start_echo(&path, "1");
    echo_clients(&path, 2, 5);
    assert_exits_on_sigint(&mut server);
    assert!(!path.exists());
}

#[test]
fn live_path_is_refused_and_the_first_server_keeps_serving() {
    let dir = SocketDir::new("live");
    let path = dir.path();
    let mut first = start_echo(&path, "1");
    let output = Command::new(bin_path("gev-echo"))
        .args([
            "--listen",
            &format!("unix:{}", path.display()),
            "--loops",
            "1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run the second server");
    assert!(!output.status.success(), "second server must fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("a server is listening there"),
        "stderr: {stderr}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "no listening line"
    );
    assert!(path.exists(), "the live socket file is left alone");
    echo_clients(&path, 2, 5);
    assert_exits_on_sigint(&mut first);
}

#[test]
fn stop_with_connections_in_flight() {
    let dir = SocketDir::new("inflight");
    let path = dir.path();
    let mut server = start_echo(&path, "2");
    let stop_flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let mut stream = connect(&path);
            stream
                .set_write_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let flag = stop_flag.clone();
            thread::spawn(move || {
                let chunk = vec![i as u8; 4096];
                let mut sink = [0u8; 65536];
                // Bounded: at most 5 s or until the server goes away.
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                while !flag.load(std::sync::atomic::Ordering::Relaxed)
                    && std::time::Instant::now() < deadline
                {
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                    if stream.read(&mut sink).map_or(true, |n| n == 0) {
                        break;
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    assert_exits_on_sigint(&mut server);
    stop_flag.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer thread");
    }
    assert!(!path.exists(), "the socket file is removed on stop");
}
