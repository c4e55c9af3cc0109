//! Plots: turns a [`Report`] into a list of [`PlotJob`]s (one per file to draw) and draws each
//! as a PNG and an SVG.
//!
//! Each plot kind lives in its own file and has two halves: `plan` picks the data for each file
//! from the report (grouping by workload, loop count, server or run) into owned plain data, and
//! `draw` paints one job onto any plotters backend. Planning is cheap and sequential; drawing is
//! what `render` spreads over threads. Every kind draws something for every job it plans: when
//! data is missing the image says so instead of the renderer failing.

pub mod chart;
pub mod latency;
pub mod offered_load;
pub mod server_cost;
pub mod soak;
pub mod spectrum;
pub mod style;
#[cfg(test)]
mod test_points;
pub mod throughput;
pub mod timeseries;
pub mod tls;
pub mod transports;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::ReportError;
use crate::model::{rates_equal, Report};

/// What a plot shows; also its section in report.md and index.html.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlotKind {
    /// Throughput vs loop count, one line per server, with 95% interval bars.
    Throughput,
    /// Server CPU time per request vs loop count, beside the throughput plot.
    ServerCost,
    /// Latency p50/p99/p99.9 vs loop count.
    Latency,
    /// HDR percentile spectrum, one curve per server.
    Spectrum,
    /// Latency vs offered load (open-loop sweeps only).
    OfferedLoad,
    /// Throughput and p99 over time for each run.
    Timeseries,
    /// Throughput with and without TLS, and TLS handshakes per second.
    Tls,
    /// One server's throughput and CPU per request over TCP, Unix sockets and UDP.
    Transports,
}

impl PlotKind {
    /// All kinds in report order.
    pub const ALL: [PlotKind; 8] = [
        PlotKind::Throughput,
        PlotKind::ServerCost,
        PlotKind::Latency,
        PlotKind::Spectrum,
        PlotKind::OfferedLoad,
        PlotKind::Timeseries,
        PlotKind::Tls,
        PlotKind::Transports,
    ];

    /// Section heading.
    pub fn heading(self) -> &'static str {
        match self {
            PlotKind::Throughput => "Throughput vs loop count",
            PlotKind::ServerCost => "Server CPU per request vs loop count",
            PlotKind::Latency => "Latency percentiles vs loop count",
            PlotKind::Spectrum => "Latency percentile spectrum",
            PlotKind::OfferedLoad => "Latency vs offered load",
            PlotKind::Timeseries => "Throughput and p99 over time",
            PlotKind::Tls => "TLS: throughput with and without, handshakes per second",
            PlotKind::Transports => "Transports: TCP, Unix socket and UDP for the same server",
        }
    }

    /// File name prefix.
    pub fn slug(self) -> &'static str {
        match self {
            PlotKind::Throughput => "throughput",
            PlotKind::ServerCost => "server-cost",
            PlotKind::Latency => "latency",
            PlotKind::Spectrum => "spectrum",
            PlotKind::OfferedLoad => "offered-load",
            PlotKind::Timeseries => "timeseries",
            PlotKind::Tls => "tls",
            PlotKind::Transports => "transports",
        }
    }
}

/// The data of one plot file, owned so jobs can be drawn on any thread.
#[derive(Debug, Clone)]
pub enum PlotData {
    /// See [`throughput`].
    Throughput(throughput::ThroughputPlot),
    /// See [`server_cost`].
    ServerCost(server_cost::ServerCostPlot),
    /// See [`latency`].
    Latency(latency::LatencyPlot),
    /// See [`spectrum`].
    Spectrum(spectrum::SpectrumPlot),
    /// See [`offered_load`].
    OfferedLoad(offered_load::OfferedLoadPlot),
    /// See [`timeseries`].
    Timeseries(timeseries::TimeseriesPlot),
    /// See [`tls`].
    Tls(tls::TlsPlot),
    /// See [`transports`].
    Transports(transports::TransportsPlot),
}

/// One plot file to draw.
#[derive(Debug, Clone)]
pub struct PlotJob {
    /// What it shows.
    pub kind: PlotKind,
    /// File name without extension, unique within a report.
    pub stem: String,
    /// Caption drawn on the plot and used as its alt text.
    pub title: String,
    /// What to draw.
    pub data: PlotData,
}

/// A drawn plot: its two files.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedPlot {
    /// What it shows.
    pub kind: PlotKind,
    /// Its caption.
    pub title: String,
    /// The PNG file.
    pub png: PathBuf,
    /// The SVG file.
    pub svg: PathBuf,
}

/// A backend failure while drawing, as text (backends have differing error types).
#[derive(Debug, Clone, PartialEq)]
pub struct DrawFailure(pub String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawFailure {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        DrawFailure(error.to_string())
    }
}

/// Plan every plot of a report, in report order, with unique file stems.
pub fn plan(report: &Report) -> Vec<PlotJob> {
    let servers = report.server_order();
    let mut jobs = Vec::new();
    jobs.extend(throughput::plan(report, &servers));
    jobs.extend(server_cost::plan(report, &servers));
    jobs.extend(latency::plan(report, &servers));
    jobs.extend(spectrum::plan(report, &servers));
    jobs.extend(offered_load::plan(report, &servers));
    jobs.extend(timeseries::plan(report));
    jobs.extend(tls::plan(report, &servers));
    jobs.extend(transports::plan(report, &servers));
    make_stems_unique(&mut jobs);
    jobs
}

/// One server's values at each loop count, for the plots drawn against loops.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerSeries<T> {
    /// Server name (legend label).
    pub server: String,
    /// Index of the server in the report's server order (fixes its colour).
    pub color_index: usize,
    /// `(loops, value)` sorted by loops.
    pub points: Vec<(u32, T)>,
}

/// For one load (workload × offered rate), each server's value picked by `pick` at every loop
/// count it was measured at; servers with no point at this load are left out.
pub fn series_by_loops<T>(
    report: &Report,
    servers: &[String],
    workload: &str,
    rate: Option<f64>,
    pick: impl Fn(&crate::model::PointSummary) -> T,
) -> Vec<ServerSeries<T>> {
    series_by_loops_of(report, servers, workload, rate, || {
        report.points.iter().map(|p| (&p.key, Some(pick(p))))
    })
}

/// [`series_by_loops`] over any keyed figures (`None`: not measured there), e.g. the costs.
/// Each series is labelled with what ran at the load ([`Report::name_at`]).
pub fn series_by_loops_of<'r, T, I>(
    report: &Report,
    servers: &[String],
    workload: &str,
    rate: Option<f64>,
    figures: impl Fn() -> I,
) -> Vec<ServerSeries<T>>
where
    I: Iterator<Item = (&'r crate::model::PointKey, Option<T>)>,
{
    servers
        .iter()
        .enumerate()
        .filter_map(|(color_index, server)| {
            let mut points: Vec<(u32, T)> = figures()
                .filter(|(key, _)| {
                    &key.server == server
                        && key.workload == workload
                        && rates_equal(key.offered_rate, rate)
                })
                .filter_map(|(key, value)| value.map(|v| (key.loops, v)))
                .collect();
            points.sort_by_key(|(loops, _)| *loops);
            (!points.is_empty()).then(|| ServerSeries {
                server: report.name_at(server, workload),
                color_index,
                points,
            })
        })
        .collect()
}

/// The distinct loads of a report (workload × offered rate), in order of first appearance within
/// each workload, rates ascending with closed loop first.
pub fn load_groups(report: &Report) -> Vec<(String, Option<f64>)> {
    let mut groups: Vec<(String, Option<f64>)> = Vec::new();
    for workload in report.workloads() {
        let mut rates: Vec<Option<f64>> = Vec::new();
        let keys = report
            .points
            .iter()
            .map(|p| &p.key)
            .chain(report.runs.iter().map(|r| &r.key))
            .filter(|k| k.workload == workload);
        for key in keys {
            if !rates.iter().any(|r| rates_equal(*r, key.offered_rate)) {
                rates.push(key.offered_rate);
            }
        }
        rates.sort_by(|a, b| match (a, b) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(a), Some(b)) => a.total_cmp(b),
        });
        groups.extend(rates.into_iter().map(|rate| (workload.clone(), rate)));
    }
    groups
}

/// A load's label for captions: the workload, plus the offered rate for open-loop points.
pub fn load_label(workload: &str, rate: Option<f64>) -> String {
    match rate {
        Some(rate) => format!("{workload} · {} req/s offered", style::format_rate(rate)),
        None => workload.to_string(),
    }
}

/// A file stem for a plot of one load: `<kind>-<workload>[-r<rate>]`.
pub fn load_stem(kind: PlotKind, workload: &str, rate: Option<f64>) -> String {
    match rate {
        Some(rate) => format!(
            "{}-{}-r{}",
            kind.slug(),
            slugify(workload),
            slugify(&format!("{rate}"))
        ),
        None => format!("{}-{}", kind.slug(), slugify(workload)),
    }
}

/// Turn free text (a workload label, a server name) into a file-name-safe slug.
pub fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if c == '.' && !slug.ends_with(['-', '.']) && !slug.is_empty() {
            slug.push('.');
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let trimmed = slug.trim_end_matches(['-', '.']);
    if trimmed.is_empty() {
        "x".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Two labels may slug alike (`a b` and `a-b`): number the later ones.
fn make_stems_unique(jobs: &mut [PlotJob]) {
    let mut seen = std::collections::HashSet::new();
    for job in jobs.iter_mut() {
        if !seen.insert(job.stem.clone()) {
            let mut n = 2;
            while !seen.insert(format!("{}-{n}", job.stem)) {
                n += 1;
            }
            job.stem = format!("{}-{n}", job.stem);
        }
    }
}

impl PlotJob {
    /// Paint this job onto a drawing area of any backend.
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawFailure> {
        root.fill(&WHITE)?;
        match &self.data {
            PlotData::Throughput(plot) => plot.draw(root, &self.title),
            PlotData::ServerCost(plot) => plot.draw(root, &self.title),
            PlotData::Latency(plot) => plot.draw(root, &self.title),
            PlotData::Spectrum(plot) => plot.draw(root, &self.title),
            PlotData::OfferedLoad(plot) => plot.draw(root, &self.title),
            PlotData::Timeseries(plot) => plot.draw(root, &self.title),
            PlotData::Tls(plot) => plot.draw(root, &self.title),
            PlotData::Transports(plot) => plot.draw(root, &self.title),
        }
    }

    /// Draw this job into `<dir>/<stem>.png` and `<dir>/<stem>.svg`.
    pub fn render_files(&self, dir: &Path) -> Result<RenderedPlot, ReportError> {
        let png = dir.join(format!("{}.png", self.stem));
        let svg = dir.join(format!("{}.svg", self.stem));
        chart::write_png_and_svg(self, &png, &svg, style::PLOT_SIZE)?;
        Ok(RenderedPlot {
            kind: self.kind,
            title: self.title.clone(),
            png,
            svg,
        })
    }
}

impl chart::Figure for PlotJob {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawFailure> {
        self.draw(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(slugify("raw 64 B, 50 conns"), "raw-64-b-50-conns");
        assert_eq!(slugify("ref-tokio-echo"), "ref-tokio-echo");
        assert_eq!(slugify("  ~~ "), "x");
        assert_eq!(slugify("rate 1.5k/s"), "rate-1.5k-s");
        assert_eq!(slugify("../etc/passwd"), "etc-passwd");
    }

    #[test]
    fn duplicate_stems_are_numbered() {
        let job = |stem: &str| PlotJob {
            kind: PlotKind::Throughput,
            stem: stem.into(),
            title: String::new(),
            data: PlotData::Throughput(throughput::ThroughputPlot::default()),
        };
        let mut jobs = vec![job("a"), job("a"), job("a-2"), job("a")];
        make_stems_unique(&mut jobs);
        let stems: Vec<_> = jobs.iter().map(|j| j.stem.as_str()).collect();
        assert_eq!(stems, ["a", "a-2", "a-2-2", "a-3"]);
    }
}
