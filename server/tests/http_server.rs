//! End-to-end tests of `gev-http` over real sockets: keep-alive and pipelined requests, POST
//! bodies, `Connection: close`, 400 and close on garbage while other clients keep being served,
//! and a clean exit on SIGINT.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::ServerProcess;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: gev\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

fn start() -> ServerProcess {
    ServerProcess::start_with(
        "gev-http",
        &["--host", "127.0.0.1", "--port", "0", "--loops", "2"],
        &[("RUST_LOG", "warn")],
    )
}

fn connect(server: &ServerProcess) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream
}

/// Read until `len` bytes arrived (or EOF/timeout), returning what came.
fn read_len(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    while got.len() < len {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
        }
    }
    got
}

/// Read until the peer closes (or the timeout), returning everything.
fn read_to_close(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

#[test]
fn keep_alive_and_pipelining() {
    let server = start();
    let mut client = connect(&server);
    for _ in 0..3 {
        client
            .write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        assert_eq!(read_len(&mut client, RESPONSE.len()), RESPONSE);
    }
    // 16 pipelined requests in one write, split oddly across two more writes.
    let mut batch = Vec::new();
    for i in 0..16 {
        if i % 2 == 0 {
            batch.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        } else {
            batch.extend_from_slice(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            );
        }
    }
    let (a, b) = batch.split_at(batch.len() / 3);
    client.write_all(a).expect("write");
    std::thread::sleep(Duration::from_millis(20));
    client.write_all(b).expect("write");
    let got = read_len(&mut client, RESPONSE.len() * 16);
    assert_eq!(got, RESPONSE.repeat(16));
}

#[test]
fn connection_close_is_honoured() {
    let server = start();
    let mut client = connect(&server);
    client
        .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .expect("write");
    let (got, closed) = read_to_close(&mut client);
    assert!(closed, "server kept the connection open");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(text.ends_with("Hello, World!"), "{text}");
}

#[test]
fn garbage_gets_400_and_close_while_others_are_served() {
    let server = start();
    let mut good = connect(&server);
    good.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    assert_eq!(read_len(&mut good, RESPONSE.len()), RESPONSE);

    let mut bad = connect(&server);
    bad.write_all(b"\x16\x03\x01\x02\x00 this is not http\r\n\r\n")
        .expect("write");
    let (got, closed) = read_to_close(&mut bad);
    assert!(closed, "server kept the bad connection open");
    assert!(
        got.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    let mut other = connect(&server);
    other
        .write_all(b"DELETE / HTTP/1.1\r\n\r\n")
        .expect("write");
    let reply = read_len(&mut other, 20);
    assert!(
        reply.starts_with(b"HTTP/1.1 405"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    good.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    assert_eq!(read_len(&mut good, RESPONSE.len()), RESPONSE);
}

#[test]
fn exits_zero_on_sigint() {
    let mut server = start();
    let mut client = connect(&server);
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    assert_eq!(read_len(&mut client, RESPONSE.len()), RESPONSE);
    let status = server
        .interrupt_and_wait(Duration::from_secs(5))
        .expect("exit after SIGINT");
    assert!(status.success(), "{status}");
}
