//! `gev-protocol`: echo with length framing (4-byte big-endian length + payload, gev's protocol
//! example). A frame above `--max-frame` closes that connection with a logged reason.
//!
//! Prints `listening on ADDR` once bound and exits 0 within a second of SIGINT/SIGTERM.

use std::borrow::Cow;

use anyhow::Context;
use clap::Parser;
use gev::example::{init_tracing, serve_until_signal, ExampleArgs};
use gev::{Conn, Handler, LengthPrefixed, Server};

#[derive(Debug, Parser)]
#[command(
    name = "gev-protocol",
    about = "Length-prefixed echo server on the gev reactor"
)]
struct Args {
    #[command(flatten)]
    common: ExampleArgs,
    /// Largest accepted payload in bytes; larger frames close the connection.
    #[arg(long, default_value_t = LengthPrefixed::DEFAULT_MAX_FRAME)]
    max_frame: usize,
}

struct FrameEcho;

impl Handler<LengthPrefixed> for FrameEcho {
    fn on_message<'a>(
        &self,
        _conn: &mut Conn<'_, LengthPrefixed>,
        message: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        Some(Cow::Borrowed(message))
    }

    fn on_close(&self, conn: &mut Conn<'_, LengthPrefixed>, reason: gev::CloseReason) {
        if reason == gev::CloseReason::Protocol {
            tracing::info!(peer = %conn.peer_addr(), "connection closed for breaking the framing");
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing();
    let options = args.common.options(&[])?;
    let server = Server::new(options, LengthPrefixed::new(args.max_frame), FrameEcho)
        .with_context(|| format!("starting gev-protocol on {}", args.common.addr()))?;
    serve_until_signal(server)
}
