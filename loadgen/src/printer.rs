//! The final output: a human summary on stdout, or with `--json` one JSON object (the
//! [`Summary`]) on stdout. Notes and warnings about the run itself go to stderr in human mode
//! only as part of the summary; the JSON carries them in `warnings`.

use std::fmt::Write;

use crate::summary::{Percentiles, Summary};

/// A microsecond value with a readable unit.
pub fn format_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2}s", us / 1_000_000.0)
    } else if us >= 1_000.0 {
        format!("{:.2}ms", us / 1_000.0)
    } else {
        format!("{us:.1}µs")
    }
}

fn format_bytes(bytes_per_sec: f64) -> String {
    if bytes_per_sec >= 1e9 {
        format!("{:.2} GB/s", bytes_per_sec / 1e9)
    } else if bytes_per_sec >= 1e6 {
        format!("{:.2} MB/s", bytes_per_sec / 1e6)
    } else if bytes_per_sec >= 1e3 {
        format!("{:.2} kB/s", bytes_per_sec / 1e3)
    } else {
        format!("{bytes_per_sec:.0} B/s")
    }
}

fn line(out: &mut String, label: &str, p: &Percentiles) {
    if p.count == 0 {
        let _ = writeln!(out, "  {label:<14}(none recorded)");
        return;
    }
    let _ = writeln!(
        out,
        "  {label:<14}p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}",
        format_us(p.p50),
        format_us(p.p90),
        format_us(p.p99),
        format_us(p.p999),
        format_us(p.max),
        format_us(p.mean)
    );
}

/// The human-readable summary.
pub fn human(summary: &Summary) -> String {
    let c = &summary.config;
    let mut out = String::new();
    let mode = match summary.target_rate {
        Some(rate) => format!(
            "open loop at {rate:.0} req/s (max {} outstanding per connection)",
            c.pipeline
        ),
        None => format!("closed loop, pipeline {}", c.pipeline),
    };
    let _ = writeln!(
        out,
        "loadgen {}: {} {}, {} connections, {} thread(s), {mode}, {:.2}s measured",
        summary.env.version, c.framing, c.target, c.connections, c.threads, summary.duration_secs
    );
    let r = &summary.requests;
    let _ = writeln!(
        out,
        "  {:<14}sent {}  completed {}  errors {}",
        "requests",
        r.sent,
        r.completed,
        summary.total_errors()
    );
    let _ = writeln!(
        out,
        "  {:<14}{:.1} req/s  {} received",
        "throughput",
        summary.throughput.rps,
        format_bytes(summary.throughput.bytes_per_sec)
    );
    line(&mut out, "latency", &summary.latency_us);
    if summary.target_rate.is_some() {
        line(&mut out, "uncorrected", &summary.latency_uncorrected_us);
    }
    line(&mut out, "connect", &summary.connect_us);
    line(&mut out, "loop lag", &summary.loop_lag_us);
    let _ = writeln!(
        out,
        "  {:<14}opened {}  failed {}",
        "connections", summary.connections.opened, summary.connections.failed
    );
    let errors: Vec<String> = summary
        .requests
        .errors
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "  {:<14}{}", "errors", errors.join(", "));
    }
    if let Some(d) = &summary.datagrams {
        let _ = writeln!(
            out,
            "  {:<14}sent {}  received {}  lost {}  duplicated {}  reordered {}  late {} (loss deadline {} ms)",
            "datagrams", d.sent, d.received, d.lost, d.duplicated, d.reordered, d.late, d.loss_deadline_ms
        );
    }
    if let Some(tls) = &summary.tls {
        let rate = tls
            .handshakes_per_sec
            .map_or(String::new(), |r| format!("  {r:.1} handshakes/s"));
        let _ = writeln!(
            out,
            "  {:<14}handshakes {} (resumed {}, full {})  failed {}{rate}",
            "tls", tls.handshakes, tls.resumed, tls.full, tls.failed
        );
        line(&mut out, "handshake", &tls.handshake_us);
        let versions: Vec<String> = tls
            .versions
            .iter()
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        let alpn: Vec<String> = tls.alpn.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let _ = writeln!(
            out,
            "  {:<14}{}  alpn {}  verification {}  sni {}",
            "",
            versions.join(", "),
            alpn.join(", "),
            tls.verification,
            tls.server_name
        );
    }
    let cpu: Vec<String> = summary
        .generator_cpu_percent
        .iter()
        .map(|p| format!("{p:.0}%"))
        .collect();
    let _ = writeln!(out, "  {:<14}{}", "generator cpu", cpu.join(" "));
    for warning in &summary.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(format_us(12.34), "12.3µs");
        assert_eq!(format_us(1500.0), "1.50ms");
        assert_eq!(format_us(2_500_000.0), "2.50s");
        assert_eq!(format_bytes(2_000_000.0), "2.00 MB/s");
    }
}
