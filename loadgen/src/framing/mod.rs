//! Framing: how a request payload becomes bytes on the wire and how a reply is cut out of the
//! bytes that come back (the "encode" and "decode" steps of schedule -> encode -> write -> read ->
//! decode -> record -> report).
//!
//! Each framing lives in its own file and keeps its per-connection state in its own codec type;
//! [`Codec`] dispatches over them with a `match` (no trait object on the hot path). Decoding is
//! incremental: a partial reply is [`Decoded::Incomplete`], never an error, and the connection
//! calls again with the same bytes plus whatever arrived since. Replies are decoded in place from
//! the connection's buffered input; a whole-message framing that must reassemble fragments
//! (WebSocket) returns the message from its own buffer instead.

pub mod http;
pub mod length;
pub mod raw;
pub mod websocket;

use std::fmt;
use std::str::FromStr;

/// Which framing a run uses (`--framing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingKind {
    /// Echo semantics: the reply is exactly as long as the request, with no header.
    Raw,
    /// A 4-byte big-endian length followed by the payload, both ways.
    Length,
    /// RFC 6455: client handshake, masked frames out, whole messages back.
    Websocket,
    /// HTTP/1.1 keep-alive requests, responses with Content-Length or chunked bodies.
    Http,
}

impl FramingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FramingKind::Raw => "raw",
            FramingKind::Length => "length",
            FramingKind::Websocket => "websocket",
            FramingKind::Http => "http",
        }
    }

    /// Whether the server is expected to send back exactly the request payload, so `--verify`
    /// can compare replies byte by byte.
    pub fn is_echo(self) -> bool {
        !matches!(self, FramingKind::Http)
    }
}

impl fmt::Display for FramingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FramingKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(FramingKind::Raw),
            "length" => Ok(FramingKind::Length),
            "websocket" | "ws" => Ok(FramingKind::Websocket),
            "http" => Ok(FramingKind::Http),
            other => Err(format!(
                "unknown framing {other:?}; use one of raw, length, websocket, http"
            )),
        }
    }
}

/// HTTP request method for `--framing http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
}

/// WebSocket data frame type for `--framing websocket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsMessage {
    Text,
    Binary,
}

/// Everything a codec needs to know about the target and the limits, shared by all connections.
#[derive(Debug, Clone)]
pub struct FramingOptions {
    pub kind: FramingKind,
    /// `Host` header value (`host:port`) for HTTP and the WebSocket handshake.
    pub host: String,
    /// Request path for HTTP and the WebSocket handshake.
    pub path: String,
    pub http_method: HttpMethod,
    pub ws_message: WsMessage,
    /// Largest reply (frame, message or body) accepted before the reply counts as a protocol
    /// error. Default 64 MiB.
    pub max_reply: usize,
}

/// The result of one decode attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Not a whole reply yet: call again with more bytes.
    Incomplete,
    /// `consumed` bytes were used without completing a reply (a control frame, a fragment, an
    /// interim HTTP response).
    Skip { consumed: usize },
    /// One whole reply. `body` is the echoed payload for echo framings (the HTTP body when it
    /// had a Content-Length, empty for chunked HTTP); `ok` is false for an HTTP status outside
    /// 2xx.
    Reply {
        consumed: usize,
        body: &'a [u8],
        ok: bool,
    },
}

/// Why the server's bytes could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes break the framing's rules.
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// A reply is larger than `FramingOptions::max_reply`.
    #[error("reply of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: u64, max: usize },
    /// Bytes arrived although no request was outstanding.
    #[error("reply without an outstanding request")]
    Unsolicited,
    /// The server started a WebSocket close handshake.
    #[error("server sent a WebSocket close frame")]
    Closed,
    /// The WebSocket upgrade was refused or answered wrongly.
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
}

/// Per-connection encoder/decoder state for one framing.
#[derive(Debug)]
pub enum Codec {
    Raw(raw::RawCodec),
    Length(length::LengthCodec),
    Websocket(websocket::WsCodec),
    Http(http::HttpCodec),
}

impl Codec {
    /// A fresh codec for a new connection; `seed` makes WebSocket masks and keys differ per
    /// connection.
    pub fn new(options: &FramingOptions, seed: u64) -> Codec {
        match options.kind {
            FramingKind::Raw => Codec::Raw(raw::RawCodec),
            FramingKind::Length => Codec::Length(length::LengthCodec::new(options.max_reply)),
            FramingKind::Websocket => Codec::Websocket(websocket::WsCodec::new(options, seed)),
            FramingKind::Http => Codec::Http(http::HttpCodec::new(options)),
        }
    }

    /// Append the opening handshake, if the framing has one, and say whether it did.
    pub fn write_handshake(&mut self, out: &mut Vec<u8>) -> bool {
        match self {
            Codec::Websocket(ws) => {
                ws.write_handshake(out);
                true
            }
            _ => false,
        }
    }

    /// Parse the handshake reply: `Ok(None)` while incomplete, `Ok(Some(consumed))` once accepted.
    pub fn read_handshake(&mut self, input: &[u8]) -> Result<Option<usize>, FrameError> {
        match self {
            Codec::Websocket(ws) => ws.read_handshake(input),
            _ => Ok(Some(0)),
        }
    }

    /// Append one framed request carrying `payload`.
    #[inline]
    pub fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        match self {
            Codec::Raw(_) => out.extend_from_slice(payload),
            Codec::Length(_) => length::encode(payload, out),
            Codec::Websocket(ws) => ws.encode(payload, out),
            Codec::Http(h) => h.encode(payload, out),
        }
    }

    /// Cut at most one reply from the front of `input`. `expected_len` is the payload length of
    /// the oldest outstanding request (None when nothing is outstanding); only the raw framing
    /// needs it. Bytes the client must answer by itself (a WebSocket pong) go to `control_out`.
    #[inline]
    pub fn decode<'a>(
        &'a mut self,
        input: &'a [u8],
        expected_len: Option<usize>,
        control_out: &mut Vec<u8>,
    ) -> Result<Decoded<'a>, FrameError> {
        match self {
            Codec::Raw(_) => raw::decode(input, expected_len),
            Codec::Length(l) => l.decode(input),
            Codec::Websocket(ws) => ws.decode(input, control_out),
            Codec::Http(h) => h.decode(input),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Feed a byte stream to a codec in arbitrary pieces, as a connection would.
    use super::*;

    /// Split `stream` at `cuts` (positions, any order, may repeat), append each piece to a
    /// buffer, decode every whole reply, and return the reply bodies (with their ok flags).
    pub fn decode_in_pieces(
        codec: &mut Codec,
        stream: &[u8],
        cuts: &[usize],
        expected: &[usize],
    ) -> Result<Vec<(Vec<u8>, bool)>, FrameError> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut buffer = Vec::new();
        let mut replies = Vec::new();
        let mut control = Vec::new();
        let mut start = 0;
        for cut in cuts {
            buffer.extend_from_slice(&stream[start..cut]);
            start = cut;
            loop {
                let expected_len = expected.get(replies.len()).copied();
                match codec.decode(&buffer, expected_len, &mut control)? {
                    Decoded::Incomplete => break,
                    Decoded::Skip { consumed } => {
                        buffer.drain(..consumed);
                    }
                    Decoded::Reply { consumed, body, ok } => {
                        replies.push((body.to_vec(), ok));
                        buffer.drain(..consumed);
                    }
                }
                if buffer.is_empty() {
                    break;
                }
            }
        }
        assert!(buffer.is_empty(), "bytes left over: {buffer:?}");
        Ok(replies)
    }
}
