//! `unix:/path` targets: the connect step of the data path over a Unix stream socket. After
//! the connect everything is the TCP path (the stream is a `tls::Stream::Unix`, read and written
//! through the same `Read`/`Write`), so every stream framing (raw, length, ws, http) works
//! unchanged. TLS over a Unix socket is not supported (`--tls` with a `unix:` target is refused).

use std::io;
use std::path::Path;

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};

use crate::conn::{Conn, Phase};
use crate::framing::Codec;
use crate::tls::Stream;

impl Conn {
    /// Starts a non-blocking connect to the socket at `path` and registers it for both
    /// readiness directions (edge-triggered, as TCP connections are).
    pub fn connect_unix(
        path: &Path,
        registry: &Registry,
        token: Token,
        codec: Codec,
        now: u64,
    ) -> io::Result<Conn> {
        let mut unix = UnixStream::connect(path)?;
        registry.register(&mut unix, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Conn {
            stream: Stream::Unix(unix),
            phase: Phase::Connecting,
            codec,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            pending: Default::default(),
            started: now,
        })
    }
}

/// After a writable event during connect: `Ok(true)` once connected.
pub(crate) fn check_connected(unix: &UnixStream) -> io::Result<bool> {
    if let Some(error) = unix.take_error()? {
        return Err(error);
    }
    match unix.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// One blocking connect before the run starts, so a missing server fails fast with the path.
pub(crate) fn probe(path: &Path) -> io::Result<()> {
    std::os::unix::net::UnixStream::connect(path).map(drop)
}
