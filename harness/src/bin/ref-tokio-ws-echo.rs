//! Reference server: a tokio-tungstenite WebSocket echo server on the multi-thread runtime.
//!
//! The "what most Rust users would write" WebSocket baseline that `gev-websocket` is compared
//! with (same machine, same run, ratio). It echoes every text and binary message; tungstenite
//! answers pings and closes by itself. `--workers N` (alias `--loops`) is the number of runtime
//! worker threads, the analogue of gev's event loops. Like every server in the workspace it prints
//! `listening on <ip:port>` once bound (so `--port 0` works) and exits 0 on SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio_tungstenite::tungstenite::Message;

/// A tokio-tungstenite WebSocket echo server used as a reference in benchmarks.
#[derive(Debug, Parser)]
#[command(name = "ref-tokio-ws-echo", version)]
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
    // Connections still open at shutdown are dropped: the harness stops the server only after
    // the load generator has finished.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

async fn serve(host: &str, port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding {host}:{port}"))?;
    let local: SocketAddr = listener.local_addr().context("reading the bound address")?;
    announce(local)?;

    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(echo(stream));
                }
                // A failed accept (descriptors exhausted, reset before accept) must not stop the
                // server for everyone else.
                Err(error) => eprintln!("ref-tokio-ws-echo: accept failed: {error}"),
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

/// Upgrades the connection and echoes data messages until the peer closes or errs.
async fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut websocket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = websocket.next().await {
        if matches!(message, Message::Text(_) | Message::Binary(_))
            && websocket.send(message).await.is_err()
        {
            return;
        }
    }
}
