//! `gev-udp-echo`: every datagram is sent back to its sender, on `--loops` loops each owning one
//! `SO_REUSEPORT` socket (see `gev::udp`). Prints `listening on ADDR` once bound, exits 0 within
//! a second of SIGINT/SIGTERM and then logs the server's counters (datagrams in/out, drops,
//! syscalls) to stderr. `--metrics ADDR` serves them live as `gev_udp_*` on
//! `http://ADDR/metrics`.

use std::borrow::Cow;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use gev::example::{init_tracing, install_shutdown_signals, log_udp_counters, wait_for_signal};
use gev::udp::{DatagramCtx, DatagramHandler, UdpOptions, UdpServer};

#[derive(Debug, Parser)]
#[command(about = "UDP echo server on gev's datagram loops")]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// Port to bind (0: any free port; the chosen one is printed).
    #[arg(long, default_value_t = 1833)]
    port: u16,
    /// Loops, one socket each (<= 0: one per core).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    loops: i32,
    /// Datagrams per recvmmsg/sendmmsg.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// One recvfrom/sendto per datagram instead of recvmmsg/sendmmsg.
    #[arg(long)]
    no_batch: bool,
    /// Longest datagram echoed; longer ones are dropped and counted.
    #[arg(long, default_value_t = 65_507)]
    max_datagram: usize,
    /// Replies waiting for the socket per loop before new ones are dropped and counted.
    #[arg(long, default_value_t = 4096)]
    max_output: usize,
    /// SO_RCVBUF/SO_SNDBUF to ask for, in bytes.
    #[arg(long)]
    socket_buffer: Option<usize>,
    /// Serve Prometheus metrics (`gev_udp_*` per loop) at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

struct Echo;

impl DatagramHandler for Echo {
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
    init_tracing();
    let args = Args::parse();
    let mut options = UdpOptions::new(SocketAddr::new(args.host, args.port))
        .loops(args.loops)
        .batch(args.batch)
        .batching(!args.no_batch)
        .max_datagram(args.max_datagram)
        .max_output_datagrams(args.max_output)
        .socket_buffer(args.socket_buffer)
        .stop_timeout(Duration::from_millis(500));
    if let Some(addr) = args.metrics {
        options = options.metrics(addr, "/metrics");
    }
    let server = UdpServer::new(options, Echo)
        .with_context(|| format!("binding UDP {}:{}", args.host, args.port))?;
    let addr = server.local_addr();
    let running = server.start().context("starting the UDP loops")?;
    install_shutdown_signals()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush())?;
    drop(stdout);
    let signal = wait_for_signal()?;
    tracing::info!(signal, "stopping");
    let c = running.stop().context("stopping the UDP server")?;
    log_udp_counters(&c);
    Ok(())
}
