//! TLS for every protocol: set [`ServerOptions::tls`](crate::ServerOptions::tls) to a
//! [`rustls::ServerConfig`] and each accepted connection gets a rustls server session on its
//! loop. [`Protocol`](crate::Protocol)s, handlers, the WebSocket module (wss) and the HTTP
//! module (https) run unchanged above it: they see plaintext in and pack plaintext out.
//!
//! Where TLS sits in the data path (see `session.rs` for the details): rustls's *unbuffered*
//! server connection, so rustls keeps no input or output buffer per connection.
//! readable -> ciphertext read into the loop's shared scratch buffer, behind the carried bytes
//! of the incomplete record the last read ended with -> `process_tls_records` decrypts record
//! by record in place there -> each record's plaintext gathered into the loop's shared
//! plaintext buffer -> `Protocol::unpack` as for TCP; an incomplete trailing record is the only
//! input a connection keeps (less than one record, freed when empty). Replies:
//! `Protocol::pack` into the output buffer -> at flush, one chunk encrypted straight into the
//! connection's record buffer (lent by the loop's buffer pool, given back once written) -> one
//! `write` -> the next chunk once those are written (so the output buffer and its watermarks
//! keep bounding memory). Handshake flights, tickets, key updates and alerts go through the
//! same record buffer.
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
//! [`Conn::shutdown_write`](crate::Conn::shutdown_write) (once the handshake completed; a
//! connection closed while handshaking has no session to close).
//!
//! Limits: with TLS a loop's read buffer is at least [`MIN_READ_BUFFER`] (64 KiB, whatever
//! `read_buffer_size` says), so the carried bytes plus one whole record always fit; a
//! handshake message spread over records may take at most that less one record (about 46 KiB;
//! larger, e.g. a huge client certificate chain, closes the connection with `Tls`). TLS 1.3
//! early (0-RTT) data is not delivered even if the configuration enables it.
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
pub use session::{TlsInfo, MIN_READ_BUFFER};

/// The rustls crate gev is built with, so users name the same `ServerConfig` type.
pub use rustls;
