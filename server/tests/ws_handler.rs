//! The `WsHandler` API end to end, with the server in this process and a `tungstenite` client:
//! open/message/close callbacks, per-connection context, sends from another thread through the
//! connection handle, the handshake hook (reject by path, pick a subprotocol), server-initiated
//! close, and the handshake time limit.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gev::ws::{
    HandshakeDecision, HandshakeRequest, WebSocketConfig, WsAdapter, WsClose, WsConn, WsData,
    WsHandler, WsProtocol, WsReply,
};
use gev::{Server, ServerHandle, ServerOptions};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

/// Records every callback; replies with the message count so far and the upper-cased text.
#[derive(Default)]
struct Recorder {
    events: Arc<Mutex<Vec<String>>>,
}

impl WsHandler for Recorder {
    fn on_open(&self, conn: &mut WsConn<'_, '_>, request: &HandshakeRequest) {
        self.events
            .lock()
            .unwrap()
            .push(format!("open {}", request.path));
        conn.set_context(0usize);
        // A send from another thread, through the handle.
        let handle = conn.handle();
        std::thread::spawn(move || {
            let _ = handle.send(WsReply::text("pushed from a thread"));
        });
    }

    fn on_message<'a>(
        &self,
        conn: &mut WsConn<'_, '_>,
        message: WsData<'a>,
    ) -> Option<WsReply<'a>> {
        let count = conn.context_mut::<usize>().map(|c| {
            *c += 1;
            *c
        });
        match message {
            WsData::Text("close me") => {
                conn.close(4000, "you asked");
                None
            }
            WsData::Text(text) => Some(WsReply::Text(Cow::Owned(format!(
                "{} #{}",
                text.to_uppercase(),
                count.unwrap_or(0)
            )))),
            WsData::Binary(bytes) => Some(WsReply::Binary(Cow::Borrowed(bytes))),
        }
    }

    fn on_close(&self, _conn: &mut WsConn<'_, '_>, close: WsClose) {
        self.events.lock().unwrap().push(format!("close {close:?}"));
    }
}

fn start(
    config: WebSocketConfig,
    protocol: WsProtocol,
) -> (ServerHandle<WsProtocol>, Arc<Mutex<Vec<String>>>) {
    let recorder = Recorder::default();
    let events = Arc::clone(&recorder.events);
    let options = ServerOptions::new(SocketAddr::from(([127, 0, 0, 1], 0))).loops(1);
    let server = Server::new(options, protocol, WsAdapter::new(recorder, &config)).expect("server");
    (server.start().expect("start"), events)
}

fn wait_for(events: &Mutex<Vec<String>>, what: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = events.lock().unwrap().clone();
        if now.iter().any(|e| e.contains(what)) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "no event containing {what:?} within 10 s: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

type Client = tungstenite::WebSocket<TcpStream>;

fn connect(
    addr: SocketAddr,
    path: &str,
    protocols: Option<&str>,
) -> Result<Client, Box<tungstenite::Error>> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!("ws://{addr}{path}")
        .into_client_request()
        .map_err(Box::new)?;
    if let Some(p) = protocols {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().expect("header"));
    }
    tungstenite::client(request, stream)
        .map(|(ws, _)| ws)
        .map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => Box::new(e),
            tungstenite::HandshakeError::Interrupted(_) => panic!("blocking handshake interrupted"),
        })
}

#[test]
fn callbacks_context_and_cross_thread_send() {
    let config = WebSocketConfig::default();
    let (server, events) = start(config.clone(), WsProtocol::new(config));
    let mut ws = connect(server.local_addr(), "/room/1", None).expect("handshake");
    assert_eq!(
        ws.read().expect("pushed"),
        Message::text("pushed from a thread")
    );
    ws.send(Message::text("hello")).expect("send");
    assert_eq!(ws.read().expect("reply"), Message::text("HELLO #1"));
    ws.send(Message::text("again")).expect("send");
    assert_eq!(ws.read().expect("reply"), Message::text("AGAIN #2"));
    ws.close(None).expect("close");
    while ws.read().is_ok() {}
    let seen = wait_for(&events, "close");
    assert_eq!(seen[0], "open /room/1");
    assert_eq!(seen[1], r#"close Peer { code: None, reason: "" }"#);
    assert_eq!(seen.len(), 2, "on_close exactly once: {seen:?}");
    server.stop().expect("stop");
}

#[test]
fn server_initiated_close_waits_for_the_peer() {
    let config = WebSocketConfig::default();
    let (server, events) = start(config.clone(), WsProtocol::new(config));
    let mut ws = connect(server.local_addr(), "/", None).expect("handshake");
    let _pushed = ws.read().expect("pushed");
    ws.send(Message::text("close me")).expect("send");
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Library(4000)),
        other => panic!("expected Close 4000, got {other:?}"),
    }
    // tungstenite answers the Close; the server then closes TCP.
    loop {
        match ws.read() {
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("{e}"),
            Ok(_) => {}
        }
    }
    let seen = wait_for(&events, "close");
    assert!(
        seen.iter().any(|e| e.contains("code: Some(4000)")),
        "{seen:?}"
    );
    server.stop().expect("stop");
}

#[test]
fn hook_rejects_by_path_and_chooses_subprotocol() {
    let config = WebSocketConfig::default();
    let protocol = WsProtocol::new(config.clone()).with_hook(|request: &HandshakeRequest| {
        if request.path == "/forbidden" {
            return HandshakeDecision::Reject {
                status: 403,
                reason: "not for you".into(),
            };
        }
        HandshakeDecision::Accept {
            subprotocol: request
                .subprotocols
                .iter()
                .find(|p| *p == "chat.v2")
                .cloned(),
            headers: vec![("X-Served-By".into(), "gev".into())],
        }
    });
    let (server, _events) = start(config, protocol);
    match connect(server.local_addr(), "/forbidden", None).map_err(|e| *e) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        Err(other) => panic!("expected HTTP 403, got {other:?}"),
        Ok(_) => panic!("expected HTTP 403, got an upgrade"),
    }
    let stream = TcpStream::connect(server.local_addr()).expect("connect");
    let mut request = format!("ws://{}/chat", server.local_addr())
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "chat.v1,chat.v2".parse().expect("header"),
    );
    let (_ws, response) = tungstenite::client(request, stream).expect("handshake");
    assert_eq!(response.headers()["Sec-WebSocket-Protocol"], "chat.v2");
    assert_eq!(response.headers()["X-Served-By"], "gev");
    server.stop().expect("stop");
}

#[test]
fn handshake_time_limit_closes_silent_connections() {
    let config = WebSocketConfig::default().handshake_timeout(Duration::from_millis(300));
    let (server, events) = start(config.clone(), WsProtocol::new(config));
    let mut stream = TcpStream::connect(server.local_addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: slow\r\n")
        .expect("write");
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = stream.read_to_end(&mut rest);
    assert!(read.is_ok(), "expected EOF, got {read:?}");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "closed by the limit, not the read timeout"
    );
    assert!(
        events.lock().unwrap().is_empty(),
        "no on_open/on_close for a failed handshake"
    );
    server.stop().expect("stop");
}
