//! `gev-echo`: echoes every byte back (the `Raw` protocol, gev's echo example).
//!
//! Prints `listening on ADDR` once bound, logs the connection count every 2 s, and exits 0
//! within a second of SIGINT/SIGTERM after a graceful stop. `--work-ns N` spins N ns per
//! message to simulate handler cost.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use gev::example::{init_tracing, serve_until_signal, ExampleArgs};
use gev::{Conn, Handler, MessageOf, Raw, ReplyOf, Server};

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
        message: MessageOf<'a, Raw>,
    ) -> Option<ReplyOf<'a, Raw>> {
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing();
    let connections = Arc::new(AtomicUsize::new(0));
    let handler = Echo {
        work: Duration::from_nanos(args.work_ns),
        connections: connections.clone(),
    };
    let options = args.common.server_options();
    let server = Server::new(options, Raw, handler)
        .with_context(|| format!("starting gev-echo on {}", args.common.addr()))?;
    let loops = server.loops();
    loops[0].run_every(Duration::from_secs(2), move || {
        tracing::info!(
            connections = connections.load(Ordering::Relaxed),
            "connections"
        );
    });
    serve_until_signal(server)
}
