//! Reference server: a tokio-tungstenite WebSocket echo server on the multi-thread runtime.
//!
//! The "what most Rust users would write" WebSocket baseline that `gev-websocket` is compared
//! with (same machine, same run, ratio). It echoes every text and binary message; tungstenite
//! answers pings and closes by itself. `--workers N` (alias `--loops`) is the number of runtime
//! worker threads, the analogue of gev's event loops. Like every server in the workspace it prints
//! `listening on <ip:port>` once bound (so `--port 0` works) and exits 0 on SIGINT or SIGTERM.
//! The flags, runtime, signals and accept loop are `gev_harness::refserver`'s.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use gev_harness::refserver::{self, TcpArgs};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// A tokio-tungstenite WebSocket echo server used as a reference in benchmarks.
#[derive(Debug, Parser)]
#[command(name = "ref-tokio-ws-echo", version)]
struct Args {
    #[command(flatten)]
    tcp: TcpArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    refserver::run(args.tcp.runtime.workers, async {
        let listener = args.tcp.bind().await?;
        refserver::serve(listener, "ref-tokio-ws-echo", echo).await
    })
}

/// Upgrades the connection and echoes data messages until the peer closes or errs.
async fn echo(stream: TcpStream) {
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
