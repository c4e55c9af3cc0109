//! Every limit and knob of a server, in one struct with documented defaults.
//!
//! [`ServerOptions`] is read once by [`Server::new`](crate::Server::new): the accepting side (the
//! single loop, or the acceptor thread: [`dedicated_acceptor`](ServerOptions::dedicated_acceptor))
//! takes the address, backlog, `max_connections` and balancing; each loop copies the buffer sizes,
//! watermarks and timeouts it enforces on the data path.

use std::net::SocketAddr;

use crate::transport::ListenAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::balance::Balancer;

/// What a connection does when its pending output goes above
/// [`ServerOptions::output_high_watermark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backpressure {
    /// Stop reading the connection (its peer is then slowed by TCP flow control) and make
    /// [`ConnHandle::send`](crate::ConnHandle::send) fail with
    /// [`SendError::WouldBlock`](crate::SendError::WouldBlock), until the output drains below
    /// [`ServerOptions::output_low_watermark`].
    #[default]
    PauseReading,
    /// Close the connection with [`CloseReason::Backpressure`](crate::CloseReason::Backpressure),
    /// dropping its output.
    Close,
}

/// How the acceptor picks the loop that owns a new connection (not consulted when a single loop
/// accepts itself: see [`ServerOptions::dedicated_acceptor`]).
#[derive(Clone, Default)]
pub enum LoadBalance {
    /// Loops in turn.
    #[default]
    RoundRobin,
    /// The loop with the fewest open connections.
    LeastConnections,
    /// A user strategy (any `Fn(&SocketAddr, &[usize]) -> usize` is a [`Balancer`]).
    Custom(Arc<dyn Balancer>),
}

impl std::fmt::Debug for LoadBalance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadBalance::RoundRobin => f.write_str("RoundRobin"),
            LoadBalance::LeastConnections => f.write_str("LeastConnections"),
            LoadBalance::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// The options of a [`Server`](crate::Server). Fields are public; the builder methods of the
/// same names set them and return `self`.
///
/// ```
/// use std::time::Duration;
/// use gev::{Backpressure, ServerOptions};
///
/// let options = ServerOptions::new("127.0.0.1:0".parse().unwrap())
///     .loops(2)
///     .idle_timeout(Some(Duration::from_secs(30)))
///     .max_connections(10_000)
///     .backpressure(Backpressure::Close);
/// assert_eq!(options.read_buffer_size, 64 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Address to listen on. Default `0.0.0.0:1833`.
    pub addr: SocketAddr,
    /// Listen on a Unix stream socket instead of [`addr`](Self::addr) (`unix:/path`, or
    /// `unix:@name` on Linux; see [`ListenAddr`]). A `ListenAddr::Tcp` here is the same as
    /// setting `addr`. Default `None` (TCP on `addr`).
    pub listen: Option<ListenAddr>,
    /// Number of event loops; `<= 0` means one per available core. Default `-1`.
    pub loops: i32,
    /// Set `SO_REUSEPORT` on the listener (lets several processes share the port). Default `false`.
    pub reuse_port: bool,
    /// Set `TCP_NODELAY` on accepted connections. Default `true`.
    pub tcp_nodelay: bool,
    /// Listen backlog. Default `1024`.
    pub backlog: i32,
    /// Close connections with no read or write for this long (`None`: never). Checked every
    /// eighth of the timeout, so a connection closes between 1 and 1.125 times it. Default `None`.
    pub idle_timeout: Option<Duration>,
    /// Connections above this many are accepted and closed at once, before any per-connection
    /// allocation, and counted. Default `usize::MAX` (no limit but the file descriptor limit).
    pub max_connections: usize,
    /// Size of each loop's scratch read buffer (one per loop, shared by its connections).
    /// Default 64 KiB.
    pub read_buffer_size: usize,
    /// Pending output (bytes) above which [`backpressure`](Self::backpressure) applies.
    /// Default 64 KiB (Netty's default high water mark): what a peer that stops reading can
    /// make the server hold, on top of the kernel's send buffer. A streaming peer that reads
    /// never reaches it (a read turn writes its output once it reaches one read's worth), so the
    /// limit costs well-behaved connections nothing; it was 1 MiB until `harness soak` showed
    /// never- and slow-reading clients each making the loop copy and hold that much per cycle
    /// (issue 16).
    pub output_high_watermark: usize,
    /// Pending output (bytes) at or below which a paused connection is read again.
    /// Default 32 KiB.
    pub output_low_watermark: usize,
    /// What happens above the high watermark. Default [`Backpressure::PauseReading`].
    pub backpressure: Backpressure,
    /// Loop selection for new connections. Default [`LoadBalance::RoundRobin`].
    pub load_balance: LoadBalance,
    /// How long [`ServerHandle::stop`](crate::ServerHandle::stop) waits for output to flush and
    /// threads to finish. Default 5 s.
    pub stop_timeout: Duration,
    /// How long a closing connection (`close()`, peer EOF, protocol error) may take to flush its
    /// pending output before it is closed anyway. Default 5 s.
    pub close_linger: Duration,
    /// Readiness events taken per `poll` call by each loop. Default 1024.
    pub events_capacity: usize,
    /// Serve Prometheus metrics at `http://ADDR/PATH` (see `gev::metrics`). Default `None`.
    pub metrics: Option<(SocketAddr, String)>,
    /// Speak TLS on every connection with this rustls configuration (see [`crate::tls`];
    /// [`crate::tls::server_config`] builds one with session resumption on). Default `None`
    /// (plain TCP).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// With [`tls`](Self::tls): a connection whose handshake has not completed this long after
    /// it was accepted is closed with
    /// [`CloseReason::HandshakeTimeout`](crate::CloseReason::HandshakeTimeout) (a client that
    /// stalls half way, or never starts). Default 10 s.
    pub tls_handshake_timeout: Duration,
    /// `TCP_NOTSENT_LOWAT` of accepted TCP connections: at most about this many bytes written
    /// but not yet sent wait in the kernel for a connection (plus the segment being filled); a
    /// write beyond it is short and the rest waits in the output buffer, where
    /// [`output_high_watermark`](Self::output_high_watermark) applies. Bytes in flight are not
    /// counted, so throughput on long links is not limited. `None` leaves the kernel's send
    /// buffer autotuning alone, which on loopback grows it to ~4 MiB at the first
    /// acknowledgement: a client that never reads then makes the server read, echo and queue
    /// ~4 MiB per connection before backpressure starts, again after every reconnect
    /// (`harness soak`, issue 16). Set once on the listener and inherited by accepted sockets (no
    /// syscall per connection). Default 128 KiB. The cost: replies much larger than it are
    /// written in more, smaller writes (echoing 1 MiB messages on 50 connections took 5-10% more
    /// server CPU per request than with `None`, throughput within 5%; 256 and 512 KiB cost the
    /// same; measured side by side with `harness compare`, see the README).
    pub tcp_notsent_lowat: Option<u32>,
    /// Accept on a dedicated thread (`gev-acceptor`) even when the server has one loop. With
    /// one loop and `false`, that loop owns the listener and accepts itself, as gnet's single
    /// reactor does: no acceptor thread, and no task-queue hand-over, waker write and context
    /// switch per accept batch (about 5% less server CPU per churned connection, measured in
    /// docs/design.md "Accepting"; issue 16). With several loops the acceptor thread always
    /// runs (one acceptor, N loops) and this has no effect. Set it to keep accepting off a loop
    /// whose handlers may block, or to compare the two set-ups. Default `false`.
    pub dedicated_acceptor: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            addr: SocketAddr::from(([0, 0, 0, 0], 1833)),
            listen: None,
            loops: -1,
            reuse_port: false,
            tcp_nodelay: true,
            backlog: 1024,
            idle_timeout: None,
            max_connections: usize::MAX,
            read_buffer_size: 64 * 1024,
            output_high_watermark: 64 * 1024,
            output_low_watermark: 32 * 1024,
            backpressure: Backpressure::PauseReading,
            load_balance: LoadBalance::RoundRobin,
            stop_timeout: Duration::from_secs(5),
            close_linger: Duration::from_secs(5),
            events_capacity: 1024,
            metrics: None,
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
            tcp_notsent_lowat: Some(128 * 1024),
            dedicated_acceptor: false,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl ServerOptions {
    /// Defaults, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        ServerOptions {
            addr,
            ..ServerOptions::default()
        }
    }

    setter!(/// Sets [`addr`](Self::addr).
        addr: SocketAddr);
    /// Listens on `listen`: TCP sets [`addr`](Self::addr), Unix sets
    /// [`listen`](Self::listen).
    pub fn listen(mut self, listen: ListenAddr) -> Self {
        match listen {
            ListenAddr::Tcp(addr) => {
                self.addr = addr;
                self.listen = None;
            }
            unix => self.listen = Some(unix),
        }
        self
    }

    setter!(/// Sets [`loops`](Self::loops).
        loops: i32);
    setter!(/// Sets [`reuse_port`](Self::reuse_port).
        reuse_port: bool);
    setter!(/// Sets [`tcp_nodelay`](Self::tcp_nodelay).
        tcp_nodelay: bool);
    setter!(/// Sets [`backlog`](Self::backlog).
        backlog: i32);
    setter!(/// Sets [`idle_timeout`](Self::idle_timeout).
        idle_timeout: Option<Duration>);
    setter!(/// Sets [`max_connections`](Self::max_connections).
        max_connections: usize);
    setter!(/// Sets [`read_buffer_size`](Self::read_buffer_size).
        read_buffer_size: usize);
    setter!(/// Sets [`tcp_notsent_lowat`](Self::tcp_notsent_lowat).
        tcp_notsent_lowat: Option<u32>);
    setter!(/// Sets [`output_high_watermark`](Self::output_high_watermark).
        output_high_watermark: usize);
    setter!(/// Sets [`output_low_watermark`](Self::output_low_watermark).
        output_low_watermark: usize);
    setter!(/// Sets [`backpressure`](Self::backpressure).
        backpressure: Backpressure);
    setter!(/// Sets [`load_balance`](Self::load_balance).
        load_balance: LoadBalance);
    setter!(/// Sets [`stop_timeout`](Self::stop_timeout).
        stop_timeout: Duration);
    setter!(/// Sets [`close_linger`](Self::close_linger).
        close_linger: Duration);
    setter!(/// Sets [`events_capacity`](Self::events_capacity).
        events_capacity: usize);
    setter!(/// Sets [`dedicated_acceptor`](Self::dedicated_acceptor).
        dedicated_acceptor: bool);

    setter!(/// Sets [`tls_handshake_timeout`](Self::tls_handshake_timeout).
        tls_handshake_timeout: Duration);

    /// Speak TLS with `config` on every connection (sets [`tls`](Self::tls)).
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Serve Prometheus metrics on `addr` at `path` (e.g. `"/metrics"`).
    pub fn metrics(mut self, addr: SocketAddr, path: impl Into<String>) -> Self {
        self.metrics = Some((addr, path.into()));
        self
    }

    /// The number of loops these options ask for (`loops <= 0`: available cores).
    pub fn resolved_loops(&self) -> usize {
        if self.loops > 0 {
            self.loops as usize
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// Checks the rules between fields; the error names the broken one.
    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        let fail = |msg: String| Err(crate::Error::Config(msg));
        if self.read_buffer_size == 0 {
            return fail("read_buffer_size must be at least 1 byte".into());
        }
        if self.output_low_watermark > self.output_high_watermark {
            return fail(format!(
                "output_low_watermark ({}) must not exceed output_high_watermark ({})",
                self.output_low_watermark, self.output_high_watermark
            ));
        }
        if self.output_high_watermark == 0 {
            return fail("output_high_watermark must be at least 1 byte".into());
        }
        if self.max_connections == 0 {
            return fail("max_connections must be at least 1".into());
        }
        if self.events_capacity == 0 {
            return fail("events_capacity must be at least 1".into());
        }
        if self.resolved_loops() > u16::MAX as usize {
            return fail(format!("loops ({}) must be at most 65535", self.loops));
        }
        if self.tcp_notsent_lowat == Some(0) {
            return fail(
                "tcp_notsent_lowat must be at least 1 byte (use None to leave it to the kernel)"
                    .into(),
            );
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return fail("idle_timeout must be positive (use None to disable it)".into());
        }
        if self.tls_handshake_timeout.is_zero() {
            return fail("tls_handshake_timeout must be positive".into());
        }
        if let Some((_, path)) = &self.metrics {
            if !path.starts_with('/') {
                return fail(format!("metrics path {path:?} must start with '/'"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let options = ServerOptions::default();
        options.validate().unwrap();
        assert_eq!(options.addr.port(), 1833);
        assert_eq!(options.read_buffer_size, 65536);
        assert!(options.resolved_loops() >= 1);
    }

    #[test]
    fn rejects_inverted_watermarks() {
        let options = ServerOptions::default()
            .output_high_watermark(10)
            .output_low_watermark(20);
        let err = options.validate().unwrap_err().to_string();
        assert!(err.contains("output_low_watermark"), "{err}");
    }

    #[test]
    fn rejects_a_zero_unsent_limit() {
        let err = ServerOptions::default()
            .tcp_notsent_lowat(Some(0))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("tcp_notsent_lowat"), "{err}");
        ServerOptions::default()
            .tcp_notsent_lowat(None)
            .validate()
            .unwrap();
    }

    #[test]
    fn rejects_zero_idle_timeout_and_bad_metrics_path() {
        assert!(ServerOptions::default()
            .idle_timeout(Some(Duration::ZERO))
            .validate()
            .is_err());
        let addr = "127.0.0.1:0".parse().unwrap();
        assert!(ServerOptions::default()
            .metrics(addr, "metrics")
            .validate()
            .is_err());
    }
}
