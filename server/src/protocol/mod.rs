//! The framing step of the data path: bytes buffered for a connection -> messages for the
//! handler ([`Protocol::unpack`]), and the handler's replies -> bytes in the connection's output
//! buffer ([`Protocol::pack`]).
//!
//! Framing is two steps in one call: check that a whole frame is buffered (cheap, no
//! allocation; a partial frame is [`Unpacked::Incomplete`], not an error), then hand out the
//! frame borrowed from the input. The loop calls `unpack` on the read bytes in place (the loop's
//! scratch buffer) and copies only an incomplete tail into the connection's ring buffer.

mod length_prefixed;
mod raw;

pub use length_prefixed::LengthPrefixed;
pub use raw::Raw;

use crate::error::ProtocolError;

/// A wire protocol: how to cut messages out of a byte stream and how to frame replies.
///
/// Implement it for your own framing; [`Raw`] and [`LengthPrefixed`] are the two built in.
pub trait Protocol: Send + Sync + 'static {
    /// Per-connection state used while unpacking (e.g. WebSocket handshake phase, fragment
    /// buffer, UTF-8 validator, inflater). Created with `Default` when the connection opens.
    type Decoder: Default + Send + 'static;
    /// Per-connection state used while packing (e.g. deflater, negotiated options).
    type Encoder: Default + Send + 'static;
    /// What unpack hands to the handler; may borrow the input or the decoder.
    type Message<'a>;
    /// What the handler (or a `ConnHandle::send` from another thread, with `'a = 'static`)
    /// gives to pack.
    type Reply<'a>: Send;

    /// Take at most one message from the front of `input` (all bytes buffered for this
    /// connection, contiguous, mutable so a codec may unmask in place). A partial frame is not an
    /// error: return `Ok(Unpacked::Incomplete)`. Bytes the protocol must answer by itself
    /// (handshake response, pong, close echo) are appended to `out`, which is the connection's
    /// output buffer. An `Err` closes the connection after `out` has been flushed (bounded
    /// linger, [`ServerOptions::close_linger`](crate::ServerOptions::close_linger)).
    fn unpack<'a>(
        &self,
        decoder: &'a mut Self::Decoder,
        encoder: &mut Self::Encoder,
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Unpacked<Self::Message<'a>>, ProtocolError>;

    /// Append the framed form of `reply` to `out`.
    fn pack(&self, encoder: &mut Self::Encoder, reply: Self::Reply<'_>, out: &mut Vec<u8>);
}

/// The outcome of one [`Protocol::unpack`] call.
#[derive(Debug, PartialEq, Eq)]
pub enum Unpacked<M> {
    /// Not a whole frame yet; call again when more bytes arrive.
    Incomplete,
    /// `consumed` bytes were used without producing a message (a control frame, a handshake).
    /// `consumed` must be at least 1.
    Skip {
        /// Bytes to drop from the front of the input.
        consumed: usize,
    },
    /// One message; `consumed` bytes are dropped from the input after the handler returns.
    Message {
        /// Bytes to drop from the front of the input.
        consumed: usize,
        /// The message handed to [`Handler::on_message`](crate::Handler::on_message).
        message: M,
    },
}
