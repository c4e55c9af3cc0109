//! Reference server: a bare mio echo loop with no abstractions, the upper bound for gev's design.
//!
//! One acceptor thread hands accepted sockets round-robin to `--threads N` worker threads, each
//! owning one `mio::Poll` and its connections (the shape of gev with several loops: acceptor ->
//! balance -> loop, with none of its protocol, handler, timer or metrics layers; a gev server with
//! one loop accepts on that loop instead, so at `--threads 1` this reference pays one thread
//! hand-off per accepted connection that gev does not). Round-robin hand-off rather than
//! SO_REUSEPORT keeps the spread of a handful of benchmark connections even, so the figure is the
//! loop's limit and not the kernel's hash luck. Prints `listening on <ip:port>` once bound and
//! exits 0 on SIGINT or SIGTERM.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The per-thread scratch buffer every read lands in (gev's loops use the same 64 KiB).
const READ_BUFFER_SIZE: usize = 64 * 1024;
/// Above this many unsent bytes a connection stops reading until its peer drains it, so a client
/// that never reads cannot make the server buffer without bound.
const OUTPUT_HIGH_WATERMARK: usize = 1024 * 1024;
/// Token of the waker that announces new connections and shutdown; connections use their slot.
const WAKER: Token = Token(usize::MAX);
/// Token of the listening socket in the acceptor's poll.
const LISTENER: Token = Token(0);

/// A bare mio echo server used as a reference in benchmark sweeps.
#[derive(Debug, Parser)]
#[command(name = "ref-mio-echo", version)]
struct Args {
    /// Address to bind.
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// Port to bind (0 picks a free one; read it from the `listening on` line).
    #[arg(long, default_value_t = 1833)]
    port: u16,
    /// Worker threads, each with its own poll; 0 or less means one per core.
    #[arg(long, alias = "loops", default_value_t = -1, allow_negative_numbers = true)]
    threads: i64,
}

/// What a worker needs from outside: sockets to adopt, and a flag telling it to stop.
struct WorkerInbox {
    waker: Arc<Waker>,
    sender: Sender<TcpStream>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let threads = match usize::try_from(args.threads) {
        Ok(n) if n > 0 => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let addr: SocketAddr = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {}:{}", args.host, args.port))?
        .next()
        .with_context(|| format!("{}:{} resolves to no address", args.host, args.port))?;
    let mut listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;

    let stop = Arc::new(AtomicBool::new(false));
    let mut inboxes = Vec::with_capacity(threads);
    let mut workers: Vec<JoinHandle<io::Result<()>>> = Vec::with_capacity(threads);
    for index in 0..threads {
        let poll = Poll::new().context("creating a worker poll")?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).context("creating a waker")?);
        let (sender, receiver) = mpsc::channel();
        let stop = Arc::clone(&stop);
        // The worker keeps its own reference to the waker's eventfd: if the acceptor's copy were
        // the last one, closing it right after the final wake would drop the pending event from
        // the epoll set before the worker collects it, and the worker would sleep forever.
        let own_waker = Arc::clone(&waker);
        workers.push(
            std::thread::Builder::new()
                .name(format!("mio-echo-{index}"))
                .spawn(move || {
                    let _waker = own_waker;
                    worker(poll, receiver, &stop)
                })
                .context("spawning a worker thread")?,
        );
        inboxes.push(WorkerInbox { waker, sender });
    }

    let accept_poll = Poll::new().context("creating the acceptor poll")?;
    accept_poll
        .registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .context("registering the listener")?;
    let accept_waker =
        Arc::new(Waker::new(accept_poll.registry(), WAKER).context("creating a waker")?);
    let acceptor_stop = Arc::clone(&stop);
    let acceptor = std::thread::Builder::new()
        .name("mio-echo-accept".into())
        .spawn(move || acceptor(accept_poll, listener, inboxes, &acceptor_stop))
        .context("spawning the acceptor thread")?;

    // Handlers go in before the announcement: a SIGINT sent as soon as the line is read must
    // stop the server cleanly, not kill it.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {local}").context("writing to stdout")?;
        stdout.flush().context("flushing stdout")?;
    }

    // Blocks until the first SIGINT or SIGTERM.
    let _ = signals.forever().next();
    stop.store(true, Ordering::SeqCst);
    accept_waker.wake().context("waking the acceptor")?;
    // The acceptor wakes every worker on its way out (it owns their inboxes).
    acceptor
        .join()
        .map_err(|_| anyhow::anyhow!("the acceptor thread panicked"))?
        .context("acceptor")?;
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a worker thread panicked"))?
            .context("worker")?;
    }
    Ok(())
}

/// Accepts connections and deals them round-robin to the workers until `stop` is set.
fn acceptor(
    mut poll: Poll,
    listener: TcpListener,
    inboxes: Vec<WorkerInbox>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut events = Events::with_capacity(16);
    let mut next = 0usize;
    while !stop.load(Ordering::SeqCst) {
        if let Err(error) = poll.poll(&mut events, None) {
            if error.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        loop {
            match listener.accept() {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let inbox = &inboxes[next % inboxes.len()];
                    next = next.wrapping_add(1);
                    // A worker only disappears after `stop`, so a failed send loses nothing.
                    if inbox.sender.send(stream).is_ok() {
                        inbox.waker.wake()?;
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == ErrorKind::Interrupted => continue,
                // Out of descriptors, or a connection reset before accept: keep serving others.
                Err(error) => {
                    eprintln!("ref-mio-echo: accept failed: {error}");
                    break;
                }
            }
        }
    }
    for inbox in &inboxes {
        inbox.waker.wake()?;
    }
    Ok(())
}

/// One connection: its socket and the echoed bytes the socket has not yet accepted.
struct Connection {
    stream: TcpStream,
    pending: Vec<u8>,
    /// Whether WRITABLE interest is registered (only while `pending` is non-empty).
    waiting_to_write: bool,
}

/// What became of a connection after handling an event.
enum Outcome {
    Open,
    Closed,
}

/// One event loop: adopts sockets from the acceptor and echoes on them until `stop` is set.
fn worker(mut poll: Poll, inbox: Receiver<TcpStream>, stop: &AtomicBool) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; READ_BUFFER_SIZE];
    // Slots indexed by token; `free` lists the vacant ones so tokens are reused.
    let mut connections: Vec<Option<Connection>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    loop {
        if let Err(error) = poll.poll(&mut events, None) {
            if error.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        for event in events.iter() {
            if event.token() == WAKER {
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                while let Ok(mut stream) = inbox.try_recv() {
                    let slot = free.pop().unwrap_or_else(|| {
                        connections.push(None);
                        connections.len() - 1
                    });
                    if poll
                        .registry()
                        .register(&mut stream, Token(slot), Interest::READABLE)
                        .is_err()
                    {
                        free.push(slot);
                        continue;
                    }
                    let mut connection = Connection {
                        stream,
                        pending: Vec::new(),
                        waiting_to_write: false,
                    };
                    // Bytes may have arrived before registration; edge-triggered polls would
                    // not report them again.
                    match echo(&mut connection, &mut scratch, &poll, slot) {
                        Outcome::Open => connections[slot] = Some(connection),
                        Outcome::Closed => {
                            let _ = poll.registry().deregister(&mut connection.stream);
                            free.push(slot);
                        }
                    }
                }
                continue;
            }
            let slot = event.token().0;
            let Some(Some(connection)) = connections.get_mut(slot) else {
                continue;
            };
            if let Outcome::Closed = echo(connection, &mut scratch, &poll, slot) {
                if let Some(mut closed) = connections[slot].take() {
                    let _ = poll.registry().deregister(&mut closed.stream);
                }
                free.push(slot);
            }
        }
    }
}

/// Flushes pending output, then reads and echoes until the socket would block (mio polls are
/// edge-triggered), keeping unsent bytes and WRITABLE interest while the peer is slow.
fn echo(connection: &mut Connection, scratch: &mut [u8], poll: &Poll, slot: usize) -> Outcome {
    if flush(connection).is_err() {
        return Outcome::Closed;
    }
    while connection.pending.len() < OUTPUT_HIGH_WATERMARK {
        match connection.stream.read(scratch) {
            Ok(0) => return Outcome::Closed,
            Ok(read) => {
                if connection.pending.is_empty() {
                    match write_some(&mut connection.stream, &scratch[..read]) {
                        Ok(written) => connection
                            .pending
                            .extend_from_slice(&scratch[written..read]),
                        Err(_) => return Outcome::Closed,
                    }
                } else {
                    connection.pending.extend_from_slice(&scratch[..read]);
                }
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Outcome::Closed,
        }
    }
    let want_write = !connection.pending.is_empty();
    if want_write != connection.waiting_to_write {
        let interest = if want_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if poll
            .registry()
            .reregister(&mut connection.stream, Token(slot), interest)
            .is_err()
        {
            return Outcome::Closed;
        }
        connection.waiting_to_write = want_write;
    }
    Outcome::Open
}

/// Writes as much of `pending` as the socket takes now.
fn flush(connection: &mut Connection) -> io::Result<()> {
    if connection.pending.is_empty() {
        return Ok(());
    }
    let written = write_some(&mut connection.stream, &connection.pending)?;
    connection.pending.drain(..written);
    Ok(())
}

/// Writes until done or the socket would block; returns how many bytes went out.
fn write_some(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(written)
}
