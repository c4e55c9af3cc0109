//! What the tokio reference servers (`ref-tokio-echo`, `ref-tokio-tls-echo`,
//! `ref-tokio-ws-echo`, `ref-tokio-unix-echo`, `ref-tokio-udp-echo`) share: their flags, the
//! runtime, the `listening on` line, the signals that stop them and the accept loop. Each binary
//! keeps only what makes it a different server: its listener and what it does with a connection.
//!
//! The contract every server of the workspace keeps (docs/design.md, "Binaries and where tests
//! find them"): print exactly one `listening on <addr>` line once bound, flushed, so `--port 0`
//! works; install the SIGINT/SIGTERM handlers before that line, so a signal sent as soon as the
//! line is read stops the server cleanly (exit 0) instead of killing it; a failed accept costs
//! only that connection.
//!
//! ```no_run
//! use clap::Parser;
//! use gev_harness::refserver::{self, TcpArgs};
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     tcp: TcpArgs,
//! }
//!
//! fn main() -> anyhow::Result<()> {
//!     let args = Args::parse();
//!     refserver::run(args.tcp.runtime.workers, async {
//!         let listener = args.tcp.bind().await?;
//!         refserver::serve(listener, "my-echo", refserver::echo).await
//!     })
//! }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::io::{self, Write};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Size of each connection's read buffer: the same 64 KiB gev's loops read into.
pub const READ_BUFFER_SIZE: usize = 64 * 1024;

/// How long the runtime waits for its tasks at shutdown. Connections still open then are
/// dropped, not drained: the harness stops a server only after the load generator has finished.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(200);

/// `--workers N` (alias `--loops`): the runtime's worker threads, the analogue of gev's loops.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    /// Runtime worker threads; 0 or less means one per core.
    #[arg(long, alias = "loops", default_value_t = -1, allow_negative_numbers = true)]
    pub workers: i64,
}

impl RuntimeArgs {
    /// The worker count to start: `--workers` when positive, else one per core.
    pub fn threads(&self) -> usize {
        worker_threads(self.workers)
    }
}

/// `--host`, `--port` and `--workers`, as every TCP reference server takes them.
#[derive(Debug, Clone, clap::Args)]
pub struct TcpArgs {
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: String,
    /// Port to bind (0 picks a free one; read it from the `listening on` line).
    #[arg(long, default_value_t = 1833)]
    pub port: u16,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl TcpArgs {
    /// Binds `--host:--port` on the current runtime.
    pub async fn bind(&self) -> anyhow::Result<TcpListener> {
        TcpListener::bind((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("binding {}:{}", self.host, self.port))
    }
}

/// `workers` when positive, else one per core.
pub fn worker_threads(workers: i64) -> usize {
    match usize::try_from(workers) {
        Ok(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Runs `server` to completion on a multi-thread runtime of `workers` threads (see
/// [`worker_threads`]), then gives the remaining tasks [`SHUTDOWN_TIMEOUT`].
pub fn run(workers: i64, server: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads(workers))
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    let result = runtime.block_on(server);
    runtime.shutdown_timeout(SHUTDOWN_TIMEOUT);
    result
}

/// Prints the one line the harness and tests wait for: `listening on <local>`, flushed.
pub fn announce(local: impl Display) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {local}").context("writing to stdout")?;
    stdout.flush().context("flushing stdout")
}

/// SIGINT and SIGTERM, installed together; [`ShutdownSignals::recv`] returns on the first.
pub struct ShutdownSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl ShutdownSignals {
    /// Installs both handlers (needs a running runtime). Call it before [`announce`].
    pub fn install() -> anyhow::Result<ShutdownSignals> {
        Ok(ShutdownSignals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// Waits for SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// A listener [`serve`] accepts from: TCP or a Unix stream socket.
pub trait Listener {
    /// What an accept yields.
    type Stream: Send + 'static;
    /// What the `listening on` line names.
    fn listening_on(&self) -> anyhow::Result<String>;
    /// Accepts one connection.
    fn accept_one(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Listener for TcpListener {
    type Stream = TcpStream;

    fn listening_on(&self) -> anyhow::Result<String> {
        Ok(self
            .local_addr()
            .context("reading the bound address")?
            .to_string())
    }

    async fn accept_one(&self) -> io::Result<TcpStream> {
        let (stream, _peer) = self.accept().await?;
        // Echo servers answer small messages at once; Nagle would only delay them.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;

    fn listening_on(&self) -> anyhow::Result<String> {
        let local = self.local_addr().context("reading the bound address")?;
        let path = local
            .as_pathname()
            .context("the Unix listener has no path")?;
        Ok(format!("unix:{}", path.display()))
    }

    async fn accept_one(&self) -> io::Result<UnixStream> {
        let (stream, _peer) = self.accept().await?;
        Ok(stream)
    }
}

/// Installs the signal handlers, announces `listener`, then spawns `handle(stream)` for every
/// accepted connection until SIGINT or SIGTERM (then returns `Ok`). A failed accept (descriptors
/// exhausted, a reset before accept) is logged as `<name>: accept failed: ...` and the server
/// keeps serving everyone else.
pub async fn serve<L, F, Fut>(listener: L, name: &str, handle: F) -> anyhow::Result<()>
where
    L: Listener,
    F: Fn(L::Stream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut signals = ShutdownSignals::install()?;
    announce(listener.listening_on()?)?;
    loop {
        tokio::select! {
            _ = signals.recv() => return Ok(()),
            accepted = listener.accept_one() => match accepted {
                Ok(stream) => {
                    tokio::spawn(handle(stream));
                }
                Err(error) => eprintln!("{name}: accept failed: {error}"),
            },
        }
    }
}

/// Writes back every byte read until the peer closes (answered by a shutdown of the write side:
/// a FIN, or close_notify over TLS) or an error occurs.
pub async fn echo<S>(mut stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; READ_BUFFER_SIZE];
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) => {
                let _ = stream.shutdown().await;
                return;
            }
            Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buffer[..read]).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}
