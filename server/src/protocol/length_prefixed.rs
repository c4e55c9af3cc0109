//! `LengthPrefixed`: each message is a 4-byte big-endian length followed by that many payload
//! bytes (gev's protocol example). A frame announcing more than `max_frame` bytes is a
//! [`ProtocolError::FrameTooLarge`] (the connection is closed), checked before anything is
//! buffered for it.

use std::borrow::Cow;

use super::{Protocol, Unpacked};
use crate::error::ProtocolError;

/// Bytes of the length header.
pub const HEADER_LEN: usize = 4;

/// 4-byte big-endian length + payload framing.
///
/// ```
/// use gev::{LengthPrefixed, Protocol, Unpacked};
///
/// let proto = LengthPrefixed::new(1024);
/// let mut out = Vec::new();
/// proto.pack(&mut (), b"hi"[..].into(), &mut out);
/// assert_eq!(out, [0, 0, 0, 2, b'h', b'i']);
///
/// let mut decoder = ();
/// let mut partial = [0, 0, 0, 2, b'h'];
/// assert_eq!(proto.unpack(&mut decoder, &mut (), &mut partial, &mut Vec::new()).unwrap(), Unpacked::Incomplete);
/// let unpacked = proto.unpack(&mut decoder, &mut (), &mut out, &mut Vec::new()).unwrap();
/// assert_eq!(unpacked, Unpacked::Message { consumed: 6, message: &b"hi"[..] });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LengthPrefixed {
    /// Largest payload accepted, in bytes.
    pub max_frame: usize,
}

impl LengthPrefixed {
    /// Default [`max_frame`](Self::max_frame): 1 MiB.
    pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;

    /// Framing that accepts payloads up to `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        LengthPrefixed { max_frame }
    }
}

impl Default for LengthPrefixed {
    fn default() -> Self {
        LengthPrefixed::new(Self::DEFAULT_MAX_FRAME)
    }
}

impl Protocol for LengthPrefixed {
    type Decoder = ();
    type Encoder = ();
    type Message<'a> = &'a [u8];
    type Reply<'a> = Cow<'a, [u8]>;

    #[inline]
    fn unpack<'a>(
        &self,
        _decoder: &'a mut (),
        _encoder: &mut (),
        input: &'a mut [u8],
        _out: &mut Vec<u8>,
    ) -> Result<Unpacked<&'a [u8]>, ProtocolError> {
        let Some(header) = input.first_chunk::<HEADER_LEN>() else {
            return Ok(Unpacked::Incomplete);
        };
        let size = u32::from_be_bytes(*header) as usize;
        if size > self.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                size,
                max: self.max_frame,
            });
        }
        let end = HEADER_LEN + size;
        if input.len() < end {
            return Ok(Unpacked::Incomplete);
        }
        Ok(Unpacked::Message {
            consumed: end,
            message: &input[HEADER_LEN..end],
        })
    }

    /// Payloads longer than `u32::MAX` bytes cannot be framed; they are truncated to that
    /// length (and logged), since `pack` has no error path.
    #[inline]
    fn pack(&self, _encoder: &mut (), reply: Cow<'_, [u8]>, out: &mut Vec<u8>) {
        let payload: &[u8] = &reply;
        let size = match u32::try_from(payload.len()) {
            Ok(size) => size,
            Err(_) => {
                tracing::error!(
                    len = payload.len(),
                    "LengthPrefixed reply longer than u32::MAX bytes truncated"
                );
                u32::MAX
            }
        };
        out.reserve(HEADER_LEN + size as usize);
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(&payload[..size as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Unpacks everything `stream` holds when it arrives in the given fragment sizes, keeping
    /// incomplete tails as the loop does.
    fn unpack_fragmented(
        proto: &LengthPrefixed,
        stream: &[u8],
        cuts: &[usize],
    ) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let mut buffered: Vec<u8> = Vec::new();
        let mut messages = Vec::new();
        let mut offset = 0;
        let mut cut_iter = cuts.iter().copied();
        while offset < stream.len() {
            let take = cut_iter
                .next()
                .unwrap_or(stream.len())
                .clamp(1, stream.len() - offset);
            buffered.extend_from_slice(&stream[offset..offset + take]);
            offset += take;
            let mut start = 0;
            loop {
                match proto.unpack(&mut (), &mut (), &mut buffered[start..], &mut Vec::new())? {
                    Unpacked::Incomplete => break,
                    Unpacked::Skip { consumed } => start += consumed,
                    Unpacked::Message { consumed, message } => {
                        messages.push(message.to_vec());
                        start += consumed;
                    }
                }
            }
            buffered.drain(..start);
        }
        Ok(messages)
    }

    proptest! {
        #[test]
        fn any_fragmentation_yields_the_same_messages(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in proptest::collection::vec(1usize..64, 0..200),
        ) {
            let proto = LengthPrefixed::new(300);
            let mut stream = Vec::new();
            for p in &payloads {
                proto.pack(&mut (), Cow::Borrowed(p), &mut stream);
            }
            let got = unpack_fragmented(&proto, &stream, &cuts).unwrap();
            prop_assert_eq!(got, payloads);
        }

        #[test]
        fn oversized_frame_is_rejected_whatever_the_fragmentation(
            size in 101usize..100_000,
            cuts in proptest::collection::vec(1usize..8, 0..10),
        ) {
            let proto = LengthPrefixed::new(100);
            let mut stream = (size as u32).to_be_bytes().to_vec();
            stream.extend_from_slice(&[7; 16]);
            let err = unpack_fragmented(&proto, &stream, &cuts).unwrap_err();
            let is_too_large = matches!(err, ProtocolError::FrameTooLarge { size: s, max: 100 } if s == size);
            prop_assert!(is_too_large);
        }
    }

    #[test]
    fn empty_payload_is_a_message() {
        let mut input = [0u8, 0, 0, 0, 9];
        let mut decoder = ();
        let got = LengthPrefixed::default()
            .unpack(&mut decoder, &mut (), &mut input, &mut Vec::new())
            .unwrap();
        assert_eq!(
            got,
            Unpacked::Message {
                consumed: 4,
                message: &[][..]
            }
        );
    }
}
