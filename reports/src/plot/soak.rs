//! Soak plots (`harness soak`): one figure per server with a stacked panel per series over the
//! soak's seconds — resident memory, CPU, open descriptors, connections, and the well-behaved
//! p99 — with the phase boundaries (clean, mixed, alone, recovery) drawn as dashed lines across
//! every panel, so a step in memory or latency can be read against what the clients were doing.
//!
//! Unlike the sweep plots this one is not planned from a `Report`: the harness hands it plain
//! series read from its soak.json, and it draws them. Same look as the other plots (fonts,
//! colours, axes from [`super::style`]).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, series_color};
use super::DrawFailure;
use crate::error::ReportError;

/// Height of one panel in pixels.
const PANEL_HEIGHT: u32 = 230;
/// Height of the caption band.
const CAPTION_HEIGHT: u32 = 50;

/// One line of a panel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoakSeries {
    /// Legend label.
    pub label: String,
    /// `(seconds, value)`.
    pub points: Vec<(f64, f64)>,
}

/// One stacked panel: a y quantity over the soak's seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoakPanel {
    /// Axis description with the unit, e.g. `RSS (MiB)`.
    pub y_desc: String,
    /// Log y axis (latency).
    pub log: bool,
    /// Formats y tick labels as microseconds (latency).
    pub micros: bool,
    pub series: Vec<SoakSeries>,
}

/// A whole soak figure for one server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoakPlot {
    pub title: String,
    /// Seconds at which a phase ends, with the name of the phase that starts there.
    pub phase_marks: Vec<(f64, String)>,
    /// Length of the soak, seconds (x axis end).
    pub end_secs: f64,
    pub panels: Vec<SoakPanel>,
}

impl SoakPlot {
    /// Pixel size of the figure.
    pub fn size(&self) -> (u32, u32) {
        (
            style::PLOT_SIZE.0,
            CAPTION_HEIGHT + PANEL_HEIGHT * self.panels.len().max(1) as u32,
        )
    }

    /// Draw onto any backend.
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawFailure> {
        root.fill(&WHITE)?;
        let titled = root.titled(&self.title, style::caption_font())?;
        if self.panels.is_empty() {
            return style::draw_missing(&titled, "soak", &["No samples were taken.".into()]);
        }
        let areas = titled.split_evenly((self.panels.len(), 1));
        for (i, (panel, area)) in self.panels.iter().zip(areas.iter()).enumerate() {
            let last = i + 1 == self.panels.len();
            self.draw_panel(panel, area, last)?;
        }
        Ok(())
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        panel: &SoakPanel,
        area: &DrawingArea<DB, Shift>,
        last: bool,
    ) -> Result<(), DrawFailure> {
        let values: Vec<f64> = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .collect();
        let x_axis = style::seconds_axis(self.end_secs);
        let y_axis = if panel.log {
            match style::log_range(values.iter().copied().filter(|v| *v > 0.0)) {
                Some(range) => style::TickedAxis::log(style::with_log_headroom(range, 0.1)),
                None => {
                    return style::draw_missing(area, &panel.y_desc, &["No data.".into()]);
                }
            }
        } else {
            let range =
                style::with_headroom(style::linear_range_from_zero(values.iter().copied()), 0.1);
            let step = nice_step(range.end - range.start);
            let ticks = (0..=((range.end / step).floor() as u64))
                .map(|i| i as f64 * step)
                .collect();
            style::TickedAxis::new(range, ticks)
        };
        let mut chart = ChartBuilder::on(area)
            .margin(10)
            .x_label_area_size(if last { 45 } else { 25 })
            .y_label_area_size(100)
            .build_cartesian_2d(x_axis, y_axis)?;
        let micros = panel.micros;
        let format_y = |y: &f64| {
            if micros {
                style::format_micros(*y)
            } else {
                style::format_rate(*y)
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.y_desc(panel.y_desc.as_str())
            .label_style(style::label_font())
            .axis_desc_style(style::axis_desc_font())
            .max_light_lines(2)
            .x_label_formatter(&|t| format!("{t:.0} s"))
            .y_label_formatter(&format_y);
        if last {
            mesh.x_desc("seconds since the soak began");
        }
        mesh.draw()?;
        let (y_low, y_high) = {
            let r = chart.y_range();
            (r.start, r.end)
        };
        for (t, name) in &self.phase_marks {
            let grey = RGBColor(120, 120, 120);
            chart.draw_series(DashedLineSeries::new(
                vec![(*t, y_low), (*t, y_high)],
                6,
                4,
                grey.stroke_width(1),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                name.clone(),
                (*t, y_high),
                style::legend_font().color(&grey),
            )))?;
        }
        for (i, series) in panel.series.iter().enumerate() {
            let color = series_color(i);
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite() && (!panel.log || p.1 > 0.0))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(series.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
        super::chart::draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }

    /// Draw into `<dir>/<stem>.png` and `<dir>/<stem>.svg`; returns both paths.
    pub fn render_files(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), ReportError> {
        crate::font::ensure_registered()?;
        let png = dir.join(format!("{stem}.png"));
        let svg = dir.join(format!("{stem}.svg"));
        super::chart::write_png_and_svg(self, &png, &svg, self.size())?;
        Ok((png, svg))
    }
}

impl super::chart::Figure for SoakPlot {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        self.draw(root)
    }
}

/// A 1-2-5 tick step giving about five ticks over `span`.
fn nice_step(span: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    step.max(f64::MIN_POSITIVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot() -> SoakPlot {
        let line = |f: fn(f64) -> f64| SoakSeries {
            label: "x".into(),
            points: (0..60).map(|t| (t as f64, f(t as f64))).collect(),
        };
        SoakPlot {
            title: "gev-echo soak".into(),
            phase_marks: vec![(12.0, "mixed".into()), (42.0, "alone".into())],
            end_secs: 60.0,
            panels: vec![
                SoakPanel {
                    y_desc: "RSS (MiB)".into(),
                    series: vec![line(|t| 10.0 + t / 10.0)],
                    ..SoakPanel::default()
                },
                SoakPanel {
                    y_desc: "p99".into(),
                    log: true,
                    micros: true,
                    series: vec![line(|t| 100.0 + t)],
                },
            ],
        }
    }

    #[test]
    fn renders_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let (png, svg) = plot().render_files(dir.path(), "soak-gev-echo").unwrap();
        assert!(std::fs::metadata(png).unwrap().len() > 1000);
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(text.contains("RSS (MiB)") && text.contains("mixed"));
    }

    #[test]
    fn empty_data_still_draws() {
        let dir = tempfile::tempdir().unwrap();
        let mut empty = plot();
        empty.panels[1].series[0].points.clear();
        empty.render_files(dir.path(), "a").unwrap();
        empty.panels.clear();
        empty.render_files(dir.path(), "b").unwrap();
    }

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(100.0), 20.0);
        assert_eq!(nice_step(7.0), 2.0);
        assert_eq!(nice_step(0.0), 1.0);
    }
}
