//! `gev-maxconn`: an echo server that refuses connections above `--max-connections` (they are
//! accepted and closed at once, before any allocation); refusals are logged with their count,
//! and each accepted connection logs the open count.
//!
//! Prints `listening on ADDR` once bound and exits 0 within a second of SIGINT/SIGTERM.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use gev::example::{init_tracing, serve_until_signal, ExampleArgs};
use gev::{Conn, Handler, Raw, Server};

#[derive(Debug, Parser)]
#[command(name = "gev-maxconn", about = "Echo server with a connection limit")]
struct Args {
    #[command(flatten)]
    common: ExampleArgs,
    /// Connections allowed at once; more are refused.
    #[arg(long, default_value_t = 1000)]
    max_connections: usize,
}

struct CountingEcho {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl Handler<Raw> for CountingEcho {
    fn on_connect(&self, conn: &mut Conn<'_, Raw>) {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(peer = %conn.peer_addr(), open, max = self.max, "connection accepted");
    }

    fn on_message<'a>(
        &self,
        _conn: &mut Conn<'_, Raw>,
        message: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        Some(Cow::Borrowed(message))
    }

    fn on_close(&self, _conn: &mut Conn<'_, Raw>, _reason: gev::CloseReason) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing();
    if args.max_connections == 0 {
        anyhow::bail!("--max-connections must be at least 1");
    }
    let options = args
        .common
        .options(&[])?
        .max_connections(args.max_connections);
    let handler = CountingEcho {
        open: Arc::new(AtomicUsize::new(0)),
        max: args.max_connections,
    };
    let server = Server::new(options, Raw, handler)
        .with_context(|| format!("starting gev-maxconn on {}", args.common.addr()))?;
    serve_until_signal(server)
}
