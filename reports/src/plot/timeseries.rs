//! Throughput and p99 over time: for one server at one load, the per-second throughput (above)
//! and latency p99 (below) of every run, one line per run, coloured by loop count so the repeats
//! of a loop count share a colour.
//!
//! This is the plot that shows whether a figure can be trusted: a ramp at the start means the
//! warm-up was too short, a drift or a step between repeats of one colour means the machine was
//! disturbed. Loop counts share one plot (rather than one plot each) to keep a large sweep's
//! page to a readable number of images.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, series_color};
use super::{chart, load_groups, load_label, load_stem, DrawFailure, PlotData, PlotJob, PlotKind};
use crate::model::{rates_equal, Report, TimeSample};

/// Runs with at most this many samples get a marker on each one.
const MARKER_LIMIT: usize = 20;

/// One run's samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLine {
    /// The loop count the server ran with.
    pub loops: u32,
    /// Repeat number, from 0.
    pub repeat: u32,
    /// Index of the loop count among the plot's loop counts (fixes the colour).
    pub color_index: usize,
    /// One sample per second.
    pub samples: Vec<TimeSample>,
}

/// The data of one time-series plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeseriesPlot {
    /// The runs, sorted by loop count then repeat.
    pub runs: Vec<RunLine>,
}

/// One plot per server and load that has runs.
pub fn plan(report: &Report) -> Vec<PlotJob> {
    let mut jobs = Vec::new();
    let servers = report.server_order();
    for (workload, rate) in load_groups(report) {
        for server in &servers {
            let matching: Vec<_> = report
                .runs
                .iter()
                .filter(|r| {
                    &r.key.server == server
                        && r.key.workload == workload
                        && rates_equal(r.key.offered_rate, rate)
                })
                .collect();
            if matching.is_empty() {
                continue;
            }
            let loop_counts = style::loop_counts(matching.iter().map(|r| r.key.loops));
            let mut runs: Vec<RunLine> = matching
                .iter()
                .map(|r| RunLine {
                    loops: r.key.loops,
                    repeat: r.repeat,
                    color_index: loop_counts
                        .iter()
                        .position(|l| *l == f64::from(r.key.loops))
                        .unwrap_or(0),
                    samples: r.samples.clone(),
                })
                .collect();
            runs.sort_by_key(|r| (r.loops, r.repeat));
            jobs.push(PlotJob {
                kind: PlotKind::Timeseries,
                stem: format!(
                    "{}-{}",
                    load_stem(PlotKind::Timeseries, &workload, rate),
                    super::slugify(server)
                ),
                title: format!(
                    "{} over time · {}",
                    report.name_at(server, &workload),
                    load_label(&workload, rate)
                ),
                data: PlotData::Timeseries(TimeseriesPlot { runs }),
            });
        }
    }
    jobs
}

impl TimeseriesPlot {
    /// Paint both panels (or a note saying the runs recorded no samples).
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawFailure> {
        let samples = || {
            self.runs
                .iter()
                .flat_map(|r| r.samples.iter())
                .filter(|s| s.t_secs.is_finite())
        };
        if samples().next().is_none() {
            return style::draw_missing(
                root,
                title,
                &[format!(
                    "The {} run(s) of this server at this load recorded no per-second samples.",
                    self.runs.len()
                )],
            );
        }
        let t_end = samples().map(|s| s.t_secs).fold(1.0f64, f64::max);

        let legend_entries = style::loop_counts(self.runs.iter().map(|r| r.loops)).len();
        let rps_range = style::with_headroom(
            style::linear_range_from_zero(samples().map(|s| s.rps)),
            style::legend_headroom(legend_entries, style::PLOTTING_HEIGHT * 0.45),
        );
        let area = root
            .margin(12, 0, 0, 0)
            .titled(title, style::caption_font())?;
        let (upper, lower) = area.split_vertically((50).percent());

        let mut rps = ChartBuilder::on(&upper)
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(100)
            .build_cartesian_2d(style::seconds_axis(t_end), rps_range)?;
        rps.configure_mesh()
            .y_desc("requests per second")
            .label_style(style::label_font())
            .max_light_lines(4)
            .axis_desc_style(style::axis_desc_font())
            .x_label_formatter(&|t| format!("{t:.0} s"))
            .y_label_formatter(&|y| style::format_rate(*y))
            .draw()?;
        let mut labelled: Vec<u32> = Vec::new();
        for run in &self.runs {
            let color = series_color(run.color_index);
            let points: Vec<(f64, f64)> = run
                .samples
                .iter()
                .filter(|s| s.t_secs.is_finite() && s.rps.is_finite())
                .map(|s| (s.t_secs, s.rps))
                .collect();
            // Short runs get a marker per second so single samples are visible.
            if points.len() <= MARKER_LIMIT {
                rps.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
            }
            let series = rps.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
            // One legend entry per loop count: its repeats share the colour.
            if !labelled.contains(&run.loops) {
                labelled.push(run.loops);
                series
                    .label(format!(
                        "{} loop{}",
                        run.loops,
                        if run.loops == 1 { "" } else { "s" }
                    ))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                    });
            }
        }
        chart::draw_legend(&mut rps, SeriesLabelPosition::UpperRight)?;

        let Some(p99_range) = style::log_range(samples().map(|s| s.p99_us)) else {
            return style::draw_missing(
                &lower,
                "p99",
                &["No latency recorded in any second.".into()],
            );
        };
        let mut p99 = ChartBuilder::on(&lower)
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(100)
            .build_cartesian_2d(
                style::seconds_axis(t_end),
                style::TickedAxis::log(p99_range),
            )?;
        p99.configure_mesh()
            .x_desc("seconds since measuring began")
            .y_desc("p99 latency (log)")
            .label_style(style::label_font())
            .max_light_lines(4)
            .axis_desc_style(style::axis_desc_font())
            .x_label_formatter(&|t| format!("{t:.0} s"))
            .y_label_formatter(&|y| style::format_micros(*y))
            .draw()?;
        for run in &self.runs {
            let color = series_color(run.color_index);
            let points: Vec<(f64, f64)> = run
                .samples
                .iter()
                .filter(|s| s.t_secs.is_finite() && s.p99_us.is_finite() && s.p99_us > 0.0)
                .map(|s| (s.t_secs, s.p99_us))
                .collect();
            p99.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
            if points.len() <= MARKER_LIMIT {
                p99.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PointKey, RunSeries};

    fn run(server: &str, loops: u32, repeat: u32) -> RunSeries {
        RunSeries {
            key: PointKey {
                server: server.into(),
                loops,
                workload: "w".into(),
                offered_rate: None,
            },
            repeat,
            samples: vec![TimeSample {
                t_secs: 1.0,
                rps: 100.0,
                p99_us: 50.0,
            }],
        }
    }

    #[test]
    fn one_plot_per_server_and_load_coloured_by_loops() {
        let report = Report {
            runs: vec![
                run("a", 2, 1),
                run("a", 1, 0),
                run("a", 2, 0),
                run("b", 1, 0),
            ],
            ..Report::default()
        };
        let jobs = plan(&report);
        let stems: Vec<&str> = jobs.iter().map(|j| j.stem.as_str()).collect();
        assert_eq!(stems, ["timeseries-w-a", "timeseries-w-b"]);
        let PlotData::Timeseries(plot) = &jobs[0].data else {
            panic!("wrong plot data");
        };
        let order: Vec<(u32, u32, usize)> = plot
            .runs
            .iter()
            .map(|r| (r.loops, r.repeat, r.color_index))
            .collect();
        assert_eq!(order, [(1, 0, 0), (2, 0, 1), (2, 1, 1)]);
    }
}
