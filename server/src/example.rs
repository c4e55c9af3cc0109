//! Support shared by the example servers (`src/bin/gev-*.rs`): their common flags, logging set
//! up, and waiting for SIGINT/SIGTERM. Not part of the reactor's data path; the library itself
//! never prints, parses arguments or installs signal handlers.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

/// Flags every example server takes (flatten into the binary's own `clap` parser).
#[derive(Debug, Clone, clap::Args)]
pub struct ExampleArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Port to listen on (0: any free port; the chosen one is printed).
    #[arg(long, default_value_t = 1833)]
    pub port: u16,
    /// Listen on this address instead of --host/--port: `unix:/path` (a Unix stream socket;
    /// a stale socket file is reused, a live one refused), `unix:@name` (Linux abstract name)
    /// or `ip:port`. TLS over a Unix socket works the same as over TCP.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<crate::ListenAddr>,
    /// Event loops (<= 0: one per core).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub loops: i32,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// On SIGINT/SIGTERM, how long pending output may take to flush before connections are
    /// closed anyway (kept below a second so the process exits within one).
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub stop_timeout_ms: u64,
    /// Close a connection after this long with no read or write progress (0: never). The
    /// default keeps clients that connect and never send, or never read their replies, from
    /// holding a descriptor (and up to the output high watermark of memory) forever; found by
    /// `harness soak`.
    #[arg(long, default_value_t = DEFAULT_IDLE_TIMEOUT_MS, value_name = "MS")]
    pub idle_timeout_ms: u64,
    /// Speak TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// With TLS: close connections whose handshake takes longer than this.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub tls_handshake_timeout_ms: u64,
    /// `TCP_NOTSENT_LOWAT` of accepted TCP connections: at most about this many written but
    /// unsent bytes wait in the kernel per connection, the rest in the server's output buffer
    /// (0: off, the kernel's send buffer autotuning; default: the library's,
    /// `ServerOptions::tcp_notsent_lowat`). Ignored on Unix sockets.
    #[arg(long, default_value_t = default_tcp_notsent_lowat(), value_name = "BYTES")]
    pub tcp_notsent_lowat: u32,
}

/// `--tcp-notsent-lowat`'s default: the library's
/// [`ServerOptions::tcp_notsent_lowat`](crate::ServerOptions::tcp_notsent_lowat), or 0 when the
/// library leaves it off; `--help` shows the figure.
fn default_tcp_notsent_lowat() -> u32 {
    crate::ServerOptions::default()
        .tcp_notsent_lowat
        .unwrap_or(0)
}

/// The [`tcp_notsent_lowat`](crate::ServerOptions::tcp_notsent_lowat) option of a
/// `--tcp-notsent-lowat` value: 0 is "off" (`None`; the options refuse `Some(0)`).
pub fn tcp_notsent_lowat_option(bytes: u32) -> Option<u32> {
    (bytes > 0).then_some(bytes)
}

/// Default `--idle-timeout-ms` of the example servers: 30 s.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;

impl ExampleArgs {
    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Server options from these flags (other options at their defaults).
    pub fn server_options(&self) -> crate::ServerOptions {
        let mut options = crate::ServerOptions::new(self.addr())
            .loops(self.loops)
            .stop_timeout(std::time::Duration::from_millis(self.stop_timeout_ms))
            .idle_timeout(
                (self.idle_timeout_ms > 0)
                    .then(|| std::time::Duration::from_millis(self.idle_timeout_ms)),
            );
        if let Some(addr) = self.metrics {
            options = options.metrics(addr, "/metrics");
        }
        if let Some(listen) = &self.listen {
            options = options.listen(listen.clone());
        }
        options
            .tls_handshake_timeout(std::time::Duration::from_millis(
                self.tls_handshake_timeout_ms.max(1),
            ))
            .tcp_notsent_lowat(tcp_notsent_lowat_option(self.tcp_notsent_lowat))
    }

    /// The TLS configuration of `--tls-cert`/`--tls-key` (none without them), with session
    /// resumption on and `alpn` offered (e.g. `[b"http/1.1"]`).
    pub fn tls_config(&self, alpn: &[&[u8]]) -> anyhow::Result<Option<rustls::ServerConfig>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut config = crate::tls::server_config_from_pem_files(cert, key)
            .context("loading --tls-cert/--tls-key")?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Some(config))
    }

    /// [`server_options`](Self::server_options) plus TLS when `--tls-cert`/`--tls-key` are
    /// given (ALPN `alpn`); what every example binary uses.
    pub fn options(&self, alpn: &[&[u8]]) -> anyhow::Result<crate::ServerOptions> {
        let options = self.server_options();
        Ok(match self.tls_config(alpn)? {
            Some(config) => options.tls(Arc::new(config)),
            None => options,
        })
    }
}

/// Logs to stderr with the `RUST_LOG` filter (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The SIGINT/SIGTERM handlers, installed once per process.
static SHUTDOWN_SIGNALS: std::sync::OnceLock<std::sync::Mutex<signal_hook::iterator::Signals>> =
    std::sync::OnceLock::new();

/// Installs the SIGINT/SIGTERM handlers (idempotent). Call it before printing the
/// `listening on` line: a signal sent as soon as that line is read then cannot kill the
/// process with the default action before [`wait_for_signal`] runs.
pub fn install_shutdown_signals() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    if SHUTDOWN_SIGNALS.get().is_some() {
        return Ok(());
    }
    let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing SIGINT/SIGTERM handlers")?;
    let _ = SHUTDOWN_SIGNALS.set(std::sync::Mutex::new(signals));
    Ok(())
}

/// Blocks until SIGINT or SIGTERM arrives (installing the handlers first if needed); returns
/// the signal number.
pub fn wait_for_signal() -> anyhow::Result<i32> {
    install_shutdown_signals()?;
    let signals = SHUTDOWN_SIGNALS
        .get()
        .context("signal handlers missing after installation")?;
    let mut signals = signals.lock().unwrap_or_else(|e| e.into_inner());
    Ok(signals
        .forever()
        .next()
        .unwrap_or(signal_hook::consts::SIGTERM))
}

/// Runs `server` until SIGINT/SIGTERM, the life of every example binary: start the loops,
/// install the signal handlers, print `listening on ADDR` on stdout (how tests and the harness
/// learn the port), wait for a signal, then stop gracefully.
pub fn serve_until_signal<P, H>(server: crate::Server<P, H>) -> anyhow::Result<()>
where
    P: crate::Protocol,
    H: crate::Handler<P>,
{
    use std::io::Write;
    let addr = server.listen_addr();
    let running = server.start().context("starting the server threads")?;
    install_shutdown_signals()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush())?;
    drop(stdout);
    let signal = wait_for_signal()?;
    tracing::info!(signal, "stopping");
    running.stop().context("stopping the server")?;
    Ok(())
}

/// Logs a UDP server's counters at exit, the last line of `gev-udp-echo` and of `gev-echo --udp`
/// (the same figures are on the Prometheus endpoint while the server runs).
pub fn log_udp_counters(c: &crate::udp::UdpCounters) {
    tracing::info!(
        datagrams_in = c.datagrams_in,
        datagrams_out = c.datagrams_out,
        dropped_output_full = c.dropped_output_full,
        dropped_oversized = c.dropped_oversized,
        send_errors = c.send_errors,
        recv_calls = c.recv_calls,
        send_calls = c.send_calls,
        "UDP counters"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        common: ExampleArgs,
    }

    fn options(args: &[&str]) -> crate::ServerOptions {
        let flags = Flags::try_parse_from(std::iter::once("gev-test").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        flags.common.server_options()
    }

    #[test]
    fn tcp_notsent_lowat_flag_defaults_to_the_librarys_and_zero_turns_it_off() {
        let library = crate::ServerOptions::default().tcp_notsent_lowat;
        assert!(library.is_some(), "the library default is on");
        assert_eq!(options(&[]).tcp_notsent_lowat, library);
        // 0 is "off": None, which the options accept (they refuse Some(0)).
        let off = options(&["--tcp-notsent-lowat", "0"]);
        assert_eq!(off.tcp_notsent_lowat, None);
        off.validate().unwrap();
        let set = options(&["--tcp-notsent-lowat", "65536"]);
        assert_eq!(set.tcp_notsent_lowat, Some(65536));
        set.validate().unwrap();
        assert_eq!(tcp_notsent_lowat_option(0), None);
        assert_eq!(tcp_notsent_lowat_option(1), Some(1));
        assert!(Flags::try_parse_from(["gev-test", "--tcp-notsent-lowat", "-1"]).is_err());
    }
}
