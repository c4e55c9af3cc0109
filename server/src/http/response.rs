//! Responses: what a handler returns for a request, packed into the connection's output buffer.
//! The benchmark greeting ([`Response::Hello`]) is a prebuilt head plus a constant body (one
//! copy, no formatting); other responses are formatted once into the output buffer. Error
//! replies of the parser ([`error_response`]) always carry `Connection: close`.

use std::borrow::Cow;
use std::io::Write;

const HELLO_BODY: &[u8] = b"Hello, World!";
const HELLO_KEEP_ALIVE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: gev\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n";
const HELLO_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: gev\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\n";

/// What a handler answers to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// `200 OK` with `Hello, World!` (`head_only` for HEAD), from a prebuilt head.
    Hello {
        /// Adds `Connection: close` (the handler closes after it).
        close: bool,
        /// Only the head (a reply to HEAD).
        head_only: bool,
    },
    /// `405 Method Not Allowed` (with `Allow: GET, HEAD, POST`) and no body.
    MethodNotAllowed {
        /// Adds `Connection: close`.
        close: bool,
    },
    /// Any status with a body and a content type.
    Full {
        /// Status code, e.g. 404.
        status: u16,
        /// Reason phrase, e.g. `"Not Found"`.
        reason: &'a str,
        /// `Content-Type` value.
        content_type: &'a str,
        /// The body (`Content-Length` is its length).
        body: Cow<'a, [u8]>,
        /// Adds `Connection: close`.
        close: bool,
        /// Only the head (a reply to HEAD).
        head_only: bool,
    },
}

/// Appends `response` to `out`.
#[inline]
pub(crate) fn pack(response: Response<'_>, out: &mut Vec<u8>) {
    match response {
        Response::Hello { close, head_only } => {
            out.extend_from_slice(if close { HELLO_CLOSE } else { HELLO_KEEP_ALIVE });
            if !head_only {
                out.extend_from_slice(HELLO_BODY);
            }
        }
        Response::MethodNotAllowed { close } => {
            let _ = write!(
                out,
                "HTTP/1.1 405 Method Not Allowed\r\nServer: gev\r\nAllow: GET, HEAD, POST\r\nContent-Length: 0\r\n{}\r\n",
                connection_header(close)
            );
        }
        Response::Full {
            status,
            reason,
            content_type,
            body,
            close,
            head_only,
        } => {
            let _ = write!(
                out,
                "HTTP/1.1 {status} {reason}\r\nServer: gev\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{}\r\n",
                body.len(),
                connection_header(close)
            );
            if !head_only {
                out.extend_from_slice(&body);
            }
        }
    }
}

fn connection_header(close: bool) -> &'static str {
    if close {
        "Connection: close\r\n"
    } else {
        ""
    }
}

/// Appends a complete error response that ends the connection (the reason is the body).
pub(crate) fn error_response(out: &mut Vec<u8>, status: u16, reason: &str) {
    pack(
        Response::Full {
            status,
            reason,
            content_type: "text/plain",
            body: Cow::Borrowed(reason.as_bytes()),
            close: true,
            head_only: false,
        },
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(response: Response<'_>) -> String {
        let mut out = Vec::new();
        pack(response, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn packs_the_greeting() {
        let text = packed(Response::Hello {
            close: false,
            head_only: false,
        });
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.ends_with("\r\n\r\nHello, World!"));
        assert!(!text.contains("Connection: close"));
        let head = packed(Response::Hello {
            close: true,
            head_only: true,
        });
        assert!(head.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn full_and_error_responses_carry_their_length() {
        let text = packed(Response::Full {
            status: 404,
            reason: "Not Found",
            content_type: "text/plain",
            body: Cow::Borrowed(b"nothing here"),
            close: false,
            head_only: false,
        });
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("Content-Length: 12\r\n"));
        assert!(text.ends_with("\r\n\r\nnothing here"));
        let mut out = Vec::new();
        error_response(&mut out, 400, "Bad Request");
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nBad Request"));
        assert!(packed(Response::MethodNotAllowed { close: false }).contains("Allow: GET"));
    }
}
