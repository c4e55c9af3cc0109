//! WebSocket framing (RFC 6455, client side): the opening handshake, masked data frames out, and
//! whole messages back.
//!
//! The server's frames are unmasked; a data message may arrive in fragments with control frames
//! in between. A single-frame message is handed out straight from the input; a fragmented one is
//! reassembled in the codec's own buffer. A ping is answered with a masked pong, a pong is
//! skipped, a close frame ends the connection ([`FrameError::Closed`]).

use base64::Engine;
use sha1::{Digest, Sha1};

use super::{Decoded, FrameError, FramingOptions, WsMessage};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Per-connection WebSocket state.
#[derive(Debug)]
pub struct WsCodec {
    host: String,
    path: String,
    opcode: u8,
    max_reply: usize,
    /// xorshift state for mask keys (masking only has to be unpredictable to proxies, not
    /// cryptographically strong).
    rng: u64,
    /// The handshake key sent, kept to check Sec-WebSocket-Accept.
    key: String,
    /// Payload of a fragmented message being reassembled.
    fragments: Vec<u8>,
    /// True while a fragmented message is open (first frame seen, final not yet).
    in_fragmented: bool,
    /// The last reply came from `fragments`; clear it at the next call.
    fragments_delivered: bool,
}

impl WsCodec {
    pub fn new(options: &FramingOptions, seed: u64) -> WsCodec {
        WsCodec {
            host: options.host.clone(),
            path: options.path.clone(),
            opcode: match options.ws_message {
                WsMessage::Text => OP_TEXT,
                WsMessage::Binary => OP_BINARY,
            },
            max_reply: options.max_reply,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            key: String::new(),
            fragments: Vec::new(),
            in_fragmented: false,
            fragments_delivered: false,
        }
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Append the HTTP upgrade request.
    pub fn write_handshake(&mut self, out: &mut Vec<u8>) {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.next_random().to_le_bytes());
        nonce[8..].copy_from_slice(&self.next_random().to_le_bytes());
        self.key = base64::engine::general_purpose::STANDARD.encode(nonce);
        out.extend_from_slice(
            format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
                self.path, self.host, self.key
            )
            .as_bytes(),
        );
    }

    /// Check the server's 101 answer: `Ok(None)` until the head is whole.
    pub fn read_handshake(&mut self, input: &[u8]) -> Result<Option<usize>, FrameError> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let consumed = match response.parse(input) {
            Ok(httparse::Status::Partial) => {
                if input.len() > 64 * 1024 {
                    return Err(FrameError::Handshake("response head over 64 KiB".into()));
                }
                return Ok(None);
            }
            Ok(httparse::Status::Complete(n)) => n,
            Err(e) => return Err(FrameError::Handshake(format!("bad HTTP response: {e}"))),
        };
        if response.code != Some(101) {
            return Err(FrameError::Handshake(format!(
                "server answered {} instead of 101 Switching Protocols",
                response.code.unwrap_or(0)
            )));
        }
        let expected = accept_key(&self.key);
        let accept = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
            .map(|h| h.value);
        if accept != Some(expected.as_bytes()) {
            return Err(FrameError::Handshake(
                "missing or wrong Sec-WebSocket-Accept".into(),
            ));
        }
        Ok(Some(consumed))
    }

    /// Append one masked data frame carrying `payload`.
    #[inline]
    pub fn encode(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let mask = (self.next_random() as u32).to_ne_bytes();
        write_frame(self.opcode, payload, mask, out);
    }

    /// Decode at most one frame; return a reply once a data message is whole.
    pub fn decode<'a>(
        &'a mut self,
        input: &'a [u8],
        control_out: &mut Vec<u8>,
    ) -> Result<Decoded<'a>, FrameError> {
        if self.fragments_delivered {
            self.fragments.clear();
            self.fragments_delivered = false;
        }
        let Some(header) = parse_header(input, self.max_reply)? else {
            return Ok(Decoded::Incomplete);
        };
        let end = header.header_len + header.payload_len;
        if input.len() < end {
            return Ok(Decoded::Incomplete);
        }
        let payload = &input[header.header_len..end];
        match header.opcode {
            OP_PING => {
                let mask = (self.next_random() as u32).to_ne_bytes();
                write_frame(OP_PONG, payload, mask, control_out);
                Ok(Decoded::Skip { consumed: end })
            }
            OP_PONG => Ok(Decoded::Skip { consumed: end }),
            OP_CLOSE => Err(FrameError::Closed),
            OP_TEXT | OP_BINARY if !self.in_fragmented => {
                if header.fin {
                    Ok(Decoded::Reply {
                        consumed: end,
                        body: payload,
                        ok: true,
                    })
                } else {
                    self.in_fragmented = true;
                    self.fragments.extend_from_slice(payload);
                    Ok(Decoded::Skip { consumed: end })
                }
            }
            OP_CONTINUATION if self.in_fragmented => {
                if self.fragments.len() + payload.len() > self.max_reply {
                    return Err(FrameError::TooLarge {
                        size: (self.fragments.len() + payload.len()) as u64,
                        max: self.max_reply,
                    });
                }
                self.fragments.extend_from_slice(payload);
                if header.fin {
                    self.in_fragmented = false;
                    self.fragments_delivered = true;
                    Ok(Decoded::Reply {
                        consumed: end,
                        body: &self.fragments,
                        ok: true,
                    })
                } else {
                    Ok(Decoded::Skip { consumed: end })
                }
            }
            OP_CONTINUATION => Err(FrameError::Malformed(
                "continuation frame without a message in progress".into(),
            )),
            OP_TEXT | OP_BINARY => Err(FrameError::Malformed(
                "new data frame inside a fragmented message".into(),
            )),
            other => Err(FrameError::Malformed(format!("reserved opcode {other:#x}"))),
        }
    }
}

/// `base64(sha1(key + GUID))`, the value the server must send back.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

struct FrameHeader {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

/// Parse a server frame header; `Ok(None)` until it is whole.
fn parse_header(input: &[u8], max_reply: usize) -> Result<Option<FrameHeader>, FrameError> {
    if input.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (input[0], input[1]);
    if b0 & 0x70 != 0 {
        return Err(FrameError::Malformed(
            "reserved bits set without an extension".into(),
        ));
    }
    if b1 & 0x80 != 0 {
        return Err(FrameError::Malformed(
            "server frames must not be masked".into(),
        ));
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    let (header_len, payload_len) = match b1 & 0x7F {
        126 => {
            let Some(bytes) = input.get(2..4) else {
                return Ok(None);
            };
            (4, u16::from_be_bytes([bytes[0], bytes[1]]) as u64)
        }
        127 => {
            let Some(bytes) = input.get(2..10) else {
                return Ok(None);
            };
            let mut len = [0u8; 8];
            len.copy_from_slice(bytes);
            (10, u64::from_be_bytes(len))
        }
        small => (2, u64::from(small)),
    };
    if opcode >= 0x8 && (!fin || payload_len > 125) {
        return Err(FrameError::Malformed(
            "control frame fragmented or longer than 125 bytes".into(),
        ));
    }
    if payload_len > max_reply as u64 {
        return Err(FrameError::TooLarge {
            size: payload_len,
            max: max_reply,
        });
    }
    Ok(Some(FrameHeader {
        fin,
        opcode,
        header_len,
        payload_len: payload_len as usize,
    }))
}

/// Append a final, masked frame.
///
/// Hot path: the payload is copied once into `out` and masked in place eight bytes at a time
/// (no temporary buffer).
fn write_frame(opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XOR `data` with the repeating 4-byte `mask`.
fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::decode_in_pieces;
    use super::super::{Codec, FramingKind, HttpMethod};
    use super::*;
    use proptest::prelude::*;

    fn options() -> FramingOptions {
        FramingOptions {
            kind: FramingKind::Websocket,
            host: "127.0.0.1:9".into(),
            path: "/ws".into(),
            http_method: HttpMethod::Get,
            ws_message: WsMessage::Binary,
            max_reply: 1 << 20,
        }
    }

    /// A server frame (unmasked).
    fn server_frame(fin: bool, opcode: u8, payload: &[u8], out: &mut Vec<u8>) {
        out.push(if fin { 0x80 } else { 0 } | opcode);
        let len = payload.len();
        if len < 126 {
            out.push(len as u8);
        } else if len <= 65535 {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(payload);
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn handshake_round_trip() {
        let mut codec = WsCodec::new(&options(), 7);
        let mut out = Vec::new();
        codec.write_handshake(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept_key(&codec.key)
        );
        assert_eq!(codec.read_handshake(&response.as_bytes()[..20]), Ok(None));
        assert_eq!(
            codec.read_handshake(response.as_bytes()),
            Ok(Some(response.len()))
        );
        let bad = "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: nope\r\n\r\n";
        assert!(codec.read_handshake(bad.as_bytes()).is_err());
        let refused = "HTTP/1.1 400 Bad Request\r\n\r\n";
        assert!(codec.read_handshake(refused.as_bytes()).is_err());
    }

    #[test]
    fn encoded_frames_are_masked_and_unmask_back() {
        let mut codec = WsCodec::new(&options(), 3);
        for len in [0usize, 5, 125, 126, 1000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            codec.encode(&payload, &mut out);
            assert_eq!(out[0], 0x82);
            assert!(out[1] & 0x80 != 0);
            let header_len = match out[1] & 0x7F {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            let mask = [
                out[header_len],
                out[header_len + 1],
                out[header_len + 2],
                out[header_len + 3],
            ];
            let mut body = out[header_len + 4..].to_vec();
            apply_mask(&mut body, mask);
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn ping_is_answered_and_close_ends() {
        let mut codec = WsCodec::new(&options(), 1);
        let mut stream = Vec::new();
        server_frame(true, OP_PING, b"hi", &mut stream);
        let mut control = Vec::new();
        assert_eq!(
            codec.decode(&stream, &mut control),
            Ok(Decoded::Skip { consumed: 4 })
        );
        assert_eq!(control[0], 0x80 | OP_PONG);
        let mut close = Vec::new();
        server_frame(true, OP_CLOSE, &[3, 232], &mut close);
        assert_eq!(codec.decode(&close, &mut control), Err(FrameError::Closed));
    }

    #[test]
    fn masked_server_frame_is_rejected() {
        let mut codec = WsCodec::new(&options(), 1);
        assert!(matches!(
            codec.decode(&[0x82, 0x81, 1, 2, 3, 4, 5], &mut Vec::new()),
            Err(FrameError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn any_fragmentation_gives_whole_messages(
            messages in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..70_000), 1usize..4, any::<bool>()),
                1..6,
            ),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
        ) {
            let mut stream = Vec::new();
            for (payload, pieces, ping) in &messages {
                let step = payload.len() / pieces + 1;
                let chunks: Vec<&[u8]> = if payload.is_empty() { vec![&payload[..]] } else { payload.chunks(step).collect() };
                for (i, chunk) in chunks.iter().enumerate() {
                    let first = i == 0;
                    let last = i + 1 == chunks.len();
                    server_frame(last, if first { OP_BINARY } else { OP_CONTINUATION }, chunk, &mut stream);
                    if *ping && !last {
                        server_frame(true, OP_PING, b"p", &mut stream);
                    }
                }
            }
            let mut codec = Codec::Websocket(WsCodec::new(&options(), 9));
            let replies = decode_in_pieces(&mut codec, &stream, &cuts, &[]).unwrap();
            let bodies: Vec<Vec<u8>> = replies.into_iter().map(|(b, _)| b).collect();
            let expected: Vec<Vec<u8>> = messages.into_iter().map(|(p, _, _)| p).collect();
            prop_assert_eq!(bodies, expected);
        }
    }
}
