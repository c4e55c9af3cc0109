//! `gev-websocket`: a WebSocket echo server on gev (the server the Autobahn suite runs against).
//!
//! Echoes every text and binary message back on the same connection, borrowing the received
//! payload (no copy between the decoder and the output buffer). Pings, closes and
//! permessage-deflate are handled by `gev::ws`. Prints `listening on ADDR` once bound and exits 0
//! on SIGINT/SIGTERM after a graceful stop.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use gev::example::{init_tracing, ExampleArgs};
use gev::ws::{WebSocketConfig, WsAdapter, WsConn, WsData, WsHandler, WsProtocol, WsReply};
use gev::Server;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// WebSocket echo server on gev.
#[derive(Debug, Parser)]
#[command(
    name = "gev-websocket",
    about = "WebSocket echo server on the gev reactor"
)]
struct Args {
    #[command(flatten)]
    common: ExampleArgs,
    /// Largest accepted message in bytes (WebSocketConfig::max_message_size).
    #[arg(long, default_value_t = WebSocketConfig::default().max_message_size)]
    max_message_size: usize,
    /// Do not negotiate permessage-deflate.
    #[arg(long)]
    no_deflate: bool,
}

/// Sends every data message back as it came.
struct Echo;

impl WsHandler for Echo {
    fn on_message<'a>(
        &self,
        _conn: &mut WsConn<'_, '_>,
        message: WsData<'a>,
    ) -> Option<WsReply<'a>> {
        Some(match message {
            WsData::Text(text) => WsReply::Text(Cow::Borrowed(text)),
            WsData::Binary(bytes) => WsReply::Binary(Cow::Borrowed(bytes)),
        })
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing();
    let config = WebSocketConfig::default()
        .max_message_size(args.max_message_size)
        .permessage_deflate(!args.no_deflate);
    // Exit within a second of a signal even if some connection does not flush.
    let options = args
        .common
        .options(&[b"http/1.1"])?
        .stop_timeout(Duration::from_millis(800));
    let handler = WsAdapter::new(Echo, &config);
    let server = Server::new(options, WsProtocol::new(config), handler)
        .with_context(|| format!("starting gev-websocket on {}", args.common.addr()))?;
    // Installed before the `listening on` line, so a signal right after it is not lost.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    let running = server.start().context("starting the server threads")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", running.listen_addr()).and_then(|()| stdout.flush())?;
    drop(stdout);
    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, "stopping");
    }
    running.stop().context("stopping the server")?;
    Ok(())
}
