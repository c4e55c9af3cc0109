//! `gev-http`: a plaintext HTTP/1.1 keep-alive server on the gev reactor, the reference server
//! for comparing `loadgen --framing http` with `wrk`.
//!
//! The whole HTTP layer is one [`Protocol`] (`HttpProtocol`): `unpack` parses one request with
//! `httparse` from the connection's buffered input (pipelined requests are simply the next
//! call), `pack` writes a response whose head is a prebuilt constant, so the common case copies
//! ~120 bytes and allocates nothing. GET and POST (any path) answer `200 Hello, World!`, HEAD
//! the same head without a body, anything else 405. Bytes that are not HTTP get
//! `400 Bad Request` and the connection is closed once that answer is flushed; an oversized head
//! gets 431, an oversized body 413, a chunked request body 501. Other connections keep being
//! served.
//!
//! Prints `listening on ADDR` once bound and exits 0 within a second of SIGINT/SIGTERM.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use gev::example::{init_tracing, serve_until_signal, ExampleArgs};
use gev::{Conn, Handler, MessageOf, Protocol, ProtocolError, ReplyOf, Server, Unpacked};

#[derive(Debug, Parser)]
#[command(
    name = "gev-http",
    about = "Plaintext HTTP/1.1 keep-alive server on the gev reactor"
)]
struct Args {
    #[command(flatten)]
    common: ExampleArgs,
    /// Largest request head (request line + headers) in bytes; larger gets 431 and a close.
    #[arg(long, default_value_t = 16 * 1024)]
    max_head: usize,
    /// Largest request body in bytes; larger gets 413 and a close.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body: usize,
}

/// Headers accepted per request; more gets 431.
const MAX_HEADERS: usize = 64;
const BODY: &[u8] = b"Hello, World!";
const HELLO_KEEP_ALIVE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: gev\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n";
const HELLO_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: gev\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\n";

/// The request methods the server tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// One parsed request, borrowing the connection's input.
#[derive(Debug)]
struct Request<'a> {
    method: Method,
    #[allow(dead_code)] // kept for handlers that route; this server answers every path alike
    path: &'a str,
    keep_alive: bool,
    body: &'a [u8],
}

/// What the handler answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Response {
    /// 200 with the greeting (`head_only` for HEAD).
    Hello { close: bool, head_only: bool },
    /// 405 for methods other than GET, HEAD and POST.
    MethodNotAllowed { close: bool },
}

/// HTTP/1.1 request framing with the limits of the command line.
#[derive(Debug, Clone, Copy)]
struct HttpProtocol {
    max_head: usize,
    max_body: usize,
}

/// Append a complete error response that ends the connection.
fn error_response(out: &mut Vec<u8>, status: u16, reason: &str) {
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nServer: gev\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reason}",
        reason.len()
    );
}

/// Answer `status` and close: the reactor flushes `out` before closing on an `Err`.
fn reject<M>(
    out: &mut Vec<u8>,
    status: u16,
    reason: &str,
    why: String,
) -> Result<Unpacked<M>, ProtocolError> {
    error_response(out, status, reason);
    Err(ProtocolError::Malformed(why))
}

impl Protocol for HttpProtocol {
    type Decoder = ();
    type Encoder = ();
    type Message<'a> = Request<'a>;
    type Reply<'a> = Response;

    fn unpack<'a>(
        &self,
        _decoder: &'a mut (),
        _encoder: &mut (),
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Unpacked<Request<'a>>, ProtocolError> {
        let input: &'a [u8] = input;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let head_len = match request.parse(input) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if input.len() > self.max_head {
                    return reject(
                        out,
                        431,
                        "Request Header Fields Too Large",
                        format!("request head over {} bytes", self.max_head),
                    );
                }
                return Ok(Unpacked::Incomplete);
            }
            Err(httparse::Error::TooManyHeaders) => {
                return reject(
                    out,
                    431,
                    "Request Header Fields Too Large",
                    format!("more than {MAX_HEADERS} headers"),
                )
            }
            Err(e) => return reject(out, 400, "Bad Request", format!("not HTTP/1.x: {e}")),
        };
        if head_len > self.max_head {
            return reject(
                out,
                431,
                "Request Header Fields Too Large",
                format!("request head of {head_len} bytes"),
            );
        }
        let method = match request.method {
            Some("GET") => Method::Get,
            Some("HEAD") => Method::Head,
            Some("POST") => Method::Post,
            _ => Method::Other,
        };
        let path = request.path.unwrap_or("/");
        let http11 = request.version == Some(1);
        let mut keep_alive = http11;
        let mut content_length: Option<usize> = None;
        for header in request.headers.iter() {
            if header.name.eq_ignore_ascii_case("content-length") {
                let parsed = std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
                match (parsed, content_length) {
                    (None, _) => {
                        return reject(out, 400, "Bad Request", "bad Content-Length".into())
                    }
                    (Some(a), Some(b)) if a != b => {
                        return reject(
                            out,
                            400,
                            "Bad Request",
                            "conflicting Content-Length headers".into(),
                        )
                    }
                    (Some(n), _) => content_length = Some(n),
                }
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                return reject(
                    out,
                    501,
                    "Not Implemented",
                    "chunked request bodies are not supported".into(),
                );
            } else if header.name.eq_ignore_ascii_case("connection") {
                for token in header.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    }
                }
            }
        }
        let body_len = content_length.unwrap_or(0);
        if body_len > self.max_body {
            return reject(
                out,
                413,
                "Content Too Large",
                format!("body of {body_len} bytes over {}", self.max_body),
            );
        }
        let end = head_len + body_len;
        if input.len() < end {
            return Ok(Unpacked::Incomplete);
        }
        Ok(Unpacked::Message {
            consumed: end,
            message: Request {
                method,
                path,
                keep_alive,
                body: &input[head_len..end],
            },
        })
    }

    #[inline]
    fn pack(&self, _encoder: &mut (), reply: Response, out: &mut Vec<u8>) {
        match reply {
            Response::Hello { close, head_only } => {
                out.extend_from_slice(if close { HELLO_CLOSE } else { HELLO_KEEP_ALIVE });
                if !head_only {
                    out.extend_from_slice(BODY);
                }
            }
            Response::MethodNotAllowed { close } => {
                let connection = if close { "Connection: close\r\n" } else { "" };
                let _ = write!(
                    out,
                    "HTTP/1.1 405 Method Not Allowed\r\nServer: gev\r\nAllow: GET, HEAD, POST\r\nContent-Length: 0\r\n{connection}\r\n"
                );
            }
        }
    }
}

/// Answers every request; closes after the answer when the client asked for it.
struct Hello;

impl Handler<HttpProtocol> for Hello {
    fn on_message<'a>(
        &self,
        conn: &mut Conn<'_, HttpProtocol>,
        request: MessageOf<'a, HttpProtocol>,
    ) -> Option<ReplyOf<'a, HttpProtocol>> {
        let close = !request.keep_alive;
        if close {
            // The reply below is still packed and flushed before the close.
            conn.close();
        }
        let _ = request.body;
        Some(match request.method {
            Method::Get | Method::Post => Response::Hello {
                close,
                head_only: false,
            },
            Method::Head => Response::Hello {
                close,
                head_only: true,
            },
            Method::Other => Response::MethodNotAllowed { close },
        })
    }

    fn on_close(&self, conn: &mut Conn<'_, HttpProtocol>, reason: gev::CloseReason) {
        if reason == gev::CloseReason::Protocol {
            tracing::debug!(peer = %conn.peer_addr(), "closed after a bad request");
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing();
    let protocol = HttpProtocol {
        max_head: args.max_head,
        max_body: args.max_body,
    };
    let options = args.common.server_options();
    let server = Server::new(options, protocol, Hello)
        .with_context(|| format!("starting gev-http on {}", args.common.addr()))?;
    serve_until_signal(server)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn protocol() -> HttpProtocol {
        HttpProtocol {
            max_head: 1024,
            max_body: 64,
        }
    }

    /// Method, keep-alive and body of one unpacked request.
    type Seen = (Method, bool, Vec<u8>);

    /// Unpack every request in `stream` fed in pieces cut at `cuts`, as the loop does; on a
    /// rejection, the bytes the protocol queued for the client.
    fn unpack_all(stream: &[u8], cuts: &[usize]) -> Result<Vec<Seen>, Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut buffer = Vec::new();
        let mut requests = Vec::new();
        let mut start = 0;
        for cut in cuts {
            buffer.extend_from_slice(&stream[start..cut]);
            start = cut;
            loop {
                let mut out = Vec::new();
                let mut working = buffer.clone();
                match protocol().unpack(&mut (), &mut (), &mut working, &mut out) {
                    Ok(Unpacked::Incomplete) => break,
                    Ok(Unpacked::Skip { consumed }) => {
                        buffer.drain(..consumed);
                    }
                    Ok(Unpacked::Message { consumed, message }) => {
                        requests.push((message.method, message.keep_alive, message.body.to_vec()));
                        buffer.drain(..consumed);
                    }
                    Err(_) => return Err(out),
                }
            }
        }
        Ok(requests)
    }

    #[test]
    fn parses_pipelined_requests() {
        let stream = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n";
        let requests = unpack_all(stream, &[]).unwrap();
        assert_eq!(
            requests,
            vec![
                (Method::Get, true, vec![]),
                (Method::Post, true, b"abc".to_vec()),
                (Method::Get, false, vec![]),
            ]
        );
    }

    #[test]
    fn garbage_gets_400() {
        let out = unpack_all(b"\x16\x03\x01 hello there\r\n\r\n", &[]).unwrap_err();
        assert!(out.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{out:?}");
    }

    #[test]
    fn limits_give_their_status() {
        let big_body = b"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n";
        assert!(unpack_all(big_body, &[])
            .unwrap_err()
            .starts_with(b"HTTP/1.1 413"));
        let long_head = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 2000]].concat();
        assert!(unpack_all(&long_head, &[])
            .unwrap_err()
            .starts_with(b"HTTP/1.1 431"));
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(unpack_all(chunked, &[])
            .unwrap_err()
            .starts_with(b"HTTP/1.1 501"));
        let conflicting = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(unpack_all(conflicting, &[])
            .unwrap_err()
            .starts_with(b"HTTP/1.1 400"));
    }

    #[test]
    fn connection_header_decides_keep_alive() {
        let close = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
        assert!(!unpack_all(close, &[]).unwrap()[0].1);
        let keep = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
        assert!(unpack_all(keep, &[]).unwrap()[0].1);
    }

    #[test]
    fn packs_the_greeting() {
        let mut out = Vec::new();
        protocol().pack(
            &mut (),
            Response::Hello {
                close: false,
                head_only: false,
            },
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.ends_with("\r\n\r\nHello, World!"));
        assert!(!text.contains("Connection: close"));
    }

    proptest! {
        #[test]
        fn any_fragmentation_gives_the_same_requests(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut stream = Vec::new();
            for body in &bodies {
                if body.is_empty() {
                    stream.extend_from_slice(b"GET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n");
                } else {
                    stream.extend_from_slice(format!("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
                    stream.extend_from_slice(body);
                }
            }
            let requests = unpack_all(&stream, &cuts).unwrap();
            let got: Vec<Vec<u8>> = requests.into_iter().map(|(_, _, b)| b).collect();
            prop_assert_eq!(got, bodies);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = unpack_all(&bytes, &[]);
        }
    }
}
