//! `Raw`, gev's DefaultProtocol: whatever one read returned is one message, and a reply is
//! written as is. No per-connection state, no copy of the input (the message borrows the loop's
//! scratch buffer).

use std::borrow::Cow;

use super::{Protocol, Unpacked};
use crate::error::ProtocolError;

/// Every read is one message; replies are sent unframed.
///
/// ```
/// use gev::{Protocol, Raw, Unpacked};
///
/// let mut input = *b"ping";
/// let mut out = Vec::new();
/// let mut decoder = ();
/// let unpacked = Raw.unpack(&mut decoder, &mut (), &mut input, &mut out).unwrap();
/// assert_eq!(unpacked, Unpacked::Message { consumed: 4, message: &b"ping"[..] });
/// Raw.pack(&mut (), b"pong"[..].into(), &mut out);
/// assert_eq!(out, b"pong");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Protocol for Raw {
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
        if input.is_empty() {
            return Ok(Unpacked::Incomplete);
        }
        Ok(Unpacked::Message {
            consumed: input.len(),
            message: input,
        })
    }

    #[inline]
    fn pack(&self, _encoder: &mut (), reply: Cow<'_, [u8]>, out: &mut Vec<u8>) {
        out.extend_from_slice(&reply);
    }
}
