//! `gev-push`: pushes a message to every connection on a `run_every` interval from each loop
//! (gev's pushmessage example), and echoes what clients send.
//!
//! Prints `listening on ADDR` once bound and exits 0 within a second of SIGINT/SIGTERM.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use gev::example::{init_tracing, serve_until_signal, ExampleArgs};
use gev::{Conn, Handler, Raw, Server};

#[derive(Debug, Parser)]
#[command(
    name = "gev-push",
    about = "Pushes a message to every connection periodically"
)]
struct Args {
    #[command(flatten)]
    common: ExampleArgs,
    /// Push interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// The pushed text (a newline is appended).
    #[arg(long, default_value = "hello from gev-push")]
    message: String,
}

struct EchoAndPush;

impl Handler<Raw> for EchoAndPush {
    fn on_message<'a>(
        &self,
        _conn: &mut Conn<'_, Raw>,
        message: &'a [u8],
    ) -> Option<Cow<'a, [u8]>> {
        Some(Cow::Borrowed(message))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing();
    if args.interval_ms == 0 {
        anyhow::bail!("--interval-ms must be at least 1");
    }
    let options = args.common.options(&[])?;
    let server = Server::new(options, Raw, EchoAndPush)
        .with_context(|| format!("starting gev-push on {}", args.common.addr()))?;
    let payload: &'static [u8] = format!("{}\n", args.message).into_bytes().leak();
    for handle in server.loops() {
        let on_loop = handle.clone();
        handle.run_every(Duration::from_millis(args.interval_ms), move || {
            on_loop.for_each_conn(move |conn| conn.send(Cow::Borrowed(payload)));
        });
    }
    serve_until_signal(server)
}
