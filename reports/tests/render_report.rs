//! End-to-end: render plain reports (the synthetic sweep and degenerate ones) into a temporary
//! directory and check every file written: PNGs decode at the plot size, SVGs are well-formed
//! XML with text, index.html embeds every plot and the table, report.md has the table.

mod common;

use std::fs;

use gev_reports::model::{
    Estimate, LatencyHistogram, LatencySummary, PointKey, PointSummary, Report, RunSeries,
    TimeSample,
};
use gev_reports::plot::style::PLOT_SIZE;
use gev_reports::plot::PlotKind;
use gev_reports::{render_report, ReportError};

fn one_point(rps: f64, histogram: LatencyHistogram) -> PointSummary {
    PointSummary {
        key: PointKey {
            server: "gev-echo".into(),
            loops: 1,
            workload: "raw 64 B".into(),
            offered_rate: None,
        },
        throughput: Estimate {
            median: rps,
            low: rps,
            high: rps,
        },
        latency_us: LatencySummary::default(),
        histogram,
        throughput_ratios: Vec::new(),
    }
}

/// All text of all SVGs of one plot kind, for checking what a degenerate plot says.
fn svg_text_of(rendered: &gev_reports::Rendered, kind: PlotKind) -> String {
    rendered
        .plots
        .iter()
        .filter(|p| p.kind == kind)
        .flat_map(|p| common::svg_texts(&p.svg))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn synthetic_sweep_renders_every_plot_and_page() {
    let report = common::synthetic_report();
    let out = tempfile::tempdir().unwrap();
    let rendered = render_report(&report, out.path()).unwrap();

    let count = |kind| rendered.plots.iter().filter(|p| p.kind == kind).count();
    let loads = 1 + common::RATES.len();
    let servers = common::SERVERS.len();
    let loops = common::LOOPS.len();
    assert_eq!(count(PlotKind::Throughput), loads);
    assert_eq!(count(PlotKind::Latency), loads);
    assert_eq!(count(PlotKind::Spectrum), loads * loops);
    assert_eq!(count(PlotKind::OfferedLoad), loops);
    assert_eq!(count(PlotKind::Timeseries), loads * servers);

    let html = fs::read_to_string(&rendered.index_html).unwrap();
    let md = fs::read_to_string(&rendered.report_md).unwrap();
    common::assert_plots_in_pages(&rendered, &html, &md);
    // Every plot is embedded, none linked.
    assert_eq!(
        html.matches("src=\"data:image/png;base64,iVBORw0KGgo")
            .count(),
        rendered.plots.len()
    );
    assert!(!html.contains("src=\"plots/"));

    // The summary table: one row per point, ratio columns for both references.
    let points = report.points.len();
    for page in [&html, &md] {
        assert!(page.contains("req/s ÷ ref-tokio-echo"));
        assert!(page.contains("p99 ÷ ref-mio-echo"));
        assert!(page.contains("Synthetic CPU @ 3.0GHz"));
    }
    assert_eq!(
        html.matches("<tr><td>").count() + html.matches("<tr class=\"ref\"><td>").count(),
        points
    );
    let md_rows = md.lines().filter(|l| l.starts_with("| raw 64 B")).count();
    assert_eq!(md_rows, points);
    // A reference compared with itself is exactly 1.
    assert!(md
        .lines()
        .any(|l| l.contains("| ref-tokio-echo |") && l.contains("| 1.00× |")));
}

#[test]
fn single_point_with_zero_throughput_and_no_histogram_still_renders() {
    let report = Report {
        title: "degenerate".into(),
        points: vec![one_point(0.0, LatencyHistogram::Missing)],
        ..Report::default()
    };
    let out = tempfile::tempdir().unwrap();
    let rendered = render_report(&report, out.path()).unwrap();
    for plot in &rendered.plots {
        assert_eq!(common::png_size(&plot.png), PLOT_SIZE);
    }
    let throughput = svg_text_of(&rendered, PlotKind::Throughput);
    assert!(throughput.contains("0 requests/s"), "{throughput}");
    let latency = svg_text_of(&rendered, PlotKind::Latency);
    assert!(latency.contains("No latency recorded"), "{latency}");
    let spectrum = svg_text_of(&rendered, PlotKind::Spectrum);
    assert!(
        spectrum.contains("gev-echo: no histogram in the results"),
        "{spectrum}"
    );
    // No rates, no runs: no knee plot and no time series.
    assert_eq!(
        rendered
            .plots
            .iter()
            .filter(|p| matches!(p.kind, PlotKind::OfferedLoad | PlotKind::Timeseries))
            .count(),
        0
    );
    let md = fs::read_to_string(&rendered.report_md).unwrap();
    assert!(md.contains("No reference server ran"));
}

#[test]
fn invalid_histogram_and_empty_runs_are_named_on_the_plot() {
    let point = one_point(
        100.0,
        LatencyHistogram::Invalid("histogram is not valid base64".into()),
    );
    let run = RunSeries {
        key: point.key.clone(),
        repeat: 0,
        samples: Vec::new(),
    };
    let report = Report {
        points: vec![point],
        runs: vec![run],
        ..Report::default()
    };
    let out = tempfile::tempdir().unwrap();
    let rendered = render_report(&report, out.path()).unwrap();
    let spectrum = svg_text_of(&rendered, PlotKind::Spectrum);
    assert!(spectrum.contains("not valid base64"), "{spectrum}");
    let series = svg_text_of(&rendered, PlotKind::Timeseries);
    assert!(
        series.contains("recorded no per-second samples"),
        "{series}"
    );
}

#[test]
fn non_finite_values_do_not_panic() {
    let mut point = one_point(f64::NAN, LatencyHistogram::Missing);
    point.throughput.high = f64::INFINITY;
    point.latency_us = LatencySummary {
        p50: f64::NAN,
        p99: f64::INFINITY,
        p999: -1.0,
    };
    let run = RunSeries {
        key: point.key.clone(),
        repeat: 0,
        samples: vec![TimeSample {
            t_secs: 1.0,
            rps: f64::NAN,
            p99_us: 0.0,
        }],
    };
    let report = Report {
        points: vec![point],
        runs: vec![run],
        ..Report::default()
    };
    let out = tempfile::tempdir().unwrap();
    let rendered = render_report(&report, out.path()).unwrap();
    for plot in &rendered.plots {
        common::png_size(&plot.png);
        common::svg_texts(&plot.svg);
    }
}

#[test]
fn empty_report_writes_pages_that_say_so() {
    let out = tempfile::tempdir().unwrap();
    let rendered = render_report(&Report::default(), out.path()).unwrap();
    assert!(rendered.plots.is_empty());
    let html = fs::read_to_string(&rendered.index_html).unwrap();
    assert!(html.contains("no measured points"));
    let md = fs::read_to_string(&rendered.report_md).unwrap();
    assert!(md.contains("no measured points"));
}

#[test]
fn unwritable_output_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let err = render_report(&common::synthetic_report(), &file).unwrap_err();
    assert!(matches!(err, ReportError::Io { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
