//! End to end: the reference servers (`ref-tokio-echo`, `ref-mio-echo`) bind port 0, announce
//! it, echo every byte for many concurrent connections and large payloads, and exit 0 promptly
//! on SIGINT and SIGTERM even with connections open.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const SERVERS: [(&str, &str); 2] = [
    ("ref-tokio-echo", "--workers"),
    ("ref-mio-echo", "--threads"),
];

/// A running reference server, killed on drop if the test fails first.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start(name: &str, loops_flag: &str, loops: u32) -> Server {
    let mut child = Command::new(common::binary(name))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            loops_flag,
            &loops.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let (sender, receiver) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = receiver
        .recv_timeout(Duration::from_secs(15))
        .unwrap_or_else(|_| panic!("{name} did not announce its address"));
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("{name} printed {line:?}"));
    Server { child, addr }
}

fn stop(mut server: Server, signal: i32, name: &str) {
    let asked = Instant::now();
    // SAFETY: our own child, not yet reaped (we hold the `Child`).
    unsafe {
        libc::kill(server.child.id() as libc::pid_t, signal);
    }
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            assert!(
                status.success(),
                "{name} exited with {status} after signal {signal}"
            );
            return;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{name} still running 2 s after signal {signal}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn echo_check(addr: SocketAddr, seed: u8, len: usize) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let payload: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    // Write from another thread: a payload larger than the socket buffers would otherwise
    // deadlock against a server that (correctly) stops reading while it cannot write.
    let mut writer = stream.try_clone().expect("clone");
    let sent = payload.clone();
    let writing = thread::spawn(move || writer.write_all(&sent));
    let mut received = vec![0u8; len];
    stream.read_exact(&mut received).expect("echo arrives");
    writing.join().expect("writer thread").expect("write");
    assert!(received == payload, "echo differs from what was sent");
}

#[test]
fn reference_servers_echo_many_connections_and_large_payloads() {
    for (name, flag) in SERVERS {
        for loops in [1, 3] {
            let server = start(name, flag, loops);
            let addr = server.addr;
            let clients: Vec<_> = (0..24u8)
                .map(|seed| thread::spawn(move || echo_check(addr, seed, 1 + seed as usize * 997)))
                .collect();
            for client in clients {
                client.join().expect("client thread");
            }
            echo_check(addr, 99, 4 * 1024 * 1024);
            stop(server, libc::SIGINT, name);
        }
    }
}

#[test]
fn reference_servers_exit_zero_on_sigint_and_sigterm_with_connections_open() {
    for (name, flag) in SERVERS {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            let server = start(name, flag, 2);
            let open: Vec<TcpStream> = (0..8)
                .map(|_| TcpStream::connect(server.addr).expect("connect"))
                .collect();
            // One connection mid-conversation.
            echo_check(server.addr, 1, 100);
            // Signal right after the announcement too: handlers are installed before it.
            stop(server, signal, name);
            drop(open);
        }
        let immediate = start(name, flag, 1);
        stop(immediate, libc::SIGINT, name);
    }
}
