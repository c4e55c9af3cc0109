//! `fragile-echo --flaw KIND`: an echo server that is deliberately fragile against one kind of
//! misbehaving client, so the tests can prove that `harness soak` catches each kind of fragility
//! (a verdict that cannot fail is a defect). Test tool only; never a reference.
//!
//! Without a flaw (`--flaw none`) it is a plain single-threaded mio echo server that pauses
//! reading a connection whose unsent output passes 1 MiB. Each flaw breaks one rule:
//!
//! | `--flaw`     | what it does wrong                                                  | what the soak sees        |
//! |--------------|---------------------------------------------------------------------|---------------------------|
//! | `never-read` | finishes a reply with a blocking write when the socket is full      | everyone stalls           |
//! | `slow-read`  | buffers replies without limit and never pauses reading              | memory grows              |
//! | `slow-write` | waits (blocking) for the rest of a partial 64-byte message          | everyone stalls           |
//! | `reset`      | forgets a connection that failed with ECONNRESET without closing it | descriptors leak          |
//! | `half-close` | never closes at end of input and polls the socket again and again   | CPU spins, descriptors    |
//! | `garbage`    | treats a 0xFF byte as impossible and aborts                          | the server dies           |
//! | `abandon`    | waits (blocking) for the first byte of a new connection             | everyone stalls           |
//! | `churn`      | leaks 64 KiB per closed connection                                  | memory grows              |
//!
//! Flags like the other example servers: `--host`, `--port` (0: any), `--loops` (ignored, so the
//! harness's `{loops}` placeholder works); prints `listening on ADDR`; exits 0 on SIGINT/SIGTERM
//! (unless a flaw has it blocked, when the harness kills it).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// Unsent output above which a (non-flawed) connection stops being read.
const OUTPUT_LIMIT: usize = 1 << 20;
/// The message size the `slow-write` flaw insists on.
const MESSAGE: usize = 64;
/// What the `churn` flaw leaks per closed connection.
const LEAK_PER_CLOSE: usize = 64 * 1024;
const LISTENER: Token = Token(usize::MAX);
/// SO_SNDBUF of accepted connections.
const SEND_BUFFER: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Flaw {
    None,
    NeverRead,
    SlowRead,
    SlowWrite,
    Reset,
    HalfClose,
    Garbage,
    Abandon,
    Churn,
}

#[derive(Debug, Parser)]
#[command(
    name = "fragile-echo",
    about = "An echo server fragile on purpose (test tool)"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Ignored (accepted for the harness's `{loops}` placeholder).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    loops: i32,
    /// Which misbehaving client it is fragile against.
    #[arg(long, value_enum, default_value_t = Flaw::None)]
    flaw: Flaw,
}

struct Conn {
    stream: TcpStream,
    output: Vec<u8>,
    written: usize,
    paused: bool,
}

struct Server {
    flaw: Flaw,
    poll: Poll,
    conns: HashMap<usize, Conn>,
    next_token: usize,
    /// `half-close`: connections at end of input that are polled again forever.
    spinning: Vec<usize>,
    /// `churn`: what was leaked, kept reachable so it stays resident.
    leaked: Vec<Vec<u8>>,
    scratch: Vec<u8>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("signal handler")?;
    }
    let mut listener = TcpListener::bind(SocketAddr::new(args.host, args.port))
        .with_context(|| format!("binding {}:{}", args.host, args.port))?;
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    let mut server = Server {
        flaw: args.flaw,
        poll,
        conns: HashMap::new(),
        next_token: 0,
        spinning: Vec::new(),
        leaked: Vec::new(),
        scratch: vec![0; 64 * 1024],
    };
    let mut events = Events::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        let timeout = if server.spinning.is_empty() {
            Duration::from_millis(100)
        } else {
            Duration::ZERO
        };
        if let Err(e) = server.poll.poll(&mut events, Some(timeout)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                server.accept(&listener);
                continue;
            }
            let id = event.token().0;
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                server.read(id);
            }
            if event.is_writable() {
                server.flush(id);
            }
        }
        // The half-close flaw: read the finished sockets again, every iteration, forever.
        for id in server.spinning.clone() {
            if let Some(conn) = server.conns.get_mut(&id) {
                let _ = conn.stream.read(&mut server.scratch);
            }
        }
    }
    Ok(())
}

impl Server {
    fn accept(&mut self, listener: &TcpListener) {
        loop {
            let (mut stream, _) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            };
            if self.flaw == Flaw::Abandon {
                // Flaw: wait for the client to speak first, blocking the whole loop.
                let _ = blocking(&stream, |s| {
                    let mut first = [0u8; 1];
                    s.peek(&mut first).map(|_| ())
                });
            }
            let id = self.next_token;
            self.next_token += 1;
            if self
                .poll
                .registry()
                .register(
                    &mut stream,
                    Token(id),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            let _ = stream.set_nodelay(true);
            // A small send buffer (as some servers configure to save kernel memory), so a
            // client that does not read fills it within the first second.
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
            self.conns.insert(
                id,
                Conn {
                    stream,
                    output: Vec::new(),
                    written: 0,
                    paused: false,
                },
            );
        }
    }

    fn close(&mut self, id: usize) {
        if let Some(mut conn) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if self.flaw == Flaw::Churn {
                // Flaw: per-connection state that is never given back.
                self.leaked.push(vec![1u8; LEAK_PER_CLOSE]);
            }
        }
    }

    fn read(&mut self, id: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if conn.paused {
                return;
            }
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    if self.flaw == Flaw::HalfClose {
                        // Flaw: the end of input is not a reason to close.
                        if !self.spinning.contains(&id) {
                            self.spinning.push(id);
                        }
                        return;
                    }
                    self.close(id);
                    return;
                }
                Ok(mut n) => {
                    if self.flaw == Flaw::Garbage && self.scratch[..n].contains(&0xFF) {
                        // Flaw: "clients only ever send text".
                        eprintln!("fragile-echo: impossible byte 0xFF, aborting");
                        std::process::abort();
                    }
                    if self.flaw == Flaw::SlowWrite && n % MESSAGE != 0 {
                        // Flaw: insist on whole messages, waiting for the rest in place.
                        let want = n.div_ceil(MESSAGE) * MESSAGE;
                        let scratch = &mut self.scratch;
                        let _ = blocking(&conn.stream, |s| {
                            while n < want {
                                match s.read(&mut scratch[n..want])? {
                                    0 => break,
                                    got => n += got,
                                }
                            }
                            Ok(())
                        });
                    }
                    conn.output.extend_from_slice(&self.scratch[..n]);
                    self.flush(id);
                    let flaw = self.flaw;
                    let Some(conn) = self.conns.get_mut(&id) else {
                        return;
                    };
                    if flaw != Flaw::SlowRead && conn.output.len() - conn.written > OUTPUT_LIMIT {
                        conn.paused = true;
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if self.flaw == Flaw::Reset && e.kind() == io::ErrorKind::ConnectionReset {
                        // Flaw: drop the bookkeeping, keep the descriptor.
                        if let Some(conn) = self.conns.remove(&id) {
                            std::mem::forget(conn.stream);
                        }
                        return;
                    }
                    self.close(id);
                    return;
                }
            }
        }
    }

    fn flush(&mut self, id: usize) {
        let flaw = self.flaw;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        while conn.written < conn.output.len() {
            match conn.stream.write(&conn.output[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if flaw == Flaw::NeverRead {
                        // Flaw: finish the reply whatever it takes.
                        let (output, written) = (&conn.output, &mut conn.written);
                        let _ = blocking(&conn.stream, |s| {
                            s.write_all(&output[*written..])?;
                            *written = output.len();
                            Ok(())
                        });
                    }
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(id);
                    return;
                }
            }
        }
        if conn.written == conn.output.len() {
            conn.output.clear();
            conn.written = 0;
            if conn.paused {
                conn.paused = false;
                self.read(id);
            }
        }
    }
}

/// Run `f` on the stream switched to blocking mode (the flaws' way of waiting), then switch back.
fn blocking(
    stream: &TcpStream,
    f: impl FnOnce(&mut std::net::TcpStream) -> io::Result<()>,
) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: the descriptor is owned by `stream`, which outlives this call; the temporary
    // std stream is wrapped in ManuallyDrop so it never closes the descriptor.
    let mut borrowed = std::mem::ManuallyDrop::new(unsafe {
        std::net::TcpStream::from_raw_fd(stream.as_raw_fd())
    });
    borrowed.set_nonblocking(false)?;
    let result = f(&mut borrowed);
    borrowed.set_nonblocking(true)?;
    result
}
