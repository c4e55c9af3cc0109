//! Reference server: a plain tokio TCP echo server on the multi-thread runtime.
//!
//! It is the "what most Rust users would write" baseline that `harness sweep` runs next to gev
//! in the same sweep, so every gev figure can be read as a ratio that survives a noisy machine.
//! `--workers N` (alias `--loops`) is the number of runtime worker threads, the analogue of gev's
//! event loops. Like every server in the workspace it prints `listening on <ip:port>` once bound
//! (so `--port 0` works) and exits 0 on SIGINT or SIGTERM. The flags, runtime, signals and accept
//! loop are `gev_harness::refserver`'s.

use clap::Parser;
use gev_harness::refserver::{self, TcpArgs};

/// A tokio echo server used as a reference in benchmark sweeps.
#[derive(Debug, Parser)]
#[command(name = "ref-tokio-echo", version)]
struct Args {
    #[command(flatten)]
    tcp: TcpArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    refserver::run(args.tcp.runtime.workers, async {
        let listener = args.tcp.bind().await?;
        refserver::serve(listener, "ref-tokio-echo", refserver::echo).await
    })
}
