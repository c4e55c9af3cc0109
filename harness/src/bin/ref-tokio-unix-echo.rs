//! Reference server: a plain tokio echo server over a Unix stream socket, on the multi-thread
//! runtime: the baseline gev's `--listen unix:/path` is compared with (issue 15).
//! `--listen unix:/path` (a stale socket file is replaced; the file is removed on exit),
//! `--workers N` (alias `--loops`). Prints `listening on unix:/path` once bound and exits 0 on
//! SIGINT or SIGTERM. The runtime, signals and accept loop are `gev_harness::refserver`'s.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Parser;
use gev_harness::refserver::{self, RuntimeArgs};
use tokio::net::UnixListener;

#[derive(Debug, Parser)]
#[command(name = "ref-tokio-unix-echo", version)]
struct Args {
    /// Where to listen: unix:/path.
    #[arg(long)]
    listen: String,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Some(path) = args.listen.strip_prefix("unix:").filter(|p| !p.is_empty()) else {
        bail!("--listen {:?}: write unix:/path", args.listen);
    };
    let path = PathBuf::from(path);
    // Only a file this server bound is removed: a refused live path belongs to another server.
    let bound = Cell::new(false);
    let result = refserver::run(args.runtime.workers, async {
        let listener = bind(&path)?;
        bound.set(true);
        refserver::serve(listener, "ref-tokio-unix-echo", refserver::echo).await
    });
    if bound.get() {
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// Binds `path`, replacing a stale socket file but never a live one.
fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => bail!("{}: a server is listening there", path.display()),
            Err(_) => std::fs::remove_file(path)
                .with_context(|| format!("removing stale {}", path.display()))?,
        }
    }
    UnixListener::bind(path).with_context(|| format!("binding unix:{}", path.display()))
}
