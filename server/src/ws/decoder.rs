//! Decoder: the connection's input bytes -> handshake, then frames -> whole messages.
//!
//! Per connection (the core's `Protocol::Decoder`), called with all bytes buffered for the
//! connection. It takes one step per call and says how many bytes it used:
//!
//! 1. **Handshake**: parse the upgrade request, negotiate permessage-deflate, ask the hook,
//!    answer 101 (or an error status) into `out`; emits [`WsMessage::Open`].
//! 2. **Frames** (header rules in `frame.rs`, message rules here: continuations, UTF-8, sizes):
//!    - a whole unfragmented, uncompressed data frame is unmasked *in place* and handed up
//!      borrowing the input (the fast path: no copy);
//!    - any other data frame is consumed as its bytes arrive: unmasked, inflated if compressed,
//!      appended to the message buffer, and text is UTF-8-checked piece by piece, so an invalid
//!      byte fails the connection at once even in the middle of a frame (Autobahn 6.4.x), and the
//!      core's input buffer never has to hold a large frame;
//!    - control frames (at most 125 bytes) are waited for whole and answered here: Ping -> Pong,
//!      Close -> validated, echoed, [`WsMessage::Close`].
//!
//! Errors ([`WsError`]) leave a Close frame with the matching code (or the HTTP refusal) in
//! `out`; the caller then closes the connection.

use super::config::WebSocketConfig;
use super::deflate::{self, Inflater};
use super::encoder::WsEncoder;
use super::error::WsError;
use super::frame::{self, FrameHeader, OpCode};
use super::handshake::{self, HandshakeDecision, HandshakeHook, HandshakeRequest};
use super::mask::apply_mask;
use super::message::WsMessage;
use super::utf8::Utf8Validator;

/// The result of one decoding step.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Not enough bytes for the next step; call again when more arrive.
    Incomplete,
    /// `n` bytes were used without producing a message (n > 0).
    Skip(usize),
    /// A message; `consumed` bytes are used up once the caller is done with it.
    Message {
        consumed: usize,
        message: WsMessage<'a>,
    },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Handshake,
    Open,
    /// The closing handshake is over (or the connection failed): input is ignored.
    Closed,
}

/// The message being assembled from fragments.
#[derive(Debug, Clone, Copy)]
struct Assembling {
    text: bool,
    compressed: bool,
}

/// A data frame whose payload is being consumed as it arrives.
#[derive(Debug, Clone, Copy)]
struct Streaming {
    header: FrameHeader,
    done: usize,
}

/// Per-connection receiving state.
#[derive(Debug, Default)]
pub struct WsDecoder {
    phase: Phase,
    request: Option<HandshakeRequest>,
    inflater: Option<Inflater>,
    assembling: Option<Assembling>,
    streaming: Option<Streaming>,
    /// Payload of the message being assembled (inflated if it was compressed).
    buffer: Vec<u8>,
    /// The buffer was handed up last call; clear it before using it again.
    buffer_delivered: bool,
    utf8: Utf8Validator,
}

impl WsDecoder {
    /// Whether the upgrade is still in progress.
    pub fn in_handshake(&self) -> bool {
        self.phase == Phase::Handshake
    }

    /// The upgrade request, once the handshake is done.
    pub fn request(&self) -> Option<&HandshakeRequest> {
        self.request.as_ref()
    }

    /// Takes one step over `input` (see the module docs).
    pub fn decode<'a>(
        &'a mut self,
        config: &WebSocketConfig,
        hook: &dyn HandshakeHook,
        encoder: &mut WsEncoder,
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Decoded<'a>, WsError> {
        if encoder.failed() {
            self.phase = Phase::Closed;
        }
        match self.phase {
            Phase::Handshake => self.handshake(config, hook, encoder, input, out),
            Phase::Open => {
                // Failing writes the Close frame through the encoder (not `self`, which the
                // returned message may borrow) and marks the connection failed there.
                self.frames(config, encoder, input, out)
                    .inspect_err(|error| {
                        encoder.fail(out, error.close_code(), &error.to_string());
                    })
            }
            Phase::Closed => Ok(if input.is_empty() {
                Decoded::Incomplete
            } else {
                Decoded::Skip(input.len())
            }),
        }
    }

    fn handshake<'a>(
        &'a mut self,
        config: &WebSocketConfig,
        hook: &dyn HandshakeHook,
        encoder: &mut WsEncoder,
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Decoded<'a>, WsError> {
        let parsed = handshake::parse_request(
            input,
            config.max_handshake_size,
            config.max_handshake_headers,
        );
        let (request, consumed) = match parsed {
            Ok(None) => return Ok(Decoded::Incomplete),
            Ok(Some(found)) => found,
            Err(refusal) => return Err(self.refuse(out, refusal.status, refusal.reason)),
        };
        let (subprotocol, headers) = match hook.decide(&request) {
            HandshakeDecision::Accept {
                subprotocol,
                headers,
            } => (subprotocol, headers),
            HandshakeDecision::Reject { status, reason } => {
                return Err(self.refuse(out, status, reason));
            }
        };
        // Only a subprotocol the client offered may be named in the response (RFC 6455 §4.2.2).
        let subprotocol = subprotocol.filter(|p| request.subprotocols.iter().any(|o| o == p));
        let deflate = if config.permessage_deflate {
            deflate::negotiate(
                request
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-extensions"))
                    .map(|(_, v)| v.as_str()),
            )
        } else {
            None
        };
        let extensions = deflate.as_ref().map(|p| p.response());
        handshake::write_accept(
            out,
            &request,
            subprotocol.as_deref(),
            extensions.as_deref(),
            &headers,
        );
        encoder.on_open(deflate.as_ref(), config);
        self.inflater = deflate.as_ref().map(Inflater::new);
        self.phase = Phase::Open;
        let request = self.request.insert(request);
        Ok(Decoded::Message {
            consumed,
            message: WsMessage::Open(request),
        })
    }

    fn refuse(&mut self, out: &mut Vec<u8>, status: u16, reason: String) -> WsError {
        self.phase = Phase::Closed;
        handshake::write_reject(out, status, &reason);
        WsError::Handshake { status, reason }
    }

    fn frames<'a>(
        &'a mut self,
        config: &WebSocketConfig,
        encoder: &mut WsEncoder,
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Decoded<'a>, WsError> {
        if self.buffer_delivered {
            self.buffer.clear();
            self.buffer_delivered = false;
        }
        if let Some(streaming) = self.streaming {
            if input.is_empty() {
                return Ok(Decoded::Incomplete);
            }
            return self.stream_payload(config, streaming, 0, input);
        }
        let allow_rsv1 = self.inflater.is_some();
        let Some(header) = frame::parse_header(input, allow_rsv1, config.max_frame_size)? else {
            return Ok(Decoded::Incomplete);
        };
        let frame_len = header.header_len + header.payload_len;
        if header.opcode.is_control() {
            if input.len() < frame_len {
                return Ok(Decoded::Incomplete);
            }
            let payload = &mut input[header.header_len..frame_len];
            apply_mask(payload, header.mask, 0);
            return self.control(header.opcode, frame_len, payload, encoder, out);
        }
        match (header.opcode, self.assembling) {
            (OpCode::Continuation, None) => return Err(WsError::UnexpectedContinuation),
            (OpCode::Text | OpCode::Binary, Some(_)) => return Err(WsError::ExpectedContinuation),
            _ => {}
        }
        let so_far = self.buffer.len();
        if !header.rsv1 && so_far + header.payload_len > config.max_message_size {
            return Err(WsError::MessageTooLarge {
                size: (so_far + header.payload_len) as u64,
                max: config.max_message_size,
            });
        }
        let text = header.opcode == OpCode::Text;
        if header.fin
            && header.opcode != OpCode::Continuation
            && !header.rsv1
            && input.len() >= frame_len
        {
            // Fast path: a whole single-frame message, unmasked in place and lent out.
            let payload = &mut input[header.header_len..frame_len];
            apply_mask(payload, header.mask, 0);
            let message = if text {
                WsMessage::Text(std::str::from_utf8(payload).map_err(|_| WsError::InvalidUtf8)?)
            } else {
                WsMessage::Binary(payload)
            };
            return Ok(Decoded::Message {
                consumed: frame_len,
                message,
            });
        }
        if header.opcode != OpCode::Continuation {
            self.assembling = Some(Assembling {
                text,
                compressed: header.rsv1,
            });
            self.utf8.reset();
        }
        let streaming = Streaming { header, done: 0 };
        self.streaming = Some(streaming);
        let (_, rest) = input.split_at_mut(header.header_len);
        self.stream_payload(config, streaming, header.header_len, rest)
    }

    /// Consumes as much of the streaming frame's payload as `data` holds. `already` bytes of the
    /// input (a header) were used before `data`.
    fn stream_payload<'a>(
        &'a mut self,
        config: &WebSocketConfig,
        mut streaming: Streaming,
        already: usize,
        data: &mut [u8],
    ) -> Result<Decoded<'a>, WsError> {
        let header = streaming.header;
        let take = (header.payload_len - streaming.done).min(data.len());
        let piece = &mut data[..take];
        apply_mask(piece, header.mask, streaming.done);
        streaming.done += take;
        let Some(assembling) = self.assembling else {
            return Err(WsError::UnexpectedContinuation);
        };
        let start = self.buffer.len();
        if assembling.compressed {
            let Some(inflater) = self.inflater.as_mut() else {
                return Err(WsError::ReservedBits { bits: 0b100 });
            };
            inflater.inflate(piece, &mut self.buffer, config.max_message_size)?;
        } else {
            self.buffer.extend_from_slice(piece);
        }
        let frame_done = streaming.done == header.payload_len;
        let message_done = frame_done && header.fin;
        if message_done && assembling.compressed {
            if let Some(inflater) = self.inflater.as_mut() {
                inflater.finish_message(&mut self.buffer, config.max_message_size)?;
            }
        }
        if assembling.text {
            self.utf8
                .feed(&self.buffer[start..])
                .map_err(|_| WsError::InvalidUtf8)?;
        }
        let consumed = already + take;
        self.streaming = if frame_done { None } else { Some(streaming) };
        if !message_done {
            // `consumed` > 0: a header, or at least one payload byte (data was not empty).
            return Ok(if consumed == 0 {
                Decoded::Incomplete
            } else {
                Decoded::Skip(consumed)
            });
        }
        self.assembling = None;
        self.buffer_delivered = true;
        let message = if assembling.text {
            self.utf8.finish().map_err(|_| WsError::InvalidUtf8)?;
            WsMessage::Text(std::str::from_utf8(&self.buffer).map_err(|_| WsError::InvalidUtf8)?)
        } else {
            WsMessage::Binary(&self.buffer)
        };
        Ok(Decoded::Message { consumed, message })
    }

    fn control<'a>(
        &mut self,
        opcode: OpCode,
        consumed: usize,
        payload: &'a [u8],
        encoder: &mut WsEncoder,
        out: &mut Vec<u8>,
    ) -> Result<Decoded<'a>, WsError> {
        match opcode {
            OpCode::Ping => {
                encoder.write_pong(out, payload);
                Ok(Decoded::Skip(consumed))
            }
            OpCode::Pong => Ok(Decoded::Skip(consumed)),
            _ => {
                let (code, reason) = match payload {
                    [] => (None, ""),
                    [_] => return Err(WsError::CloseFrameTooShort),
                    [hi, lo, reason @ ..] => {
                        let code = u16::from_be_bytes([*hi, *lo]);
                        if !frame::is_valid_close_code(code) {
                            return Err(WsError::InvalidCloseCode(code));
                        }
                        let reason =
                            std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
                        (Some(code), reason)
                    }
                };
                // Echo the code (RFC 6455 §5.5.1) unless we started the closing handshake.
                encoder.write_close(out, code, "");
                self.phase = Phase::Closed;
                Ok(Decoded::Message {
                    consumed,
                    message: WsMessage::Close { code, reason },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
