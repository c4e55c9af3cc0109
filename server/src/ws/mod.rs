//! WebSocket (RFC 6455, with permessage-deflate RFC 7692) on the gev reactor.
//!
//! Data path of a WebSocket connection, one file per step:
//! `handshake.rs` (HTTP upgrade) -> `decoder.rs` (frames -> messages; header rules in
//! `frame.rs`, `mask.rs` unmasking, `utf8.rs` validation, `deflate.rs` inflation) -> the
//! application's `WsHandler` -> `encoder.rs` (messages -> frames, deflation). `config.rs` holds
//! every limit, `error.rs` every rule a peer can break (each with its close code).

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
