//! TLS plots (issue 14), as grouped bars per server at one loop count:
//!
//! - **throughput with and without TLS**: for a load measured both plain and over TLS, each
//!   server's median requests per second plain and with TLS (95% interval bars), so the cost of
//!   TLS reads off each server and the servers compare at equal security;
//! - **handshakes per second**: from the handshake-only points, each server's handshakes/s with
//!   session resumption and with full handshakes.
//!
//! A point's TLS mode is the suffix its workload label carries (`, TLS`, `, TLS handshakes
//! (resumed)`; see `PointTls::label`), so these plots need nothing beyond the plain [`Report`].

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, series_color};
use super::{chart, load_label, slugify, DrawFailure, PlotData, PlotJob, PlotKind};
use crate::model::{rates_equal, Estimate, Report};
use crate::results::PointTls;

/// One server's bars: one per variant of the plot (plain / TLS, resumed / full); `None` where
/// the server has no point for that variant.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerBars {
    pub server: String,
    pub bars: Vec<Option<Estimate>>,
}

/// The data of one TLS plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsPlot {
    /// The variants, in bar order within each group (legend labels).
    pub variants: Vec<String>,
    /// What the y axis counts.
    pub y_desc: String,
    /// One group per server, in report order.
    pub servers: Vec<ServerBars>,
}

/// Split a workload label into the plain load and its TLS mode.
pub fn split_tls(workload: &str) -> (&str, PointTls) {
    for mode in [
        PointTls::HandshakesResumed,
        PointTls::HandshakesFull,
        PointTls::On,
    ] {
        if let Some(base) = workload.strip_suffix(&format!(", {}", mode.label())) {
            return (base, mode);
        }
    }
    (workload, PointTls::Off)
}

/// One throughput plot per TLS load × rate × loop count that also has plain points, and one
/// handshake plot per handshake load × rate × loop count.
pub fn plan(report: &Report, servers: &[String]) -> Vec<PlotJob> {
    // (base workload, rate, loops, handshakes?) in order of first appearance.
    let mut groups: Vec<(String, Option<f64>, u32, bool)> = Vec::new();
    for point in &report.points {
        let (base, mode) = split_tls(&point.key.workload);
        if mode.is_off() {
            continue;
        }
        let group = (
            base.to_string(),
            point.key.offered_rate,
            point.key.loops,
            mode.is_handshakes(),
        );
        if !groups.iter().any(|g| {
            g.0 == group.0 && rates_equal(g.1, group.1) && g.2 == group.2 && g.3 == group.3
        }) {
            groups.push(group);
        }
    }
    groups
        .into_iter()
        .filter_map(|(base, rate, loops, handshakes)| {
            let variants = if handshakes {
                [PointTls::HandshakesResumed, PointTls::HandshakesFull]
            } else {
                [PointTls::Off, PointTls::On]
            };
            let bars: Vec<ServerBars> = servers
                .iter()
                .map(|server| ServerBars {
                    server: server.clone(),
                    bars: variants
                        .iter()
                        .map(|mode| {
                            report
                                .points
                                .iter()
                                .find(|p| {
                                    &p.key.server == server
                                        && p.key.loops == loops
                                        && rates_equal(p.key.offered_rate, rate)
                                        && split_tls(&p.key.workload) == (base.as_str(), *mode)
                                })
                                .map(|p| p.throughput)
                        })
                        .collect(),
                })
                .filter(|s| s.bars.iter().any(Option::is_some))
                .collect();
            // A TLS load measured by no server plain is already in the throughput plots. (The
            // plain and TLS bars may come from different servers: tokio plain, tokio-rustls.)
            let complete = bars.iter().any(|s| s.bars[0].is_some())
                && bars.iter().any(|s| s.bars[1].is_some());
            if !handshakes && !complete {
                return None;
            }
            let loops_text = format!("{loops} loop{}", if loops == 1 { "" } else { "s" });
            let (what, y_desc, names) = if handshakes {
                (
                    "TLS handshakes per second",
                    "handshakes per second (median, 95% interval)",
                    ["resumed", "full"],
                )
            } else {
                (
                    "Throughput with and without TLS",
                    "requests per second (median, 95% interval)",
                    ["plain TCP", "TLS"],
                )
            };
            let slug = if handshakes {
                "handshakes"
            } else {
                "throughput"
            };
            let stem = format!(
                "{}-{slug}-{}-l{loops}{}",
                PlotKind::Tls.slug(),
                slugify(&base),
                chart::rate_suffix(rate)
            );
            Some(PlotJob {
                kind: PlotKind::Tls,
                stem,
                title: format!("{what} · {} · {loops_text}", load_label(&base, rate)),
                data: PlotData::Tls(TlsPlot {
                    variants: names.iter().map(|n| n.to_string()).collect(),
                    y_desc: y_desc.to_string(),
                    servers: bars,
                }),
            })
        })
        .collect()
}

impl TlsPlot {
    /// Paint grouped bars (or a note saying there are no points).
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawFailure> {
        if self.servers.is_empty() {
            return style::draw_missing(root, title, &["No TLS figures for this load.".into()]);
        }
        let estimates = || self.servers.iter().flat_map(|s| s.bars.iter().flatten());
        let headroom = style::legend_headroom(self.variants.len(), style::PLOTTING_HEIGHT);
        let y_range = style::with_headroom(
            style::linear_range_from_zero(estimates().flat_map(|e| [e.median, e.high])),
            headroom,
        );
        let names: Vec<String> = self.servers.iter().map(|s| s.server.clone()).collect();
        let mut chart = chart::grouped_bar_chart(
            root,
            Some(title),
            &names,
            y_range,
            "server",
            &self.y_desc,
            style::format_rate,
        )?;
        let count = self.variants.len();
        for (variant, name) in self.variants.iter().enumerate() {
            let bars: Vec<(usize, Estimate)> = self
                .servers
                .iter()
                .enumerate()
                .filter_map(|(group, s)| s.bars.get(variant).copied().flatten().map(|e| (group, e)))
                .collect();
            chart::draw_bars(
                &mut chart,
                &bars,
                variant,
                count,
                series_color(variant),
                Some(name.clone()),
                10,
            )?;
        }
        chart::draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PointSummary;

    fn point(server: &str, workload: &str, rps: f64) -> PointSummary {
        super::super::test_points::point(server, 1, workload, rps)
    }

    #[test]
    fn labels_split_into_load_and_mode() {
        for (label, split) in [
            ("raw 64 B, 8 conns", ("raw 64 B, 8 conns", PointTls::Off)),
            (
                "raw 64 B, 8 conns, TLS",
                ("raw 64 B, 8 conns", PointTls::On),
            ),
            (
                "raw 0 B, 8 conns, TLS handshakes (full)",
                ("raw 0 B, 8 conns", PointTls::HandshakesFull),
            ),
        ] {
            assert_eq!(split_tls(label), split, "{label}");
        }
    }

    #[test]
    fn plans_throughput_pairs_and_handshake_bars() {
        let report = Report {
            points: vec![
                point("gev-echo", "raw 64 B, 8 conns", 100.0),
                point("gev-echo", "raw 64 B, 8 conns, TLS", 80.0),
                point("ref-tokio-echo", "raw 64 B, 8 conns", 90.0),
                point("ref-tokio-tls-echo", "raw 64 B, 8 conns, TLS", 60.0),
                point(
                    "ref-tokio-tls-echo",
                    "raw 0 B, 8 conns, TLS handshakes (resumed)",
                    900.0,
                ),
                point(
                    "ref-tokio-tls-echo",
                    "raw 0 B, 8 conns, TLS handshakes (full)",
                    500.0,
                ),
                // A TLS load with no plain twin gets no with/without plot.
                point("gev-echo", "raw 512 B, 8 conns, TLS", 70.0),
            ],
            ..Report::default()
        };
        let jobs = plan(&report, &report.server_order());
        assert_eq!(
            jobs.len(),
            2,
            "{:?}",
            jobs.iter().map(|j| &j.stem).collect::<Vec<_>>()
        );
        assert_eq!(jobs[0].stem, "tls-throughput-raw-64-b-8-conns-l1");
        let PlotData::Tls(plot) = &jobs[0].data else {
            panic!("wrong plot data")
        };
        assert_eq!(plot.variants, ["plain TCP", "TLS"]);
        assert_eq!(plot.servers.len(), 3);
        assert_eq!(plot.servers[0].bars[1].map(|e| e.median), Some(80.0));
        assert_eq!(plot.servers[2].bars[0], None);
        let PlotData::Tls(handshakes) = &jobs[1].data else {
            panic!("wrong plot data")
        };
        assert!(jobs[1].title.starts_with("TLS handshakes per second"));
        assert_eq!(handshakes.servers.len(), 1);
        assert_eq!(handshakes.servers[0].bars[0].map(|e| e.median), Some(900.0));
    }
}
