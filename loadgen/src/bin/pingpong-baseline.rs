//! `pingpong-baseline ADDR [options]`: the floor `loadgen` is measured against. A minimal mio
//! ping-pong client for a raw echo server: N connections, P fixed-size messages in flight on
//! each, one thread, no histogram, no timetable, no verification. It counts echoed messages and
//! prints one JSON line with the requests of the measured window and the CPU time its thread
//! used over that window (user + system, `CLOCK_THREAD_CPUTIME_ID`).
//!
//! Its per-reply work is the least a correct client can do: one `read` per readiness into one
//! 64 KiB buffer (a short read means the socket is drained), a byte count to find the whole
//! replies, and one `write` of exactly that many new messages, cut from a pre-built buffer of
//! repeated payloads (no copy, no allocation). `loadgen --framing raw -t 1` does the same
//! syscalls plus everything a measuring tool must (intended send times, two latency histograms,
//! loop lag, counters, timeouts), so its requests per CPU second divided by this binary's is the
//! generator's overhead ratio; `loadgen/bench/baseline.sh` measures it.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use gev_loadgen::sys::thread_cpu_time;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Minimal mio ping-pong client for a raw echo server (the generator's baseline).
#[derive(Debug, Parser)]
#[command(name = "pingpong-baseline", version, about)]
struct Args {
    /// host:port of a raw echo server
    addr: SocketAddr,
    /// Connections
    #[arg(short = 'c', long, default_value_t = 50)]
    connections: usize,
    /// Messages in flight per connection
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Message size in bytes
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Measured seconds
    #[arg(short = 'd', long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds before the measured window (connections warm up, CPU frequency settles)
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Pin the thread to this core
    #[arg(long)]
    core: Option<usize>,
}

/// Size of the one read buffer (as loadgen's per-thread read buffer).
const READ_BUFFER: usize = 64 * 1024;

/// One connection: the stream, the bytes of a partial reply already read, and the bytes of new
/// messages owed to the socket (non-zero only if a write was short).
struct Conn {
    stream: TcpStream,
    partial: usize,
    owed: usize,
    /// Bytes written so far, modulo the message size: where in the repeated payload the next
    /// write starts.
    phase: usize,
}

impl Conn {
    /// Write as much of what is owed as the socket takes, from the repeated-payload buffer.
    fn flush(&mut self, wire: &[u8], size: usize) -> io::Result<()> {
        while self.owed > 0 {
            let chunk = self.owed.min(wire.len() - self.phase);
            match self.stream.write(&wire[self.phase..self.phase + chunk]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.owed -= n;
                    self.phase = (self.phase + n) % size;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.connections == 0 || args.pipeline == 0 || args.size == 0 {
        bail!("--connections, --pipeline and --size must be at least 1");
    }
    if !(args.duration > 0.0 && args.warmup >= 0.0) {
        bail!("--duration must be positive and --warmup not negative");
    }
    if let Some(core) = args.core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            bail!("cannot pin to core {core} (--core)");
        }
    }
    let size = args.size;
    // A pipeline's worth of messages plus one, so a write may start anywhere in a message.
    let wire: Vec<u8> = (0..size * (args.pipeline + 1))
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let mut poll = Poll::new().context("epoll_create")?;
    let mut conns = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        let std_stream = std::net::TcpStream::connect(args.addr)
            .with_context(|| format!("cannot connect to {}", args.addr))?;
        std_stream.set_nodelay(true)?;
        std_stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(std_stream);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        conns.push(Conn {
            stream,
            partial: 0,
            owed: size * args.pipeline,
            phase: 0,
        });
    }
    for conn in &mut conns {
        conn.flush(&wire, size)
            .with_context(|| format!("write to {}", args.addr))?;
    }

    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; READ_BUFFER];
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let measure_to = measure_from + Duration::from_secs_f64(args.duration);
    let mut window: Option<(Duration, Instant)> = None;
    let mut replies: u64 = 0;
    let mut replies_at_start: u64 = 0;
    loop {
        // One clock read per poll: only the window bounds need time.
        let now = Instant::now();
        if window.is_none() && now >= measure_from {
            window = Some((thread_cpu_time(), now));
            replies_at_start = replies;
        }
        if now >= measure_to {
            break;
        }
        let timeout = if window.is_none() {
            measure_from - now
        } else {
            measure_to - now
        };
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("epoll_wait"),
        }
        for event in events.iter() {
            let conn = &mut conns[event.token().0];
            loop {
                let n = match conn.stream.read(&mut buf) {
                    Ok(0) => bail!("{} closed a connection", args.addr),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e).with_context(|| format!("read from {}", args.addr)),
                };
                let bytes = conn.partial + n;
                let whole = bytes / size;
                conn.partial = bytes % size;
                replies += whole as u64;
                conn.owed += whole * size;
                conn.flush(&wire, size)
                    .with_context(|| format!("write to {}", args.addr))?;
                if n < buf.len() {
                    break;
                }
            }
        }
    }
    let cpu_end = thread_cpu_time();
    let end = Instant::now();
    let (cpu_start, wall_start) = window.context("the measured window never began")?;
    let requests = replies - replies_at_start;
    let cpu_secs = cpu_end.saturating_sub(cpu_start).as_secs_f64();
    let wall_secs = end.duration_since(wall_start).as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "schema": "gev-pingpong-baseline/1",
            "connections": args.connections,
            "pipeline": args.pipeline,
            "size": size,
            "wall_secs": wall_secs,
            "requests": requests,
            "cpu_secs": cpu_secs,
            "rps": requests as f64 / wall_secs,
            "requests_per_cpu_sec": if cpu_secs > 0.0 { requests as f64 / cpu_secs } else { 0.0 },
        })
    );
    Ok(())
}
