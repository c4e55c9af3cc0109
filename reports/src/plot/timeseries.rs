//! Throughput and p99 over time: for one point (server × loops × load), the per-second
//! throughput and latency p99 of every repeat, one line per repeat, throughput above, p99 below.
//!
//! This is the plot that shows whether a figure can be trusted: a ramp at the start means the
//! warm-up was too short, a drift or a step between repeats means the machine was disturbed.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, series_color};
use super::{load_groups, load_label, load_stem, DrawFailure, PlotData, PlotJob, PlotKind};
use crate::model::{rates_equal, Report, TimeSample};

/// One repeat's samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RepeatSeries {
    /// Repeat number, from 0 (shown from 1).
    pub repeat: u32,
    /// One sample per second.
    pub samples: Vec<TimeSample>,
}

/// The data of one time-series plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeseriesPlot {
    /// The repeats, sorted.
    pub repeats: Vec<RepeatSeries>,
}

/// One plot per point that has runs.
pub fn plan(report: &Report) -> Vec<PlotJob> {
    let mut jobs = Vec::new();
    let servers = report.server_order();
    for (workload, rate) in load_groups(report) {
        for server in &servers {
            let runs: Vec<_> = report
                .runs
                .iter()
                .filter(|r| {
                    &r.key.server == server
                        && r.key.workload == workload
                        && rates_equal(r.key.offered_rate, rate)
                })
                .collect();
            for loops in style::loop_counts(runs.iter().map(|r| r.key.loops)) {
                let loops = loops as u32;
                let mut repeats: Vec<RepeatSeries> = runs
                    .iter()
                    .filter(|r| r.key.loops == loops)
                    .map(|r| RepeatSeries {
                        repeat: r.repeat,
                        samples: r.samples.clone(),
                    })
                    .collect();
                repeats.sort_by_key(|r| r.repeat);
                jobs.push(PlotJob {
                    kind: PlotKind::Timeseries,
                    stem: format!(
                        "{}-{}-l{loops}",
                        load_stem(PlotKind::Timeseries, &workload, rate),
                        super::slugify(server)
                    ),
                    title: format!(
                        "{server} · {loops} loop{} · {}",
                        if loops == 1 { "" } else { "s" },
                        load_label(&workload, rate)
                    ),
                    data: PlotData::Timeseries(TimeseriesPlot { repeats }),
                });
            }
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
            self.repeats
                .iter()
                .flat_map(|r| r.samples.iter())
                .filter(|s| s.t_secs.is_finite())
        };
        if samples().next().is_none() {
            return style::draw_missing(
                root,
                title,
                &[format!(
                    "The {} run(s) of this point recorded no per-second samples.",
                    self.repeats.len()
                )],
            );
        }
        let t_end = samples().map(|s| s.t_secs).fold(1.0f64, f64::max);
        let x_range = 0.0..t_end * 1.02;
        let rps_range = style::linear_range_from_zero(samples().map(|s| s.rps));
        let area = root
            .margin(12, 0, 0, 0)
            .titled(title, style::caption_font())?;
        let (upper, lower) = area.split_vertically((50).percent());

        let mut rps = ChartBuilder::on(&upper)
            .margin(20)
            .x_label_area_size(40)
            .y_label_area_size(100)
            .build_cartesian_2d(x_range.clone(), rps_range)?;
        rps.configure_mesh()
            .y_desc("requests per second")
            .label_style(style::label_font())
            .max_light_lines(4)
            .axis_desc_style(style::axis_desc_font())
            .x_label_formatter(&|t| format!("{t:.0} s"))
            .y_label_formatter(&|y| style::format_rate(*y))
            .draw()?;
        for (index, repeat) in self.repeats.iter().enumerate() {
            let color = series_color(index);
            let points: Vec<(f64, f64)> = repeat
                .samples
                .iter()
                .filter(|s| s.t_secs.is_finite() && s.rps.is_finite())
                .map(|s| (s.t_secs, s.rps))
                .collect();
            rps.draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(format!("repeat {}", repeat.repeat + 1))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
        rps.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font(style::legend_font())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;

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
            .build_cartesian_2d(x_range, style::TickedAxis::log(p99_range))?;
        p99.configure_mesh()
            .x_desc("seconds since measuring began")
            .y_desc("p99 latency (log)")
            .label_style(style::label_font())
            .max_light_lines(4)
            .axis_desc_style(style::axis_desc_font())
            .x_label_formatter(&|t| format!("{t:.0} s"))
            .y_label_formatter(&|y| style::format_micros(*y))
            .draw()?;
        for (index, repeat) in self.repeats.iter().enumerate() {
            let color = series_color(index);
            let points: Vec<(f64, f64)> = repeat
                .samples
                .iter()
                .filter(|s| s.t_secs.is_finite() && s.p99_us.is_finite() && s.p99_us > 0.0)
                .map(|s| (s.t_secs, s.p99_us))
                .collect();
            p99.draw_series(LineSeries::new(points, color.stroke_width(2)))?;
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
    fn groups_repeats_per_point() {
        let report = Report {
            runs: vec![
                run("a", 1, 1),
                run("a", 1, 0),
                run("a", 2, 0),
                run("b", 1, 0),
            ],
            ..Report::default()
        };
        let jobs = plan(&report);
        let stems: Vec<&str> = jobs.iter().map(|j| j.stem.as_str()).collect();
        assert_eq!(
            stems,
            [
                "timeseries-w-a-l1",
                "timeseries-w-a-l2",
                "timeseries-w-b-l1"
            ]
        );
        let PlotData::Timeseries(plot) = &jobs[0].data else {
            panic!("wrong plot data");
        };
        let repeats: Vec<u32> = plot.repeats.iter().map(|r| r.repeat).collect();
        assert_eq!(repeats, [0, 1]);
    }
}
