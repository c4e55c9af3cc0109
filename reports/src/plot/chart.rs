//! Chart scaffolding shared by the plot kinds: writing a figure as PNG and SVG, the legend box,
//! one plot per load, and grouped bars with 95% interval whiskers (the TLS and transports plots).
//!
//! Each plot kind keeps what it alone decides (which data, which axes); what every kind draws
//! the same way lives here once, so the figures keep one look and a change of look is one edit.

use std::ops::Range;
use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    load_groups, load_label, load_stem, series_by_loops, style, DrawFailure, PlotData, PlotJob,
    PlotKind, ServerSeries,
};
use crate::error::ReportError;
use crate::model::{Estimate, PointSummary, Report};

/// Something drawable onto any plotters backend (a plot job, a soak figure).
pub trait Figure {
    /// Paint onto the drawing area.
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure>;
}

/// Draw `figure` at `size` into the files `png` and `svg`.
pub fn write_png_and_svg(
    figure: &impl Figure,
    png: &Path,
    svg: &Path,
    size: (u32, u32),
) -> Result<(), ReportError> {
    fn present<DB: DrawingBackend>(
        figure: &impl Figure,
        root: DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), ReportError> {
        figure
            .paint(&root)
            .and_then(|()| root.present().map_err(DrawFailure::from))
            .map_err(|failure| ReportError::Draw {
                path: path.to_path_buf(),
                message: failure.0,
            })
    }
    present(
        figure,
        BitMapBackend::new(png, size).into_drawing_area(),
        png,
    )?;
    present(figure, SVGBackend::new(svg, size).into_drawing_area(), svg)
}

/// Draw the series labels as the legend box every plot uses, at `position`.
pub fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), DrawFailure>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font(style::legend_font())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// One plot per load (workload × offered rate) of the report: `lines` picks the plot's series
/// for a load (none: no plot), `data` wraps them; titled `<what> · <load>`, `what` by `kind`.
pub fn plan_per_load<T>(
    report: &Report,
    kind: PlotKind,
    lines: impl Fn(&str, Option<f64>) -> Vec<T>,
    data: impl Fn(Vec<T>) -> PlotData,
) -> Vec<PlotJob> {
    load_groups(report)
        .into_iter()
        .filter_map(|(workload, rate)| {
            let lines = lines(&workload, rate);
            // A load seen only in run time series has no summary to plot here.
            if lines.is_empty() {
                return None;
            }
            Some(PlotJob {
                kind,
                stem: load_stem(kind, &workload, rate),
                title: format!("{} · {}", per_load_title(kind), load_label(&workload, rate)),
                data: data(lines),
            })
        })
        .collect()
}

/// [`plan_per_load`] with each server's figure `pick`ed from its points at every loop count.
pub fn plan_points_per_load<T>(
    report: &Report,
    servers: &[String],
    kind: PlotKind,
    pick: impl Fn(&PointSummary) -> T + Copy,
    data: impl Fn(Vec<ServerSeries<T>>) -> PlotData,
) -> Vec<PlotJob> {
    let lines = |workload: &str, rate| series_by_loops(report, servers, workload, rate, pick);
    plan_per_load(report, kind, lines, data)
}

/// What a per-load plot of `kind` shows, for its caption.
fn per_load_title(kind: PlotKind) -> &'static str {
    match kind {
        PlotKind::Throughput => "Throughput vs loops",
        PlotKind::ServerCost => "Server CPU per request vs loops",
        PlotKind::Latency => "Latency vs loops",
        _ => kind.heading(),
    }
}

/// The `-r<rate>` file stem suffix of an open-loop load (empty for closed loop).
pub fn rate_suffix(rate: Option<f64>) -> String {
    rate.map(|rate| format!("-r{}", super::slugify(&format!("{rate}"))))
        .unwrap_or_default()
}

/// A bar chart's coordinates: one group per category at x = 0, 1, ….
pub type BarChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Build a grouped-bar chart on `area`: one group per `names` entry (the x labels), the given
/// y range and axis texts. `caption` draws a title above it.
pub fn grouped_bar_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: Option<&str>,
    names: &[String],
    y_range: Range<f64>,
    x_desc: &str,
    y_desc: &str,
    y_format: fn(f64) -> String,
) -> Result<BarChart<'a, DB>, DrawFailure> {
    let groups = names.len();
    let mut builder = ChartBuilder::on(area);
    match caption {
        Some(title) => builder
            .caption(title, style::caption_font())
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(100),
        None => builder
            .margin(16)
            .x_label_area_size(55)
            .y_label_area_size(85),
    };
    let mut chart = builder.build_cartesian_2d(-0.5f64..groups as f64 - 0.5, y_range)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.max(1))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(style::label_font())
        .axis_desc_style(style::axis_desc_font())
        .x_label_formatter(&|x| {
            let index = x.round();
            if (x - index).abs() < 1e-6 && index >= 0.0 {
                names.get(index as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| y_format(*y))
        .draw()?;
    Ok(chart)
}

/// Where the `index`-th of `count` bars of a group sits: its left edge in group `group` and the
/// width of one bar (the bars of a group share 0.8 of the unit).
pub fn bar_slot(group: usize, index: usize, count: usize) -> (f64, f64) {
    let width = 0.8 / count.max(1) as f64;
    (group as f64 - 0.4 + index as f64 * width, width)
}

/// Draw the `index`-th of `count` bars in each group listed in `bars` (`(group, estimate)`),
/// filled with `color`, with a black 95% interval whisker (`whisker` px wide) where drawable;
/// `label` adds a legend entry.
pub fn draw_bars<DB: DrawingBackend>(
    chart: &mut BarChart<'_, DB>,
    bars: &[(usize, Estimate)],
    index: usize,
    count: usize,
    color: RGBColor,
    label: Option<String>,
    whisker: u32,
) -> Result<(), DrawFailure> {
    let series = chart.draw_series(bars.iter().map(|(group, e)| {
        let (left, width) = bar_slot(*group, index, count);
        Rectangle::new(
            [(left + 0.01, 0.0), (left + width - 0.01, e.median)],
            color.filled(),
        )
    }))?;
    if let Some(label) = label {
        series
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled()));
    }
    chart.draw_series(
        bars.iter()
            .filter(|(_, e)| style::interval_is_drawable(e))
            .map(|(group, e)| {
                let (left, width) = bar_slot(*group, index, count);
                ErrorBar::new_vertical(
                    left + width / 2.0,
                    e.low,
                    e.median,
                    e.high,
                    BLACK.stroke_width(2),
                    whisker,
                )
            }),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_of_a_group_share_its_unit() {
        assert_eq!(bar_slot(0, 0, 2), (-0.4, 0.4));
        let (left, width) = bar_slot(3, 1, 2);
        assert!((left - 3.0).abs() < 1e-12 && (width - 0.4).abs() < 1e-12);
        assert_eq!(bar_slot(1, 0, 0).1, 0.8);
    }

    #[test]
    fn rate_suffix_only_for_open_loop() {
        assert_eq!(rate_suffix(None), "");
        assert_eq!(rate_suffix(Some(1500.0)), "-r1500");
    }
}
