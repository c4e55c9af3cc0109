//! Encoder: outgoing messages -> server frames, with optional permessage-deflate.
//!
//! Per connection (the core's `Protocol::Encoder`). It learns the negotiated extension from the
//! handshake (the decoder calls [`WsEncoder::on_open`]) and remembers whether a Close was sent,
//! after which nothing more may be sent (RFC 6455 §5.5.1). Replies packed before the handshake
//! completed, or after Close, are dropped: there is no WebSocket to send them on.

use super::config::WebSocketConfig;
use super::deflate::{DeflateParams, Deflater};
use super::frame::{self, OpCode, MAX_CONTROL_PAYLOAD};
use super::message::WsReply;

/// Per-connection sending state.
#[derive(Debug, Default)]
pub struct WsEncoder {
    open: bool,
    close_sent: bool,
    /// The decoder failed the connection: it is closing with an error code.
    failed: bool,
    deflater: Option<Deflater>,
    compression_threshold: usize,
    /// Reused buffer for compressed payloads (their length must precede them in the header).
    scratch: Vec<u8>,
}

impl WsEncoder {
    /// The handshake succeeded with these extension parameters.
    pub fn on_open(&mut self, deflate: Option<&DeflateParams>, config: &WebSocketConfig) {
        self.open = true;
        self.compression_threshold = config.compression_threshold;
        self.deflater = deflate.map(|p| Deflater::new(p, config.compression_level));
    }

    /// Whether a Close frame has been sent on this connection.
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether the WebSocket is open for sending (handshake done, no Close sent).
    pub fn can_send(&self) -> bool {
        self.open && !self.close_sent
    }

    /// Appends the frame(s) for `reply` to `out`.
    pub fn encode(&mut self, reply: WsReply<'_>, out: &mut Vec<u8>) {
        if !self.can_send() {
            tracing::debug!("websocket: dropping a reply on a connection that is not open");
            return;
        }
        match reply {
            WsReply::Text(text) => self.data(OpCode::Text, text.as_bytes(), out),
            WsReply::Binary(bytes) => self.data(OpCode::Binary, &bytes, out),
            WsReply::Ping(bytes) => frame::write_frame(
                out,
                false,
                OpCode::Ping,
                &bytes[..bytes.len().min(MAX_CONTROL_PAYLOAD)],
            ),
            WsReply::Close { code, reason } => {
                let code = if frame::is_valid_close_code(code) {
                    code
                } else {
                    1000
                };
                self.write_close(out, Some(code), &reason);
            }
        }
    }

    /// Appends a Close frame (once) and marks the connection as closing.
    pub fn write_close(&mut self, out: &mut Vec<u8>, code: Option<u16>, reason: &str) {
        if !self.close_sent {
            frame::write_close(out, code, reason);
            self.close_sent = true;
        }
    }

    /// Fails the connection: appends a Close with `code` (unless one was sent) and remembers it.
    pub fn fail(&mut self, out: &mut Vec<u8>, code: u16, reason: &str) {
        self.failed = true;
        self.write_close(out, Some(code), reason);
    }

    /// Whether the connection was failed by the decoder.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Appends a Pong unless a Close was already sent.
    pub fn write_pong(&mut self, out: &mut Vec<u8>, payload: &[u8]) {
        if !self.close_sent {
            frame::write_frame(out, false, OpCode::Pong, payload);
        }
    }

    fn data(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
        match self.deflater.as_mut() {
            Some(deflater) if payload.len() >= self.compression_threshold => {
                self.scratch.clear();
                deflater.compress_message(payload, &mut self.scratch);
                frame::write_frame(out, true, opcode, &self.scratch);
            }
            _ => frame::write_frame(out, false, opcode, payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::deflate::{negotiate, Inflater};

    #[test]
    fn drops_before_open_and_after_close() {
        let mut enc = WsEncoder::default();
        let mut out = Vec::new();
        enc.encode(WsReply::text("x"), &mut out);
        assert!(out.is_empty());
        enc.on_open(None, &WebSocketConfig::default());
        enc.encode(WsReply::text("hi"), &mut out);
        assert_eq!(out, [0x81, 2, b'h', b'i']);
        enc.encode(
            WsReply::Close {
                code: 4000,
                reason: "bye".into(),
            },
            &mut out,
        );
        assert_eq!(&out[4..], &[0x88, 5, 0x0f, 0xa0, b'b', b'y', b'e']);
        enc.encode(WsReply::text("late"), &mut out);
        assert_eq!(out.len(), 11);
    }

    #[test]
    fn compresses_when_negotiated() {
        let params = negotiate(["permessage-deflate"]).unwrap();
        let mut enc = WsEncoder::default();
        enc.on_open(Some(&params), &WebSocketConfig::default());
        let mut out = Vec::new();
        let text = "abcabcabc".repeat(100);
        enc.encode(WsReply::text(text.clone()), &mut out);
        assert_eq!(out[0], 0xC1, "RSV1 set");
        let payload_at = if out[1] == 126 { 4 } else { 2 };
        let mut inflater = Inflater::new(&params);
        let mut plain = Vec::new();
        inflater
            .inflate(&out[payload_at..], &mut plain, 1 << 20)
            .unwrap();
        inflater.finish_message(&mut plain, 1 << 20).unwrap();
        assert_eq!(plain, text.as_bytes());
    }

    #[test]
    fn small_server_window_sends_stored_blocks() {
        let params = negotiate(["permessage-deflate; server_max_window_bits=9"]).unwrap();
        let mut enc = WsEncoder::default();
        enc.on_open(Some(&params), &WebSocketConfig::default());
        let mut out = Vec::new();
        enc.encode(WsReply::text("x".repeat(100)), &mut out);
        assert_eq!(out[0], 0xC1, "RSV1 set");
        assert_eq!(
            out[1] as usize,
            100 + 6,
            "one stored block: 5-byte header, 1-byte tail"
        );
    }
}
