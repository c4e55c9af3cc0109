//! Length-prefixed framing: every message, both ways, is a 4-byte big-endian payload length
//! followed by the payload (the format of gev's `LengthPrefixed` protocol).

use super::{Decoded, FrameError};

const HEADER: usize = 4;

/// Decoder state: only the size limit.
#[derive(Debug)]
pub struct LengthCodec {
    max_reply: usize,
}

/// Append `payload` with its length prefix.
#[inline]
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    // Payload sizes are validated to fit u32 when the run is configured.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

impl LengthCodec {
    pub fn new(max_reply: usize) -> LengthCodec {
        LengthCodec { max_reply }
    }

    /// Check the header (cheap), then hand out the payload once it is all buffered.
    #[inline]
    pub fn decode<'a>(&self, input: &'a [u8]) -> Result<Decoded<'a>, FrameError> {
        let Some(header) = input.get(..HEADER) else {
            return Ok(Decoded::Incomplete);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > self.max_reply {
            return Err(FrameError::TooLarge {
                size: len as u64,
                max: self.max_reply,
            });
        }
        let end = HEADER + len;
        if input.len() < end {
            return Ok(Decoded::Incomplete);
        }
        Ok(Decoded::Reply {
            consumed: end,
            body: &input[HEADER..end],
            ok: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::decode_in_pieces;
    use super::super::Codec;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_big_endian_length() {
        let mut out = Vec::new();
        encode(b"hey", &mut out);
        assert_eq!(out, b"\0\0\0\x03hey");
    }

    #[test]
    fn rejects_oversized_frames_before_buffering_them() {
        let codec = LengthCodec::new(10);
        assert_eq!(
            codec.decode(b"\0\0\0\x0bxx"),
            Err(FrameError::TooLarge { size: 11, max: 10 })
        );
    }

    #[test]
    fn empty_payload_is_a_reply() {
        let codec = LengthCodec::new(10);
        assert_eq!(
            codec.decode(b"\0\0\0\0"),
            Ok(Decoded::Reply {
                consumed: 4,
                body: b"",
                ok: true
            })
        );
    }

    proptest! {
        #[test]
        fn any_fragmentation_gives_the_same_replies(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let mut stream = Vec::new();
            for p in &payloads { encode(p, &mut stream); }
            let mut codec = Codec::Length(LengthCodec::new(1 << 20));
            let replies = decode_in_pieces(&mut codec, &stream, &cuts, &[]).unwrap();
            let bodies: Vec<Vec<u8>> = replies.into_iter().map(|(b, _)| b).collect();
            prop_assert_eq!(bodies, payloads);
        }
    }
}
