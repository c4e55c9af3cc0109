//! `WsProtocol`: the WebSocket module plugged into the core's framing step (`Protocol`).
//!
//! `unpack` runs the connection's [`WsDecoder`] (handshake, then frames -> messages) and maps its
//! result onto the core's `Unpacked`/`ProtocolError`; `pack` runs the [`WsEncoder`]. The protocol
//! answers handshakes, pings and closes by itself through `out`, so the handler only ever sees
//! `Open`, whole data messages and the peer's `Close`.

use std::sync::Arc;

use crate::error::ProtocolError;
use crate::protocol::{Protocol, Unpacked};

use super::config::WebSocketConfig;
use super::decoder::{Decoded, WsDecoder};
use super::encoder::WsEncoder;
use super::error::WsError;
use super::handshake::{AcceptAll, HandshakeHook};
use super::message::{WsMessage, WsReply};

/// The WebSocket protocol for `gev::Server` (use it with a [`WsHandler`](super::WsHandler)
/// through [`WsAdapter`](super::WsAdapter)).
#[derive(Clone)]
pub struct WsProtocol {
    config: WebSocketConfig,
    hook: Arc<dyn HandshakeHook>,
}

impl std::fmt::Debug for WsProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsProtocol")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for WsProtocol {
    fn default() -> Self {
        WsProtocol::new(WebSocketConfig::default())
    }
}

impl WsProtocol {
    /// A protocol with these limits that accepts every valid upgrade.
    pub fn new(config: WebSocketConfig) -> Self {
        WsProtocol {
            config,
            hook: Arc::new(AcceptAll),
        }
    }

    /// Decides upgrades with `hook` (accept/reject by path, headers, subprotocol).
    pub fn with_hook(mut self, hook: impl HandshakeHook) -> Self {
        self.hook = Arc::new(hook);
        self
    }

    /// The limits in force.
    pub fn config(&self) -> &WebSocketConfig {
        &self.config
    }
}

impl Protocol for WsProtocol {
    type Decoder = WsDecoder;
    type Encoder = WsEncoder;
    type Message<'a> = WsMessage<'a>;
    type Reply<'a> = WsReply<'a>;

    fn unpack<'a>(
        &self,
        decoder: &'a mut WsDecoder,
        encoder: &mut WsEncoder,
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Unpacked<WsMessage<'a>>, ProtocolError> {
        match decoder.decode(&self.config, &*self.hook, encoder, input, out) {
            Ok(Decoded::Incomplete) => Ok(Unpacked::Incomplete),
            Ok(Decoded::Skip(consumed)) => Ok(Unpacked::Skip { consumed }),
            Ok(Decoded::Message { consumed, message }) => {
                Ok(Unpacked::Message { consumed, message })
            }
            Err(WsError::FrameTooLarge { size, max }) => Err(ProtocolError::FrameTooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                max,
            }),
            Err(error) => Err(ProtocolError::Other(Box::new(error))),
        }
    }

    fn pack(&self, encoder: &mut WsEncoder, reply: WsReply<'_>, out: &mut Vec<u8>) {
        encoder.encode(reply, out);
    }
}
