//! End-to-end tests of the metrics endpoint: scrape it over HTTP and parse the text with the
//! real Prometheus parser (Python `prometheus_client.parser.text_string_to_metric_families`,
//! from the `.venv-test` virtualenv made by `scripts/setup-test-deps.sh`).
//!
//! - `exposition_parses_with_prometheus_client`: a `MetricsServer` in this process over a known
//!   state; every value must come back through the real parser unchanged.
//! - `echo_traffic_is_counted`: the `gev-echo` binary with `--metrics`, known traffic (N
//!   connections, M messages of K bytes each, each sent after the previous echo arrived so one
//!   read is one message), then the counters must match that traffic exactly.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ServerProcess;
use gev::metrics::{CloseKind, LoopMetrics, MetricsServer};

/// Connections, messages per connection and bytes per message of the echo traffic.
const CONNECTIONS: usize = 8;
const MESSAGES: usize = 50;
const MESSAGE_BYTES: usize = 100;

/// Every wait in these tests is bounded by this (generous: the machine is shared).
const TIMEOUT: Duration = Duration::from_secs(20);

/// Parses stdin with the real Prometheus text parser and prints one line per family
/// (`F name type`) and per sample (`S name labels value`, labels sorted `k=v,k=v`), tab-separated.
const PARSER: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    print("F\t%s\t%s" % (family.name, family.type))
    for sample in family.samples:
        labels = ",".join("%s=%s" % (k, v) for k, v in sorted(sample.labels.items()))
        print("S\t%s\t%s\t%r" % (sample.name, labels, float(sample.value)))
"#;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("server/ has a parent directory")
        .to_path_buf()
}

/// What the real parser made of an exposition.
#[derive(Debug, Default)]
struct Parsed {
    /// Family name -> type.
    families: BTreeMap<String, String>,
    /// (sample name, sorted labels) -> value.
    samples: BTreeMap<(String, String), f64>,
}

impl Parsed {
    /// The value of one series.
    fn value(&self, name: &str, labels: &str) -> Option<f64> {
        self.samples
            .get(&(name.to_string(), labels.to_string()))
            .copied()
    }

    /// The sum over every series of `name` whose labels contain all of `with` (e.g. `reason=peer`).
    fn sum(&self, name: &str, with: &[&str]) -> f64 {
        self.samples
            .iter()
            .filter(|((sample, labels), _)| {
                sample == name && with.iter().all(|w| labels.split(',').any(|l| l == *w))
            })
            .map(|(_, value)| *value)
            .sum()
    }

    /// The distinct values of the `loop` label over all samples that have one.
    fn loop_labels(&self) -> Vec<String> {
        let mut loops: Vec<String> = self
            .samples
            .keys()
            .flat_map(|(_, labels)| labels.split(','))
            .filter_map(|l| l.strip_prefix("loop=").map(str::to_string))
            .collect();
        loops.sort();
        loops.dedup();
        loops
    }
}

/// Runs the real Prometheus parser over `text`; a parse error fails the test with its message.
fn parse_with_prometheus_client(text: &str) -> Parsed {
    let python = workspace_root().join(".venv-test/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-test-deps.sh (it creates the Python test virtualenv with prometheus_client)",
        python.display()
    );
    let mut child = Command::new(&python)
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(text.as_bytes())
        .expect("write exposition to parser");
    drop(stdin);
    let output = child.wait_with_output().expect("parser output");
    assert!(
        output.status.success(),
        "prometheus_client rejected the exposition: {}\n--- text ---\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut parsed = Parsed::default();
    for line in String::from_utf8(output.stdout)
        .expect("utf-8 parser output")
        .lines()
    {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["F", name, kind] => {
                parsed.families.insert(name.to_string(), kind.to_string());
            }
            ["S", name, labels, value] => {
                let value: f64 = value.parse().expect("float value");
                parsed
                    .samples
                    .insert((name.to_string(), labels.to_string()), value);
            }
            _ => panic!("unexpected parser line {line:?}"),
        }
    }
    parsed
}

/// `GET path` over HTTP/1.1; returns (status line, headers, body).
fn http_get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect to metrics");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read metrics response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {response:?}"));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

/// Scrapes `addr` and parses the body with the real parser, checking status and content type.
fn scrape(addr: SocketAddr) -> Parsed {
    let (status, headers, body) = http_get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{headers}\n{body}");
    assert!(
        headers
            .lines()
            .any(|h| h.eq_ignore_ascii_case("content-type: text/plain; version=0.0.4")),
        "content type missing: {headers}"
    );
    parse_with_prometheus_client(&body)
}

/// Families every scrape must declare, with their types.
const FAMILIES: [(&str, &str); 16] = [
    ("gev_connections_open", "gauge"),
    ("gev_accepts", "counter"),
    ("gev_closes", "counter"),
    ("gev_bytes_read", "counter"),
    ("gev_bytes_written", "counter"),
    ("gev_messages_in", "counter"),
    ("gev_messages_out", "counter"),
    ("gev_read_syscalls", "counter"),
    ("gev_write_syscalls", "counter"),
    ("gev_loop_iterations", "counter"),
    ("gev_task_queue_depth", "gauge"),
    ("gev_connections_paused", "gauge"),
    ("gev_backpressure_pauses", "counter"),
    ("gev_loop_iteration_seconds", "histogram"),
    ("gev_process_uptime_seconds", "gauge"),
    ("gev_build_info", "gauge"),
];

fn assert_families(parsed: &Parsed) {
    for (name, kind) in FAMILIES {
        assert_eq!(
            parsed.families.get(name).map(String::as_str),
            Some(kind),
            "family {name} ({kind}) in {:?}",
            parsed.families
        );
    }
    assert_eq!(
        parsed.value(
            "gev_build_info",
            &format!("version={}", env!("CARGO_PKG_VERSION"))
        ),
        Some(1.0)
    );
    let uptime = parsed
        .value("gev_process_uptime_seconds", "")
        .expect("uptime sample");
    assert!((0.0..86_400.0 * 365.0).contains(&uptime), "uptime {uptime}");
}

#[test]
fn exposition_parses_with_prometheus_client() {
    let loops: Vec<Arc<LoopMetrics>> = (0..2).map(|i| Arc::new(LoopMetrics::new(i))).collect();
    let busy = &loops[1];
    for _ in 0..3 {
        busy.on_accept();
    }
    busy.on_read(300);
    busy.on_read(0);
    busy.on_write(280);
    busy.on_messages_in(3);
    busy.on_messages_out(2);
    busy.on_pause();
    busy.set_task_queue_depth(4);
    busy.on_iteration(Duration::from_micros(3));
    busy.on_iteration(Duration::from_millis(2));
    busy.on_close(CloseKind::Protocol);
    let mut server = MetricsServer::start(
        "127.0.0.1:0".parse().expect("addr"),
        "/metrics",
        loops.clone(),
    )
    .expect("metrics server starts");
    let parsed = scrape(server.local_addr());
    server.stop().expect("metrics server stops");

    assert_families(&parsed);
    assert_eq!(parsed.loop_labels(), ["0", "1"]);
    let one = |name: &str| parsed.value(name, "loop=1");
    assert_eq!(one("gev_accepts_total"), Some(3.0));
    assert_eq!(one("gev_connections_open"), Some(2.0));
    assert_eq!(one("gev_bytes_read_total"), Some(300.0));
    assert_eq!(one("gev_read_syscalls_total"), Some(2.0));
    assert_eq!(one("gev_bytes_written_total"), Some(280.0));
    assert_eq!(one("gev_write_syscalls_total"), Some(1.0));
    assert_eq!(one("gev_messages_in_total"), Some(3.0));
    assert_eq!(one("gev_messages_out_total"), Some(2.0));
    assert_eq!(one("gev_connections_paused"), Some(1.0));
    assert_eq!(one("gev_backpressure_pauses_total"), Some(1.0));
    assert_eq!(one("gev_task_queue_depth"), Some(4.0));
    assert_eq!(one("gev_loop_iterations_total"), Some(2.0));
    assert_eq!(one("gev_loop_iteration_seconds_count"), Some(2.0));
    assert_eq!(one("gev_loop_iteration_seconds_sum"), Some(0.002003));
    assert_eq!(
        parsed.value("gev_loop_iteration_seconds_bucket", "le=0.000005,loop=1"),
        Some(1.0)
    );
    assert_eq!(
        parsed.value("gev_loop_iteration_seconds_bucket", "le=0.001,loop=1"),
        Some(1.0)
    );
    assert_eq!(
        parsed.value("gev_loop_iteration_seconds_bucket", "le=0.0025,loop=1"),
        Some(2.0)
    );
    assert_eq!(
        parsed.value("gev_loop_iteration_seconds_bucket", "le=+Inf,loop=1"),
        Some(2.0)
    );
    for kind in CloseKind::ALL {
        let expected = if kind == CloseKind::Protocol {
            1.0
        } else {
            0.0
        };
        assert_eq!(
            parsed.value(
                "gev_closes_total",
                &format!("loop=1,reason={}", kind.as_str())
            ),
            Some(expected),
            "{kind:?}"
        );
    }
    assert_eq!(parsed.sum("gev_accepts_total", &["loop=0"]), 0.0);
}

/// A port that was free a moment ago (bound to port 0, then released): gev-echo does not print
/// its metrics address, so the test chooses it.
fn free_local_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
}

/// Scrapes until `done` holds for the parsed text or the timeout passes; returns the last scrape.
fn scrape_until(addr: SocketAddr, done: impl Fn(&Parsed) -> bool) -> Parsed {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let parsed = scrape(addr);
        if done(&parsed) || Instant::now() >= deadline {
            return parsed;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the metrics endpoint accepts connections.
fn wait_for_listener(addr: SocketAddr) {
    let deadline = Instant::now() + TIMEOUT;
    while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        assert!(
            Instant::now() < deadline,
            "metrics endpoint {addr} not reachable"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One client: M messages of K bytes, each sent after the previous one's echo was read whole.
fn ping_pong(addr: SocketAddr, seed: u8) {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect to gev-echo");
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut echo = vec![0u8; MESSAGE_BYTES];
    for message in 0..MESSAGES {
        let payload: Vec<u8> = (0..MESSAGE_BYTES)
            .map(|i| seed.wrapping_add(message as u8).wrapping_add(i as u8))
            .collect();
        stream.write_all(&payload).expect("send message");
        stream.read_exact(&mut echo).expect("read echo");
        assert_eq!(echo, payload, "echo of message {message}");
    }
    // Dropping the stream closes it: the server sees the peer's close.
}

#[test]
fn echo_traffic_is_counted() {
    let metrics_addr = free_local_addr();
    let metrics_arg = metrics_addr.to_string();
    let mut server = ServerProcess::start(
        "gev-echo",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--loops",
            "2",
            "--metrics",
            &metrics_arg,
        ],
    );
    let echo_addr = server.addr();
    wait_for_listener(metrics_addr);

    let before = scrape(metrics_addr);
    assert_families(&before);
    assert_eq!(before.loop_labels(), ["0", "1"]);
    assert_eq!(before.sum("gev_accepts_total", &[]), 0.0);

    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| std::thread::spawn(move || ping_pong(echo_addr, i as u8)))
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }

    let total = |p: &Parsed, name: &str| p.sum(name, &[]);
    let n = CONNECTIONS as f64;
    let after = scrape_until(metrics_addr, |p| {
        p.sum("gev_closes_total", &["reason=peer"]) >= n
    });
    assert_families(&after);
    assert_eq!(after.loop_labels(), ["0", "1"]);
    assert_eq!(total(&after, "gev_accepts_total"), n);
    assert_eq!(after.sum("gev_closes_total", &["reason=peer"]), n);
    assert_eq!(total(&after, "gev_closes_total"), n, "only peer closes");
    assert_eq!(total(&after, "gev_connections_open"), 0.0);
    let bytes = (CONNECTIONS * MESSAGES * MESSAGE_BYTES) as f64;
    assert_eq!(total(&after, "gev_bytes_read_total"), bytes);
    assert_eq!(total(&after, "gev_bytes_written_total"), bytes);
    let messages = (CONNECTIONS * MESSAGES) as f64;
    assert_eq!(total(&after, "gev_messages_in_total"), messages);
    assert_eq!(total(&after, "gev_messages_out_total"), messages);
    // At least one read per message and one for each peer close; at least one write per echo.
    assert!(total(&after, "gev_read_syscalls_total") >= messages + n);
    assert!(total(&after, "gev_write_syscalls_total") >= messages);
    let iterations = total(&after, "gev_loop_iterations_total");
    // Each connection's next message arrives only after its echo was flushed, so its loop
    // iterates at least once per message of that connection.
    assert!(iterations >= MESSAGES as f64, "iterations {iterations}");
    assert_eq!(
        total(&after, "gev_loop_iteration_seconds_count"),
        iterations
    );
    assert_eq!(
        after.sum("gev_loop_iteration_seconds_bucket", &["le=+Inf"]),
        iterations
    );
    assert_eq!(total(&after, "gev_connections_paused"), 0.0);

    let (status, _, _) = http_get(metrics_addr, "/nope");
    assert!(status.starts_with("HTTP/1.1 404 "), "{status}");

    // Graceful stop includes joining the metrics thread.
    let status = server
        .interrupt_and_wait(TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "gev-echo exited with {status}");
}
