//! Transports compared (issue 15): for one server and one load measured over more than one
//! transport, grouped bars per loop count, one bar per transport (TCP, Unix socket, UDP), of
//! throughput (left panel) and server CPU per request (right panel), with 95% interval bars.
//! Each Unix-socket and UDP bar carries its ratio to the TCP bar beside it.
//!
//! This is the plot that shows the kernel's TCP share: over loopback, most of a small echo's
//! cost is the TCP stack, which a Unix socket skips; the server's own loop cost stays. One plot
//! per server that is not a reference (the references have their own transports' variants in
//! the per-transport throughput and CPU plots).
//!
//! A point's transport is the suffix its workload label carries (`, TCP`, `, Unix socket`,
//! `, UDP`; see `PointTransport::label`), so these plots need nothing beyond the plain
//! [`Report`].

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{self, series_color};
use super::{chart, load_label, slugify, DrawFailure, PlotData, PlotJob, PlotKind};
use crate::font::FAMILY;
use crate::model::{rates_equal, Estimate, PointKey, Report};
use crate::results::PointTransport;

/// One transport's bars: one per loop count of the plot (`None` where it has no figure).
#[derive(Debug, Clone, PartialEq)]
pub struct TransportBars {
    /// Which transport (its colour and legend label).
    pub transport: PointTransport,
    /// The binary the server ran as at this transport, when not itself (`gev-udp-echo`).
    pub ran_as: Option<String>,
    /// Requests per second at each loop count.
    pub throughput: Vec<Option<Estimate>>,
    /// Server CPU µs per request at each loop count.
    pub cpu: Vec<Option<Estimate>>,
    /// Throughput ÷ the TCP bar at each loop count (non-TCP transports).
    pub throughput_vs_tcp: Vec<Option<f64>>,
    /// CPU per request ÷ the TCP bar at each loop count (non-TCP transports).
    pub cpu_vs_tcp: Vec<Option<f64>>,
}

/// The data of one transports plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransportsPlot {
    /// The server compared with itself.
    pub server: String,
    /// The loop counts, one bar group each, ascending.
    pub loops: Vec<u32>,
    /// One entry per transport measured, TCP first.
    pub transports: Vec<TransportBars>,
}

/// Split a workload label into the load and its transport (no suffix: TCP).
pub fn split_transport(workload: &str) -> (&str, PointTransport) {
    for transport in PointTransport::ALL {
        if let Some(base) = workload.strip_suffix(&format!(", {}", transport.label())) {
            return (base, transport);
        }
    }
    (workload, PointTransport::Tcp)
}

/// One plot per non-reference server × load × rate measured over at least two transports.
pub fn plan(report: &Report, servers: &[String]) -> Vec<PlotJob> {
    let references = report.references_present();
    let mut jobs = Vec::new();
    for server in servers.iter().filter(|s| !references.contains(s)) {
        let own: Vec<&crate::model::PointSummary> = report
            .points
            .iter()
            .filter(|p| &p.key.server == server)
            .collect();
        // (base load, rate) in order of first appearance.
        let mut loads: Vec<(String, Option<f64>)> = Vec::new();
        for point in &own {
            let (base, _) = split_transport(&point.key.workload);
            if !loads
                .iter()
                .any(|(b, r)| b == base && rates_equal(*r, point.key.offered_rate))
            {
                loads.push((base.to_string(), point.key.offered_rate));
            }
        }
        for (base, rate) in loads {
            let at_load: Vec<&&crate::model::PointSummary> = own
                .iter()
                .filter(|p| {
                    split_transport(&p.key.workload).0 == base
                        && rates_equal(p.key.offered_rate, rate)
                })
                .collect();
            let transports: Vec<PointTransport> = PointTransport::ALL
                .into_iter()
                .filter(|t| {
                    at_load
                        .iter()
                        .any(|p| split_transport(&p.key.workload).1 == *t)
                })
                .collect();
            if transports.len() < 2 {
                continue;
            }
            let mut loops: Vec<u32> = at_load.iter().map(|p| p.key.loops).collect();
            loops.sort_unstable();
            loops.dedup();
            let find = |transport: PointTransport, loops: u32| {
                at_load.iter().find(|p| {
                    p.key.loops == loops && split_transport(&p.key.workload).1 == transport
                })
            };
            let cpu_of = |key: &PointKey| report.cost_of(key).and_then(|c| c.server_cpu_us);
            let bars: Vec<TransportBars> = transports
                .iter()
                .map(|&transport| {
                    let mut bars = TransportBars {
                        transport,
                        ran_as: report.variant_of(server, transport).map(String::from),
                        throughput: Vec::new(),
                        cpu: Vec::new(),
                        throughput_vs_tcp: Vec::new(),
                        cpu_vs_tcp: Vec::new(),
                    };
                    for &l in &loops {
                        let here = find(transport, l);
                        let tcp = find(PointTransport::Tcp, l);
                        let throughput = here.map(|p| p.throughput);
                        let cpu = here.and_then(|p| cpu_of(&p.key));
                        // The harness's ratio (with its interval) when it computed one, else
                        // the ratio of the medians drawn.
                        let harness = here.and_then(|p| report.transport_ratio_of(&p.key));
                        let plain = |a: Option<Estimate>, b: Option<Estimate>| match (a, b) {
                            (Some(a), Some(b)) if b.median > 0.0 && !transport.is_tcp() => {
                                Some(a.median / b.median)
                            }
                            _ => None,
                        };
                        bars.throughput_vs_tcp.push(
                            harness
                                .map(|r| r.throughput.median)
                                .or_else(|| plain(throughput, tcp.map(|p| p.throughput))),
                        );
                        bars.cpu_vs_tcp.push(
                            harness
                                .and_then(|r| r.server_cpu.map(|e| e.median))
                                .or_else(|| plain(cpu, tcp.and_then(|p| cpu_of(&p.key)))),
                        );
                        bars.throughput.push(throughput);
                        bars.cpu.push(cpu);
                    }
                    bars
                })
                .collect();
            let stem = format!(
                "{}-{}-{}{}",
                PlotKind::Transports.slug(),
                slugify(server),
                slugify(&base),
                chart::rate_suffix(rate)
            );
            jobs.push(PlotJob {
                kind: PlotKind::Transports,
                stem,
                title: format!("{server} across transports · {}", load_label(&base, rate)),
                data: PlotData::Transports(TransportsPlot {
                    server: server.clone(),
                    loops,
                    transports: bars,
                }),
            });
        }
    }
    jobs
}

/// Which figure a panel shows.
#[derive(Clone, Copy)]
enum Figure {
    Throughput,
    Cpu,
}

impl Figure {
    /// The bars' values and their ratios to TCP.
    fn of(self, bars: &TransportBars) -> (&[Option<Estimate>], &[Option<f64>]) {
        match self {
            Figure::Throughput => (&bars.throughput, &bars.throughput_vs_tcp),
            Figure::Cpu => (&bars.cpu, &bars.cpu_vs_tcp),
        }
    }
}

/// What one panel shows.
struct Panel<'a> {
    y_desc: &'a str,
    format: fn(f64) -> String,
    figure: Figure,
    legend: bool,
}

impl TransportsPlot {
    /// Paint both panels under one caption (or a note saying there are no points).
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawFailure> {
        if self.transports.is_empty() || self.loops.is_empty() {
            return style::draw_missing(
                root,
                title,
                &["No figures over more than one transport.".into()],
            );
        }
        let titled = root
            .margin(12, 0, 0, 0)
            .titled(title, style::caption_font())?;
        let (width, _) = titled.dim_in_pixel();
        let (left, right) = titled.split_horizontally(width / 2);
        self.draw_panel(
            &left,
            &Panel {
                y_desc: "requests per second (median, 95% interval)",
                format: style::format_rate,
                figure: Figure::Throughput,
                legend: true,
            },
        )?;
        let has_cpu = self
            .transports
            .iter()
            .any(|b| b.cpu.iter().any(Option::is_some));
        if has_cpu {
            self.draw_panel(
                &right,
                &Panel {
                    y_desc: "server CPU µs per request (median, 95%)",
                    format: |y| format!("{y:.1}"),
                    figure: Figure::Cpu,
                    legend: false,
                },
            )?;
        } else {
            style::draw_missing(&right, "", &["No server CPU figures.".into()])?;
        }
        Ok(())
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &Panel<'_>,
    ) -> Result<(), DrawFailure> {
        let estimates = || {
            self.transports
                .iter()
                .flat_map(|b| panel.figure.of(b).0.iter().flatten())
        };
        let headroom = style::legend_headroom(self.transports.len(), style::PLOTTING_HEIGHT);
        let y_range = style::with_headroom(
            style::linear_range_from_zero(estimates().flat_map(|e| [e.median, e.high])),
            headroom.max(0.12),
        );
        let names: Vec<String> = self.loops.iter().map(u32::to_string).collect();
        let mut chart = chart::grouped_bar_chart(
            area,
            None,
            &names,
            y_range,
            "loops",
            panel.y_desc,
            panel.format,
        )?;
        let count = self.transports.len();
        let ratio_font = TextStyle::from((FAMILY, 15.0).into_font())
            .color(&RGBColor(40, 40, 40))
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        for (index, bars) in self.transports.iter().enumerate() {
            let (values, ratios) = panel.figure.of(bars);
            let drawn: Vec<(usize, Estimate)> = values
                .iter()
                .enumerate()
                .filter_map(|(group, e)| e.map(|e| (group, e)))
                .collect();
            chart::draw_bars(
                &mut chart,
                &drawn,
                index,
                count,
                series_color(transport_color(bars.transport)),
                panel.legend.then(|| bars.legend()),
                8,
            )?;
            chart.draw_series(drawn.iter().filter_map(|(group, e)| {
                let ratio = ratios.get(*group).copied().flatten()?;
                let top = if style::interval_is_drawable(e) {
                    e.high
                } else {
                    e.median
                };
                let (left, width) = chart::bar_slot(*group, index, count);
                Some(Text::new(
                    format!("{ratio:.2}× TCP"),
                    (left + width / 2.0, top),
                    ratio_font.clone(),
                ))
            }))?;
        }
        if panel.legend {
            chart::draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}

impl TransportBars {
    /// The legend entry: the transport, and the binary that ran over it if not the server.
    pub fn legend(&self) -> String {
        match &self.ran_as {
            Some(binary) => format!("{} ({binary})", self.transport.label()),
            None => self.transport.label().to_string(),
        }
    }
}

/// A transport's colour: the same in every transports plot.
fn transport_color(transport: PointTransport) -> usize {
    match transport {
        PointTransport::Tcp => 0,
        PointTransport::Unix => 2,
        PointTransport::Udp => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_points::{key, point};
    use super::*;
    use crate::model::{PointCost, PointTransportRatio};

    fn cost(server: &str, loops: u32, workload: &str, micros: f64) -> PointCost {
        PointCost {
            key: key(server, loops, workload),
            server_cpu_us: Some(Estimate {
                median: micros,
                low: micros,
                high: micros,
            }),
            ..PointCost::default()
        }
    }

    #[test]
    fn labels_split_into_load_and_transport() {
        for (label, split) in [
            (
                "raw 64 B, 8 conns",
                ("raw 64 B, 8 conns", PointTransport::Tcp),
            ),
            (
                "raw 64 B, 8 conns, TCP",
                ("raw 64 B, 8 conns", PointTransport::Tcp),
            ),
            (
                "raw 64 B, 8 conns, Unix socket",
                ("raw 64 B, 8 conns", PointTransport::Unix),
            ),
            (
                "raw 64 B, 8 conns, UDP",
                ("raw 64 B, 8 conns", PointTransport::Udp),
            ),
        ] {
            assert_eq!(split_transport(label), split, "{label}");
        }
    }

    #[test]
    fn one_plot_per_non_reference_server_with_ratios_to_tcp() {
        let tcp = "raw 64 B, 8 conns, TCP";
        let unix = "raw 64 B, 8 conns, Unix socket";
        let udp = "raw 64 B, 8 conns, UDP";
        let report = Report {
            points: vec![
                point("gev-echo", 1, tcp, 100.0),
                point("gev-echo", 1, unix, 200.0),
                point("gev-echo", 2, tcp, 150.0),
                point("gev-echo", 1, udp, 90.0),
                point("ref-tokio-echo", 1, tcp, 80.0),
                point("ref-tokio-echo", 1, unix, 160.0),
                // Only one transport: no plot for this load.
                point("gev-echo", 1, "raw 512 B, 8 conns, TCP", 70.0),
            ],
            costs: vec![
                cost("gev-echo", 1, tcp, 10.0),
                cost("gev-echo", 1, unix, 4.0),
            ],
            transport_ratios: vec![PointTransportRatio {
                key: key("gev-echo", 1, udp),
                throughput: Estimate {
                    median: 0.91,
                    low: 0.8,
                    high: 1.0,
                },
                server_cpu: None,
            }],
            references: vec!["ref-tokio-echo".into()],
            variants: [("unix", "gev-echo"), ("udp", "gev-udp-echo")]
                .map(|(transport, binary)| crate::model::ServerVariant {
                    server: "gev-echo".into(),
                    transport: transport.parse().unwrap(),
                    binary: binary.into(),
                })
                .to_vec(),
            ..Report::default()
        };
        let jobs = plan(&report, &report.server_order());
        assert_eq!(
            jobs.len(),
            1,
            "{:?}",
            jobs.iter().map(|j| &j.stem).collect::<Vec<_>>()
        );
        assert_eq!(jobs[0].stem, "transports-gev-echo-raw-64-b-8-conns");
        assert!(jobs[0].title.starts_with("gev-echo across transports"));
        let PlotData::Transports(plot) = &jobs[0].data else {
            panic!("wrong plot data")
        };
        assert_eq!(plot.loops, [1, 2]);
        let order: Vec<PointTransport> = plot.transports.iter().map(|b| b.transport).collect();
        assert_eq!(
            order,
            [
                PointTransport::Tcp,
                PointTransport::Unix,
                PointTransport::Udp
            ]
        );
        let unix_bars = &plot.transports[1];
        assert_eq!(unix_bars.throughput_vs_tcp, [Some(2.0), None]);
        assert_eq!(unix_bars.cpu_vs_tcp, [Some(0.4), None]);
        assert_eq!(plot.transports[0].throughput_vs_tcp, [None, None]);
        // The harness's ratio wins over the plain one.
        assert_eq!(plot.transports[2].throughput_vs_tcp[0], Some(0.91));
        // Legends name what ran: gev-echo itself over TCP and the Unix socket, its UDP variant.
        let legends: Vec<String> = plot.transports.iter().map(TransportBars::legend).collect();
        assert_eq!(legends, ["TCP", "Unix socket", "UDP (gev-udp-echo)"]);
        // So do the per-transport plots' series and the table.
        assert_eq!(report.name_at("gev-echo", udp), "gev-udp-echo (gev-echo)");
        assert_eq!(report.name_at("gev-echo", unix), "gev-echo");
        assert_eq!(report.name_at("ref-tokio-echo", udp), "ref-tokio-echo");
        let throughput = super::super::throughput::plan(&report, &report.server_order());
        let udp_plot = throughput
            .iter()
            .find(|job| job.title.ends_with(udp))
            .expect("a UDP throughput plot");
        let PlotData::Throughput(lines) = &udp_plot.data else {
            panic!("wrong plot data")
        };
        assert_eq!(lines.servers[0].server, "gev-udp-echo (gev-echo)");
        let table = crate::table::SummaryTable::from_report(&report);
        assert!(table
            .rows
            .iter()
            .any(|row| row.cells.contains(&"gev-udp-echo (gev-echo)".to_string())));
    }
}
