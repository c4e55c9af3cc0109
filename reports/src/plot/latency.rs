//! Latency percentiles vs loop count: for one load, p50, p99 and p99.9 of each server at each
//! loop count, on a log axis so the median and the tail fit on one plot.
//!
//! Colour says which server, the marker says which percentile (circle p50, triangle p99, cross
//! p99.9, the last also dashed), so the legend stays short however many servers there are.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, series_color};
use super::{chart, DrawFailure, PlotData, PlotJob, PlotKind, ServerSeries};
use crate::model::{LatencySummary, Report};

/// One server's latency percentiles at each loop count.
pub type ServerLatency = ServerSeries<LatencySummary>;

/// The data of one latency plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyPlot {
    /// One entry per server that has points for this load.
    pub servers: Vec<ServerLatency>,
}

/// Reads one percentile out of a summary.
type PickPercentile = fn(&LatencySummary) -> f64;

/// The three percentiles drawn, with how to pick each from a summary.
const PERCENTILES: [(&str, PickPercentile); 3] = [
    ("p50", |l| l.p50),
    ("p99", |l| l.p99),
    ("p99.9", |l| l.p999),
];

/// One plot per load.
pub fn plan(report: &Report, servers: &[String]) -> Vec<PlotJob> {
    let data = |servers| PlotData::Latency(LatencyPlot { servers });
    chart::plan_points_per_load(report, servers, PlotKind::Latency, |p| p.latency_us, data)
}

impl LatencyPlot {
    /// Paint the plot (or a note saying what is missing).
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawFailure> {
        let loop_counts = style::loop_counts(
            self.servers
                .iter()
                .flat_map(|s| s.points.iter().map(|(loops, _)| *loops)),
        );
        let values = self.servers.iter().flat_map(|s| {
            s.points
                .iter()
                .flat_map(|(_, l)| PERCENTILES.iter().map(move |(_, pick)| pick(l)))
        });
        let Some(y_range) = style::log_range(values) else {
            return style::draw_missing(
                root,
                title,
                &["No latency recorded at this load (every percentile is zero or absent).".into()],
            );
        };
        let entries = self.servers.len() + PERCENTILES.len();
        let y_range = style::with_log_headroom(
            y_range,
            style::legend_headroom(entries, style::PLOTTING_HEIGHT),
        );
        let mut chart = ChartBuilder::on(root)
            .caption(title, style::caption_font())
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(100)
            .build_cartesian_2d(
                style::loop_axis(&loop_counts),
                style::TickedAxis::log(y_range),
            )?;
        chart
            .configure_mesh()
            .x_desc("event loops")
            .y_desc("latency (log scale)")
            .label_style(style::label_font())
            .max_light_lines(4)
            .axis_desc_style(style::axis_desc_font())
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| style::format_micros(*y))
            .draw()?;

        for (server_index, line) in self.servers.iter().enumerate() {
            let color = series_color(line.color_index);
            let offset = style::dodge(server_index, self.servers.len(), &loop_counts);
            for (index, (_, pick)) in PERCENTILES.iter().enumerate() {
                let points: Vec<(f64, f64)> = line
                    .points
                    .iter()
                    .map(|(loops, l)| (f64::from(*loops) + offset, pick(l)))
                    .filter(|(_, v)| v.is_finite() && *v > 0.0)
                    .collect();
                let stroke = color.stroke_width(if index == 1 { 3 } else { 2 });
                let series = if index == 2 {
                    chart.draw_series(DashedLineSeries::new(points.clone(), 10, 6, stroke))?
                } else {
                    chart.draw_series(LineSeries::new(points.clone(), stroke))?
                };
                if index == 1 {
                    series.label(line.server.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                    });
                }
                draw_markers(&mut chart, index, &points, color)?;
            }
        }
        // Legend entries for the percentile markers, in black, after the server colours.
        for (index, (name, _)) in PERCENTILES.iter().enumerate() {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label(if index == 2 {
                    format!("{name} (dashed)")
                } else {
                    name.to_string()
                })
                .legend(move |(x, y)| legend_marker(index, (x + 12, y)));
        }
        chart::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}

/// Draw the markers of the `index`-th percentile.
fn draw_markers<DB: DrawingBackend, CT: plotters::coord::CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'_, DB, CT>,
    index: usize,
    points: &[(f64, f64)],
    color: RGBColor,
) -> Result<(), DrawFailure> {
    match index {
        0 => {
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 5, color.filled())))?;
        }
        1 => {
            chart.draw_series(
                points
                    .iter()
                    .map(|p| TriangleMarker::new(*p, 7, color.filled())),
            )?;
        }
        _ => {
            chart.draw_series(
                points
                    .iter()
                    .map(|p| Cross::new(*p, 6, color.stroke_width(2))),
            )?;
        }
    }
    Ok(())
}

/// The legend sample for the `index`-th percentile, drawn in backend pixels.
fn legend_marker<DB: DrawingBackend>(
    index: usize,
    at: (i32, i32),
) -> DynElement<'static, DB, (i32, i32)> {
    match index {
        0 => Circle::new(at, 5, BLACK.filled()).into_dyn(),
        1 => TriangleMarker::new(at, 7, BLACK.filled()).into_dyn(),
        _ => Cross::new(at, 6, BLACK.stroke_width(2)).into_dyn(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Estimate, LatencyHistogram, PointKey, PointSummary};

    #[test]
    fn plans_percentiles_per_server() {
        let report = Report {
            points: vec![PointSummary {
                key: PointKey {
                    server: "gev".into(),
                    loops: 1,
                    workload: "w".into(),
                    offered_rate: Some(1000.0),
                },
                throughput: Estimate::default(),
                latency_us: LatencySummary {
                    p50: 10.0,
                    p99: 50.0,
                    p999: 90.0,
                },
                histogram: LatencyHistogram::Missing,
                throughput_ratios: Vec::new(),
            }],
            ..Report::default()
        };
        let jobs = plan(&report, &report.server_order());
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].stem, "latency-w-r1000");
        assert!(jobs[0].title.contains("1.0k req/s offered"));
    }
}
