//! Raw framing: no header at all. The server is an echo, so the reply to a request is the next
//! `len` bytes of the stream, where `len` is the size of the oldest outstanding request. Bytes
//! that arrive with nothing outstanding are a protocol error (the stream is out of step).

use super::{Decoded, FrameError};

/// Raw has no per-connection state; the expected length comes from the outstanding requests.
#[derive(Debug, Default)]
pub struct RawCodec;

/// Take the reply to the oldest outstanding request (of `expected_len` bytes) once it is whole.
#[inline]
pub fn decode(input: &[u8], expected_len: Option<usize>) -> Result<Decoded<'_>, FrameError> {
    let Some(len) = expected_len else {
        return if input.is_empty() {
            Ok(Decoded::Incomplete)
        } else {
            Err(FrameError::Unsolicited)
        };
    };
    if input.len() < len {
        return Ok(Decoded::Incomplete);
    }
    Ok(Decoded::Reply {
        consumed: len,
        body: &input[..len],
        ok: true,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::decode_in_pieces;
    use super::super::Codec;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn waits_for_the_whole_echo() {
        assert_eq!(decode(b"abc", Some(4)), Ok(Decoded::Incomplete));
        assert_eq!(
            decode(b"abcdef", Some(4)),
            Ok(Decoded::Reply {
                consumed: 4,
                body: b"abcd",
                ok: true
            })
        );
    }

    #[test]
    fn bytes_without_request_are_an_error() {
        assert_eq!(decode(b"x", None), Err(FrameError::Unsolicited));
        assert_eq!(decode(b"", None), Ok(Decoded::Incomplete));
    }

    proptest! {
        #[test]
        fn any_fragmentation_gives_the_same_replies(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 1..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let stream: Vec<u8> = payloads.concat();
            let expected: Vec<usize> = payloads.iter().map(Vec::len).collect();
            let replies = decode_in_pieces(&mut Codec::Raw(RawCodec), &stream, &cuts, &expected).unwrap();
            let bodies: Vec<Vec<u8>> = replies.into_iter().map(|(b, _)| b).collect();
            prop_assert_eq!(bodies, payloads);
        }
    }
}
