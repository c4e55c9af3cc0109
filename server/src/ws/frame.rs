//! Frame codec: bytes <-> frame headers (RFC 6455 §5.2), and the per-frame server-side rules.
//!
//! The first step of decoding: [`parse_header`] looks at the front of the connection's input and
//! says whether a whole header is there (no allocation; a partial header is `Ok(None)`, not an
//! error) and checks everything that can be checked from the header alone: masking, reserved
//! bits, reserved opcodes, control frame size and fragmentation, the 64-bit length's top bit and
//! the configured frame size limit. Message-level rules (continuations, UTF-8, message size) are
//! the decoder's (`decoder.rs`). [`write_header`] is the encoding side, used for every frame the
//! server sends (servers never mask).

use super::error::WsError;

/// A frame's opcode (RFC 6455 §5.2). Reserved opcodes are rejected by `parse_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    /// Parses the low nibble of the first header byte.
    pub fn from_u8(code: u8) -> Result<OpCode, WsError> {
        Ok(match code {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(WsError::ReservedOpcode(other)),
        })
    }

    /// The wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, Ping and Pong (§5.5).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed client frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1: "compressed" when permessage-deflate is negotiated (only on a message's first frame).
    pub rsv1: bool,
    pub opcode: OpCode,
    /// The masking key (client frames are always masked; checked by `parse_header`).
    pub mask: [u8; 4],
    /// Payload length in bytes (at most `max_frame_size`).
    pub payload_len: usize,
    /// Bytes the header itself takes (2 to 14).
    pub header_len: usize,
}

/// Largest header: 2 + 8 (64-bit length) + 4 (mask).
pub const MAX_HEADER_LEN: usize = 14;
/// Largest control frame payload (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Parses the client frame header at the front of `input`. `Ok(None)`: not all header bytes are
/// there yet. `allow_rsv1`: permessage-deflate was negotiated.
pub fn parse_header(
    input: &[u8],
    allow_rsv1: bool,
    max_frame_size: usize,
) -> Result<Option<FrameHeader>, WsError> {
    let (b0, b1) = match input {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };
    let fin = b0 & 0x80 != 0;
    let rsv = (b0 >> 4) & 0x7;
    let opcode = OpCode::from_u8(b0 & 0x0f)?;
    let rsv1 = rsv & 0b100 != 0;
    // RSV1 is the compression bit, allowed only with permessage-deflate and only on the first
    // frame of a data message (RFC 7692 §6.1): never on control frames or continuations.
    let rsv1_allowed = allow_rsv1 && matches!(opcode, OpCode::Text | OpCode::Binary);
    if rsv & 0b011 != 0 || (rsv1 && !rsv1_allowed) {
        return Err(WsError::ReservedBits { bits: rsv });
    }
    if b1 & 0x80 == 0 {
        return Err(WsError::UnmaskedFrame);
    }
    let len7 = b1 & 0x7f;
    if opcode.is_control() {
        if !fin {
            return Err(WsError::FragmentedControlFrame);
        }
        if len7 > MAX_CONTROL_PAYLOAD as u8 {
            // 126/127 announce an extended length, which is always > 125 for a control frame.
            return Err(WsError::ControlFrameTooLong(u64::from(len7)));
        }
    }
    let (length, length_bytes) = match len7 {
        126 => match input.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 2),
            None => return Ok(None),
        },
        127 => match input.get(2..10) {
            Some(b) => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(b);
                let length = u64::from_be_bytes(raw);
                if length >> 63 != 0 {
                    return Err(WsError::InvalidLength);
                }
                (length, 8)
            }
            None => return Ok(None),
        },
        short => (u64::from(short), 0),
    };
    if length > max_frame_size as u64 {
        return Err(WsError::FrameTooLarge {
            size: length,
            max: max_frame_size,
        });
    }
    let mask_at = 2 + length_bytes;
    let Some(mask_bytes) = input.get(mask_at..mask_at + 4) else {
        return Ok(None);
    };
    let mut mask = [0u8; 4];
    mask.copy_from_slice(mask_bytes);
    Ok(Some(FrameHeader {
        fin,
        rsv1,
        opcode,
        mask,
        // Fits: length <= max_frame_size, a usize.
        payload_len: length as usize,
        header_len: mask_at + 4,
    }))
}

/// Appends an unmasked server frame header for a payload of `payload_len` bytes.
pub fn write_header(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: OpCode, payload_len: usize) {
    let b0 = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode.as_u8();
    out.push(b0);
    if payload_len < 126 {
        out.push(payload_len as u8);
    } else if let Ok(len16) = u16::try_from(payload_len) {
        out.push(126);
        out.extend_from_slice(&len16.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(payload_len as u64).to_be_bytes());
    }
}

/// Appends a whole unmasked, unfragmented server frame.
pub fn write_frame(out: &mut Vec<u8>, rsv1: bool, opcode: OpCode, payload: &[u8]) {
    out.reserve(10 + payload.len());
    write_header(out, true, rsv1, opcode, payload.len());
    out.extend_from_slice(payload);
}

/// Appends a Close frame with `code` and `reason` (the reason is cut to fit 125 bytes on a char
/// boundary).
pub fn write_close(out: &mut Vec<u8>, code: Option<u16>, reason: &str) {
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    let len = match code {
        None => 0,
        Some(code) => {
            payload[..2].copy_from_slice(&code.to_be_bytes());
            let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            payload[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
            2 + cut
        }
    };
    write_frame(out, false, OpCode::Close, &payload[..len]);
}

/// Whether `code` may appear in a Close frame on the wire (RFC 6455 §7.4.1-7.4.2, IANA registry).
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masked(b0: u8, len: &[u8]) -> Vec<u8> {
        let mut v = vec![b0, 0x80 | len[0]];
        v.extend_from_slice(&len[1..]);
        v.extend_from_slice(&[1, 2, 3, 4]);
        v
    }

    #[test]
    fn parses_the_three_length_forms() {
        let h = parse_header(&masked(0x81, &[5]), false, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.header_len),
            (true, OpCode::Text, 5, 6)
        );
        let h = parse_header(&masked(0x02, &[126, 1, 0]), false, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.header_len),
            (false, OpCode::Binary, 256, 8)
        );
        let h = parse_header(
            &masked(0x82, &[127, 0, 0, 0, 0, 0, 1, 0, 0]),
            false,
            1 << 20,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (h.payload_len, h.header_len, h.mask),
            (65536, 14, [1, 2, 3, 4])
        );
    }

    #[test]
    fn partial_header_is_not_an_error() {
        let full = masked(0x82, &[127, 0, 0, 0, 0, 0, 1, 0, 0]);
        for cut in 0..full.len() {
            assert_eq!(
                parse_header(&full[..cut], false, 1 << 20),
                Ok(None),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn server_side_rules() {
        assert_eq!(
            parse_header(&[0x81, 0x05], false, 100),
            Err(WsError::UnmaskedFrame)
        );
        assert_eq!(
            parse_header(&masked(0xC1, &[0]), false, 100),
            Err(WsError::ReservedBits { bits: 0b100 })
        );
        assert!(
            parse_header(&masked(0xC1, &[0]), true, 100)
                .unwrap()
                .unwrap()
                .rsv1
        );
        assert!(
            parse_header(&masked(0xC9, &[0]), true, 100).is_err(),
            "rsv1 on a ping"
        );
        assert!(
            parse_header(&masked(0xC0, &[0]), true, 100).is_err(),
            "rsv1 on continuation"
        );
        assert_eq!(
            parse_header(&masked(0x83, &[0]), false, 100),
            Err(WsError::ReservedOpcode(3))
        );
        assert_eq!(
            parse_header(&masked(0x8B, &[0]), false, 100),
            Err(WsError::ReservedOpcode(0xB))
        );
        assert_eq!(
            parse_header(&masked(0x09, &[0]), false, 100),
            Err(WsError::FragmentedControlFrame)
        );
        assert_eq!(
            parse_header(&masked(0x89, &[126, 0, 126]), false, 1000),
            Err(WsError::ControlFrameTooLong(126))
        );
        assert_eq!(
            parse_header(&masked(0x82, &[127, 0x80, 0, 0, 0, 0, 0, 0, 0]), false, 100),
            Err(WsError::InvalidLength)
        );
        assert_eq!(
            parse_header(&masked(0x82, &[126, 1, 0]), false, 100),
            Err(WsError::FrameTooLarge {
                size: 256,
                max: 100
            })
        );
    }

    #[test]
    fn encodes_lengths() {
        for len in [0usize, 125, 126, 65535, 65536] {
            let mut out = Vec::new();
            write_header(&mut out, true, false, OpCode::Binary, len);
            // Re-read it as if masked, to check the length round-trips.
            let mut masked = out.clone();
            masked[1] |= 0x80;
            masked.extend_from_slice(&[0; 4]);
            let h = parse_header(&masked, false, usize::MAX).unwrap().unwrap();
            assert_eq!(h.payload_len, len);
        }
    }

    #[test]
    fn close_codes() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(is_valid_close_code(ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000] {
            assert!(!is_valid_close_code(bad), "{bad}");
        }
    }

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        let mut out = Vec::new();
        write_close(&mut out, Some(1000), &"é".repeat(100));
        assert_eq!(out[1] as usize, out.len() - 2);
        assert!(out.len() - 2 <= 125);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..32), rsv1 in any::<bool>()) {
            let _ = parse_header(&data, rsv1, 1 << 20);
        }
    }
}
