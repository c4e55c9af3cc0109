//! Compile test for the handler signatures users write first: `on_message` with the protocol's
//! concrete types (`&'a [u8]`, `Cow<'a, [u8]>`, `Request<'a>`) must compile against
//! [`gev::Handler`] (it failed with rustc E0195 before the trait tied `'a` to `&'a self`), as
//! must the alias form with `&'a self` and a handler generic over the protocol. Each handler
//! then serves one real request so the test asserts behaviour, not only compilation.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use gev::http::{HttpProtocol, Request, Response};
use gev::{
    Conn, Handler, LengthPrefixed, MessageOf, Protocol, Raw, ReplyOf, Server, ServerOptions,
};

/// The plain signature with concrete types.
struct Plain;
impl Handler<Raw> for Plain {
    fn on_message<'a>(
        &self,
        _conn: &mut Conn<'_, Raw>,
        message: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        Some(Cow::Borrowed(message))
    }
}

/// The plain signature with every lifetime elided: the reply then borrows `self`.
struct Banner(Vec<u8>);
impl Handler<LengthPrefixed> for Banner {
    fn on_message(
        &self,
        _conn: &mut Conn<'_, LengthPrefixed>,
        _message: &[u8],
    ) -> Option<Cow<'_, [u8]>> {
        Some(Cow::Borrowed(&self.0))
    }
}

/// The alias form (a projection) needs `&'a self`.
struct Aliased;
impl Handler<Raw> for Aliased {
    fn on_message<'a>(
        &'a self,
        _conn: &mut Conn<'_, Raw>,
        message: MessageOf<'a, Raw>,
    ) -> Option<ReplyOf<'a, Raw>> {
        Some(Cow::Owned(message.to_ascii_uppercase()))
    }
}

/// Generic over the protocol.
struct Silent;
impl<P: Protocol> Handler<P> for Silent {
    fn on_message<'a>(
        &'a self,
        _conn: &mut Conn<'_, P>,
        _message: P::Message<'a>,
    ) -> Option<P::Reply<'a>> {
        None
    }
}

/// The HTTP module's types written plainly.
struct Teapot;
impl Handler<HttpProtocol> for Teapot {
    fn on_message<'a>(
        &self,
        _conn: &mut Conn<'_, HttpProtocol>,
        request: Request<'a>,
    ) -> Option<Response<'a>> {
        Some(Response::Full {
            status: 418,
            reason: "I'm a teapot",
            content_type: "text/plain",
            body: Cow::Borrowed(request.path.as_bytes()),
            close: false,
            head_only: false,
        })
    }
}

fn exchange<P: Protocol, H: Handler<P>>(
    protocol: P,
    handler: H,
    request: &[u8],
    reply_len: usize,
) -> Vec<u8> {
    let options = ServerOptions::new("127.0.0.1:0".parse().expect("addr")).loops(1);
    let server = Server::new(options, protocol, handler).expect("server");
    let addr = server.local_addr();
    let running = server.start().expect("start");
    let mut client = TcpStream::connect(addr).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    client.write_all(request).expect("write");
    let mut reply = vec![0; reply_len];
    client.read_exact(&mut reply).expect("read reply");
    running.stop().expect("stop");
    reply
}

#[test]
fn plain_signature_echoes() {
    assert_eq!(exchange(Raw, Plain, b"plain", 5), b"plain");
}

#[test]
fn elided_signature_replies_with_a_borrow_of_the_handler() {
    let reply = exchange(
        LengthPrefixed::new(1024),
        Banner(b"hi".to_vec()),
        &[0, 0, 0, 1, b'x'],
        6,
    );
    assert_eq!(reply, [0, 0, 0, 2, b'h', b'i']);
}

#[test]
fn alias_signature_with_self_lifetime_compiles() {
    assert_eq!(exchange(Raw, Aliased, b"shout", 5), b"SHOUT");
}

#[test]
fn generic_handler_stays_silent() {
    let options = ServerOptions::new("127.0.0.1:0".parse().expect("addr")).loops(1);
    let server = Server::new(options, Raw, Silent).expect("server");
    let addr = server.local_addr();
    let running = server.start().expect("start");
    let mut client = TcpStream::connect(addr).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    client.write_all(b"anyone?").expect("write");
    let mut byte = [0; 1];
    let err = client.read(&mut byte).expect_err("no reply expected");
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    running.stop().expect("stop");
}

#[test]
fn http_plain_signature_answers() {
    let reply = exchange(
        HttpProtocol::default(),
        Teapot,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        12,
    );
    assert_eq!(&reply, b"HTTP/1.1 418");
}
