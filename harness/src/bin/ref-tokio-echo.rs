//! Reference server: a plain tokio TCP echo server on the multi-thread runtime.
//!
//! It is the "what most Rust users would write" baseline that `harness sweep` runs next to gev
//! in the same sweep, so every gev figure can be read as a ratio that survives a noisy machine.
//! `--workers N` (alias `--loops`) is the number of runtime worker threads, the analogue of gev's
//! event loops. Like every server in the workspace it prints `listening on <ip:port>` once bound
//! (so `--port 0` works) and exits 0 on SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

/// Size of each connection's read buffer: the same 64 KiB gev's loops read into.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// A tokio echo server used as a reference in benchmark sweeps.
#[derive(Debug, Parser)]
#[command(name = "ref-tokio-echo", version)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// Port to bind (0 picks a free one; read it from the `listening on` line).
    #[arg(long, default_value_t = 1833)]
    port: u16,
    /// Runtime worker threads; 0 or less means one per core.
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
    let result = runtime.block_on(serve(&args.host, args.port));
    // Connections still open at shutdown are dropped, not drained: the harness stops the server
    // only after the load generator has finished.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

async fn serve(host: &str, port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    let local: SocketAddr = listener.local_addr().context("reading the bound address")?;
    // Handlers go in before the announcement: a SIGINT sent as soon as the line is read must
    // stop the server cleanly, not kill it.
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    announce(local)?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(echo(stream));
                }
                // Running out of descriptors or a connection reset before accept must not stop
                // the server for everyone else.
                Err(error) => eprintln!("ref-tokio-echo: accept failed: {error}"),
            },
        }
    }
}

/// Prints the one line the harness and tests wait for.
fn announce(local: SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {local}").context("writing to stdout")?;
    stdout.flush().context("flushing stdout")
}

/// Writes back every byte read until the peer closes or an error occurs.
async fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0u8; READ_BUFFER_SIZE];
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
