//! The summary table: one row per point (load × loop count × server) with median throughput, its
//! 95% interval, latency percentiles, and each figure as a ratio to the reference servers
//! (`ref-tokio-echo`, `ref-mio-echo`) measured at the same load and loop count in the same run.
//!
//! Ratios are the figures that survive a noisy machine: both sides of a ratio saw the same
//! disturbances. The table is built once here as text cells and written by both `markdown` and
//! `html`, so the two pages never disagree.

use crate::model::{PointKey, PointSummary, Report};
use crate::plot::style::{format_micros, format_rate};

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Which point.
    pub key: PointKey,
    /// `server req/s ÷ reference req/s`, per reference in [`SummaryTable::references`] order;
    /// `None` when the reference has no figure (or a zero one) at this point.
    pub throughput_ratio: Vec<Option<Ratio>>,
    /// `server p99 ÷ reference p99`, same order; below 1 is better.
    pub p99_ratio: Vec<Option<Ratio>>,
    /// `server CPU per request ÷ reference's`, same order; below 1 is better. Empty when the
    /// report has no cost figures.
    pub server_cpu_ratio: Vec<Option<Ratio>>,
    /// The cells as displayed, in [`SummaryTable::headers`] order.
    pub cells: Vec<String>,
}

/// A ratio to a reference, with the harness's bootstrap interval when it computed one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    /// The ratio of medians.
    pub value: f64,
    /// Its confidence interval (`low`, `high`), if known.
    pub interval: Option<(f64, f64)>,
}

impl Ratio {
    /// A ratio without an interval.
    pub fn plain(value: f64) -> Ratio {
        Ratio {
            value,
            interval: None,
        }
    }
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SummaryTable {
    /// Reference servers present in the report.
    pub references: Vec<String>,
    /// Column headings.
    pub headers: Vec<String>,
    /// Rows, ordered by load, loop count, then server order.
    pub rows: Vec<SummaryRow>,
}

impl SummaryTable {
    /// Build the table from a report.
    pub fn from_report(report: &Report) -> SummaryTable {
        let references = report.references_present();
        let open_loop = report.points.iter().any(|p| p.key.offered_rate.is_some());
        let mut headers: Vec<String> = vec!["workload".into()];
        if open_loop {
            headers.push("offered req/s".into());
        }
        headers.extend(
            [
                "loops",
                "server",
                "req/s",
                "95% interval",
                "p50",
                "p99",
                "p99.9",
            ]
            .map(String::from),
        );
        let costs = !report.costs.is_empty();
        if costs {
            headers.push("server µs CPU/req (95%)".into());
            headers.push("generator µs CPU/req (95%)".into());
        }
        for reference in &references {
            headers.push(format!("req/s ÷ {reference}"));
            headers.push(format!("p99 ÷ {reference}"));
            if costs {
                headers.push(format!("server CPU/req ÷ {reference}"));
            }
        }
        // Sweeps over several transports (issue 15): each server against itself over TCP, and
        // the UDP points' datagram counters.
        let transport_ratios = !report.transport_ratios.is_empty();
        if transport_ratios {
            headers.push("req/s ÷ same server over TCP".into());
            headers.push("server CPU/req ÷ same server over TCP".into());
        }
        let datagrams = !report.datagrams.is_empty();
        if datagrams {
            headers.push(DATAGRAMS_HEADER.into());
        }
        let server_udp = report.datagrams.iter().any(|d| d.server.is_some());
        if server_udp {
            headers.push(SERVER_UDP_HEADER.into());
        }

        let servers = report.server_order();
        let groups = crate::plot::load_groups(report);
        let mut points: Vec<&PointSummary> = report.points.iter().collect();
        points.sort_by_key(|p| {
            let group = groups
                .iter()
                .position(|(w, r)| {
                    *w == p.key.workload && crate::model::rates_equal(*r, p.key.offered_rate)
                })
                .unwrap_or(usize::MAX);
            let server = servers
                .iter()
                .position(|s| *s == p.key.server)
                .unwrap_or(usize::MAX);
            (group, p.key.loops, server)
        });

        let rows = points
            .into_iter()
            .map(|point| {
                let reference_points: Vec<Option<&PointSummary>> = references
                    .iter()
                    .map(|name| {
                        report
                            .points
                            .iter()
                            .find(|r| &r.key.server == name && r.key.same_load(&point.key))
                    })
                    .collect();
                let throughput_ratio: Vec<Option<Ratio>> = references
                    .iter()
                    .zip(&reference_points)
                    .map(|(name, r)| {
                        let from_harness = point
                            .throughput_ratios
                            .iter()
                            .find(|(reference, _)| reference == name)
                            .filter(|(_, e)| e.median.is_finite())
                            .map(|(_, e)| Ratio {
                                value: e.median,
                                interval: (e.low.is_finite() && e.high.is_finite())
                                    .then_some((e.low, e.high)),
                            });
                        from_harness.or_else(|| {
                            r.and_then(|r| ratio(point.throughput.median, r.throughput.median))
                                .map(Ratio::plain)
                        })
                    })
                    .collect();
                let p99_ratio: Vec<Option<Ratio>> = reference_points
                    .iter()
                    .map(|r| {
                        r.and_then(|r| ratio(point.latency_us.p99, r.latency_us.p99))
                            .map(Ratio::plain)
                    })
                    .collect();
                let cost = report.cost_of(&point.key);
                let server_cpu_ratio: Vec<Option<Ratio>> = if costs {
                    references
                        .iter()
                        .map(|name| {
                            cost.and_then(|c| c.server_cpu_ratios.iter().find(|(r, _)| r == name))
                                .filter(|(_, e)| e.median.is_finite())
                                .map(|(_, e)| Ratio {
                                    value: e.median,
                                    interval: (e.low.is_finite() && e.high.is_finite())
                                        .then_some((e.low, e.high)),
                                })
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let mut cells = vec![point.key.workload.clone()];
                if open_loop {
                    cells.push(
                        point
                            .key
                            .offered_rate
                            .map_or("closed loop".into(), format_rate),
                    );
                }
                cells.push(point.key.loops.to_string());
                cells.push(report.name_at(&point.key.server, &point.key.workload));
                cells.push(format_rate(point.throughput.median));
                cells.push(format!(
                    "{} – {}",
                    format_rate(point.throughput.low),
                    format_rate(point.throughput.high)
                ));
                cells.push(format_micros(point.latency_us.p50));
                cells.push(format_micros(point.latency_us.p99));
                cells.push(format_micros(point.latency_us.p999));
                if costs {
                    cells.push(format_cost(cost.and_then(|c| c.server_cpu_us)));
                    cells.push(format_cost(cost.and_then(|c| c.generator_cpu_us)));
                }
                for (index, (thr, p99)) in throughput_ratio.iter().zip(&p99_ratio).enumerate() {
                    cells.push(format_ratio(*thr));
                    cells.push(format_ratio(*p99));
                    if costs {
                        cells.push(format_ratio(server_cpu_ratio.get(index).copied().flatten()));
                    }
                }
                if transport_ratios {
                    let vs_tcp = report.transport_ratio_of(&point.key);
                    cells.push(format_ratio(vs_tcp.map(|r| with_interval(r.throughput))));
                    cells.push(format_ratio(
                        vs_tcp.and_then(|r| r.server_cpu).map(with_interval),
                    ));
                }
                if datagrams {
                    cells.push(format_datagrams(
                        report.datagrams_of(&point.key).map(|d| &d.counts),
                    ));
                }
                if server_udp {
                    cells.push(format_server_udp(
                        report
                            .datagrams_of(&point.key)
                            .and_then(|d| d.server.as_ref()),
                    ));
                }
                SummaryRow {
                    key: point.key.clone(),
                    throughput_ratio,
                    p99_ratio,
                    server_cpu_ratio,
                    cells,
                }
            })
            .collect();
        SummaryTable {
            references,
            headers,
            rows,
        }
    }
}

/// The heading of the datagram counters' column.
pub const DATAGRAMS_HEADER: &str = "datagrams lost (%) / dup / reord / late";

/// A datagram cell: `12 (0.01%) / 0 / 3 / 0`, or `–` for a stream point.
pub fn format_datagrams(counts: Option<&crate::results::DatagramCounts>) -> String {
    match counts {
        Some(c) => format!(
            "{} ({:.2}%) / {} / {} / {}",
            c.lost,
            100.0 * c.loss_fraction(),
            c.duplicated,
            c.reordered,
            c.late
        ),
        None => "–".to_string(),
    }
}

/// The heading of the server's own UDP counters' column (gev's `gev_udp_*` metrics).
pub const SERVER_UDP_HEADER: &str = "server datagrams per recv / send syscall · dropped";

/// A server UDP cell: `31.5 / 12.0 · 0`, or `–` where the server was not scraped.
pub fn format_server_udp(counters: Option<&crate::results::ServerUdpCounters>) -> String {
    let per_call =
        |value: Option<f64>| value.map_or_else(|| "–".to_string(), |v| format!("{v:.1}"));
    match counters {
        Some(c) => format!(
            "{} / {} · {}",
            per_call(c.datagrams_per_recv_call),
            per_call(c.datagrams_per_send_call),
            c.dropped()
        ),
        None => "–".to_string(),
    }
}

/// An estimate as a ratio cell's value, with its interval when finite.
fn with_interval(e: crate::model::Estimate) -> Ratio {
    Ratio {
        value: e.median,
        interval: (e.low.is_finite() && e.high.is_finite()).then_some((e.low, e.high)),
    }
}

/// `value ÷ reference`, when both are finite and the reference is positive.
fn ratio(value: f64, reference: f64) -> Option<f64> {
    (value.is_finite() && reference.is_finite() && reference > 0.0).then(|| value / reference)
}

/// A cost cell: `5.12 (5.01–5.30)` microseconds, or `–`.
pub fn format_cost(cost: Option<crate::model::Estimate>) -> String {
    match cost {
        Some(e) if e.median.is_finite() => {
            format!("{:.2} ({:.2}–{:.2})", e.median, e.low, e.high)
        }
        _ => "–".to_string(),
    }
}

/// A ratio cell: `1.23×`, `1.23× (1.10–1.35)` with an interval, or `–` when there is nothing
/// to compare with.
pub fn format_ratio(ratio: Option<Ratio>) -> String {
    match ratio {
        Some(Ratio {
            value,
            interval: Some((low, high)),
        }) => format!("{value:.2}× ({low:.2}–{high:.2})"),
        Some(Ratio {
            value,
            interval: None,
        }) => format!("{value:.2}×"),
        None => "–".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Estimate, LatencyHistogram, LatencySummary};

    fn point(server: &str, loops: u32, rps: f64, p99: f64) -> PointSummary {
        PointSummary {
            key: PointKey {
                server: server.into(),
                loops,
                workload: "w".into(),
                offered_rate: None,
            },
            throughput: Estimate {
                median: rps,
                low: rps - 1.0,
                high: rps + 1.0,
            },
            latency_us: LatencySummary {
                p50: 1.0,
                p99,
                p999: 3.0,
            },
            histogram: LatencyHistogram::Missing,
            throughput_ratios: Vec::new(),
        }
    }

    #[test]
    fn ratios_compare_same_loop_count_only() {
        let report = Report {
            servers: vec!["gev".into(), "ref-tokio-echo".into()],
            points: vec![
                point("ref-tokio-echo", 1, 100.0, 20.0),
                point("gev", 1, 150.0, 10.0),
                point("gev", 2, 300.0, 10.0),
            ],
            ..Report::default()
        };
        let table = SummaryTable::from_report(&report);
        assert_eq!(table.references, ["ref-tokio-echo"]);
        assert_eq!(table.headers.len(), 10);
        let order: Vec<(&str, u32)> = table
            .rows
            .iter()
            .map(|r| (r.key.server.as_str(), r.key.loops))
            .collect();
        assert_eq!(order, [("gev", 1), ("ref-tokio-echo", 1), ("gev", 2)]);
        assert_eq!(table.rows[0].throughput_ratio, [Some(Ratio::plain(1.5))]);
        assert_eq!(table.rows[0].p99_ratio, [Some(Ratio::plain(0.5))]);
        assert_eq!(table.rows[0].cells[8], "1.50×");
        assert_eq!(table.rows[2].throughput_ratio, [None]);
        assert_eq!(table.rows[2].cells[8], "–");
    }

    #[test]
    fn harness_ratio_with_interval_wins() {
        let mut gev = point("gev", 1, 150.0, 10.0);
        gev.throughput_ratios = vec![(
            "ref-mio-echo".into(),
            Estimate {
                median: 1.4,
                low: 1.3,
                high: 1.6,
            },
        )];
        let report = Report {
            points: vec![point("ref-mio-echo", 1, 100.0, 20.0), gev],
            ..Report::default()
        };
        let table = SummaryTable::from_report(&report);
        let row = table.rows.iter().find(|r| r.key.server == "gev").unwrap();
        assert_eq!(row.cells[8], "1.40× (1.30–1.60)");
        assert_eq!(row.cells[9], "0.50×");
    }

    #[test]
    fn zero_reference_gives_no_ratio() {
        let report = Report {
            points: vec![
                point("ref-mio-echo", 1, 0.0, 0.0),
                point("gev", 1, 10.0, 5.0),
            ],
            ..Report::default()
        };
        let table = SummaryTable::from_report(&report);
        assert!(table.rows.iter().all(|r| r.throughput_ratio == [None]));
    }

    #[test]
    fn open_loop_adds_offered_column() {
        let mut p = point("gev", 1, 10.0, 5.0);
        p.key.offered_rate = Some(5000.0);
        let report = Report {
            points: vec![p, point("gev", 1, 10.0, 5.0)],
            ..Report::default()
        };
        let table = SummaryTable::from_report(&report);
        assert_eq!(table.headers[1], "offered req/s");
        assert_eq!(table.rows[0].cells[1], "closed loop");
        assert_eq!(table.rows[1].cells[1], "5.0k");
    }

    #[test]
    fn transport_columns_appear_with_transport_figures() {
        use crate::model::{PointDatagrams, PointTransportRatio};
        use crate::results::DatagramCounts;
        let mut udp = point("gev", 1, 90.0, 10.0);
        udp.key.workload = "w, UDP".into();
        let report = Report {
            points: vec![point("gev", 1, 100.0, 10.0), udp.clone()],
            datagrams: vec![PointDatagrams {
                key: udp.key.clone(),
                counts: DatagramCounts {
                    sent: 1000,
                    received: 990,
                    lost: 10,
                    duplicated: 1,
                    reordered: 2,
                    late: 3,
                },
                server: None,
            }],
            transport_ratios: vec![PointTransportRatio {
                key: udp.key.clone(),
                throughput: Estimate {
                    median: 0.9,
                    low: 0.8,
                    high: 1.0,
                },
                server_cpu: None,
            }],
            ..Report::default()
        };
        let table = SummaryTable::from_report(&report);
        assert_eq!(table.headers.last().unwrap(), DATAGRAMS_HEADER);
        let udp_row = table
            .rows
            .iter()
            .find(|r| r.key.workload == "w, UDP")
            .unwrap();
        assert_eq!(udp_row.cells.len(), table.headers.len());
        let n = udp_row.cells.len();
        assert_eq!(udp_row.cells[n - 1], "10 (1.00%) / 1 / 2 / 3");
        assert_eq!(udp_row.cells[n - 3], "0.90× (0.80–1.00)");
        assert_eq!(udp_row.cells[n - 2], "–");
        let tcp_row = table.rows.iter().find(|r| r.key.workload == "w").unwrap();
        assert_eq!(tcp_row.cells[n - 1], "–");

        // The server's own counters, where it was scraped, add a column after loadgen's.
        let mut scraped = report.clone();
        let after = "gev_udp_datagrams_received_total{loop=\"0\"} 990\n\
            gev_udp_datagrams_sent_total{loop=\"0\"} 985\n\
            gev_udp_dropped_output_full_total{loop=\"0\"} 5\n\
            gev_udp_recv_batches_total{loop=\"0\"} 100\n\
            gev_udp_send_batches_total{loop=\"0\"} 197\n";
        scraped.datagrams[0].server = crate::results::ServerUdpCounters::from_scrapes(None, after);
        let table = SummaryTable::from_report(&scraped);
        assert_eq!(table.headers.last().unwrap(), SERVER_UDP_HEADER);
        let find = |workload: &str| table.rows.iter().find(|r| r.key.workload == workload);
        let udp_cells = &find("w, UDP").unwrap().cells;
        assert_eq!(udp_cells.last().unwrap(), "9.9 / 5.0 · 5");
        assert_eq!(udp_cells[udp_cells.len() - 2], "10 (1.00%) / 1 / 2 / 3");
        assert_eq!(find("w").unwrap().cells.last().unwrap(), "–");
    }

    #[test]
    fn cost_columns_appear_with_cost_figures() {
        use crate::model::PointCost;
        let gev = point("gev", 1, 150.0, 10.0);
        let key = gev.key.clone();
        let report = Report {
            points: vec![point("ref-mio-echo", 1, 100.0, 20.0), gev],
            costs: vec![PointCost {
                key,
                server_cpu_us: Some(Estimate {
                    median: 5.0,
                    low: 4.9,
                    high: 5.2,
                }),
                generator_cpu_us: Some(Estimate {
                    median: 9.0,
                    low: 8.8,
                    high: 9.1,
                }),
                server_cpu_ratios: vec![(
                    "ref-mio-echo".into(),
                    Estimate {
                        median: 0.96,
                        low: 0.94,
                        high: 0.98,
                    },
                )],
            }],
            ..Report::default()
        };
        let table = SummaryTable::from_report(&report);
        assert!(table
            .headers
            .contains(&"server CPU/req ÷ ref-mio-echo".to_string()));
        let row = table.rows.iter().find(|r| r.key.server == "gev").unwrap();
        assert!(
            row.cells.contains(&"5.00 (4.90–5.20)".to_string()),
            "{row:?}"
        );
        assert!(
            row.cells.contains(&"0.96× (0.94–0.98)".to_string()),
            "{row:?}"
        );
        assert_eq!(row.cells.len(), table.headers.len());
        // Without cost figures the columns are not there.
        let plain = SummaryTable::from_report(&Report {
            points: report.points.clone(),
            ..Report::default()
        });
        assert!(!plain.headers.iter().any(|h| h.contains("CPU")));
    }
}
