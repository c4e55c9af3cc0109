//! HTTP/1.1 framing: keep-alive GET or POST requests, responses parsed with `httparse` and cut by
//! Content-Length or by chunked transfer coding.
//!
//! The request head is built once per connection and copied for every request. A response is
//! decoded in steps that survive partial input: the head (parsed once, then remembered), then the
//! body. For a chunked body the codec remembers how far it has walked the chunk list, so bytes
//! already checked are not scanned again when more arrive.

use super::{Decoded, FrameError, FramingOptions, HttpMethod};

/// Most headers accepted in one response.
const MAX_HEADERS: usize = 64;
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Per-connection HTTP state.
#[derive(Debug)]
pub struct HttpCodec {
    /// `METHOD path HTTP/1.1\r\nHost: ...\r\n` without the final blank line.
    request_head: Vec<u8>,
    method: HttpMethod,
    max_reply: usize,
    /// The head of the response being decoded, once parsed.
    head: Option<Head>,
}

#[derive(Debug, Clone, Copy)]
struct Head {
    len: usize,
    ok: bool,
    body: Body,
}

#[derive(Debug, Clone, Copy)]
enum Body {
    /// Exactly this many bytes follow the head.
    Length(usize),
    /// Chunked; `next` is the offset (from the response start) of the next chunk-size line,
    /// `total` the body bytes seen so far.
    Chunked { next: usize, total: usize },
}

impl HttpCodec {
    pub fn new(options: &FramingOptions) -> HttpCodec {
        let method = match options.http_method {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        };
        HttpCodec {
            request_head: format!(
                "{method} {} HTTP/1.1\r\nHost: {}\r\n",
                options.path, options.host
            )
            .into_bytes(),
            method: options.http_method,
            max_reply: options.max_reply,
            head: None,
        }
    }

    /// Append one request; POST carries `payload` as its body, GET ignores it.
    #[inline]
    pub fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.request_head);
        match self.method {
            HttpMethod::Get => out.extend_from_slice(b"\r\n"),
            HttpMethod::Post => {
                out.extend_from_slice(b"Content-Length: ");
                push_decimal(payload.len(), out);
                out.extend_from_slice(b"\r\n\r\n");
                out.extend_from_slice(payload);
            }
        }
    }

    /// Decode at most one response from the front of `input`.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Decoded<'a>, FrameError> {
        let head = match self.head {
            Some(head) => head,
            None => match self.parse_head(input)? {
                HeadResult::Incomplete => return Ok(Decoded::Incomplete),
                HeadResult::Interim(consumed) => return Ok(Decoded::Skip { consumed }),
                HeadResult::Head(head) => {
                    self.head = Some(head);
                    head
                }
            },
        };
        match head.body {
            Body::Length(len) => {
                let end = head.len + len;
                if input.len() < end {
                    return Ok(Decoded::Incomplete);
                }
                self.head = None;
                Ok(Decoded::Reply {
                    consumed: end,
                    body: &input[head.len..end],
                    ok: head.ok,
                })
            }
            Body::Chunked {
                mut next,
                mut total,
            } => loop {
                match chunk_step(input, next, total, self.max_reply)? {
                    ChunkStep::Incomplete => {
                        self.head = Some(Head {
                            body: Body::Chunked { next, total },
                            ..head
                        });
                        return Ok(Decoded::Incomplete);
                    }
                    ChunkStep::Chunk { next: after, size } => {
                        next = after;
                        total += size;
                    }
                    ChunkStep::End { consumed } => {
                        self.head = None;
                        return Ok(Decoded::Reply {
                            consumed,
                            body: &[],
                            ok: head.ok,
                        });
                    }
                }
            },
        }
    }

    fn parse_head(&self, input: &[u8]) -> Result<HeadResult, FrameError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(input) {
            Ok(httparse::Status::Partial) => {
                if input.len() > MAX_HEAD {
                    return Err(FrameError::Malformed(format!(
                        "response head longer than {MAX_HEAD} bytes"
                    )));
                }
                return Ok(HeadResult::Incomplete);
            }
            Ok(httparse::Status::Complete(len)) => len,
            Err(e) => return Err(FrameError::Malformed(format!("bad HTTP response: {e}"))),
        };
        let code = response.code.unwrap_or(0);
        if (100..200).contains(&code) {
            return Ok(HeadResult::Interim(len));
        }
        let mut content_length = None;
        let mut chunked = false;
        for header in response.headers.iter() {
            if header.name.eq_ignore_ascii_case("content-length") {
                let value = std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| FrameError::Malformed("bad Content-Length".into()))?;
                content_length = Some(value);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = header
                    .value
                    .split(|&b| b == b',')
                    .next_back()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
        }
        let body = if chunked {
            Body::Chunked {
                next: len,
                total: 0,
            }
        } else if let Some(n) = content_length {
            if n > self.max_reply as u64 {
                return Err(FrameError::TooLarge {
                    size: n,
                    max: self.max_reply,
                });
            }
            Body::Length(n as usize)
        } else if code == 204 || code == 304 {
            Body::Length(0)
        } else {
            return Err(FrameError::Malformed(
                "response has neither Content-Length nor chunked encoding (keep-alive needs one)"
                    .into(),
            ));
        };
        Ok(HeadResult::Head(Head {
            len,
            ok: (200..300).contains(&code),
            body,
        }))
    }
}

enum HeadResult {
    Incomplete,
    /// A 1xx response of this many bytes, to be skipped.
    Interim(usize),
    Head(Head),
}

enum ChunkStep {
    Incomplete,
    /// One data chunk of `size` bytes checked; the next size line starts at `next`.
    Chunk {
        next: usize,
        size: usize,
    },
    /// The last chunk and the trailers end at `consumed`.
    End {
        consumed: usize,
    },
}

/// Walk one chunk starting at the size line at `at`.
fn chunk_step(
    input: &[u8],
    at: usize,
    total: usize,
    max_reply: usize,
) -> Result<ChunkStep, FrameError> {
    let Some(line_end) = find_crlf(input, at) else {
        if input.len() - at > 1024 {
            return Err(FrameError::Malformed("chunk-size line too long".into()));
        }
        return Ok(ChunkStep::Incomplete);
    };
    let line = &input[at..line_end];
    let digits = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let size = parse_hex(digits).ok_or_else(|| FrameError::Malformed("bad chunk size".into()))?;
    if size == 0 {
        // Trailers: header lines until an empty line.
        let mut pos = line_end + 2;
        loop {
            let Some(end) = find_crlf(input, pos) else {
                return Ok(ChunkStep::Incomplete);
            };
            if end == pos {
                return Ok(ChunkStep::End { consumed: end + 2 });
            }
            pos = end + 2;
        }
    }
    if total + size > max_reply {
        return Err(FrameError::TooLarge {
            size: (total + size) as u64,
            max: max_reply,
        });
    }
    let data_end = line_end + 2 + size;
    if input.len() < data_end + 2 {
        return Ok(ChunkStep::Incomplete);
    }
    if &input[data_end..data_end + 2] != b"\r\n" {
        return Err(FrameError::Malformed(
            "chunk data not followed by CRLF".into(),
        ));
    }
    Ok(ChunkStep::Chunk {
        next: data_end + 2,
        size,
    })
}

fn find_crlf(input: &[u8], from: usize) -> Option<usize> {
    input
        .get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

fn parse_hex(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc * 16 + v as usize)
    })
}

fn push_decimal(mut n: usize, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::super::test_support::decode_in_pieces;
    use super::super::{Codec, FramingKind, WsMessage};
    use super::*;
    use proptest::prelude::*;

    fn options(method: HttpMethod) -> FramingOptions {
        FramingOptions {
            kind: FramingKind::Http,
            host: "localhost:8080".into(),
            path: "/plaintext".into(),
            http_method: method,
            ws_message: WsMessage::Binary,
            max_reply: 1 << 20,
        }
    }

    #[test]
    fn encodes_get_and_post() {
        let mut get = HttpCodec::new(&options(HttpMethod::Get));
        let mut out = Vec::new();
        get.encode(b"ignored", &mut out);
        assert_eq!(
            out,
            b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"
        );
        let mut post = HttpCodec::new(&options(HttpMethod::Post));
        out.clear();
        post.encode(b"hello", &mut out);
        assert_eq!(
            out,
            b"POST /plaintext HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 5\r\n\r\nhello"
        );
    }

    #[test]
    fn content_length_response() {
        let mut codec = HttpCodec::new(&options(HttpMethod::Get));
        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";
        assert_eq!(codec.decode(&response[..30]), Ok(Decoded::Incomplete));
        assert_eq!(codec.decode(&response[..40]), Ok(Decoded::Incomplete));
        assert_eq!(
            codec.decode(response),
            Ok(Decoded::Reply {
                consumed: response.len(),
                body: b"Hello, World!",
                ok: true
            })
        );
    }

    #[test]
    fn error_status_is_a_reply_that_is_not_ok() {
        let mut codec = HttpCodec::new(&options(HttpMethod::Get));
        let response = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            codec.decode(response),
            Ok(Decoded::Reply { ok: false, .. })
        ));
    }

    #[test]
    fn interim_and_close_delimited() {
        let mut codec = HttpCodec::new(&options(HttpMethod::Post));
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(
            codec.decode(interim),
            Ok(Decoded::Skip {
                consumed: interim.len()
            })
        );
        assert!(codec.decode(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        let mut codec = HttpCodec::new(&options(HttpMethod::Get));
        assert!(codec.decode(b"garbage garbage\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let mut codec = HttpCodec::new(&options(HttpMethod::Get));
        let response =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nHello\r\n0\r\nX-T: 1\r\n\r\n";
        let replies = decode_in_pieces(
            &mut Codec::Http(HttpCodec::new(&options(HttpMethod::Get))),
            response,
            &[3, 50, 60, 61, 70],
            &[],
        )
        .unwrap();
        assert_eq!(replies, vec![(vec![], true)]);
        assert!(codec
            .decode(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .is_err());
    }

    fn response(body: &[u8], chunk_sizes: &[usize], status: u16) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status} X\r\nServer: t\r\n").into_bytes();
        if chunk_sizes.is_empty() {
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
        } else {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let mut rest = body;
            for &size in chunk_sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let take = size.clamp(1, rest.len());
                out.extend_from_slice(format!("{take:x}\r\n").as_bytes());
                out.extend_from_slice(&rest[..take]);
                out.extend_from_slice(b"\r\n");
                rest = &rest[take..];
            }
            out.extend_from_slice(b"0\r\n\r\n");
        }
        out
    }

    proptest! {
        #[test]
        fn any_fragmentation_gives_the_same_responses(
            responses in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..500),
                 proptest::collection::vec(1usize..200, 0..4),
                 prop_oneof![Just(200u16), Just(201), Just(404), Just(500)]),
                1..10,
            ),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
        ) {
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            for (body, chunks, status) in &responses {
                stream.extend_from_slice(&response(body, chunks, *status));
                let shown = if chunks.is_empty() { body.clone() } else { Vec::new() };
                expected.push((shown, (200..300).contains(status)));
            }
            let mut codec = Codec::Http(HttpCodec::new(&options(HttpMethod::Get)));
            let replies = decode_in_pieces(&mut codec, &stream, &cuts, &[]).unwrap();
            prop_assert_eq!(replies, expected);
        }
    }
}
