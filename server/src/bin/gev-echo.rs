//! `gev-echo`: echoes every byte back (the `Raw` protocol, gev's echo example).
//!
//! Prints `listening on ADDR` once bound, logs the connection count every 2 s, and exits 0
//! within a second of SIGINT/SIGTERM after a graceful stop. `--work-ns N` spins N ns per
//! message to simulate handler cost.
//!
//! TLS: `--tls-cert PEM --tls-key PEM`, or `--tls-self-signed` for a quick run: a certificate
//! for `localhost`/`127.0.0.1`/`::1` is generated (rcgen), its SHA-256 fingerprint is logged
//! (stderr, so stdout keeps its single `listening on` line) and `--tls-write-cert FILE` writes it
//! as PEM for clients to trust (`openssl s_client -CAfile FILE`, `curl --cacert FILE`).
//!
//! UDP: `--udp HOST:PORT` also echoes datagrams on the same loops (one `SO_REUSEPORT` socket per
//! loop, `gev::Server::with_udp`) and prints a second line `listening on udp://ADDR` after the
//! stream one; the UDP counters join `--metrics` and are logged at exit.

use std::borrow::Cow;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use gev::example::{
    init_tracing, install_shutdown_signals, log_udp_counters, wait_for_signal, ExampleArgs,
};
use gev::udp::{DatagramCtx, DatagramHandler, UdpOptions};
use gev::{Conn, Handler, Raw, Server};

#[derive(Debug, Parser)]
#[command(
    name = "gev-echo",
    about = "Echo server on the gev reactor (Raw protocol)"
)]
struct Args {
    #[command(flatten)]
    common: ExampleArgs,
    /// Busy-spin this many nanoseconds per message (simulated handler work).
    #[arg(long, default_value_t = 0)]
    work_ns: u64,
    /// Speak TLS with a freshly generated self-signed certificate (logs its fingerprint).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_self_signed: bool,
    /// With --tls-self-signed: write the certificate (PEM) to FILE for clients to trust.
    #[arg(long, value_name = "FILE", requires = "tls_self_signed")]
    tls_write_cert: Option<PathBuf>,
    /// Also echo UDP datagrams sent to HOST:PORT, on the same loops (port 0: any free port;
    /// printed as `listening on udp://ADDR`).
    #[arg(long, value_name = "HOST:PORT")]
    udp: Option<SocketAddr>,
}

/// A self-signed certificate for loopback names: the server configuration, with its
/// fingerprint logged and the PEM written where asked.
fn self_signed_config(
    write_cert: Option<&PathBuf>,
) -> anyhow::Result<gev::tls::rustls::ServerConfig> {
    let cert = gev::tls::SelfSigned::generate(&["localhost", "127.0.0.1", "::1"])?;
    // On stderr whatever RUST_LOG says: stdout carries only the `listening on` line.
    eprintln!(
        "TLS certificate SHA-256 fingerprint: {}",
        cert.fingerprint()
    );
    if let Some(path) = write_cert {
        std::fs::write(path, cert.cert_pem())
            .with_context(|| format!("writing the certificate to {}", path.display()))?;
    }
    Ok(gev::tls::server_config(
        vec![cert.cert_der()],
        cert.key_der(),
    )?)
}

struct Echo {
    work: Duration,
    connections: Arc<AtomicUsize>,
}

impl Handler<Raw> for Echo {
    fn on_connect(&self, _conn: &mut Conn<'_, Raw>) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    fn on_message<'a>(
        &self,
        _conn: &mut Conn<'_, Raw>,
        message: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        if !self.work.is_zero() {
            let start = Instant::now();
            while start.elapsed() < self.work {
                std::hint::spin_loop();
            }
        }
        Some(Cow::Borrowed(message))
    }

    fn on_close(&self, _conn: &mut Conn<'_, Raw>, _reason: gev::CloseReason) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every datagram back to its sender.
struct UdpEcho;

impl DatagramHandler for UdpEcho {
    fn on_datagram<'a>(
        &self,
        _ctx: &mut DatagramCtx<'_>,
        _peer: SocketAddr,
        datagram: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        Some(Cow::Borrowed(datagram))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing();
    let connections = Arc::new(AtomicUsize::new(0));
    let handler = Echo {
        work: Duration::from_nanos(args.work_ns),
        connections: connections.clone(),
    };
    let mut options = args.common.options(&[])?;
    if args.tls_self_signed {
        options = options.tls(Arc::new(self_signed_config(args.tls_write_cert.as_ref())?));
    }
    let mut server = Server::new(options, Raw, handler)
        .with_context(|| format!("starting gev-echo on {}", args.common.addr()))?;
    if let Some(udp) = args.udp {
        server = server
            .with_udp(UdpOptions::new(udp), UdpEcho)
            .with_context(|| format!("binding --udp {udp}"))?;
    }
    let loops = server.loops();
    loops[0].run_every(Duration::from_secs(2), move || {
        tracing::info!(
            connections = connections.load(Ordering::Relaxed),
            "connections"
        );
    });
    // As gev::example::serve_until_signal, with the UDP line after the stream one.
    let addr = server.listen_addr();
    let udp_addr = server.udp_addr();
    let running = server.start().context("starting the server threads")?;
    install_shutdown_signals()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    if let Some(udp_addr) = udp_addr {
        writeln!(stdout, "listening on udp://{udp_addr}")?;
    }
    stdout.flush()?;
    drop(stdout);
    let signal = wait_for_signal()?;
    tracing::info!(signal, "stopping");
    let udp = running.udp();
    running.stop().context("stopping the server")?;
    if let Some(c) = udp.map(|udp| udp.counters()) {
        log_udp_counters(&c);
    }
    Ok(())
}
