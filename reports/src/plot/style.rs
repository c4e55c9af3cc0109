//! The look shared by every plot: sizes, fonts, the colour of each server, number formats for
//! axes, axis ranges that survive degenerate data, and the panel that says what is missing.
//!
//! Keeping these in one place makes every plot read the same way: a server has one colour in all
//! of them, latency is always in µs/ms/s, and a plot with nothing to draw still renders, with a
//! sentence saying why.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::DrawFailure;
use crate::font::FAMILY;
use crate::model::Estimate;

/// Pixel size of every PNG (and the SVG's viewport).
pub const PLOT_SIZE: (u32, u32) = (1200, 750);

/// Caption (plot title) size in pixels.
pub const CAPTION_SIZE: f64 = 28.0;
/// Axis tick label size.
pub const LABEL_SIZE: f64 = 17.0;
/// Axis description size.
pub const AXIS_DESC_SIZE: f64 = 19.0;
/// Legend text size.
pub const LEGEND_SIZE: f64 = 16.0;

/// Ten colours that stay apart for readers with the common colour-vision deficiencies
/// (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of the `index`-th series (server or repeat), cycling after ten.
pub fn series_color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// The font of plot captions.
pub fn caption_font() -> TextStyle<'static> {
    (FAMILY, CAPTION_SIZE)
        .into_font()
        .style(FontStyle::Bold)
        .into()
}

/// The font of axis tick labels.
pub fn label_font() -> TextStyle<'static> {
    (FAMILY, LABEL_SIZE).into()
}

/// The font of axis descriptions.
pub fn axis_desc_font() -> TextStyle<'static> {
    (FAMILY, AXIS_DESC_SIZE).into()
}

/// The font of legends.
pub fn legend_font() -> TextStyle<'static> {
    (FAMILY, LEGEND_SIZE).into()
}

/// A request rate for an axis or table: `950`, `12.5k`, `1.20M`.
pub fn format_rate(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if magnitude >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if magnitude >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else if magnitude >= 10.0 || value == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// A latency given in microseconds, in the unit that keeps it short: `850 µs`, `1.2 ms`, `3 s`.
pub fn format_micros(micros: f64) -> String {
    let magnitude = micros.abs();
    let (value, unit) = if magnitude >= 1e6 {
        (micros / 1e6, "s")
    } else if magnitude >= 1e3 {
        (micros / 1e3, "ms")
    } else {
        (micros, "µs")
    };
    let digits = if value.abs() >= 100.0 || value == value.trunc() {
        0
    } else if value.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {unit}")
}

/// A linear axis range from zero to a little above the largest finite value; `0..1` when there
/// is nothing positive (all zero throughput still gets a readable axis).
pub fn linear_range_from_zero(values: impl IntoIterator<Item = f64>) -> Range<f64> {
    let max = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    if max > 0.0 {
        0.0..max * 1.12
    } else {
        0.0..1.0
    }
}

/// A log axis range covering the positive finite values with some headroom; `None` when there
/// is no positive value to place on a log axis.
pub fn log_range(values: impl IntoIterator<Item = f64>) -> Option<Range<f64>> {
    let (min, max) = values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if max <= 0.0 {
        return None;
    }
    // At least one decade tall, so a single value still sits between labelled ticks.
    let (low, high) = if max / min < 10.0 {
        let mid = (min * max).sqrt();
        (mid / 3.3, mid * 3.3)
    } else {
        (min / 1.5, max * 1.5)
    };
    Some(low..high)
}

/// Vertical pixels of a plot's drawing area that a full-size chart's plotting area gets (the
/// rest is caption, margins and the x labels).
pub const PLOTTING_HEIGHT: f64 = PLOT_SIZE.1 as f64 - 150.0;

/// The fraction of a plotting area of `height` pixels that a legend of `entries` lines covers
/// at the top, kept empty of data so the legend hides nothing.
pub fn legend_headroom(entries: usize, height: f64) -> f64 {
    let legend = entries as f64 * (LEGEND_SIZE + 5.0) + 30.0;
    (legend / height.max(1.0)).clamp(0.0, 0.6)
}

/// Grow a linear range upward so its top `fraction` stays empty.
pub fn with_headroom(range: Range<f64>, fraction: f64) -> Range<f64> {
    let span = range.end - range.start;
    range.start..range.start + span / (1.0 - fraction.clamp(0.0, 0.9))
}

/// Grow a positive range upward on a log scale so its top `fraction` stays empty.
pub fn with_log_headroom(range: Range<f64>, fraction: f64) -> Range<f64> {
    let decades = (range.end / range.start).log10();
    let grown = decades / (1.0 - fraction.clamp(0.0, 0.9));
    range.start..range.start * 10f64.powf(grown)
}

/// An axis range around the loop counts (or any small set of x values): half a step of margin
/// each side so a single value is centred rather than a zero-width axis.
pub fn padded_range(values: &[f64]) -> Range<f64> {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !min.is_finite() || !max.is_finite() {
        return 0.0..1.0;
    }
    let pad = if max > min {
        ((max - min) * 0.08).max(0.5)
    } else {
        (min.abs() * 0.1).max(0.5)
    };
    (min - pad)..(max + pad)
}

/// The distinct loop counts, ascending, as axis values.
pub fn loop_counts(loops: impl IntoIterator<Item = u32>) -> Vec<f64> {
    let mut counts: Vec<u32> = loops.into_iter().collect();
    counts.sort_unstable();
    counts.dedup();
    counts.into_iter().map(f64::from).collect()
}

/// How a [`TickedAxis`] maps values to pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Equal distances for equal differences.
    Linear,
    /// Equal distances for equal ratios (the range must be positive).
    Log,
}

/// An f64 axis whose ticks sit exactly at chosen values (loop counts, whole decades, 1-2-5 steps
/// of a log axis) and nowhere else. plotters' own `with_key_points` cannot take a custom label
/// formatter on f64 ranges and its log axis leaves the lowest decade unlabelled, hence this small
/// coordinate type.
#[derive(Debug, Clone, PartialEq)]
pub struct TickedAxis {
    range: Range<f64>,
    ticks: Vec<f64>,
    scale: Scale,
}

impl TickedAxis {
    /// A linear axis over `range` with ticks at those of `ticks` that fall inside it.
    pub fn new(range: Range<f64>, ticks: Vec<f64>) -> Self {
        Self::with_scale(range, ticks, Scale::Linear)
    }

    /// A log axis over a positive `range` with ticks at 1, 2 and 5 times each power of ten (then
    /// 1, 2, 3, 5, 7 times, then every integer multiple, when the range is too short to hold
    /// enough such ticks).
    pub fn log(range: Range<f64>) -> Self {
        let low = range.start.max(f64::MIN_POSITIVE);
        let high = if range.end > low {
            range.end
        } else {
            low * 10.0
        };
        let first = low.log10().floor() as i32;
        let last = high.log10().ceil() as i32;
        let candidates = |multiples: &[f64]| -> Vec<f64> {
            (first..=last)
                .flat_map(|k| multiples.iter().map(move |m| m * 10f64.powi(k)))
                .filter(|v| *v >= low && *v <= high)
                .collect()
        };
        let mut ticks = candidates(&[1.0, 2.0, 5.0]);
        if ticks.len() < 4 {
            ticks = candidates(&[1.0, 2.0, 3.0, 5.0, 7.0]);
        }
        if ticks.len() < 3 {
            ticks = candidates(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        }
        Self::with_scale(low..high, ticks, Scale::Log)
    }

    fn with_scale(range: Range<f64>, ticks: Vec<f64>, scale: Scale) -> Self {
        let ticks = ticks
            .into_iter()
            .filter(|t| t.is_finite() && *t >= range.start && *t <= range.end)
            .collect();
        TickedAxis {
            range,
            ticks,
            scale,
        }
    }

    fn position(&self, value: f64) -> f64 {
        match self.scale {
            Scale::Linear => value,
            Scale::Log => value.max(f64::MIN_POSITIVE).log10(),
        }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let start = self.position(self.range.start);
        let span = self.position(self.range.end) - start;
        let fraction = if span > 0.0 {
            (self.position(*value) - start) / span
        } else {
            0.5
        };
        limit.0 + (fraction * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let wanted = hint.max_num_points();
        if wanted == 0 {
            return Vec::new();
        }
        // Too many ticks for the space: keep every n-th so labels do not overlap.
        let stride = self.ticks.len().div_ceil(wanted).max(1);
        self.ticks.iter().copied().step_by(stride).collect()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// A time axis from 0 to `end` seconds with ticks at a whole number of seconds (1, 2, 5, 10,
/// 15, 30, 60 ... apart) so that at most about ten are drawn.
pub fn seconds_axis(end: f64) -> TickedAxis {
    let end = if end.is_finite() && end > 0.0 {
        end
    } else {
        1.0
    };
    let step = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|step| end / step <= 10.0)
    .unwrap_or_else(|| (end / 10.0 / 3600.0).ceil() * 3600.0);
    let ticks = (0..=(end / step).floor() as u64)
        .map(|i| i as f64 * step)
        .collect();
    TickedAxis::new(0.0..end * 1.02, ticks)
}

/// An x axis over loop counts with a tick at each count that was measured (and nowhere else:
/// 1.5 loops means nothing).
pub fn loop_axis(counts: &[f64]) -> TickedAxis {
    TickedAxis::new(padded_range(counts), counts.to_vec())
}

/// The x offset of the `index`-th of `count` series at each loop count, so markers and interval
/// bars of different servers at one loop count sit side by side instead of on top of each other.
/// The spread is a tenth of the smallest gap between loop counts.
pub fn dodge(index: usize, count: usize, loop_counts: &[f64]) -> f64 {
    if count < 2 {
        return 0.0;
    }
    let gap = loop_counts
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min);
    let gap = if gap.is_finite() && gap > 0.0 {
        gap
    } else {
        1.0
    };
    let step = gap * 0.1 / (count - 1) as f64;
    (index as f64 - (count - 1) as f64 / 2.0) * step
}

/// Whether an interval can be drawn as an error bar: finite, ordered, and not a single point.
pub fn interval_is_drawable(estimate: &Estimate) -> bool {
    estimate.low.is_finite()
        && estimate.high.is_finite()
        && estimate.low <= estimate.median
        && estimate.median <= estimate.high
        && estimate.high > estimate.low
}

/// Write a one-line caveat at the bottom of a drawn plot (e.g. all throughput was zero).
pub fn draw_note<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    note: &str,
) -> Result<(), DrawFailure> {
    let (width, height) = area.dim_in_pixel();
    let style = TextStyle::from((FAMILY, 18.0).into_font().style(FontStyle::Oblique))
        .color(&RGBColor(170, 30, 30))
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    area.draw(&Text::new(
        note.to_string(),
        (width as i32 / 2, height as i32 - 4),
        style,
    ))?;
    Ok(())
}

/// Fill the area and write a caption plus a centred explanation of what is missing, for a plot
/// that has no data to draw.
pub fn draw_missing<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    lines: &[String],
) -> Result<(), DrawFailure> {
    let (width, height) = area.dim_in_pixel();
    let titled = area.margin(12, 0, 0, 0).titled(caption, caption_font())?;
    let centre_x = width as i32 / 2;
    let first_y = height as i32 / 2 - 40 - (lines.len() as i32 - 1) * 14;
    let style = TextStyle::from((FAMILY, 22.0).into_font())
        .color(&RGBColor(90, 90, 90))
        .pos(Pos::new(HPos::Center, VPos::Center));
    for (i, line) in lines.iter().enumerate() {
        titled.draw(&Text::new(
            line.clone(),
            (centre_x, first_y + i as i32 * 30),
            style.clone(),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_short() {
        assert_eq!(format_rate(0.0), "0");
        assert_eq!(format_rate(950.0), "950");
        assert_eq!(format_rate(1_500.0), "1.5k");
        assert_eq!(format_rate(125_000.0), "125k");
        assert_eq!(format_rate(2_345_678.0), "2.35M");
        assert_eq!(format_rate(0.5), "0.50");
    }

    #[test]
    fn micros_pick_a_unit() {
        assert_eq!(format_micros(850.0), "850 µs");
        assert_eq!(format_micros(12.5), "12.5 µs");
        assert_eq!(format_micros(1_200.0), "1.20 ms");
        assert_eq!(format_micros(3_000_000.0), "3 s");
        assert_eq!(format_micros(100.0), "100 µs");
    }

    #[test]
    fn ranges_survive_degenerate_data() {
        assert_eq!(linear_range_from_zero([0.0, 0.0]), 0.0..1.0);
        assert_eq!(linear_range_from_zero([f64::NAN]), 0.0..1.0);
        assert!(linear_range_from_zero([10.0]).end > 10.0);
        assert!(log_range([0.0, -1.0, f64::NAN]).is_none());
        let single = log_range([100.0]).unwrap();
        assert!(single.start < 100.0 && single.end > 100.0);
        let wide = log_range([1.0, 1000.0]).unwrap();
        assert!(wide.start < 1.0 && wide.end > 1000.0);
        let one = padded_range(&[4.0]);
        assert!(one.start < 4.0 && one.end > 4.0);
        assert_eq!(padded_range(&[]), 0.0..1.0);
    }

    #[test]
    fn headroom_leaves_top_fraction_empty() {
        let grown = with_headroom(0.0..75.0, 0.25);
        assert!((grown.end - 100.0).abs() < 1e-9);
        let grown = with_log_headroom(10.0..1000.0, 0.5);
        assert!((grown.end - 100_000.0).abs() < 1e-6);
        assert!(legend_headroom(3, 600.0) > 0.1 && legend_headroom(100, 600.0) <= 0.6);
    }

    #[test]
    fn ticked_axis_maps_and_thins() {
        let axis = TickedAxis::new(0.0..10.0, (0..=10).map(f64::from).chain([42.0]).collect());
        assert_eq!(axis.map(&5.0, (0, 100)), 50);
        assert_eq!(axis.key_points(11usize).len(), 11);
        assert_eq!(axis.key_points(4usize), [0.0, 3.0, 6.0, 9.0]);
        assert!(axis.key_points(0usize).is_empty());
        let flat = TickedAxis::new(3.0..3.0, vec![3.0]);
        assert_eq!(flat.map(&3.0, (0, 100)), 50);
    }

    #[test]
    fn log_axis_ticks_one_two_five() {
        let axis = TickedAxis::log(26.0..800.0);
        assert_eq!(axis.key_points(20usize), [50.0, 100.0, 200.0, 500.0]);
        assert_eq!(axis.map(&100.0, (0, 100)), axis.map(&100.0, (0, 100)));
        let decade = TickedAxis::log(10.0..1000.0);
        assert_eq!(decade.map(&100.0, (0, 100)), 50);
        let short = TickedAxis::log(30.0..90.0);
        assert!(
            short.key_points(20usize).len() >= 3,
            "{:?}",
            short.key_points(20usize)
        );
        let bad = TickedAxis::log(0.0..0.0);
        assert!(bad.range().start > 0.0 && bad.range().end > bad.range().start);
    }

    #[test]
    fn dodge_centres_series_around_the_loop_count() {
        assert_eq!(dodge(0, 1, &[1.0, 2.0]), 0.0);
        let offsets: Vec<f64> = (0..3).map(|i| dodge(i, 3, &[1.0, 2.0, 4.0])).collect();
        assert!((offsets[0] + 0.05).abs() < 1e-12 && offsets[1] == 0.0);
        assert!((offsets[2] - 0.05).abs() < 1e-12);
        assert!((dodge(1, 2, &[8.0]) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn seconds_axis_ticks_whole_seconds() {
        assert_eq!(
            seconds_axis(4.0).key_points(20usize),
            [0.0, 1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(
            seconds_axis(60.0).key_points(20usize),
            [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
        );
        assert_eq!(seconds_axis(f64::NAN).key_points(20usize), [0.0, 1.0]);
    }

    #[test]
    fn palette_cycles() {
        assert_eq!(series_color(0), series_color(10));
        assert_ne!(series_color(0), series_color(1));
    }
}
