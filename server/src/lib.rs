//! gev: a reactor server library in the style of the Go libraries gev and gnet: one acceptor
//! thread (none with a single loop: it accepts itself), N event loops (one `mio::Poll` each, on threads `gev-loop-N`), pluggable framing
//! ([`Protocol`]) and a callback [`Handler`] whose `on_message` returns the reply.
//!
//! ```
//! use std::borrow::Cow;
//! use std::io::{Read, Write};
//! use gev::{Conn, Handler, LengthPrefixed, Server, ServerOptions};
//!
//! /// Replies to every frame with the frame reversed.
//! struct Reverse;
//! impl Handler<LengthPrefixed> for Reverse {
//!     fn on_message<'a>(
//!         &self,
//!         _: &mut Conn<'_, LengthPrefixed>,
//!         msg: &'a [u8],
//!     ) -> Option<Cow<'a, [u8]>> {
//!         Some(Cow::Owned(msg.iter().rev().copied().collect()))
//!     }
//! }
//!
//! let options = ServerOptions::new("127.0.0.1:0".parse().unwrap()).loops(2);
//! let server = Server::new(options, LengthPrefixed::new(1 << 20), Reverse)?;
//! let addr = server.local_addr();
//! let running = server.start()?;
//!
//! let mut client = std::net::TcpStream::connect(addr).unwrap();
//! client.write_all(&[0, 0, 0, 3, b'a', b'b', b'c']).unwrap();
//! let mut reply = [0; 7];
//! client.read_exact(&mut reply).unwrap();
//! assert_eq!(reply, [0, 0, 0, 3, b'c', b'b', b'a']);
//! running.stop()?;
//! # Ok::<(), gev::Error>(())
//! ```
//!
//! # Data path
//! accept (`acceptor.rs`: thread `gev-acceptor`, or the loop itself when there is one loop and no
//! [`ServerOptions::dedicated_acceptor`]) -> balance ([`Balancer`], `balance.rs`) -> the
//! loop registers the socket (`event_loop.rs`, threads `gev-loop-N`) -> readable -> read into
//! the loop's 64 KiB scratch buffer -> [`Protocol::unpack`] (`protocol/`; only an incomplete
//! frame is copied into the connection's [`RingBuffer`]) -> [`Handler::on_message`]
//! (`handler.rs`) -> [`Protocol::pack`] into the connection's output buffer
//! (`output_buffer.rs`, `connection.rs`) -> written once per loop iteration -> close.
//! With [`ServerOptions::tls`] a rustls session sits between the read and `unpack` and between
//! `pack` and the write ([`tls`], `tls/session.rs`); everything above it is unchanged.
//! Cross-thread work ([`ConnHandle`], [`LoopHandle`]) enters a loop through its task queue
//! (`task_queue.rs`); timers live in `timer.rs`; limits in [`ServerOptions`] (`options.rs`).
//!
//! [`Handler::on_message`] is written with the protocol's concrete types (`&'a [u8]`,
//! `Cow<'a, [u8]>`); a generic impl writes `&'a self` (see [`Handler`] for why).
//!
//! # Dependencies
//! `mio` (readiness polling and wakers), `socket2` (listener options: backlog, `SO_REUSEPORT`, and `TCP_NODELAY`/`TCP_NOTSENT_LOWAT` inherited by accepted sockets),
//! `slab` (connection slots), `libc` (errno values for `EMFILE`/`ENFILE`), `thiserror` (typed
//! errors), `tracing` (logging; the library never prints). `httparse`, `sha1`, `base64`,
//! `flate2` serve the WebSocket module ([`ws`]); `httparse` also the HTTP module ([`http`]).
//! `rustls` (0.23, `ring` provider, TLS 1.2 and 1.3) is the TLS layer ([`tls`]): a memory-safe
//! Rust implementation whose buffered API lets the event loop do all socket I/O itself
//! (`read_tls`/`write_tls` over the loop's buffers), so TLS fits the reactor without an async
//! runtime; `ring` is its provider because it is small, builds with just a C compiler, and is
//! what the load generator and the tokio-rustls reference use too, so comparisons measure the
//! servers, not the cryptography. `rcgen` makes the self-signed certificates of
//! [`tls::SelfSigned`] (`gev-echo --tls-self-signed`, tests); the fingerprint's SHA-256 comes from
//! the rustls ring provider, so no hashing crate is added. `clap`, `anyhow`, `signal-hook`,
//! `tracing-subscriber` and `core_affinity` are for the example binaries only (see
//! [`example`]).

mod acceptor;
mod balance;
mod connection;
mod error;
mod event_loop;
mod handler;
mod inherited_options;
mod loop_handle;
mod options;
mod output_buffer;
mod protocol;
mod ring_buffer;
mod server;
mod task_queue;
mod timer;
mod transport;

pub mod example;
pub mod http;
pub mod metrics;
pub mod tls;
pub mod udp;
pub mod ws;

pub use balance::{Balancer, LeastConnections, RoundRobin};
pub use connection::{Conn, ConnHandle, ConnId};
pub use error::{Error, ProtocolError, SendError};
pub use handler::{CloseReason, Handler, MessageOf, ReplyOf};
pub use loop_handle::LoopHandle;
pub use options::{Backpressure, LoadBalance, ServerOptions};
pub use protocol::{LengthPrefixed, Protocol, Raw, Unpacked};
pub use ring_buffer::RingBuffer;
pub use server::{Server, ServerHandle};
pub use timer::TimerId;
pub use transport::{ListenAddr, ListenAddrError};
