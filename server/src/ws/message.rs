//! The values that cross the WebSocket module's boundary: what the decoder hands up
//! ([`WsMessage`]) and what the application sends ([`WsReply`]).
//!
//! `WsMessage` borrows either the connection's input buffer (a whole unfragmented frame,
//! unmasked in place: no copy) or the decoder's message buffer (fragmented or compressed
//! messages); `WsReply` owns or borrows its payload (`Cow`), so the same type is packed on the
//! loop thread and sent from other threads through a `ConnHandle` (with `'static`).

use std::borrow::Cow;

use super::handshake::HandshakeRequest;

/// One event of a WebSocket connection, as `WsProtocol::unpack` produces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage<'a> {
    /// The upgrade succeeded (the 101 response is in the output buffer).
    Open(&'a HandshakeRequest),
    /// A whole text message, validated as UTF-8.
    Text(&'a str),
    /// A whole binary message.
    Binary(&'a [u8]),
    /// The peer sent a valid Close frame; it has been answered and the connection is closing.
    Close { code: Option<u16>, reason: &'a str },
}

/// A message for the server to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsReply<'a> {
    Text(Cow<'a, str>),
    Binary(Cow<'a, [u8]>),
    /// A Ping (payload cut to 125 bytes).
    Ping(Cow<'a, [u8]>),
    /// Starts the closing handshake; nothing is sent after it. `code` must be a valid close code
    /// (an invalid one is sent as 1000); the reason is cut to fit the frame.
    Close {
        code: u16,
        reason: Cow<'a, str>,
    },
}

impl WsReply<'_> {
    /// Turns the reply into one that owns its payload (for `ConnHandle::send`).
    pub fn into_owned(self) -> WsReply<'static> {
        match self {
            WsReply::Text(t) => WsReply::Text(Cow::Owned(t.into_owned())),
            WsReply::Binary(b) => WsReply::Binary(Cow::Owned(b.into_owned())),
            WsReply::Ping(b) => WsReply::Ping(Cow::Owned(b.into_owned())),
            WsReply::Close { code, reason } => WsReply::Close {
                code,
                reason: Cow::Owned(reason.into_owned()),
            },
        }
    }

    /// A text reply.
    pub fn text(text: impl Into<Cow<'static, str>>) -> WsReply<'static> {
        WsReply::Text(text.into())
    }

    /// A binary reply.
    pub fn binary(bytes: impl Into<Cow<'static, [u8]>>) -> WsReply<'static> {
        WsReply::Binary(bytes.into())
    }
}
