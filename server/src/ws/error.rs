//! `WsError`: why a WebSocket connection is failed, one variant per broken rule.
//!
//! The decoder returns these; `protocol.rs` turns one into a Close frame carrying
//! [`WsError::close_code`] (appended to the connection's output before it is closed) and then into
//! the core's `ProtocolError`. Handshake failures carry the HTTP status to answer with instead.

use thiserror::Error;

/// Close code 1002: the peer broke the protocol.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code 1007: a text message (or close reason) is not valid UTF-8.
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code 1009: a frame or message is larger than the configured limit.
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;
/// Close code 1000: normal closure.
pub const CLOSE_NORMAL: u16 = 1000;

/// A rule of RFC 6455 / RFC 7692 (or a configured limit) the peer broke.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WsError {
    /// §5.1: a client must mask every frame it sends.
    #[error("client frame is not masked (RFC 6455 5.1)")]
    UnmaskedFrame,
    /// §5.2: RSV1-3 must be 0 unless an extension defines them (RSV1 = compressed, if negotiated).
    #[error("reserved bits {bits:#05b} set without a negotiated extension (RFC 6455 5.2)")]
    ReservedBits { bits: u8 },
    /// §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
    #[error("reserved opcode {0:#x} (RFC 6455 5.2)")]
    ReservedOpcode(u8),
    /// §5.5: control frames carry at most 125 payload bytes.
    #[error("control frame payload of {0} bytes exceeds 125 (RFC 6455 5.5)")]
    ControlFrameTooLong(u64),
    /// §5.5: control frames must not be fragmented.
    #[error("fragmented control frame (RFC 6455 5.5)")]
    FragmentedControlFrame,
    /// §5.4: a continuation frame arrived with no message in progress.
    #[error("continuation frame without a message in progress (RFC 6455 5.4)")]
    UnexpectedContinuation,
    /// §5.4: a new text/binary frame arrived while a fragmented message was unfinished.
    #[error("new data frame while a fragmented message is unfinished (RFC 6455 5.4)")]
    ExpectedContinuation,
    /// §5.2: the 64-bit length must have its most significant bit clear; lengths must use the
    /// minimal encoding is *not* required by the RFC, so that is accepted.
    #[error("payload length has its most significant bit set (RFC 6455 5.2)")]
    InvalidLength,
    /// §5.5.1: a close payload of exactly one byte.
    #[error("close frame with a 1-byte payload (RFC 6455 5.5.1)")]
    CloseFrameTooShort,
    /// §7.4: a close code that may not be sent on the wire.
    #[error("invalid close code {0} (RFC 6455 7.4)")]
    InvalidCloseCode(u16),
    /// §8.1: text payloads (and close reasons) must be UTF-8.
    #[error("invalid UTF-8 in a text message or close reason (RFC 6455 8.1)")]
    InvalidUtf8,
    /// Configured `max_frame_size`.
    #[error("frame of {size} bytes exceeds max_frame_size {max}")]
    FrameTooLarge { size: u64, max: usize },
    /// Configured `max_message_size`.
    #[error("message of at least {size} bytes exceeds max_message_size {max}")]
    MessageTooLarge { size: u64, max: usize },
    /// RFC 7692 §7.2.2: a compressed payload that does not inflate.
    #[error("permessage-deflate payload does not inflate: {0}")]
    Inflate(String),
    /// The upgrade request was refused; the HTTP response has been written.
    #[error("handshake refused with HTTP {status}: {reason}")]
    Handshake { status: u16, reason: String },
}

impl WsError {
    /// The close code to send when failing the connection for this error (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::InvalidUtf8 => CLOSE_INVALID_PAYLOAD,
            WsError::FrameTooLarge { .. } | WsError::MessageTooLarge { .. } => {
                CLOSE_MESSAGE_TOO_BIG
            }
            // A corrupt deflate stream is data the peer sent that we cannot accept as a message.
            WsError::Inflate(_) => CLOSE_INVALID_PAYLOAD,
            _ => CLOSE_PROTOCOL_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_follow_rfc_7_4_1() {
        assert_eq!(WsError::InvalidUtf8.close_code(), 1007);
        assert_eq!(
            WsError::FrameTooLarge { size: 9, max: 1 }.close_code(),
            1009
        );
        assert_eq!(
            WsError::MessageTooLarge { size: 9, max: 1 }.close_code(),
            1009
        );
        assert_eq!(WsError::UnmaskedFrame.close_code(), 1002);
        assert_eq!(WsError::ReservedOpcode(3).close_code(), 1002);
        assert!(WsError::ReservedBits { bits: 0b010 }
            .to_string()
            .contains("0b010"));
    }
}
