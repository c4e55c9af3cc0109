//! TLS for every protocol: set [`ServerOptions::tls`](crate::ServerOptions::tls) to a
//! [`rustls::ServerConfig`] and each accepted connection gets a rustls server session on its
//! loop. [`Protocol`](crate::Protocol)s, handlers, the WebSocket module (wss) and the HTTP
//! module (https) run unchanged above it: they see plaintext in and pack plaintext out.
//!
//! Where TLS sits in the data path (see `session.rs` for the details):
//! readable -> ciphertext read into the loop's shared scratch buffer -> rustls (`read_tls`,
//! `process_new_packets`) -> all decrypted plaintext drained into the loop's shared plaintext
//! buffer -> `Protocol::unpack` as for TCP. Replies: `Protocol::pack` into the output buffer ->
//! at flush, one chunk sealed into TLS records -> one `writev` -> the next chunk once those are
//! written (so the output buffer and its watermarks keep bounding memory).
//!
//! Handshakes progress inside this loop without blocking it (each flight is read and answered
//! like any other input) and must finish within
//! [`ServerOptions::tls_handshake_timeout`](crate::ServerOptions::tls_handshake_timeout), or the
//! connection closes with [`CloseReason::HandshakeTimeout`](crate::CloseReason::HandshakeTimeout).
//! Anything rustls rejects (a client's fatal alert such as `bad_certificate` or
//! `certificate_expired`, plaintext sent to the TLS port, a forged or oversized record) closes
//! that connection only, after the alert rustls queued is flushed, with
//! [`CloseReason::Tls`](crate::CloseReason::Tls); both reasons are counted by the metrics.
//! `close_notify` is sent before every orderly close and on
//! [`Conn::shutdown_write`](crate::Conn::shutdown_write).
//!
//! ```
//! use std::sync::Arc;
//! use gev::{tls, Raw, Server, ServerOptions};
//! # use gev::{Conn, Handler};
//! # use std::borrow::Cow;
//! # struct Echo;
//! # impl Handler<Raw> for Echo {
//! #     fn on_message<'a>(&self, _: &mut Conn<'_, Raw>, m: &'a [u8]) -> Option<Cow<'a, [u8]>> {
//! #         Some(m.into())
//! #     }
//! # }
//!
//! let cert = tls::SelfSigned::generate(&["localhost"])?;
//! println!("certificate SHA-256 {}", cert.fingerprint());
//! let config = tls::server_config(vec![cert.cert_der()], cert.key_der())?;
//! let options = ServerOptions::new("127.0.0.1:0".parse().unwrap()).tls(Arc::new(config));
//! let server = Server::new(options, Raw, Echo)?;
//! # drop(server);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod error;
mod self_signed;
pub(crate) mod session;

pub use config::{
    load_certs, load_private_key, server_config, server_config_from_pem_files, SESSION_CACHE_SIZE,
};
pub use error::TlsError;
pub use self_signed::{sha256_fingerprint, SelfSigned};
pub use session::TlsInfo;

/// The rustls crate gev is built with, so users name the same `ServerConfig` type.
pub use rustls;
