//! The bytes a `garbage` client sends: for each framing, a message that breaks that framing's
//! rules in the way a fuzzer or a confused client would, and that a robust server must reject by
//! closing the connection rather than by buffering, crashing or hanging.

use crate::framing::FramingKind;

/// A length prefix far above any sane frame limit (4 GiB - 16).
const HUGE_LENGTH: u32 = 0xFFFF_FFF0;

/// The garbage for `framing`, to be written after the opening handshake (WebSocket) or on a
/// fresh connection (the others).
///
/// - `length`: a 4-byte prefix announcing a ~4 GiB frame, then a little of its "payload".
/// - `websocket`: an unmasked frame with RSV bits set and reserved opcode 0x3 (three rules
///   broken at once: client frames must be masked, RSV needs an extension, 0x3 is reserved).
/// - `http`: a request line that is not HTTP, with a NUL byte and a header without a colon.
/// - `raw`: raw TCP has no framing to break; binary noise (NUL and 0xFF bytes) is sent, which an
///   echo server must simply echo.
pub fn bytes(framing: FramingKind) -> Vec<u8> {
    match framing {
        FramingKind::Length => {
            let mut out = HUGE_LENGTH.to_be_bytes().to_vec();
            out.extend_from_slice(&[0xAB; 60]);
            out
        }
        FramingKind::Websocket => {
            // FIN + RSV1..3 + opcode 0x3, MASK bit clear, 5-byte payload.
            let mut out = vec![0xF3, 0x05];
            out.extend_from_slice(b"junk!");
            out
        }
        FramingKind::Http => b"\x16\x03\x01 NOT/HTTP \x00\xff\r\nno colon here\r\n\r\n".to_vec(),
        FramingKind::Raw => {
            let mut out = vec![0u8; 32];
            out.extend_from_slice(&[0xFF; 32]);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_garbage_announces_a_huge_frame() {
        let g = bytes(FramingKind::Length);
        assert_eq!(u32::from_be_bytes([g[0], g[1], g[2], g[3]]), HUGE_LENGTH);
    }

    #[test]
    fn websocket_garbage_is_unmasked_with_reserved_opcode() {
        let g = bytes(FramingKind::Websocket);
        assert_eq!(g[0] & 0x0F, 0x3);
        assert_eq!(g[0] & 0x70, 0x70);
        assert_eq!(g[1] & 0x80, 0);
    }

    #[test]
    fn http_garbage_does_not_parse() {
        let g = bytes(FramingKind::Http);
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut request = httparse::Request::new(&mut headers);
        assert!(request.parse(&g).is_err());
        assert!(!bytes(FramingKind::Raw).is_empty());
    }
}
