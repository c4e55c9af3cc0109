//! Reference server: a plain tokio UDP echo (`UdpSocket::recv_from` / `send_to`, one task per
//! socket), the baseline `gev-udp-echo` is compared with (issue 15). `--workers N` (alias
//! `--loops`) runtime threads, each serving its own `SO_REUSEPORT` socket on the same port, as
//! gev's UDP loops do. Prints `listening on <ip:port>` once bound and exits 0 on SIGINT or
//! SIGTERM. The runtime, signals and announcement are `gev_harness::refserver`'s.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use clap::Parser;
use gev_harness::refserver::{self, RuntimeArgs, ShutdownSignals};
use tokio::net::UdpSocket;

#[derive(Debug, Parser)]
#[command(name = "ref-tokio-udp-echo", version)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// Port to bind (0 picks a free one; read it from the `listening on` line).
    #[arg(long, default_value_t = 1833)]
    port: u16,
    /// One socket per runtime worker thread.
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = SocketAddr::new(args.host, args.port);
    refserver::run(args.runtime.workers, serve(addr, args.runtime.threads()))
}

fn bind(addr: SocketAddr) -> anyhow::Result<UdpSocket> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("binding UDP {addr}"))?;
    Ok(UdpSocket::from_std(socket.into())?)
}

async fn serve(addr: SocketAddr, sockets: usize) -> anyhow::Result<()> {
    let first = bind(addr)?;
    let local = first.local_addr().context("reading the bound address")?;
    let mut tasks = vec![tokio::spawn(echo(first))];
    for _ in 1..sockets {
        tasks.push(tokio::spawn(echo(bind(local)?)));
    }
    let mut signals = ShutdownSignals::install()?;
    refserver::announce(local)?;
    signals.recv().await;
    for task in tasks {
        task.abort();
    }
    Ok(())
}

/// Sends every datagram back to its sender.
async fn echo(socket: UdpSocket) {
    let mut buffer = vec![0u8; 65_536];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let _ = socket.send_to(&buffer[..n], peer).await;
    }
}
