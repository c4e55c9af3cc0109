//! The scrape endpoint: a small HTTP/1.1 server on its own thread serving the exposition.
//!
//! One thread (`gev-metrics`) waits in a `mio::Poll` on the listening socket and a `Waker`;
//! `stop()` wakes it. Connections are served one at a time, each with an overall deadline
//! (`request_timeout`) and a bounded request head (`max_request_bytes`), so a slow or hostile
//! client can hold the endpoint for at most one deadline and can never delay the event loops:
//! the only thing the scrape shares with them is the read side of their `LoopMetrics`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use super::http::{self, Progress, Route};
use super::render::{self, CONTENT_TYPE};
use super::{process, udp, LoopMetrics, MetricsError};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

/// At most this much unread input is drained after answering (see `Endpoint::serve`).
const DRAIN_MAX_BYTES: usize = 64 * 1024;
/// Longest wait for more input (or the client's close) while draining.
const DRAIN_WAIT: Duration = Duration::from_millis(100);

/// Limits of the scrape endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsServerOptions {
    /// Largest request head accepted; a longer one is answered 431. Default 8 KiB.
    pub max_request_bytes: usize,
    /// Time a client has to send its request and read the response. Default 2 s.
    pub request_timeout: Duration,
    /// How long `stop()` waits for the server thread. Default: `request_timeout` + 1 s, so a
    /// request being served when `stop()` is called can finish.
    pub stop_timeout: Duration,
}

impl Default for MetricsServerOptions {
    fn default() -> Self {
        let request_timeout = Duration::from_secs(2);
        MetricsServerOptions {
            max_request_bytes: 8 * 1024,
            request_timeout,
            stop_timeout: request_timeout + Duration::from_secs(1),
        }
    }
}

/// The running metrics endpoint. Dropping it stops it (like [`MetricsServer::stop`], ignoring
/// errors).
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the server thread returns (its sender is dropped).
    finished: mpsc::Receiver<()>,
    stop_timeout: Duration,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port, see [`MetricsServer::local_addr`]) and serves
    /// the metrics of `loops` at `path` (e.g. `/metrics`) from a new thread, with default
    /// [`MetricsServerOptions`].
    pub fn start(
        addr: SocketAddr,
        path: &str,
        loops: Vec<Arc<LoopMetrics>>,
    ) -> Result<MetricsServer, MetricsError> {
        Self::start_with_options(addr, path, loops, MetricsServerOptions::default())
    }

    /// [`MetricsServer::start`] with explicit limits.
    pub fn start_with_options(
        addr: SocketAddr,
        path: &str,
        loops: Vec<Arc<LoopMetrics>>,
        options: MetricsServerOptions,
    ) -> Result<MetricsServer, MetricsError> {
        if !path.starts_with('/')
            || path.contains(|c: char| c.is_whitespace() || c == '?' || c == '#')
        {
            return Err(MetricsError::InvalidPath {
                path: path.to_string(),
            });
        }
        let mut listener =
            TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })?;
        let local_addr = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        process::mark_start();
        let (finished_tx, finished) = mpsc::channel();
        let endpoint = Endpoint {
            listener,
            path: path.to_string(),
            loops,
            options: options.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("gev-metrics".to_string())
            .spawn(move || {
                endpoint.run(poll);
                drop(finished_tx);
            })?;
        tracing::debug!(%local_addr, path, "metrics endpoint listening");
        Ok(MetricsServer {
            local_addr,
            waker,
            thread: Some(thread),
            finished,
            stop_timeout: options.stop_timeout,
        })
    }

    /// The bound address (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving and joins the server thread, waiting at most `stop_timeout` (a request in
    /// progress is finished first). Calling it again does nothing.
    pub fn stop(&mut self) -> Result<(), MetricsError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.waker.wake()?;
        match self.finished.recv_timeout(self.stop_timeout) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Leave the thread detached: it exits at the end of the request it is serving.
                Err(MetricsError::StopTimeout(self.stop_timeout))
            }
            // The sender is only dropped, never used: disconnection means the thread returned
            // (or panicked), so join cannot block.
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                thread.join().map_err(|_| MetricsError::ThreadPanicked)
            }
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::warn!(%error, "metrics endpoint did not stop cleanly");
        }
    }
}

/// What the server thread owns.
struct Endpoint {
    listener: TcpListener,
    path: String,
    loops: Vec<Arc<LoopMetrics>>,
    options: MetricsServerOptions,
}

impl Endpoint {
    /// The server thread: accept and serve until woken by `stop()`.
    fn run(self, mut poll: Poll) {
        let mut events = Events::with_capacity(8);
        loop {
            if let Err(error) = poll.poll(&mut events, None) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(%error, "metrics endpoint poll failed; endpoint stopped");
                return;
            }
            for event in &events {
                if event.token() == WAKER {
                    return;
                }
            }
            self.accept_all();
        }
    }

    /// Serves every pending connection (the listener is edge-triggered: drain it).
    fn accept_all(&self) {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if let Err(error) = self.serve(stream.into()) {
                        tracing::debug!(%peer, %error, "metrics request failed");
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // EMFILE and friends: the connection stays in the backlog; back off a
                    // little instead of spinning, the next readiness retries.
                    tracing::warn!(%error, "metrics endpoint accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                    return;
                }
            }
        }
    }

    /// Reads one request head, answers it, closes.
    fn serve(&self, mut stream: TcpStream) -> io::Result<()> {
        let deadline = Instant::now() + self.options.request_timeout;
        stream.set_nonblocking(false)?;
        let limit = self.options.max_request_bytes;
        let mut received = Vec::with_capacity(limit.min(1024));
        let mut chunk = [0u8; 1024];
        let route = loop {
            match http::route(&received, &self.path, limit) {
                Progress::Respond(route) => break route,
                Progress::Incomplete => {}
            }
            stream.set_read_timeout(Some(remaining(deadline)?))?;
            let room = (limit - received.len()).min(chunk.len());
            let n = stream.read(&mut chunk[..room])?;
            if n == 0 {
                // Closed before a whole request: nothing to answer.
                return Ok(());
            }
            received.extend_from_slice(&chunk[..n]);
        };
        let body = match route {
            Route::Metrics { .. } => self.render(),
            _ => String::new(),
        };
        stream.set_write_timeout(Some(remaining(deadline)?))?;
        stream.write_all(&http::response(route, &body, CONTENT_TYPE))?;
        // Half-close, then drain what the client may still send (a request body) until it
        // closes, so the kernel does not answer unread data with a reset that could destroy
        // the response in flight. Bounded in bytes and time: a client that keeps the
        // connection open costs at most DRAIN_WAIT.
        stream.shutdown(Shutdown::Write)?;
        let mut drained = 0usize;
        while drained < DRAIN_MAX_BYTES {
            let Ok(wait) = remaining(deadline) else { break };
            stream.set_read_timeout(Some(wait.min(DRAIN_WAIT)))?;
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        Ok(())
    }

    /// The exposition for the current state of every loop.
    fn render(&self) -> String {
        let snapshots: Vec<_> = self
            .loops
            .iter()
            .map(|metrics| metrics.snapshot())
            .collect();
        let mut text = String::with_capacity(4096 + 3072 * snapshots.len());
        render::render(&snapshots, &process::process_info(), &mut text);
        let udp: Vec<_> = self
            .loops
            .iter()
            .filter_map(|metrics| Some((metrics.loop_index(), metrics.udp_snapshot()?)))
            .collect();
        udp::render(&udp, &mut text);
        text
    }
}

/// Time left until `deadline`, or a `TimedOut` error once it has passed.
fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "request deadline passed",
        ))
    } else {
        Ok(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::CloseKind;

    fn start(loops: Vec<Arc<LoopMetrics>>) -> MetricsServer {
        let options = MetricsServerOptions {
            request_timeout: Duration::from_millis(500),
            stop_timeout: Duration::from_secs(5),
            ..MetricsServerOptions::default()
        };
        MetricsServer::start_with_options(
            "127.0.0.1:0".parse().expect("addr"),
            "/metrics",
            loops,
            options,
        )
        .expect("metrics server starts")
    }

    /// Sends `request` and reads the whole response (the server closes after it).
    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(request).expect("send request");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read response");
        String::from_utf8(response).expect("utf-8 response")
    }

    #[test]
    fn rejects_relative_path() {
        let error = MetricsServer::start("127.0.0.1:0".parse().expect("addr"), "metrics", vec![])
            .expect_err("relative path rejected");
        assert!(matches!(error, MetricsError::InvalidPath { .. }));
    }

    #[test]
    fn reports_bind_errors_with_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let error = MetricsServer::start(addr, "/metrics", vec![]).expect_err("address in use");
        assert!(error.to_string().contains(&addr.to_string()), "{error}");
    }

    #[test]
    fn serves_the_exposition_and_routes_errors() {
        let metrics = Arc::new(LoopMetrics::new(0));
        metrics.on_accept();
        metrics.on_read(10);
        metrics.on_close(CloseKind::Peer);
        let mut server = start(vec![Arc::clone(&metrics)]);
        let addr = server.local_addr();

        let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("\r\nContent-Type: text/plain; version=0.0.4\r\n"));
        assert!(ok.contains("\ngev_accepts_total{loop=\"0\"} 1\n"), "{ok}");
        assert!(ok.contains("\ngev_bytes_read_total{loop=\"0\"} 10\n"));
        assert!(ok.contains("\ngev_closes_total{loop=\"0\",reason=\"peer\"} 1\n"));

        metrics.on_accept();
        let again = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(
            again.contains("\ngev_accepts_total{loop=\"0\"} 2\n"),
            "{again}"
        );

        let cases: [(&[u8], &str); 4] = [
            (b"GET /other HTTP/1.1\r\n\r\n", "404"),
            (
                b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                "405",
            ),
            (b"\x00\x01garbage\r\n\r\n", "400"),
            (b"DELETE /metrics HTTP/1.0\r\n\r\n", "405"),
        ];
        for (request, status) in cases {
            let response = exchange(addr, request);
            assert!(
                response.starts_with(&format!("HTTP/1.1 {status} ")),
                "{request:?} -> {response}"
            );
        }
        server.stop().expect("stops");
    }

    #[test]
    fn oversized_request_gets_431() {
        let mut server = start(vec![]);
        let mut request = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', 20_000));
        // The server answers once it has read its limit, then drains the rest.
        let response = exchange(server.local_addr(), &request);
        assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
        server.stop().expect("stops");
    }

    #[test]
    fn silent_client_times_out_and_others_are_served_after_it() {
        let mut server = start(vec![Arc::new(LoopMetrics::new(0))]);
        let addr = server.local_addr();
        let silent = TcpStream::connect(addr).expect("connect");
        let started = Instant::now();
        let response = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        // Served after the silent client's deadline (500 ms), well within a generous bound.
        assert!(started.elapsed() < Duration::from_secs(10));
        drop(silent);
        server.stop().expect("stops");
    }

    #[test]
    fn stop_joins_promptly_even_with_a_client_connected() {
        let mut server = start(vec![]);
        let _idle = TcpStream::connect(server.local_addr()).expect("connect");
        let started = Instant::now();
        server.stop().expect("stops");
        // The thread may have been serving the idle client: bounded by its deadline (500 ms).
        assert!(started.elapsed() < Duration::from_secs(5));
        server.stop().expect("second stop is a no-op");
    }

    #[test]
    fn port_is_released_after_stop() {
        let mut server = start(vec![]);
        let addr = server.local_addr();
        server.stop().expect("stops");
        let error = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
        assert!(error.is_err(), "still accepting on {addr} after stop");
    }
}
