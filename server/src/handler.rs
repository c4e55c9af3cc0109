//! The application's side of the data path: [`Handler`] is called on the loop thread that owns
//! the connection, once when it opens, once per unpacked message (the gev signature: the returned
//! reply is packed and queued on the same connection), and once when it closes, with the
//! [`CloseReason`].

use crate::connection::Conn;
use crate::metrics::CloseKind;
use crate::protocol::Protocol;

/// Callbacks of a server's connections. One value serves every connection of every loop (it is
/// shared), so per-connection state goes in the connection's context slot
/// ([`Conn::set_context`]).
///
/// A panic in a callback closes only that connection ([`CloseReason::Panic`]) and is logged.
///
/// **Writing `on_message`**: write the protocol's concrete types, as you would first write them
/// (`message: &'a [u8]`, `-> Option<Cow<'a, [u8]>>` for [`Raw`](crate::Raw)):
///
/// ```
/// use std::borrow::Cow;
/// use gev::{Conn, Handler, Raw};
///
/// struct Upper;
/// impl Handler<Raw> for Upper {
///     fn on_message<'a>(&self, _conn: &mut Conn<'_, Raw>, msg: &'a [u8]) -> Option<Cow<'a, [u8]>> {
///         Some(Cow::Owned(msg.to_ascii_uppercase()))
///     }
/// }
/// ```
///
/// Why this compiles: the trait ties `'a` to `&'a self` as well as to the message, which makes
/// `'a` a *late-bound* lifetime in the trait, as it is in an impl written with concrete types
/// (before, `'a` appeared only inside `P::Message<'a>`, was early-bound, and a concrete impl
/// failed with rustc E0195). An impl that names the message through a projection — generic over
/// `P` (`P::Message<'a>`) or with the [`MessageOf`]/[`ReplyOf`] aliases — must write `&'a self`
/// too, so that its `'a` is late-bound as well:
///
/// ```
/// use gev::{Conn, Handler, MessageOf, Protocol, ReplyOf};
///
/// struct Silent;
/// impl<P: Protocol> Handler<P> for Silent {
///     fn on_message<'a>(&'a self, _: &mut Conn<'_, P>, _: MessageOf<'a, P>) -> Option<ReplyOf<'a, P>> {
///         None
///     }
/// }
/// ```
///
/// The shared `'a` also lets a reply borrow from the handler itself (`Cow::Borrowed(&self.banner)`).
pub trait Handler<P: Protocol>: Send + Sync + 'static {
    /// The connection is registered on its loop and can be written to.
    fn on_connect(&self, _conn: &mut Conn<'_, P>) {}

    /// One message arrived. A returned reply is packed and sent on this connection (after
    /// anything the handler sent with [`Conn::send`] during the call).
    ///
    /// `'a` is both the borrow of the handler and of the message (see the trait docs for why).
    fn on_message<'a>(
        &'a self,
        conn: &mut Conn<'_, P>,
        message: P::Message<'a>,
    ) -> Option<P::Reply<'a>>;

    /// The connection is closed (its socket is about to be released). Sends are ignored.
    fn on_close(&self, _conn: &mut Conn<'_, P>, _reason: CloseReason) {}
}

/// The message type of protocol `P` (in a generic `on_message`, with `&'a self`, see [`Handler`]).
pub type MessageOf<'a, P> = <P as Protocol>::Message<'a>;

/// The reply type of protocol `P` (in a generic `on_message`, with `&'a self`, see [`Handler`]).
pub type ReplyOf<'a, P> = <P as Protocol>::Reply<'a>;

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The peer closed its side (read returned 0) or reset the connection.
    Peer,
    /// No traffic for longer than [`ServerOptions::idle_timeout`](crate::ServerOptions::idle_timeout).
    Idle,
    /// An I/O error on the socket.
    Error,
    /// The input broke the protocol ([`Protocol::unpack`] returned an error).
    Protocol,
    /// The server is stopping.
    Shutdown,
    /// The output stayed above the high watermark with [`Backpressure::Close`](crate::Backpressure::Close).
    Backpressure,
    /// The application closed it ([`Conn::close`] or [`ConnHandle::close`](crate::ConnHandle::close)).
    Local,
    /// A handler callback panicked while handling this connection.
    Panic,
    /// TLS failed: the peer sent a fatal alert (e.g. it rejected our certificate), plaintext on
    /// the TLS port, or a record rustls rejected (see [`crate::tls`]).
    Tls,
    /// The TLS handshake did not complete within
    /// [`ServerOptions::tls_handshake_timeout`](crate::ServerOptions::tls_handshake_timeout).
    HandshakeTimeout,
}

impl CloseReason {
    /// A short lowercase label (`"peer"`, `"idle"`, ...), as used in logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::Peer => "peer",
            CloseReason::Idle => "idle",
            CloseReason::Error => "error",
            CloseReason::Protocol => "protocol",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Backpressure => "backpressure",
            CloseReason::Local => "local",
            CloseReason::Panic => "panic",
            CloseReason::Tls => "tls",
            CloseReason::HandshakeTimeout => "handshake_timeout",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<CloseReason> for CloseKind {
    fn from(reason: CloseReason) -> CloseKind {
        match reason {
            CloseReason::Peer => CloseKind::Peer,
            CloseReason::Idle => CloseKind::Idle,
            CloseReason::Error => CloseKind::Error,
            CloseReason::Protocol => CloseKind::Protocol,
            CloseReason::Shutdown => CloseKind::Shutdown,
            CloseReason::Backpressure => CloseKind::Backpressure,
            CloseReason::Local => CloseKind::Local,
            CloseReason::Panic => CloseKind::Panic,
            CloseReason::Tls => CloseKind::Tls,
            CloseReason::HandshakeTimeout => CloseKind::HandshakeTimeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_the_metrics_kinds() {
        let all = [
            CloseReason::Peer,
            CloseReason::Idle,
            CloseReason::Error,
            CloseReason::Protocol,
            CloseReason::Shutdown,
            CloseReason::Backpressure,
            CloseReason::Local,
            CloseReason::Panic,
            CloseReason::Tls,
            CloseReason::HandshakeTimeout,
        ];
        for reason in all {
            assert_eq!(reason.as_str(), CloseKind::from(reason).as_str());
        }
    }
}
