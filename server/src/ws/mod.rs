//! WebSocket (RFC 6455, with permessage-deflate RFC 7692) on the gev reactor.
//!
//! Data path of a WebSocket connection, one file per step:
//! `handshake.rs` (HTTP upgrade) -> `decoder.rs` (frames -> messages; header rules in
//! `frame.rs`, `mask.rs` unmasking, `utf8.rs` validation, `deflate.rs` inflation) -> the
//! application's `WsHandler` -> `encoder.rs` (messages -> frames, deflation). `config.rs` holds
//! every limit, `error.rs` every rule a peer can break (each with its close code).
//! `protocol.rs` plugs the decoder/encoder into the core as `WsProtocol`; `handler.rs` runs a
//! [`WsHandler`] as the core's `Handler` ([`WsAdapter`]).
//!
//! The protocol answers pings and closes by itself; the handler sees `on_open`, whole text or
//! binary messages, and `on_close` once. Sends from other threads go through
//! [`WsConn::handle`] (`ConnHandle<WsProtocol>::send(WsReply<'static>)`).
//!
//! ```
//! use std::borrow::Cow;
//! use gev::ws::{WebSocketConfig, WsAdapter, WsConn, WsData, WsHandler, WsProtocol, WsReply};
//! use gev::{Server, ServerOptions};
//!
//! /// Replies to every text message with its length.
//! struct Length;
//! impl WsHandler for Length {
//!     fn on_message<'a>(&self, _: &mut WsConn<'_, '_>, msg: WsData<'a>) -> Option<WsReply<'a>> {
//!         match msg {
//!             WsData::Text(text) => Some(WsReply::Text(Cow::Owned(text.len().to_string()))),
//!             WsData::Binary(_) => None,
//!         }
//!     }
//! }
//!
//! let config = WebSocketConfig::default().max_message_size(1 << 20);
//! let options = ServerOptions::new("127.0.0.1:0".parse().unwrap()).loops(1);
//! let handler = WsAdapter::new(Length, &config);
//! let server = Server::new(options, WsProtocol::new(config), handler)?;
//! let addr = server.local_addr();
//! let running = server.start()?;
//!
//! let stream = std::net::TcpStream::connect(addr).unwrap();
//! let (mut client, _) = tungstenite::client(format!("ws://{addr}/"), stream).unwrap();
//! client.send(tungstenite::Message::text("héllo")).unwrap();
//! assert_eq!(client.read().unwrap(), tungstenite::Message::text("6"));
//! running.stop()?;
//! # Ok::<(), gev::Error>(())
//! ```
//!
//! Conformance: `tests/ws_autobahn.rs` runs the Autobahn cases 1-10 and 12-13 (kosoku) against
//! the `gev-websocket` echo binary; `fuzz/` holds cargo-fuzz targets for the handshake parser and
//! the frame decoder.

pub mod config;
pub mod decoder;
pub mod deflate;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod handler;
pub mod handshake;
pub mod mask;
pub mod message;
pub mod protocol;
pub mod utf8;

pub use config::WebSocketConfig;
pub use decoder::{Decoded, WsDecoder};
pub use encoder::WsEncoder;
pub use error::WsError;
pub use handler::{WsAdapter, WsClose, WsConn, WsData, WsHandler};
pub use handshake::{AcceptAll, HandshakeDecision, HandshakeHook, HandshakeRequest};
pub use message::{WsMessage, WsReply};
pub use protocol::WsProtocol;
