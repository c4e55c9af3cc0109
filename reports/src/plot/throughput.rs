//! Throughput vs loop count: for one load (workload × offered rate), one line per server through
//! the median requests per second at each loop count, with the 95% interval drawn as an error bar.
//!
//! This is the scaling plot: a server that scales adds throughput with every loop, and the
//! reference servers (tokio, bare mio) show what the machine allows in the same run.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, series_color};
use super::{chart, DrawFailure, PlotData, PlotJob, PlotKind, ServerSeries};
use crate::model::{Estimate, Report};

/// One server's throughput at each loop count.
pub type ServerThroughput = ServerSeries<Estimate>;

/// The data of one throughput plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThroughputPlot {
    /// One entry per server that has points for this load.
    pub servers: Vec<ServerThroughput>,
}

/// How this plot labels its value axis.
const THROUGHPUT_AXIS: Axis = Axis {
    description: "requests per second (median, 95% interval)",
    format: |y| style::format_rate(y),
    missing: "No throughput figures for this load.",
    all_zero: "every server completed 0 requests/s at this load",
};

/// One plot per load.
pub fn plan(report: &Report, servers: &[String]) -> Vec<PlotJob> {
    let data = |servers| PlotData::Throughput(ThroughputPlot { servers });
    chart::plan_points_per_load(
        report,
        servers,
        PlotKind::Throughput,
        |p| p.throughput,
        data,
    )
}

impl ThroughputPlot {
    /// Paint the plot (or a note saying there are no points).
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawFailure> {
        draw_estimates_vs_loops(root, title, &self.servers, &THROUGHPUT_AXIS)
    }
}

/// How a plot of medians with intervals against loops labels its value axis.
pub struct Axis {
    /// The value axis's description.
    pub description: &'static str,
    /// How a tick value is written.
    pub format: fn(f64) -> String,
    /// The image's text when there are no points.
    pub missing: &'static str,
    /// The note drawn when every value is zero.
    pub all_zero: &'static str,
}

/// One line per server through its medians at each loop count, with the 95% interval as an
/// error bar; shared by the throughput and the server-cost plots.
pub fn draw_estimates_vs_loops<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    servers: &[ServerSeries<Estimate>],
    axis: &Axis,
) -> Result<(), DrawFailure> {
    let loop_counts = style::loop_counts(
        servers
            .iter()
            .flat_map(|s| s.points.iter().map(|(loops, _)| *loops)),
    );
    if loop_counts.is_empty() {
        return style::draw_missing(root, title, &[axis.missing.into()]);
    }
    let all_zero = servers
        .iter()
        .flat_map(|s| &s.points)
        .all(|(_, e)| e.median <= 0.0 && e.high <= 0.0);
    let headroom = style::legend_headroom(servers.len(), style::PLOTTING_HEIGHT);
    let y_range = style::linear_range_from_zero(
        servers
            .iter()
            .flat_map(|s| s.points.iter().flat_map(|(_, e)| [e.median, e.high])),
    );
    let y_range = style::with_headroom(y_range, headroom);
    let mut chart = ChartBuilder::on(root)
        .caption(title, style::caption_font())
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(100)
        .build_cartesian_2d(style::loop_axis(&loop_counts), y_range)?;
    chart
        .configure_mesh()
        .x_desc("event loops")
        .y_desc(axis.description)
        .label_style(style::label_font())
        .max_light_lines(4)
        .axis_desc_style(style::axis_desc_font())
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| (axis.format)(*y))
        .draw()?;

    for (index, line) in servers.iter().enumerate() {
        let color = series_color(line.color_index);
        let offset = style::dodge(index, servers.len(), &loop_counts);
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .filter(|(_, e)| e.median.is_finite())
            .map(|(loops, e)| (f64::from(*loops) + offset, e.median))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))?
            .label(line.server.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        chart.draw_series(
            points
                .iter()
                .map(|point| Circle::new(*point, 5, color.filled())),
        )?;
        chart.draw_series(
            line.points
                .iter()
                .filter(|(_, e)| style::interval_is_drawable(e))
                .map(|(loops, e)| {
                    ErrorBar::new_vertical(
                        f64::from(*loops) + offset,
                        e.low,
                        e.median,
                        e.high,
                        color.stroke_width(2),
                        14,
                    )
                }),
        )?;
    }
    chart::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    if all_zero {
        style::draw_note(root, axis.all_zero)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PointSummary;

    fn point(server: &str, loops: u32, rps: f64) -> PointSummary {
        super::super::test_points::point(server, loops, "raw 64 B", rps)
    }

    #[test]
    fn plans_one_plot_per_load_with_sorted_lines() {
        let report = Report {
            points: vec![
                point("gev", 2, 20.0),
                point("gev", 1, 10.0),
                point("ref-mio-echo", 1, 12.0),
            ],
            ..Report::default()
        };
        let jobs = plan(&report, &report.server_order());
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].stem, "throughput-raw-64-b");
        let PlotData::Throughput(plot) = &jobs[0].data else {
            panic!("wrong plot data");
        };
        assert_eq!(plot.servers.len(), 2);
        let loops: Vec<u32> = plot.servers[0].points.iter().map(|(l, _)| *l).collect();
        assert_eq!(loops, [1, 2]);
        assert_eq!(plot.servers[1].color_index, 1);
    }
}
