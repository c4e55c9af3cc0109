//! Request framing: [`parse`] takes at most one HTTP/1.1 request from the front of the
//! connection's buffered input. A partial head or body is `Incomplete` (not an error); bytes
//! that are not HTTP, a head over the limit, a body over the limit or a chunked body are
//! answered with their error reply (appended to the output) and an error that closes the
//! connection once that reply is flushed.

use crate::protocol::Unpacked;
use crate::ProtocolError;

use super::protocol::MAX_HEADERS;
use super::response::error_response;

/// The request methods the module tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD` (the reply carries the head only)
    Head,
    /// `POST`
    Post,
    /// Any other method.
    Other,
}

/// One parsed request, borrowing the connection's input.
#[derive(Debug)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The request target as sent (e.g. `/plaintext?x=1`).
    pub path: &'a str,
    /// Whether the client wants the connection kept open after the reply (HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// The body (`Content-Length` bytes).
    pub body: &'a [u8],
}

/// Answers `status` and fails: the reactor flushes `out` before closing on an `Err`.
fn reject<M>(
    out: &mut Vec<u8>,
    status: u16,
    reason: &str,
    why: String,
) -> Result<Unpacked<M>, ProtocolError> {
    error_response(out, status, reason);
    Err(ProtocolError::Malformed(why))
}

/// Parses one request from the front of `input` with the given limits.
pub(crate) fn parse<'a>(
    input: &'a [u8],
    max_head: usize,
    max_body: usize,
    out: &mut Vec<u8>,
) -> Result<Unpacked<Request<'a>>, ProtocolError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head_len = match request.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if input.len() > max_head {
                return reject(
                    out,
                    431,
                    "Request Header Fields Too Large",
                    format!("request head over {max_head} bytes"),
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
    if head_len > max_head {
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
    let mut keep_alive = request.version == Some(1);
    let mut content_length: Option<usize> = None;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let parsed = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            match (parsed, content_length) {
                (None, _) => return reject(out, 400, "Bad Request", "bad Content-Length".into()),
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
    if body_len > max_body {
        return reject(
            out,
            413,
            "Content Too Large",
            format!("body of {body_len} bytes over {max_body}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Method, keep-alive, path and body of one unpacked request.
    type Seen = (Method, bool, String, Vec<u8>);

    /// Parses every request in `stream` fed in pieces cut at `cuts`, as the loop does; on a
    /// rejection, the bytes queued for the client.
    fn parse_all(stream: &[u8], cuts: &[usize]) -> Result<Vec<Seen>, Vec<u8>> {
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
                let working = buffer.clone();
                match parse(&working, 1024, 64, &mut out) {
                    Ok(Unpacked::Incomplete) => break,
                    Ok(Unpacked::Skip { consumed }) => {
                        buffer.drain(..consumed);
                    }
                    Ok(Unpacked::Message { consumed, message }) => {
                        requests.push((
                            message.method,
                            message.keep_alive,
                            message.path.to_string(),
                            message.body.to_vec(),
                        ));
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
        let stream = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /q HTTP/1.0\r\n\r\n";
        let requests = parse_all(stream, &[]).unwrap();
        assert_eq!(
            requests,
            vec![
                (Method::Get, true, "/".into(), vec![]),
                (Method::Post, true, "/p".into(), b"abc".to_vec()),
                (Method::Get, false, "/q".into(), vec![]),
            ]
        );
    }

    #[test]
    fn garbage_gets_400() {
        let out = parse_all(b"\x16\x03\x01 hello there\r\n\r\n", &[]).unwrap_err();
        assert!(out.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{out:?}");
    }

    #[test]
    fn limits_give_their_status() {
        let big_body = b"POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n";
        assert!(parse_all(big_body, &[])
            .unwrap_err()
            .starts_with(b"HTTP/1.1 413"));
        let long_head = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 2000]].concat();
        assert!(parse_all(&long_head, &[])
            .unwrap_err()
            .starts_with(b"HTTP/1.1 431"));
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(parse_all(chunked, &[])
            .unwrap_err()
            .starts_with(b"HTTP/1.1 501"));
        let conflicting = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(parse_all(conflicting, &[])
            .unwrap_err()
            .starts_with(b"HTTP/1.1 400"));
    }

    #[test]
    fn connection_header_decides_keep_alive() {
        let close = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
        assert!(!parse_all(close, &[]).unwrap()[0].1);
        let keep = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
        assert!(parse_all(keep, &[]).unwrap()[0].1);
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
            let requests = parse_all(&stream, &cuts).unwrap();
            let got: Vec<Vec<u8>> = requests.into_iter().map(|(_, _, _, b)| b).collect();
            prop_assert_eq!(got, bodies);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_all(&bytes, &[]);
        }
    }
}
