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

use common::{bin_path, ServerProcess};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

const IO_TIMEOUT: Duration = Duration::from_secs(20);
const SIGINT_EXIT: Duration = Duration::from_secs(1);

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

fn write_fragmented(
    stream: &mut impl Write,
    data: &[u8],
    rng: &mut SmallRng,
) -> std::io::Result<()> {
    let mut offset = 0;
    while offset < data.len() {
        let take = rng.random_range(1..=data.len() - offset);
        stream.write_all(&data[offset..offset + take])?;
        offset += take;
        if rng.random_ratio(1, 8) {
            thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(())
}

/// `messages` random messages (1 in 10 up to 64 KiB), each in random fragments, each echoed
/// back whole and compared byte for byte before the next.
fn echo_client(mut stream: UnixStream, seed: u64, messages: usize) -> Result<usize, String> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut echoed = vec![0u8; 70_000];
    let mut total = 0;
    for i in 0..messages {
        let size = if rng.random_ratio(1, 10) {
            rng.random_range(1..=65_536)
        } else {
            rng.random_range(1..=512)
        };
        let message: Vec<u8> = (0..size).map(|_| rng.random()).collect();
        write_fragmented(&mut stream, &message, &mut rng)
            .map_err(|e| format!("client {seed}: write {i}: {e}"))?;
        stream
            .read_exact(&mut echoed[..size])
            .map_err(|e| format!("client {seed}: read {i} ({size} bytes): {e}"))?;
        if echoed[..size] != message[..] {
            return Err(format!(
                "client {seed}: message {i} ({size} bytes) came back different"
            ));
        }
        total += size;
    }
    Ok(total)
}

fn run_clients(connect: impl Fn() -> UnixStream, clients: usize, messages: usize) -> usize {
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let stream = connect();
            thread::spawn(move || echo_client(stream, 5000 + i as u64, messages))
        })
        .collect();
    let mut bytes = 0;
    let mut failures = Vec::new();
    for t in threads {
        match t.join().expect("client thread panicked") {
            Ok(n) => bytes += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} client(s) failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    bytes
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

fn stop(server: &mut ServerProcess) {
    let status = server
        .interrupt_and_wait(SIGINT_EXIT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "exit status after SIGINT: {status}");
}

fn echo_on_loops(test: &str, loops: &str) {
    let dir = SocketDir::new(test);
    let path = dir.path();
    let mut server = start_echo(&path, loops);
    // 50 connections x 30 messages of random size in random fragments.
    let bytes = run_clients(|| connect(&path), 50, 30);
    assert!(bytes > 0);
    stop(&mut server);
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
    stop(&mut server);
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
    let connect = || {
        let s = UnixStream::connect_addr(&addr).expect("connect abstract");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    };
    run_clients(connect, 10, 10);
    stop(&mut server);
}

#[test]
fn stale_socket_file_is_reused() {
    let dir = SocketDir::new("stale");
    let path = dir.path();
    // A socket file nobody listens on any more (what a crashed server leaves behind).
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind stale"));
    assert!(path.exists());
    let mut server = start_echo(&path, "1");
    run_clients(|| connect(&path), 2, 5);
    stop(&mut server);
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
    run_clients(|| connect(&path), 2, 5);
    stop(&mut first);
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
    stop(&mut server);
    stop_flag.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer thread");
    }
    assert!(!path.exists(), "the socket file is removed on stop");
}
