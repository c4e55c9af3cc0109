//! Rendering: loop snapshots to Prometheus text exposition format 0.0.4.
//!
//! The scrape thread takes one [`LoopSnapshot`] per loop and hands them here with the
//! process-wide values; this module only formats plain data (no locks, no I/O), so its output
//! for a known state is checked line by line in the tests below. Every family has `# HELP` and
//! `# TYPE` lines and its series are labelled by `loop` only (plus `reason` for closes and `le`
//! for histogram buckets, both from fixed sets), so the number of series is bounded by the
//! number of loops.

use std::fmt::Write;

use super::close_kind::CloseKind;
use super::histogram::ITERATION_BUCKET_BOUNDS_NS;
use super::loop_metrics::LoopSnapshot;

/// Process-wide values rendered after the per-loop families.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProcessInfo {
    /// Seconds since the process started.
    pub uptime_seconds: f64,
    /// The `version` label of `gev_build_info` (the crate version).
    pub version: &'static str,
}

/// The content type of what [`render`] produces.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Appends the whole exposition for `loops` and `process` to `out`.
pub(crate) fn render(loops: &[LoopSnapshot], process: &ProcessInfo, out: &mut String) {
    per_loop(
        out,
        "gev_connections_open",
        "gauge",
        "Connections currently open on the loop.",
        loops,
        LoopSnapshot::open_connections,
    );
    per_loop(
        out,
        "gev_accepts_total",
        "counter",
        "Connections accepted and registered on the loop.",
        loops,
        |s| s.accepts,
    );
    header(
        out,
        "gev_closes_total",
        "counter",
        "Connections closed on the loop, by reason.",
    );
    for snapshot in loops {
        for kind in CloseKind::ALL {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "gev_closes_total{{loop=\"{}\",reason=\"{}\"}} {}",
                snapshot.loop_index,
                kind.as_str(),
                snapshot.closes_of(kind)
            );
        }
    }
    per_loop(
        out,
        "gev_bytes_read_total",
        "counter",
        "Bytes read from connections' sockets.",
        loops,
        |s| s.bytes_read,
    );
    per_loop(
        out,
        "gev_bytes_written_total",
        "counter",
        "Bytes written to connections' sockets.",
        loops,
        |s| s.bytes_written,
    );
    per_loop(
        out,
        "gev_messages_in_total",
        "counter",
        "Messages unpacked by the protocol and handed to the handler.",
        loops,
        |s| s.messages_in,
    );
    per_loop(
        out,
        "gev_messages_out_total",
        "counter",
        "Replies packed by the protocol into output buffers.",
        loops,
        |s| s.messages_out,
    );
    per_loop(
        out,
        "gev_read_syscalls_total",
        "counter",
        "Read system calls on connections' sockets.",
        loops,
        |s| s.read_syscalls,
    );
    per_loop(
        out,
        "gev_write_syscalls_total",
        "counter",
        "Write system calls on connections' sockets.",
        loops,
        |s| s.write_syscalls,
    );
    per_loop(
        out,
        "gev_loop_iterations_total",
        "counter",
        "Event loop iterations (poll returns).",
        loops,
        LoopSnapshot::iterations,
    );
    per_loop(
        out,
        "gev_task_queue_depth",
        "gauge",
        "Tasks found in the loop's cross-thread queue at its last drain.",
        loops,
        |s| s.task_queue_depth,
    );
    per_loop(
        out,
        "gev_connections_paused",
        "gauge",
        "Connections not being read because their output is above the high watermark.",
        loops,
        LoopSnapshot::paused_connections,
    );
    per_loop(
        out,
        "gev_backpressure_pauses_total",
        "counter",
        "Times a connection was paused by backpressure.",
        loops,
        |s| s.pauses,
    );
    per_loop(
        out,
        "gev_tls_handshakes_total",
        "counter",
        "TLS handshakes completed on the loop.",
        loops,
        |s| s.tls_handshakes,
    );
    per_loop(
        out,
        "gev_tls_resumed_handshakes_total",
        "counter",
        "TLS handshakes that resumed an earlier session (ticket or session id).",
        loops,
        |s| s.tls_resumed,
    );
    iteration_histogram(out, loops);
    header(
        out,
        "gev_process_uptime_seconds",
        "gauge",
        "Seconds since the process started.",
    );
    let _ = writeln!(
        out,
        "gev_process_uptime_seconds {:.3}",
        process.uptime_seconds
    );
    header(
        out,
        "gev_build_info",
        "gauge",
        "Build information of the gev library; the value is always 1.",
    );
    let _ = writeln!(
        out,
        "gev_build_info{{version=\"{}\"}} 1",
        escape_label_value(process.version)
    );
}

/// The `# HELP` and `# TYPE` lines of one family.
pub(super) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A family with one integer series per loop.
fn per_loop(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    loops: &[LoopSnapshot],
    value: impl Fn(&LoopSnapshot) -> u64,
) {
    header(out, name, kind, help);
    for snapshot in loops {
        let _ = writeln!(
            out,
            "{name}{{loop=\"{}\"}} {}",
            snapshot.loop_index,
            value(snapshot)
        );
    }
}

/// `gev_loop_iteration_seconds`: cumulative `_bucket` series, `_sum` and `_count` per loop.
fn iteration_histogram(out: &mut String, loops: &[LoopSnapshot]) {
    const NAME: &str = "gev_loop_iteration_seconds";
    header(
        out,
        NAME,
        "histogram",
        "Busy time of one event loop iteration (from poll returning to the next poll).",
    );
    for snapshot in loops {
        let index = snapshot.loop_index;
        let mut cumulative = 0u64;
        for (bound, count) in ITERATION_BUCKET_BOUNDS_NS
            .iter()
            .zip(&snapshot.iteration_buckets)
        {
            cumulative += count;
            let _ = writeln!(
                out,
                "{NAME}_bucket{{loop=\"{index}\",le=\"{}\"}} {cumulative}",
                nanos_as_seconds(*bound)
            );
        }
        let count = snapshot.iterations();
        let _ = writeln!(out, "{NAME}_bucket{{loop=\"{index}\",le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{NAME}_sum{{loop=\"{index}\"}} {}",
            nanos_as_seconds(snapshot.iteration_sum_ns)
        );
        let _ = writeln!(out, "{NAME}_count{{loop=\"{index}\"}} {count}");
    }
}

/// Exact decimal seconds for a nanosecond count, without trailing zeros (`5000` -> `0.000005`,
/// `1_000_000_000` -> `1`); avoids float rounding in bucket bounds and sums.
fn nanos_as_seconds(nanos: u64) -> String {
    let whole = nanos / 1_000_000_000;
    let fraction = nanos % 1_000_000_000;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Escapes a label value as the text format requires (backslash, double quote, newline).
fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::ITERATION_BUCKETS;

    #[test]
    fn nanos_render_as_exact_decimal_seconds() {
        assert_eq!(nanos_as_seconds(0), "0");
        assert_eq!(nanos_as_seconds(5_000), "0.000005");
        assert_eq!(nanos_as_seconds(2_500_000), "0.0025");
        assert_eq!(nanos_as_seconds(1_000_000_000), "1");
        assert_eq!(nanos_as_seconds(12_000_000_001), "12.000000001");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    /// A known state of two loops and the exact text it must render to.
    #[test]
    fn renders_known_state_exactly() {
        let mut buckets = [0u64; ITERATION_BUCKETS];
        buckets[0] = 3; // <= 5 µs
        buckets[2] = 1; // <= 25 µs
        buckets[ITERATION_BUCKETS - 1] = 1; // > 1 s
        let mut closes = [0u64; CloseKind::COUNT];
        closes[CloseKind::Peer.index()] = 2;
        closes[CloseKind::Backpressure.index()] = 1;
        let busy = LoopSnapshot {
            loop_index: 0,
            accepts: 5,
            closes,
            bytes_read: 1024,
            bytes_written: 1000,
            read_syscalls: 7,
            write_syscalls: 6,
            messages_in: 4,
            messages_out: 3,
            task_queue_depth: 2,
            pauses: 3,
            resumes: 2,
            tls_handshakes: 4,
            tls_resumed: 1,
            iteration_buckets: buckets,
            iteration_sum_ns: 1_000_028_000,
        };
        let idle = LoopSnapshot {
            loop_index: 1,
            ..LoopSnapshot::default()
        };
        let process = ProcessInfo {
            uptime_seconds: 12.3456,
            version: "0.1.0",
        };
        let mut text = String::new();
        render(&[busy, idle], &process, &mut text);

        let mut expected = String::from(
            "\
# HELP gev_connections_open Connections currently open on the loop.
# TYPE gev_connections_open gauge
gev_connections_open{loop=\"0\"} 2
gev_connections_open{loop=\"1\"} 0
# HELP gev_accepts_total Connections accepted and registered on the loop.
# TYPE gev_accepts_total counter
gev_accepts_total{loop=\"0\"} 5
gev_accepts_total{loop=\"1\"} 0
# HELP gev_closes_total Connections closed on the loop, by reason.
# TYPE gev_closes_total counter
gev_closes_total{loop=\"0\",reason=\"peer\"} 2
gev_closes_total{loop=\"0\",reason=\"idle\"} 0
gev_closes_total{loop=\"0\",reason=\"error\"} 0
gev_closes_total{loop=\"0\",reason=\"protocol\"} 0
gev_closes_total{loop=\"0\",reason=\"shutdown\"} 0
gev_closes_total{loop=\"0\",reason=\"backpressure\"} 1
gev_closes_total{loop=\"0\",reason=\"local\"} 0
gev_closes_total{loop=\"0\",reason=\"panic\"} 0
gev_closes_total{loop=\"0\",reason=\"tls\"} 0
gev_closes_total{loop=\"0\",reason=\"handshake_timeout\"} 0
gev_closes_total{loop=\"1\",reason=\"peer\"} 0
gev_closes_total{loop=\"1\",reason=\"idle\"} 0
gev_closes_total{loop=\"1\",reason=\"error\"} 0
gev_closes_total{loop=\"1\",reason=\"protocol\"} 0
gev_closes_total{loop=\"1\",reason=\"shutdown\"} 0
gev_closes_total{loop=\"1\",reason=\"backpressure\"} 0
gev_closes_total{loop=\"1\",reason=\"local\"} 0
gev_closes_total{loop=\"1\",reason=\"panic\"} 0
gev_closes_total{loop=\"1\",reason=\"tls\"} 0
gev_closes_total{loop=\"1\",reason=\"handshake_timeout\"} 0
# HELP gev_bytes_read_total Bytes read from connections' sockets.
# TYPE gev_bytes_read_total counter
gev_bytes_read_total{loop=\"0\"} 1024
gev_bytes_read_total{loop=\"1\"} 0
# HELP gev_bytes_written_total Bytes written to connections' sockets.
# TYPE gev_bytes_written_total counter
gev_bytes_written_total{loop=\"0\"} 1000
gev_bytes_written_total{loop=\"1\"} 0
# HELP gev_messages_in_total Messages unpacked by the protocol and handed to the handler.
# TYPE gev_messages_in_total counter
gev_messages_in_total{loop=\"0\"} 4
gev_messages_in_total{loop=\"1\"} 0
# HELP gev_messages_out_total Replies packed by the protocol into output buffers.
# TYPE gev_messages_out_total counter
gev_messages_out_total{loop=\"0\"} 3
gev_messages_out_total{loop=\"1\"} 0
# HELP gev_read_syscalls_total Read system calls on connections' sockets.
# TYPE gev_read_syscalls_total counter
gev_read_syscalls_total{loop=\"0\"} 7
gev_read_syscalls_total{loop=\"1\"} 0
# HELP gev_write_syscalls_total Write system calls on connections' sockets.
# TYPE gev_write_syscalls_total counter
gev_write_syscalls_total{loop=\"0\"} 6
gev_write_syscalls_total{loop=\"1\"} 0
# HELP gev_loop_iterations_total Event loop iterations (poll returns).
# TYPE gev_loop_iterations_total counter
gev_loop_iterations_total{loop=\"0\"} 5
gev_loop_iterations_total{loop=\"1\"} 0
# HELP gev_task_queue_depth Tasks found in the loop's cross-thread queue at its last drain.
# TYPE gev_task_queue_depth gauge
gev_task_queue_depth{loop=\"0\"} 2
gev_task_queue_depth{loop=\"1\"} 0
# HELP gev_connections_paused Connections not being read because their output is above the high watermark.
# TYPE gev_connections_paused gauge
gev_connections_paused{loop=\"0\"} 1
gev_connections_paused{loop=\"1\"} 0
# HELP gev_backpressure_pauses_total Times a connection was paused by backpressure.
# TYPE gev_backpressure_pauses_total counter
gev_backpressure_pauses_total{loop=\"0\"} 3
gev_backpressure_pauses_total{loop=\"1\"} 0
# HELP gev_tls_handshakes_total TLS handshakes completed on the loop.
# TYPE gev_tls_handshakes_total counter
gev_tls_handshakes_total{loop=\"0\"} 4
gev_tls_handshakes_total{loop=\"1\"} 0
# HELP gev_tls_resumed_handshakes_total TLS handshakes that resumed an earlier session (ticket or session id).
# TYPE gev_tls_resumed_handshakes_total counter
gev_tls_resumed_handshakes_total{loop=\"0\"} 1
gev_tls_resumed_handshakes_total{loop=\"1\"} 0
# HELP gev_loop_iteration_seconds Busy time of one event loop iteration (from poll returning to the next poll).
# TYPE gev_loop_iteration_seconds histogram
",
        );
        let bounds = [
            "0.000005", "0.00001", "0.000025", "0.00005", "0.0001", "0.00025", "0.0005", "0.001",
            "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "1",
        ];
        let loop0_cumulative = [3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4];
        for (bound, count) in bounds.iter().zip(loop0_cumulative) {
            expected.push_str(&format!(
                "gev_loop_iteration_seconds_bucket{{loop=\"0\",le=\"{bound}\"}} {count}\n"
            ));
        }
        expected.push_str(
            "\
gev_loop_iteration_seconds_bucket{loop=\"0\",le=\"+Inf\"} 5
gev_loop_iteration_seconds_sum{loop=\"0\"} 1.000028
gev_loop_iteration_seconds_count{loop=\"0\"} 5
",
        );
        for bound in bounds {
            expected.push_str(&format!(
                "gev_loop_iteration_seconds_bucket{{loop=\"1\",le=\"{bound}\"}} 0\n"
            ));
        }
        expected.push_str(
            "\
gev_loop_iteration_seconds_bucket{loop=\"1\",le=\"+Inf\"} 0
gev_loop_iteration_seconds_sum{loop=\"1\"} 0
gev_loop_iteration_seconds_count{loop=\"1\"} 0
# HELP gev_process_uptime_seconds Seconds since the process started.
# TYPE gev_process_uptime_seconds gauge
gev_process_uptime_seconds 12.346
# HELP gev_build_info Build information of the gev library; the value is always 1.
# TYPE gev_build_info gauge
gev_build_info{version=\"0.1.0\"} 1
",
        );
        for (line, (got, want)) in text.lines().zip(expected.lines()).enumerate() {
            assert_eq!(got, want, "line {}", line + 1);
        }
        assert_eq!(text, expected);
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let mut text = String::new();
        let process = ProcessInfo {
            uptime_seconds: 1.0,
            version: "x",
        };
        render(&[LoopSnapshot::default()], &process, &mut text);
        let mut typed: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or_default();
                typed.push(name.to_string());
            } else if !line.starts_with('#') {
                let sample = line
                    .split(['{', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let family = typed.last().cloned().unwrap_or_default();
                assert!(
                    sample == family
                        || sample == format!("{family}_bucket")
                        || sample == format!("{family}_sum")
                        || sample == format!("{family}_count"),
                    "sample {sample} outside its family {family}"
                );
            }
        }
        let mut unique = typed.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), typed.len(), "a family is declared twice");
    }
}
