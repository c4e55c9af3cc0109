//! The sweep's output directory: `results.json` (the typed [`Results`]), `results.csv` (one row
//! per server × point summary) and `env.txt`; the plots and pages are added by `gev_reports`.
//!
//! Where it sits: results -> **files** -> `gev_reports::render` (plots, report.md, index.html).
//! `harness report DIR` re-renders from `results.json` alone.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use gev_reports::results::{Interval, Limit, Results};

/// The results file in an output directory.
pub const RESULTS_JSON: &str = "results.json";
/// The summary table in an output directory.
pub const RESULTS_CSV: &str = "results.csv";
/// The environment in an output directory.
pub const ENV_TXT: &str = "env.txt";

/// A fresh directory `<root>/<UTC timestamp>` (with a suffix if that already exists).
pub fn create_run_dir(root: &Path, now: SystemTime) -> std::io::Result<PathBuf> {
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(':', "");
    std::fs::create_dir_all(root)?;
    for attempt in 0..100u32 {
        let name = if attempt == 0 {
            stamp.clone()
        } else {
            format!("{stamp}-{attempt}")
        };
        let dir = root.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(std::io::Error::other(format!(
        "{}: too many output directories named {stamp}",
        root.display()
    )))
}

/// Writes results.json, results.csv and env.txt into `dir`.
pub fn write_all(dir: &Path, results: &Results, env_txt: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(RESULTS_JSON), results.to_json())?;
    std::fs::write(dir.join(RESULTS_CSV), csv(results))?;
    std::fs::write(dir.join(ENV_TXT), env_txt)?;
    Ok(())
}

/// Reads `dir/results.json`.
pub fn read_results(dir: &Path) -> anyhow::Result<Results> {
    use anyhow::Context;
    let path = dir.join(RESULTS_JSON);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Results::from_json(&text).with_context(|| format!("{} is not usable", path.display()))
}

/// One header row, then one row per summary. Ratio columns are named after each reference:
/// `ratio_to_<ref>*` is throughput, `server_cpu_ratio_to_<ref>*` server CPU per request (lower
/// is better). Cost columns are microseconds of CPU time per completed request; `limit` is
/// `server`, `generator`, `both` or `neither`, from the two utilisations (fractions of the
/// cores each side could use). Then (issue 15) `transport` (`tcp`, `unix`, `udp`), the UDP
/// points' datagram counters summed over the runs, the ratios to the same server at the same
/// load over TCP (`*_vs_tcp*`), and a scraped gev UDP server's own counters (`server_*`: its
/// datagrams, drops, syscalls and datagrams per syscall). Empty cells where a figure was not
/// measured.
pub fn csv(results: &Results) -> String {
    let references = results.references();
    let mut out = String::from(
        "server,loops,framing,connections,payload_size,pipeline,rate,runs,\
         throughput_rps_median,throughput_rps_low,throughput_rps_high,\
         p50_us,p90_us,p99_us,p999_us,max_us,errors",
    );
    for reference in &references {
        let _ = write!(
            out,
            ",ratio_to_{reference},ratio_to_{reference}_low,ratio_to_{reference}_high"
        );
    }
    out.push_str(
        ",server_cpu_us_per_request_median,server_cpu_us_per_request_low,\
         server_cpu_us_per_request_high,generator_cpu_us_per_request_median,\
         generator_cpu_us_per_request_low,generator_cpu_us_per_request_high,\
         limit,server_utilisation,generator_utilisation",
    );
    for reference in &references {
        let _ = write!(
            out,
            ",server_cpu_ratio_to_{reference},server_cpu_ratio_to_{reference}_low,\
             server_cpu_ratio_to_{reference}_high"
        );
    }
    out.push_str(
        ",transport,datagrams_sent,datagrams_received,datagrams_lost,datagrams_duplicated,\
         datagrams_reordered,datagrams_late,throughput_vs_tcp,throughput_vs_tcp_low,\
         throughput_vs_tcp_high,server_cpu_vs_tcp,server_cpu_vs_tcp_low,server_cpu_vs_tcp_high,\
         server_datagrams_received,server_datagrams_sent,server_datagrams_dropped,\
         server_recv_batches,server_send_batches,server_datagrams_per_recv_call,\
         server_datagrams_per_send_call",
    );
    out.push('\n');
    for summary in &results.summaries {
        let point = &summary.point;
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            field(&summary.server),
            point.loops,
            field(&point.framing),
            point.connections,
            point.payload_size,
            point.pipeline,
            point.rate.map_or(String::new(), |rate| rate.to_string()),
            summary.runs,
            summary.throughput_rps.median,
            summary.throughput_rps.low,
            summary.throughput_rps.high,
            summary.latency_us.p50,
            summary.latency_us.p90,
            summary.latency_us.p99,
            summary.latency_us.p999,
            summary.latency_us.max,
            summary.errors,
        );
        for reference in &references {
            match summary.ratios.iter().find(|r| r.reference == *reference) {
                Some(ratio) => {
                    let _ = write!(
                        out,
                        ",{},{},{}",
                        ratio.throughput.median, ratio.throughput.low, ratio.throughput.high
                    );
                }
                None => out.push_str(",,,"),
            }
        }
        for cost in [
            summary.server_cpu_us_per_request,
            summary.generator_cpu_us_per_request,
        ] {
            out.push_str(&interval_cells(cost.as_ref()));
        }
        match &summary.limit {
            Some(limit) => {
                let _ = write!(
                    out,
                    ",{},{},{}",
                    limit_name(limit.limit),
                    limit.server_utilisation,
                    limit.generator_utilisation
                );
            }
            None => out.push_str(",,,"),
        }
        for reference in &references {
            let ratio = summary
                .ratios
                .iter()
                .find(|r| r.reference == *reference)
                .and_then(|r| r.server_cpu_per_request.as_ref());
            out.push_str(&interval_cells(ratio));
        }
        let _ = write!(out, ",{}", summary.point.transport);
        match &summary.datagrams {
            Some(d) => {
                let _ = write!(
                    out,
                    ",{},{},{},{},{},{}",
                    d.sent, d.received, d.lost, d.duplicated, d.reordered, d.late
                );
            }
            None => out.push_str(",,,,,,"),
        }
        let vs_tcp = summary.vs_tcp.as_ref();
        out.push_str(&interval_cells(vs_tcp.map(|r| &r.throughput)));
        out.push_str(&interval_cells(
            vs_tcp.and_then(|r| r.server_cpu_per_request.as_ref()),
        ));
        match &summary.server_udp {
            Some(c) => {
                let per_call = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
                let _ = write!(
                    out,
                    ",{},{},{},{},{},{},{}",
                    c.datagrams_received,
                    c.datagrams_sent,
                    c.dropped(),
                    c.recv_batches,
                    c.send_batches,
                    per_call(c.datagrams_per_recv_call),
                    per_call(c.datagrams_per_send_call)
                );
            }
            None => out.push_str(",,,,,,,"),
        }
        out.push('\n');
    }
    out
}

/// `,median,low,high` or `,,,`.
fn interval_cells(interval: Option<&Interval>) -> String {
    interval.map_or(",,,".to_string(), |i| {
        format!(",{},{},{}", i.median, i.low, i.high)
    })
}

fn limit_name(limit: Limit) -> &'static str {
    match limit {
        Limit::Server => "server",
        Limit::Generator => "generator",
        Limit::Both => "both",
        Limit::Neither => "neither",
    }
}

/// A CSV field, quoted when it holds a comma, quote or newline.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A table cell `1.23 (1.01–1.45)`, or `—` where the figure was not measured.
fn interval_text(interval: Option<Interval>) -> String {
    interval.map_or("—".to_string(), |i| {
        format!("{:.2} ({:.2}–{:.2})", i.median, i.low, i.high)
    })
}

/// The summary table printed at the end of a sweep.
pub fn table(results: &Results) -> String {
    let references = results.references();
    // Named as what ran: a transport's variant beside the server's name.
    let name = |summary: &gev_reports::results::PointSummary| {
        gev_reports::from_results::name_at(results, &summary.server, summary.point.transport)
    };
    let server_width = results
        .summaries
        .iter()
        .map(|s| name(s).chars().count())
        .chain(std::iter::once(6))
        .max()
        .unwrap_or(6);
    // A sweep over several transports names TCP too.
    let name_tcp = gev_reports::from_results::several_transports(results);
    let load = |point: &gev_reports::results::PointParams| {
        if name_tcp && point.transport.is_tcp() {
            format!("{}, {}", point.load_label(), point.transport.label())
        } else {
            point.load_label()
        }
    };
    let load_width = results
        .summaries
        .iter()
        .map(|s| load(&s.point).chars().count())
        .chain(std::iter::once(4))
        .max()
        .unwrap_or(4);
    let mut out = format!(
        "{:<server_width$} {:>5} {:<load_width$} {:>12} {:>21} {:>9} {:>9} {:>20} {:>20}",
        "server",
        "loops",
        "load",
        "req/s",
        "95% interval",
        "p50 µs",
        "p99 µs",
        "server µs CPU/req",
        "generator µs CPU/req"
    );
    for reference in &references {
        let _ = write!(out, " {:>22}", format!("req/s vs {reference}"));
        let _ = write!(out, " {:>22}", format!("CPU/req vs {reference}"));
    }
    // Sweeps over several transports: each server against itself over TCP, and UDP's datagram
    // counters.
    let vs_tcp = results.summaries.iter().any(|s| s.vs_tcp.is_some());
    let datagrams = results.summaries.iter().any(|s| s.datagrams.is_some());
    if vs_tcp {
        let _ = write!(
            out,
            " {:>22} {:>22}",
            "req/s vs own TCP", "CPU/req vs own TCP"
        );
    }
    if datagrams {
        let _ = write!(out, "  {}", gev_reports::table::DATAGRAMS_HEADER);
    }
    let server_udp = results.summaries.iter().any(|s| s.server_udp.is_some());
    if server_udp {
        let _ = write!(out, "  {}", gev_reports::table::SERVER_UDP_HEADER);
    }
    out.push('\n');
    for summary in &results.summaries {
        let t = &summary.throughput_rps;
        let _ = write!(
            out,
            "{:<server_width$} {:>5} {:<load_width$} {:>12.0} {:>21} {:>9.1} {:>9.1}",
            name(summary),
            summary.point.loops,
            load(&summary.point),
            t.median,
            format!("{:.0}–{:.0}", t.low, t.high),
            summary.latency_us.p50,
            summary.latency_us.p99,
        );
        for cost in [
            summary.server_cpu_us_per_request,
            summary.generator_cpu_us_per_request,
        ] {
            let _ = write!(out, " {:>20}", interval_text(cost));
        }
        for reference in &references {
            let ratio = summary.ratios.iter().find(|r| r.reference == *reference);
            let _ = write!(out, " {:>22}", interval_text(ratio.map(|r| r.throughput)));
            let cpu = ratio.and_then(|r| r.server_cpu_per_request);
            let _ = write!(out, " {:>22}", interval_text(cpu));
        }
        if vs_tcp {
            let ratio = summary.vs_tcp.as_ref();
            let _ = write!(out, " {:>22}", interval_text(ratio.map(|r| r.throughput)));
            let cpu = ratio.and_then(|r| r.server_cpu_per_request);
            let _ = write!(out, " {:>22}", interval_text(cpu));
        }
        if datagrams {
            let _ = write!(
                out,
                "  {}",
                gev_reports::table::format_datagrams(summary.datagrams.as_ref())
            );
        }
        if server_udp {
            let cell = gev_reports::table::format_server_udp(summary.server_udp.as_ref());
            let _ = write!(out, "  {cell}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field("gev-echo"), "gev-echo");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"x\""), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn run_dirs_are_unique() {
        let root = tempfile::tempdir().unwrap();
        let now = SystemTime::UNIX_EPOCH;
        let first = create_run_dir(root.path(), now).unwrap();
        let second = create_run_dir(root.path(), now).unwrap();
        assert_ne!(first, second);
        assert!(first.ends_with("1970-01-01T000000Z"));
    }
}
