//! Interop of `gev-websocket` with real clients over real sockets: Python `websockets` (asyncio,
//! permessage-deflate on by default), Python `websocket-client` (sync), the Rust `tungstenite`
//! crate, and raw bytes for the HTTP refusals.

mod ws_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Message};
use ws_common::{binary, venv_bin, ServerProcess};

fn server(args: &[&str]) -> ServerProcess {
    let mut all = vec!["--loops", "1"];
    all.extend_from_slice(args);
    ServerProcess::start(&binary("gev-websocket"), &all)
}

/// Runs a Python script with the venv's interpreter, URL as argv[1]; fails the test on a non-zero
/// exit, returns stdout.
fn python(script: &str, url: &str) -> String {
    let output = Command::new(venv_bin("python"))
        .args(["-c", script, url])
        .output()
        .expect("running the venv python");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "python client failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

const WEBSOCKETS_CLIENT: &str = r#"
import asyncio, sys
from websockets.asyncio.client import connect

async def main():
    async with asyncio.timeout(20):
        async with connect(sys.argv[1], max_size=None) as ws:
            print("extensions", ws.response.headers.get("Sec-WebSocket-Extensions"))
            await ws.send("hello κόσμε")
            assert await ws.recv() == "hello κόσμε"
            await ws.send(b"\x00\x01\x02")
            assert await ws.recv() == b"\x00\x01\x02"
            big = "x" * (3 << 20) + "y"
            await ws.send(big)
            assert await ws.recv() == big
            await ws.send(["frag", "mented"])
            assert await ws.recv() == "fragmented"
            pong = await ws.ping(b"are you there")
            await pong
            for i in range(200):
                await ws.send(f"msg {i}")
            for i in range(200):
                assert await ws.recv() == f"msg {i}"
        print("close", ws.close_code)

asyncio.run(main())
"#;

#[test]
fn python_websockets_client_with_permessage_deflate() {
    let server = server(&[]);
    let out = python(WEBSOCKETS_CLIENT, &format!("ws://{}/echo", server.addr));
    assert!(out.contains("extensions permessage-deflate"), "{out}");
    assert!(out.contains("close 1000"), "{out}");
}

#[test]
fn python_websockets_client_without_deflate() {
    let server = server(&["--no-deflate"]);
    let out = python(WEBSOCKETS_CLIENT, &format!("ws://{}/", server.addr));
    assert!(out.contains("extensions None"), "{out}");
    assert!(out.contains("close 1000"), "{out}");
}

const WEBSOCKET_CLIENT: &str = r#"
import sys, websocket
ws = websocket.create_connection(sys.argv[1], timeout=20)
ws.send("hello")
assert ws.recv() == "hello"
ws.send_binary(b"\xff\x00" * 40000)
assert ws.recv() == b"\xff\x00" * 40000
ws.ping("p")
opcode, frame = ws.recv_data_frame(True)
assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"p", (opcode, frame.data)
ws.send_close(status=4001, reason=b"done")
opcode, frame = ws.recv_data_frame(True)
assert opcode == websocket.ABNF.OPCODE_CLOSE, opcode
print("close", int.from_bytes(frame.data[:2], "big"))
ws.sock.settimeout(5)
assert ws.sock.recv(1) == b"", "server must close TCP after the closing handshake"
print("eof")
"#;

#[test]
fn python_websocket_client_ping_and_close() {
    let server = server(&[]);
    let out = python(WEBSOCKET_CLIENT, &format!("ws://{}/", server.addr));
    assert!(
        out.contains("close 4001"),
        "the close code is echoed: {out}"
    );
    assert!(out.contains("eof"), "{out}");
}

#[test]
fn rust_tungstenite_client() {
    let server = server(&[]);
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let (mut ws, response) =
        tungstenite::client(format!("ws://{}/", server.addr), stream).expect("handshake");
    assert_eq!(response.status(), 101);
    ws.send(Message::text("tungstenite")).expect("send");
    assert_eq!(ws.read().expect("read"), Message::text("tungstenite"));
    let payload: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    ws.send(Message::binary(payload.clone())).expect("send");
    assert_eq!(ws.read().expect("read"), Message::binary(payload));
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .expect("close");
    loop {
        match ws.read() {
            Ok(Message::Close(frame)) => {
                assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("closing handshake: {e}"),
        }
    }
    assert!(server.interrupt().success());
}

/// Sends raw bytes and returns what the server answers before closing.
fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request).expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn refusals_over_the_wire() {
    let server = server(&[]);
    let wrong_version =
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    let response = raw_exchange(server.addr, wrong_version.as_bytes());
    assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
    assert!(
        response.contains("Sec-WebSocket-Version: 13\r\n"),
        "{response}"
    );
    let response = raw_exchange(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    let response = raw_exchange(server.addr, b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    // The server keeps serving everyone else.
    let stream = TcpStream::connect(server.addr).expect("connect");
    let (mut ws, _) =
        tungstenite::client(format!("ws://{}/", server.addr), stream).expect("handshake");
    ws.send(Message::text("still here")).expect("send");
    assert_eq!(ws.read().expect("read"), Message::text("still here"));
}

#[test]
fn protocol_error_sends_1002_and_closes() {
    let server = server(&[]);
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let upgrade = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(upgrade.as_bytes()).expect("write");
    // An unmasked text frame: a client must mask (RFC 6455 5.1).
    stream.write_all(&[0x81, 0x02, b'h', b'i']).expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("101 response")
        + 4;
    assert!(response.starts_with(b"HTTP/1.1 101 "));
    let close = &response[end..];
    assert_eq!(close[0], 0x88, "a Close frame follows: {close:02x?}");
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1002);
}
