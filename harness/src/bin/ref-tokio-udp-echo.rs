//! Reference server: a plain tokio UDP echo (`UdpSocket::recv_from` / `send_to`, one task per
//! socket), the baseline `gev-udp-echo` is compared with (issue 15). `--workers N` (alias
//! `--loops`) runtime threads, each serving its own `SO_REUSEPORT` socket on the same port, as
//! gev's UDP loops do. Prints `listening on <ip:port>` once bound and exits 0 on SIGINT or
//! SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::net::UdpSocket;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Parser)]
#[command(name = "ref-tokio-udp-echo", version)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    host: std::net::IpAddr,
    /// Port to bind (0 picks a free one; read it from the `listening on` line).
    #[arg(long, default_value_t = 1833)]
    port: u16,
    /// Runtime worker threads (and sockets); 0 or less means one per core.
    #[arg(long, alias = "loops", default_value_t = -1, allow_negative_numbers = true)]
    workers: i64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let workers = match usize::try_from(args.workers) {
        Ok(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let result = runtime.block_on(serve(SocketAddr::new(args.host, args.port), workers));
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
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
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {local}").context("writing to stdout")?;
        stdout.flush().context("flushing stdout")?;
    }
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
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
