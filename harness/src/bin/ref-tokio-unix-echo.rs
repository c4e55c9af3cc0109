//! Reference server: a plain tokio echo server over a Unix stream socket, on the multi-thread
//! runtime: the baseline gev's `--listen unix:/path` is compared with (issue 15).
//! `--listen unix:/path` (a stale socket file is replaced; the file is removed on exit),
//! `--workers N` (alias `--loops`). Prints `listening on unix:/path` once bound and exits 0 on
//! SIGINT or SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{signal, SignalKind};

/// Size of each connection's read buffer: the same 64 KiB gev's loops read into.
const READ_BUFFER_SIZE: usize = 64 * 1024;

#[derive(Debug, Parser)]
#[command(name = "ref-tokio-unix-echo", version)]
struct Args {
    /// Where to listen: unix:/path.
    #[arg(long)]
    listen: String,
    /// Runtime worker threads; 0 or less means one per core.
    #[arg(long, alias = "loops", default_value_t = -1, allow_negative_numbers = true)]
    workers: i64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Some(path) = args.listen.strip_prefix("unix:").filter(|p| !p.is_empty()) else {
        bail!("--listen {:?}: write unix:/path", args.listen);
    };
    let path = PathBuf::from(path);
    let workers = match usize::try_from(args.workers) {
        Ok(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let result = runtime.block_on(serve(&path));
    runtime.shutdown_timeout(Duration::from_millis(200));
    let _ = std::fs::remove_file(&path);
    result
}

async fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    if path.exists() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => bail!("{}: a server is listening there", path.display()),
            Err(_) => std::fs::remove_file(path)
                .with_context(|| format!("removing stale {}", path.display()))?,
        }
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding unix:{}", path.display()))?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on unix:{}", path.display()).context("writing to stdout")?;
        stdout.flush().context("flushing stdout")?;
    }
    loop {
        tokio::select! {
            _ = interrupt.recv() => return Ok(()),
            _ = terminate.recv() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(echo(stream));
                }
                Err(error) => eprintln!("ref-tokio-unix-echo: accept failed: {error}"),
            },
        }
    }
}

/// Writes back every byte read until the peer closes or an error occurs.
async fn echo(mut stream: UnixStream) {
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
