//! Latency vs offered load (the knee): for an open-loop workload at one loop count, each
//! server's p50 and p99 against the request rate the load generator offered, above a panel of
//! the rate it actually achieved.
//!
//! Latency stays flat while a server keeps up and turns sharply upward at its capacity; the lower
//! panel shows the same limit as the achieved rate falling away from the `achieved = offered`
//! diagonal. Planned only when the sweep has offered rates.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, series_color};
use super::{chart, slugify, DrawFailure, PlotData, PlotJob, PlotKind};
use crate::model::{LatencySummary, Report};

/// One server's measurements at one offered rate.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KneePoint {
    /// Requests per second offered (`loadgen -R`).
    pub offered: f64,
    /// Requests per second completed (median over repeats).
    pub achieved: f64,
    /// Latency percentiles, microseconds (corrected for coordinated omission).
    pub latency_us: LatencySummary,
}

/// One server's curve.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerKnee {
    /// Server name (legend label).
    pub server: String,
    /// Index of the server in the report's server order (fixes its colour).
    pub color_index: usize,
    /// Points sorted by offered rate.
    pub points: Vec<KneePoint>,
}

/// The data of one offered-load plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OfferedLoadPlot {
    /// One entry per server with open-loop points.
    pub servers: Vec<ServerKnee>,
}

/// One plot per open-loop workload and loop count; none for a closed-loop sweep.
pub fn plan(report: &Report, servers: &[String]) -> Vec<PlotJob> {
    let mut jobs = Vec::new();
    for workload in report.workloads() {
        let open_loop: Vec<_> = report
            .points
            .iter()
            .filter(|p| p.key.workload == workload && p.key.offered_rate.is_some())
            .collect();
        for loops in style::loop_counts(open_loop.iter().map(|p| p.key.loops)) {
            let loops = loops as u32;
            let curves: Vec<ServerKnee> = servers
                .iter()
                .enumerate()
                .filter_map(|(color_index, server)| {
                    let mut points: Vec<KneePoint> = open_loop
                        .iter()
                        .filter(|p| &p.key.server == server && p.key.loops == loops)
                        .filter_map(|p| {
                            p.key.offered_rate.map(|offered| KneePoint {
                                offered,
                                achieved: p.throughput.median,
                                latency_us: p.latency_us,
                            })
                        })
                        .collect();
                    points.sort_by(|a, b| a.offered.total_cmp(&b.offered));
                    (!points.is_empty()).then(|| ServerKnee {
                        server: report.name_at(server, &workload),
                        color_index,
                        points,
                    })
                })
                .collect();
            jobs.push(PlotJob {
                kind: PlotKind::OfferedLoad,
                stem: format!(
                    "{}-{}-l{loops}",
                    PlotKind::OfferedLoad.slug(),
                    slugify(&workload)
                ),
                title: format!(
                    "Latency vs offered load · {workload} · {loops} loop{}",
                    if loops == 1 { "" } else { "s" }
                ),
                data: PlotData::OfferedLoad(OfferedLoadPlot { servers: curves }),
            });
        }
    }
    jobs
}

impl OfferedLoadPlot {
    /// Paint both panels (or a note saying what is missing).
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawFailure> {
        let all_points = || self.servers.iter().flat_map(|s| s.points.iter());
        let latency_range =
            style::log_range(all_points().flat_map(|p| [p.latency_us.p50, p.latency_us.p99]));
        let Some(latency_range) = latency_range else {
            return style::draw_missing(
                root,
                title,
                &["No latency recorded at any offered rate.".into()],
            );
        };
        let latency_range = style::with_log_headroom(
            latency_range,
            style::legend_headroom(2 * self.servers.len(), style::PLOTTING_HEIGHT * 0.55),
        );
        let x_range = style::linear_range_from_zero(all_points().map(|p| p.offered));
        let rate_range =
            style::linear_range_from_zero(all_points().flat_map(|p| [p.offered, p.achieved]));
        let area = root
            .margin(12, 0, 0, 0)
            .titled(title, style::caption_font())?;
        let (upper, lower) = area.split_vertically((62).percent());

        let mut chart = ChartBuilder::on(&upper)
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(100)
            .build_cartesian_2d(x_range.clone(), style::TickedAxis::log(latency_range))?;
        chart
            .configure_mesh()
            .y_desc("latency (log scale)")
            .label_style(style::label_font())
            .max_light_lines(4)
            .axis_desc_style(style::axis_desc_font())
            .x_label_formatter(&|x| style::format_rate(*x))
            .y_label_formatter(&|y| style::format_micros(*y))
            .draw()?;
        for line in &self.servers {
            let color = series_color(line.color_index);
            let p99: Vec<(f64, f64)> =
                positive(line.points.iter().map(|p| (p.offered, p.latency_us.p99)));
            let p50: Vec<(f64, f64)> =
                positive(line.points.iter().map(|p| (p.offered, p.latency_us.p50)));
            chart
                .draw_series(LineSeries::new(p99.clone(), color.stroke_width(3)))?
                .label(format!("{} p99", line.server))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
            chart.draw_series(
                p99.iter()
                    .map(|p| TriangleMarker::new(*p, 7, color.filled())),
            )?;
            chart
                .draw_series(DashedLineSeries::new(
                    p50.clone(),
                    10,
                    6,
                    color.stroke_width(2),
                ))?
                .label(format!("{} p50", line.server))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 10, y)], color.stroke_width(2))
                });
            chart.draw_series(p50.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
        }
        chart::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;

        let mut rates = ChartBuilder::on(&lower)
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(100)
            .build_cartesian_2d(x_range.clone(), rate_range)?;
        rates
            .configure_mesh()
            .x_desc("offered requests per second")
            .y_desc("achieved req/s")
            .label_style(style::label_font())
            .max_light_lines(4)
            .axis_desc_style(style::axis_desc_font())
            .x_label_formatter(&|x| style::format_rate(*x))
            .y_label_formatter(&|y| style::format_rate(*y))
            .draw()?;
        rates
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (x_range.end, x_range.end)],
                8,
                6,
                RGBColor(120, 120, 120).stroke_width(1),
            ))?
            .label("achieved = offered")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], RGBColor(120, 120, 120)));
        for line in &self.servers {
            let color = series_color(line.color_index);
            let achieved: Vec<(f64, f64)> = line
                .points
                .iter()
                .filter(|p| p.achieved.is_finite())
                .map(|p| (p.offered, p.achieved))
                .collect();
            rates.draw_series(LineSeries::new(achieved.clone(), color.stroke_width(3)))?;
            rates.draw_series(achieved.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
        }
        chart::draw_legend(&mut rates, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}

/// Keep the points a log axis can show.
fn positive(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    points
        .filter(|(x, y)| x.is_finite() && y.is_finite() && *y > 0.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Estimate, LatencyHistogram, PointKey, PointSummary};

    fn point(rate: Option<f64>, loops: u32) -> PointSummary {
        PointSummary {
            key: PointKey {
                server: "gev".into(),
                loops,
                workload: "w".into(),
                offered_rate: rate,
            },
            throughput: Estimate {
                median: rate.unwrap_or(5.0),
                low: 0.0,
                high: 0.0,
            },
            latency_us: LatencySummary {
                p50: 10.0,
                p99: 20.0,
                p999: 30.0,
            },
            histogram: LatencyHistogram::Missing,
            throughput_ratios: Vec::new(),
        }
    }

    #[test]
    fn closed_loop_sweep_has_no_knee_plot() {
        let report = Report {
            points: vec![point(None, 1)],
            ..Report::default()
        };
        assert!(plan(&report, &report.server_order()).is_empty());
    }

    #[test]
    fn one_plot_per_loop_count_with_sorted_rates() {
        let report = Report {
            points: vec![
                point(Some(2000.0), 1),
                point(Some(1000.0), 1),
                point(Some(1000.0), 2),
            ],
            ..Report::default()
        };
        let jobs = plan(&report, &report.server_order());
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].stem, "offered-load-w-l1");
        let PlotData::OfferedLoad(plot) = &jobs[0].data else {
            panic!("wrong plot data");
        };
        let offered: Vec<f64> = plot.servers[0].points.iter().map(|p| p.offered).collect();
        assert_eq!(offered, [1000.0, 2000.0]);
    }
}
