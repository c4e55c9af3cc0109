//! The stream transports under the data path: a listen address ([`ListenAddr`], TCP or a Unix
//! stream socket), the listener the acceptor polls, and the stream a loop reads and writes.
//! Everything above this file (ring buffer, `Protocol::unpack`, `Handler`, output buffer, TLS)
//! sees one [`Stream`] whatever the transport; the enum costs one branch per syscall, which is
//! nothing next to the syscall.
//!
//! Unix paths: binding refuses a path where a server already answers (a `connect` to it
//! succeeds) and reuses a stale file (connect refused: a socket file left by a process that
//! died). A regular file at the path is never removed. The socket file is removed when the
//! listener is dropped (the server stopped, or was never started), but only if the file at the
//! path is still the one this listener created (same device and inode). Abstract names
//! (`unix:@name`, Linux only) have no file.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::error::Error;

/// Where a stream server listens: `ip:port`, `unix:/path` or (Linux) `unix:@abstract-name`.
///
/// ```
/// use gev::ListenAddr;
///
/// let tcp: ListenAddr = "127.0.0.1:1833".parse().unwrap();
/// assert!(matches!(tcp, ListenAddr::Tcp(_)));
/// let unix: ListenAddr = "unix:/tmp/gev.sock".parse().unwrap();
/// assert_eq!(unix.to_string(), "unix:/tmp/gev.sock");
/// assert!("unix:".parse::<ListenAddr>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix stream socket at a filesystem path.
    Unix(PathBuf),
    /// A Linux abstract Unix socket name (written `unix:@name`; no file).
    UnixAbstract(String),
}

impl ListenAddr {
    /// True for the Unix variants.
    pub fn is_unix(&self) -> bool {
        !matches!(self, ListenAddr::Tcp(_))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            ListenAddr::UnixAbstract(name) => write!(f, "unix:@{name}"),
        }
    }
}

/// A listen address that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid listen address {input:?}: expected ip:port, unix:/path or unix:@name")]
pub struct ListenAddrError {
    /// What was given.
    pub input: String,
}

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let bad = || ListenAddrError {
            input: input.to_string(),
        };
        match input.strip_prefix("unix:") {
            Some(rest) => match rest.strip_prefix('@') {
                Some(name) if !name.is_empty() => Ok(ListenAddr::UnixAbstract(name.to_string())),
                Some(_) => Err(bad()),
                None if rest.is_empty() => Err(bad()),
                None => Ok(ListenAddr::Unix(PathBuf::from(rest))),
            },
            None => input.parse().map(ListenAddr::Tcp).map_err(|_| bad()),
        }
    }
}

/// The peer address reported for Unix connections (Unix peers are unnamed): `0.0.0.0:0`.
pub(crate) const UNIX_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// A connected stream on a loop.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    /// `TCP_NODELAY` on TCP; nothing to do on a Unix socket (no Nagle there).
    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(on),
            Stream::Unix(_) => Ok(()),
        }
    }
}

impl Read for &Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match *self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match *self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
        }
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match *self {
            Stream::Tcp(s) => (&*s).write_vectored(bufs),
            Stream::Unix(s) => (&*s).write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

/// The acceptor's listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        /// Held for its `Drop`: removes the socket file (None for abstract names).
        _file: Option<SocketFile>,
    },
}

impl Listener {
    /// Accepts one connection; Unix peers get [`UNIX_PEER`] as their address.
    #[inline]
    pub(crate) fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, peer)| (Stream::Tcp(s), peer)),
            Listener::Unix { listener, .. } => {
                listener.accept().map(|(s, _)| (Stream::Unix(s), UNIX_PEER))
            }
        }
    }

    /// The TCP address, or [`UNIX_PEER`] for Unix listeners.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr(),
            Listener::Unix { .. } => Ok(UNIX_PEER),
        }
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(r, t, i),
            Listener::Unix { listener, .. } => listener.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(r, t, i),
            Listener::Unix { listener, .. } => listener.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(r),
            Listener::Unix { listener, .. } => listener.deregister(r),
        }
    }
}

/// A socket file this process created; removed on drop if it is still the same file.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the socket file");
                }
            }
            // Replaced by someone else, or already gone: not ours to remove.
            _ => {}
        }
    }
}

/// Binds a Unix stream listener at `path` (see the module docs for stale and live paths).
pub(crate) fn bind_unix_path(path: &Path, backlog: i32) -> Result<Listener, Error> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let shown = format!("unix:{}", path.display());
    let err = |source| Error::BindUnix {
        path: shown.clone(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(Error::UnixPathInUse {
                path: shown,
                reason: "the path exists and is not a socket; not removing it",
            });
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(Error::UnixPathInUse {
                    path: shown,
                    reason: "a server is listening there (connect succeeded)",
                })
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing a stale socket file");
                std::fs::remove_file(path).map_err(err)?;
            }
            Err(e) => return Err(err(e)),
        }
    }
    let socket =
        socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).map_err(err)?;
    socket
        .bind(&socket2::SockAddr::unix(path).map_err(err)?)
        .map_err(err)?;
    let meta = std::fs::symlink_metadata(path).map_err(err)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    socket.listen(backlog).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    let std_listener: std::os::unix::net::UnixListener = socket.into();
    Ok(Listener::Unix {
        listener: UnixListener::from_std(std_listener),
        _file: Some(file),
    })
}

/// Binds a Linux abstract Unix stream listener (`unix:@name`).
#[cfg(target_os = "linux")]
pub(crate) fn bind_unix_abstract(name: &str, backlog: i32) -> Result<Listener, Error> {
    use std::os::unix::ffi::OsStrExt;
    let shown = format!("unix:@{name}");
    let err = |source| Error::BindUnix {
        path: shown.clone(),
        source,
    };
    // socket2 (not std's `bind_addr`, which always listens with 128) so the configured backlog
    // applies: an abstract address is a path whose first byte is NUL.
    let mut raw_name = vec![0u8];
    raw_name.extend_from_slice(name.as_bytes());
    let addr = socket2::SockAddr::unix(std::ffi::OsStr::from_bytes(&raw_name)).map_err(err)?;
    let socket =
        socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).map_err(err)?;
    socket.bind(&addr).map_err(|source| {
        if source.kind() == io::ErrorKind::AddrInUse {
            Error::UnixPathInUse {
                path: shown.clone(),
                reason: "the abstract name is taken (a server is listening there)",
            }
        } else {
            err(source)
        }
    })?;
    socket.listen(backlog).map_err(err)?;
    let std_listener: std::os::unix::net::UnixListener = socket.into();
    std_listener.set_nonblocking(true).map_err(err)?;
    Ok(Listener::Unix {
        listener: UnixListener::from_std(std_listener),
        _file: None,
    })
}

/// Abstract names exist only on Linux.
#[cfg(not(target_os = "linux"))]
pub(crate) fn bind_unix_abstract(name: &str, _backlog: i32) -> Result<Listener, Error> {
    Err(Error::Config(format!(
        "unix:@{name}: abstract Unix sockets exist only on Linux"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_form() {
        for text in [
            "127.0.0.1:80",
            "[::1]:9",
            "unix:/tmp/x.sock",
            "unix:rel/x.sock",
            "unix:@gev-test",
        ] {
            let addr: ListenAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
        }
        for bad in ["", "unix:", "unix:@", "localhost", "1.2.3.4"] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad:?} parsed");
        }
    }

    /// Connections a listener queues before a non-blocking connect gets `EAGAIN` (nobody
    /// accepts): the kernel's limit is the listen backlog (+1).
    fn queued_before_full(addr: &socket2::SockAddr) -> usize {
        let mut clients = Vec::new();
        for _ in 0..1000 {
            let client =
                socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
            client.set_nonblocking(true).unwrap();
            match client.connect(addr) {
                Ok(()) => clients.push(client),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("connect: {e}"),
            }
        }
        clients.len()
    }

    #[test]
    fn unix_listeners_use_the_configured_backlog() {
        let dir = std::env::temp_dir().join(format!("gev-backlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.sock");
        let _ = std::fs::remove_file(&path);
        let listener = bind_unix_path(&path, 4).unwrap();
        let queued = queued_before_full(&socket2::SockAddr::unix(&path).unwrap());
        assert!(
            (4..=5).contains(&queued),
            "path: {queued} queued with backlog 4"
        );
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();

        #[cfg(target_os = "linux")]
        {
            use std::os::unix::ffi::OsStrExt;
            let name = format!("gev-backlog-{}", std::process::id());
            let listener = bind_unix_abstract(&name, 4).unwrap();
            let raw = [&[0u8][..], name.as_bytes()].concat();
            let addr = socket2::SockAddr::unix(std::ffi::OsStr::from_bytes(&raw)).unwrap();
            let queued = queued_before_full(&addr);
            assert!(
                (4..=5).contains(&queued),
                "abstract: {queued} queued with backlog 4 (std's would be 128)"
            );
            assert!(matches!(
                bind_unix_abstract(&name, 4),
                Err(Error::UnixPathInUse { .. })
            ));
            drop(listener);
        }
    }

    #[test]
    fn stale_file_is_reused_live_path_refused_regular_file_kept() {
        let dir = std::env::temp_dir().join(format!("gev-transport-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        // A stale file: bound by a std listener that is then dropped (the file stays).
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = bind_unix_path(&path, 16).expect("stale file reused");
        let refused = bind_unix_path(&path, 16).expect_err("live path refused");
        assert!(matches!(refused, Error::UnixPathInUse { .. }), "{refused}");
        drop(live);
        assert!(!path.exists(), "socket file removed on drop");
        std::fs::write(&path, b"not a socket").unwrap();
        assert!(matches!(
            bind_unix_path(&path, 16),
            Err(Error::UnixPathInUse { .. })
        ));
        assert!(path.exists(), "a regular file is never removed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
