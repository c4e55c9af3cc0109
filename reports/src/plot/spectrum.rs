//! The HDR percentile spectrum: for one load at one loop count, latency against percentile with
//! the x axis as `1/(1-p)` on a log scale (90%, 99%, 99.9% ... one decade apart), one curve per
//! server, from the HdrHistograms the load generator recorded.
//!
//! Percentile summaries hide the shape of the tail; this plot shows where each server's latency
//! bends upward and how far its worst samples reach. A server without a histogram is named under
//! the plot rather than silently left out.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, series_color};
use super::{chart, load_groups, load_label, slugify, DrawFailure, PlotData, PlotJob, PlotKind};
use crate::hdr::{self, decade_label, SpectrumPoint};
use crate::model::{rates_equal, LatencyHistogram, Report};

/// Points sampled along each curve.
const SPECTRUM_STEPS: usize = 240;

/// One server's spectrum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpectrumCurve {
    /// Server name (legend label).
    pub server: String,
    /// Index of the server in the report's server order (fixes its colour).
    pub color_index: usize,
    /// Samples recorded in the histogram.
    pub count: u64,
    /// The curve, ascending in percentile.
    pub points: Vec<SpectrumPoint>,
}

/// The data of one spectrum plot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpectrumPlot {
    /// Servers with a usable histogram.
    pub curves: Vec<SpectrumCurve>,
    /// Servers measured at this point without a usable histogram, with the reason.
    pub missing: Vec<(String, String)>,
}

/// One plot per load and loop count.
pub fn plan(report: &Report, servers: &[String]) -> Vec<PlotJob> {
    let mut jobs = Vec::new();
    for (workload, rate) in load_groups(report) {
        let at_load: Vec<_> = report
            .points
            .iter()
            .filter(|p| p.key.workload == workload && rates_equal(p.key.offered_rate, rate))
            .collect();
        for loops in style::loop_counts(at_load.iter().map(|p| p.key.loops)) {
            let loops = loops as u32;
            let mut plot = SpectrumPlot::default();
            for (color_index, server) in servers.iter().enumerate() {
                // Named as what ran at this load (a transport's variant).
                let name = report.name_at(server, &workload);
                for point in at_load
                    .iter()
                    .filter(|p| &p.key.server == server && p.key.loops == loops)
                {
                    match &point.histogram {
                        LatencyHistogram::Recorded(histogram) if !histogram.is_empty() => {
                            plot.curves.push(SpectrumCurve {
                                server: name.clone(),
                                color_index,
                                count: histogram.len(),
                                points: hdr::spectrum(histogram, SPECTRUM_STEPS),
                            })
                        }
                        LatencyHistogram::Recorded(_) => plot
                            .missing
                            .push((name.clone(), "histogram holds no samples".into())),
                        LatencyHistogram::Missing => plot
                            .missing
                            .push((name.clone(), "no histogram in the results".into())),
                        LatencyHistogram::Invalid(reason) => {
                            plot.missing.push((name.clone(), reason.clone()))
                        }
                    }
                }
            }
            let mut stem = format!("{}-{}", PlotKind::Spectrum.slug(), slugify(&workload));
            if let Some(rate) = rate {
                stem.push_str(&format!("-r{}", slugify(&format!("{rate}"))));
            }
            stem.push_str(&format!("-l{loops}"));
            jobs.push(PlotJob {
                kind: PlotKind::Spectrum,
                stem,
                title: format!(
                    "Latency spectrum · {} · {loops} loop{}",
                    load_label(&workload, rate),
                    if loops == 1 { "" } else { "s" }
                ),
                data: PlotData::Spectrum(plot),
            });
        }
    }
    jobs
}

impl SpectrumPlot {
    /// Paint the plot (or a note saying which histograms are missing).
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), DrawFailure> {
        let missing_lines: Vec<String> = self
            .missing
            .iter()
            .map(|(server, reason)| format!("{server}: {reason}"))
            .collect();
        let y_range = style::log_range(
            self.curves
                .iter()
                .flat_map(|c| c.points.iter().map(|p| p.micros)),
        );
        let Some(y_range) = y_range else {
            let mut lines = vec!["No latency histogram to draw a spectrum from.".to_string()];
            lines.extend(missing_lines);
            return style::draw_missing(root, title, &lines);
        };
        let y_range = style::with_log_headroom(
            y_range,
            style::legend_headroom(self.curves.len(), style::PLOTTING_HEIGHT),
        );
        let decades = self
            .curves
            .iter()
            .flat_map(|c| c.points.last().map(|p| p.decades))
            .fold(1.0f64, f64::max)
            .ceil();
        let ticks: Vec<f64> = (0..=decades as u32).map(f64::from).collect();
        let chart_area = if missing_lines.is_empty() {
            root.clone()
        } else {
            root.margin(0, 34, 0, 0)
        };
        let mut chart = ChartBuilder::on(&chart_area)
            .caption(title, style::caption_font())
            .margin(20)
            .margin_right(60)
            .x_label_area_size(60)
            .y_label_area_size(100)
            .build_cartesian_2d(
                style::TickedAxis::new(0.0..decades, ticks),
                style::TickedAxis::log(y_range),
            )?;
        chart
            .configure_mesh()
            .x_desc("percentile (x = 1/(1-p), log scale)")
            .y_desc("latency (log scale)")
            .label_style(style::label_font())
            .max_light_lines(4)
            .axis_desc_style(style::axis_desc_font())
            .x_label_formatter(&|x| decade_label(*x))
            .y_label_formatter(&|y| style::format_micros(*y))
            .draw()?;
        for curve in &self.curves {
            let color = series_color(curve.color_index);
            let points: Vec<(f64, f64)> = curve
                .points
                .iter()
                .filter(|p| p.micros > 0.0)
                .map(|p| (p.decades, p.micros))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(3)))?
                .label(format!(
                    "{} ({} samples)",
                    curve.server,
                    style::format_rate(curve.count as f64)
                ))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
        chart::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        if !missing_lines.is_empty() {
            style::draw_note(
                root,
                &format!("no spectrum for {}", missing_lines.join("; ")),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Estimate, LatencySummary, PointKey, PointSummary};
    use hdrhistogram::Histogram;

    fn point(server: &str, histogram: LatencyHistogram) -> PointSummary {
        PointSummary {
            key: PointKey {
                server: server.into(),
                loops: 2,
                workload: "w".into(),
                offered_rate: None,
            },
            throughput: Estimate::default(),
            latency_us: LatencySummary::default(),
            histogram,
            throughput_ratios: Vec::new(),
        }
    }

    #[test]
    fn splits_curves_from_missing_histograms() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in 1..1000u64 {
            h.record(v * 1000).unwrap();
        }
        let report = Report {
            points: vec![
                point("a", LatencyHistogram::Recorded(Box::new(h))),
                point("b", LatencyHistogram::Missing),
                point("c", LatencyHistogram::Invalid("bad base64".into())),
            ],
            ..Report::default()
        };
        let jobs = plan(&report, &report.server_order());
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].stem, "spectrum-w-l2");
        let PlotData::Spectrum(plot) = &jobs[0].data else {
            panic!("wrong plot data");
        };
        assert_eq!(plot.curves.len(), 1);
        assert_eq!(plot.curves[0].count, 999);
        assert_eq!(plot.missing.len(), 2);
        assert_eq!(plot.missing[1].1, "bad base64");
    }
}
