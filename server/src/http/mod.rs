//! HTTP/1.1 on the reactor, as a [`Protocol`](crate::Protocol): [`HttpProtocol`] frames
//! requests (`request.rs`: one request per `unpack`, parsed with `httparse` straight from the
//! connection's buffered input, so pipelined requests are simply the next call), a
//! [`Handler`](crate::Handler) answers each with a [`Response`] (`response.rs`: packed into the
//! output buffer; the benchmark greeting is a prebuilt constant, so the common case copies ~120
//! bytes and allocates nothing), and keep-alive follows the request (`Connection` header and
//! HTTP version; the handler closes after answering when the client asked for it, see
//! [`HelloWorld`]). Malformed input gets its error reply and a close (`400`, `431`, `413`,
//! `501`); only that connection is affected.
//!
//! Because it is an ordinary protocol it runs unchanged over TLS (https): set
//! [`ServerOptions::tls`](crate::ServerOptions::tls), with `alpn_protocols = [b"http/1.1"]`.
//!
//! ```
//! use gev::http::{HelloWorld, HttpProtocol};
//! use gev::{Server, ServerOptions};
//! use std::io::{Read, Write};
//!
//! let options = ServerOptions::new("127.0.0.1:0".parse().unwrap()).loops(1);
//! let server = Server::new(options, HttpProtocol::default(), HelloWorld)?;
//! let addr = server.local_addr();
//! let running = server.start()?;
//! let mut client = std::net::TcpStream::connect(addr).unwrap();
//! client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
//! let mut reply = String::new();
//! client.read_to_string(&mut reply).unwrap();
//! assert!(reply.starts_with("HTTP/1.1 200 OK\r\n") && reply.ends_with("Hello, World!"));
//! running.stop()?;
//! # Ok::<(), gev::Error>(())
//! ```

mod hello;
mod protocol;
mod request;
mod response;

pub use hello::HelloWorld;
pub use protocol::{HttpProtocol, MAX_HEADERS};
pub use request::{Method, Request};
pub use response::Response;
